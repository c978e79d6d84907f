/* tgt_timer: the recording target's held replies, a binary min-heap of (deadline, connection)
 * so thousands of delayed replies cost O(log n) each and the loop sleeps exactly until the next
 * one is due. Entries are never removed early: a closed connection's entry is recognised as stale
 * by its generation number when it comes due. */
#ifndef SALVO_TGT_TIMER_H
#define SALVO_TGT_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tgt_timer_entry {
    int64_t due_ns; /* CLOCK_MONOTONIC */
    int fd;
    uint32_t gen; /* the connection's generation when the reply was held */
} tgt_timer_entry;

typedef struct tgt_timer {
    tgt_timer_entry *v;
    size_t n;
    size_t cap;
} tgt_timer;

/* Empty heap; tgt_timer_fini frees it (NULL-safe, safe on an initialised empty heap). */
void tgt_timer_init(tgt_timer *t);
void tgt_timer_fini(tgt_timer *t);

/* Add an entry. Returns ERR_OK or ERR_NOMEM. */
int tgt_timer_push(tgt_timer *t, tgt_timer_entry e);

/* Earliest entry without removing it; returns 0 when the heap is empty. */
int tgt_timer_peek(const tgt_timer *t, tgt_timer_entry *out);

/* Remove and return the earliest entry if it is due at now_ns; returns 0 otherwise. */
int tgt_timer_pop_due(tgt_timer *t, int64_t now_ns, tgt_timer_entry *out);

#endif
