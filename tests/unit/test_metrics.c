/* test_metrics: exact text exposition, histogram bucket placement, registration rules, label
 * overflow, and concurrent updates from several threads summing exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* noinline: inlined at -O3, gcc 12 mistakes the returned buffer for the address of the local
 * pointer that held it and reports -Wdangling-pointer at every use. */
static __attribute__((noinline)) char *render(metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, &text, &len), ERR_OK);
    assert_int_equal(len, strlen(text));
    return text;
}

static void test_render_exact(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 1};
    metrics *m = metrics_new();
    metrics_family *up = metrics_counter(m, "salvo_up_total", "Starts.", NULL, NULL);
    metrics_family *out =
        metrics_counter(m, "salvo_outcomes_total", "Job outcomes \\ by \"kind\"\nsecond line",
                        "schedule", "outcome");
    metrics_family *fl = metrics_gauge(m, "salvo_in_flight", "Jobs running.", NULL, NULL);
    metrics_family *h =
        metrics_histogram(m, "salvo_lateness_seconds", "Lateness.", bounds, 2, "schedule", NULL);
    metrics_family *empty = metrics_gauge(m, "salvo_skew_seconds", "Skew.", "peer", NULL);
    assert_non_null(up);
    assert_non_null(empty);
    metrics_inc(metrics_with(out, "nightly", "ok"));
    metrics_add(metrics_with(out, "nightly", "ok"), 2);
    metrics_inc(metrics_with(out, "a\"b\\c\nd", "dead"));
    metrics_set(metrics_with(fl, NULL, NULL), 1.5);
    metrics_gauge_add(metrics_with(fl, NULL, NULL), -4);
    metrics_series *hs = metrics_with(h, "nightly", NULL);
    metrics_observe(hs, 0.05);
    metrics_observe(hs, 0.1);
    metrics_observe(hs, 0.5);
    metrics_observe(hs, 7);
    char *text = render(m);
    assert_string_equal(text,
                        "# HELP salvo_up_total Starts.\n"
                        "# TYPE salvo_up_total counter\n"
                        "salvo_up_total 0\n"
                        "# HELP salvo_outcomes_total Job outcomes \\\\ by \"kind\"\\nsecond line\n"
                        "# TYPE salvo_outcomes_total counter\n"
                        "salvo_outcomes_total{schedule=\"nightly\",outcome=\"ok\"} 3\n"
                        "salvo_outcomes_total{schedule=\"a\\\"b\\\\c\\nd\",outcome=\"dead\"} 1\n"
                        "# HELP salvo_in_flight Jobs running.\n"
                        "# TYPE salvo_in_flight gauge\n"
                        "salvo_in_flight -2.5\n"
                        "# HELP salvo_lateness_seconds Lateness.\n"
                        "# TYPE salvo_lateness_seconds histogram\n"
                        "salvo_lateness_seconds_bucket{schedule=\"nightly\",le=\"0.1\"} 2\n"
                        "salvo_lateness_seconds_bucket{schedule=\"nightly\",le=\"1\"} 3\n"
                        "salvo_lateness_seconds_bucket{schedule=\"nightly\",le=\"+Inf\"} 4\n"
                        "salvo_lateness_seconds_sum{schedule=\"nightly\"} 7.65\n"
                        "salvo_lateness_seconds_count{schedule=\"nightly\"} 4\n"
                        "# HELP salvo_skew_seconds Skew.\n"
                        "# TYPE salvo_skew_seconds gauge\n");
    free(text);
    metrics_free(m);
}

/* Gauge values and bucket bounds use the shortest text that reads back exactly. */
static void test_number_format(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } rows[] = {
        {0, "0"},
        {0.1, "0.1"},
        {1e-05, "1e-05"},
        {123456789, "123456789"},
        {1.0 / 3, "0.3333333333333333"},
        {-0.0025, "-0.0025"},
        {10, "10"},
        {60, "60"},
        {1e16, "10000000000000000"},
        {1e17, "1e+17"},
        {2.5e-7, "2.5e-07"},
        {-0.5, "-0.5"},
        {0.30000000000000004, "0.30000000000000004"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        metrics *m = metrics_new();
        metrics_set(metrics_with(metrics_gauge(m, "g", "h", NULL, NULL), NULL, NULL), rows[i].v);
        char *text = render(m), want[128];
        snprintf(want, sizeof want, "# HELP g h\n# TYPE g gauge\ng %s\n", rows[i].text);
        assert_string_equal(text, want);
        free(text);
        metrics_free(m);
    }
}

