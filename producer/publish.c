/* publish: confirmed batch publishing over one reconnecting AMQP connection. */
#include "publish.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "pmetrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Publishes between two non-blocking reads of broker events: a connection.blocked is seen
 * before hundreds of KiB pile up in the socket, and confirms never back up unread. */
#define PUBLISH_DRAIN_EVERY 256
/* Longest single wait inside a batch: deadlines (drain, confirm timeout) are checked this often. */
#define PUBLISH_POLL_MS 200
/* Nacks with no ack in between for this long: reconnect. RabbitMQ 3.10 nacks every publish
 * of a channel opened while a quorum queue's leader node was down (the channel's queue client
 * keeps asking the dead node), even after a new leader is elected; a new channel works. */
#define PUBLISH_NACK_STREAK_NS (1000 * CLOCK_NS_PER_MS)
#define PUBLISH_SEQ_NONE       UINT32_MAX

void publish_init(publish *p, const publish_opts *o, waker *w)
{
    memset(p, 0, sizeof *p);
    p->o = *o;
    p->w = w;
}

void publish_fini(publish *p)
{
    if (!p)
        return;
    mq_free(p->m);
    free(p->byseq);
    memset(p, 0, sizeof *p);
}

bool publish_connected(const publish *p)
{
    return p->m && mq_is_open(p->m);
}

/* Forget the connection; every message not yet confirmed is published again on the next. */
static void publish_drop(publish *p, firebatch *b, const char *why)
{
    log_warn("broker connection to %s lost: %s; reconnecting", mq_endpoint(p->m), why);
    mq_free(p->m);
    p->m = NULL;
    pmetrics_lost(p->pm);
    p->url_idx++; /* fail over: the next attempt starts with the next URL */
    p->nacked_since_mono_ns = 0;
    p->retry_at_mono_ns = 0;
    p->nseq = p->settle_lo = 0;
    p->seq_base = p->last_seq = 0;
    if (p->r)
        p->r->pass_real_ns = 0; /* the pass that counts is the one after the reconnect */
    for (size_t i = 0; b && i < b->nm; i++) {
        if (b->m[i].status == FIREBATCH_INFLIGHT || b->m[i].status == FIREBATCH_RETURNED) {
            b->m[i].status = FIREBATCH_PENDING;
            p->dirty = true;
        }
    }
}

static int publish_open(publish *p)
{
    char err[320] = "";
    mq *m = NULL;
    int rc = mq_connect(&p->o.mq, &p->url_idx, &m, err, sizeof err);
    if (rc == ERR_OK) {
        rc = mq_confirm_select(m, MQ_CH_MAIN);
        if (rc != ERR_OK)
            snprintf(err, sizeof err, "confirm.select refused: %s", err_str(rc));
    }
    if (rc == ERR_OK)
        rc = mq_declare_topology(m, err, sizeof err);
    if (rc != ERR_OK) {
        mq_free(m);
        p->failures++;
        int delay = mq_backoff_ms(p->failures);
        p->retry_at_mono_ns = clock_mono_ns() + delay * CLOCK_NS_PER_MS;
        log_warn("broker connect failed (attempt %u): %s; next try in %d ms", p->failures, err,
                 delay);
        return rc;
    }
    p->m = m;
    p->failures = 0;
    pmetrics_connected(p->pm, p->ever_connected);
    if (p->ever_connected && p->r)
        p->r->reconnects++;
    p->ever_connected = true;
    p->seq_base = p->last_seq = 0;
    p->nseq = p->settle_lo = 0;
    log_notice("connected to broker %s as %s", mq_endpoint(m), p->o.mq.conn_name);
    return ERR_OK;
}

static bool publish_drain_expired(publish *p, int64_t now_ns)
{
    if (p->drain_deadline_mono_ns == 0 && waker_peek(p->w, WAKER_TERM)) {
        p->drain_deadline_mono_ns = now_ns + p->o.drain_timeout_ms * CLOCK_NS_PER_MS;
        log_notice("stop requested: confirming in-flight jobs for up to %lld ms",
                   (long long)p->o.drain_timeout_ms);
    }
    return p->drain_deadline_mono_ns != 0 && now_ns >= p->drain_deadline_mono_ns;
}

