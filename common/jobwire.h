/* jobwire: the job's wire format (versioned msgpack map) and the bounded decoder that stands
 * between hostile bytes and msgpack-c. The only file that includes <msgpack.h>.
 * The format itself is documented in the comment block at the top of jobwire.c. */
#ifndef SALVO_JOBWIRE_H
#define SALVO_JOBWIRE_H

#include "job.h"

#include <stddef.h>

#define JOBWIRE_VERSION     1            /* bump when a field changes meaning or type */
#define JOBWIRE_MAX_BYTES   (256 * 1024) /* whole message body */
#define JOBWIRE_MAX_DEPTH   8            /* msgpack-c itself stops at 32 */
#define JOBWIRE_MAX_OBJECTS 20000        /* total msgpack objects in one body */

/* Encode j (which should pass job_validate) as a msgpack body. *out is malloc'd; caller frees.
 * ERR_OK, ERR_NOMEM or ERR_WIRE_SIZE when the result exceeds JOBWIRE_MAX_BYTES (or the depth or
 * object limits, so whatever is returned passes jobwire_prevalidate); ERR_INVAL when j->kind is
 * neither http nor command. On error *out is NULL. Deterministic: equal jobs, equal bytes.
 * Thread-safe. */
int jobwire_encode(const job *j, char **out, size_t *out_len);

/* Check raw bytes before msgpack-c sees them: exactly one top-level object, depth <=
 * JOBWIRE_MAX_DEPTH, every declared length/count <= the bytes left, total objects <=
 * JOBWIRE_MAX_OBJECTS, no reserved byte 0xc1, nothing trailing. ERR_OK or ERR_WIRE_FORMAT with a
 * reason such as "malformed: depth 9 > 8 at offset 14". Thread-safe, allocation-free. */
int jobwire_prevalidate(const void *buf, size_t len, char *reason, size_t cap);

/* The whole bounded path: size cap, prevalidate, msgpack decode, reject trailing bytes, version,
 * types and required keys, then job_validate; last, a job that would not re-encode within the
 * limits (retries re-send it) is refused as too-large. *out must be fresh from job_init; on
 * success the job owns copies of everything (buf may be freed at once). On failure *out is left
 * empty and reason gets "<class>: <detail>" where class is too-large, malformed, bad-version or
 * bad-schema; the text is fit for a dead-letter header. ERR_NOMEM (reported as too-large) when
 * memory runs out. Thread-safe. */
int jobwire_decode(const void *buf, size_t len, job *out, char *reason, size_t cap);

#endif
