/* acker: the I/O thread's settling of outcomes: publish the follow-up, ack the original once it
 * is confirmed, and resolve the copies parked behind it. */
#include "acker.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "topology.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a publish channel due for replacement may take to answer the publishes still
 * outstanding on it. They normally answer within milliseconds; past this the channel is
 * replaced anyway and those follow-ups are published again, which can duplicate one (a retry
 * then runs twice, with the same Idempotency-Key), as a lost connection can. */
#define ACKER_SWAP_WAIT_MS 2000

static const char *acker_id(const settle *s)
{
    return s->id ? s->id : "-";
}

/* The queue a follow-up is routed to (topology.c binds each of these keys to one queue). */
static void acker_queue(const settle *s, char *out, size_t cap)
{
    if (strcmp(s->exchange, TOPO_RETRY_EXCHANGE) == 0)
        snprintf(out, cap, "salvo.retry.%s", s->routing_key + 1); /* "r2" -> salvo.retry.2 */
    else
        snprintf(out, cap, "%s",
                 strcmp(s->routing_key, TOPO_MISSED_KEY) == 0 ? TOPO_MISSED_QUEUE
                                                              : TOPO_DEAD_QUEUE);
}

/* Ack a delivery of this connection: through the batch, or on its own when the batch does not
 * track it. */
static int acker_ack_tag(consumer *c, uint64_t gen, int channel, uint64_t tag)
{
    if (gen != mq_generation(c->m))
        return ERR_INVAL;
    if (!mq_is_open(c->m))
        return ERR_MQ_CLOSED;
    if (channel == MQ_CH_MAIN && ackbatch_settle(&c->acks, tag, clock_mono_ns()) == ERR_OK)
        return ERR_OK;
    return mq_ack(c->m, gen, channel, tag);
}

static int acker_send(void *arg, uint64_t tag, bool multiple)
{
    consumer *c = arg;
    uint64_t gen = mq_generation(c->m);
    return multiple ? mq_ack_upto(c->m, gen, MQ_CH_MAIN, tag) : mq_ack(c->m, gen, MQ_CH_MAIN, tag);
}

void acker_flush(consumer *c, bool force)
{
    if (!c->m || ackbatch_settled(&c->acks) == 0)
        return;
    int64_t now = clock_mono_ns();
    if (force || now >= ackbatch_due(&c->acks))
        ackbatch_flush(&c->acks, now, force, acker_send, c);
}

/* A copy parked behind an original that is now settled: ack it without running it. */
static void acker_ack_parked(consumer *c, task *t)
{
    c->outstanding--;
    if (c->m && acker_ack_tag(c, t->d.gen, t->d.channel, t->d.tag) == ERR_OK) {
        c->st->duplicates++;
        wmetrics_outcome(c->wm, "duplicate");
        log_msg(LOG_INFO, t->j.id, "duplicate attempt=%u: the running copy settled; acked",
                t->j.attempt);
    }
    task_free(t);
}

/* The end of every settle: release its claim, then deal with copies parked behind it. When the
 * original was settled they are duplicates; otherwise the ones the broker will not redeliver
 * anyway (same connection) run after all. */
void acker_done(consumer *c, settle *s, bool settled)
{
    task *parked = s->owns_claim ? inflight_release(c->inflight, s->id, s->attempt) : NULL;
    while (parked) {
        task *t = parked;
        parked = parked->next;
        if (settled) {
            acker_ack_parked(c, t);
        } else if (c->pool_stopped || !c->m || t->d.gen != mq_generation(c->m)) {
            c->outstanding--; /* the broker redelivers it */
            task_free(t);
        } else {
            task_rewind(t);
            pool_dispatch(c->pool, t);
        }
    }
    settle_free(s);
}

static void acker_publish_result(consumer *c, settle *s)
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
    mq_publish(c->m, c->pub_ch, &msg, NULL);
    free(s->result);
    s->result = NULL;
}

static void acker_log_followup(consumer *c, const settle *s)
{
    /* " lateness_ms=N" when the attempt started; a job refused before it ran has none. */
    char late[40] = "";
    if (s->lateness_ms != INT64_MIN)
        snprintf(late, sizeof late, " lateness_ms=%lld", (long long)s->lateness_ms);
    const char *sched = s->schedule ? s->schedule : "-";
    if (s->action == OUTCOME_RETRY) {
        c->st->retried++;
        log_msg(LOG_NOTICE, acker_id(s),
                "retried schedule=%s attempt=%u status=%d next_attempt=%u level=r%d%s", sched,
                s->attempt, s->status, s->attempt + 1, s->retry_level, late);
    } else if (s->action == OUTCOME_MISSED) {
        c->st->missed++;
        log_msg(LOG_WARN, acker_id(s), "missed schedule=%s attempt=%u reason=%s%s", sched,
                s->attempt, s->reason, late);
    } else {
        c->st->dead++;
        log_msg(LOG_WARN, acker_id(s), "dead-lettered schedule=%s attempt=%u status=%d reason=%s%s",
                sched, s->attempt, s->status, s->reason, late);
    }
}

