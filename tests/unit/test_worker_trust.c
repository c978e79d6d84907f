/* test_worker_trust: the publisher allow-list, the signature check on a delivery, and the retry
 * copy a worker re-signs (settle.c) passing that same check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "jobwire.h"
#include "settle.h"
#include "sign.h"
#include "task.h"
#include "trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define DUE  1767225600000LL

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *csv;
        int rc;
        size_t n;
        const char *first, *last;
    } rows[] = {
        {NULL, ERR_OK, 0, NULL, NULL},
        {"", ERR_OK, 0, NULL, NULL},
        {" , ,", ERR_OK, 0, NULL, NULL},
        {"producer", ERR_OK, 1, "producer", "producer"},
        {" producer ,ops-prod\t,,x@y ", ERR_OK, 3, "producer", "x@y"},
        {"a,b\x01", ERR_PARSE, 0, NULL, NULL},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        trust_publishers p;
        char err[128] = "";
        assert_int_equal(trust_parse(rows[r].csv, &p, err, sizeof err), rows[r].rc);
        assert_int_equal(p.n, rows[r].n);
        if (rows[r].first) {
            assert_string_equal(p.names[0], rows[r].first);
            assert_string_equal(p.names[p.n - 1], rows[r].last);
        }
        if (rows[r].rc != ERR_OK)
            assert_non_null(strstr(err, "entry 2"));
        trust_fini(&p);
    }
}

static void test_parse_limits(void **state)
{
    (void)state;
    char csv[2048] = "", err[128];
    for (int i = 0; i <= TRUST_PUBLISHERS_MAX; i++)
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "u%d,", i);
    trust_publishers p;
    assert_int_equal(trust_parse(csv, &p, err, sizeof err), ERR_PARSE);
    assert_non_null(strstr(err, "more than 32"));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(trust_parse(longname, &p, err, sizeof err), ERR_PARSE);
    trust_fini(&p);
}

static void test_allowed(void **state)
{
    (void)state;
    trust_publishers p, none;
    char err[128];
    assert_int_equal(trust_parse("producer,ops", &p, err, sizeof err), ERR_OK);
    assert_int_equal(trust_parse(NULL, &none, err, sizeof err), ERR_OK);
    assert_true(trust_allowed(&p, "producer", "worker"));
    assert_true(trust_allowed(&p, "ops", NULL));
    assert_true(trust_allowed(&p, "worker", "worker"));    /* retries carry the worker's login */
    assert_false(trust_allowed(&p, "Producer", "worker")); /* exact, as RabbitMQ compares */
    assert_false(trust_allowed(&p, "mallory", "worker"));
    assert_false(trust_allowed(&p, NULL, "worker")); /* no user_id: never */
    assert_false(trust_allowed(&p, "", ""));
    assert_true(trust_allowed(&none, "guest", "guest")); /* default: own login only */
    assert_false(trust_allowed(&none, "producer", "guest"));
    assert_false(trust_allowed(NULL, "producer", NULL));
    trust_fini(&p);
    trust_fini(&none);
}

static void test_reason(void **state)
{
    (void)state;
    char buf[160];
    trust_reason(NULL, buf, sizeof buf);
    assert_string_equal(buf, "bad-publisher: no user_id");
    trust_reason("mal'\nory", buf, sizeof buf);
    assert_string_equal(buf, "bad-publisher: user_id 'mal??ory' is not allowed");
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    trust_reason(longid, buf, sizeof buf);
    assert_true(strlen(buf) < 120); /* cut to 64 bytes */
}

/* A delivery as the worker receives it: headers and body owned, like mq's copy. */
static void make_delivery(mq_delivery *d, const char *mid, const char *kid, const char *sig,
                          int64_t due, const char *body, size_t len)
{
    memset(d, 0, sizeof *d);
    d->message_id = strdup(mid);
    d->headers = calloc(3, sizeof *d->headers);
    size_t n = 0;
    d->headers[n++] = (mq_hdr){strdup(SIGN_HDR_DUE), NULL, due};
    if (kid)
        d->headers[n++] = (mq_hdr){strdup(SIGN_HDR_KID), strdup(kid), 0};
    if (sig)
        d->headers[n++] = (mq_hdr){strdup(SIGN_HDR_SIG), strdup(sig), 0};
    d->nheaders = n;
    d->body = malloc(len + 1);
    memcpy(d->body, body, len);
    d->body[len] = '\0';
    d->len = len;
}

