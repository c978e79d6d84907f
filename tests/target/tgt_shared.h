/* tgt_shared: what every serving thread of the recording target shares: the status plan, the
 * record file, the counters /__stats reports, and the stop signal. Private to the target. */
#ifndef SALVO_TGT_SHARED_H
#define SALVO_TGT_SHARED_H

#include "tgt_plan.h"
#include "tgt_record.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tgt_shared {
    pthread_mutex_t mu; /* guards plan, rec and last_flush_ns */
    tgt_plan *plan;
    tgt_record *rec;
    int64_t last_flush_ns; /* monotonic */
    atomic_uint_fast64_t requests, parse_errors, accept_dropped, held_now;
    atomic_uint_fast64_t conns_opened, conns_open, conns_max_open;
    atomic_int stop;
    int stopfd; /* eventfd, made readable (and never read) to wake every thread at stop */
} tgt_shared;

/* Take over plan and rec (freed by tgt_shared_fini) and make the stop eventfd. ERR_OK or ERR_IO
 * (nothing taken over then). */
int tgt_shared_init(tgt_shared *sh, tgt_plan *plan, tgt_record *rec);
/* Free the plan, close the record file (flushing it) and the eventfd. Returns the final flush
 * result. Call once, after every thread has stopped. */
int tgt_shared_fini(tgt_shared *sh);

/* The plan's answer to a request (tgt_plan_next; fills e->status and e->seen) and its record
 * line, as one step, counted in requests. Thread-safe. Returns tgt_record_add's result. */
int tgt_shared_answer(tgt_shared *sh, const char *path, size_t path_len, const char *key,
                      size_t key_len, tgt_record_entry *e, tgt_plan_answer *a);
/* Write the buffered records out when force or when the last flush is older than every_ns.
 * Thread-safe. Returns ERR_OK or ERR_IO. */
int tgt_shared_flush(tgt_shared *sh, int force, int64_t every_ns);
/* Monotonic instant the next flush is due (INT64_MAX: nothing buffered). Thread-safe. */
int64_t tgt_shared_flush_due(tgt_shared *sh, int64_t every_ns);
/* Distinct keys the plan has counted. Thread-safe. */
size_t tgt_shared_keys(tgt_shared *sh);

/* A connection opened: its id (1, 2, ... in accept order over all threads). Thread-safe. */
uint64_t tgt_shared_conn_opened(tgt_shared *sh);
/* A connection closed. Thread-safe. */
void tgt_shared_conn_closed(tgt_shared *sh);

/* Ask every thread to stop and wake them. Thread-safe, idempotent. */
void tgt_shared_stop(tgt_shared *sh);

#endif
