/* run: one task's admit → start → finish on its executor thread. */
#include "run.h"

#include "clock.h"
#include "cmdexec.h"
#include "err.h"
#include "expand.h"
#include "jobwire.h"
#include "log.h"
#include "rtprio.h"
#include "trust.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Held jobs due at least this far ahead get their connection opened while they wait. */
#define RUN_PRECONNECT_MIN_MS 20
/* A job whose request can wait corked in the kernel is started this long before its instant,
 * so libcurl's own work (~100,000 instructions a request, 150-200 us on a busy 2-core machine)
 * is done when the instant comes. Linux sends corked data 200 ms after it was written whatever
 * happens (30 probes here: 200.4 ms at the least; setting TCP_CORK again does not extend it), and
 * the earliest write is this long before the instant: 180 keeps 20 ms of margin, and gives a big
 * fan-out 30 ms more than the 150 it was before to get its requests written by the instant. */
#define RUN_RELEASE_LEAD_MS 180
/* A job due at least this far ahead is started at admission with its request staged
 * (httpcall.h), and moved into its corked connection RUN_RELEASE_LEAD_MS before the instant: the
 * window then only has to hold cheap moves, not 10,000 libcurl starts (~0.8 s of them on 2
 * cores). The margin above the lead keeps staging for jobs that arrive well before the window. */
#define RUN_STAGE_MIN_MS (RUN_RELEASE_LEAD_MS + 70)
/* Warn about descriptors at 80 % of the budget, at most this often. */
#define RUN_FD_WARN_EVERY_NS (10 * CLOCK_NS_PER_SEC)

static int64_t run_now_ms(void)
{
    return clock_real_ns() / CLOCK_NS_PER_MS;
}

/* Hand the task's fate to the I/O thread and let go of the task. */
static void run_settle(executor *ex, task *t, const outcome *o)
{
    settle *s = NULL;
    if (settle_build(t, o, ex->sh->env, &s) == ERR_OK)
        outq_push(ex->sh->out, s);
    else
        log_msg(LOG_ERR, t->decoded ? t->j.id : NULL, "out of memory settling; left unacked");
    if (strcmp(o->label, "duplicate") == 0)
        log_msg(LOG_INFO, t->j.id, "duplicate attempt=%u: settled earlier, acked", t->j.attempt);
    task_free(t);
    atomic_fetch_sub(&ex->load, 1);
}

static void run_dead(executor *ex, task *t, const char *prefix, const char *detail)
{
    outcome o = {OUTCOME_DEAD, 0, "dead", ""};
    snprintf(o.reason, sizeof o.reason, "%s%s", prefix, detail);
    run_settle(ex, t, &o);
}

/* The trust gate, before any decoding: an allowed publisher, then the size cap (the decoder
 * refuses an oversized body before reading it, so its signature is not worth computing), then
 * the signature. False with reason set (and the refusal counted) when the job must not run. */
static bool run_trusted(executor *ex, task *t, int64_t *signed_due, char *reason, size_t cap)
{
    const sign_ring *ring = ex->sh->env->ring;
    if (t->bad_publisher) {
        trust_reason(t->d.user_id, reason, cap);
        wmetrics_rejected(ex->sh->wm, "bad-publisher");
        return false;
    }
    if (!ring || t->d.len > JOBWIRE_MAX_BYTES)
        return true;
    if (trust_verify(ring, &t->d, signed_due, reason, cap) == ERR_OK)
        return true;
    wmetrics_rejected(ex->sh->wm, "bad-signature");
    return false;
}

/* Decode unless the delivery count already marks the message as poison, and only once the
 * trust gate passed. */
static void run_decode(executor *ex, task *t, outcome_admit_in *in, char *reason, size_t cap)
{
    int64_t signed_due = 0;
    in->delivery_count = t->d.delivery_count;
    in->decode_rc = ERR_OK;
    in->allowed = true;
    in->decode_reason = reason;
    if (in->delivery_count >= OUTCOME_DELIVERY_LIMIT)
        return;
    if (!run_trusted(ex, t, &signed_due, reason, cap)) {
        in->decode_rc = ERR_SIGNATURE;
        log_warn("delivery refused unread, dead-lettered: %s", reason);
        return;
    }
    in->decode_rc = jobwire_decode(t->d.body, t->d.len, &t->j, reason, cap);
    t->decoded = in->decode_rc == ERR_OK;
    /* The signature covered the header's due instant; the job must mean the same instant. */
    if (t->decoded && ex->sh->env->ring && t->j.due_ms != signed_due) {
        task_rewind(t);
        snprintf(reason, cap, "bad-signature: due instant differs from the signed one");
        wmetrics_rejected(ex->sh->wm, "bad-signature");
        in->decode_rc = ERR_SIGNATURE;
    }
}

