/* test_config: default < env < flag, argv permutation, --help text, bad values, secrets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "err.h"

#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static const char *o_name, *o_password;
static int64_t o_count, o_timeout, o_pin;
static bool o_verbose;
static int o_format;
static const char *const formats[] = {"text", "json", NULL};

static const config_opt table[] = {
    {"name", "SALVO_TEST_NAME", CONFIG_STRING, &o_name, "dflt", "a name", NULL, 0, 0, 0},
    {"count", "SALVO_TEST_COUNT", CONFIG_INT, &o_count, "5", "a count", NULL, 1, 100, 0},
    {"timeout", "SALVO_TEST_TIMEOUT", CONFIG_DURATION, &o_timeout, "30s", "a timeout", NULL, 0, 0,
     0},
    {"verbose", "SALVO_TEST_VERBOSE", CONFIG_BOOL, &o_verbose, "false", "chatty", NULL, 0, 0, 0},
    {"format", "SALVO_TEST_FORMAT", CONFIG_ENUM, &o_format, "text", "log format", formats, 0, 0, 0},
    {"password", "SALVO_TEST_PASSWORD", CONFIG_STRING, &o_password, "hunter2", "broker password",
     NULL, 0, 0, CONFIG_SECRET},
    {"pin", "SALVO_TEST_PIN", CONFIG_INT, &o_pin, "1234", "a secret number", NULL, 0, 0,
     CONFIG_SECRET},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0},
};

static const char *const env_names[] = {
    "SALVO_TEST_NAME",   "SALVO_TEST_COUNT",    "SALVO_TEST_TIMEOUT", "SALVO_TEST_VERBOSE",
    "SALVO_TEST_FORMAT", "SALVO_TEST_PASSWORD", "SALVO_TEST_PIN"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
    return 0;
}

/* Run config_parse over a NULL-terminated argument list (argv[0] added). */
static int parse(char **args, int *optind_out, char *err, size_t cap, char ***argv_out)
{
    static char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"prog";
    while (args && *args)
        argv[argc++] = *args++;
    argv[argc] = NULL;
    if (argv_out)
        *argv_out = argv;
    return config_parse(table, argc, argv, optind_out, err, cap);
}

static void test_defaults(void **state)
{
    char err[256];
    int first = -1;
    (void)state;
    assert_int_equal(parse(NULL, &first, err, sizeof err, NULL), ERR_OK);
    assert_int_equal(first, 1);
    assert_string_equal(o_name, "dflt");
    assert_int_equal(o_count, 5);
    assert_int_equal(o_timeout, 30000);
    assert_false(o_verbose);
    assert_int_equal(o_format, 0);
    assert_string_equal(o_password, "hunter2");
}

static void test_precedence(void **state)
{
    static const struct {
        const char *env, *flag;
        int64_t want;
    } rows[] = {
        {NULL, NULL, 5}, {"7", NULL, 7}, {NULL, "9", 9}, {"7", "9", 9}, {"", NULL, 5}, /* empty */
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256];
        char *args[] = {(char *)"--count", (char *)rows[i].flag, NULL};
        clear_env(NULL);
        if (rows[i].env)
            setenv("SALVO_TEST_COUNT", rows[i].env, 1);
        assert_int_equal(parse(rows[i].flag ? args : NULL, NULL, err, sizeof err, NULL), ERR_OK);
        if (o_count != rows[i].want)
            fail_msg("row %zu: count %lld, want %lld", i, (long long)o_count,
                     (long long)rows[i].want);
    }
}

static void test_every_type_env_then_flag(void **state)
{
    char err[256];
    (void)state;
    setenv("SALVO_TEST_NAME", "envname", 1);
    setenv("SALVO_TEST_TIMEOUT", "1m", 1);
    setenv("SALVO_TEST_VERBOSE", "yes", 1);
    setenv("SALVO_TEST_FORMAT", "json", 1);
    assert_int_equal(parse(NULL, NULL, err, sizeof err, NULL), ERR_OK);
    assert_string_equal(o_name, "envname");
    assert_int_equal(o_timeout, 60000);
    assert_true(o_verbose);
    assert_int_equal(o_format, 1);
    char *args[] = {(char *)"--name=flagname",
                    (char *)"--timeout",
                    (char *)"250ms",
                    (char *)"--no-verbose",
                    (char *)"--format",
                    (char *)"text",
                    NULL};
    assert_int_equal(parse(args, NULL, err, sizeof err, NULL), ERR_OK);
    assert_string_equal(o_name, "flagname");
    assert_int_equal(o_timeout, 250);
    assert_false(o_verbose);
    assert_int_equal(o_format, 0);
}

