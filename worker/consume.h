/* consume: the worker's I/O thread, the only thread that touches the broker connection. It
 * connects (failing over across the URL list, backing off between rounds), declares the
 * topology, consumes salvo.jobs with prefetch = the worker's capacity, hands each delivery to
 * the pool, and settles what the executors send back: publish the follow-up on the confirmed
 * publish channel and ack the original only once that publish is confirmed (success acks at
 * once). Heartbeats are serviced by every mq_poll, so they never wait for a job.
 * A delivery's tag is only acked on the connection generation that delivered it: after a
 * reconnect, outcomes of old deliveries are logged and left for the broker to redeliver (and a
 * success is remembered, so the redelivered copy is acked without running again). */
#ifndef SALVO_CONSUME_H
#define SALVO_CONSUME_H

#include "inflight.h"
#include "mq.h"
#include "outq.h"
#include "pool.h"
#include "recent.h"
#include "trust.h"
#include "wmetrics.h"

#include <signal.h>
#include <stdint.h>

typedef struct consume_opts {
    mq_opts mq;
    uint16_t prefetch;
    int64_t grace_ms;                   /* how long a stop waits for jobs in flight */
    const trust_publishers *publishers; /* user_ids allowed besides our own login; borrowed */
} consume_opts;

/* The objects the I/O thread shares with the pool; all borrowed for the run. */
typedef struct consume_deps {
    pool *pool; /* started; consume_run stops it */
    outq *q;
    recent *recent;
    inflight *inflight;
    wmetrics *wm; /* NULL when metrics are off */
} consume_deps;

/* Counters of one run, for the final log line and tests. */
typedef struct consume_stats {
    uint64_t received, acked, retried, dead, missed, duplicates, stale, returned, reconnects;
    /* basic.ack frames sent through the batch, those of a tag held behind an open one, and
     * the deliveries they covered */
    uint64_t ack_frames, ack_held, ack_tags;
} consume_stats;

/* Run until *stop becomes non-zero, then drain: cancel the consumer, let jobs in flight finish
 * for up to grace_ms, settle them, close. Jobs still running at the deadline are dropped
 * unacked (the broker redelivers them). Connection or declaration failures are logged and
 * retried with backoff for as long as the worker runs. Returns ERR_OK. Blocks; call from one
 * thread. */
int consume_run(const consume_opts *o, const consume_deps *d, volatile sig_atomic_t *stop,
                consume_stats *stats);

#endif
