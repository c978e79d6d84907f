/* hold: precise mode's timer. Jobs that arrive before their due instant (up to a few seconds
 * ahead) wait here, in one min-heap served by one thread that sleeps until the earliest instant
 * with an absolute realtime wait, and hands every job due by then to a callback in one batch.
 * No pool thread ever sleeps on a job, and there is no polling. */
#ifndef SALVO_HOLD_H
#define SALVO_HOLD_H

#include <stddef.h>
#include <stdint.h>

typedef struct hold hold;

/* Called on the hold thread with the items that fell due, earliest first (ties in the order
 * they were added). Ownership of the items passes to the callback; the array is borrowed. */
typedef void (*hold_fire_fn)(void *ud, void **items, size_t n);
/* Called by hold_stop for each item that never fell due. */
typedef void (*hold_drop_fn)(void *ud, void *item);

/* Allocate a hold with room for `initial` items (it grows as needed). ERR_OK or ERR_NOMEM; the
 * caller owns *out. No thread runs until hold_start. */
int hold_new(size_t initial, hold_fire_fn fire, void *ud, hold **out);
/* Start the timer thread. ERR_OK or ERR_NOMEM (thread creation failed). */
int hold_start(hold *h);

/* Hold item until the realtime instant due_ns (already-due items fire at once). Wakes the thread
 * when the new item is earlier than everything held. ERR_OK, ERR_NOMEM, or ERR_INVAL once the
 * hold is stopping (the caller keeps the item). Thread-safe. */
int hold_add(hold *h, int64_t due_ns, void *item);
/* Items held now. Thread-safe. */
size_t hold_count(hold *h);

/* Stop and join the thread; every item still held goes to drop (may be NULL to leak them on
 * purpose, which tests never do). Safe to call once, from the owner. */
void hold_stop(hold *h, hold_drop_fn drop, void *ud);
/* Free a hold (stopping it first if needed, dropping items to nobody). Safe on NULL. */
void hold_free(hold *h);

#endif
