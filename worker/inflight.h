/* inflight: the (firing id, attempt) pairs this worker is running now. When the broker redelivers
 * a job that is still running here (its connection dropped and came back), the copy is parked
 * behind the running original instead of calling the target a second time; when the original
 * settles, the copies are acked as duplicates, or run after all if the original could not be
 * settled. Executors claim; the I/O thread releases. */
#ifndef SALVO_INFLIGHT_H
#define SALVO_INFLIGHT_H

#include "task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct inflight inflight;

/* A registry sized for about `expected` pairs at once (it works with more, just slower).
 * ERR_OK or ERR_NOMEM; the caller owns *out. */
int inflight_new(size_t expected, inflight **out);
/* Free the registry; tasks still parked are freed. Safe on NULL. Not while others use it. */
void inflight_free(inflight *f);

/* Claim (id, attempt) for t. True: t is the owner and runs. False: another task owns the pair
 * and t is parked behind it (the registry owns t now). Out of memory counts as owner: running
 * twice beats losing a job. Thread-safe. */
bool inflight_claim(inflight *f, const char *id, uint32_t attempt, task *t);
/* The owner of (id, attempt) is done: forget the pair and return its parked tasks as a list
 * linked by next (NULL when none). Thread-safe. */
task *inflight_release(inflight *f, const char *id, uint32_t attempt);
/* Pairs claimed now. Thread-safe. */
size_t inflight_count(inflight *f);

#endif
