/* test_signcfg: where the daemons' keys come from (file or SALVO_SIGNING_KEYS, the file first),
 * that the variable never survives startup, and the refusal to start without a key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "signcfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV_KEYS "ke:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

static void clear_env(void)
{
    unsetenv(SIGN_ENV_KEYS);
    unsetenv(SIGN_ENV_FILE);
}

static void test_no_key(void **state)
{
    (void)state;
    clear_env();
    sign_ring *r = (sign_ring *)1;
    assert_int_equal(signcfg_load(NULL, false, &r), ERR_NOTFOUND);
    assert_null(r);
    r = (sign_ring *)1;
    assert_int_equal(signcfg_load("", true, &r), ERR_OK); /* --allow-unsigned: run without */
    assert_null(r);
}

static void test_env_keys_are_scrubbed(void **state)
{
    (void)state;
    clear_env();
    setenv(SIGN_ENV_KEYS, ENV_KEYS, 1);
    sign_ring *r = NULL;
    assert_int_equal(signcfg_load(NULL, false, &r), ERR_OK);
    assert_string_equal(sign_ring_kid(r, 0), "ke");
    assert_null(getenv(SIGN_ENV_KEYS)); /* command jobs must not inherit it */
    sign_ring_free(r);
}

static void test_file_wins_and_env_is_scrubbed_anyway(void **state)
{
    (void)state;
    char dir[] = "/tmp/test-signcfg-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/key", dir);
    assert_int_equal(sign_keygen(path, "kf", err, sizeof err), ERR_OK);
    clear_env();
    setenv(SIGN_ENV_KEYS, ENV_KEYS, 1);
    sign_ring *r = NULL;
    assert_int_equal(signcfg_load(path, false, &r), ERR_OK);
    assert_string_equal(sign_ring_kid(r, 0), "kf");
    assert_int_equal(sign_ring_count(r), 1);
    assert_null(getenv(SIGN_ENV_KEYS));
    sign_ring_free(r);
    unlink(path);
    rmdir(dir);
}

static void test_broken_keys_fail_even_when_unsigned_is_allowed(void **state)
{
    (void)state;
    clear_env();
    sign_ring *r = NULL;
    /* A key that was meant to be there but is broken is an error, never "run unsigned". */
    assert_int_equal(signcfg_load("/nonexistent/salvo.key", true, &r), ERR_IO);
    assert_null(r);
    setenv(SIGN_ENV_KEYS, "k1:tooshort", 1);
    assert_int_equal(signcfg_load(NULL, true, &r), ERR_PARSE);
    assert_null(r);
    assert_null(getenv(SIGN_ENV_KEYS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_key),
        cmocka_unit_test(test_env_keys_are_scrubbed),
        cmocka_unit_test(test_file_wins_and_env_is_scrubbed_anyway),
        cmocka_unit_test(test_broken_keys_fail_even_when_unsigned_is_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
