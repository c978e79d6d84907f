/* test_worker_metrics: how wmetrics classifies settled attempts (outcome, dead-letter reason,
 * retry level), counts starts and lateness, and reads clock skew from a delivery's timestamp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "wmetrics.h"

static double outcome(wmetrics *w, const char *label)
{
    return metrics_read(metrics_with(w->jobs, label, NULL));
}

static double dead_reason(wmetrics *w, const char *reason)
{
    return metrics_read(metrics_with(w->dead_letters, reason, NULL));
}

static void test_settled(void **state)
{
    (void)state;
    wmetrics *w = NULL;
    assert_int_equal(wmetrics_new(&w), ERR_OK);
    static const struct {
        const char *label, *reason;
        int level;
    } rows[] = {
        {"ok", "", 0},
        {"ok", NULL, 0},
        {"retry", "", 1},
        {"retry", "", 3},
        {"retry", "", 1},
        {"dead", "http-404", 0},
        {"dead", "attempts-exhausted", 0},
        {"dead", "malformed: reserved byte 0xc1 at offset 0", 0},
        {"dead", "too-large: 300000 bytes", 0},
        {"dead", "bad-schema: id", 0},
        {"dead", "bad-version: 9", 0},
        {"dead", "bad-signature: mismatch", 0},
        {"dead", "bad-publisher: no user_id", 0},
        {"dead", "clock-skew", 0},
        {"dead", "", 0},
        {"missed", "late-1234ms", 0},
        {"duplicate", "", 0},
        {"brand-new", "", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        wmetrics_settled(w, rows[i].label, rows[i].reason, rows[i].level);
    assert_int_equal(outcome(w, "ok"), 2);
    assert_int_equal(outcome(w, "retry"), 3);
    assert_int_equal(outcome(w, "dead"), 5); /* 404, exhausted, bad-publisher, clock-skew, "" */
    assert_int_equal(outcome(w, "invalid"), 4);
    assert_int_equal(outcome(w, "bad-signature"), 1);
    assert_int_equal(outcome(w, "missed"), 1);
    assert_int_equal(outcome(w, "duplicate"), 1);
    assert_int_equal(outcome(w, "brand-new"), 1);
    assert_int_equal(metrics_read(metrics_with(w->retries, "r1", NULL)), 2);
    assert_int_equal(metrics_read(metrics_with(w->retries, "r3", NULL)), 1);
    static const struct {
        const char *key;
        int n;
    } reasons[] = {{"http-404", 1},      {"attempts-exhausted", 1},
                   {"malformed", 1},     {"too-large", 1},
                   {"bad-schema", 1},    {"bad-version", 1},
                   {"bad-signature", 1}, {"bad-publisher", 1},
                   {"clock-skew", 1},    {"unknown", 1},
                   {"late", 1}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (dead_reason(w, reasons[i].key) != reasons[i].n)
            fail_msg("reason %s: %g", reasons[i].key, dead_reason(w, reasons[i].key));
    }
    assert_int_equal(metrics_read(w->clock_skew_events), 1);
    wmetrics_free(w);
}

static void test_started_and_skew(void **state)
{
    (void)state;
    wmetrics *w = NULL;
    assert_int_equal(wmetrics_new(&w), ERR_OK);
    int64_t due_ms = 1767225600000;
    wmetrics_started(w, 1, due_ms, (due_ms + 25) * CLOCK_NS_PER_MS);
    wmetrics_started(w, 1, due_ms, (due_ms - 3) * CLOCK_NS_PER_MS);    /* early: lateness 0 */
    wmetrics_started(w, 2, due_ms, (due_ms + 1000) * CLOCK_NS_PER_MS); /* a retry */
    assert_int_equal(metrics_read(w->started), 3);
    assert_int_equal(metrics_read(w->lateness), 2);
    assert_float_equal(metrics_read_sum(w->lateness), 0.025, 1e-9);
    int64_t recv_ns = 1767225600400 * CLOCK_NS_PER_MS;
    wmetrics_delivered(w, 1767225600, recv_ns);
    assert_float_equal(metrics_read(w->clock_skew), -0.4, 1e-6);
    assert_int_equal(metrics_read(w->clock_skew_events), 0);
    wmetrics_delivered(w, 1767225610, recv_ns); /* stamped 9.6 s in our future */
    assert_int_equal(metrics_read(w->clock_skew_events), 1);
    wmetrics_delivered(w, 0, recv_ns); /* no timestamp: gauge kept */
    assert_float_equal(metrics_read(w->clock_skew), 9.6, 1e-6);
    assert_int_equal(metrics_read(w->deliveries), 3);
    wmetrics_settled(NULL, "ok", NULL, 0);
    wmetrics_delivered(NULL, 1, 1);
    wmetrics_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settled),
        cmocka_unit_test(test_started_and_skew),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
