/* test_sign: HMAC vectors computed with `openssl dgst -mac HMAC`, rotation, verify failures,
 * key parsing errors, key files and the environment, key generation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "sign.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Key 00 01 .. 1f, and the 33 ASCII bytes "rotation-key-two-0123456789abcdef". */
#define K1_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define K2_B64 "cm90YXRpb24ta2V5LXR3by0wMTIzNDU2Nzg5YWJjZGVm"
#define MSG_ID "nightly@20240101T000000Z#0"
#define DUE    INT64_C(1704067200000)
static const char body[] = "hello\0world"; /* 11 bytes: the NUL must be signed too */
#define BODY_LEN 11

/* printf 'salvo-v1\nk1\nnightly@20240101T000000Z#0\n1704067200000\nhello\0world' |
 *   openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f   (and the k2 key for SIG_K2) */
#define SIG_K1 "3f6a5b0330c9366fe039c0ad94d4a0c887fedbb00b0178d1fff111768240c85e"
#define SIG_K2 "62e025e51603fceb748f4a8e9a5cab985a0f0b4fcdeff6559a051c275222bcbe"

static char tmpdir[64];

static sign_ring *ring_of(const char *text)
{
    sign_ring *r = NULL;
    char err[256] = "";
    int rc = sign_ring_parse(text, "test", &r, err, sizeof err);
    if (rc != ERR_OK)
        print_error("parse failed: %s\n", err);
    assert_int_equal(rc, ERR_OK);
    return r;
}

static void test_known_answer(void **state)
{
    (void)state;
    sign_ring *r = ring_of("k1:" K1_B64);
    char kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1];
    assert_int_equal(sign_compute(r, kid, MSG_ID, DUE, body, BODY_LEN, sig), ERR_OK);
    assert_string_equal(kid, "k1");
    assert_string_equal(sig, SIG_K1);
    char reason[128] = "";
    assert_int_equal(sign_verify(r, "k1", sig, MSG_ID, DUE, body, BODY_LEN, reason, sizeof reason),
                     ERR_OK);
    sign_ring_free(r);
}

/* Secrets of 16, 17 and 18 bytes exercise both base64 padding lengths and none. */
static void test_base64_padding(void **state)
{
    (void)state;
    static const struct {
        const char *key, *sig;
    } rows[] = {
        {"kp:YWJjZGVmZ2hpamtsbW5vcA==",
         "3b493700a2aa99e416182224802171fc94df4e9de0f8048502ae9f312c54c203"},
        {"kp:YWJjZGVmZ2hpamtsbW5vcHE=",
         "db2f65ab842e29a7388148d7d1b9cb9dcf8a255bf61fa357805290f63a65752d"},
        {"kp:YWJjZGVmZ2hpamtsbW5vcHFy",
         "55333c7374e04ca91dfa6519468a86da50c2b6910d131a53657c4a716feac656"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sign_ring *r = ring_of(rows[i].key);
        char kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1];
        assert_int_equal(sign_compute(r, kid, "id-1", 0, NULL, 0, sig), ERR_OK);
        assert_string_equal(sig, rows[i].sig);
        sign_ring_free(r);
    }
}

static void test_negative_due_empty_body(void **state)
{
    (void)state;
    sign_ring *r = ring_of("k1:" K1_B64);
    char kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1];
    assert_int_equal(sign_compute(r, kid, "m", -5, NULL, 0, sig), ERR_OK);
    assert_string_equal(sig, "dcf0882c408842a7b8c40bf9e945dbf5b5d2054a5e120941f2520615cc01d257");
    assert_int_equal(sign_compute(r, kid, "a\nb", 0, NULL, 0, sig), ERR_INVAL);
    assert_int_equal(sign_compute(r, kid, NULL, 0, NULL, 0, sig), ERR_INVAL);
    sign_ring_free(r);
}

