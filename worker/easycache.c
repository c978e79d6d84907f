/* easycache: a stack of reset easy handles plus its low-water mark over the current period. */
#include "easycache.h"

#include <stdlib.h>
#include <string.h>

void easycache_init(easycache *c)
{
    memset(c, 0, sizeof *c);
}

void easycache_fini(easycache *c)
{
    while (c->n)
        curl_easy_cleanup(c->v[--c->n]);
    free(c->v);
    easycache_init(c);
}

CURL *easycache_get(easycache *c)
{
    if (c->n == 0) {
        c->made++;
        return curl_easy_init();
    }
    CURL *e = c->v[--c->n];
    if (c->n < c->low)
        c->low = c->n;
    c->reused++;
    return e;
}

void easycache_put(easycache *c, CURL *e)
{
    if (!e)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        CURL **v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            curl_easy_cleanup(e); /* only the reuse is lost */
            c->freed++;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    curl_easy_reset(e);
    c->v[c->n++] = e;
}

size_t easycache_trim(easycache *c, int64_t now_ns)
{
    if (now_ns < c->period_end_ns)
        return 0;
    size_t unused = c->period_end_ns ? c->low : 0; /* the first call only starts a period */
    size_t drop = unused > EASYCACHE_FLOOR ? unused - EASYCACHE_FLOOR : 0;
    if (drop) {
        /* The unused handles are the oldest returns, at the bottom of the stack. */
        for (size_t i = 0; i < drop; i++)
            curl_easy_cleanup(c->v[i]);
        memmove(c->v, c->v + drop, (c->n - drop) * sizeof *c->v);
        c->n -= drop;
        c->freed += drop;
    }
    c->low = c->n;
    c->period_end_ns = now_ns + EASYCACHE_PERIOD_NS;
    return drop;
}

size_t easycache_count(const easycache *c)
{
    return c->n;
}
