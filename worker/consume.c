/* consume: the I/O thread's loop: connect, poll, dispatch deliveries, settle outcomes, drain. */
#include "consume.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "pending.h"
#include "topology.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest mq_poll wait: bounds how late a stop request or a reconnect deadline is noticed, and
 * stays far below half of any heartbeat interval. */
#define CONSUME_POLL_MS 200
/* Settles are collected at least once per this many broker events, so a flood of deliveries
 * (which mq_poll serves from its buffer before looking at the wake fd) never starves acks. */
#define CONSUME_EVENTS_PER_DRAIN 32

typedef struct consumer {
    const consume_opts *o;
    pool *pool;
    outq *q;
    recent *recent;
    consume_stats *st;
    mq *m; /* NULL while disconnected */
    size_t next_url;
    unsigned failures;  /* consecutive failed connection rounds */
    int64_t retry_at;   /* monotonic ns of the next connection round */
    pending pend;       /* follow-ups awaiting confirms on this connection */
    settle *deferred;   /* settles held while the broker blocks publishing (LIFO is fine) */
    size_t outstanding; /* deliveries handed to the pool, not yet settled back */
    bool draining;
    int64_t drain_deadline;
} consumer;

static const char *consume_id(const settle *s)
{
    return s->id ? s->id : "-";
}

/* ---- connection ----------------------------------------------------------------------- */

static int consume_setup(consumer *c, mq *m, char *err, size_t cap)
{
    int rc = mq_declare_topology(m, err, cap);
    if (rc == ERR_OK && mq_confirm_select(m, MQ_CH_PUBLISH) != ERR_OK) {
        snprintf(err, cap, "confirm.select refused");
        rc = ERR_MQ_CHANNEL;
    }
    if (rc == ERR_OK && !c->draining)
        rc = mq_consume(m, TOPO_JOBS_QUEUE, c->o->prefetch, err, cap);
    return rc;
}

static void consume_connect(consumer *c)
{
    char err[512] = "";
    mq *m = NULL;
    size_t idx = c->next_url;
    int rc = mq_connect(&c->o->mq, &idx, &m, err, sizeof err);
    if (rc == ERR_OK)
        rc = consume_setup(c, m, err, sizeof err);
    if (rc != ERR_OK) {
        mq_free(m);
        c->failures++;
        int wait = mq_backoff_ms(c->failures);
        log_warn("broker connection failed (%s); next try in %d ms", err, wait);
        c->retry_at = clock_mono_ns() + (int64_t)wait * CLOCK_NS_PER_MS;
        return;
    }
    c->m = m;
    c->failures = 0;
    c->next_url = idx;
    log_notice("consuming %s from %s (connection generation %" PRIu64 ", prefetch %u)",
               TOPO_JOBS_QUEUE, mq_endpoint(m), mq_generation(m), c->o->prefetch);
}

/* The connection is gone: every unconfirmed follow-up is lost with it, and so is the chance to
 * ack its original, which the broker will redeliver. */
static void consume_lost(consumer *c, const char *why)
{
    size_t lost = 0;
    for (settle *s = pending_take_all(&c->pend); s;) {
        settle *next = s->next;
        settle_free(s);
        s = next;
        lost++;
    }
    log_warn("broker connection lost (%s); %zu unconfirmed follow-ups dropped, their jobs will "
             "be redelivered",
             why, lost);
    mq_free(c->m);
    c->m = NULL;
    c->st->reconnects++;
    /* Try the next URL first: the node we were on is the likeliest to be down. */
    c->next_url++;
    c->failures = 1;
    c->retry_at = clock_mono_ns() + (int64_t)mq_backoff_ms(1) * CLOCK_NS_PER_MS;
}

/* ---- settling ------------------------------------------------------------------------- */

static void consume_publish_result(consumer *c, settle *s)
{
    if (!s->result)
        return;
    mq_msg msg = {.exchange = TOPO_RESULTS_EXCHANGE,
                  .routing_key = "",
                  .body = s->result,
                  .len = s->result_len,
                  .message_id = s->id,
                  .content_type = "application/json"};
    /* Not awaited: a lost record costs a dashboard line, never a job. */
    mq_publish(c->m, MQ_CH_PUBLISH, &msg, NULL);
    free(s->result);
    s->result = NULL;
}