static void test_rotation(void **state)
{
    (void)state;
    sign_ring *old_first = ring_of("k1:" K1_B64 ",k2:" K2_B64);
    sign_ring *new_first = ring_of(" k2:" K2_B64 "\n\nk1:" K1_B64 " ");
    assert_int_equal(sign_ring_count(old_first), 2);
    assert_string_equal(sign_ring_kid(new_first, 0), "k2");
    assert_string_equal(sign_ring_kid(new_first, 1), "k1");
    assert_null(sign_ring_kid(new_first, 2));
    char kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1], reason[128];
    assert_int_equal(sign_compute(new_first, kid, MSG_ID, DUE, body, BODY_LEN, sig), ERR_OK);
    assert_string_equal(kid, "k2");
    assert_string_equal(sig, SIG_K2);
    /* A worker still signing-configured with k1 first accepts the rotated producer's messages,
     * and the new worker accepts the old producer's. */
    assert_int_equal(
        sign_verify(old_first, "k2", SIG_K2, MSG_ID, DUE, body, BODY_LEN, reason, sizeof reason),
        ERR_OK);
    assert_int_equal(
        sign_verify(new_first, "k1", SIG_K1, MSG_ID, DUE, body, BODY_LEN, reason, sizeof reason),
        ERR_OK);
    /* The right signature under the wrong key id is still a mismatch. */
    assert_int_equal(
        sign_verify(new_first, "k1", SIG_K2, MSG_ID, DUE, body, BODY_LEN, reason, sizeof reason),
        ERR_SIGNATURE);
    assert_string_equal(reason, "bad-signature: mismatch");
    sign_ring_free(old_first);
    sign_ring_free(new_first);
}

