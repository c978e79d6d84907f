/* test_worker_ackbatch: batched acks never cover an unsettled delivery and never name an acked
 * one, checked against a model of the broker's unacked set. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ackbatch.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

#define MAXTAG 4096
#define MS     1000000LL

/* The broker's side of one channel, plus what the test settled. */
typedef struct model {
    bool unacked[MAXTAG + 1];
    bool settled[MAXTAG + 1];
    uint64_t sent[MAXTAG]; /* tag of each ack, negated bit 63 when multiple */
    size_t nsent;
    int fail_after; /* the send fails from this call on; -1 never */
} model;

static const uint64_t MULTI = 1ULL << 63;

/* As RabbitMQ: the tag must be unacked; a multiple ack takes every unacked tag up to it. Every
 * tag an ack takes must be one the test settled. */
static int model_send(void *arg, uint64_t tag, bool multiple)
{
    model *m = arg;
    if (m->fail_after >= 0 && (int)m->nsent >= m->fail_after)
        return ERR_MQ_CLOSED;
    assert_true(tag <= MAXTAG);
    assert_true(m->unacked[tag]);
    for (uint64_t t = multiple ? 1 : tag; t <= tag; t++) {
        if (!m->unacked[t])
            continue;
        assert_true(m->settled[t]);
        m->unacked[t] = false;
    }
    m->sent[m->nsent++] = tag | (multiple ? MULTI : 0);
    return ERR_OK;
}

static void deliver(ackbatch *b, model *m, uint64_t from, uint64_t to)
{
    for (uint64_t t = from; t <= to; t++) {
        assert_int_equal(ackbatch_track(b, t), ERR_OK);
        m->unacked[t] = true;
    }
}

static void settle(ackbatch *b, model *m, uint64_t tag, int64_t now)
{
    m->settled[tag] = true;
    assert_int_equal(ackbatch_settle(b, tag, now), ERR_OK);
}

static model *model_new(void)
{
    model *m = calloc(1, sizeof *m);
    m->fail_after = -1;
    return m;
}

/* Settled in order: one multiple ack covers them all, and only once the delay has passed. */
static void test_in_order_is_one_ack(void **state)
{
    (void)state;
    ackbatch b;
    ackbatch_init(&b);
    model *m = model_new();
    assert_int_equal(ackbatch_due(&b), INT64_MAX);
    deliver(&b, m, 1, 5);
    for (uint64_t t = 1; t <= 5; t++)
        settle(&b, m, t, 10 * MS + (int64_t)t);
    assert_int_equal(ackbatch_due(&b), 10 * MS + 1 + ACKBATCH_DELAY_NS);
    assert_int_equal(ackbatch_settled(&b), 5);
    assert_int_equal(ackbatch_flush(&b, ackbatch_due(&b), false, model_send, m), ERR_OK);
    assert_int_equal(m->nsent, 1);
    assert_int_equal(m->sent[0], 5 | MULTI);
    assert_int_equal(ackbatch_count(&b), 0);
    assert_int_equal(ackbatch_due(&b), INT64_MAX);
    assert_int_equal(b.acks, 1);
    assert_int_equal(b.tags, 5);
    ackbatch_fini(&b);
    free(m);
}

/* A slow job at the front: the settled ones behind it wait their hold, then go one by one; the
 * front's own settle is acked alone afterwards. */
static void test_open_front_holds_then_acks_each(void **state)
{
    (void)state;
    ackbatch b;
    ackbatch_init(&b);
    model *m = model_new();
    deliver(&b, m, 1, 4);
    settle(&b, m, 2, 0 + 1);
    settle(&b, m, 4, 0 + 1);
    ackbatch_flush(&b, ACKBATCH_DELAY_NS + 1, false, model_send, m);
    assert_int_equal(m->nsent, 0);
    assert_int_equal(ackbatch_due(&b), 1 + ACKBATCH_HOLD_NS);
    ackbatch_flush(&b, 1 + ACKBATCH_HOLD_NS, false, model_send, m);
    assert_int_equal(m->nsent, 2);
    assert_int_equal(m->sent[0], 2);
    assert_int_equal(m->sent[1], 4);
    assert_int_equal(ackbatch_count(&b), 2); /* 1 and 3 still open */
    settle(&b, m, 3, 10 * MS);
    settle(&b, m, 1, 10 * MS);
    ackbatch_flush(&b, 11 * MS, false, model_send, m);
    assert_int_equal(m->nsent, 3);
    assert_int_equal(m->sent[2], 3 | MULTI); /* 1 and 3: 2 is no longer unacked */
    assert_int_equal(ackbatch_count(&b), 0);
    ackbatch_fini(&b);
    free(m);
}

