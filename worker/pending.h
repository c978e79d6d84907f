/* pending: follow-up publishes (retry, dead, missed) waiting for their publisher confirm, in
 * publish-sequence order. The I/O thread acks an original delivery only when the confirm of its
 * follow-up comes back, so no job is acked before its next step is safely in the broker. */
#ifndef SALVO_PENDING_H
#define SALVO_PENDING_H

#include "settle.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pending_ent {
    uint64_t seq;
    settle *s;
} pending_ent;

typedef struct pending {
    pending_ent *v; /* v[head .. n) live, seq strictly increasing */
    size_t head, n, cap;
} pending;

/* An empty table (no allocation until the first add). */
void pending_init(pending *p);
/* Free the table and every settle still in it. */
void pending_fini(pending *p);
/* Track s (ownership moves) under publish sequence seq, which must exceed every seq added
 * before on this connection. ERR_OK or ERR_NOMEM (s stays the caller's). */
int pending_add(pending *p, uint64_t seq, settle *s);
/* A confirm for tag (all <= tag when multiple): remove the matching entries and return their
 * settles as a list linked by next, in sequence order (NULL when none matched, e.g. the confirm
 * of a result record, which is not tracked). */
settle *pending_confirm(pending *p, uint64_t tag, bool multiple);
/* Flag the oldest unreturned entry whose settle has this firing id as returned. Returns whether
 * one was found. */
bool pending_mark_returned(pending *p, const char *id);
/* Remove everything (the connection is gone) and return it as a list. */
settle *pending_take_all(pending *p);
size_t pending_count(const pending *p);

#endif
