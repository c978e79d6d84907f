/* test_worker_result: the result record's exact JSON, and the UTF-8 cleaning of replies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "result.h"

#include <stdlib.h>
#include <string.h>

#define DUE_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static void test_started(void **state)
{
    (void)state;
    result_rec r = {
        .id = "s@20260101T000000Z#4",
        .schedule = "s",
        .index = 4,
        .attempt = 2,
        .outcome = "retry",
        .status = 503,
        .due_ms = DUE_MS,
        .started_ns = (DUE_MS + 12) * CLOCK_NS_PER_MS + 345678,
        .finished_ns = (DUE_MS + 2012) * CLOCK_NS_PER_MS + 999999,
        .worker = "host:42",
        .response = "busy \"now\"\n",
        .response_len = 11,
        .truncated = true,
    };
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(result_encode(&r, &out, &len), ERR_OK);
    const char *want =
        "{\"id\":\"s@20260101T000000Z#4\",\"schedule\":\"s\",\"index\":4,\"attempt\":2,"
        "\"outcome\":\"retry\",\"status\":503,\"scheduled\":\"2026-01-01T00:00:00.000Z\","
        "\"started\":\"2026-01-01T00:00:00.012Z\",\"lateness_ms\":12,\"duration_ms\":2000,"
        "\"finished\":\"2026-01-01T00:00:02.012Z\",\"worker\":\"host:42\","
        "\"response\":\"busy \\\"now\\\"\\u000a\",\"truncated\":true}";
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_never_started(void **state)
{
    (void)state;
    result_rec r = {
        .id = "s@20260101T000000Z#0",
        .schedule = "s",
        .attempt = 1,
        .outcome = "missed",
        .reason = "late-1500ms",
        .error = "",
        .due_ms = DUE_MS,
        .finished_ns = (DUE_MS + 1500) * CLOCK_NS_PER_MS,
        .worker = "w:1",
    };
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(result_encode(&r, &out, &len), ERR_OK);
    const char *want =
        "{\"id\":\"s@20260101T000000Z#0\",\"schedule\":\"s\",\"index\":0,\"attempt\":1,"
        "\"outcome\":\"missed\",\"status\":0,\"reason\":\"late-1500ms\","
        "\"scheduled\":\"2026-01-01T00:00:00.000Z\",\"started\":null,\"lateness_ms\":null,"
        "\"duration_ms\":null,\"finished\":\"2026-01-01T00:00:01.500Z\",\"worker\":\"w:1\","
        "\"response\":\"\",\"truncated\":false}";
    assert_string_equal(out, want);
    free(out);
}

typedef struct utf8_row {
    const char *in;
    size_t len;
    const char *want;
} utf8_row;

static void test_utf8_clean(void **state)
{
    (void)state;
    static const utf8_row rows[] = {
        {"plain", 5, "plain"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\xe2\x82\xac\xf0\x9f\x98\x80", 7, "\xe2\x82\xac\xf0\x9f\x98\x80"},
        {"a\xffz", 3, "a\xef\xbf\xbdz"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* cut short */
        {"a\0b", 3,
         "a\xef\xbf\xbd"
         "b"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = 0;
        char *out = result_utf8_clean(rows[i].in, rows[i].len, &n);
        assert_non_null(out);
        assert_string_equal(out, rows[i].want);
        assert_int_equal(n, strlen(rows[i].want));
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_started),
        cmocka_unit_test(test_never_started),
        cmocka_unit_test(test_utf8_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
