/* recent: a bounded set of the (firing id, attempt) pairs this worker has settled lately. A copy
 * of a settled job that the broker redelivers (its ack was lost with a connection) is then acked
 * as a duplicate instead of running a second time. Oldest entries are forgotten first. */
#ifndef SALVO_RECENT_H
#define SALVO_RECENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct recent recent;

/* Allocate a set remembering up to capacity pairs (>= 1). ERR_OK, ERR_INVAL or ERR_NOMEM.
 * The caller owns *out (recent_free). */
int recent_new(size_t capacity, recent **out);
/* Free the set. Safe on NULL. Not while other threads use it. */
void recent_free(recent *r);

/* Remember (id, attempt); id is copied. Adding a pair already present does nothing. When full,
 * the oldest pair is forgotten. ERR_OK or ERR_NOMEM. Thread-safe. */
int recent_add(recent *r, const char *id, uint32_t attempt);
/* True when (id, attempt) is remembered. Thread-safe. */
bool recent_has(recent *r, const char *id, uint32_t attempt);
/* Number of pairs remembered. Thread-safe. */
size_t recent_count(recent *r);

#endif