static void consume_log_followup(consumer *c, const settle *s)
{
    if (s->action == OUTCOME_RETRY) {
        c->st->retried++;
        log_msg(LOG_NOTICE, consume_id(s),
                "retried schedule=%s attempt=%u status=%d next_attempt=%u level=r%d",
                s->schedule ? s->schedule : "-", s->attempt, s->status, s->attempt + 1,
                s->retry_level);
    } else if (s->action == OUTCOME_MISSED) {
        c->st->missed++;
        log_msg(LOG_WARN, consume_id(s), "missed schedule=%s attempt=%u reason=%s",
                s->schedule ? s->schedule : "-", s->attempt, s->reason);
    } else {
        c->st->dead++;
        log_msg(LOG_WARN, consume_id(s), "dead-lettered schedule=%s attempt=%u status=%d reason=%s",
                s->schedule ? s->schedule : "-", s->attempt, s->status, s->reason);
    }
}

/* Ack the original and remember the attempt as settled. */
static void consume_ack(consumer *c, settle *s)
{
    if (mq_ack(c->m, s->gen, s->channel, s->tag) == ERR_OK)
        c->st->acked++;
    if (s->id)
        recent_add(c->recent, s->id, s->attempt);
}

static void consume_followup(consumer *c, settle *s)
{
    mq_msg msg;
    settle_message(s, &msg);
    uint64_t seq = 0;
    if (mq_publish(c->m, MQ_CH_PUBLISH, &msg, &seq) != ERR_OK ||
        pending_add(&c->pend, seq, s) != ERR_OK) {
        /* The connection is failing (the next poll reports it) or memory ran out: leave the
         * original unacked for the broker to redeliver. */
        log_msg(LOG_WARN, consume_id(s), "follow-up publish failed; job left for redelivery");
        settle_free(s);
    }
}

/* An outcome whose delivery came on a connection we no longer have. */
static void consume_stale(consumer *c, settle *s)
{
    c->st->stale++;
    bool ok = s->action == OUTCOME_ACK && strcmp(s->label, "ok") == 0;
    if (ok && s->id)
        recent_add(c->recent, s->id, s->attempt);
    log_msg(LOG_NOTICE, consume_id(s),
            "outcome %s not acked: delivered on an older connection; the broker redelivers it%s",
            s->label, ok ? " and the copy will be acked as a duplicate" : "");
    settle_free(s);
}

static void consume_settle(consumer *c, settle *s)
{
    if (!c->m || s->gen != mq_generation(c->m)) {
        consume_stale(c, s);
        return;
    }
    if (mq_is_blocked(c->m)) {
        s->next = c->deferred;
        c->deferred = s;
        return;
    }
    consume_publish_result(c, s);
    if (s->action == OUTCOME_ACK) {
        if (strcmp(s->label, "duplicate") == 0)
            c->st->duplicates++;
        consume_ack(c, s);
        settle_free(s);
        return;
    }
    consume_followup(c, s);
}

static void consume_take_outq(consumer *c)
{
    for (settle *s = outq_take(c->q); s;) {
        settle *next = s->next;
        c->outstanding--;
        consume_settle(c, s);
        s = next;
    }
}

static void consume_undefer(consumer *c)
{
    settle *list = c->deferred;
    c->deferred = NULL;
    while (list) {
        settle *s = list;
        list = list->next;
        consume_settle(c, s);
    }
}

/* ---- broker events -------------------------------------------------------------------- */

static void consume_confirmed(consumer *c, uint64_t tag, bool multiple)
{
    for (settle *s = pending_confirm(&c->pend, tag, multiple); s;) {
        settle *next = s->next;
        if (s->returned) {
            /* The follow-up had nowhere to go: hand the original to the queue's own
             * dead-letter route instead of acking it into nothing. */
            c->st->returned++;
            log_msg(LOG_ERR, consume_id(s),
                    "follow-up to %s/%s was unroutable; original rejected to the queue's "
                    "dead-letter exchange",
                    s->exchange, s->routing_key);
            mq_reject(c->m, s->gen, s->channel, s->tag, false);
        } else {
            consume_log_followup(c, s);
            consume_ack(c, s);
        }
        settle_free(s);
        s = next;
    }
}

/* A nack means the broker could not take the message: publish it again. */
static void consume_nacked(consumer *c, uint64_t tag, bool multiple)
{
    for (settle *s = pending_confirm(&c->pend, tag, multiple); s;) {
        settle *next = s->next;
        log_msg(LOG_WARN, consume_id(s), "follow-up nacked by the broker; publishing again");
        consume_followup(c, s);
        s = next;
    }
}

static void consume_delivery(consumer *c, mq_delivery *d)
{
    task *t = task_new(d, clock_real_ns());
    if (!t) {
        /* Without memory the job cannot even be held: give it back for another worker. */
        mq_reject(c->m, d->gen, d->channel, d->tag, true);
        return; /* the event still owns d and frees it */
    }
    c->st->received++;
    c->outstanding++;
    pool_dispatch(c->pool, t);
}