static void test_bool_forms(void **state)
{
    static const struct {
        const char *arg;
        bool want;
    } rows[] = {{"--verbose", true},
                {"--verbose=false", false},
                {"--verbose=ON", true},
                {"--no-verbose", false},
                {"--verbose=0", false}};
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256];
        char *args[] = {(char *)rows[i].arg, NULL};
        o_verbose = !rows[i].want;
        assert_int_equal(parse(args, NULL, err, sizeof err, NULL), ERR_OK);
        assert_int_equal(o_verbose, rows[i].want);
    }
}

static void test_positionals(void **state)
{
    char err[256];
    int first = 0;
    char **argv = NULL;
    char *args[] = {(char *)"a",  (char *)"--count", (char *)"3",  (char *)"b",
                    (char *)"--", (char *)"--c",     (char *)"-x", NULL};
    (void)state;
    assert_int_equal(parse(args, &first, err, sizeof err, &argv), ERR_OK);
    assert_int_equal(o_count, 3);
    assert_int_equal(first, 4); /* prog --count 3 -- | a b --c -x */
    assert_string_equal(argv[first], "a");
    assert_string_equal(argv[first + 1], "b");
    assert_string_equal(argv[first + 2], "--c");
    assert_string_equal(argv[first + 3], "-x");
}

static void test_help(void **state)
{
    char err[256];
    char *args[] = {(char *)"x", (char *)"--help", NULL};
    char *args_h[] = {(char *)"-h", NULL};
    (void)state;
    assert_int_equal(parse(args, NULL, err, sizeof err, NULL), CONFIG_HELP);
    assert_int_equal(parse(args_h, NULL, err, sizeof err, NULL), CONFIG_HELP);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_usage(f, "prog [options]", table);
    fclose(f);
    static const char *const must[] = {
        "Usage: prog [options]",
        "--count N",
        "SALVO_TEST_COUNT",
        "default 5",
        "a count",
        "--timeout DURATION",
        "default 30s",
        "one of text, json",
        "SALVO_TEST_PASSWORD",
        "(secret)",
        "--help",
    };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!strstr(text, must[i]))
            fail_msg("usage lacks '%s':\n%s", must[i], text);
    }
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "1234"));
    free(text);
}

