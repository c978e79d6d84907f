/* qvec: growable arrays: room for one more entry at the end (append-only arrays, and arrays
 * used as a queue with live entries v[head .. n)), and the search of a queue whose entries start
 * with an increasing uint64_t key (the worker's ack and confirm trackers). */
#ifndef SALVO_QVEC_H
#define SALVO_QVEC_H

#include <stddef.h>
#include <stdint.h>

/* Make room for entry v[n]: when n == *cap, double the array (first_cap entries the first time).
 * *v and *cap are updated. Returns ERR_OK, or ERR_NOMEM with both unchanged. Not thread-safe;
 * the caller owns *v. */
int qvec_grow(void **v, size_t n, size_t *cap, size_t elem, size_t first_cap);

/* The same for a queue: first by moving the live entries down over the consumed front
 * (*head > 0), else by growing. *head and *n are updated too. */
int qvec_room(void **v, size_t *head, size_t *n, size_t *cap, size_t elem, size_t first_cap);

/* Index of the entry whose leading uint64_t key is key in v[head .. n) (keys strictly
 * increasing), or n when there is none. Binary search. */
size_t qvec_find_u64(const void *v, size_t head, size_t n, size_t elem, uint64_t key);

#endif
