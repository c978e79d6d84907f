/* executor: one pool thread. It owns a libcurl multi handle and drives every HTTP transfer it
 * started on it (hundreds or thousands at once), plus the commands it spawned. Tasks reach it
 * through a mutex-protected inbox and a curl_multi_wakeup; it decodes and admits them, hands
 * early ones to the hold timer, starts the rest, and turns each outcome into a settle for the
 * I/O thread. It never touches the broker connection. */
#ifndef SALVO_EXECUTOR_H
#define SALVO_EXECUTOR_H

#include "hold.h"
#include "httpcall.h"
#include "inflight.h"
#include "outq.h"
#include "recent.h"
#include "settle.h"
#include "task.h"
#include "wmetrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* State every executor of a pool shares. Filled before threads start and read-only after, except
 * the atomics; the objects it points to are thread-safe themselves. */
typedef struct exec_shared {
    const settle_env *env;
    outq *out;
    recent *recent;
    inflight *inflight;
    wmetrics *wm; /* NULL when metrics are off */
    hold *hold;
    size_t capture_cap;       /* response / output bytes kept per job */
    const char *const *allow; /* programs command jobs may run */
    size_t nallow;
    httpcall_limits limits;        /* per multi handle */
    size_t fd_budget;              /* running transfers allowed at once, from RLIMIT_NOFILE */
    atomic_size_t running;         /* transfers and commands running, all executors */
    atomic_uint_fast64_t conn_gen; /* the I/O thread's connection generation; 0 while down */
    atomic_llong fd_warned_ns;     /* last "near the descriptor budget" warning (monotonic) */
} exec_shared;

typedef struct executor {
    exec_shared *sh;
    int idx;
    httpcall_multi *multi;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards the inbox, the due list and the stop flags */
    task *in_head, *in_tail;
    task *due_head, *due_tail; /* released by the hold: started before any waiting admission */
    bool stopping, aborting;
    atomic_size_t load; /* tasks pushed and not yet settled or handed to the hold */
    /* Executor-thread only. */
    task *backlog_head, *backlog_tail; /* admitted, waiting for descriptor budget */
    task *started_log;                 /* started this pass, logged after the perform */
    task *running;                     /* HTTP transfers attached to multi (next/prev) */
    size_t nheld;                      /* running transfers whose request is still held */
    task *held;                        /* those transfers (hnext/hprev) */
    int64_t held_next_ns;              /* earliest due instant among them (realtime) */
    int release_fd;                    /* realtime timerfd armed at held_next_ns; -1: none */
    int64_t release_armed_ns;          /* the instant it is armed at; 0: disarmed */
    task **cmds;                       /* running commands */
    size_t ncmds, max_cmds;
} executor;

/* Allocate the executor's multi handle and command table (no thread yet). ERR_OK or
 * ERR_NOMEM. */
int executor_init(executor *ex, exec_shared *sh, int idx, size_t max_cmds);
/* Start the thread. ERR_OK or ERR_NOMEM. */
int executor_start(executor *ex);
/* Hand over a task (ownership moves). Thread-safe; wakes the executor. */
void executor_push(executor *ex, task *t);
/* Hand over an admitted task whose instant has come (ownership moves): it is started ahead of
 * every delivery still waiting for admission, even in the middle of a pass. Thread-safe; wakes
 * the executor. */
void executor_push_due(executor *ex, task *t);
/* Tasks this executor is responsible for now. Thread-safe. */
size_t executor_load(executor *ex);
/* Ask the thread to stop: gracefully once it has nothing left, or at once (abort) dropping every
 * task it holds without settling it (the broker redelivers them). Thread-safe. */
void executor_stop(executor *ex, bool abort);
/* Wait for the thread to end (after executor_stop). */
void executor_join(executor *ex);
/* Join the thread (aborting it if it still runs) and free everything, dropping unsettled tasks.
 * Safe on a zeroed executor and on one whose executor_init failed. */
void executor_fini(executor *ex);

#endif
