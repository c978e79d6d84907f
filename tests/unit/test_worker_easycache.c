/* test_worker_easycache: easy handles reused up to a thread's peak, and the ones left unused for
 * a whole period given back down to the floor. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "easycache.h"

#include <stdlib.h>

#define PERIOD EASYCACHE_PERIOD_NS

/* Take n handles at once (a burst in flight), then give them all back. */
static void burst(easycache *c, size_t n)
{
    CURL **v = calloc(n, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = easycache_get(c);
        assert_non_null(v[i]);
    }
    for (size_t i = 0; i < n; i++)
        easycache_put(c, v[i]);
    free(v);
}

/* Every handle given back is kept, beyond the old fixed 128, and a burst of the same size
 * afterwards allocates none. */
static void test_reuse_up_to_peak(void **state)
{
    (void)state;
    easycache c;
    easycache_init(&c);
    burst(&c, 300);
    assert_int_equal(c.made, 300);
    assert_int_equal(easycache_count(&c), 300);
    burst(&c, 300);
    assert_int_equal(c.made, 300);
    assert_int_equal(c.reused, 300);
    burst(&c, 310); /* a larger one makes only the difference */
    assert_int_equal(c.made, 310);
    assert_int_equal(easycache_count(&c), 310);
    easycache_fini(&c);
    assert_int_equal(easycache_count(&c), 0);
}

/* A reused handle comes back reset: an option set on its last use is gone. */
static void test_put_resets(void **state)
{
    (void)state;
    easycache c;
    easycache_init(&c);
    CURL *e = easycache_get(&c);
    static int mine;
    assert_int_equal(curl_easy_setopt(e, CURLOPT_PRIVATE, &mine), CURLE_OK);
    easycache_put(&c, e);
    CURL *again = easycache_get(&c);
    assert_ptr_equal(again, e);
    void *priv = &mine;
    assert_int_equal(curl_easy_getinfo(again, CURLINFO_PRIVATE, &priv), CURLE_OK);
    assert_null(priv);
    easycache_put(&c, again);
    easycache_put(&c, NULL); /* ignored */
    assert_int_equal(easycache_count(&c), 1);
    easycache_fini(&c);
}

/* The first trim starts a period and frees nothing; at its end, what no caller took during the
 * whole period is freed down to the floor, and not before. */
static void test_trim_unused_after_period(void **state)
{
    (void)state;
    easycache c;
    easycache_init(&c);
    burst(&c, 1000);
    int64_t t = 5 * PERIOD;
    assert_int_equal(easycache_trim(&c, t), 0);
    assert_int_equal(easycache_trim(&c, t + PERIOD - 1), 0); /* the period is not over */
    burst(&c, 200); /* 200 in use at once at the period's busiest: 800 stayed unused */
    assert_int_equal(easycache_trim(&c, t + PERIOD), 800 - EASYCACHE_FLOOR);
    assert_int_equal(easycache_count(&c), 200 + EASYCACHE_FLOOR);
    assert_int_equal(c.freed, 800 - EASYCACHE_FLOOR);
    /* A period with no demand at all brings it down to the floor; below it nothing goes. */
    assert_int_equal(easycache_trim(&c, t + 2 * PERIOD), 200);
    assert_int_equal(easycache_count(&c), EASYCACHE_FLOOR);
    assert_int_equal(easycache_trim(&c, t + 3 * PERIOD), 0);
    assert_int_equal(easycache_count(&c), EASYCACHE_FLOOR);
    /* The kept handles still work after the table moved. */
    size_t made = c.made;
    burst(&c, EASYCACHE_FLOOR);
    assert_int_equal(c.made, made);
    easycache_fini(&c);
}

/* Steady use never trims: each period, every kept handle was taken at some moment. */
static void test_steady_use_keeps_all(void **state)
{
    (void)state;
    easycache c;
    easycache_init(&c);
    burst(&c, 500);
    easycache_trim(&c, PERIOD);
    for (int p = 2; p < 6; p++) {
        burst(&c, 500);
        assert_int_equal(easycache_trim(&c, p * PERIOD), 0);
        assert_int_equal(easycache_count(&c), 500);
    }
    assert_int_equal(c.made, 500);
    easycache_fini(&c);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_up_to_peak),
        cmocka_unit_test(test_put_resets),
        cmocka_unit_test(test_trim_unused_after_period),
        cmocka_unit_test(test_steady_use_keeps_all),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