/* Claim the pair and gather what admission needs from a decoded job. False when t was parked
 * behind a running copy of itself (t is no longer ours). */
static bool run_inspect(executor *ex, task *t, outcome_admit_in *in, char *detail, size_t cap)
{
    /* Claim before looking in the recent set: the I/O thread adds there before it releases a
     * claim, so a copy can never slip between the two and run again. */
    char id[JOB_ID_MAX + 1]; /* once parked, t belongs to whoever releases the claim */
    snprintf(id, sizeof id, "%s", t->j.id);
    if (!inflight_claim(ex->sh->inflight, t->j.id, t->j.attempt, t)) {
        log_msg(LOG_INFO, id, "redelivered while still running here; parked");
        atomic_fetch_sub(&ex->load, 1);
        return false;
    }
    t->owns_claim = true;
    in->duplicate = recent_has(ex->sh->recent, t->j.id, t->j.attempt);
    if (t->j.kind == JOB_COMMAND)
        in->allowed = cmdexec_allowed(t->j.cmd.argv[0], ex->sh->allow, ex->sh->nallow);
    if (!in->duplicate && in->allowed && expand_job(&t->j, detail, cap) != ERR_OK)
        in->expand_error = detail;
    in->due_ms = t->j.due_ms;
    return true;
}

/* An admitted job due ahead: connect early, then either start it now with its request staged,
 * or wait in the hold timer (released 180 ms early when its request can wait corked in the
 * kernel). Falls back to starting at once. */
static void run_hold(executor *ex, task *t, int64_t now_ms)
{
    int64_t ahead = t->j.due_ms - now_ms;
    httpcall_hold how = HTTPCALL_HOLD_NONE;
    /* The wait is long enough to hide a TCP handshake: pay it now, not at the instant. */
    if (t->call && ahead >= RUN_PRECONNECT_MIN_MS)
        how = httpcall_preconnect(t->call, t->j.http.url, true,
                                  ahead >= RUN_STAGE_MIN_MS ? ahead : 0);
    t->held = how != HTTPCALL_HOLD_NONE;
    if (how == HTTPCALL_HOLD_STAGE) {
        run_start(ex, t);
        return;
    }
    int64_t fire_ms = t->j.due_ms - (t->held ? RUN_RELEASE_LEAD_MS : 0);
    if (hold_add(ex->sh->hold, fire_ms * CLOCK_NS_PER_MS, t) == ERR_OK) {
        atomic_fetch_sub(&ex->load, 1); /* the hold owns it until it falls due */
        return;
    }
    if (t->held) { /* no hold after all: nothing may keep a request corked for long */
        httpcall_release(t->call);
        t->held = false;
    }
    run_start(ex, t);
}

void run_admit(executor *ex, task *t)
{
    outcome_admit_in in = {0};
    char reason[160] = "", detail[128] = "";
    run_decode(ex, t, &in, reason, sizeof reason);
    if (t->decoded && !run_inspect(ex, t, &in, detail, sizeof detail))
        return;
    in.now_ms = run_now_ms();
    outcome o;
    outcome_admit(&in, &o);
    if (o.action != OUTCOME_RUN && o.action != OUTCOME_HOLD) {
        run_settle(ex, t, &o);
        return;
    }
    /* Build the request now, so the due instant only costs curl_multi_add_handle. */
    if (t->j.kind == JOB_HTTP &&
        httpcall_new(&t->j, ex->sh->capture_cap, &t->call, detail, sizeof detail) != ERR_OK) {
        run_dead(ex, t, "request-invalid: ", detail);
        return;
    }
    t->admitted = true;
    if (o.action == OUTCOME_HOLD)
        run_hold(ex, t, in.now_ms);
    else
        run_start(ex, t);
}