/* Ack the original and remember the attempt as settled. */
static void acker_ack(consumer *c, settle *s)
{
    if (acker_ack_tag(c, s->gen, s->channel, s->tag) == ERR_OK) {
        c->st->acked++;
        wmetrics_settled(c->wm, s->label, s->reason, s->retry_level);
    }
    if (s->id)
        recent_add(c->recent, s->id, s->attempt);
}

static void acker_followup(consumer *c, settle *s)
{
    mq_msg msg;
    settle_message(s, &msg);
    msg.user_id = mq_user(c->m); /* RabbitMQ forces it anyway; workers accept their own login */
    uint64_t seq = 0;
    if (mq_publish(c->m, c->pub_ch, &msg, &seq) != ERR_OK ||
        pending_add(&c->pend, seq, s) != ERR_OK) {
        /* The connection is failing (the next poll reports it) or memory ran out: leave the
         * original unacked for the broker to redeliver. */
        log_msg(LOG_WARN, acker_id(s), "follow-up publish failed; job left for redelivery");
        acker_done(c, s, false);
    }
}

/* An outcome whose delivery came on a connection we no longer have. */
static void acker_stale(consumer *c, settle *s)
{
    c->st->stale++;
    wmetrics_outcome(c->wm, "stale");
    bool ok = s->action == OUTCOME_ACK && strcmp(s->label, "ok") == 0;
    if (ok && s->id)
        recent_add(c->recent, s->id, s->attempt);
    log_msg(LOG_NOTICE, acker_id(s),
            "outcome %s not acked: delivered on an older connection; the broker redelivers it%s",
            s->label, ok ? " and the copy will be acked as a duplicate" : "");
    acker_done(c, s, ok);
}

static void acker_settle(consumer *c, settle *s)
{
    if (!c->m || s->gen != mq_generation(c->m)) {
        acker_stale(c, s);
        return;
    }
    /* While the publish channel is about to be replaced, nothing new goes out on it: a follow-up
     * still unconfirmed when it closes would have to be published again, maybe twice over. */
    bool publishes = s->action != OUTCOME_ACK || s->result;
    if (mq_is_blocked(c->m) || (c->swap_wanted && publishes)) {
        s->next = c->deferred;
        c->deferred = s;
        return;
    }
    acker_publish_result(c, s);
    if (s->action == OUTCOME_ACK) {
        if (strcmp(s->label, "duplicate") == 0)
            c->st->duplicates++;
        acker_ack(c, s);
        acker_done(c, s, true);
        return;
    }
    acker_followup(c, s);
}

void acker_take_outq(consumer *c)
{
    for (settle *s = outq_take(c->q); s;) {
        settle *next = s->next;
        c->outstanding--;
        acker_settle(c, s);
        s = next;
    }
}

void acker_undefer(consumer *c)
{
    settle *list = c->deferred;
    c->deferred = NULL;
    while (list) {
        settle *s = list;
        list = list->next;
        acker_settle(c, s);
    }
}

/* The end of a nack streak: one line, so the warning that started it has its answer. */
static void acker_log_confirmed_late(const settle *s)
{
    char queue[64];
    acker_queue(s, queue, sizeof queue);
    log_msg(LOG_INFO, acker_id(s),
            "follow-up confirmed after nacks queue=%s attempt=%u nacks=%u waited_ms=%lld", queue,
            s->attempt, s->nacks,
            (long long)((clock_mono_ns() - s->first_nack_ns) / CLOCK_NS_PER_MS));
}

void acker_confirmed(consumer *c, uint64_t tag, bool multiple)
{
    for (settle *s = pending_confirm(&c->pend, tag, multiple); s;) {
        settle *next = s->next;
        if (s->returned) {
            /* The follow-up had nowhere to go: hand the original to the queue's own
             * dead-letter route instead of acking it into nothing. */
            c->st->returned++;
            log_msg(LOG_ERR, acker_id(s),
                    "follow-up to %s/%s was unroutable; original rejected to the queue's "
                    "dead-letter exchange",
                    s->exchange, s->routing_key);
            if (mq_reject(c->m, s->gen, s->channel, s->tag, false) == ERR_OK)
                ackbatch_forget(&c->acks, s->tag);
        } else {
            if (s->nacks) {
                acker_log_confirmed_late(s);
                resend_recovered(&c->resend);
            }
            acker_log_followup(c, s);
            acker_ack(c, s);
        }
        acker_done(c, s, !s->returned);
        s = next;
    }
}

