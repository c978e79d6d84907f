/* tgt_shared: the recording target's cross-thread state, one mutex for the plan and records. */
#include "tgt_shared.h"

#include "clock.h"
#include "err.h"

#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int tgt_shared_init(tgt_shared *sh, tgt_plan *plan, tgt_record *rec)
{
    sh->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sh->stopfd < 0)
        return ERR_IO;
    if (pthread_mutex_init(&sh->mu, NULL) != 0) {
        close(sh->stopfd);
        return ERR_IO;
    }
    sh->plan = plan;
    sh->rec = rec;
    sh->last_flush_ns = clock_mono_ns();
    atomic_init(&sh->requests, 0);
    atomic_init(&sh->parse_errors, 0);
    atomic_init(&sh->accept_dropped, 0);
    atomic_init(&sh->held_now, 0);
    atomic_init(&sh->conns_opened, 0);
    atomic_init(&sh->conns_open, 0);
    atomic_init(&sh->conns_max_open, 0);
    atomic_init(&sh->stop, 0);
    return ERR_OK;
}

int tgt_shared_fini(tgt_shared *sh)
{
    int rc = tgt_record_close(sh->rec);
    tgt_plan_free(sh->plan);
    sh->rec = NULL;
    sh->plan = NULL;
    pthread_mutex_destroy(&sh->mu);
    close(sh->stopfd);
    sh->stopfd = -1;
    return rc;
}

int tgt_shared_answer(tgt_shared *sh, const char *path, size_t path_len, const char *key,
                      size_t key_len, tgt_record_entry *e, tgt_plan_answer *a)
{
    pthread_mutex_lock(&sh->mu);
    tgt_plan_next(sh->plan, path, path_len, key, key_len, a);
    e->status = a->status;
    e->seen = a->seen;
    int rc = tgt_record_add(sh->rec, e);
    pthread_mutex_unlock(&sh->mu);
    atomic_fetch_add(&sh->requests, 1);
    return rc;
}

int tgt_shared_flush(tgt_shared *sh, int force, int64_t every_ns)
{
    int rc = ERR_OK;
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&sh->mu);
    if (force || now - sh->last_flush_ns >= every_ns) {
        if (tgt_record_pending(sh->rec) > 0)
            rc = tgt_record_flush(sh->rec);
        sh->last_flush_ns = now;
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

int64_t tgt_shared_flush_due(tgt_shared *sh, int64_t every_ns)
{
    pthread_mutex_lock(&sh->mu);
    int64_t due = tgt_record_pending(sh->rec) > 0 ? sh->last_flush_ns + every_ns : INT64_MAX;
    pthread_mutex_unlock(&sh->mu);
    return due;
}

size_t tgt_shared_keys(tgt_shared *sh)
{
    pthread_mutex_lock(&sh->mu);
    size_t n = tgt_plan_keys(sh->plan);
    pthread_mutex_unlock(&sh->mu);
    return n;
}

uint64_t tgt_shared_conn_opened(tgt_shared *sh)
{
    uint64_t id = atomic_fetch_add(&sh->conns_opened, 1) + 1;
    uint64_t open = atomic_fetch_add(&sh->conns_open, 1) + 1;
    uint64_t max = atomic_load(&sh->conns_max_open);
    while (open > max && !atomic_compare_exchange_weak(&sh->conns_max_open, &max, open))
        ;
    return id;
}

void tgt_shared_conn_closed(tgt_shared *sh)
{
    atomic_fetch_sub(&sh->conns_open, 1);
}

void tgt_shared_stop(tgt_shared *sh)
{
    atomic_store(&sh->stop, 1);
    uint64_t one = 1;
    ssize_t n = write(sh->stopfd, &one, sizeof one);
    (void)n; /* a saturated counter is still readable */
}