/* The le of the first bucket a single observation lands in (buckets are cumulative). */
static void test_bucket_placement(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *le;
    } rows[] = {
        {0, "0.001"},       {-1, "0.001"},    {0.001, "0.001"}, {0.0010001, "0.0025"},
        {0.0025, "0.0025"}, {0.3, "0.5"},     {1, "1"},         {29.999, "30"},
        {60, "60"},         {60.001, "+Inf"}, {1e9, "+Inf"},    {NAN, "+Inf"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        metrics *m = metrics_new();
        metrics_family *h =
            metrics_histogram(m, "salvo_start_lateness_seconds", "h", metrics_lateness_buckets,
                              METRICS_LATENESS_NBUCKETS, NULL, NULL);
        metrics_observe(metrics_with(h, NULL, NULL), rows[i].v);
        char *text = render(m), want[128];
        snprintf(want, sizeof want, "{le=\"%s\"} 1\n", rows[i].le);
        /* The first line counting 1 must be the expected bucket. */
        const char *hit = strstr(text, " 1\n");
        size_t wl = strlen(want), end = hit ? (size_t)(hit - text) + 3 : 0;
        if (!hit || end < wl || strncmp(text + end - wl, want, wl) != 0)
            fail_msg("row %zu: want %s in\n%s", i, want, text);
        assert_non_null(strstr(text, "salvo_start_lateness_seconds_count 1\n"));
        assert_int_equal(metrics_read(metrics_with(h, NULL, NULL)), 1);
        free(text);
        metrics_free(m);
    }
}

static void test_register_rules(void **state)
{
    (void)state;
    static const double good[] = {1, 2}, flat[] = {1, 1}, inf[] = {1, INFINITY};
    metrics *m = metrics_new();
    assert_non_null(metrics_counter(m, "salvo_a_total", "h", "x", "y"));
    assert_null(metrics_counter(m, "salvo_a_total", "h", NULL, NULL)); /* duplicate */
    assert_null(metrics_gauge(m, "salvo_a_total", "h", NULL, NULL));
    assert_null(metrics_counter(m, "salvo_b", "h", NULL, NULL)); /* counters end in _total */
    assert_null(metrics_gauge(m, "1abc", "h", NULL, NULL));
    assert_null(metrics_gauge(m, "a-b", "h", NULL, NULL));
    assert_null(metrics_gauge(m, "g1", NULL, NULL, NULL));
    assert_null(metrics_gauge(m, "g2", "h", "__x", NULL));
    assert_null(metrics_gauge(m, "g3", "h", "a:b", NULL));
    assert_null(metrics_gauge(m, "g4", "h", "x", "x"));
    assert_null(metrics_histogram(m, "h1", "h", good, 2, "le", NULL));
    assert_null(metrics_histogram(m, "h2", "h", flat, 2, NULL, NULL));
    assert_null(metrics_histogram(m, "h3", "h", inf, 2, NULL, NULL));
    assert_null(metrics_histogram(m, "h4", "h", good, 0, NULL, NULL));
    assert_non_null(metrics_gauge(m, "ns:g_ok", "h", "le", NULL)); /* le is fine off histograms */
    assert_non_null(metrics_histogram(m, "h5", "h", good, 2, NULL, NULL));
    /* Wrong-type updates do nothing. */
    metrics_series *c = metrics_with(metrics_counter(m, "salvo_c_total", "h", NULL, NULL), 0, 0);
    metrics_set(c, 9);
    metrics_observe(c, 9);
    metrics_gauge_add(c, 9);
    assert_true(metrics_read(c) == 0);
    metrics_inc(c);
    assert_true(metrics_read(c) == 1);
    metrics_inc(NULL);
    assert_null(metrics_with(NULL, "a", "b"));
    assert_true(metrics_read(NULL) == 0);
    metrics_free(m);
    metrics_free(NULL);
}

