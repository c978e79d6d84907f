/* settle: what the I/O thread must do to finish one delivery, built on the executor thread so the
 * I/O thread only publishes and acks. A settle is either "ack" (success, duplicate) or "publish
 * this follow-up, and ack the original once the broker confirms it" (retry, dead, missed), plus an
 * optional result record (per --results) published without waiting. Follow-ups:
 *   retry:  salvo.retry "r<level>", the job re-encoded with attempt + 1, jittered expiration,
 *           headers x-salvo-due-ms and (when signing) x-salvo-kid/-sig: re-signed by the worker
 *   dead:   salvo.dead "dead",   the original body, headers x-salvo-reason/-status/-attempt/-job
 *   missed: salvo.dead "missed", same shape as dead */
#ifndef SALVO_SETTLE_H
#define SALVO_SETTLE_H

#include "mq.h"
#include "outcome.h"
#include "sign.h"
#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SETTLE_HDRS_MAX 4 /* dead: reason, status, attempt, job; retry: due-ms, kid, sig */

/* Which attempts publish a result record (--results); the order is the option's choice list. */
typedef enum settle_results {
    SETTLE_RESULTS_OFF = 0,
    SETTLE_RESULTS_FAILURES, /* retry, dead, missed: what people look for in salvo.results */
    SETTLE_RESULTS_ALL,      /* also every success */
} settle_results;

/* What every settle needs from the worker: fixed at start, shared read-only by all executors. */
typedef struct settle_env {
    const char *worker;       /* "host:pid" for result records */
    const int64_t *delays_ms; /* retry level delays (topo_retry_delay_ms) */
    int nlevels;
    const sign_ring *ring; /* signs retry copies; NULL when running unsigned */
    settle_results results;
} settle_env;

typedef struct settle {
    struct settle *next;
    uint64_t gen; /* the delivery this settles */
    int channel;
    uint64_t tag;
    outcome_action action; /* OUTCOME_ACK, _RETRY, _DEAD or _MISSED */
    const char *label;     /* static: ok, duplicate, retry, dead, missed */
    char reason[160];
    int status;
    int retry_level;
    char *id;         /* firing id, NULL when the body never decoded */
    char *message_id; /* the delivery's message_id, carried over to dead letters */
    char *schedule;
    uint32_t attempt;
    bool owns_claim;     /* release the inflight claim of (id, attempt) when this settle ends */
    int64_t lateness_ms; /* INT64_MIN when the attempt never started */
    /* The follow-up publish (action != OUTCOME_ACK). */
    bool has_followup;
    const char *exchange, *routing_key;
    char *body;
    size_t len;
    char expiration[24]; /* "" for none */
    mq_hdr hdrs[SETTLE_HDRS_MAX];
    size_t nhdrs;
    char key[16];
    char kid[SIGN_KID_MAX + 1]; /* retry: the signature's key id and value */
    char sig[SIGN_HEX_LEN + 1];
    bool returned; /* the broker returned the follow-up as unroutable (set by the I/O thread) */
    /* While the broker nacks the follow-up (set by the I/O thread, see resend.h): consecutive
     * nacks, first nack, next publish and last log line (monotonic ns). */
    unsigned nacks;
    int64_t first_nack_ns, resend_at_ns, logged_ns;
    /* The result record, NULL when there is none (duplicates, undecodable bodies). */
    char *result;
    size_t result_len;
} settle;

/* Build the settle for task t whose fate is o. Takes what it needs from t (the original body may
 * move into the settle); t is still freed by the caller. When the retry copy cannot be
 * re-encoded the settle dead-letters the job instead ("retry-encode: ..."). ERR_OK with *out
 * owned by the caller (settle_free), or ERR_NOMEM. Thread-safe. */
int settle_build(task *t, const outcome *o, const settle_env *env, settle **out);

/* The follow-up as an mq message (pointers borrowed from s). */
void settle_message(const settle *s, mq_msg *m);

/* Free a settle. Safe on NULL. */
void settle_free(settle *s);
/* Free a list of settles linked by next. Safe on NULL. */
void settle_free_list(settle *s);

#endif
