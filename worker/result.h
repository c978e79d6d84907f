/* result: the small record every finished attempt publishes to the salvo.results exchange, as
 * one JSON object (content type application/json):
 *
 *   key          type        meaning
 *   id           string      firing id (the job's Idempotency-Key)
 *   schedule     string      schedule entry name
 *   index        int         fan-out index
 *   attempt      int         1 for the first run
 *   outcome      string      ok, retry, dead, missed
 *   status       int         HTTP status or exit code; 0 when none
 *   reason       string      dead/missed reason (x-salvo-reason); omitted when empty
 *   error        string      executor error text (libcurl's, spawn's); omitted when empty
 *   scheduled    string      due instant, ISO-8601 UTC with milliseconds
 *   started      string|null when the request was handed to libcurl / the process spawned
 *   finished     string      when the outcome was known
 *   lateness_ms  int|null    started - scheduled
 *   duration_ms  int|null    finished - started
 *   worker       string      "host:pid"
 *   response     string      first bytes of the reply (invalid UTF-8 replaced by U+FFFD)
 *   truncated    bool        the reply was longer than what was kept
 *
 * Consumers must ignore keys they do not know; new keys may be added. */
#ifndef SALVO_RESULT_H
#define SALVO_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct result_rec {
    const char *id, *schedule;
    uint32_t index, attempt;
    const char *outcome;
    int status;
    const char *reason, *error; /* NULL or "" to omit */
    int64_t due_ms;
    int64_t started_ns;  /* realtime; 0 = never started */
    int64_t finished_ns; /* realtime */
    const char *worker;
    const char *response; /* may be NULL */
    size_t response_len;
    bool truncated;
} result_rec;

/* Encode r as the JSON object above into a malloc'd *out (caller frees) of *len bytes.
 * ERR_OK or ERR_NOMEM. Thread-safe. */
int result_encode(const result_rec *r, char **out, size_t *len);

/* Copy len bytes into a malloc'd NUL-terminated string with each byte that is not part of a
 * well-formed UTF-8 sequence (and each NUL) replaced by U+FFFD, so JSON consumers accept it.
 * NULL when out of memory. Thread-safe. */
char *result_utf8_clean(const char *s, size_t len, size_t *out_len);

#endif
