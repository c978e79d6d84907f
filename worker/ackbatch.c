/* ackbatch: a sorted array of tracked tags with a moving head; settles mostly arrive for the
 * front, so a flush usually acks one run from the head and touches nothing else. */
#include "ackbatch.h"

#include "err.h"
#include "qvec.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void ackbatch_init(ackbatch *b)
{
    memset(b, 0, sizeof *b);
    b->due_ns = INT64_MAX;
    b->hold_due_ns = INT64_MAX;
}

void ackbatch_fini(ackbatch *b)
{
    free(b->v);
    ackbatch_init(b);
}

void ackbatch_reset(ackbatch *b)
{
    b->head = b->n = 0;
    b->settled = 0;
    b->last = 0;
    b->due_ns = INT64_MAX;
    b->hold_due_ns = INT64_MAX;
}

int ackbatch_track(ackbatch *b, uint64_t tag)
{
    if (tag <= b->last)
        return ERR_INVAL;
    void *v = b->v;
    int rc = qvec_room(&v, &b->head, &b->n, &b->cap, sizeof *b->v, 256);
    b->v = v;
    if (rc != ERR_OK)
        return rc;
    b->v[b->n++] = (ackbatch_ent){tag, 0};
    b->last = tag;
    return ERR_OK;
}

/* Index of tag in v[head .. n), or n when it is not tracked. */
static size_t ackbatch_find(const ackbatch *b, uint64_t tag)
{
    _Static_assert(offsetof(ackbatch_ent, tag) == 0, "qvec_find_u64 reads the leading key");
    return qvec_find_u64(b->v, b->head, b->n, sizeof *b->v, tag);
}

static int64_t ackbatch_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int ackbatch_settle(ackbatch *b, uint64_t tag, int64_t now_ns)
{
    size_t i = ackbatch_find(b, tag);
    if (i == b->n)
        return ERR_NOTFOUND;
    if (b->v[i].settled_ns)
        return ERR_OK; /* settled twice: one ack is all the broker may get */
    b->v[i].settled_ns = now_ns > 0 ? now_ns : 1;
    b->settled++;
    b->due_ns = ackbatch_min(b->due_ns, now_ns + ACKBATCH_DELAY_NS);
    b->hold_due_ns = ackbatch_min(b->hold_due_ns, now_ns + ACKBATCH_HOLD_NS);
    return ERR_OK;
}

void ackbatch_forget(ackbatch *b, uint64_t tag)
{
    size_t i = ackbatch_find(b, tag);
    if (i == b->n)
        return;
    if (b->v[i].settled_ns)
        b->settled--;
    if (i == b->head) {
        b->head++;
        return;
    }
    memmove(b->v + i, b->v + i + 1, (b->n - i - 1) * sizeof *b->v); /* rare: a reject */
    b->n--;
}

int64_t ackbatch_due(const ackbatch *b)
{
    return b->due_ns;
}

/* The settled run at the front: one ack covers it. */
static int ackbatch_flush_front(ackbatch *b, ackbatch_send_fn send, void *arg)
{
    size_t end = b->head;
    while (end < b->n && b->v[end].settled_ns)
        end++;
    size_t run = end - b->head;
    if (run == 0)
        return ERR_OK;
    uint64_t tag = b->v[end - 1].tag;
    b->head = end;
    b->settled -= run;
    b->acks++;
    b->tags += run;
    return send(arg, tag, run > 1);
}

/* Settled tags behind an open one that waited long enough (all of them when force): ack each on
 * its own, keep the rest, and note when the oldest kept one will have waited long enough. */
static int ackbatch_flush_held(ackbatch *b, int64_t now_ns, bool force, ackbatch_send_fn send,
                               void *arg)
{
    int rc = ERR_OK;
    int64_t next = INT64_MAX;
    size_t w = b->head;
    for (size_t r = b->head; r < b->n; r++) {
        ackbatch_ent e = b->v[r];
        if (e.settled_ns && (force || e.settled_ns + ACKBATCH_HOLD_NS <= now_ns)) {
            b->settled--;
            b->acks++;
            b->tags++;
            b->held++;
            if (rc == ERR_OK)
                rc = send(arg, e.tag, false);
            continue;
        }
        if (e.settled_ns)
            next = ackbatch_min(next, e.settled_ns + ACKBATCH_HOLD_NS);
        b->v[w++] = e;
    }
    b->n = w;
    b->hold_due_ns = next;
    return rc;
}

int ackbatch_flush(ackbatch *b, int64_t now_ns, bool force, ackbatch_send_fn send, void *arg)
{
    int rc = ackbatch_flush_front(b, send, arg);
    if (rc == ERR_OK && b->settled > 0 && (force || now_ns >= b->hold_due_ns))
        rc = ackbatch_flush_held(b, now_ns, force, send, arg);
    /* What is left settled sits behind an open tag: its hold, or a settle in front, is next. */
    b->due_ns = b->settled > 0 ? b->hold_due_ns : INT64_MAX;
    if (b->settled == 0)
        b->hold_due_ns = INT64_MAX;
    return rc;
}

size_t ackbatch_count(const ackbatch *b)
{
    return b->n - b->head;
}

size_t ackbatch_settled(const ackbatch *b)
{
    return b->settled;
}