static void test_verify(void **state)
{
    (void)state;
    sign_ring *ring = NULL, *other = NULL;
    char err[128], kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1], okid[SIGN_KID_MAX + 1];
    char osig[SIGN_HEX_LEN + 1], reason[128];
    assert_int_equal(sign_ring_parse(KEYS, "t", &ring, err, sizeof err), ERR_OK);
    assert_int_equal(sign_ring_parse("k9:OTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTBmZWRjYmE=", "t", &other,
                                     err, sizeof err),
                     ERR_OK);
    const char body[] = "\x81\xa1v\x01";
    assert_int_equal(sign_compute(ring, kid, "m1", DUE, body, 4, sig), ERR_OK);
    assert_int_equal(sign_compute(other, okid, "m1", DUE, body, 4, osig), ERR_OK);
    static const struct {
        const char *mid, *kid, *sig;
        int64_t due;
        const char *body, *want;
    } rows[] = {
        {"m1", "k1", NULL, DUE, "\x81\xa1v\x01", NULL}, /* [0] sig filled below */
        {"m1", NULL, NULL, DUE, "\x81\xa1v\x01", "bad-signature: missing"},
        {"m1", "k9", NULL, DUE, "\x81\xa1v\x01", "bad-signature: unknown key 'k9'"},
        {"m2", "k1", NULL, DUE, "\x81\xa1v\x01", "bad-signature: mismatch"},     /* other id */
        {"m1", "k1", NULL, DUE + 1, "\x81\xa1v\x01", "bad-signature: mismatch"}, /* other due */
        {"m1", "k1", NULL, DUE, "\x81\xa1v\x02", "bad-signature: mismatch"},     /* tampered */
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        mq_delivery d;
        const char *s = rows[r].kid ? (strcmp(rows[r].kid, "k9") == 0 ? osig : sig) : NULL;
        make_delivery(&d, rows[r].mid, rows[r].kid, s, rows[r].due, rows[r].body, 4);
        int64_t due = 0;
        int rc = trust_verify(ring, &d, &due, reason, sizeof reason);
        if (!rows[r].want) {
            assert_int_equal(rc, ERR_OK);
            assert_int_equal(due, DUE);
        } else {
            assert_int_equal(rc, ERR_SIGNATURE);
            assert_string_equal(reason, rows[r].want);
        }
        mq_delivery_fini(&d);
    }
    sign_ring_free(ring);
    sign_ring_free(other);
}

/* A failed attempt's retry copy: attempt + 1, re-signed, and verifiable like the original. */
static void test_retry_is_resigned(void **state)
{
    (void)state;
    sign_ring *ring = NULL;
    char err[128], kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1], reason[160];
    assert_int_equal(sign_ring_parse(KEYS, "t", &ring, err, sizeof err), ERR_OK);
    job j;
    job_init(&j);
    j.id = strdup("s@20260101T000000Z#0");
    j.schedule = strdup("s");
    j.due_ms = DUE;
    j.attempt = 1;
    j.max_attempts = 3;
    j.kind = JOB_HTTP;
    j.http.method = strdup("GET");
    j.http.url = strdup("http://127.0.0.1/x");
    j.http.timeout_ms = 1000;
    j.http.connect_timeout_ms = 500;
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(jobwire_encode(&j, &body, &len), ERR_OK);
    assert_int_equal(sign_compute(ring, kid, j.id, DUE, body, len, sig), ERR_OK);
    mq_delivery d;
    make_delivery(&d, j.id, kid, sig, DUE, body, len);
    task *t = task_new(&d, 0);
    int drc = jobwire_decode(t->d.body, t->d.len, &t->j, reason, sizeof reason);
    if (drc != ERR_OK)
        fprintf(stderr, "decode: %s\n", reason);
    assert_int_equal(drc, ERR_OK);
    t->decoded = true;
    static const int64_t delays[] = {1000, 2000};
    settle_env env = {"test:1", delays, 2, ring, SETTLE_RESULTS_FAILURES};
    outcome o = {OUTCOME_RETRY, 1, "retry", ""};
    settle *s = NULL;
    assert_int_equal(settle_build(t, &o, &env, &s), ERR_OK);
    assert_int_equal(s->action, OUTCOME_RETRY);
    mq_msg m;
    settle_message(s, &m);
    mq_delivery back;
    make_delivery(&back, m.message_id, m.headers[1].str, m.headers[2].str, m.headers[0].i, m.body,
                  m.len);
    int64_t due = 0;
    assert_int_equal(trust_verify(ring, &back, &due, reason, sizeof reason), ERR_OK);
    assert_int_equal(due, DUE);
    job r;
    job_init(&r);
    assert_int_equal(jobwire_decode(m.body, m.len, &r, reason, sizeof reason), ERR_OK);
    assert_int_equal(r.attempt, 2);
    assert_string_not_equal(m.headers[2].str, sig); /* the body changed, so did the signature */
    job_fini(&r);
    mq_delivery_fini(&back);
    settle_free(s);
    task_free(t);
    free(body);
    job_fini(&j);
    sign_ring_free(ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),   cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_allowed), cmocka_unit_test(test_reason),
        cmocka_unit_test(test_verify),  cmocka_unit_test(test_retry_is_resigned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
