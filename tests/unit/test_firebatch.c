/* test_firebatch: a planned batch turned into AMQP messages: ids, bodies, properties, and the
 * confirm bookkeeping that decides when a firing counts as published. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "firebatch.h"
#include "jobwire.h"
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0  1767225600LL /* 2026-01-01T00:00:00Z */
#define SEC 1000LL

static const char yaml[] = "jobs:\n"
                           "  - name: fan\n"
                           "    every: 10s\n"
                           "    fan_out: {items: [a, bb, ccc]}\n"
                           "    http: {url: \"http://127.0.0.1/s/{{item}}\"}\n"
                           "    max_lateness: 30s\n"
                           "    lead: 2s\n"
                           "  - name: plain\n"
                           "    every: 10s\n"
                           "    lead: 2s\n"
                           "    http: {url: \"http://127.0.0.1/p\"}\n";

typedef struct fixture {
    fireplan plan;
    fireplan_batch due;
    firebatch b;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    schedfile *sf = NULL;
    char *errors = NULL;
    if (!fx || schedfile_parse("t.yaml", yaml, sizeof yaml - 1, &sf, &errors) != ERR_OK) {
        fprintf(stderr, "%s\n", errors ? errors : "setup failed");
        free(errors);
        free(fx);
        return -1;
    }
    if (fireplan_init(&fx->plan, sf, NULL, T0 * SEC - 5000, 60 * SEC) != ERR_OK ||
        fireplan_next(&fx->plan, T0 * SEC - 5000, &fx->due) != ERR_OK ||
        firebatch_build(&fx->b, &fx->plan, &fx->due) != ERR_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    firebatch_fini(&fx->b);
    fireplan_batch_fini(&fx->due);
    fireplan_fini(&fx->plan);
    free(fx);
    return 0;
}

static void test_messages_and_bodies(void **state)
{
    fixture *fx = *state;
    firebatch *b = &fx->b;
    static const char *const ids[] = {"fan@20260101T000000Z#0", "fan@20260101T000000Z#1",
                                      "fan@20260101T000000Z#2", "plain@20260101T000000Z#0"};
    static const char *const urls[] = {"http://127.0.0.1/s/a", "http://127.0.0.1/s/bb",
                                       "http://127.0.0.1/s/ccc", "http://127.0.0.1/p"};
    assert_int_equal(b->key_ms, T0 * SEC - 2000); /* due minus lead */
    assert_int_equal(b->nf, 2);
    assert_int_equal(b->nm, 4);
    assert_int_equal(b->unconfirmed, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(b->m[i].id, ids[i]);
        job j;
        char why[256];
        job_init(&j);
        assert_int_equal(jobwire_decode(b->m[i].body, b->m[i].len, &j, why, sizeof why), ERR_OK);
        assert_string_equal(j.id, ids[i]);
        assert_string_equal(j.http.url, urls[i]);
        assert_int_equal(j.due_ms, T0 * SEC);
        assert_int_equal(j.attempt, 1);
        job_fini(&j);
    }
}

static void test_properties(void **state)
{
    fixture *fx = *state;
    firebatch *b = &fx->b;
    static const struct {
        int64_t now_ms;
        bool replay;
        const char *fan_exp; /* "plain" has no max_lateness: never an expiration */
    } rows[] = {
        {T0 * SEC - 2000, false, "32000"}, /* on time, 2 s early: max_lateness + lead */
        {T0 * SEC + 5000, false, "25000"}, /* published 5 s after due: what is left */
        {T0 * SEC + 40000, false, "0"},    /* already too late: expires at once -> missed */
        {T0 * SEC + 40000, true, "32000"}, /* a misfire replay gets the full budget */
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        b->f[0].pf.replay = rows[r].replay;
        firebatch_props(b, rows[r].now_ms);
        mq_msg m;
        mq_hdr hdrs[FIREBATCH_NHDRS];
        firebatch_amqp(b, 1, rows[r].now_ms, hdrs, &m);
        assert_string_equal(m.exchange, TOPO_JOBS_EXCHANGE);
        assert_string_equal(m.routing_key, TOPO_JOBS_KEY);
        assert_string_equal(m.message_id, "fan@20260101T000000Z#1");
        assert_string_equal(m.content_type, "application/msgpack");
        assert_true(m.mandatory && m.persistent);
        assert_int_equal(m.timestamp_s, rows[r].now_ms / 1000);
        assert_string_equal(m.expiration, rows[r].fan_exp);
        assert_int_equal(m.nheaders, 4); /* unsigned: no ring in this fixture */
        assert_string_equal(m.headers[0].key, "x-salvo-job");
        assert_string_equal(m.headers[0].str, "fan");
        assert_string_equal(m.headers[1].key, "x-salvo-due");
        assert_string_equal(m.headers[1].str, "2026-01-01T00:00:00Z");
        assert_string_equal(m.headers[2].key, "x-salvo-attempt");
        assert_null(m.headers[2].str);
        assert_int_equal(m.headers[2].i, 1);
        assert_string_equal(m.headers[3].key, SIGN_HDR_DUE);
        assert_int_equal(m.headers[3].i, T0 * SEC);
        assert_null(m.user_id); /* publish.c sets the connection's login */
        firebatch_amqp(b, 3, rows[r].now_ms, hdrs, &m);
        assert_null(m.expiration);
        assert_string_equal(m.headers[0].str, "plain");
    }
    b->f[0].pf.replay = false;
}

/* With a ring, every message carries the key id and a signature the worker's check accepts over
 * exactly its own id, due instant and body. */
static void test_signed_messages(void **state)
{
    fixture *fx = *state;
    firebatch *b = &fx->b;
    sign_ring *ring = NULL;
    char err[256], reason[128];
    assert_int_equal(sign_ring_parse("kb-1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "test",
                                     &ring, err, sizeof err),
                     ERR_OK);
    b->ring = ring;
    assert_int_equal(firebatch_build(b, &fx->plan, &fx->due), ERR_OK);
    firebatch_props(b, T0 * SEC);
    for (size_t i = 0; i < b->nm; i++) {
        mq_msg m;
        mq_hdr hdrs[FIREBATCH_NHDRS];
        firebatch_amqp(b, i, T0 * SEC, hdrs, &m);
        assert_int_equal(m.nheaders, FIREBATCH_NHDRS);
        assert_string_equal(m.headers[4].key, SIGN_HDR_KID);
        assert_string_equal(m.headers[4].str, "kb-1");
        assert_string_equal(m.headers[5].key, SIGN_HDR_SIG);
        const char *sig = m.headers[5].str;
        assert_int_equal(sign_verify(ring, "kb-1", sig, m.message_id, m.headers[3].i, m.body, m.len,
                                     reason, sizeof reason),
                         ERR_OK);
        /* Another message's signature does not fit this one. */
        const char *other = b->m[(i + 1) % b->nm].sig;
        assert_int_equal(sign_verify(ring, "kb-1", other, m.message_id, m.headers[3].i, m.body,
                                     m.len, reason, sizeof reason),
                         ERR_SIGNATURE);
    }
    b->ring = NULL;
    sign_ring_free(ring);
}

/* A firing counts once all its messages are confirmed, whatever the order. */
static void test_confirm_bookkeeping(void **state)
{
    fixture *fx = *state;
    firebatch *b = &fx->b;
    assert_false(firebatch_confirm(b, 2));
    assert_false(firebatch_confirm(b, 2)); /* idempotent */
    assert_int_equal(b->unconfirmed, 3);
    assert_true(firebatch_confirm(b, 3)); /* "plain" complete */
    assert_false(firebatch_confirm(b, 0));
    assert_int_equal(b->f[0].unconfirmed, 1);
    assert_true(firebatch_confirm(b, 1)); /* "fan" complete */
    assert_int_equal(b->unconfirmed, 0);
    firebatch_clear(b);
    assert_int_equal(b->nm, 0);
    assert_int_equal(b->nf, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages_and_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirm_bookkeeping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
