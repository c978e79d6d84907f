/* test_cli: the shared preamble: which arguments it answers, with which exit code, and where
 * the usage and version text go. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli.h"
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static FILE *usage_to; /* the stream the last usage call was given; NULL: not called */
static int usage_calls;

static void fake_usage(FILE *out)
{
    usage_to = out;
    usage_calls++;
}

/* Run cli_preamble with stdout sent to a temporary file; return what it printed there. */
static const char *run(int argc, char **argv, int *code)
{
    static char text[256];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    usage_to = NULL;
    usage_calls = 0;
    *code = cli_preamble(argc, argv, "salvo-x", fake_usage);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(text, 1, sizeof text - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
    return text;
}

static void test_preamble(void **state)
{
    (void)state;
    char version[64];
    snprintf(version, sizeof version, "salvo-x %s\n", SALVO_VERSION);
    static char *const none[] = {"salvo-x", NULL};
    static char *const help[] = {"salvo-x", "--help", NULL};
    static char *const h[] = {"salvo-x", "-h", "run", NULL};
    static char *const ver[] = {"salvo-x", "--version", NULL};
    static char *const run_cmd[] = {"salvo-x", "run", "--help", NULL};
    static char *const other[] = {"salvo-x", "--verbose", NULL};
    const struct {
        char *const *argv;
        int argc, code, calls;
        FILE *usage_to;
        const char *out;
    } rows[] = {
        {none, 1, 2, 1, stderr, ""},
        {help, 2, 0, 1, stdout, ""},
        {h, 3, 0, 1, stdout, ""},
        {ver, 2, 0, 0, NULL, version},
        {run_cmd, 3, CLI_CONTINUE, 0, NULL, ""}, /* a command's own --help is not ours */
        {other, 2, CLI_CONTINUE, 0, NULL, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int code;
        const char *out = run(rows[i].argc, (char **)rows[i].argv, &code);
        assert_int_equal(code, rows[i].code);
        assert_int_equal(usage_calls, rows[i].calls);
        assert_ptr_equal(usage_to, rows[i].usage_to);
        assert_string_equal(out, rows[i].out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preamble),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
