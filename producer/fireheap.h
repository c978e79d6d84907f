/* fireheap: the producer's min-heap of (next publish instant, entry index). An entry is in the
 * heap at most once; its key can move in O(log n) because the heap knows where each entry
 * sits, so firing, misfire handling and reload never rebuild the whole heap. */
#ifndef SALVO_FIREHEAP_H
#define SALVO_FIREHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fireheap_node {
    int64_t key; /* publish instant, ms since the epoch (realtime) */
    uint32_t idx;
} fireheap_node;

/* Equal keys pop in index order, so a batch is always built in schedule-file order. */
typedef struct fireheap {
    fireheap_node *nodes; /* heap array, nodes[0] is the minimum */
    uint32_t *pos;        /* pos[idx]: where idx sits in nodes, FIREHEAP_ABSENT when absent */
    size_t n;             /* nodes in the heap */
    size_t cap;           /* valid indexes are 0 .. cap-1 */
} fireheap;

#define FIREHEAP_ABSENT UINT32_MAX

/* Prepare an empty heap for indexes 0 .. cap-1. ERR_OK, ERR_NOMEM or ERR_RANGE (cap too big
 * for 32-bit indexes). h is caller-owned; release with fireheap_fini. Not thread-safe. */
int fireheap_init(fireheap *h, size_t cap);
/* Free the arrays; h is left empty. Safe on a zeroed or already-finished heap. */
void fireheap_fini(fireheap *h);

/* Insert idx with key, or move it to key when it is already in. O(log n). ERR_OK or ERR_RANGE
 * when idx >= cap. */
int fireheap_set(fireheap *h, uint32_t idx, int64_t key);
/* Remove idx; nothing happens when it is absent. O(log n). */
void fireheap_remove(fireheap *h, uint32_t idx);
bool fireheap_contains(const fireheap *h, uint32_t idx);
/* Key of idx, or INT64_MAX when absent. */
int64_t fireheap_key(const fireheap *h, uint32_t idx);

/* The minimum without removing it. false when the heap is empty. */
bool fireheap_peek(const fireheap *h, int64_t *key, uint32_t *idx);
/* Remove and return the minimum. false when the heap is empty. */
bool fireheap_pop(fireheap *h, int64_t *key, uint32_t *idx);

/* Write into out (room for h->n indexes) every idx whose key is <= key, in ascending index
 * order, and return how many. Visits only those nodes plus their children: O(k log k). */
size_t fireheap_collect(const fireheap *h, int64_t key, uint32_t *out);

#endif
