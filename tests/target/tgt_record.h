/* tgt_record: the recording target's record file, one JSON object per request per line, written
 * through a memory buffer so that recording never delays reading and stamping requests.
 *
 * Line format (keys in this order; strings are valid UTF-8, invalid bytes become U+FFFD):
 *   t_ns      int     CLOCK_REALTIME ns when the request's first bytes were read (the moment
 *                     epoll reported them to the target's thread: includes its scheduling delay)
 *   rx_ns     int|null  CLOCK_REALTIME ns the kernel stamped the segment that completed the
 *                     request line when it was received (SO_TIMESTAMPING; for loopback, in the
 *                     sender's transmit): the request's arrival; null when the kernel gave none
 *   conn      int     connection number (1, 2, ... in accept order): shows keep-alive reuse
 *   method    string
 *   path      string  without the query string
 *   target    string  as sent, with the query string
 *   idem      string|null  Idempotency-Key
 *   sched_at  string|null  X-Salvo-Scheduled-At
 *   attempt   int|string|null  X-Salvo-Attempt (an int when it is all digits)
 *   headers   object  every header, names lower-cased, repeated headers joined with ", "
 *   body      string  the first 4 KiB of the body
 *   body_len  int     the full Content-Length
 *   status    int     the status answered
 *   seen      int     1 for the first request of this (path, Idempotency-Key), 2 for the next...
 */
#ifndef SALVO_TGT_RECORD_H
#define SALVO_TGT_RECORD_H

#include "tgt_http.h"

#include <stddef.h>
#include <stdint.h>

/* Bodies are recorded up to this many bytes: enough to check a rendered job body. */
#define TGT_RECORD_BODY_CAP 4096

typedef struct tgt_record tgt_record;

typedef struct tgt_record_entry {
    int64_t t_ns;
    int64_t rx_ns; /* 0: none (recorded as null) */
    uint64_t conn_id;
    const tgt_http_req *req; /* borrowed; its spans point into the connection buffer */
    const char *body;        /* req->body_len bytes, borrowed */
    int status;
    unsigned seen;
} tgt_record_entry;

/* Open (create, append to) the record file at path; path NULL records nothing. Returns ERR_OK
 * and *out (close with tgt_record_close), ERR_IO (errno set) or ERR_NOMEM. */
int tgt_record_open(const char *path, tgt_record **out);

/* Append one line to the buffer; writes the buffer out when it grows past 256 KiB. Returns
 * ERR_OK, ERR_NOMEM or ERR_IO. Not thread-safe. */
int tgt_record_add(tgt_record *rec, const tgt_record_entry *e);

/* Write all buffered lines to the file. Returns ERR_OK or ERR_IO. */
int tgt_record_flush(tgt_record *rec);

/* Bytes buffered and not yet written. */
size_t tgt_record_pending(const tgt_record *rec);

/* Flush, close and free; NULL-safe. Returns the flush result. */
int tgt_record_close(tgt_record *rec);

/* Append s[0..n) to a JSON string body: escapes quotes, backslashes and control characters,
 * and replaces bytes that are not valid UTF-8 with U+FFFD. Exposed for the unit test. Writes at
 * most cap bytes (never a partial escape) and returns the bytes written. */
size_t tgt_record_escape(char *dst, size_t cap, const char *s, size_t n);

#endif
