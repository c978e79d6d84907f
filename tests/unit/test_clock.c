/* test_clock: clock_format_iso against an independent reference (gmtime_r + strftime), at every
 * precision, across the calendar, and when the buffer is too small. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"

#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <time.h>

/* The expected text: strftime for the date and time, the fraction and "Z" appended. */
static void reference(int64_t ns, int digits, char *out, size_t cap)
{
    int64_t s = ns / CLOCK_NS_PER_SEC, frac = ns % CLOCK_NS_PER_SEC;
    if (frac < 0) {
        s--;
        frac += CLOCK_NS_PER_SEC;
    }
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (digits)
        n += (size_t)snprintf(out + n, cap - n, ".%0*lld", digits,
                              (long long)(frac / (digits == 3   ? 1000000
                                                  : digits == 6 ? 1000
                                                                : 1)));
    snprintf(out + n, cap - n, "Z");
}

static void test_matches_reference(void **state)
{
    (void)state;
    static const int64_t secs[] = {0,         1,          59,         86399,      951782400,
                                   951868799, 1767225600, 1798761599, 4102444800, 9223372035,
                                   -1,        -86401,     1582934400};
    static const int64_t fracs[] = {0, 1, 999, 1000000, 123456789, 999999999};
    static const int digits[] = {0, 3, 6, 9};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        for (size_t f = 0; f < sizeof fracs / sizeof fracs[0]; f++) {
            for (size_t k = 0; k < sizeof digits / sizeof digits[0]; k++) {
                int64_t ns = secs[i] * CLOCK_NS_PER_SEC + fracs[f];
                char got[64], want[64];
                clock_format_iso(ns, digits[k], got, sizeof got);
                reference(ns, digits[k], want, sizeof want);
                if (strcmp(got, want) != 0)
                    fail_msg("%lld ns, %d digits: got %s, want %s", (long long)ns, digits[k], got,
                             want);
            }
        }
    }
}

/* A short buffer holds the start of the text, NUL-terminated, as snprintf would leave it. */
static void test_truncates(void **state)
{
    (void)state;
    const char *full = "2026-01-01T00:00:00.123Z";
    int64_t ns = 1767225600 * CLOCK_NS_PER_SEC + 123000000;
    for (size_t cap = 1; cap <= strlen(full) + 1; cap++) {
        char buf[32];
        memset(buf, 'x', sizeof buf);
        assert_ptr_equal(clock_format_iso(ns, 3, buf, cap), buf);
        assert_int_equal(strlen(buf), cap - 1);
        assert_memory_equal(buf, full, cap - 1);
    }
    char untouched[4] = "abc";
    clock_format_iso(ns, 3, untouched, 0);
    assert_string_equal(untouched, "abc");
}

/* Poll timeouts: rounded up, never negative, capped, safe with a "never" instant. */
static void test_ms_until(void **state)
{
    (void)state;
    const int64_t ms = CLOCK_NS_PER_MS, now = 1767225600 * CLOCK_NS_PER_SEC;
    assert_int_equal(clock_ms_until(now, now - 5 * ms, 200), 0);
    assert_int_equal(clock_ms_until(now, now, 200), 0);
    assert_int_equal(clock_ms_until(now, now + 1, 200), 1);
    assert_int_equal(clock_ms_until(now, now + ms, 200), 1);
    assert_int_equal(clock_ms_until(now, now + ms + 1, 200), 2);
    assert_int_equal(clock_ms_until(now, now + 200 * ms, 200), 200);
    assert_int_equal(clock_ms_until(now, now + 200 * ms + 1, 200), 200);
    assert_int_equal(clock_ms_until(now, INT64_MAX, 200), 200);
    assert_int_equal(clock_ms_until(0, INT64_MAX, INT_MAX), INT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_truncates),
        cmocka_unit_test(test_ms_until),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
