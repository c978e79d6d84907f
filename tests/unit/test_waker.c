/* test_waker: the producer's single wake-up fd: the armed realtime instant, SIGHUP, SIGTERM and
 * SIGINT each wake a wait at once and leave their bit; re-arming and disarming behave. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "waker.h"

#include <poll.h>
#include <signal.h>

static void test_timer_wakes_at_the_instant(void **state)
{
    (void)state;
    waker w;
    assert_int_equal(waker_init(&w), ERR_OK);
    int64_t at = clock_real_ns() + 50 * CLOCK_NS_PER_MS;
    assert_int_equal(waker_arm(&w, at), ERR_OK);
    assert_int_equal(waker_arm(&w, at), ERR_OK); /* same instant: no-op */
    unsigned bits = waker_wait(&w, 2000);
    int64_t now = clock_real_ns();
    assert_int_equal(bits, WAKER_TIMER);
    assert_true(now >= at);
    assert_true(now - at < CLOCK_NS_PER_SEC); /* well before the 2 s wait limit */
    assert_int_equal(waker_take(&w, WAKER_TIMER), WAKER_TIMER);
    assert_int_equal(waker_peek(&w, ~0u), 0);
    waker_fini(&w);
}

static void test_disarm_and_past_instant(void **state)
{
    (void)state;
    waker w;
    assert_int_equal(waker_init(&w), ERR_OK);
    assert_int_equal(waker_arm(&w, clock_real_ns() + 30 * CLOCK_NS_PER_MS), ERR_OK);
    assert_int_equal(waker_arm(&w, INT64_MAX), ERR_OK); /* disarm */
    assert_int_equal(waker_wait(&w, 100), 0);
    assert_int_equal(waker_arm(&w, clock_real_ns() - CLOCK_NS_PER_SEC), ERR_OK); /* past */
    assert_int_equal(waker_wait(&w, 1000), WAKER_TIMER);
    waker_fini(&w);
}

static void test_signals_wake_and_set_bits(void **state)
{
    (void)state;
    static const struct {
        int sig;
        unsigned bit;
    } rows[] = {{SIGHUP, WAKER_HUP}, {SIGTERM, WAKER_TERM}, {SIGINT, WAKER_TERM}};
    waker w;
    assert_int_equal(waker_init(&w), ERR_OK);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        raise(rows[i].sig); /* blocked: it waits on the signalfd instead of killing us */
        struct pollfd p = {waker_fd(&w), POLLIN, 0};
        assert_int_equal(poll(&p, 1, 1000), 1);
        waker_drain(&w);
        assert_int_equal(waker_take(&w, ~0u), rows[i].bit);
    }
    assert_int_equal(waker_wait(&w, 0), 0);
    waker_fini(&w);
    waker_fini(&w); /* twice is safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_wakes_at_the_instant),
        cmocka_unit_test(test_disarm_and_past_instant),
        cmocka_unit_test(test_signals_wake_and_set_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