int publish_connect(publish *p, bool in_batch)
{
    if (p->m && !mq_is_open(p->m))
        publish_drop(p, NULL, "connection found closed");
    while (!p->m) {
        int64_t now = clock_mono_ns();
        if (in_batch && publish_drain_expired(p, now))
            return ERR_TIMEOUT;
        if (now >= p->retry_at_mono_ns) {
            publish_open(p);
            continue;
        }
        int64_t until = p->retry_at_mono_ns;
        if (in_batch && p->drain_deadline_mono_ns && p->drain_deadline_mono_ns < until)
            until = p->drain_deadline_mono_ns;
        unsigned bits = waker_wait(p->w, clock_ms_until(now, until, 60000));
        if (!in_batch && bits)
            return ERR_INTR;
    }
    return ERR_OK;
}

void publish_abandon(publish *p, const char *why)
{
    if (p->m)
        publish_drop(p, NULL, why);
}

int publish_try(publish *p)
{
    if (p->m)
        return ERR_OK;
    if (clock_mono_ns() < p->retry_at_mono_ns)
        return ERR_MQ_CONNECT;
    return publish_open(p);
}

/* ---- confirms ----------------------------------------------------------------------------- */

static void publish_settle_one(publish *p, firebatch *b, size_t k, bool ok)
{
    uint32_t i = p->byseq[k];
    if (i == PUBLISH_SEQ_NONE)
        return;
    p->byseq[k] = PUBLISH_SEQ_NONE;
    firebatch_msg *m = &b->m[i];
    if (m->status == FIREBATCH_INFLIGHT && ok) {
        firebatch_confirm(b, i);
    } else if (m->status == FIREBATCH_INFLIGHT || m->status == FIREBATCH_RETURNED) {
        m->status = FIREBATCH_PENDING;
        p->dirty = true;
    }
}

/* basic.ack / basic.nack for tag (and every earlier one when multiple). */
static void publish_settle(publish *p, firebatch *b, uint64_t tag, bool multiple, bool ok)
{
    if (tag <= p->seq_base || tag - p->seq_base > p->nseq)
        return; /* not from this batch on this connection */
    size_t hi = (size_t)(tag - p->seq_base - 1);
    size_t lo = multiple ? p->settle_lo : hi;
    for (size_t k = lo; k <= hi; k++)
        publish_settle_one(p, b, k, ok);
    while (p->settle_lo < p->nseq && p->byseq[p->settle_lo] == PUBLISH_SEQ_NONE)
        p->settle_lo++;
    p->progress_mono_ns = clock_mono_ns();
    if (ok)
        p->nacked_since_mono_ns = 0;
    else if (p->nacked_since_mono_ns == 0)
        p->nacked_since_mono_ns = p->progress_mono_ns;
    if (!ok)
        log_warn("broker nacked publish %llu%s; publishing again with the same id",
                 (unsigned long long)tag, multiple ? " and earlier" : "");
}

/* basic.return precedes the message's ack: mark it so that ack does not count. Returns come
 * back in publish order, so the search from the oldest unsettled one is short. */
static void publish_returned(publish *p, firebatch *b, const char *id)
{
    for (size_t k = p->settle_lo; id && k < p->nseq; k++) {
        uint32_t i = p->byseq[k];
        if (i != PUBLISH_SEQ_NONE && strcmp(b->m[i].id, id) == 0) {
            b->m[i].status = FIREBATCH_RETURNED;
            return;
        }
    }
}

/* Handle one broker event; b is NULL between batches. ERR_MQ_CLOSED when the connection was
 * dropped. */
