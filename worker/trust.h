/* trust: the gate a delivery passes before the decoder sees a byte: published by an allowed broker
 * account, and signed by a known key.
 *
 * Publishers. RabbitMQ refuses a publish whose user_id property differs from the publisher's login
 * (unless that user is tagged impersonator), so the user_id says which broker account published a
 * job; the worker runs only jobs published by an account on the list (--allowed-publishers /
 * SALVO_ALLOWED_PUBLISHERS).
 *
 * The worker's own login is always accepted: retries are re-published by workers, and carry the
 * worker's login as user_id. With the list empty (the default) that is the only account
 * accepted, which fits the usual deployment where producer and workers share one broker user;
 * give the producer its own user and put it on the list to tell them apart.
 *
 * Everything here is pure (no I/O, no clocks) and thread-safe on const data. */
#ifndef SALVO_TRUST_H
#define SALVO_TRUST_H

#include "mq.h"
#include "sign.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRUST_PUBLISHERS_MAX 32  /* accounts allowed to publish jobs: a handful in practice */
#define TRUST_NAME_MAX       255 /* RabbitMQ user names are short strings (AMQP shortstr) */

typedef struct trust_publishers {
    char *buf;                               /* owned: the names, NUL-separated */
    const char *names[TRUST_PUBLISHERS_MAX]; /* point into buf */
    size_t n;
} trust_publishers;

/* Parse a comma-separated list ("producer, ops-producer"); blanks around names and empty
 * entries are ignored, so NULL or "" gives an empty list. ERR_OK, or ERR_PARSE with err saying
 * which entry is wrong (more than TRUST_PUBLISHERS_MAX names, a name too long or with a control
 * character), or ERR_NOMEM. out is initialised in every case (trust_fini is safe). */
int trust_parse(const char *csv, trust_publishers *out, char *err, size_t cap);

/* Free the list; safe on a zeroed or failed one. */
void trust_fini(trust_publishers *p);

/* Whether a message with this user_id may run: present, and equal to self (the worker's own
 * login, NULL when unknown) or to a name on the list. Exact, case-sensitive comparison, as
 * RabbitMQ's. Thread-safe (read-only). */
bool trust_allowed(const trust_publishers *p, const char *user_id, const char *self);

/* The dead-letter reason for a refused user_id: "bad-publisher: no user_id" or
 * "bad-publisher: user_id 'x' is not allowed", the id cut to 64 bytes and anything but printable
 * ASCII shown as '?' (it came off the wire and goes into a header and a log line). */
void trust_reason(const char *user_id, char *buf, size_t cap);

/* Verify d against ring in constant time: the producer signed key id + message_id + due instant
 * + body (sign.h), and this reads them back from the delivery. The key id and signature come from
 * headers x-salvo-kid / x-salvo-sig, the due instant from x-salvo-due-ms (0 when absent, so a
 * signature made over the real instant cannot match), the message id from the message_id property.
 * ERR_OK with *due_ms set to the signed due instant (the caller checks the decoded job agrees),
 * or ERR_SIGNATURE / ERR_NOMEM with reason set ("bad-signature: missing" etc., see sign_verify).
 * Thread-safe. */
int trust_verify(const sign_ring *ring, const mq_delivery *d, int64_t *due_ms, char *reason,
                 size_t cap);

#endif
