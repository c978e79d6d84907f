/* tgt_plan: what the recording target answers: a status sequence per path, counted per distinct
 * Idempotency-Key so the retries of one job walk the sequence (500, then 200), and a hold time
 * per path. */
#ifndef SALVO_TGT_PLAN_H
#define SALVO_TGT_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* Longest status sequence in one plan entry: far more retries than any test makes. */
#define TGT_PLAN_MAX_STEPS 32

typedef struct tgt_plan tgt_plan;

typedef struct tgt_plan_answer {
    int status;       /* HTTP status to answer */
    int64_t delay_ms; /* hold the reply this long */
    unsigned seen;    /* 1 for the first request of this (path, key), 2 for the next... */
} tgt_plan_answer;

/* Build a plan.
 *   status_spec (NULL = everything 200): "/flaky=500,200;/always500=500*;/gone=404*;default=200".
 *     Per path (exact match, query ignored) the listed statuses are answered in order per
 *     distinct Idempotency-Key; a trailing '*' repeats the last status forever; without it, a
 *     request past the end of the list, like any unlisted path, gets the default status
 *     ("default=N", a single status; 200 when absent).
 *   delay_spec (NULL = none): "/slow=5000;/x=100" holds replies on those paths that many ms;
 *     every other path is held default_delay_ms.
 * Returns ERR_OK and *out (free with tgt_plan_free), ERR_PARSE with the reason in msg, or
 * ERR_NOMEM. Not thread-safe (the target is single-threaded). */
int tgt_plan_new(const char *status_spec, const char *delay_spec, int64_t default_delay_ms,
                 tgt_plan **out, char *msg, size_t msg_cap);

/* Free a plan; NULL-safe. */
void tgt_plan_free(tgt_plan *plan);

/* Decide the answer to the next request on path (bytes, no NUL needed) carrying Idempotency-Key
 * key (key_len 0 when absent: such requests share one counter per path), and count it.
 * Returns ERR_OK, or ERR_NOMEM (then *out still holds the answer for a first attempt). */
int tgt_plan_next(tgt_plan *plan, const char *path, size_t path_len, const char *key,
                  size_t key_len, tgt_plan_answer *out);

/* Number of distinct (path, key) pairs seen so far. */
size_t tgt_plan_keys(const tgt_plan *plan);

#endif
