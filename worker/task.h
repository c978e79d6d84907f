/* task: one delivery's life inside the worker. The I/O thread wraps a delivery in a task and
 * hands it to an executor; from then on exactly one thread at a time owns the task (executor,
 * hold timer, executor again), and the executor that finishes it turns it into a settle for the
 * I/O thread and frees it. Nothing in a task is shared with any other task. */
#ifndef SALVO_TASK_H
#define SALVO_TASK_H

#include "job.h"
#include "mq.h"
#include "outcome.h"

#include <stdbool.h>
#include <stdint.h>

struct httpcall;
struct cmdexec;

typedef struct task {
    struct task *next;     /* link in whichever queue holds the task now */
    struct task *prev;     /* with next: the executor's list of running transfers */
    struct task *log_next; /* the executor's "started this pass" list */
    struct task *hnext;    /* with hprev: the executor's running transfers still held */
    struct task *hprev;
    mq_delivery d; /* owned; the body is kept for dead letters until the task settles */
    job j;         /* decoded and expanded job, valid when decoded */
    bool decoded;
    bool bad_publisher; /* set by the I/O thread: user_id not on the allow-list */
    bool admitted;      /* admission done: next stop is starting it */
    bool owns_claim;    /* this task holds the inflight claim of its (id, attempt) */
    bool held;          /* its request sits corked in the kernel until the due instant */
    int64_t recv_ns;    /* realtime: received by the I/O thread */
    int64_t start_ns;   /* realtime: request handed to libcurl / process spawned; 0 = never */
    int64_t end_ns;     /* realtime: outcome known */
    struct httpcall *call;
    struct cmdexec *cmd;
    /* How the attempt ended (filled by the executor that ran it). */
    outcome_exec exec;
    int status;
    int64_t retry_after_ms;
    char error[256];
    char *response; /* captured reply or output, owned */
    size_t response_len;
    bool truncated;
} task;

/* Wrap a delivery: *d is moved into the task (and left zeroed). NULL when out of memory, in
 * which case *d is untouched. */
task *task_new(mq_delivery *d, int64_t recv_ns);
/* Forget everything admission did (decoded job, prepared request), so the task can be admitted
 * again from its delivery. */
void task_rewind(task *t);
/* Free the task and everything it owns (an attached call or process is aborted). Safe on NULL. */
void task_free(task *t);

#endif
