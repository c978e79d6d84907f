/* test_outcome: the worker's decision table, row by row. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "outcome.h"

#include <string.h>

/* The production table lives in topology.c; the decision must not depend on its exact values,
 * so the tests use their own. */
static const int64_t delays[5] = {1000, 5000, 30000, 120000, 600000};
static const uint16_t only_201[] = {201};
static const uint16_t ok_set[] = {200, 404};

typedef struct run_row {
    job_kind kind;
    outcome_exec exec;
    int status;
    uint32_t attempt, max_attempts;
    const uint16_t *ok;
    size_t nok;
    int64_t retry_after_ms;
    outcome_action want;
    int want_level;
    const char *want_reason;
} run_row;

static const run_row run_rows[] = {
    {JOB_HTTP, OUTCOME_EXEC_DONE, 200, 1, 4, NULL, 0, -1, OUTCOME_ACK, 0, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 204, 4, 4, NULL, 0, -1, OUTCOME_ACK, 0, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 299, 1, 1, NULL, 0, -1, OUTCOME_ACK, 0, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 500, 1, 4, NULL, 0, -1, OUTCOME_RETRY, 1, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 503, 2, 4, NULL, 0, -1, OUTCOME_RETRY, 2, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 502, 3, 4, NULL, 0, -1, OUTCOME_RETRY, 3, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 500, 4, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "attempts-exhausted"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 500, 7, 20, NULL, 0, -1, OUTCOME_RETRY, 5, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 408, 1, 2, NULL, 0, -1, OUTCOME_RETRY, 1, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 429, 1, 2, NULL, 0, 20000, OUTCOME_RETRY, 3, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 429, 2, 2, NULL, 0, 20000, OUTCOME_DEAD, 0, "attempts-exhausted"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 503, 1, 3, NULL, 0, 5000, OUTCOME_RETRY, 2, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 404, 1, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "http-404"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 400, 1, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "http-400"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 401, 1, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "http-401"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 302, 1, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "http-302"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 200, 1, 4, only_201, 1, -1, OUTCOME_DEAD, 0, "http-200"},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 201, 1, 4, only_201, 1, -1, OUTCOME_ACK, 0, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 404, 1, 4, ok_set, 2, -1, OUTCOME_ACK, 0, ""},
    {JOB_HTTP, OUTCOME_EXEC_DONE, 500, 1, 4, ok_set, 2, -1, OUTCOME_RETRY, 1, ""},
    {JOB_HTTP, OUTCOME_EXEC_TIMEOUT, 0, 1, 4, NULL, 0, -1, OUTCOME_RETRY, 1, ""},
    {JOB_HTTP, OUTCOME_EXEC_TIMEOUT, 0, 4, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "attempts-exhausted"},
    {JOB_HTTP, OUTCOME_EXEC_CONNECT, 0, 2, 3, NULL, 0, -1, OUTCOME_RETRY, 2, ""},
    {JOB_HTTP, OUTCOME_EXEC_CONNECT, 0, 1, 1, NULL, 0, -1, OUTCOME_DEAD, 0, "attempts-exhausted"},
    {JOB_HTTP, OUTCOME_EXEC_INVALID, 0, 1, 4, NULL, 0, -1, OUTCOME_DEAD, 0,
     "request-invalid: boom"},
    {JOB_COMMAND, OUTCOME_EXEC_DONE, 0, 1, 4, NULL, 0, -1, OUTCOME_ACK, 0, ""},
    {JOB_COMMAND, OUTCOME_EXEC_DONE, 3, 1, 4, NULL, 0, -1, OUTCOME_RETRY, 1, ""},
    {JOB_COMMAND, OUTCOME_EXEC_DONE, 3, 4, 4, NULL, 0, -1, OUTCOME_DEAD, 0, "attempts-exhausted"},
    {JOB_COMMAND, OUTCOME_EXEC_TIMEOUT, 0, 1, 2, NULL, 0, -1, OUTCOME_RETRY, 1, ""},
    {JOB_COMMAND, OUTCOME_EXEC_INVALID, 0, 1, 2, NULL, 0, -1, OUTCOME_DEAD, 0,
     "request-invalid: boom"},
};

static void test_after_run_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof run_rows / sizeof run_rows[0]; i++) {
        const run_row *row = &run_rows[i];
        outcome_run r = {row->kind, row->exec, row->status,         row->attempt, row->max_attempts,
                         row->ok,   row->nok,  row->retry_after_ms, "boom"};
        outcome o;
        memset(&o, 0x5a, sizeof o);
        outcome_after_run(&r, delays, 5, &o);
        print_message("row %zu: status %d attempt %u/%u\n", i, row->status, row->attempt,
                      row->max_attempts);
        assert_int_equal(o.action, row->want);
        assert_int_equal(o.retry_level, row->want_level);
        assert_string_equal(o.reason, row->want_reason);
        assert_non_null(o.label);
    }
}

typedef struct admit_row {
    int64_t delivery_count;
    int decode_rc;
    const char *decode_reason;
    bool duplicate, allowed;
    const char *expand_error;
    int64_t ahead_ms; /* due - now */
    outcome_action want;
    const char *want_reason;
    const char *want_label;
} admit_row;