/* Handle one event; returns false when the connection is gone. */
static bool consume_event(consumer *c, mq_event *ev)
{
    switch (ev->kind) {
    case MQ_EV_DELIVERY:
        consume_delivery(c, &ev->delivery);
        return true;
    case MQ_EV_ACK:
        if (ev->channel == MQ_CH_PUBLISH)
            consume_confirmed(c, ev->tag, ev->multiple);
        return true;
    case MQ_EV_NACK:
        if (ev->channel == MQ_CH_PUBLISH)
            consume_nacked(c, ev->tag, ev->multiple);
        return true;
    case MQ_EV_RETURN:
        pending_mark_returned(&c->pend, ev->message_id);
        return true;
    case MQ_EV_BLOCKED:
        log_warn("broker blocked publishing (resource alarm); outcomes wait");
        return true;
    case MQ_EV_UNBLOCKED:
        log_notice("broker unblocked publishing");
        consume_undefer(c);
        return true;
    case MQ_EV_CANCELLED:
        if (c->draining)
            return true;
        consume_lost(c, "consumer cancelled by the broker");
        return false;
    case MQ_EV_CLOSED:
        consume_lost(c, ev->reason);
        return false;
    default:
        return true;
    }
}

/* Wait for broker events (or settles) until the poll times out or wakes, handling each. */
static void consume_poll(consumer *c)
{
    if (!c->m) {
        struct pollfd p = {outq_fd(c->q), POLLIN, 0};
        poll(&p, 1, CONSUME_POLL_MS);
        return;
    }
    for (int i = 0; i < CONSUME_EVENTS_PER_DRAIN; i++) {
        mq_event ev;
        mq_poll(c->m, i == 0 ? CONSUME_POLL_MS : 0, outq_fd(c->q), &ev);
        mq_ev_kind kind = ev.kind;
        bool alive = consume_event(c, &ev);
        mq_event_fini(&ev);
        if (!alive || kind == MQ_EV_TIMEOUT || kind == MQ_EV_WAKE)
            return;
    }
}

/* ---- stop ------------------------------------------------------------------------------ */

static void consume_begin_drain(consumer *c)
{
    c->draining = true;
    c->drain_deadline = clock_mono_ns() + c->o->grace_ms * CLOCK_NS_PER_MS;
    if (c->m)
        mq_cancel(c->m);
    log_notice("stopping: consumer cancelled, %zu jobs in flight, grace %" PRId64 " ms",
               c->outstanding, c->o->grace_ms);
}

static bool consume_drained(const consumer *c)
{
    return c->outstanding == 0 && pending_count(&c->pend) == 0 && !c->deferred;
}

/* Leave: close the connection first (the broker requeues what we did not ack), then stop the
 * pool, gracefully when everything settled. */
static void consume_finish(consumer *c)
{
    bool drained = consume_drained(c);
    if (!drained)
        log_warn("stopping with %zu jobs unsettled; the broker redelivers them", c->outstanding);
    mq_free(c->m);
    c->m = NULL;
    pool_stop(c->pool, !drained);
    consume_take_outq(c); /* late settles: their connection is closed, so they are stale */
    pending_fini(&c->pend);
    for (settle *s = c->deferred; s;) {
        settle *next = s->next;
        settle_free(s);
        s = next;
    }
    c->deferred = NULL;
}

int consume_run(const consume_opts *o, pool *p, outq *q, recent *r, volatile sig_atomic_t *stop,
                consume_stats *stats)
{
    consumer c = {.o = o, .pool = p, .q = q, .recent = r, .st = stats};
    memset(stats, 0, sizeof *stats);
    pending_init(&c.pend);
    for (;;) {
        if (*stop && !c.draining)
            consume_begin_drain(&c);
        if (c.draining && (consume_drained(&c) || !c.m || clock_mono_ns() >= c.drain_deadline))
            break;
        if (!c.m && clock_mono_ns() >= c.retry_at)
            consume_connect(&c);
        consume_poll(&c);
        consume_take_outq(&c);
    }
    consume_finish(&c);
    log_notice("stopped: received %" PRIu64 ", acked %" PRIu64 ", retried %" PRIu64
               ", dead %" PRIu64 ", missed %" PRIu64 ", duplicates %" PRIu64 ", stale %" PRIu64,
               stats->received, stats->acked, stats->retried, stats->dead, stats->missed,
               stats->duplicates, stats->stale);
    return ERR_OK;
}
