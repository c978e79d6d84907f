/* test_worker_resend: the backoff schedule of nacked follow-ups, their deadline order, and
 * which nacks get a log line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "resend.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MS CLOCK_NS_PER_MS

static settle *mk(uint64_t tag)
{
    settle *s = calloc(1, sizeof *s);
    s->tag = tag;
    return s;
}

/* Tags of a list, in order, into out; returns the count and frees the list. */
static size_t tags(settle *s, uint64_t *out)
{
    size_t n = 0;
    while (s) {
        settle *next = s->next;
        out[n++] = s->tag;
        settle_free(s);
        s = next;
    }
    return n;
}

static void test_delay_table(void **state)
{
    (void)state;
    static const struct {
        unsigned nacks;
        int64_t ms;
    } rows[] = {{0, 50},    {1, 50},      {2, 100},        {3, 200},  {4, 400},
                {5, 800},   {6, 1600},    {7, 3200},       {8, 5000}, {9, 5000},
                {64, 5000}, {1000, 5000}, {UINT_MAX, 5000}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(resend_delay_ms(rows[i].nacks), rows[i].ms);
}

/* One follow-up the broker refuses forever, republished the moment its wait ends: the waits
 * never shrink, never undercut the first, and the publishes in the first 3 s stay a handful
 * (a hot loop would make thousands). */
static void test_refused_forever(void **state)
{
    (void)state;
    resend r;
    resend_init(&r);
    settle *s = mk(1);
    int64_t now = 1000 * MS, start = now, last_wait = 0;
    size_t in_3s = 0, in_60s = 0;
    for (unsigned n = 1; n <= 40; n++) {
        resend_add(&r, s, now);
        assert_int_equal(s->nacks, n);
        assert_int_equal(s->first_nack_ns, start);
        int64_t wait = s->resend_at_ns - now;
        assert_true(wait >= RESEND_FIRST_MS * MS && wait <= RESEND_CAP_MS * MS);
        assert_true(wait >= last_wait);
        last_wait = wait;
        assert_null(resend_take_due(&r, s->resend_at_ns - 1)); /* never early */
        now = resend_next_ns(&r);
        assert_ptr_equal(resend_take_due(&r, now), s);
        in_3s += now - start <= 3000 * MS;
        in_60s += now - start <= 60000 * MS;
    }
    /* Republished at 50, 150, 350, 750, 1550 ms (5 within 3 s), 3150, 6350 ms, then every 5 s. */
    assert_int_equal(in_3s, 5);
    assert_int_equal(in_60s, 7 + (60000 - 6350) / 5000);
    assert_int_equal(resend_count(&r), 0);
    settle_free(s);
    resend_fini(&r);
}

/* Deadlines order the list whatever order the nacks came in; equal deadlines keep arrival. */
static void test_deadline_order(void **state)
{
    (void)state;
    resend r;
    resend_init(&r);
    assert_int_equal(resend_next_ns(&r), INT64_MAX);
    assert_null(resend_take_due(&r, INT64_MAX));
    settle *a = mk(1), *b = mk(2), *c = mk(3), *d = mk(4);
    b->nacks = 2;                /* third nack: 200 ms */
    resend_add(&r, b, 0);        /* due 200 */
    resend_add(&r, a, 0);        /* due 50 */
    resend_add(&r, c, 150 * MS); /* due 200, after b */
    resend_add(&r, d, 100 * MS); /* due 150 */
    assert_int_equal(resend_count(&r), 4);
    assert_int_equal(resend_next_ns(&r), 50 * MS);
    uint64_t got[8];
    assert_null(resend_take_due(&r, 49 * MS));
    assert_int_equal(tags(resend_take_due(&r, 150 * MS), got), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 4);
    assert_int_equal(resend_count(&r), 2);
    assert_int_equal(resend_next_ns(&r), 200 * MS);
    assert_int_equal(tags(resend_take_due(&r, 200 * MS), got), 2);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[1], 3);
    assert_int_equal(resend_count(&r), 0);
    assert_int_equal(resend_next_ns(&r), INT64_MAX);
    resend_fini(&r);
}

static void test_take_all_and_fini(void **state)
{
    (void)state;
    resend r;
    resend_init(&r);
    for (uint64_t t = 1; t <= 3; t++)
        resend_add(&r, mk(t), (int64_t)t * MS);
    uint64_t got[4];
    assert_int_equal(tags(resend_take_all(&r), got), 3);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[2], 3);
    assert_int_equal(resend_count(&r), 0);
    resend_add(&r, mk(9), 0);
    resend_fini(&r); /* frees what still waits (ASan checks) */
    assert_int_equal(resend_count(&r), 0);
}

/* Log lines: the first nack, power-of-two counts, and one a minute while it goes on. */
static void test_notable(void **state)
{
    (void)state;
    resend r;
    resend_init(&r);
    settle *s = mk(1);
    int64_t now = 0;
    unsigned logged[64];
    size_t n = 0;
    for (unsigned k = 1; k <= 100; k++) {
        resend_add(&r, s, now);
        if (resend_notable(s, now))
            logged[n++] = s->nacks;
        now = s->resend_at_ns;
        assert_ptr_equal(resend_take_due(&r, now), s);
    }
    /* 1, 2, 4, 8, 16 (at ~46 s), then 28 (the first after 60 s quiet), 32 (power of two), 44,
     * 56, 64, 76, 88, 100: powers of two and minute marks. */
    static const unsigned want[] = {1, 2, 4, 8, 16, 28, 32, 44, 56, 64, 76, 88, 100};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(logged[i], want[i]);
    settle_free(s);
    resend_fini(&r);
}

/* A new publish channel once one follow-up has been refused for a second, then at doubling
 * spacings up to the cap while nothing gets through; a confirm after nacks starts over. */
static void test_reopen_spacing(void **state)
{
    (void)state;
    resend r;
    resend_init(&r);
    settle *s = mk(1);
    resend_add(&r, s, 0);
    assert_false(resend_reopen_due(&r, s, 999 * MS)); /* refused for under a second */
    assert_true(resend_reopen_due(&r, s, 1000 * MS));
    settle fresh = {0};
    assert_false(resend_reopen_due(&r, &fresh, 5000 * MS)); /* never nacked */
    /* Reopened whenever allowed: the gaps double from 1 s and stop at the cap. */
    static const int64_t gaps_ms[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    int64_t now = 1000 * MS;
    for (size_t i = 0; i < sizeof gaps_ms / sizeof gaps_ms[0]; i++) {
        resend_reopened(&r, now);
        assert_false(resend_reopen_due(&r, s, now + gaps_ms[i] * MS - 1));
        assert_true(resend_reopen_due(&r, s, now + gaps_ms[i] * MS));
        now += gaps_ms[i] * MS;
    }
    resend_recovered(&r);
    assert_int_equal(r.reopens, 0);
    assert_true(resend_reopen_due(&r, s, now));
    /* resend_put queues without counting a nack. */
    assert_ptr_equal(resend_take_due(&r, INT64_MAX), s);
    resend_put(&r, s, 7 * MS);
    assert_int_equal(s->nacks, 1);
    assert_int_equal(resend_next_ns(&r), 7 * MS);
    resend_fini(&r); /* frees s */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_table),    cmocka_unit_test(test_refused_forever),
        cmocka_unit_test(test_deadline_order), cmocka_unit_test(test_take_all_and_fini),
        cmocka_unit_test(test_notable),        cmocka_unit_test(test_reopen_spacing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
