/* test_worker_recent: the bounded set of settled (firing id, attempt) pairs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "recent.h"

#include <pthread.h>
#include <stdio.h>

static void test_add_has(void **state)
{
    (void)state;
    recent *r = NULL;
    assert_int_equal(recent_new(8, &r), ERR_OK);
    assert_false(recent_has(r, "s@20260101T000000Z#0", 1));
    assert_int_equal(recent_add(r, "s@20260101T000000Z#0", 1), ERR_OK);
    assert_true(recent_has(r, "s@20260101T000000Z#0", 1));
    /* Another attempt of the same firing is a different pair: a retry must still run. */
    assert_false(recent_has(r, "s@20260101T000000Z#0", 2));
    assert_false(recent_has(r, "s@20260101T000000Z#1", 1));
    assert_int_equal(recent_add(r, "s@20260101T000000Z#0", 1), ERR_OK);
    assert_int_equal(recent_count(r), 1);
    recent_free(r);
    recent_free(NULL);
}

static void test_bad_capacity(void **state)
{
    (void)state;
    recent *r = NULL;
    assert_int_equal(recent_new(0, &r), ERR_INVAL);
    assert_null(r);
}

/* The ring forgets the oldest pair first and keeps exactly the newest `cap`. */
static void test_eviction_order(void **state)
{
    (void)state;
    recent *r = NULL;
    const int cap = 100;
    assert_int_equal(recent_new((size_t)cap, &r), ERR_OK);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "job#%d", i);
        assert_int_equal(recent_add(r, id, 1), ERR_OK);
        assert_true(recent_count(r) <= (size_t)cap);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "job#%d", i);
        if (i < 1000 - cap)
            assert_false(recent_has(r, id, 1));
        else
            assert_true(recent_has(r, id, 1));
    }
    recent_free(r);
}

typedef struct adder_arg {
    recent *r;
    int thread;
} adder_arg;

static void *adder(void *arg)
{
    const adder_arg *a = arg;
    recent *r = a->r;
    char id[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof id, "t%d#%d", a->thread, i);
        if (recent_add(r, id, 1) != ERR_OK || !recent_has(r, id, 1))
            return (void *)1;
    }
    return NULL;
}

/* Executors look up while the I/O thread adds; the set must stay consistent (and TSan-clean). */
static void test_threads(void **state)
{
    (void)state;
    recent *r = NULL;
    assert_int_equal(recent_new(100000, &r), ERR_OK);
    pthread_t t[4];
    adder_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (adder_arg){r, i};
        assert_int_equal(pthread_create(&t[i], NULL, adder, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *res = (void *)2;
        pthread_join(t[i], &res);
        assert_null(res);
    }
    assert_int_equal(recent_count(r), 8000);
    recent_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_has),
        cmocka_unit_test(test_bad_capacity),
        cmocka_unit_test(test_eviction_order),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
