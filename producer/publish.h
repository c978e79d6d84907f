/* publish: the producer's broker side. It owns the one AMQP connection (confirm mode on
 * MQ_CH_MAIN), reconnects with backoff, and publishes a batch as pipelined persistent mandatory
 * publishes followed by publisher confirms: nacked and returned messages are published again
 * with the same message_id, and after a connection loss every unconfirmed message is. It stops
 * publishing while the broker says connection.blocked and keeps servicing the connection.
 * Every wait is bounded and wakes on the waker (signals, the next instant). */
#ifndef SALVO_PUBLISH_H
#define SALVO_PUBLISH_H

#include "firebatch.h"
#include "mq.h"
#include "waker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct publish_opts {
    mq_opts mq;                 /* strings borrowed for the publisher's life */
    int64_t confirm_timeout_ms; /* no confirm progress this long (not blocked): reconnect */
    int64_t drain_timeout_ms;   /* after SIGTERM, keep confirming a batch at most this long */
    bool fenced; /* the connection carries a lease (lease.h): a lost connection ends the batch */
} publish_opts;

/* What one batch cost, for its log line. The "pass" is the round of publishes that got the
 * batch through: the first one, or the one after the last reconnect. */
typedef struct publish_report {
    int64_t pass_real_ns; /* realtime when that pass began: its lateness is what counts */
    int64_t pass_mono_ns;
    int64_t publish_ns; /* that pass's writes, first to last */
    int64_t confirm_ns; /* that pass's start to the last confirm */
    int64_t total_ns;   /* publish_batch start to end, outages included */
    unsigned published; /* publishes, republications (nack, return, reconnect) included */
    unsigned reconnects;
} publish_report;

typedef struct publish {
    publish_opts o;
    waker *w; /* borrowed */
    mq *m;    /* NULL while disconnected */
    size_t url_idx;
    unsigned failures;        /* consecutive failed connects, for the backoff */
    int64_t retry_at_mono_ns; /* no connect attempt before this */
    /* Confirm tracking for the batch in progress on the current connection: byseq[k] is the
     * message published with sequence number seq_base + 1 + k. */
    uint32_t *byseq;
    size_t nseq, capseq, settle_lo;
    uint64_t seq_base, last_seq;
    bool dirty;          /* some message is pending (re)publication */
    bool redeclare;      /* a message came back unroutable: declare the topology again first */
    bool ever_connected; /* a later connect is a reconnect, for the report */
    int64_t drain_deadline_mono_ns; /* set at SIGTERM during a batch */
    int64_t progress_mono_ns;       /* last confirm progress, for confirm_timeout */
    int64_t nacked_since_mono_ns;   /* first nack since the last ack on this connection, or 0 */
    publish_report *r;              /* the batch in progress's report, NULL between batches */
    uint64_t token_gen;    /* connection generation a delivery (the lease token) last came on */
    uint64_t token_tag;    /* ... its delivery tag, to ack it when the token is renewed */
    int64_t token_mono_ns; /* ... and when it came */
    struct pmetrics *pm;   /* borrowed, NULL = none: connection state for /healthz */
} publish;

/* Prepare (no connection yet). o's strings and w are borrowed. */
void publish_init(publish *p, const publish_opts *o, waker *w);
/* Close the connection politely when healthy (bounded by the RPC timeout) and free. */
void publish_fini(publish *p);
bool publish_connected(const publish *p);

/* Connect (all URLs, starting after the last one that failed), confirm mode, declare the
 * topology; after a failure wait the backoff on the waker and retry. Logs each attempt and the
 * node reached. Outside a batch (in_batch false) returns ERR_INTR as soon as the waker has
 * anything pending (signal, instant reached), leaving the bits for the caller. In a batch it
 * keeps trying until the SIGTERM drain deadline (ERR_TIMEOUT). ERR_OK when connected. */
int publish_connect(publish *p, bool in_batch);

/* Close the connection (a lease held on it goes with it) and reconnect later; why is logged. */
void publish_abandon(publish *p, const char *why);

/* One attempt (every URL once) when disconnected and not backing off, so the connection exists
 * before the first batch is built. ERR_OK when connected; else the error of the attempt. */
int publish_try(publish *p);

/* Keep an idle connection serviced (heartbeats, blocked/unblocked, a broker close) for up to
 * timeout_ms, returning early when the waker fires (its bits are drained into it). Returns
 * ERR_OK, or ERR_MQ_CLOSED when the connection was lost (it is dropped; call publish_connect). */
int publish_service(publish *p, int timeout_ms);

/* Publish every message of b and wait until the broker has confirmed all of them, republishing
 * as needed across nacks, returns and reconnects. Blocks while the broker is blocked or down;
 * a SIGTERM (seen on the waker, left pending) bounds the wait by the drain timeout. ERR_OK when
 * all are confirmed; ERR_TIMEOUT when the drain deadline passed first (confirmed firings are
 * those with f->unconfirmed == 0); ERR_MQ_CLOSED when fenced and the connection was lost (no
 * reconnect: the lease went with it); ERR_NOMEM. r is filled in every case. */
int publish_batch(publish *p, firebatch *b, publish_report *r);

#endif