static bool run_budget_ok(executor *ex)
{
    exec_shared *sh = ex->sh;
    size_t running = atomic_load(&sh->running);
    if (running * 5 >= sh->fd_budget * 4) {
        long long now = clock_mono_ns(), last = atomic_load(&sh->fd_warned_ns);
        if (now - last > RUN_FD_WARN_EVERY_NS &&
            atomic_compare_exchange_strong(&sh->fd_warned_ns, &last, now))
            log_warn("%zu jobs running, near the descriptor budget of %zu (RLIMIT_NOFILE / 3):"
                     " further jobs wait; run more worker processes",
                     running, sh->fd_budget);
    }
    return running < sh->fd_budget;
}

static void run_backlog_push(executor *ex, task *t)
{
    t->next = NULL;
    if (ex->backlog_tail)
        ex->backlog_tail->next = t;
    else
        ex->backlog_head = t;
    ex->backlog_tail = t;
}

/* Fill the attempt's ending from an executor error and finish at once. */
static void run_fail_now(executor *ex, task *t, const char *why);

/* When a held task next needs its executor: the move of a staged request, or the release. */
static int64_t run_held_next_ns(const task *t)
{
    bool staged = httpcall_staged(t->call);
    return (t->j.due_ms - (staged ? RUN_RELEASE_LEAD_MS : 0)) * CLOCK_NS_PER_MS;
}

static void run_start_http(executor *ex, task *t)
{
    t->start_ns = t->held ? 0 : clock_real_ns(); /* a held request starts when released */
    httpcall_set_ud(t->call, t);
    if (httpcall_start(ex->multi, t->call) != ERR_OK) {
        run_fail_now(ex, t, "cannot add the transfer to libcurl");
        return;
    }
    atomic_fetch_add(&ex->sh->running, 1);
    t->prev = NULL;
    t->next = ex->running;
    if (ex->running)
        ex->running->prev = t;
    ex->running = t;
    if (t->held) {
        int64_t at = run_held_next_ns(t);
        if (ex->nheld++ == 0 || at < ex->held_next_ns)
            ex->held_next_ns = at;
        t->hprev = NULL;
        t->hnext = ex->held;
        if (ex->held)
            ex->held->hprev = t;
        ex->held = t;
        return;
    }
    t->log_next = ex->started_log;
    ex->started_log = t;
}

/* Take t off the executor's held list; it stays a running transfer. */
static void run_unhold(executor *ex, task *t)
{
    if (t->hprev)
        t->hprev->hnext = t->hnext;
    else
        ex->held = t->hnext;
    if (t->hnext)
        t->hnext->hprev = t->hprev;
    t->hnext = t->hprev = NULL;
    t->held = false;
    ex->nheld--;
}

/* A staged request whose window has opened goes into its corked connection. */
static void run_move(task *t)
{
    if (httpcall_stage_move(t->call) != ERR_OK)
        log_msg(LOG_WARN, t->j.id,
                "staged request could not be moved to its connection; "
                "the attempt fails as a broken connection");
}

void run_release(executor *ex)
{
    int64_t now = clock_real_ns();
    if (ex->nheld == 0 || now < ex->held_next_ns)
        return;
    /* Only the held transfers are walked: after the instant every slice of a burst starts more
     * of them, and walking all running transfers each time was 5 % of a worker's CPU then.
     * Releases run at real-time priority (rtprio.h): the threads each send wakes must not
     * preempt the sends still to go. Moves ahead of their instant (180 ms early) need not, and
     * 10,000 of them take ~40 ms, while the broker may still be delivering the fan-out. */
    int64_t next = INT64_MAX;
    for (task *t = ex->held, *after; t; t = after) {
        after = t->hnext;
        if (httpcall_staged(t->call) && run_held_next_ns(t) <= now) {
            if (t->j.due_ms * CLOCK_NS_PER_MS > now)
                rtprio_lower(); /* woken raised for the moves (executor_poll) */
            run_move(t);
        }
        int64_t at = run_held_next_ns(t);
        if (!httpcall_staged(t->call) && at <= now) {
            rtprio_raise();
            httpcall_release(t->call);
            run_unhold(ex, t);
            t->start_ns = clock_real_ns();
            t->log_next = ex->started_log;
            ex->started_log = t;
        } else if (at < next) {
            next = at;
        }
    }
    ex->held_next_ns = next;
    rtprio_lower();
}

