/* pool: the worker's executor threads and the hold timer, built nng-style: everything is
 * allocated before any thread starts, and stopping either drains (every task finished and
 * settled) or aborts (unsettled tasks dropped for the broker to redeliver). The I/O thread hands
 * each delivery to the least-loaded executor; the hold timer hands due tasks back the same way. */
#ifndef SALVO_POOL_H
#define SALVO_POOL_H

#include "inflight.h"
#include "outq.h"
#include "recent.h"
#include "settle.h"
#include "task.h"
#include "wmetrics.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct pool pool;

typedef struct pool_opts {
    size_t threads;           /* executor threads, >= 1 */
    size_t max_inflight;      /* deliveries in flight at once: sizes connection limits */
    size_t fd_budget;         /* transfers allowed to run at once (descriptors / 3) */
    size_t capture_cap;       /* reply / output bytes kept per job */
    const char *const *allow; /* programs command jobs may run; borrowed for the pool's life */
    size_t nallow;
    const settle_env *env; /* borrowed for the pool's life */
    outq *out;             /* borrowed */
    recent *recent;        /* borrowed */
    inflight *inflight;    /* borrowed */
    wmetrics *wm;          /* borrowed; NULL when metrics are off */
} pool_opts;

/* Allocate the executors (each with its libcurl multi handle) and the hold timer. No thread runs
 * yet. ERR_OK, ERR_INVAL or ERR_NOMEM; the caller owns *out (pool_free). */
int pool_new(const pool_opts *o, pool **out);
/* Start the hold thread and every executor thread. ERR_OK or ERR_NOMEM (then pool_free). */
int pool_start(pool *p);
/* Give a task (ownership moves) to the least-loaded executor. Thread-safe. */
void pool_dispatch(pool *p, task *t);
/* The I/O thread's current connection generation (0 while disconnected). A task delivered on
 * another generation is not started: its connection is gone, so it could never be acked and
 * the broker has already handed it out again. Thread-safe. */
void pool_set_generation(pool *p, uint64_t gen);
/* Tasks in the pool now: queued, running or held. Thread-safe. */
size_t pool_load(pool *p);
/* Stop: abort = drop every unsettled task now; otherwise wait for executors to run dry (the
 * caller first waits until it has received every settle). Joins all threads. Call once. */
void pool_stop(pool *p, bool abort);
/* Stop (aborting) if still running, and free. Safe on NULL. */
void pool_free(pool *p);

#endif
