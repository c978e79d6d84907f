/* test_prodstate: the producer's state file: round trip, atomic replacement, damaged files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "prodstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/salvo-prodstate-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *name)
{
    static char buf[4096];
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_round_trip(void **state)
{
    (void)state;
    const prodstate_rec recs[] = {
        {"zeta", 0xffffffffffffffffULL, 1767225600},
        {"alpha job", 0x0123456789abcdefULL, 1},
        {"m", 0, 4102444800},
    };
    assert_int_equal(prodstate_save(dir, recs, 3), ERR_OK);
    prodstate st;
    assert_int_equal(prodstate_load(dir, &st), ERR_OK);
    assert_int_equal(st.n, 3);
    assert_string_equal(st.recs[0].name, "alpha job"); /* sorted by name */
    for (size_t i = 0; i < 3; i++) {
        const prodstate_rec *r = prodstate_find(&st, recs[i].name);
        assert_non_null(r);
        assert_int_equal(r->digest, recs[i].digest);
        assert_int_equal(r->last_s, recs[i].last_s);
    }
    assert_null(prodstate_find(&st, "alpha"));
    prodstate_fini(&st);
    assert_null(read_file(PRODSTATE_FILE ".tmp")); /* no temp file left behind */
}

static void test_missing_and_empty(void **state)
{
    (void)state;
    prodstate st;
    assert_int_equal(prodstate_load(dir, &st), ERR_NOTFOUND);
    assert_int_equal(st.n, 0);
    assert_null(prodstate_find(&st, "x"));
    prodstate_fini(&st);
    assert_int_equal(prodstate_save(dir, NULL, 0), ERR_OK);
    assert_int_equal(prodstate_load(dir, &st), ERR_OK);
    assert_int_equal(st.n, 0);
    prodstate_fini(&st);
}

/* Every kind of damage is detected: the caller starts fresh instead of trusting junk. */
static void test_damaged(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                                                       /* empty */
        "salvo-producer-state 2\nend 0\n",                        /* unknown version */
        "something else\nend 0\n",                                /* not a state file */
        "salvo-producer-state 1\n10 0000000000000001 a\n",        /* cut before the trailer */
        "salvo-producer-state 1\n10 0000000000000001 a\nend 2\n", /* count mismatch */
        "salvo-producer-state 1\nx 0000000000000001 a\nend 1\n",  /* instant not a number */
        "salvo-producer-state 1\n-5 0000000000000001 a\nend 1\n", /* negative instant */
        "salvo-producer-state 1\n10 00001 a\nend 1\n",            /* short digest */
        "salvo-producer-state 1\n10 0000000000000001\nend 1\n",   /* no name */
        "salvo-producer-state 1\n10 0000000000000001 a\nend 1",   /* last line cut short */
        "salvo-producer-state 1\nend 0\ntrailing\n",              /* text after the trailer */
        "salvo-producer-state 1\n1 0000000000000001 a\n2 0000000000000001 a\nend 2\n", /* dup */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(PRODSTATE_FILE, bad[i]);
        prodstate st;
        int rc = prodstate_load(dir, &st);
        if (rc != ERR_PARSE)
            fail_msg("case %zu: got %d, want ERR_PARSE", i, rc);
        assert_int_equal(st.n, 0);
        prodstate_fini(&st);
    }
}

/* When the new file cannot be written, the old one stays as it was. */
static void test_failed_save_keeps_old(void **state)
{
    (void)state;
    const prodstate_rec old = {"job", 7, 1000};
    assert_int_equal(prodstate_save(dir, &old, 1), ERR_OK);
    char before[4096];
    snprintf(before, sizeof before, "%s", read_file(PRODSTATE_FILE));
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, PRODSTATE_FILE);
    assert_int_equal(mkdir(tmp, 0755), 0); /* the temp path cannot be opened as a file */
    const prodstate_rec next = {"job", 7, 2000};
    assert_int_equal(prodstate_save(dir, &next, 1), ERR_IO);
    assert_string_equal(read_file(PRODSTATE_FILE), before);
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(prodstate_save(dir, &next, 1), ERR_OK);
    prodstate st;
    assert_int_equal(prodstate_load(dir, &st), ERR_OK);
    assert_int_equal(prodstate_find(&st, "job")->last_s, 2000);
    prodstate_fini(&st);
}

static void test_bad_name_and_new_dir(void **state)
{
    (void)state;
    const prodstate_rec nl = {"two\nlines", 1, 1};
    assert_int_equal(prodstate_save(dir, &nl, 1), ERR_INVAL);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/created", dir);
    const prodstate_rec ok = {"j", 1, 5};
    assert_int_equal(prodstate_save(sub, &ok, 1), ERR_OK);
    prodstate st;
    assert_int_equal(prodstate_load(sub, &st), ERR_OK);
    assert_int_equal(st.n, 1);
    prodstate_fini(&st);
}

static void test_lock(void **state)
{
    (void)state;
    int a = -1, b = -1;
    assert_int_equal(prodstate_lock(dir, &a), ERR_OK);
    assert_int_equal(prodstate_lock(dir, &b), ERR_EXISTS);
    close(a);
    assert_int_equal(prodstate_lock(dir, &b), ERR_OK);
    close(b);
}

/* The watermark's body: encode and decode in memory, as the broker carries it. */
static void test_encode_decode_buffer(void **state)
{
    (void)state;
    prodstate_rec recs[] = {{"zeta job", 0xfedcba9876543210ULL, 1767225600},
                            {"alpha", 1, 1767225610}};
    size_t len = 0, bad = 99;
    char *text = prodstate_encode(recs, 2, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    prodstate st;
    assert_int_equal(prodstate_decode(text, len, &st, &bad), ERR_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(st.n, 2);
    const prodstate_rec *r = prodstate_find(&st, "zeta job");
    assert_non_null(r);
    assert_true(r->digest == 0xfedcba9876543210ULL);
    assert_int_equal(r->last_s, 1767225600);
    assert_int_equal(prodstate_find(&st, "alpha")->last_s, 1767225610);
    prodstate_fini(&st);
    /* Cut short (no trailer), a bad line, and a name given twice are all refused. */
    static const char *const damaged[] = {
        "salvo-producer-state 1\n5 0000000000000001 a\n",
        "salvo-producer-state 1\nfive 0000000000000001 a\nend 1\n",
        "salvo-producer-state 1\n5 0000000000000001 a\n6 0000000000000001 a\nend 2\n",
    };
    static const size_t lines[] = {3, 2, 0}; /* 0: a name twice */
    for (size_t i = 0; i < 3; i++) {
        char *buf = strdup(damaged[i]);
        assert_int_equal(prodstate_decode(buf, strlen(damaged[i]), &st, &bad), ERR_PARSE);
        assert_int_equal(bad, lines[i]);
        assert_null(st.recs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_name_and_new_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test(test_encode_decode_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