int run_release_ms(const executor *ex)
{
    if (ex->nheld == 0)
        return INT_MAX;
    return clock_ms_until(clock_real_ns(), ex->held_next_ns, INT_MAX);
}

static void run_start_cmd(executor *ex, task *t)
{
    char reason[200] = "";
    t->start_ns = clock_real_ns();
    if (cmdexec_start(&t->j, ex->sh->capture_cap, &t->cmd, reason, sizeof reason) != ERR_OK) {
        run_fail_now(ex, t, reason);
        return;
    }
    atomic_fetch_add(&ex->sh->running, 1);
    ex->cmds[ex->ncmds++] = t;
    t->log_next = ex->started_log;
    ex->started_log = t;
}

void run_start(executor *ex, task *t)
{
    if (t->d.gen != atomic_load(&ex->sh->conn_gen)) {
        /* Delivered on a connection that is gone (say the worker was frozen past the
         * heartbeat): the broker has handed the job out again, and this copy could never be
         * acked, so running it would only be an extra run under the same key. */
        outcome stale = {OUTCOME_ACK, 0, "stale", ""};
        log_msg(LOG_INFO, t->j.id, "not started: delivered on a lost connection (redelivered)");
        t->end_ns = clock_real_ns();
        run_settle(ex, t, &stale);
        return;
    }
    outcome o;
    outcome_start(t->j.attempt, t->j.due_ms, t->j.max_lateness_ms, run_now_ms(), &o);
    if (o.action == OUTCOME_MISSED) {
        t->end_ns = clock_real_ns();
        run_settle(ex, t, &o);
        return;
    }
    bool is_cmd = t->j.kind == JOB_COMMAND;
    if (!run_budget_ok(ex) || (is_cmd && ex->ncmds == ex->max_cmds)) {
        run_backlog_push(ex, t);
        return;
    }
    if (is_cmd)
        run_start_cmd(ex, t);
    else
        run_start_http(ex, t);
}

void run_backlog(executor *ex)
{
    task *list = ex->backlog_head;
    ex->backlog_head = ex->backlog_tail = NULL;
    while (list) {
        task *t = list;
        list = list->next;
        run_start(ex, t);
    }
}

void run_log_started(executor *ex)
{
    bool info = log_enabled(LOG_INFO);
    for (task *t = ex->started_log; t; t = t->log_next) {
        wmetrics_started(ex->sh->wm, t->j.attempt, t->j.due_ms, t->start_ns);
        metrics_gauge_add(ex->sh->wm ? ex->sh->wm->running : NULL, 1);
        if (!info)
            continue;
        log_msg(LOG_INFO, t->j.id, "started schedule=%s attempt=%u/%u lateness_ms=%lld",
                t->j.schedule, t->j.attempt, t->j.max_attempts,
                (long long)(t->start_ns / CLOCK_NS_PER_MS - t->j.due_ms));
    }
    ex->started_log = NULL;
}

static void run_finish(executor *ex, task *t)
{
    outcome_run r = {t->j.kind,
                     t->exec,
                     t->status,
                     t->j.attempt,
                     t->j.max_attempts,
                     t->j.http.ok_status,
                     t->j.http.nok_status,
                     t->retry_after_ms,
                     t->error};
    outcome o;
    outcome_after_run(&r, ex->sh->env->delays_ms, ex->sh->env->nlevels, &o);
    wmetrics_finished(ex->sh->wm, t->start_ns, t->end_ns);
    if (t->start_ns)
        metrics_gauge_add(ex->sh->wm ? ex->sh->wm->running : NULL, -1);
    long long dur = t->start_ns ? (t->end_ns - t->start_ns) / CLOCK_NS_PER_MS : 0;
    long long late = t->start_ns ? t->start_ns / CLOCK_NS_PER_MS - t->j.due_ms : 0;
    log_msg(o.action == OUTCOME_ACK ? LOG_INFO : LOG_NOTICE, t->j.id,
            "finished schedule=%s attempt=%u/%u outcome=%s status=%d lateness_ms=%lld "
            "duration_ms=%lld%s%s",
            t->j.schedule, t->j.attempt, t->j.max_attempts, o.label, t->status, late, dur,
            t->error[0] ? " error=" : "", t->error);
    run_settle(ex, t, &o);
}

