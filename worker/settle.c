/* settle: turns a finished task into the publishes and the ack the I/O thread will perform. */
#include "settle.h"

#include "clock.h"
#include "err.h"
#include "jobwire.h"
#include "result.h"
#include "sign.h"
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETTLE_CONTENT_TYPE "application/msgpack"

/* Retry copies wait 80..100 % of their level's delay: jobs that failed together (a target that
 * went down under a fan-out) come back spread out instead of as the same burst. */
#define SETTLE_JITTER_DIV 5

static int64_t settle_expiration(const settle_env *env, int level, int64_t retry_after_ms,
                                 uint64_t salt)
{
    int64_t delay = env->delays_ms[level - 1];
    unsigned seed = (unsigned)(clock_mono_ns() ^ (int64_t)salt);
    int64_t ms = delay - (int64_t)(rand_r(&seed) % (delay / SETTLE_JITTER_DIV + 1));
    return ms < retry_after_ms ? retry_after_ms : ms;
}

/* The retry copy's headers. Its body changed (attempt + 1), so the producer's signature no longer
 * fits: the worker signs the copy itself. HMAC keys are symmetric and every worker holds the key
 * to verify, so this adds no power a worker did not already have; and the copy is only made
 * from a job whose signature this worker verified. */
static int settle_sign(settle *s, const job *j, const settle_env *env)
{
    s->hdrs[0] = (mq_hdr){SIGN_HDR_DUE, NULL, j->due_ms};
    s->nhdrs = 1;
    if (!env->ring)
        return ERR_OK;
    const char *mid = s->id ? s->id : s->message_id ? s->message_id : "";
    int rc = sign_compute(env->ring, s->kid, mid, j->due_ms, s->body, s->len, s->sig);
    if (rc != ERR_OK)
        return rc;
    s->hdrs[1] = (mq_hdr){SIGN_HDR_KID, s->kid, 0};
    s->hdrs[2] = (mq_hdr){SIGN_HDR_SIG, s->sig, 0};
    s->nhdrs = 3;
    return ERR_OK;
}

/* The next attempt, re-encoded from the original bytes (the task's copy is expanded). */
static int settle_retry(settle *s, const task *t, const outcome *o, const settle_env *env)
{
    job j;
    job_init(&j);
    char reason[160];
    int rc = jobwire_decode(t->d.body, t->d.len, &j, reason, sizeof reason);
    if (rc == ERR_OK) {
        j.attempt++;
        rc = jobwire_encode(&j, &s->body, &s->len);
    }
    if (rc == ERR_OK)
        rc = settle_sign(s, &j, env);
    job_fini(&j);
    if (rc != ERR_OK) {
        free(s->body); /* the settle dead-letters the original instead */
        s->body = NULL;
        s->len = 0;
        s->nhdrs = 0;
    }
    if (rc != ERR_OK)
        return rc;
    s->exchange = TOPO_RETRY_EXCHANGE;
    s->retry_level = o->retry_level;
    snprintf(s->key, sizeof s->key, "r%d", o->retry_level);
    s->routing_key = s->key;
    int64_t ms = settle_expiration(env, o->retry_level, t->retry_after_ms, t->d.tag);
    snprintf(s->expiration, sizeof s->expiration, "%lld", (long long)ms);
    s->has_followup = true;
    return ERR_OK;
}

/* Dead or missed: the original bytes, and why, in headers. The body moves out of the task. */
static void settle_dead(settle *s, task *t, const char *key)
{
    s->exchange = TOPO_DEAD_EXCHANGE;
    s->routing_key = key;
    s->body = t->d.body;
    s->len = t->d.len;
    t->d.body = NULL;
    t->d.len = 0;
    s->hdrs[0] = (mq_hdr){"x-salvo-reason", s->reason, 0};
    s->hdrs[1] = (mq_hdr){"x-salvo-status", NULL, s->status};
    s->hdrs[2] = (mq_hdr){"x-salvo-attempt", NULL, s->attempt};
    s->hdrs[3] = (mq_hdr){"x-salvo-job", s->id ? s->id : "", 0};
    s->nhdrs = 4;
    s->has_followup = true;
}

