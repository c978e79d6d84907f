/* consume: the I/O thread's loop: connect, poll, dispatch deliveries, settle outcomes, drain. */
#include "consume.h"

#include "acker.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "topology.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest mq_poll wait: bounds how late a stop request or a reconnect deadline is noticed, and
 * stays far below half of any heartbeat interval. */
#define CONSUME_POLL_MS 200
/* After the last settle of a drain, how long the connection stays open before closing. */
#define CONSUME_ACK_LINGER_MS 500
/* Settles are collected at least once per this many broker events, so a flood of deliveries
 * (which mq_poll serves from its buffer before looking at the wake fd) never starves acks. */
#define CONSUME_EVENTS_PER_DRAIN 32

/* ---- connection ----------------------------------------------------------------------- */

static int consume_setup(consumer *c, mq *m, char *err, size_t cap)
{
    int rc = mq_declare_topology(m, err, cap);
    c->pub_ch = MQ_CH_PUBLISH;
    c->swap_wanted = false;
    resend_recovered(&c->resend); /* a new connection starts with fresh channels */
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
    ackbatch_reset(&c->acks); /* tags start again at 1 on the new channel */
    c->failures = 0;
    pool_set_generation(c->pool, mq_generation(m));
    metrics_set(c->wm ? c->wm->connected : NULL, c->draining ? 0 : 1);
    wmetrics_broker(c->wm, mq_endpoint(m), true);
    c->next_url = idx;
    log_notice("consuming %s from %s (connection generation %" PRIu64 ", prefetch %u)",
               TOPO_JOBS_QUEUE, mq_endpoint(m), mq_generation(m), c->o->prefetch);
}

/* End every settle of a list whose follow-up never got confirmed (the job's attempt stays
 * unsettled, and the broker redelivers it); returns how many. */
static size_t consume_drop(consumer *c, settle *list)
{
    size_t n = 0;
    for (settle *s = list; s; n++) {
        settle *next = s->next;
        acker_done(c, s, false);
        s = next;
    }
    return n;
}

/* The connection is gone: every unconfirmed follow-up is lost with it, and so is the chance to
 * ack its original, which the broker will redeliver. */
static void consume_lost(consumer *c, const char *why)
{
    size_t lost = 0;
    mq *gone = c->m;
    c->m = NULL; /* first: copies parked behind the dropped settles must not be acked on it */
    pool_set_generation(c->pool, 0);
    ackbatch_reset(&c->acks); /* acks not yet sent are lost with it: those jobs come back */
    lost += consume_drop(c, pending_take_all(&c->pend));
    lost += consume_drop(c, resend_take_all(&c->resend));
    /* Settles held back (broker blocked, publish channel being replaced) were for this
     * connection too. Nothing else would release them (a new connection is neither blocked nor
     * replacing a channel), and their inflight claims would keep the broker's redelivered
     * copies parked: settle them as stale now. */
    acker_undefer(c);
    log_warn("broker connection to %s lost (%s); %zu unconfirmed follow-ups dropped, their "
             "jobs will be redelivered",
             mq_endpoint(gone), why, lost);
    wmetrics_broker(c->wm, mq_endpoint(gone), false);
    mq_free(gone);
    c->st->reconnects++;
    metrics_inc(c->wm ? c->wm->reconnects : NULL);
    metrics_set(c->wm ? c->wm->connected : NULL, 0);
    /* Try the next URL first: the node we were on is the likeliest to be down. */
    c->next_url++;
    c->failures = 1;
    c->retry_at = clock_mono_ns() + (int64_t)mq_backoff_ms(1) * CLOCK_NS_PER_MS;
}

/* ---- broker events -------------------------------------------------------------------- */

static void consume_delivery(consumer *c, mq_delivery *d)
{
    /* Tracked before anything else: a multiple ack must never cover a delivery the batch does
     * not know about, so one it cannot track goes back to the queue at once. */
    task *t = ackbatch_track(&c->acks, d->tag) == ERR_OK ? task_new(d, clock_real_ns()) : NULL;
    if (!t) {
        /* Without memory the job cannot even be held: give it back for another worker. */
        ackbatch_forget(&c->acks, d->tag);
        mq_reject(c->m, d->gen, d->channel, d->tag, true);
        return; /* the event still owns d and frees it */
    }
    /* Checked here, where the connection's login is known: the executor dead-letters the job
     * before its signature or body is even looked at. */
    t->bad_publisher = !trust_allowed(c->o->publishers, t->d.user_id, mq_user(c->m));
    c->st->received++;
    c->outstanding++;
    wmetrics_delivered(c->wm, t->d.timestamp_s, t->recv_ns);
    pool_dispatch(c->pool, t);
}

