/* outcome: the decision table that maps what happened to a delivery onto what to do with it. */
#include "outcome.h"

#include "err.h"

#include <stdio.h>
#include <string.h>

static void outcome_set(outcome *out, outcome_action a, const char *label, const char *reason)
{
    out->action = a;
    out->retry_level = 0;
    out->label = label;
    snprintf(out->reason, sizeof out->reason, "%s", reason ? reason : "");
}

void outcome_admit(const outcome_admit_in *in, outcome *out)
{
    if (in->delivery_count >= OUTCOME_DELIVERY_LIMIT) {
        outcome_set(out, OUTCOME_DEAD, "dead", "delivery-limit");
        return;
    }
    if (in->decode_rc != ERR_OK) {
        const char *r = in->decode_reason && in->decode_reason[0] ? in->decode_reason
                                                                  : "malformed: undecodable";
        outcome_set(out, OUTCOME_DEAD, "dead", r);
        return;
    }
    /* A duplicate is settled before the other checks: the first copy already had them. */
    if (in->duplicate) {
        outcome_set(out, OUTCOME_ACK, "duplicate", NULL);
        return;
    }
    if (!in->allowed) {
        outcome_set(out, OUTCOME_DEAD, "dead", "command-not-allowed");
        return;
    }
    if (in->expand_error) {
        outcome_set(out, OUTCOME_DEAD, "dead", NULL);
        snprintf(out->reason, sizeof out->reason, "bad-template: %s", in->expand_error);
        return;
    }
    int64_t ahead = in->due_ms - in->now_ms;
    if (ahead > OUTCOME_HOLD_MAX_MS)
        outcome_set(out, OUTCOME_DEAD, "dead", "clock-skew");
    else if (ahead >= OUTCOME_HOLD_MIN_MS)
        outcome_set(out, OUTCOME_HOLD, "hold", NULL);
    else
        outcome_set(out, OUTCOME_RUN, "run", NULL);
}

void outcome_start(uint32_t attempt, int64_t due_ms, int64_t max_lateness_ms, int64_t now_ms,
                   outcome *out)
{
    int64_t late = now_ms - due_ms;
    if (attempt <= 1 && max_lateness_ms > 0 && late > max_lateness_ms) {
        outcome_set(out, OUTCOME_MISSED, "missed", NULL);
        snprintf(out->reason, sizeof out->reason, "late-%lldms", (long long)late);
        return;
    }
    outcome_set(out, OUTCOME_RUN, "run", NULL);
}

bool outcome_status_ok(int status, const uint16_t *ok_status, size_t nok_status)
{
    if (nok_status == 0)
        return status >= 200 && status <= 299;
    for (size_t i = 0; i < nok_status; i++) {
        if (ok_status[i] == status)
            return true;
    }
    return false;
}

int outcome_retry_level(uint32_t attempt, int64_t retry_after_ms, const int64_t *delays_ms,
                        int nlevels)
{
    if (nlevels < 1)
        return 1;
    int level = attempt < 1 ? 1 : (attempt > (uint32_t)nlevels ? nlevels : (int)attempt);
    if (retry_after_ms < 0)
        return level;
    int ra = nlevels;
    for (int i = 0; i < nlevels; i++) {
        if (delays_ms[i] >= retry_after_ms) {
            ra = i + 1;
            break;
        }
    }
    return ra > level ? ra : level;
}

/* Statuses worth another attempt: the server is failing, overloaded or asked us to come back. */
static bool outcome_http_retryable(int status)
{
    return status >= 500 || status == 408 || status == 429;
}

/* Retry while attempts remain, else dead-letter as exhausted. */
static void outcome_retry_or_dead(const outcome_run *r, const int64_t *delays_ms, int nlevels,
                                  outcome *out)
{
    if (r->attempt < r->max_attempts) {
        outcome_set(out, OUTCOME_RETRY, "retry", NULL);
        out->retry_level = outcome_retry_level(r->attempt, r->retry_after_ms, delays_ms, nlevels);
        return;
    }
    outcome_set(out, OUTCOME_DEAD, "dead", "attempts-exhausted");
}

void outcome_after_run(const outcome_run *r, const int64_t *delays_ms, int nlevels, outcome *out)
{
    switch (r->exec) {
    case OUTCOME_EXEC_TIMEOUT:
    case OUTCOME_EXEC_CONNECT:
        outcome_retry_or_dead(r, delays_ms, nlevels, out);
        return;
    case OUTCOME_EXEC_INVALID:
        outcome_set(out, OUTCOME_DEAD, "dead", NULL);
        snprintf(out->reason, sizeof out->reason, "request-invalid: %s",
                 r->detail ? r->detail : "unknown");
        return;
    case OUTCOME_EXEC_DONE:
        break;
    }
    if (r->kind == JOB_COMMAND) {
        if (r->status == 0)
            outcome_set(out, OUTCOME_ACK, "ok", NULL);
        else
            outcome_retry_or_dead(r, delays_ms, nlevels, out);
        return;
    }
    if (outcome_status_ok(r->status, r->ok_status, r->nok_status)) {
        outcome_set(out, OUTCOME_ACK, "ok", NULL);
    } else if (outcome_http_retryable(r->status)) {
        outcome_retry_or_dead(r, delays_ms, nlevels, out);
    } else {
        outcome_set(out, OUTCOME_DEAD, "dead", NULL);
        snprintf(out->reason, sizeof out->reason, "http-%d", r->status);
    }
}
