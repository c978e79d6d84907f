/* fireheap: binary min-heap with a position index, keyed by (publish instant, entry index). */
#include "fireheap.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

int fireheap_init(fireheap *h, size_t cap)
{
    memset(h, 0, sizeof *h);
    if (cap >= FIREHEAP_ABSENT)
        return ERR_RANGE;
    /* Allocate at least one slot so an empty schedule still has valid arrays. */
    size_t slots = cap ? cap : 1;
    h->nodes = malloc(slots * sizeof *h->nodes);
    h->pos = malloc(slots * sizeof *h->pos);
    if (!h->nodes || !h->pos) {
        fireheap_fini(h);
        return ERR_NOMEM;
    }
    memset(h->pos, 0xff, slots * sizeof *h->pos); /* every byte 0xff == FIREHEAP_ABSENT */
    h->cap = cap;
    return ERR_OK;
}

void fireheap_fini(fireheap *h)
{
    if (!h)
        return;
    free(h->nodes);
    free(h->pos);
    memset(h, 0, sizeof *h);
}

static bool fireheap_less(const fireheap_node *a, const fireheap_node *b)
{
    return a->key < b->key || (a->key == b->key && a->idx < b->idx);
}

static void fireheap_place(fireheap *h, size_t at, fireheap_node nd)
{
    h->nodes[at] = nd;
    h->pos[nd.idx] = (uint32_t)at;
}

static void fireheap_up(fireheap *h, size_t at)
{
    fireheap_node nd = h->nodes[at];
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!fireheap_less(&nd, &h->nodes[parent]))
            break;
        fireheap_place(h, at, h->nodes[parent]);
        at = parent;
    }
    fireheap_place(h, at, nd);
}

static void fireheap_down(fireheap *h, size_t at)
{
    fireheap_node nd = h->nodes[at];
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && fireheap_less(&h->nodes[child + 1], &h->nodes[child]))
            child++;
        if (!fireheap_less(&h->nodes[child], &nd))
            break;
        fireheap_place(h, at, h->nodes[child]);
        at = child;
    }
    fireheap_place(h, at, nd);
}

int fireheap_set(fireheap *h, uint32_t idx, int64_t key)
{
    if (idx >= h->cap)
        return ERR_RANGE;
    uint32_t at = h->pos[idx];
    if (at == FIREHEAP_ABSENT) {
        at = (uint32_t)h->n++;
        fireheap_place(h, at, (fireheap_node){key, idx});
        fireheap_up(h, at);
        return ERR_OK;
    }
    int64_t old = h->nodes[at].key;
    h->nodes[at].key = key;
    if (key < old)
        fireheap_up(h, at);
    else
        fireheap_down(h, at);
    return ERR_OK;
}

void fireheap_remove(fireheap *h, uint32_t idx)
{
    if (idx >= h->cap || h->pos[idx] == FIREHEAP_ABSENT)
        return;
    size_t at = h->pos[idx];
    h->pos[idx] = FIREHEAP_ABSENT;
    h->n--;
    if (at == h->n)
        return;
    /* The last node fills the hole; it may belong above or below it. */
    fireheap_node moved = h->nodes[h->n];
    fireheap_place(h, at, moved);
    if (at > 0 && fireheap_less(&moved, &h->nodes[(at - 1) / 2]))
        fireheap_up(h, at);
    else
        fireheap_down(h, at);
}

bool fireheap_contains(const fireheap *h, uint32_t idx)
{
    return idx < h->cap && h->pos[idx] != FIREHEAP_ABSENT;
}

int64_t fireheap_key(const fireheap *h, uint32_t idx)
{
    return fireheap_contains(h, idx) ? h->nodes[h->pos[idx]].key : INT64_MAX;
}

bool fireheap_peek(const fireheap *h, int64_t *key, uint32_t *idx)
{
    if (h->n == 0)
        return false;
    *key = h->nodes[0].key;
    *idx = h->nodes[0].idx;
    return true;
}

bool fireheap_pop(fireheap *h, int64_t *key, uint32_t *idx)
{
    if (!fireheap_peek(h, key, idx))
        return false;
    fireheap_remove(h, *idx);
    return true;
}

static int fireheap_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

size_t fireheap_collect(const fireheap *h, int64_t key, uint32_t *out)
{
    /* Breadth-first over heap positions, using out itself as the queue: a node's children
     * can only qualify when the node does, so the walk stops at the first larger key. */
    size_t head = 0, tail = 0;
    if (h->n > 0 && h->nodes[0].key <= key)
        out[tail++] = 0;
    while (head < tail) {
        size_t at = out[head++];
        for (size_t c = 2 * at + 1; c <= 2 * at + 2 && c < h->n; c++) {
            if (h->nodes[c].key <= key)
                out[tail++] = (uint32_t)c;
        }
    }
    for (size_t i = 0; i < tail; i++)
        out[i] = h->nodes[out[i]].idx;
    qsort(out, tail, sizeof *out, fireheap_cmp_u32);
    return tail;
}