static int settle_result(settle *s, const task *t, const settle_env *env)
{
    result_rec r = {
        .id = t->j.id,
        .schedule = t->j.schedule,
        .index = t->j.index,
        .attempt = t->j.attempt,
        .outcome = s->label,
        .status = s->status,
        .reason = s->reason,
        .error = t->error,
        .due_ms = t->j.due_ms,
        .started_ns = t->start_ns,
        .finished_ns = t->end_ns ? t->end_ns : clock_real_ns(),
        .worker = env->worker,
        .response = t->response,
        .response_len = t->response_len,
        .truncated = t->truncated,
    };
    return result_encode(&r, &s->result, &s->result_len);
}

/* A success's record repeats what its log line and the metrics say, and publishing it costs the
 * broker about as much as the job itself (docs/benchmarks.md), so by default only failures get
 * one. Duplicates never do: the attempt that ran has its own. */
static bool settle_wants_result(const settle *s, const task *t, const settle_env *env)
{
    if (!t->decoded || strcmp(s->label, "duplicate") == 0)
        return false;
    if (env->results == SETTLE_RESULTS_ALL)
        return true;
    return env->results == SETTLE_RESULTS_FAILURES && s->action != OUTCOME_ACK;
}

static void settle_ids(settle *s, const task *t)
{
    if (t->d.message_id)
        s->message_id = strdup(t->d.message_id);
    if (!t->decoded)
        return;
    s->id = strdup(t->j.id);
    s->schedule = strdup(t->j.schedule);
    s->attempt = t->j.attempt;
    s->owns_claim = t->owns_claim && s->id;
}

static void settle_head(settle *s, const task *t, const outcome *o)
{
    s->gen = t->d.gen;
    s->channel = t->d.channel;
    s->tag = t->d.tag;
    s->action = o->action;
    s->label = o->label;
    snprintf(s->reason, sizeof s->reason, "%s", o->reason);
    s->status = t->status;
    s->lateness_ms = t->start_ns ? t->start_ns / CLOCK_NS_PER_MS - t->j.due_ms : INT64_MIN;
}

int settle_build(task *t, const outcome *o, const settle_env *env, settle **out)
{
    settle *s = calloc(1, sizeof *s);
    if (!s)
        return ERR_NOMEM;
    settle_head(s, t, o);
    settle_ids(s, t); /* without memory for the id the settle still acks or dead-letters */
    if (o->action == OUTCOME_RETRY) {
        int rc = settle_retry(s, t, o, env);
        if (rc != ERR_OK) {
            /* Cannot make the next attempt: dead-letter this one rather than lose it. */
            s->action = OUTCOME_DEAD;
            s->label = "dead";
            snprintf(s->reason, sizeof s->reason, "retry-encode: %s", err_str(rc));
        }
    }
    if (s->action == OUTCOME_DEAD || s->action == OUTCOME_MISSED)
        settle_dead(s, t, s->action == OUTCOME_MISSED ? TOPO_MISSED_KEY : TOPO_DEAD_KEY);
    if (settle_wants_result(s, t, env) && settle_result(s, t, env) != ERR_OK)
        s->result = NULL; /* the record is informative; the settle itself stands */
    *out = s;
    return ERR_OK;
}

void settle_message(const settle *s, mq_msg *m)
{
    memset(m, 0, sizeof *m);
    m->exchange = s->exchange;
    m->routing_key = s->routing_key;
    m->body = s->body;
    m->len = s->len;
    m->message_id = s->id ? s->id : s->message_id;
    m->content_type = SETTLE_CONTENT_TYPE;
    m->expiration = s->expiration[0] ? s->expiration : NULL;
    m->headers = s->nhdrs ? s->hdrs : NULL;
    m->nheaders = s->nhdrs;
    m->mandatory = true; /* an unroutable follow-up must not let the original be acked */
    m->persistent = true;
}

void settle_free(settle *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->message_id);
    free(s->schedule);
    free(s->body);
    free(s->result);
    free(s);
}

void settle_free_list(settle *s)
{
    while (s) {
        settle *next = s->next;
        settle_free(s);
        s = next;
    }
}