static void test_label_overflow(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_family *f = metrics_counter(m, "salvo_x_total", "h", "k", NULL);
    char v[32];
    for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
        snprintf(v, sizeof v, "v%d", i);
        metrics_inc(metrics_with(f, v, NULL));
    }
    /* 511 label sets get their own series, the 11 after them share the overflow series. */
    metrics_series *first = metrics_with(f, "v0", NULL);
    metrics_series *last = metrics_with(f, "v510", NULL);
    metrics_series *over = metrics_with(f, "v511", NULL);
    assert_ptr_not_equal(first, last);
    assert_ptr_equal(over, metrics_with(f, "never-seen", NULL));
    assert_ptr_equal(over, metrics_with(f, METRICS_OVERFLOW, NULL));
    assert_true(metrics_read(first) == 1);
    assert_true(metrics_read(over) == 11);
    char *text = render(m);
    assert_non_null(strstr(text, "salvo_x_total{k=\"_other\"} 11\n"));
    size_t lines = 0;
    for (char *p = text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 2 + METRICS_SERIES_MAX);
    free(text);
    metrics_free(m);
}

#define THREADS 8
#define ITERS   50000

typedef struct shared {
    metrics_family *count, *gauge, *hist;
    int id;
} shared;

static void *hammer(void *arg)
{
    const shared *sh = arg;
    static const char *const labels[] = {"a", "b", "c", "d"};
    metrics_series *g = metrics_with(sh->gauge, NULL, NULL);
    metrics_series *h = metrics_with(sh->hist, "x", NULL);
    for (int i = 0; i < ITERS; i++) {
        /* Look the series up every time: creation races with lookups on other threads. */
        metrics_inc(metrics_with(sh->count, labels[(i + sh->id) % 4], "same"));
        metrics_gauge_add(g, 1);
        metrics_observe(h, (i % 2) ? 0.5 : 2);
        metrics_gauge_add(g, -1);
    }
    return NULL;
}

/* Renders while the hammer threads run: must never crash and stay self-consistent. */
static void *reader(void *arg)
{
    metrics *m = arg;
    for (int i = 0; i < 50; i++) {
        char *text = NULL;
        assert_int_equal(metrics_render(m, &text, NULL), ERR_OK);
        free(text);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    static const double bounds[] = {1};
    metrics *m = metrics_new();
    shared sh[THREADS];
    pthread_t t[THREADS + 1];
    metrics_family *c = metrics_counter(m, "salvo_hits_total", "h", "k", "j");
    metrics_family *g = metrics_gauge(m, "salvo_busy", "h", NULL, NULL);
    metrics_family *h = metrics_histogram(m, "salvo_h_seconds", "h", bounds, 1, "l", NULL);
    for (int i = 0; i < THREADS; i++) {
        sh[i] = (shared){c, g, h, i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &sh[i]), 0);
    }
    assert_int_equal(pthread_create(&t[THREADS], NULL, reader, m), 0);
    for (int i = 0; i <= THREADS; i++)
        pthread_join(t[i], NULL);
    double total = 0;
    static const char *const labels[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        double v = metrics_read(metrics_with(c, labels[i], "same"));
        assert_true(v == THREADS * ITERS / 4);
        total += v;
    }
    assert_true(total == THREADS * ITERS);
    assert_true(metrics_read(metrics_with(g, NULL, NULL)) == 0);
    metrics_series *hs = metrics_with(h, "x", NULL);
    assert_true(metrics_read(hs) == THREADS * ITERS);
    assert_true(metrics_read_sum(hs) == THREADS * (ITERS / 2) * 2.5);
    char *text = render(m), want[128];
    snprintf(want, sizeof want, "salvo_h_seconds_bucket{l=\"x\",le=\"1\"} %d\n",
             THREADS * ITERS / 2);
    assert_non_null(strstr(text, want));
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),     cmocka_unit_test(test_number_format),
        cmocka_unit_test(test_bucket_placement), cmocka_unit_test(test_register_rules),
        cmocka_unit_test(test_label_overflow),   cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
