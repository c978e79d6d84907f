/* recent: FIFO ring of settled (firing id, attempt) pairs with a chained hash index. */
#include "recent.h"

#include "err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One remembered pair. next chains slots of the same bucket; -1 ends a chain. */
typedef struct recent_slot {
    uint64_t hash;
    char *id;
    uint32_t attempt;
    int64_t next;
} recent_slot;

struct recent {
    pthread_mutex_t mu;
    recent_slot *slots; /* ring in insertion order */
    size_t cap, count, oldest;
    int64_t *buckets; /* heads; twice the capacity, rounded to a power of two, keeps chains short */
    size_t nbuckets;
};

static uint64_t recent_hash(const char *id, uint32_t attempt)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: cheap, and keys are not attacker-chosen */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (int i = 0; i < 4; i++)
        h = (h ^ ((attempt >> (8 * i)) & 0xff)) * 1099511628211ULL;
    return h;
}

int recent_new(size_t capacity, recent **out)
{
    if (capacity == 0 || capacity > ((size_t)1 << 30))
        return ERR_INVAL;
    recent *r = calloc(1, sizeof *r);
    if (!r)
        return ERR_NOMEM;
    r->cap = capacity;
    r->nbuckets = 1;
    while (r->nbuckets < capacity * 2)
        r->nbuckets <<= 1;
    r->slots = calloc(capacity, sizeof *r->slots);
    r->buckets = malloc(r->nbuckets * sizeof *r->buckets);
    if (!r->slots || !r->buckets || pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r->slots);
        free(r->buckets);
        free(r);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < r->nbuckets; i++)
        r->buckets[i] = -1;
    *out = r;
    return ERR_OK;
}

void recent_free(recent *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i].id);
    free(r->slots);
    free(r->buckets);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int64_t recent_find(const recent *r, uint64_t h, const char *id, uint32_t attempt)
{
    for (int64_t i = r->buckets[h & (r->nbuckets - 1)]; i >= 0; i = r->slots[i].next) {
        const recent_slot *s = &r->slots[i];
        if (s->hash == h && s->attempt == attempt && strcmp(s->id, id) == 0)
            return i;
    }
    return -1;
}

/* Unlink slot idx from its bucket chain and release its id. */
static void recent_evict(recent *r, size_t idx)
{
    recent_slot *s = &r->slots[idx];
    int64_t *link = &r->buckets[s->hash & (r->nbuckets - 1)];
    while (*link >= 0 && (size_t)*link != idx)
        link = &r->slots[*link].next;
    if (*link >= 0)
        *link = s->next;
    free(s->id);
    s->id = NULL;
}

int recent_add(recent *r, const char *id, uint32_t attempt)
{
    uint64_t h = recent_hash(id, attempt);
    char *copy = strdup(id);
    if (!copy)
        return ERR_NOMEM;
    pthread_mutex_lock(&r->mu);
    if (recent_find(r, h, id, attempt) >= 0) {
        pthread_mutex_unlock(&r->mu);
        free(copy);
        return ERR_OK;
    }
    size_t idx = (r->oldest + r->count) % r->cap;
    if (r->count == r->cap) {
        idx = r->oldest;
        recent_evict(r, idx);
        r->oldest = (r->oldest + 1) % r->cap;
        r->count--;
    }
    size_t b = h & (r->nbuckets - 1);
    r->slots[idx] = (recent_slot){h, copy, attempt, r->buckets[b]};
    r->buckets[b] = (int64_t)idx;
    r->count++;
    pthread_mutex_unlock(&r->mu);
    return ERR_OK;
}

bool recent_has(recent *r, const char *id, uint32_t attempt)
{
    uint64_t h = recent_hash(id, attempt);
    pthread_mutex_lock(&r->mu);
    bool found = recent_find(r, h, id, attempt) >= 0;
    pthread_mutex_unlock(&r->mu);
    return found;
}

size_t recent_count(recent *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}
