/* outcome: the worker's decision table, as pure functions. Given the facts about a delivery
 * (before it runs) or a finished attempt, say what happens to the message: run, hold, ack,
 * retry at some level, dead-letter or record as missed, and why. No I/O, no clocks, no state,
 * so every row can be tested as data. */
#ifndef SALVO_OUTCOME_H
#define SALVO_OUTCOME_H

#include "job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A job due further ahead than this is clock skew or misuse, not precise mode. */
#define OUTCOME_HOLD_MAX_MS 5000
/* A job due less than this ahead starts at once: the hold thread's wake-up costs about as much. */
#define OUTCOME_HOLD_MIN_MS 1
/* x-delivery-count at which a message is poison: it was handed out this often without an
 * outcome, so it most likely kills or hangs the worker that takes it. */
#define OUTCOME_DELIVERY_LIMIT 5

typedef enum outcome_action {
    OUTCOME_RUN = 0, /* admission: start now */
    OUTCOME_HOLD,    /* admission: hold until the due instant, then start */
    OUTCOME_ACK,     /* success or duplicate: ack, nothing to publish */
    OUTCOME_RETRY,   /* publish the next attempt to salvo.retry "r<level>", then ack */
    OUTCOME_DEAD,    /* publish to salvo.dead "dead" with the reason, then ack */
    OUTCOME_MISSED,  /* publish to salvo.dead "missed" with the reason, then ack */
} outcome_action;

/* How an attempt ended, independent of the executor that ran it. */
typedef enum outcome_exec {
    OUTCOME_EXEC_DONE = 0, /* an HTTP response arrived / the process exited: see status */
    OUTCOME_EXEC_TIMEOUT,  /* the job's total timeout expired (process killed) */
    OUTCOME_EXEC_CONNECT,  /* connection-level failure: refused, reset, TLS, DNS, no reply */
    OUTCOME_EXEC_INVALID,  /* the request cannot be made at all (bad URL, protocol, spawn) */
} outcome_exec;

typedef struct outcome {
    outcome_action action;
    int retry_level;   /* OUTCOME_RETRY: 1 .. nlevels */
    const char *label; /* static: "run", "hold", "ok", "duplicate", "retry", "dead", "missed" */
    char reason[160];  /* DEAD / MISSED: the x-salvo-reason header; "" otherwise */
} outcome;

/* Facts known when a delivery has been decoded (or failed to decode). */
typedef struct outcome_admit_in {
    int64_t delivery_count; /* x-delivery-count, 0 when absent */
    int decode_rc;          /* jobwire_decode's result */
    const char *decode_reason;
    bool duplicate;           /* (firing id, attempt) was already settled by this worker */
    bool allowed;             /* a command job's program is on the allow-list (true for HTTP) */
    const char *expand_error; /* non-NULL: context expansion failed, with this detail */
    int64_t due_ms, now_ms;   /* realtime, ms since the epoch */
} outcome_admit_in;

/* Decide what to do with a delivery before running it: DEAD (delivery-limit, the decoder's
 * reason, command-not-allowed, bad-template, clock-skew), ACK (duplicate), HOLD or RUN.
 * Checks run in that order: a poison message is refused before anything reads it. Pure. */
void outcome_admit(const outcome_admit_in *in, outcome *out);

/* Decide at the moment a job would start: MISSED with "late-<ms>ms" when a first attempt starts
 * after due + max_lateness (0 = no limit), else RUN. Retries are never missed: their lateness is
 * the backoff itself. Pure. */
void outcome_start(uint32_t attempt, int64_t due_ms, int64_t max_lateness_ms, int64_t now_ms,
                   outcome *out);

/* Facts about a finished attempt. */
typedef struct outcome_run {
    job_kind kind;
    outcome_exec exec;
    int status; /* HTTP status (0 when none) or process exit code */
    uint32_t attempt, max_attempts;
    const uint16_t *ok_status; /* HTTP success set; empty means any 2xx */
    size_t nok_status;
    int64_t retry_after_ms; /* server's Retry-After, -1 when absent */
    const char *detail;     /* executor error text for EXEC_INVALID, may be NULL */
} outcome_run;

/* Decide after an attempt: ACK on success; RETRY for 5xx, 408, 429, timeouts, connection
 * errors and failed commands while attempt < max_attempts, else DEAD "attempts-exhausted";
 * DEAD "http-<status>" for other statuses; DEAD "request-invalid: ..." when it cannot run.
 * The retry level comes from outcome_retry_level with the given delay table. Pure. */
void outcome_after_run(const outcome_run *r, const int64_t *delays_ms, int nlevels, outcome *out);

/* Retry level for a failed attempt: min(attempt, nlevels), raised to the smallest level whose
 * delay is >= retry_after_ms (the highest level when none is long enough). 1-based. Pure. */
int outcome_retry_level(uint32_t attempt, int64_t retry_after_ms, const int64_t *delays_ms,
                        int nlevels);

/* True when status counts as success for this success set (empty set: any 2xx). */
bool outcome_status_ok(int status, const uint16_t *ok_status, size_t nok_status);

#endif
