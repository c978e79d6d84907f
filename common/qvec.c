/* qvec: growable arrays, and the search of a queue keyed by an increasing uint64_t. */
#include "qvec.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

int qvec_grow(void **v, size_t n, size_t *cap, size_t elem, size_t first_cap)
{
    if (n < *cap)
        return ERR_OK;
    size_t ncap = *cap ? *cap * 2 : first_cap;
    if (ncap > SIZE_MAX / elem)
        return ERR_NOMEM;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return ERR_NOMEM;
    *v = nv;
    *cap = ncap;
    return ERR_OK;
}

int qvec_room(void **v, size_t *head, size_t *n, size_t *cap, size_t elem, size_t first_cap)
{
    if (*head > 0 && *n == *cap) {
        /* Reclaim the consumed front before growing. */
        memmove(*v, (char *)*v + *head * elem, (*n - *head) * elem);
        *n -= *head;
        *head = 0;
    }
    return qvec_grow(v, *n, cap, elem, first_cap);
}

static uint64_t qvec_key(const void *v, size_t i, size_t elem)
{
    uint64_t k;
    memcpy(&k, (const char *)v + i * elem, sizeof k);
    return k;
}

size_t qvec_find_u64(const void *v, size_t head, size_t n, size_t elem, uint64_t key)
{
    size_t lo = head, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (qvec_key(v, mid, elem) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && qvec_key(v, lo, elem) == key ? lo : n;
}