static const admit_row admit_rows[] = {
    {0, ERR_OK, NULL, false, true, NULL, 0, OUTCOME_RUN, "", "run"},
    {0, ERR_OK, NULL, false, true, NULL, -60000, OUTCOME_RUN, "", "run"},
    {0, ERR_OK, NULL, false, true, NULL, 1, OUTCOME_HOLD, "", "hold"},
    {0, ERR_OK, NULL, false, true, NULL, 2000, OUTCOME_HOLD, "", "hold"},
    {0, ERR_OK, NULL, false, true, NULL, 5000, OUTCOME_HOLD, "", "hold"},
    {0, ERR_OK, NULL, false, true, NULL, 5001, OUTCOME_DEAD, "clock-skew", "dead"},
    {0, ERR_OK, NULL, false, true, NULL, 86400000, OUTCOME_DEAD, "clock-skew", "dead"},
    {4, ERR_OK, NULL, false, true, NULL, 0, OUTCOME_RUN, "", "run"},
    {5, ERR_OK, NULL, false, true, NULL, 0, OUTCOME_DEAD, "delivery-limit", "dead"},
    {9, ERR_WIRE_FORMAT, "malformed: x", false, true, NULL, 0, OUTCOME_DEAD, "delivery-limit",
     "dead"},
    {0, ERR_WIRE_FORMAT, "malformed: depth 9 > 8", false, true, NULL, 0, OUTCOME_DEAD,
     "malformed: depth 9 > 8", "dead"},
    {0, ERR_WIRE_SIZE, "too-large: 300000 bytes", false, true, NULL, 0, OUTCOME_DEAD,
     "too-large: 300000 bytes", "dead"},
    {0, ERR_WIRE_SCHEMA, "bad-schema: http.url missing", false, true, NULL, 0, OUTCOME_DEAD,
     "bad-schema: http.url missing", "dead"},
    {0, ERR_WIRE_FORMAT, NULL, false, true, NULL, 0, OUTCOME_DEAD, "malformed: undecodable",
     "dead"},
    {0, ERR_OK, NULL, true, true, NULL, 0, OUTCOME_ACK, "", "duplicate"},
    {0, ERR_OK, NULL, true, false, NULL, 9000, OUTCOME_ACK, "", "duplicate"},
    {0, ERR_OK, NULL, false, false, NULL, 0, OUTCOME_DEAD, "command-not-allowed", "dead"},
    {0, ERR_OK, NULL, false, true, "url: too long", 0, OUTCOME_DEAD, "bad-template: url: too long",
     "dead"},
};

static void test_admit_table(void **state)
{
    (void)state;
    const int64_t now = 1764000000000;
    for (size_t i = 0; i < sizeof admit_rows / sizeof admit_rows[0]; i++) {
        const admit_row *row = &admit_rows[i];
        outcome_admit_in in = {
            row->delivery_count, row->decode_rc,    row->decode_reason,  row->duplicate,
            row->allowed,        row->expand_error, now + row->ahead_ms, now};
        outcome o;
        outcome_admit(&in, &o);
        print_message("admit row %zu\n", i);
        assert_int_equal(o.action, row->want);
        assert_string_equal(o.reason, row->want_reason);
        assert_string_equal(o.label, row->want_label);
    }
}

typedef struct start_row {
    uint32_t attempt;
    int64_t max_lateness, late;
    outcome_action want;
    const char *want_reason;
} start_row;

static const start_row start_rows[] = {
    {1, 0, 3600000, OUTCOME_RUN, ""}, /* no limit */
    {1, 1000, 1000, OUTCOME_RUN, ""}, /* exactly at the limit is still on time */
    {1, 1000, 1001, OUTCOME_MISSED, "late-1001ms"},
    {1, 50, -20, OUTCOME_RUN, ""},     /* early */
    {2, 1000, 60000, OUTCOME_RUN, ""}, /* retries wait on purpose */
};

static void test_start_table(void **state)
{
    (void)state;
    const int64_t due = 1764000000000;
    for (size_t i = 0; i < sizeof start_rows / sizeof start_rows[0]; i++) {
        const start_row *row = &start_rows[i];
        outcome o;
        outcome_start(row->attempt, due, row->max_lateness, due + row->late, &o);
        assert_int_equal(o.action, row->want);
        assert_string_equal(o.reason, row->want_reason);
    }
}

typedef struct level_row {
    uint32_t attempt;
    int64_t retry_after_ms;
    int want;
} level_row;

static const level_row level_rows[] = {
    {0, -1, 1},    {1, -1, 1},     {2, -1, 2},     {5, -1, 5},   {6, -1, 5},
    {99, -1, 5},   {1, 0, 1},      {1, 1000, 1},   {1, 1001, 2}, {1, 5000, 2},
    {1, 29999, 3}, {1, 120000, 4}, {1, 600001, 5}, {4, 2000, 4}, {2, 700000, 5},
};

static void test_retry_level(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof level_rows / sizeof level_rows[0]; i++) {
        const level_row *row = &level_rows[i];
        print_message("level row %zu\n", i);
        assert_int_equal(outcome_retry_level(row->attempt, row->retry_after_ms, delays, 5),
                         row->want);
    }
    /* A table of one level always answers 1. */
    assert_int_equal(outcome_retry_level(3, 99999, delays, 1), 1);
}

static void test_status_ok(void **state)
{
    (void)state;
    assert_true(outcome_status_ok(200, NULL, 0));
    assert_false(outcome_status_ok(199, NULL, 0));
    assert_false(outcome_status_ok(300, NULL, 0));
    assert_true(outcome_status_ok(404, ok_set, 2));
    assert_false(outcome_status_ok(201, ok_set, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_after_run_table), cmocka_unit_test(test_admit_table),
        cmocka_unit_test(test_start_table),     cmocka_unit_test(test_retry_level),
        cmocka_unit_test(test_status_ok),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
