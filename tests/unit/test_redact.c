/* test_redact: URL passwords masked in every shape a URL list can take; the argv warning. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"
#include "redact.h"

#include <string.h>

typedef struct row {
    const char *in, *out;
    bool has_password;
} row;

static const row rows[] = {
    {"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/", true},
    {"amqps://u:s3cret@localhost:5671/%2f", "amqps://u:***@localhost:5671/%2f", true},
    {"amqp://user@host/", "amqp://user@host/", false},
    {"amqp://host:5672/", "amqp://host:5672/", false},
    {"amqp://host/", "amqp://host/", false},
    {"", "", false},
    /* unencoded '@', '/', '#' and '?' inside the password: hidden whole */
    {"amqp://u:p@ss@h/", "amqp://u:***@h/", true},
    {"amqp://u:pa/ss@h:1/v", "amqp://u:***@h:1/v", true},
    {"amqp://u:a#b?c@h/", "amqp://u:***@h/", true},
    /* empty password: nothing to hide */
    {"amqp://u:@h/", "amqp://u:@h/", false},
    /* lists: each URL on its own */
    {"amqp://a:x1@h1:5672/,amqp://b:x2@h2:5672/", "amqp://a:***@h1:5672/,amqp://b:***@h2:5672/",
     true},
    {"amqp://h1/, amqp://b:x2@h2/", "amqp://h1/, amqp://b:***@h2/", true},
    /* no scheme */
    {"u:secret@h", "u:***@h", true},
    /* http targets too */
    {"https://api:tok3n@example.com/x?y=1", "https://api:***@example.com/x?y=1", true},
};

static void test_redact_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[256];
        redact_url(rows[i].in, buf, sizeof buf);
        if (strcmp(buf, rows[i].out) != 0)
            fail_msg("row %zu: %s -> %s, want %s", i, rows[i].in, buf, rows[i].out);
        if (redact_url_has_password(rows[i].in) != rows[i].has_password)
            fail_msg("row %zu: has_password wrong for %s", i, rows[i].in);
    }
}

/* Truncation never leaves the password's tail behind and always terminates. */
static void test_redact_truncates(void **state)
{
    (void)state;
    char buf[12];
    memset(buf, 'x', sizeof buf);
    redact_url("amqp://u:topsecret@h/", buf, sizeof buf);
    assert_string_equal(buf, "amqp://u:**");
    assert_null(strstr(buf, "top"));
    redact_url(NULL, buf, sizeof buf);
    assert_string_equal(buf, "");
    char one[1] = {'x'};
    redact_url("amqp://u:p@h/", one, sizeof one);
    assert_int_equal(one[0], '\0');
}

static void test_redact_warn_argv(void **state)
{
    (void)state;
    char *a1[] = {"prog", "--amqp-url", "amqp://u:pw@h/", NULL};
    char *a2[] = {"prog", "--amqp-url=amqp://u:pw@h/", NULL};
    char *a3[] = {"prog", "--amqp-url", "amqp://u@h/", "--threads", "2", NULL};
    char *a4[] = {"prog", "--", "--amqp-url=amqp://u:pw@h/", NULL};
    char *a5[] = {"prog", "--amqp-urlx=amqp://u:pw@h/", NULL};
    char *a6[] = {"prog", "--amqp-url", NULL};
    assert_true(redact_warn_argv(3, a1, "amqp-url", "SALVO_AMQP_URL"));
    assert_true(redact_warn_argv(2, a2, "amqp-url", "SALVO_AMQP_URL"));
    assert_false(redact_warn_argv(5, a3, "amqp-url", "SALVO_AMQP_URL"));
    assert_false(redact_warn_argv(3, a4, "amqp-url", "SALVO_AMQP_URL"));
    assert_false(redact_warn_argv(2, a5, "amqp-url", "SALVO_AMQP_URL"));
    assert_false(redact_warn_argv(2, a6, "amqp-url", "SALVO_AMQP_URL"));
}

int main(void)
{
    log_init(LOG_ERR, LOG_TEXT, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_table),
        cmocka_unit_test(test_redact_truncates),
        cmocka_unit_test(test_redact_warn_argv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