/* Handle one event; returns false when the connection is gone. */
static bool consume_event(consumer *c, mq_event *ev)
{
    switch (ev->kind) {
    case MQ_EV_DELIVERY:
        consume_delivery(c, &ev->delivery);
        return true;
    /* Confirms and returns of a publish channel already replaced are ignored (acker_reopen). */
    case MQ_EV_ACK:
        if (ev->channel == c->pub_ch)
            acker_confirmed(c, ev->tag, ev->multiple);
        return true;
    case MQ_EV_NACK:
        if (ev->channel == c->pub_ch)
            acker_nacked(c, ev->tag, ev->multiple);
        return true;
    case MQ_EV_RETURN:
        if (ev->channel == c->pub_ch)
            pending_mark_returned(&c->pend, ev->message_id);
        return true;
    case MQ_EV_BLOCKED:
        log_warn("broker blocked publishing (resource alarm); outcomes wait");
        return true;
    case MQ_EV_UNBLOCKED:
        log_notice("broker unblocked publishing");
        acker_undefer(c);
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
    /* Wake for the next batch of acks, or the next nacked follow-up to publish again. */
    int64_t due = ackbatch_due(&c->acks);
    if (resend_next_ns(&c->resend) < due)
        due = resend_next_ns(&c->resend);
    int wait = clock_ms_until(clock_mono_ns(), due, CONSUME_POLL_MS);
    for (int i = 0; i < CONSUME_EVENTS_PER_DRAIN; i++) {
        mq_event ev;
        mq_poll(c->m, i == 0 ? wait : 0, outq_fd(c->q), &ev);
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
    metrics_set(c->wm ? c->wm->connected : NULL, 0); /* no longer consuming: /healthz fails */
    c->drain_deadline = clock_mono_ns() + c->o->grace_ms * CLOCK_NS_PER_MS;
    if (c->m)
        mq_cancel(c->m);
    log_notice("stopping: consumer cancelled, %zu jobs in flight, grace %" PRId64 " ms",
               c->outstanding, c->o->grace_ms);
}

static bool consume_drained(const consumer *c)
{
    return c->outstanding == 0 && pending_count(&c->pend) == 0 && resend_count(&c->resend) == 0 &&
           !c->deferred && ackbatch_settled(&c->acks) == 0;
}

/* Whether the drain is over: everything settled and the last acks had time to be applied, or
 * the connection is gone, or the grace period (or a second signal) ran out. */
static bool consume_leave(consumer *c, bool forced)
{
    int64_t now = clock_mono_ns();
    if (!c->m || forced || now >= c->drain_deadline)
        return true;
    if (!consume_drained(c))
        return false;
    /* RabbitMQ applies a quorum queue's acks at low priority, and a channel closing right
     * after them can overtake them: the broker then redelivers jobs we ran and acked (seen as
     * duplicates under load). Keep the connection open a moment longer. */
    if (c->linger_until == 0) {
        int64_t until = now + CONSUME_ACK_LINGER_MS * CLOCK_NS_PER_MS;
        c->linger_until = until < c->drain_deadline ? until : c->drain_deadline;
    }
    return now >= c->linger_until;
}

/* Leave: close the connection first (the broker requeues what we did not ack), then stop the
 * pool, gracefully when everything settled. */
static void consume_finish(consumer *c)
{
    bool drained = consume_drained(c);
    if (!drained)
        log_warn("stopping with %zu jobs unsettled; the broker redelivers them", c->outstanding);
    acker_flush(c, true); /* what did settle is acked before the close */
    mq_free(c->m);
    c->m = NULL;
    pool_stop(c->pool, !drained);
    c->pool_stopped = true;
    acker_take_outq(c); /* late settles: their connection is closed, so they are stale */
    consume_drop(c, pending_take_all(&c->pend));
    consume_drop(c, resend_take_all(&c->resend));
    settle *deferred = c->deferred;
    c->deferred = NULL;
    consume_drop(c, deferred);
    pending_fini(&c->pend);
    c->st->ack_frames = c->acks.acks;
    c->st->ack_held = c->acks.held;
    c->st->ack_tags = c->acks.tags;
    ackbatch_fini(&c->acks);
}

int consume_run(const consume_opts *o, const consume_deps *d, volatile sig_atomic_t *stop,
                consume_stats *stats)
{
    consumer c = {.o = o,
                  .pool = d->pool,
                  .q = d->q,
                  .recent = d->recent,
                  .inflight = d->inflight,
                  .wm = d->wm,
                  .st = stats};
    memset(stats, 0, sizeof *stats);
    pending_init(&c.pend);
    resend_init(&c.resend);
    ackbatch_init(&c.acks);
    for (;;) {
        if (*stop && !c.draining)
            consume_begin_drain(&c);
        if (c.draining && consume_leave(&c, *stop > 1))
            break;
        if (!c.m && clock_mono_ns() >= c.retry_at)
            consume_connect(&c);
        consume_poll(&c);
        acker_take_outq(&c);
        acker_resend_due(&c);
        acker_flush(&c, c.draining); /* a drain acks at once: its linger starts when all are */
        metrics_set(c.wm ? c.wm->inflight : NULL, (double)c.outstanding);
    }
    consume_finish(&c);
    log_notice("stopped: received %" PRIu64 ", acked %" PRIu64 ", retried %" PRIu64
               ", dead %" PRIu64 ", missed %" PRIu64 ", duplicates %" PRIu64 ", stale %" PRIu64
               ", ack frames %" PRIu64 " (%" PRIu64 " held) for %" PRIu64 " deliveries",
               stats->received, stats->acked, stats->retried, stats->dead, stats->missed,
               stats->duplicates, stats->stale, stats->ack_frames, stats->ack_held,
               stats->ack_tags);
    return ERR_OK;
}
