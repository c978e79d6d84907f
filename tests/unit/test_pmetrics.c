/* test_pmetrics: the producer's series and its /healthz: off means no registry, health follows
 * the connection hooks, a batch counts jobs by schedule, clock steps, reloads, next fire. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "httpreq.h"
#include "pmetrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET path on 127.0.0.1:port; returns the HTTP status and copies the body into body. */
static int get(int port, const char *path, char *body, size_t cap)
{
    static httpreq_reply r; /* 66 KiB: kept off the test's stack */
    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", path, &r), 0);
    snprintf(body, cap, "%s", r.body);
    return r.status;
}

static void test_off(void **state)
{
    (void)state;
    pmetrics *pm = (pmetrics *)1;
    assert_int_equal(pmetrics_new("off", &pm), ERR_OK);
    assert_null(pm);
    /* Every hook is a no-op on NULL. */
    pmetrics_connected(NULL, true);
    pmetrics_lost(NULL);
    pmetrics_clock_step(NULL, 5000);
    pmetrics_free(NULL);
}

static void test_health_follows_connection(void **state)
{
    (void)state;
    pmetrics *pm = NULL;
    char body[65536];
    assert_int_equal(pmetrics_new("127.0.0.1:0", &pm), ERR_OK);
    int port = httpd_port(pm->http);
    assert_int_equal(get(port, "/healthz", body, sizeof body), 503);
    assert_non_null(strstr(body, "broker connection down"));
    pmetrics_connected(pm, false);
    assert_int_equal(get(port, "/healthz", body, sizeof body), 200);
    pmetrics_blocked(pm, true);
    assert_int_equal(get(port, "/healthz", body, sizeof body), 200); /* blocked is not down */
    pmetrics_lost(pm);
    assert_int_equal(get(port, "/healthz", body, sizeof body), 503);
    pmetrics_connected(pm, true);
    assert_int_equal(metrics_read(pm->reconnects), 1);
    assert_int_equal(metrics_read(pm->blocked), 0); /* a new connection starts unblocked */
    assert_int_equal(get(port, "/metrics", body, sizeof body), 200);
    assert_non_null(strstr(body, "\nsalvo_producer_reconnects_total 1\n"));
    assert_non_null(strstr(body, "\nsalvo_producer_connected 1\n"));
    pmetrics_free(pm);
}

static void test_batch_and_state(void **state)
{
    (void)state;
    pmetrics *pm = NULL;
    assert_int_equal(pmetrics_new("127.0.0.1:0", &pm), ERR_OK);
    firebatch_firing f[3] = {{.schedule = "a", .count = 100, .unconfirmed = 0},
                             {.schedule = "b", .count = 3, .unconfirmed = 1},
                             {.schedule = "a", .count = 2, .unconfirmed = 0}};
    firebatch b = {.key_ms = 1000000, .f = f, .nf = 3, .skipped = 2};
    pmetrics_batch(pm, &b, 1000000 * CLOCK_NS_PER_MS + 20 * CLOCK_NS_PER_MS, 150 * CLOCK_NS_PER_MS,
                   107);
    assert_int_equal(metrics_read(metrics_with(pm->published, "a", NULL)), 102);
    assert_int_equal(metrics_read(metrics_with(pm->confirmed, "a", NULL)), 102);
    assert_int_equal(metrics_read(metrics_with(pm->published, "b", NULL)), 3);
    assert_int_equal(metrics_read(metrics_with(pm->confirmed, "b", NULL)), 2);
    assert_int_equal(metrics_read(pm->publishes), 107);
    assert_int_equal(metrics_read(pm->batches), 1);
    assert_int_equal(metrics_read(pm->build_errors), 2);
    assert_int_equal(metrics_read(pm->lateness_s), 1);
    assert_float_equal(metrics_read_sum(pm->lateness_s), 0.020, 1e-9);
    assert_float_equal(metrics_read_sum(pm->confirm_s), 0.150, 1e-9);
    firebatch early = {.key_ms = 2000000, .f = f, .nf = 1};
    pmetrics_batch(pm, &early, 1999999 * CLOCK_NS_PER_MS, 0, 100);
    assert_float_equal(metrics_read_sum(pm->lateness_s), 0.020, 1e-9); /* early counts as 0 */
    assert_int_equal(metrics_read(pm->confirm_s), 1); /* nothing confirmed: not observed */
    pmetrics_clock_step(pm, 0);
    pmetrics_clock_step(pm, -3500);
    assert_int_equal(metrics_read(pm->clock_steps), 1);
    assert_float_equal(metrics_read(pm->clock_last_step), -3.5, 1e-9);
    pmetrics_schedules(pm, 42);
    pmetrics_reload(pm, true);
    pmetrics_reload(pm, false);
    pmetrics_reload(pm, false);
    pmetrics_next_fire(pm, 1767225600500);
    assert_int_equal(metrics_read(pm->schedules), 42);
    assert_int_equal(metrics_read(pm->reload_ok), 1);
    assert_int_equal(metrics_read(pm->reload_failed), 2);
    assert_float_equal(metrics_read(pm->next_fire), 1767225600.5, 1e-6);
    pmetrics_free(pm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_health_follows_connection),
        cmocka_unit_test(test_batch_and_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