static int publish_event(publish *p, firebatch *b, mq_event *ev)
{
    switch (ev->kind) {
    case MQ_EV_WAKE:
        waker_drain(p->w);
        break;
    case MQ_EV_ACK:
    case MQ_EV_NACK:
        if (b)
            publish_settle(p, b, ev->tag, ev->multiple, ev->kind == MQ_EV_ACK);
        break;
    case MQ_EV_RETURN:
        log_msg(LOG_WARN, ev->message_id,
                "returned unroutable by the broker (%d %s); declaring "
                "the topology again and publishing it again",
                ev->reply_code, ev->reason);
        if (b)
            publish_returned(p, b, ev->message_id);
        p->redeclare = true;
        break;
    case MQ_EV_BLOCKED:
        log_warn("broker blocked publishing (resource alarm); holding publishes, connection "
                 "kept alive");
        pmetrics_blocked(p->pm, true);
        break;
    case MQ_EV_UNBLOCKED:
        log_notice("broker unblocked publishing; resuming");
        pmetrics_blocked(p->pm, false);
        p->progress_mono_ns = clock_mono_ns();
        break;
    case MQ_EV_DELIVERY: /* the only queue a producer consumes is its lease (lease.h) */
        /* A newer token (renewal, or a second one from a start-up race) replaces the one
         * held: ack the older, so exactly one stays with the active producer. */
        if (p->token_gen == mq_generation(p->m) && p->token_tag != 0)
            mq_ack(p->m, p->token_gen, MQ_CH_MAIN, p->token_tag);
        p->token_gen = mq_generation(p->m);
        p->token_tag = ev->delivery.tag;
        p->token_mono_ns = clock_mono_ns();
        log_debug("lease token delivered (tag %llu)", (unsigned long long)ev->delivery.tag);
        break;
    case MQ_EV_CANCELLED: /* the lease queue was deleted: give the lease up with the link */
        publish_drop(p, b, "the broker cancelled the lease consumer (queue deleted?)");
        return ERR_MQ_CLOSED;
    case MQ_EV_CLOSED:
        publish_drop(p, b, ev->reason);
        return ERR_MQ_CLOSED;
    default:
        break;
    }
    return ERR_OK;
}

/* Wait up to timeout_ms for one event and handle it. */
static int publish_poll(publish *p, firebatch *b, int timeout_ms, mq_ev_kind *kind)
{
    mq_event ev;
    mq_poll(p->m, timeout_ms, waker_fd(p->w), &ev);
    *kind = ev.kind;
    int rc = publish_event(p, b, &ev);
    mq_event_fini(&ev);
    return rc;
}

int publish_service(publish *p, int timeout_ms)
{
    mq_ev_kind kind;
    if (!p->m)
        return ERR_MQ_CLOSED;
    return publish_poll(p, NULL, timeout_ms, &kind);
}

/* Read every event already waiting, without blocking. */
static int publish_drain(publish *p, firebatch *b)
{
    for (;;) {
        mq_ev_kind kind;
        int rc = publish_poll(p, b, 0, &kind);
        if (rc != ERR_OK || kind == MQ_EV_TIMEOUT)
            return rc;
    }
}

/* ---- publishing --------------------------------------------------------------------------- */

static int publish_track(publish *p, uint32_t i, uint64_t seq)
{
    if (p->nseq == p->capseq) {
        size_t cap = p->capseq ? p->capseq * 2 : 1024;
        uint32_t *n = realloc(p->byseq, cap * sizeof *n);
        if (!n)
            return ERR_NOMEM;
        p->byseq = n;
        p->capseq = cap;
    }
    /* Every publish on MQ_CH_MAIN is ours, so sequence numbers are consecutive. */
    if (seq != p->seq_base + p->nseq + 1)
        log_err("confirm sequence out of step (%llu, expected %llu)", (unsigned long long)seq,
                (unsigned long long)(p->seq_base + p->nseq + 1));
    p->byseq[p->nseq++] = i;
    p->last_seq = seq;
    return ERR_OK;
}

/* One pass over the batch publishing every pending message, until done or blocked. */
static int publish_send(publish *p, firebatch *b, publish_report *r)
{
    int64_t now_ms = clock_real_ns() / CLOCK_NS_PER_MS;
    firebatch_props(b, now_ms);
    p->dirty = false;
    unsigned sent = 0;
    for (size_t i = 0; i < b->nm; i++) {
        if (b->m[i].status != FIREBATCH_PENDING)
            continue;
        if (mq_is_blocked(p->m)) {
            p->dirty = true;
            return ERR_OK;
        }
        if (r->pass_real_ns == 0) {
            r->pass_real_ns = clock_real_ns();
            r->pass_mono_ns = clock_mono_ns();
        }
        mq_msg msg;
        mq_hdr hdrs[FIREBATCH_NHDRS];
        uint64_t seq = 0;
        firebatch_amqp(b, i, now_ms, hdrs, &msg);
        msg.user_id = mq_user(p->m); /* RabbitMQ refuses any other: workers trust it */
        if (mq_publish(p->m, MQ_CH_MAIN, &msg, &seq) != ERR_OK) {
            p->dirty = true;
            return ERR_MQ_CLOSED;
        }
        b->m[i].status = FIREBATCH_INFLIGHT;
        if (publish_track(p, (uint32_t)i, seq) != ERR_OK)
            return ERR_NOMEM;
        r->published++;
        if (log_enabled(LOG_DEBUG))
            log_msg(LOG_DEBUG, b->m[i].id, "published, confirm seq %llu", (unsigned long long)seq);
        if (++sent % PUBLISH_DRAIN_EVERY == 0) {
            int rc = publish_drain(p, b);
            if (rc != ERR_OK)
                return rc;
        }
    }
    if (sent > 0)
        r->publish_ns = clock_mono_ns() - r->pass_mono_ns;
    return ERR_OK;
}