static void test_bad_values(void **state)
{
    static const struct {
        const char *env_name, *env_val; /* optional */
        const char *a1, *a2;
        const char *want, *never;
    } rows[] = {
        {NULL, NULL, "--count", "abc", "--count: invalid value 'abc': expected an integer", NULL},
        {NULL, NULL, "--count", "0", "--count: 0 is out of range 1..100", NULL},
        {NULL, NULL, "--count=101", NULL, "--count: 101 is out of range 1..100", NULL},
        {NULL, NULL, "--timeout", "5parsecs", "--timeout: invalid value '5parsecs'", NULL},
        {NULL, NULL, "--format", "xml", "--format: invalid value 'xml'", NULL},
        {NULL, NULL, "--verbose=maybe", NULL, "--verbose: invalid value 'maybe'", NULL},
        {NULL, NULL, "--cuont", "3", "unknown option '--cuont' (did you mean '--count'?)", NULL},
        {NULL, NULL, "--zzzzzzzz", NULL, "unknown option '--zzzzzzzz' (see --help)", NULL},
        {NULL, NULL, "--count", NULL, "--count: missing value", NULL},
        {NULL, NULL, "-x", NULL, "unknown option '-x'", NULL},
        {NULL, NULL, "--no-count", NULL, "unknown option '--no-count'", NULL},
        {NULL, NULL, "--pin", "12ab", "--pin: invalid value", "12ab"},
        {NULL, NULL, "--passwrd=s3cret", NULL, "unknown option '--passwrd'", "s3cret"},
        {"SALVO_TEST_COUNT", "lots", NULL, NULL, "SALVO_TEST_COUNT: invalid value 'lots'", NULL},
        {"SALVO_TEST_PIN", "xyz9", NULL, NULL, "SALVO_TEST_PIN: invalid value", "xyz9"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char err[256] = "";
        char *args[] = {(char *)rows[i].a1, (char *)rows[i].a2, NULL};
        clear_env(NULL);
        if (rows[i].env_name)
            setenv(rows[i].env_name, rows[i].env_val, 1);
        int rc = parse(rows[i].a1 ? args : NULL, NULL, err, sizeof err, NULL);
        if (rc != ERR_INVAL || !strstr(err, rows[i].want))
            fail_msg("row %zu: rc %d err '%s', want '%s'", i, rc, err, rows[i].want);
        if (rows[i].never && strstr(err, rows[i].never))
            fail_msg("row %zu: secret '%s' echoed in '%s'", i, rows[i].never, err);
    }
}

static void test_duration(void **state)
{
    static const struct {
        const char *s;
        int rc;
        int64_t ms;
    } rows[] = {
        {"250ms", ERR_OK, 250},
        {"30s", ERR_OK, 30000},
        {"5m", ERR_OK, 300000},
        {"1h", ERR_OK, 3600000},
        {"1h30m", ERR_OK, 5400000},
        {"90", ERR_OK, 90000},
        {"0", ERR_OK, 0},
        {"1d", ERR_OK, 86400000},
        {"1m30s500ms", ERR_OK, 90500},
        {"", ERR_PARSE, 0},
        {"s", ERR_PARSE, 0},
        {"1x", ERR_PARSE, 0},
        {"30m1h", ERR_PARSE, 0},
        {"1.5s", ERR_PARSE, 0},
        {"-5s", ERR_PARSE, 0},
        {"1h1h", ERR_PARSE, 0},
        {"5 s", ERR_PARSE, 0},
        {"10parsecs", ERR_PARSE, 0},
        {"9999999999999999999s", ERR_PARSE, 0},
        {"99999999999999999", ERR_PARSE, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t ms = -1;
        int rc = config_parse_duration(rows[i].s, &ms);
        if (rc != rows[i].rc || (rc == ERR_OK && ms != rows[i].ms))
            fail_msg("'%s': rc %d ms %lld", rows[i].s, rc, (long long)ms);
    }
}

static void test_distance(void **state)
{
    static const struct {
        const char *a, *b;
        size_t d;
    } rows[] = {
        {"", "", 0},
        {"timeout", "timeout", 0},
        {"timout", "timeout", 1},
        {"tiemout", "timeout", 2},
        {"", "abc", 3},
        {"kitten", "sitting", 3},
        {"count", "cuont", 2},
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(config_distance(rows[i].a, rows[i].b), rows[i].d);
}

/* SALVO_X_FILE fills SALVO_X from a file (trailing newline cut) and goes away; conflicts and
 * unreadable, empty or oversized files are errors that never show the value. */
static void test_env_from_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX", err[256] = "";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "amqp://u:s3cret@h/\n\n", 20), 20);
    close(fd);
    unsetenv("SALVO_TEST_SECRET");
    unsetenv("SALVO_TEST_SECRET_FILE");
    assert_int_equal(config_env_from_file("SALVO_TEST_SECRET", err, sizeof err), ERR_OK);
    assert_null(getenv("SALVO_TEST_SECRET")); /* nothing set: nothing done */
    setenv("SALVO_TEST_SECRET_FILE", path, 1);
    assert_int_equal(config_env_from_file("SALVO_TEST_SECRET", err, sizeof err), ERR_OK);
    assert_string_equal(getenv("SALVO_TEST_SECRET"), "amqp://u:s3cret@h/");
    assert_null(getenv("SALVO_TEST_SECRET_FILE"));
    /* Both set. */
    setenv("SALVO_TEST_SECRET_FILE", path, 1);
    assert_int_equal(config_env_from_file("SALVO_TEST_SECRET", err, sizeof err), ERR_INVAL);
    assert_string_equal(err, "set SALVO_TEST_SECRET or SALVO_TEST_SECRET_FILE, not both");
    unsetenv("SALVO_TEST_SECRET");
    /* Empty (white space only), missing, too large. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, " \n", 2), 2);
    close(fd);
    assert_int_equal(config_env_from_file("SALVO_TEST_SECRET", err, sizeof err), ERR_INVAL);
    assert_non_null(strstr(err, "is empty"));
    assert_null(getenv("SALVO_TEST_SECRET"));
    setenv("SALVO_TEST_SECRET_FILE", "/nonexistent/secret", 1);
    assert_int_equal(config_env_from_file("SALVO_TEST_SECRET", err, sizeof err), ERR_INVAL);
    assert_string_equal(err, "SALVO_TEST_SECRET_FILE: cannot read /nonexistent/secret");
    setenv("SALVO_TEST_SECRET_FILE", "/dev/zero", 1);
    assert_int_equal(config_env_from_file("SALVO_TEST_SECRET", err, sizeof err), ERR_INVAL);
    assert_non_null(strstr(err, "larger than"));
    unsetenv("SALVO_TEST_SECRET_FILE");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_precedence, clear_env),
        cmocka_unit_test_setup(test_every_type_env_then_flag, clear_env),
        cmocka_unit_test_setup(test_bool_forms, clear_env),
        cmocka_unit_test_setup(test_positionals, clear_env),
        cmocka_unit_test_setup(test_help, clear_env),
        cmocka_unit_test_setup(test_bad_values, clear_env),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_env_from_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
