/* rawmsg: the messages rawrate publishes, built the way salvo-producer builds one firing of a
 * schedule entry (schedfile_expand + jobwire_encode, same id, headers and properties), so the
 * raw broker rate is measured on exactly the bytes salvo puts on the wire. */
#ifndef SALVO_RAWMSG_H
#define SALVO_RAWMSG_H

#include "sign.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rawmsg {
    char *id;   /* firing id "<schedule>@<instant>#<index>", the AMQP message_id; owned */
    char *body; /* jobwire msgpack; owned */
    size_t len;
    char sig[SIGN_HEX_LEN + 1]; /* x-salvo-sig; "" when no key is configured */
} rawmsg;

typedef struct rawmsg_set {
    rawmsg *m; /* owned array of n */
    size_t n;
    size_t bytes;               /* sum of the body lengths */
    char schedule[128];         /* x-salvo-job */
    char due_iso[32];           /* x-salvo-due */
    int64_t due_ms;             /* x-salvo-due-ms */
    char kid[SIGN_KID_MAX + 1]; /* x-salvo-kid; "" when unsigned */
    int64_t max_lateness_ms;    /* > 0: each message carries an expiration, as the producer's do */
} rawmsg_set;

/* Load the schedule file at path and build the messages of one firing of its entry named
 * `entry` (NULL: the first entry): its fan-out count, or at most `count` when count > 0. The
 * firing instant is the entry's next one after now (an `at` entry: its instant, past or not).
 * With a key in SALVO_SIGNING_KEY_FILE / SALVO_SIGNING_KEYS each message is signed as the
 * producer signs it, so the raw rate carries the same signature headers.
 * ERR_OK and *out filled (rawmsg_fini), or ERR_SCHEDULE / ERR_NOTFOUND / ERR_NOMEM / an encode
 * error with a one-line reason in err. Blocks on file I/O; not thread-safe. */
int rawmsg_build(const char *path, const char *entry, size_t count, rawmsg_set *out, char *err,
                 size_t cap);

/* Free every message; NULL-safe and safe on a zeroed or half-built set. */
void rawmsg_fini(rawmsg_set *s);

#endif