static void run_fail_now(executor *ex, task *t, const char *why)
{
    t->exec = OUTCOME_EXEC_INVALID;
    t->end_ns = clock_real_ns();
    snprintf(t->error, sizeof t->error, "%s", why);
    run_finish(ex, t);
}

static void run_unlink(executor *ex, task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ex->running = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static outcome_exec run_exec_of(httpcall_err e)
{
    return e == HTTPCALL_OK        ? OUTCOME_EXEC_DONE
           : e == HTTPCALL_TIMEOUT ? OUTCOME_EXEC_TIMEOUT
           : e == HTTPCALL_INVALID ? OUTCOME_EXEC_INVALID
                                   : OUTCOME_EXEC_CONNECT;
}

/* Copy what the result needs, then free the transfer at once: its buffers are the bulk of a
 * task's memory. */
static void run_take_http(task *t)
{
    const httpcall_result *r = httpcall_result_get(t->call);
    t->end_ns = clock_real_ns();
    t->exec = run_exec_of(r->err);
    t->status = r->status;
    t->retry_after_ms = r->retry_after_ms;
    snprintf(t->error, sizeof t->error, "%s", r->error);
    t->response = r->body_len ? malloc(r->body_len) : NULL;
    if (t->response) {
        memcpy(t->response, r->body, r->body_len);
        t->response_len = r->body_len;
    }
    t->truncated = r->truncated;
    httpcall_free(t->call);
    t->call = NULL;
}

void run_collect(executor *ex)
{
    for (httpcall *c = httpcall_multi_next_done(ex->multi); c;
         c = httpcall_multi_next_done(ex->multi)) {
        task *t = httpcall_ud(c);
        run_unlink(ex, t);
        if (t->held) /* failed before its instant (e.g. the early connection was refused) */
            run_unhold(ex, t);
        atomic_fetch_sub(&ex->sh->running, 1);
        run_take_http(t);
        run_finish(ex, t);
    }
}

static void run_take_cmd(task *t)
{
    const cmdexec_result *r = cmdexec_result_get(t->cmd);
    t->end_ns = clock_real_ns();
    t->exec = r->timed_out ? OUTCOME_EXEC_TIMEOUT : OUTCOME_EXEC_DONE;
    t->status = r->exit_code;
    if (r->timed_out)
        snprintf(t->error, sizeof t->error, "killed after %u ms", t->j.cmd.timeout_ms);
    t->response = r->output_len ? malloc(r->output_len) : NULL;
    if (t->response) {
        memcpy(t->response, r->output, r->output_len);
        t->response_len = r->output_len;
    }
    t->truncated = r->truncated;
    cmdexec_free(t->cmd);
    t->cmd = NULL;
}

void run_step_cmds(executor *ex)
{
    for (size_t i = 0; i < ex->ncmds;) {
        task *t = ex->cmds[i];
        if (!cmdexec_step(t->cmd)) {
            i++;
            continue;
        }
        ex->cmds[i] = ex->cmds[--ex->ncmds];
        atomic_fetch_sub(&ex->sh->running, 1);
        run_take_cmd(t);
        run_finish(ex, t);
    }
}

void run_drop_list(executor *ex, task *list)
{
    while (list) {
        task *t = list;
        list = list->next;
        task_free(t);
        atomic_fetch_sub(&ex->load, 1);
    }
}

void run_drop_all(executor *ex)
{
    run_drop_list(ex, ex->backlog_head);
    ex->backlog_head = ex->backlog_tail = NULL;
    ex->started_log = NULL;
    ex->nheld = 0;
    ex->held = NULL;
    while (ex->running) {
        task *t = ex->running;
        run_unlink(ex, t);
        atomic_fetch_sub(&ex->sh->running, 1);
        task_free(t);
        atomic_fetch_sub(&ex->load, 1);
    }
    for (size_t i = 0; i < ex->ncmds; i++) {
        atomic_fetch_sub(&ex->sh->running, 1);
        task_free(ex->cmds[i]);
        atomic_fetch_sub(&ex->load, 1);
    }
    ex->ncmds = 0;
}
