/* pool: N executors plus one hold timer, and least-loaded dispatch between them. */
#include "pool.h"

#include "err.h"
#include "executor.h"
#include "hold.h"

#include <stdlib.h>

/* Commands one executor runs at once: each needs a poll slot, and commands are the rare kind. */
#define POOL_MAX_CMDS 64

struct pool {
    exec_shared sh;
    executor *ex;
    size_t n;
    bool stopped;
};

/* The least-loaded executor. */
static executor *pool_pick(pool *p)
{
    size_t best = 0, best_load = SIZE_MAX;
    for (size_t i = 0; i < p->n; i++) {
        size_t l = executor_load(&p->ex[i]);
        if (l < best_load) {
            best = i;
            best_load = l;
        }
    }
    return &p->ex[best];
}

/* Held tasks whose instant came: ahead of every admission still queued. */
static void pool_fire(void *ud, void **items, size_t n)
{
    pool *p = ud;
    for (size_t i = 0; i < n; i++)
        executor_push_due(pool_pick(p), items[i]);
}

static void pool_drop_held(void *ud, void *item)
{
    (void)ud;
    task_free(item);
}

int pool_new(const pool_opts *o, pool **out)
{
    if (o->threads < 1 || o->max_inflight < 1 || o->fd_budget < 1)
        return ERR_INVAL;
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return ERR_NOMEM;
    exec_shared *sh = &p->sh;
    *sh = (exec_shared){.env = o->env,
                        .out = o->out,
                        .recent = o->recent,
                        .inflight = o->inflight,
                        .wm = o->wm,
                        .capture_cap = o->capture_cap,
                        .allow = o->allow,
                        .nallow = o->nallow,
                        .fd_budget = o->fd_budget};
    atomic_init(&sh->running, 0);
    atomic_init(&sh->fd_warned_ns, 0);
    /* One host may take every in-flight job (a fan-out to one API): never cap below that. */
    long conns = (long)o->max_inflight;
    sh->limits = (httpcall_limits){conns, conns, conns / (long)o->threads + 16};
    p->ex = calloc(o->threads, sizeof *p->ex);
    if (!p->ex || hold_new(o->max_inflight, pool_fire, p, &sh->hold) != ERR_OK)
        goto fail;
    for (p->n = 0; p->n < o->threads; p->n++) {
        if (executor_init(&p->ex[p->n], sh, (int)p->n, POOL_MAX_CMDS) != ERR_OK)
            goto fail;
    }
    *out = p;
    return ERR_OK;
fail:
    pool_free(p);
    return ERR_NOMEM;
}

int pool_start(pool *p)
{
    if (hold_start(p->sh.hold) != ERR_OK)
        return ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++) {
        if (executor_start(&p->ex[i]) != ERR_OK)
            return ERR_NOMEM;
    }
    return ERR_OK;
}

void pool_dispatch(pool *p, task *t)
{
    executor_push(pool_pick(p), t);
}

void pool_set_generation(pool *p, uint64_t gen)
{
    atomic_store(&p->sh.conn_gen, gen);
}

size_t pool_load(pool *p)
{
    size_t n = hold_count(p->sh.hold);
    for (size_t i = 0; i < p->n; i++)
        n += executor_load(&p->ex[i]);
    return n;
}

void pool_stop(pool *p, bool abort)
{
    if (p->stopped)
        return;
    p->stopped = true;
    /* The hold first: once it is stopped nothing can come back into an executor. */
    hold_stop(p->sh.hold, pool_drop_held, NULL);
    for (size_t i = 0; i < p->n; i++)
        executor_stop(&p->ex[i], abort);
    for (size_t i = 0; i < p->n; i++)
        executor_join(&p->ex[i]);
}

void pool_free(pool *p)
{
    if (!p)
        return;
    if (p->sh.hold)
        hold_stop(p->sh.hold, pool_drop_held, NULL);
    for (size_t i = 0; p->ex && i < p->n; i++)
        executor_fini(&p->ex[i]);
    hold_free(p->sh.hold);
    free(p->ex);
    free(p);
}