static void acker_log_nack(const settle *s, int64_t now)
{
    char queue[64];
    acker_queue(s, queue, sizeof queue);
    long long wait = (long long)((s->resend_at_ns - now) / CLOCK_NS_PER_MS);
    if (s->nacks == 1) {
        log_msg(LOG_WARN, acker_id(s),
                "follow-up nacked by the broker queue=%s attempt=%u nacks=1; original kept "
                "unacked, publishing again in %lld ms",
                queue, s->attempt, wait);
        return;
    }
    log_msg(LOG_NOTICE, acker_id(s),
            "follow-up still nacked queue=%s attempt=%u nacks=%u for_ms=%lld; publishing again "
            "in %lld ms",
            queue, s->attempt, s->nacks, (long long)((now - s->first_nack_ns) / CLOCK_NS_PER_MS),
            wait);
}

/* Replace a publish channel that has nacked a follow-up for over a second (resend.h says why).
 * Only that channel closes: the consuming one, and every original unacked on it, stays. What
 * awaited a confirm on the old channel, and what waits out a backoff, goes out on the new one
 * at once; late confirms of the old channel are ignored (consume_event). */
static void acker_reopen(consumer *c, int64_t now)
{
    int from = c->pub_ch, to = from == MQ_CH_PUBLISH ? MQ_CH_PUBLISH_ALT : MQ_CH_PUBLISH;
    char err[256] = "";
    c->swap_wanted = false;
    if (mq_channel_swap(c->m, from, to, err, sizeof err) != ERR_OK) {
        /* The connection is unusable now: the deferred follow-ups fail to publish and are left
         * for redelivery, and the next poll reports the loss. */
        log_warn("replacing the publish channel failed: %s", err);
        acker_undefer(c);
        return;
    }
    c->pub_ch = to;
    metrics_inc(c->wm ? c->wm->channel_swaps : NULL);
    size_t n = 0;
    settle *left[2] = {pending_take_all(&c->pend), resend_take_all(&c->resend)};
    for (int i = 0; i < 2; i++) {
        for (settle *s = left[i]; s; n++) {
            settle *next = s->next;
            resend_put(&c->resend, s, now);
            s = next;
        }
    }
    log_warn("publish channel %d kept nacking follow-ups; replaced by channel %d (next no sooner "
             "than in %lld ms), %zu follow-ups published again on it",
             from, to, (long long)((c->resend.reopen_at_ns - now) / CLOCK_NS_PER_MS), n);
    if (!mq_is_blocked(c->m))
        acker_undefer(c);
}

/* A nack means the broker could not take the follow-up. Publishing it again at once would
 * spin for as long as the cause lasts (a reject-publish length limit, a channel stuck
 * nacking): keep the original unacked and ask again after a backoff. */
void acker_nacked(consumer *c, uint64_t tag, bool multiple)
{
    int64_t now = clock_mono_ns();
    bool reopen = false;
    for (settle *s = pending_confirm(&c->pend, tag, multiple); s;) {
        settle *next = s->next;
        metrics_inc(c->wm ? c->wm->followup_nacks : NULL);
        resend_add(&c->resend, s, now);
        if (resend_notable(s, now))
            acker_log_nack(s, now);
        reopen = reopen || resend_reopen_due(&c->resend, s, now);
        s = next;
    }
    if (reopen && !c->swap_wanted) {
        resend_reopened(&c->resend, now);
        c->swap_wanted = true;
        c->swap_by = now + ACKER_SWAP_WAIT_MS * CLOCK_NS_PER_MS;
    }
}

void acker_resend_due(consumer *c)
{
    if (!c->m)
        return;
    /* Never while blocked: the broker does not read a blocked connection, so the close would
     * wait out the RPC timeout and take the connection with it. */
    int64_t now = clock_mono_ns();
    bool quiet = pending_count(&c->pend) == 0 || now >= c->swap_by;
    if (c->swap_wanted && quiet && !mq_is_blocked(c->m))
        acker_reopen(c, now);
    if (resend_count(&c->resend) == 0)
        return;
    for (settle *s = resend_take_due(&c->resend, now); s;) {
        settle *next = s->next;
        s->next = NULL;
        s->returned = false; /* the new publish gets its own return if it is unroutable */
        log_msg(LOG_DEBUG, acker_id(s), "follow-up published again after %u nacks", s->nacks);
        acker_settle(c, s);
        s = next;
    }
}