/* Before publishing returned messages again: declare the topology (someone deleted a queue or
 * binding), after a growing pause when that did not help. Only with nothing in flight, so
 * the RPC replies cannot interleave with confirms. */
static int publish_redeclare(publish *p, firebatch *b, unsigned *rounds)
{
    if (!p->redeclare || p->settle_lo < p->nseq)
        return ERR_OK;
    if (*rounds > 0)
        waker_wait(p->w, mq_backoff_ms(*rounds));
    (*rounds)++;
    char err[320] = "";
    if (mq_declare_topology(p->m, err, sizeof err) != ERR_OK) {
        log_err("declaring the topology again failed: %s", err);
        publish_drop(p, b, err);
        return ERR_MQ_CLOSED;
    }
    p->redeclare = false;
    return ERR_OK;
}

/* Reconnect when the broker stopped confirming without saying it is blocked. */
static void publish_check_stall(publish *p, firebatch *b, int64_t now)
{
    if (p->m && p->nacked_since_mono_ns && now - p->nacked_since_mono_ns > PUBLISH_NACK_STREAK_NS) {
        mq_abandon(p->m); /* its polite close is slow too: ~2 s between drop and reconnect */
        publish_drop(p, b, "the broker nacked every publish for 1 s");
        return;
    }
    if (!p->m || p->settle_lo >= p->nseq || mq_is_blocked(p->m)) {
        p->progress_mono_ns = now;
        return;
    }
    if (now - p->progress_mono_ns > p->o.confirm_timeout_ms * CLOCK_NS_PER_MS) {
        char why[96];
        snprintf(why, sizeof why, "no publisher confirm for %lld ms",
                 (long long)p->o.confirm_timeout_ms);
        publish_drop(p, b, why);
    }
}

/* One round: (re)connect, publish what is pending, wait for one event. */
static int publish_round(publish *p, firebatch *b, publish_report *r, unsigned *rounds)
{
    if (!p->m && p->o.fenced)
        return ERR_MQ_CLOSED; /* the lease went with the connection: stop publishing at once */
    if (!p->m) {
        int rc = publish_connect(p, true);
        if (rc != ERR_OK)
            return rc;
    }
    if (publish_redeclare(p, b, rounds) != ERR_OK)
        return ERR_OK;
    if (p->dirty && !p->redeclare && !mq_is_blocked(p->m)) {
        int rc = publish_send(p, b, r);
        if (rc == ERR_NOMEM)
            return rc;
        if (rc != ERR_OK) {
            if (p->m)
                publish_drop(p, b, "publish failed");
            return ERR_OK;
        }
    }
    mq_ev_kind kind;
    if (p->m && b->unconfirmed > 0)
        publish_poll(p, b, PUBLISH_POLL_MS, &kind);
    publish_check_stall(p, b, clock_mono_ns());
    return ERR_OK;
}

int publish_batch(publish *p, firebatch *b, publish_report *r)
{
    memset(r, 0, sizeof *r);
    int64_t start = clock_mono_ns();
    p->r = r;
    p->nseq = p->settle_lo = 0;
    p->seq_base = p->last_seq;
    p->dirty = true;
    p->progress_mono_ns = start;
    unsigned rounds = 0;
    int rc = ERR_OK;
    while (b->unconfirmed > 0 && rc == ERR_OK) {
        if (publish_drain_expired(p, clock_mono_ns()))
            rc = ERR_TIMEOUT;
        else
            rc = publish_round(p, b, r, &rounds);
    }
    int64_t end = clock_mono_ns();
    r->total_ns = end - start;
    r->confirm_ns = r->pass_real_ns ? end - r->pass_mono_ns : 0;
    if (!r->pass_real_ns) /* nothing to publish, or never connected: lateness as of now */
        r->pass_real_ns = clock_real_ns();
    p->r = NULL;
    return rc;
}
