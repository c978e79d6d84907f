/* inflight: a chained hash of running (firing id, attempt) pairs, each with its parked copies. */
#include "inflight.h"

#include "err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct inflight_ent {
    struct inflight_ent *next;
    uint32_t attempt;
    task *parked; /* copies waiting for the owner, linked by next */
    char id[];
} inflight_ent;

struct inflight {
    pthread_mutex_t mu;
    inflight_ent **buckets;
    size_t nbuckets, count;
};

static size_t inflight_hash(const inflight *f, const char *id, uint32_t attempt)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: ids are ours (producer-made), not hostile */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ attempt) * 1099511628211ULL;
    return (size_t)(h & (f->nbuckets - 1));
}

int inflight_new(size_t expected, inflight **out)
{
    inflight *f = calloc(1, sizeof *f);
    if (!f)
        return ERR_NOMEM;
    f->nbuckets = 64;
    while (f->nbuckets < expected * 2 && f->nbuckets < ((size_t)1 << 24))
        f->nbuckets <<= 1;
    f->buckets = calloc(f->nbuckets, sizeof *f->buckets);
    if (!f->buckets || pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f->buckets);
        free(f);
        return ERR_NOMEM;
    }
    *out = f;
    return ERR_OK;
}

static void inflight_free_tasks(task *t)
{
    while (t) {
        task *next = t->next;
        task_free(t);
        t = next;
    }
}

void inflight_free(inflight *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nbuckets; i++) {
        for (inflight_ent *e = f->buckets[i]; e;) {
            inflight_ent *next = e->next;
            inflight_free_tasks(e->parked);
            free(e);
            e = next;
        }
    }
    free(f->buckets);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* The link pointing at the pair's entry (*link is NULL when absent). Mutex held. */
static inflight_ent **inflight_find(inflight *f, const char *id, uint32_t attempt)
{
    inflight_ent **link = &f->buckets[inflight_hash(f, id, attempt)];
    while (*link && ((*link)->attempt != attempt || strcmp((*link)->id, id) != 0))
        link = &(*link)->next;
    return link;
}

bool inflight_claim(inflight *f, const char *id, uint32_t attempt, task *t)
{
    size_t n = strlen(id) + 1;
    inflight_ent *fresh = malloc(sizeof *fresh + n); /* outside the lock; freed if unused */
    pthread_mutex_lock(&f->mu);
    inflight_ent **link = inflight_find(f, id, attempt);
    bool owner = *link == NULL;
    if (!owner) {
        t->next = (*link)->parked;
        (*link)->parked = t;
    } else if (fresh) {
        fresh->next = NULL;
        fresh->attempt = attempt;
        fresh->parked = NULL;
        memcpy(fresh->id, id, n);
        *link = fresh;
        fresh = NULL;
        f->count++;
    }
    pthread_mutex_unlock(&f->mu);
    free(fresh);
    return owner;
}

task *inflight_release(inflight *f, const char *id, uint32_t attempt)
{
    pthread_mutex_lock(&f->mu);
    inflight_ent **link = inflight_find(f, id, attempt);
    inflight_ent *e = *link;
    if (e) {
        *link = e->next;
        f->count--;
    }
    pthread_mutex_unlock(&f->mu);
    task *parked = e ? e->parked : NULL;
    free(e);
    return parked;
}

size_t inflight_count(inflight *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->count;
    pthread_mutex_unlock(&f->mu);
    return n;
}
