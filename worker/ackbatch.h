/* ackbatch: the consumer channel's delivery tags on one connection, so that settled jobs are
 * acked together: one basic.ack with multiple=true covers the longest run of settled tags at the
 * front, instead of one basic.ack per job. A quorum queue turns every ack into a Raft command, so
 * this cuts the broker's work per job as well as the worker's sends.
 *
 * Correctness rests on one invariant: every delivery on the channel is tracked from its arrival
 * until it is acked or rejected, in tag order (RabbitMQ numbers a channel's deliveries 1, 2, 3...).
 * A multiple ack at tag T is sent only when every tracked tag <= T is settled, so it can never
 * ack a job whose outcome is not settled; and T itself is always still unacked (RabbitMQ closes
 * the channel on a multiple ack at an unknown tag). A settled tag behind an unsettled one (a slow
 * job at the front) is acked on its own once it has waited ACKBATCH_HOLD_NS, so a long job never
 * holds the others' acks (and the prefetch window) back.
 *
 * Used by the worker's I/O thread only; not thread-safe. */
#ifndef SALVO_ACKBATCH_H
#define SALVO_ACKBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long the first settle of a batch waits for others before the batch is acked: long enough
 * to gather the settles that executors finish together, short against anything a person or the
 * broker's prefetch would notice. */
#define ACKBATCH_DELAY_NS 1000000LL
/* The longest a settled tag waits for the unsettled tags in front of it before it is acked on
 * its own. */
#define ACKBATCH_HOLD_NS 2000000LL

typedef struct ackbatch_ent {
    uint64_t tag;
    int64_t settled_ns; /* monotonic instant of the settle; 0 while the job is open */
} ackbatch_ent;

typedef struct ackbatch {
    ackbatch_ent *v; /* v[head .. n): tracked tags, strictly increasing */
    size_t head, n, cap;
    size_t settled;      /* entries with settled_ns != 0 */
    uint64_t last;       /* the highest tag tracked on this connection */
    int64_t due_ns;      /* when the next flush is due; INT64_MAX when nothing is settled */
    int64_t hold_due_ns; /* no held tag reaches ACKBATCH_HOLD_NS before this (may be early) */
    uint64_t acks, tags; /* basic.ack frames sent, and the deliveries they covered */
    uint64_t held;       /* of those frames, acks of one tag sent after its hold */
} ackbatch;

/* Send one ack: every unacked delivery <= tag when multiple, else tag alone. Returns ERR_OK or
 * the send's error (the flush stops there: the connection is failing). */
typedef int (*ackbatch_send_fn)(void *arg, uint64_t tag, bool multiple);

/* An empty batch (no allocation until the first delivery). */
void ackbatch_init(ackbatch *b);
/* Free the table. Safe on a zeroed or finished batch. */
void ackbatch_fini(ackbatch *b);
/* Forget every tag (the connection they belong to is gone; the broker requeues its unacked
 * deliveries). The counters stay. */
void ackbatch_reset(ackbatch *b);
/* Track a delivery's tag, which must exceed every tag tracked before on this connection.
 * ERR_OK, ERR_INVAL (tag not increasing: not tracked) or ERR_NOMEM: an untracked delivery must
 * not be acked through the batch, so the caller rejects it back to the queue. */
int ackbatch_track(ackbatch *b, uint64_t tag);
/* The delivery's outcome is settled at now_ns (monotonic): ack it at the next flush. ERR_OK
 * (also when it was already settled: it is acked once), or ERR_NOTFOUND when the tag is not
 * tracked (the caller acks it on its own). */
int ackbatch_settle(ackbatch *b, uint64_t tag, int64_t now_ns);
/* The delivery was rejected (or given back): stop tracking it. No-op for an unknown tag. */
void ackbatch_forget(ackbatch *b, uint64_t tag);
/* Monotonic instant the next flush is due; INT64_MAX when nothing waits. */
int64_t ackbatch_due(const ackbatch *b);
/* Send the acks that are due at now_ns (all settled tags when force: before a close or while
 * draining) through send. Returns ERR_OK or the first error send returned. */
int ackbatch_flush(ackbatch *b, int64_t now_ns, bool force, ackbatch_send_fn send, void *arg);
/* Tracked deliveries whose ack has not been sent (settled or not). */
size_t ackbatch_count(const ackbatch *b);
/* Settled deliveries whose ack has not been sent yet. */
size_t ackbatch_settled(const ackbatch *b);

#endif