/* A rejected delivery no longer blocks the run; settles of unknown tags are refused; a double
 * settle acks once; tags must increase until a reset. */
static void test_forget_unknown_and_reset(void **state)
{
    (void)state;
    ackbatch b;
    ackbatch_init(&b);
    model *m = model_new();
    deliver(&b, m, 1, 4);
    settle(&b, m, 1, MS);
    settle(&b, m, 3, MS);
    settle(&b, m, 3, MS);
    ackbatch_forget(&b, 2);
    m->unacked[2] = false; /* the broker took the reject */
    ackbatch_forget(&b, 4);
    m->unacked[4] = false;
    ackbatch_forget(&b, 99);
    assert_int_equal(ackbatch_settle(&b, 99, MS), ERR_NOTFOUND);
    ackbatch_flush(&b, 2 * MS, false, model_send, m);
    assert_int_equal(m->nsent, 1);
    assert_int_equal(m->sent[0], 3 | MULTI);
    assert_int_equal(ackbatch_settle(&b, 3, 3 * MS), ERR_NOTFOUND); /* acked: no longer tracked */
    assert_int_equal(ackbatch_track(&b, 3), ERR_INVAL);
    deliver(&b, m, 5, 6);
    ackbatch_forget(&b, 5); /* at the head */
    m->unacked[5] = false;
    assert_int_equal(ackbatch_count(&b), 1);
    ackbatch_reset(&b);
    assert_int_equal(ackbatch_count(&b), 0);
    assert_int_equal(ackbatch_track(&b, 1), ERR_OK); /* a new connection numbers from 1 */
    assert_int_equal(ackbatch_due(&b), INT64_MAX);
    ackbatch_fini(&b);
    free(m);
}

/* force acks every settled tag at once, the run as one ack and the held ones alone; a failing
 * send is reported. */
static void test_force_and_send_error(void **state)
{
    (void)state;
    ackbatch b;
    ackbatch_init(&b);
    model *m = model_new();
    deliver(&b, m, 1, 6);
    settle(&b, m, 1, MS);
    settle(&b, m, 2, MS);
    settle(&b, m, 4, MS);
    assert_int_equal(ackbatch_flush(&b, MS, true, model_send, m), ERR_OK);
    assert_int_equal(m->nsent, 2);
    assert_int_equal(m->sent[0], 2 | MULTI);
    assert_int_equal(m->sent[1], 4);
    assert_int_equal(ackbatch_settled(&b), 0);
    settle(&b, m, 3, 2 * MS);
    m->fail_after = 0;
    assert_int_equal(ackbatch_flush(&b, 2 * MS, true, model_send, m), ERR_MQ_CLOSED);
    ackbatch_fini(&b);
    free(m);
}

/* Random deliveries, settles and flushes: the model checks every ack; at the end a forced flush
 * leaves exactly the open deliveries unacked. */
static void test_random_against_model(void **state)
{
    (void)state;
    unsigned seed = 12345;
    for (int round = 0; round < 20; round++) {
        ackbatch b;
        ackbatch_init(&b);
        model *m = model_new();
        uint64_t delivered = 0, front = 1;
        int64_t now = MS;
        while (delivered < MAXTAG - 64) {
            uint64_t burst = 1 + (uint64_t)(rand_r(&seed) % 40);
            deliver(&b, m, delivered + 1, delivered + burst);
            delivered += burst;
            /* Jobs finish roughly in delivery order; every 97th never does (a stuck job). */
            while (front <= delivered && (m->settled[front] || front % 97 == 0))
                front++;
            for (int k = rand_r(&seed) % 50; k > 0; k--) {
                uint64_t t = front + (uint64_t)(rand_r(&seed) % 64);
                if (t <= delivered && t % 97 != 0 && !m->settled[t])
                    settle(&b, m, t, now);
            }
            now += (rand_r(&seed) % 1500) * 1000;
            if (now >= ackbatch_due(&b))
                assert_int_equal(ackbatch_flush(&b, now, false, model_send, m), ERR_OK);
        }
        assert_int_equal(ackbatch_flush(&b, now, true, model_send, m), ERR_OK);
        size_t open = 0;
        for (uint64_t t = 1; t <= delivered; t++) {
            assert_true(m->unacked[t] == !m->settled[t]);
            open += m->unacked[t];
        }
        assert_int_equal(ackbatch_count(&b), open);
        assert_true(b.acks < b.tags); /* some acks covered several deliveries */
        ackbatch_fini(&b);
        free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_is_one_ack),
        cmocka_unit_test(test_open_front_holds_then_acks_each),
        cmocka_unit_test(test_forget_unknown_and_reset),
        cmocka_unit_test(test_force_and_send_error),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
