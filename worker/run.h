/* run: the steps of one task on its executor thread: admit (decode, dedupe, allow-list, expand,
 * clock checks, prepare the request), start (lateness check, descriptor budget, hand to libcurl
 * or spawn), finish (decide the outcome, build the settle, hand it to the I/O thread). Every
 * function runs on the executor's own thread and touches only that executor and its tasks. */
#ifndef SALVO_RUN_H
#define SALVO_RUN_H

#include "executor.h"

/* A fresh delivery: settle it at once, hold it, or start it. Ownership of t moves on. */
void run_admit(executor *ex, task *t);
/* An admitted task whose instant has come: start it (or record it missed, or queue it while the
 * descriptor budget is spent). */
void run_start(executor *ex, task *t);
/* Release the held requests whose instant has come (first thing in a pass, for precision). */
void run_release(executor *ex);
/* Milliseconds until the next held request is due (INT_MAX when none). */
int run_release_ms(const executor *ex);
/* Retry starting tasks queued for descriptor budget. */
void run_backlog(executor *ex);
/* Log the "started" lines of this pass (after the perform, so logging never delays a connect). */
void run_log_started(executor *ex);
/* Finish every transfer libcurl reports done. */
void run_collect(executor *ex);
/* Advance running commands; finish those that ended. */
void run_step_cmds(executor *ex);
/* Free tasks without settling them: the broker will redeliver (used when aborting). */
void run_drop_list(executor *ex, task *list);
void run_drop_all(executor *ex);

#endif
