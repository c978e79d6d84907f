/* tgt_timer: binary min-heap of held replies, ordered by deadline. */
#include "tgt_timer.h"

#include "err.h"

#include <stdlib.h>

void tgt_timer_init(tgt_timer *t)
{
    t->v = NULL;
    t->n = 0;
    t->cap = 0;
}

void tgt_timer_fini(tgt_timer *t)
{
    if (!t)
        return;
    free(t->v);
    tgt_timer_init(t);
}

static void tgt_timer_swap(tgt_timer *t, size_t a, size_t b)
{
    tgt_timer_entry tmp = t->v[a];
    t->v[a] = t->v[b];
    t->v[b] = tmp;
}

int tgt_timer_push(tgt_timer *t, tgt_timer_entry e)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        tgt_timer_entry *grown = realloc(t->v, cap * sizeof *grown);
        if (!grown)
            return ERR_NOMEM;
        t->v = grown;
        t->cap = cap;
    }
    size_t i = t->n++;
    t->v[i] = e;
    while (i > 0 && t->v[(i - 1) / 2].due_ns > t->v[i].due_ns) {
        tgt_timer_swap(t, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return ERR_OK;
}

int tgt_timer_peek(const tgt_timer *t, tgt_timer_entry *out)
{
    if (t->n == 0)
        return 0;
    *out = t->v[0];
    return 1;
}

int tgt_timer_pop_due(tgt_timer *t, int64_t now_ns, tgt_timer_entry *out)
{
    if (t->n == 0 || t->v[0].due_ns > now_ns)
        return 0;
    *out = t->v[0];
    t->v[0] = t->v[--t->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        if (l < t->n && t->v[l].due_ns < t->v[m].due_ns)
            m = l;
        if (r < t->n && t->v[r].due_ns < t->v[m].due_ns)
            m = r;
        if (m == i)
            break;
        tgt_timer_swap(t, i, m);
        i = m;
    }
    return 1;
}