static void test_verify_failures(void **state)
{
    (void)state;
    static const char upper[] = "3F6A5B0330C9366FE039C0AD94D4A0C887FEDBB00B0178D1FFF111768240C85E";
    static const struct {
        const char *kid, *sig, *id;
        int64_t due;
        const char *body;
        size_t len;
        int rc;
        const char *reason;
    } rows[] = {
        {"k1", upper, MSG_ID, DUE, body, BODY_LEN, ERR_OK, ""},
        {"k3", SIG_K1, MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE,
         "bad-signature: unknown key 'k3'"},
        {"ev'il\n\"x", SIG_K1, MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE,
         "bad-signature: unknown key 'ev?il??x'"},
        {"k1", SIG_K1, MSG_ID, DUE, "hello\0worle", BODY_LEN, ERR_SIGNATURE,
         "bad-signature: mismatch"},
        {"k1", SIG_K1, MSG_ID, DUE, body, BODY_LEN - 1, ERR_SIGNATURE, "bad-signature: mismatch"},
        {"k1", SIG_K1, "nightly@20240101T000000Z#1", DUE, body, BODY_LEN, ERR_SIGNATURE,
         "bad-signature: mismatch"},
        {"k1", SIG_K1, MSG_ID, DUE + 1, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: mismatch"},
        /* One bit flipped in the first and in the last signature byte. */
        {"k1", "2f6a5b0330c9366fe039c0ad94d4a0c887fedbb00b0178d1fff111768240c85e", MSG_ID, DUE,
         body, BODY_LEN, ERR_SIGNATURE, "bad-signature: mismatch"},
        {"k1", "3f6a5b0330c9366fe039c0ad94d4a0c887fedbb00b0178d1fff111768240c85f", MSG_ID, DUE,
         body, BODY_LEN, ERR_SIGNATURE, "bad-signature: mismatch"},
        {"k1", SIG_K1, NULL, DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: mismatch"},
        {"k1", SIG_K1, "a\nb", DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: malformed"},
        {"k1", SIG_K1 "0", MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: malformed"},
        {"k1", "zz6a5b0330c9366fe039c0ad94d4a0c887fedbb00b0178d1fff111768240c85e", MSG_ID, DUE,
         body, BODY_LEN, ERR_SIGNATURE, "bad-signature: malformed"},
        {NULL, SIG_K1, MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: missing"},
        {"", SIG_K1, MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: missing"},
        {"k1", NULL, MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: missing"},
        {"k1", "", MSG_ID, DUE, body, BODY_LEN, ERR_SIGNATURE, "bad-signature: missing"},
    };
    sign_ring *r = ring_of("k1:" K1_B64);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char reason[128] = "";
        int rc = sign_verify(r, rows[i].kid, rows[i].sig, rows[i].id, rows[i].due, rows[i].body,
                             rows[i].len, reason, sizeof reason);
        if (rc != rows[i].rc || strcmp(reason, rows[i].reason) != 0)
            fail_msg("row %zu: rc %d reason '%s'", i, rc, reason);
    }
    sign_ring_free(r);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *err;
    } rows[] = {
        {"k1:" K1_B64 ",nocolon" K1_B64, "test entry 2: expected keyid:base64secret"},
        {"# comment\n\nbad id!:" K1_B64, "test entry 3: key id must be 1-64 of"},
        {":" K1_B64, "test entry 1: key id must be"},
        {"k1:" K1_B64 "\nk2:!!!!", "test entry 2: key 'k2': secret is not base64"},
        {"k1:YWJ", "test entry 1: key 'k1': secret is not base64"},
        {"k1:YW=j", "test entry 1: key 'k1': secret is not base64"},
        {"k1:YWJj", "test entry 1: key 'k1': secret shorter than 16 bytes"},
        {"k1:" K1_B64 ",k1:" K2_B64, "test entry 2: key 'k1' appears twice"},
        {"k1:" K1_B64 ",k2:" K2_B64 ",k3:" K1_B64, "test entry 3: key 'k3': more than 2 keys"},
        {"", "test: no keys"},
        {" , # only a comment", "test: no keys"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sign_ring *r = (sign_ring *)&r; /* must come back NULL */
        char err[256] = "";
        int rc = sign_ring_parse(rows[i].text, "test", &r, err, sizeof err);
        if (rc != ERR_PARSE || strncmp(err, rows[i].err, strlen(rows[i].err)) != 0 || r)
            fail_msg("row %zu: rc %d err '%s'", i, rc, err);
        /* Messages never carry the secret. */
        assert_null(strstr(err, K1_B64));
        assert_null(strstr(err, "AAECAwQF"));
    }
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Run sign_ring_load with stderr captured; returns the rc, text gets what was logged. */
static int load_captured(const char *path, sign_ring **r, char *err, char *text, size_t cap)
{
    char cap_path[128];
    snprintf(cap_path, sizeof cap_path, "%s/stderr", tmpdir);
    int saved = dup(2), fd = open(cap_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    int rc = sign_ring_load(path, r, err, 256);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, text, cap - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

static void test_key_file(void **state)
{
    (void)state;
    char path[128], err[256] = "", logged[1024];
    snprintf(path, sizeof path, "%s/keys", tmpdir);
    write_file(path, "# salvo keys\r\nk2:" K2_B64 "\r\n\r\nk1:" K1_B64 "\r\n", 0600);
    sign_ring *r = NULL;
    assert_int_equal(load_captured(path, &r, err, logged, sizeof logged), ERR_OK);
    assert_string_equal(logged, "");
    assert_int_equal(sign_ring_count(r), 2);
    assert_string_equal(sign_ring_kid(r, 0), "k2");
    sign_ring_free(r);

    write_file(path, "k1:" K1_B64 "\n", 0644);
    assert_int_equal(load_captured(path, &r, err, logged, sizeof logged), ERR_OK);
    assert_non_null(strstr(logged, "mode 0644, wider than 0600"));
    assert_null(strstr(logged, K1_B64));
    sign_ring_free(r);

    /* In a file a comma is not a separator, and errors count lines. */
    write_file(path, "k1:" K1_B64 "\n# two\nk2:" K2_B64 ",k3:" K1_B64 "\n", 0600);
    assert_int_equal(load_captured(path, &r, err, logged, sizeof logged), ERR_PARSE);
    assert_null(r);
    char want[256];
    snprintf(want, sizeof want, "key file %s line 3: key 'k2': secret is not base64", path);
    assert_int_equal(strncmp(err, want, strlen(want)), 0);

    snprintf(path, sizeof path, "%s/absent", tmpdir);
    assert_int_equal(load_captured(path, &r, err, logged, sizeof logged), ERR_IO);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(load_captured(tmpdir, &r, err, logged, sizeof logged), ERR_IO);
}

static void test_from_env(void **state)
{
    (void)state;
    char err[256] = "", path[128];
    sign_ring *r = NULL;
    unsetenv(SIGN_ENV_FILE);
    unsetenv(SIGN_ENV_KEYS);
    assert_int_equal(sign_ring_from_env(&r, err, sizeof err), ERR_NOTFOUND);
    assert_null(r);

    setenv(SIGN_ENV_KEYS, "k1:" K1_B64 "\nk2:" K2_B64, 1);
    assert_int_equal(sign_ring_from_env(&r, err, sizeof err), ERR_OK);
    assert_int_equal(sign_ring_count(r), 2);
    assert_null(getenv(SIGN_ENV_KEYS)); /* spawned commands must not inherit it */
    sign_ring_free(r);

    /* The file wins over the variable. */
    snprintf(path, sizeof path, "%s/envkeys", tmpdir);
    write_file(path, "kf:" K2_B64 "\n", 0600);
    setenv(SIGN_ENV_FILE, path, 1);
    setenv(SIGN_ENV_KEYS, "k1:" K1_B64, 1);
    assert_int_equal(sign_ring_from_env(&r, err, sizeof err), ERR_OK);
    assert_string_equal(sign_ring_kid(r, 0), "kf");
    sign_ring_free(r);
    unsetenv(SIGN_ENV_FILE);
    unsetenv(SIGN_ENV_KEYS);
}

static void test_keygen(void **state)
{
    (void)state;
    char path[128], path2[128], err[256] = "";
    snprintf(path, sizeof path, "%s/gen1", tmpdir);
    snprintf(path2, sizeof path2, "%s/gen2", tmpdir);
    unlink(path);
    unlink(path2);
    mode_t old = umask(0); /* a careless umask must not widen the file */
    assert_int_equal(sign_keygen(path, "prod-2024", err, sizeof err), ERR_OK);
    assert_int_equal(sign_keygen(path2, NULL, err, sizeof err), ERR_OK);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* "prod-2024:" + 44 base64 characters (32 bytes) + "\n" */
    assert_int_equal(st.st_size, 10 + 44 + 1);
    sign_ring *a = NULL, *b = NULL;
    assert_int_equal(sign_ring_load(path, &a, err, sizeof err), ERR_OK);
    assert_int_equal(sign_ring_load(path2, &b, err, sizeof err), ERR_OK);
    assert_string_equal(sign_ring_kid(a, 0), "prod-2024");
    const char *kb = sign_ring_kid(b, 0);
    assert_int_equal(strlen(kb), 10);
    assert_int_equal(strspn(kb + 2, "0123456789abcdef"), 8);
    /* Two generated keys differ: the same message signs differently. */
    char k1[SIGN_KID_MAX + 1], k2[SIGN_KID_MAX + 1], s1[SIGN_HEX_LEN + 1], s2[SIGN_HEX_LEN + 1];
    assert_int_equal(sign_compute(a, k1, "x", 1, "y", 1, s1), ERR_OK);
    assert_int_equal(sign_compute(b, k2, "x", 1, "y", 1, s2), ERR_OK);
    assert_string_not_equal(s1, s2);
    sign_ring_free(a);
    sign_ring_free(b);

    assert_int_equal(sign_keygen(path, NULL, err, sizeof err), ERR_EXISTS);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 55); /* untouched */
    assert_int_equal(sign_keygen(path2, "bad:id", err, sizeof err), ERR_INVAL);
    sign_ring_free(NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_sign.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *names[] = {"keys", "stderr", "envkeys", "gen1", "gen2"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_base64_padding),
        cmocka_unit_test(test_negative_due_empty_body),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_verify_failures),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_from_env),
        cmocka_unit_test(test_keygen),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
