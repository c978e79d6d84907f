/* acker: how the worker's I/O thread settles what executors send back. Each settle is either
 * acked (success, duplicate; acks go out in batches, see ackbatch.h) or its follow-up (retry, dead
 * letter, missed) is published on the confirmed channel and the original acked when the confirm
 * arrives; a nacked follow-up is published again after a backoff (resend.h), and a publish channel
 * that keeps nacking is replaced. Every settle ends in acker_done, which releases its inflight
 * claim and acks (or reruns) copies parked behind it. All of it runs on the I/O thread, the only
 * thread that touches the connection. */
#ifndef SALVO_ACKER_H
#define SALVO_ACKER_H

#include "ackbatch.h"
#include "consume.h"
#include "pending.h"
#include "resend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The I/O thread's state (consume.c runs the loop; acker.c settles). */
typedef struct consumer {
    const consume_opts *o;
    pool *pool;
    outq *q;
    recent *recent;
    inflight *inflight;
    wmetrics *wm;
    consume_stats *st;
    mq *m;            /* NULL while disconnected */
    int pub_ch;       /* the channel follow-ups go out on: MQ_CH_PUBLISH, or its stand-in */
    bool swap_wanted; /* replace pub_ch once its outstanding confirms are in (acker.c) */
    int64_t swap_by;  /* ... or at this instant at the latest */
    size_t next_url;
    unsigned failures;  /* consecutive failed connection rounds */
    int64_t retry_at;   /* monotonic ns of the next connection round */
    pending pend;       /* follow-ups awaiting confirms on this connection */
    resend resend;      /* nacked follow-ups waiting to be published again */
    ackbatch acks;      /* this connection's deliveries, acked in batches */
    settle *deferred;   /* settles held while the broker blocks publishing (LIFO is fine) */
    size_t outstanding; /* deliveries handed to the pool, not yet settled back */
    bool draining;
    bool pool_stopped;
    int64_t drain_deadline;
    int64_t linger_until; /* drained: close after this instant (0 = not yet drained) */
} consumer;

/* Take every settle the executors queued and settle it (or defer it while blocked). */
void acker_take_outq(consumer *c);
/* Settle what was deferred while the broker blocked publishing. */
void acker_undefer(consumer *c);
/* Publisher confirms (ack / nack) on the publish channel for tag (all <= tag when multiple).
 * A nacked follow-up waits in c->resend (its original stays unacked) until acker_resend_due. */
void acker_confirmed(consumer *c, uint64_t tag, bool multiple);
void acker_nacked(consumer *c, uint64_t tag, bool multiple);
/* Replace the publish channel when acker_nacked asked for it and its outstanding confirms are
 * in, then publish again the nacked follow-ups whose backoff is over (none while disconnected). */
void acker_resend_due(consumer *c);
/* End a settle: settled says whether its job's attempt is now settled for good. Frees s. */
void acker_done(consumer *c, settle *s, bool settled);
/* Send the batched acks that are due (every settled one when force: draining, closing). */
void acker_flush(consumer *c, bool force);

#endif
