/* hold: a min-heap of (due instant, arrival order, item) and the one thread that serves it. */
#include "hold.h"

#include "clock.h"
#include "err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* Items handed to the callback per batch; a larger burst is simply several batches. */
#define HOLD_BATCH 256

typedef struct hold_ent {
    int64_t due_ns;
    uint64_t seq; /* arrival order breaks ties, so equal instants fire first-come first-served */
    void *item;
} hold_ent;

struct hold {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* default clock: CLOCK_REALTIME, the clock due instants are in */
    hold_ent *heap;
    size_t n, cap;
    uint64_t next_seq;
    bool stopping, started, joined;
    pthread_t thread;
    hold_fire_fn fire;
    void *ud;
};

static bool hold_less(const hold_ent *a, const hold_ent *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void hold_swap(hold_ent *a, hold_ent *b)
{
    hold_ent t = *a;
    *a = *b;
    *b = t;
}

static void hold_sift_up(hold *h, size_t i)
{
    while (i > 0 && hold_less(&h->heap[i], &h->heap[(i - 1) / 2])) {
        hold_swap(&h->heap[i], &h->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static void hold_sift_down(hold *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < h->n && hold_less(&h->heap[l], &h->heap[m]))
            m = l;
        if (l + 1 < h->n && hold_less(&h->heap[l + 1], &h->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        hold_swap(&h->heap[i], &h->heap[m]);
        i = m;
    }
}

static void *hold_pop(hold *h)
{
    void *item = h->heap[0].item;
    h->heap[0] = h->heap[--h->n];
    hold_sift_down(h, 0);
    return item;
}

int hold_new(size_t initial, hold_fire_fn fire, void *ud, hold **out)
{
    hold *h = calloc(1, sizeof *h);
    if (!h)
        return ERR_NOMEM;
    h->cap = initial ? initial : 64;
    h->heap = malloc(h->cap * sizeof *h->heap);
    h->fire = fire;
    h->ud = ud;
    if (!h->heap || pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h->heap);
        free(h);
        return ERR_NOMEM;
    }
    if (pthread_cond_init(&h->cv, NULL) != 0) {
        pthread_mutex_destroy(&h->mu);
        free(h->heap);
        free(h);
        return ERR_NOMEM;
    }
    *out = h;
    return ERR_OK;
}

/* Wait (mutex held) until the earliest item is due or the hold stops. */
static void hold_wait(hold *h)
{
    while (!h->stopping) {
        if (h->n == 0) {
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        int64_t due = h->heap[0].due_ns;
        if (clock_real_ns() >= due)
            return;
        struct timespec ts = {(time_t)(due / CLOCK_NS_PER_SEC), (long)(due % CLOCK_NS_PER_SEC)};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
}

static void *hold_main(void *arg)
{
    hold *h = arg;
    void *batch[HOLD_BATCH];
    pthread_mutex_lock(&h->mu);
    for (;;) {
        hold_wait(h);
        if (h->stopping)
            break;
        int64_t now = clock_real_ns();
        size_t k = 0;
        while (k < HOLD_BATCH && h->n > 0 && h->heap[0].due_ns <= now)
            batch[k++] = hold_pop(h);
        pthread_mutex_unlock(&h->mu);
        h->fire(h->ud, batch, k);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int hold_start(hold *h)
{
    if (pthread_create(&h->thread, NULL, hold_main, h) != 0)
        return ERR_NOMEM;
    h->started = true;
    return ERR_OK;
}

int hold_add(hold *h, int64_t due_ns, void *item)
{
    int rc = ERR_OK;
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        rc = ERR_INVAL;
        goto out;
    }
    if (h->n == h->cap) {
        hold_ent *p = realloc(h->heap, 2 * h->cap * sizeof *p);
        if (!p) {
            rc = ERR_NOMEM;
            goto out;
        }
        h->heap = p;
        h->cap *= 2;
    }
    h->heap[h->n] = (hold_ent){due_ns, h->next_seq++, item};
    hold_sift_up(h, h->n++);
    /* Only a new earliest item changes when the thread must wake. */
    if (h->heap[0].seq == h->next_seq - 1)
        pthread_cond_signal(&h->cv);
out:
    pthread_mutex_unlock(&h->mu);
    return rc;
}

size_t hold_count(hold *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void hold_stop(hold *h, hold_drop_fn drop, void *ud)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->started && !h->joined) {
        pthread_join(h->thread, NULL);
        h->joined = true;
    }
    while (h->n > 0) {
        void *item = hold_pop(h);
        if (drop)
            drop(ud, item);
    }
}

void hold_free(hold *h)
{
    if (!h)
        return;
    hold_stop(h, NULL, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->heap);
    free(h);
}
