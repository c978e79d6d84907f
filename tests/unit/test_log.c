/* test_log: JSON lines, and the key=value words of a message copied as JSON fields (numbers,
 * "N/M" pairs, strings, reserved and repeated keys), captured from stderr through a pipe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Log one message with stderr on a pipe; returns the line from "level" on (the time varies). */
static const char *capture(const char *job, const char *msg)
{
    static char line[16384];
    int fds[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(fds), 0);
    dup2(fds[1], STDERR_FILENO);
    log_msg(LOG_INFO, job, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    assert_true(n > 0);
    line[n] = '\0';
    const char *from = strstr(line, "\"level\"");
    assert_non_null(from);
    assert_int_equal(strncmp(line, "{\"ts\":\"", 7), 0);
    return from;
}

static void test_json_fields(void **state)
{
    (void)state;
    static const struct {
        const char *job, *msg, *want;
    } rows[] = {
        {"s@20260101T000000Z#0", "started schedule=s attempt=1/3 lateness_ms=12",
         "\"level\":\"info\",\"comp\":\"test\",\"job\":\"s@20260101T000000Z#0\","
         "\"msg\":\"started schedule=s attempt=1/3 lateness_ms=12\",\"schedule\":\"s\","
         "\"attempt\":1,\"attempt_max\":3,\"lateness_ms\":12}\n"},
        {NULL, "fired job=a (+2 more) due=2026-01-01T00:00:00Z lateness_ms=-1.5 x=1.",
         "\"level\":\"info\",\"comp\":\"test\",\"msg\":\"fired job=a (+2 more) "
         "due=2026-01-01T00:00:00Z lateness_ms=-1.5 x=1.\",\"due\":\"2026-01-01T00:00:00Z\","
         "\"lateness_ms\":-1.5,\"x\":\"1.\"}\n"},
        {NULL, "dead reason=malformed: \"q\" status=404 status=500 =7 Bad=1 a=",
         "\"level\":\"info\",\"comp\":\"test\",\"msg\":\"dead reason=malformed: \\\"q\\\" "
         "status=404 status=500 =7 Bad=1 a=\",\"reason\":\"malformed\",\"status\":404}\n"},
        {NULL, "no pairs here",
         "\"level\":\"info\",\"comp\":\"test\",\"msg\":\"no pairs here\"}\n"},
    };
    log_init(LOG_INFO, LOG_JSON, "test");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_string_equal(capture(rows[i].job, rows[i].msg), rows[i].want);
}

static void test_text_unchanged(void **state)
{
    (void)state;
    log_init(LOG_INFO, LOG_TEXT, "test");
    int fds[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(fds), 0);
    dup2(fds[1], STDERR_FILENO);
    log_msg(LOG_INFO, "id", "finished schedule=s status=200");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char line[512];
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    assert_true(n > 0);
    line[n] = '\0';
    assert_non_null(strstr(line, " info   test job=id finished schedule=s status=200\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_text_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
