/* firebatch: the jobs of one batch, expanded and encoded ahead of their instant so that at T only
 * the publishes remain. It also tracks each message's publish/confirm status, because a firing
 * counts as published only once the broker has confirmed every one of its jobs.
 *
 * AMQP message built for each job (exchange salvo.jobs, routing key "job", mandatory,
 * persistent):
 *   message_id        the job's firing id "<schedule>@<YYYYMMDDTHHMMSSZ>#<index>" (dedup key)
 *   content_type      application/msgpack (body: jobwire, versioned)
 *   timestamp         publish time, UTC seconds
 *   expiration        only when max_lateness > 0: the ms left until due + max_lateness at the
 *                     moment of publishing (max_lateness + lead when on time; at least 0), so a
 *                     job that could only start too late dead-letters to salvo.missed. Misfire
 *                     replays get the full max_lateness + lead: the policy asked for them late.
 *   user_id           the login user of the connection (set by publish.c; RabbitMQ checks it)
 *   headers           x-salvo-job (schedule name), x-salvo-due (ISO-8601 UTC), x-salvo-attempt 1,
 *                     x-salvo-due-ms (the due instant, integer ms) and, when a signing key is
 *                     configured, x-salvo-kid + x-salvo-sig: HMAC-SHA256 over key id, message_id,
 *                     due ms and the body (sign.h), computed at build time, ahead of the instant */
#ifndef SALVO_FIREBATCH_H
#define SALVO_FIREBATCH_H

#include "fireplan.h"
#include "mq.h"
#include "sign.h"

#include <stddef.h>
#include <stdint.h>

#define FIREBATCH_CONTENT_TYPE "application/msgpack"
#define FIREBATCH_FIRING_HDRS  4 /* job, due, attempt, due-ms: shared by a firing's messages */
#define FIREBATCH_NHDRS        6 /* ... plus the key id and signature of each message */

typedef enum firebatch_status {
    FIREBATCH_PENDING = 0, /* to publish (again) */
    FIREBATCH_INFLIGHT,    /* published, confirm not yet seen */
    FIREBATCH_RETURNED,    /* came back unroutable; its ack will not count */
    FIREBATCH_CONFIRMED,
} firebatch_status;

typedef struct firebatch_msg {
    char *id;   /* owned */
    char *body; /* owned */
    size_t len;
    char sig[SIGN_HEX_LEN + 1]; /* "" when unsigned */
    uint32_t firing;
    uint8_t status; /* firebatch_status */
} firebatch_msg;

typedef struct firebatch_firing {
    fireplan_firing pf;
    const char *schedule; /* borrowed from the plan: the batch dies at a reload */
    int64_t max_lateness_ms, lead_ms;
    char due_iso[32];
    char expiration[24]; /* "" when none; refreshed by firebatch_props */
    mq_hdr hdrs[FIREBATCH_FIRING_HDRS];
    uint32_t first, count; /* its messages: m[first .. first+count) */
    uint32_t unconfirmed;
} firebatch_firing;

typedef struct firebatch {
    const sign_ring *ring; /* borrowed, set by the owner; NULL publishes unsigned */
    char kid[SIGN_KID_MAX + 1];
    int64_t key_ms; /* publish instant */
    firebatch_firing *f;
    size_t nf, capf;
    firebatch_msg *m;
    size_t nm, capm;
    size_t unconfirmed;
    size_t skipped; /* jobs that could not be built (logged) */
} firebatch;

/* Expand, encode and (with b->ring) sign every job of pb (the plan's entries must stay loaded
 * while b lives). b is cleared first (b->ring is kept). A job that cannot be built is logged as an
 * error and left out. ERR_OK or ERR_NOMEM (b cleared). Costly: call ahead of the instant. Not
 * thread-safe. */
int firebatch_build(firebatch *b, const fireplan *p, const fireplan_batch *pb);
/* Free the messages, keep the arrays for the next batch. */
void firebatch_clear(firebatch *b);
void firebatch_fini(firebatch *b);

/* Refresh per-firing properties (expiration, headers) for a publish pass at now_ms. */
void firebatch_props(firebatch *b, int64_t now_ms);
/* Fill out with message i's publish parameters (pointers borrowed from b, headers written to
 * hdrs[FIREBATCH_NHDRS], which must live until the publish). user_id is left NULL. */
void firebatch_amqp(const firebatch *b, size_t i, int64_t now_ms, mq_hdr *hdrs, mq_msg *out);
/* Mark message i confirmed (idempotent). Returns true when this completed its firing. */
bool firebatch_confirm(firebatch *b, size_t i);

#endif
