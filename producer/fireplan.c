/* fireplan: next instants, misfire policies, reload and clock steps, as pure functions of the
 * "now" the caller passes in. */
#include "fireplan.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counting missed firings only feeds a log line; past this many it says "more than". */
#define FIREPLAN_COUNT_CAP 10000

static int64_t fireplan_ceil_s(int64_t ms)
{
    return ms >= 0 ? (ms + 999) / 1000 : -(-ms / 1000);
}

static const char *fireplan_iso(int64_t s, char *buf, size_t cap)
{
    if (s == FIREPLAN_NEVER) {
        snprintf(buf, cap, "never");
        return buf;
    }
    return clock_format_iso(s * CLOCK_NS_PER_SEC, 0, buf, cap);
}

/* First instant of e strictly after `after`, FIREPLAN_NEVER when there is none. */
static int64_t fireplan_after(const sched_entry *e, int64_t after)
{
    int64_t t;
    return schedfile_next(e, after, &t) == ERR_OK ? t : FIREPLAN_NEVER;
}

int64_t fireplan_key(const fireplan *p, uint32_t i)
{
    const fireplan_entry *ent = &p->ents[i];
    if (ent->next_s == FIREPLAN_NEVER)
        return INT64_MAX;
    return ent->next_s * 1000 - ent->e->lead_ms;
}

/* Put entry i in the heap at its publish instant, or take it out when nothing is left. */
static void fireplan_schedule(fireplan *p, uint32_t i)
{
    if (p->ents[i].next_s == FIREPLAN_NEVER)
        fireheap_remove(&p->heap, i);
    else
        fireheap_set(&p->heap, i, fireplan_key(p, i));
}

/* A fresh entry: its first instant at or after now, never at or before `floor_s`. */
static void fireplan_fresh(fireplan_entry *ent, int64_t now_ms, int64_t floor_s)
{
    int64_t after = fireplan_ceil_s(now_ms) - 1;
    ent->next_s = fireplan_after(ent->e, after > floor_s ? after : floor_s);
    ent->last_s = floor_s;
    ent->since_ms = now_ms;
    ent->replay_end_s = 0;
}

static void fireplan_resume(fireplan_entry *ent, const prodstate_rec *rec, int64_t now_ms)
{
    char buf[40];
    ent->last_s = rec->last_s;
    ent->next_s = fireplan_after(ent->e, rec->last_s);
    ent->since_ms = now_ms;
    ent->replay_end_s = 0;
    if (rec->last_s * 1000 > now_ms)
        log_notice("job %s: state says it last fired at %s, later than the clock: no instant "
                   "up to then fires again",
                   ent->e->name, fireplan_iso(rec->last_s, buf, sizeof buf));
}

static int fireplan_alloc(fireplan *p, size_t n)
{
    size_t slots = n ? n : 1;
    p->ents = calloc(slots, sizeof *p->ents);
    p->scratch = malloc(slots * sizeof *p->scratch);
    if (!p->ents || !p->scratch)
        return ERR_NOMEM;
    return fireheap_init(&p->heap, n);
}

int fireplan_init(fireplan *p, schedfile *sf, const prodstate *st, int64_t now_ms, int64_t grace_ms)
{
    memset(p, 0, sizeof *p);
    p->grace_ms = grace_ms;
    p->sf = sf;
    int rc = fireplan_alloc(p, sf->n);
    if (rc != ERR_OK) {
        fireplan_fini(p);
        return rc;
    }
    p->n = sf->n;
    for (size_t i = 0; i < p->n; i++) {
        fireplan_entry *ent = &p->ents[i];
        ent->e = &sf->entries[i];
        const prodstate_rec *rec = st ? prodstate_find(st, ent->e->name) : NULL;
        if (rec && rec->digest == ent->e->digest)
            fireplan_resume(ent, rec, now_ms);
        else
            fireplan_fresh(ent, now_ms, 0);
        fireplan_schedule(p, (uint32_t)i);
    }
    return ERR_OK;
}

void fireplan_fini(fireplan *p)
{
    if (!p)
        return;
    schedfile_free(p->sf);
    free(p->ents);
    free(p->scratch);
    fireheap_fini(&p->heap);
    memset(p, 0, sizeof *p);
}

void fireplan_batch_fini(fireplan_batch *b)
{
    if (!b)
        return;
    free(b->f);
    memset(b, 0, sizeof *b);
}

/* ---- misfires ----------------------------------------------------------------------------- */

/* The latest up-to-m instants of e in [lo, hi], found by widening a window back from hi so a
 * year of per-second firings costs what the last m of them cost. ring has room for m.
 * Returns how many were found (<= m); *oldest and *latest bound them. */
static size_t fireplan_latest(const sched_entry *e, int64_t lo, int64_t hi, size_t m, int64_t *ring,
                              int64_t *oldest, int64_t *latest)
{
    size_t count = 0;
    for (int64_t w = 1;; w *= 2) {
        int64_t from = hi - w < lo - 1 ? lo - 1 : hi - w;
        count = 0;
        for (int64_t t = fireplan_after(e, from); t <= hi; t = fireplan_after(e, t))
            ring[count++ % m] = t;
        if (count >= m || from == lo - 1)
            break;
    }
    if (count == 0)
        return 0;
    *latest = ring[(count - 1) % m];
    *oldest = count >= m ? ring[count % m] : ring[0];
    return count < m ? count : m;
}

/* How many instants of e lie in [lo, hi], as text ("12", "more than 10000"). */
static const char *fireplan_count(const sched_entry *e, int64_t lo, int64_t hi, char *buf,
                                  size_t cap)
{
    size_t n = 0;
    for (int64_t t = fireplan_after(e, lo - 1); t <= hi && n <= FIREPLAN_COUNT_CAP;
         t = fireplan_after(e, t))
        n++;
    if (n > FIREPLAN_COUNT_CAP)
        snprintf(buf, cap, "more than %d", FIREPLAN_COUNT_CAP);
    else
        snprintf(buf, cap, "%zu", n);
    return buf;
}

static void fireplan_apply(fireplan_entry *ent, int64_t lo, int64_t hi, const char *why)
{
    const sched_entry *e = ent->e;
    int64_t ring[SCHED_MISFIRE_ALL_MAX], oldest = lo, latest = lo;
    char a[40], b[40], c[40], cnt[40];
    fireplan_count(e, lo, hi, cnt, sizeof cnt);
    if (e->misfire == SCHED_MISFIRE_SKIP) {
        fireplan_latest(e, lo, hi, 1, ring, &oldest, &latest);
        ent->next_s = fireplan_after(e, hi);
        log_warn("job %s: misfire skip: %s firing(s) from %s to %s not fired (%s); next %s",
                 e->name, cnt, fireplan_iso(lo, a, sizeof a), fireplan_iso(latest, b, sizeof b),
                 why, fireplan_iso(ent->next_s, c, sizeof c));
        return;
    }
    size_t m = e->misfire == SCHED_MISFIRE_ONCE ? 1 : e->misfire_max;
    if (m < 1 || m > SCHED_MISFIRE_ALL_MAX)
        m = m < 1 ? 1 : SCHED_MISFIRE_ALL_MAX;
    size_t got = fireplan_latest(e, lo, hi, m, ring, &oldest, &latest);
    if (e->misfire == SCHED_MISFIRE_ONCE) {
        ent->next_s = latest;
        ent->replay_end_s = latest + 1;
        log_warn("job %s: misfire once: %s firing(s) from %s to %s missed (%s); firing once "
                 "for %s",
                 e->name, cnt, fireplan_iso(lo, a, sizeof a), fireplan_iso(latest, b, sizeof b),
                 why, b);
        return;
    }
    ent->next_s = oldest;
    ent->replay_end_s = hi + 1;
    log_warn("job %s: misfire all: %s firing(s) from %s to %s missed (%s); replaying the "
             "latest %zu from %s (misfire_max %u)",
             e->name, cnt, fireplan_iso(lo, a, sizeof a), fireplan_iso(latest, b, sizeof b), why,
             got, fireplan_iso(oldest, c, sizeof c), e->misfire_max);
}

/* Apply the entry's misfire policy when its next instant is a misfire at now_ms. Returns true
 * when the entry changed. */
static bool fireplan_settle(fireplan *p, uint32_t i, int64_t now_ms)
{
    fireplan_entry *ent = &p->ents[i];
    int64_t t = ent->next_s;
    if (t == FIREPLAN_NEVER || t < ent->replay_end_s)
        return false;
    int64_t late_cut = now_ms - p->grace_ms;
    int64_t cutoff = ent->since_ms > late_cut ? ent->since_ms : late_cut;
    if (t * 1000 >= cutoff)
        return false;
    /* Missed: every instant t' >= t with t' * 1000 < cutoff, i.e. t' <= hi. */
    int64_t hi = fireplan_ceil_s(cutoff) - 1;
    char why[96];
    if (cutoff == ent->since_ms)
        snprintf(why, sizeof why, "the producer was not running");
    else
        snprintf(why, sizeof why, "later than the misfire grace of %lld ms",
                 (long long)p->grace_ms);
    fireplan_apply(ent, t, hi, why);
    fireplan_schedule(p, i);
    return true;
}

static int fireplan_batch_fill(fireplan *p, int64_t key, size_t k, fireplan_batch *b)
{
    if (k > b->cap) {
        fireplan_firing *f = realloc(b->f, k * sizeof *f);
        if (!f)
            return ERR_NOMEM;
        b->f = f;
        b->cap = k;
    }
    b->key_ms = key;
    b->n = k;
    for (size_t j = 0; j < k; j++) {
        const fireplan_entry *ent = &p->ents[p->scratch[j]];
        b->f[j] =
            (fireplan_firing){p->scratch[j], p->gen, ent->next_s, ent->next_s < ent->replay_end_s};
    }
    return ERR_OK;
}

int fireplan_next(fireplan *p, int64_t now_ms, fireplan_batch *b)
{
    b->n = 0;
    /* Each settle moves an entry past its misfires for good, so n + 1 rounds always suffice;
     * the bound only guards against a schedule whose next() contradicts itself. */
    for (size_t round = 0;; round++) {
        int64_t key;
        uint32_t first;
        if (!fireheap_peek(&p->heap, &key, &first))
            return ERR_NOTFOUND;
        size_t k = fireheap_collect(&p->heap, key, p->scratch);
        bool changed = false;
        for (size_t j = 0; j < k && round <= p->n; j++)
            changed |= fireplan_settle(p, p->scratch[j], now_ms);
        if (!changed)
            return fireplan_batch_fill(p, key, k, b);
    }
}

bool fireplan_stale(const fireplan *p, const fireplan_batch *b, int64_t now_ms)
{
    for (size_t j = 0; j < b->n; j++) {
        const fireplan_firing *f = &b->f[j];
        if (f->gen != p->gen || f->entry >= p->n || p->ents[f->entry].next_s != f->due_s)
            return true;
        if (!f->replay && f->due_s * 1000 < now_ms - p->grace_ms)
            return true;
    }
    return false;
}

void fireplan_commit(fireplan *p, const fireplan_firing *f)
{
    if (f->gen != p->gen || f->entry >= p->n || p->ents[f->entry].next_s != f->due_s)
        return;
    fireplan_entry *ent = &p->ents[f->entry];
    ent->last_s = f->due_s;
    ent->next_s = fireplan_after(ent->e, f->due_s);
    fireplan_schedule(p, f->entry);
}

/* ---- reload, clock steps, state ----------------------------------------------------------- */

typedef struct fireplan_name {
    const char *name;
    uint32_t idx;
} fireplan_name;

static int fireplan_name_cmp(const void *a, const void *b)
{
    return strcmp(((const fireplan_name *)a)->name, ((const fireplan_name *)b)->name);
}

/* Carry the old plan's entries over to np where name and digest match. Counts in cnt[]:
 * kept, changed, added. */
static void fireplan_carry(const fireplan *old, fireplan *np, const fireplan_name *idx,
                           int64_t now_ms, size_t cnt[3])
{
    for (size_t i = 0; i < np->n; i++) {
        fireplan_entry *ent = &np->ents[i];
        ent->e = &np->sf->entries[i];
        fireplan_name key = {ent->e->name, 0};
        const fireplan_name *hit =
            old->n ? bsearch(&key, idx, old->n, sizeof key, fireplan_name_cmp) : NULL;
        const fireplan_entry *was = hit ? &old->ents[hit->idx] : NULL;
        if (was && was->e->digest == ent->e->digest) {
            const sched_entry *e = ent->e;
            *ent = *was;
            ent->e = e;
            cnt[0]++;
        } else {
            /* A changed entry starts afresh, but never re-fires an instant it already fired. */
            fireplan_fresh(ent, now_ms, was ? was->last_s : 0);
            cnt[was ? 1 : 2]++;
        }
        fireplan_schedule(np, (uint32_t)i);
    }
}

int fireplan_reload(fireplan *p, schedfile *sf, int64_t now_ms)
{
    fireplan np = {.sf = sf, .n = sf->n, .grace_ms = p->grace_ms, .gen = p->gen + 1};
    np.obs_real_ms = p->obs_real_ms;
    np.obs_mono_ms = p->obs_mono_ms;
    fireplan_name *idx = malloc((p->n ? p->n : 1) * sizeof *idx);
    if (!idx || fireplan_alloc(&np, sf->n) != ERR_OK) {
        free(idx);
        fireplan_fini(&np);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < p->n; i++)
        idx[i] = (fireplan_name){p->ents[i].e->name, (uint32_t)i};
    qsort(idx, p->n, sizeof *idx, fireplan_name_cmp);
    size_t cnt[3] = {0, 0, 0};
    fireplan_carry(p, &np, idx, now_ms, cnt);
    free(idx);
    log_notice("reloaded %s: %zu jobs (%zu unchanged, %zu changed, %zu added, %zu removed)",
               sf->path ? sf->path : "schedule", np.n, cnt[0], cnt[1], cnt[2],
               p->n - cnt[0] - cnt[1]);
    fireplan_fini(p);
    *p = np;
    return ERR_OK;
}

int64_t fireplan_observe(fireplan *p, int64_t real_ms, int64_t mono_ms)
{
    int64_t step = 0;
    if (p->obs_mono_ms != 0)
        step = (real_ms - p->obs_real_ms) - (mono_ms - p->obs_mono_ms);
    p->obs_real_ms = real_ms;
    p->obs_mono_ms = mono_ms;
    if (step > -FIREPLAN_STEP_MS && step < FIREPLAN_STEP_MS)
        return 0;
    if (step > 0)
        log_warn("realtime clock stepped forward by %lld ms: firings inside the jump are "
                 "published late within the misfire grace (%lld ms), older ones follow their "
                 "misfire policy",
                 (long long)step, (long long)p->grace_ms);
    else
        log_warn("realtime clock stepped back by %lld ms: no firing repeats; every job keeps "
                 "its next instant",
                 (long long)-step);
    return step;
}

size_t fireplan_adopt(fireplan *p, const prodstate *st)
{
    size_t moved = 0;
    for (size_t i = 0; i < p->n; i++) {
        fireplan_entry *ent = &p->ents[i];
        const prodstate_rec *rec = prodstate_find(st, ent->e->name);
        /* A changed entry (other digest) starts afresh, as after a restart; an older instant
         * than what this producer confirmed itself says nothing new. */
        if (!rec || rec->digest != ent->e->digest || rec->last_s <= ent->last_s)
            continue;
        ent->last_s = rec->last_s;
        ent->next_s = fireplan_after(ent->e, rec->last_s);
        ent->replay_end_s = 0;
        fireplan_schedule(p, (uint32_t)i);
        moved++;
    }
    return moved;
}

int fireplan_state(const fireplan *p, prodstate_rec **out, size_t *n)
{
    size_t k = 0;
    prodstate_rec *recs = malloc((p->n ? p->n : 1) * sizeof *recs);
    if (!recs)
        return ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++) {
        const fireplan_entry *ent = &p->ents[i];
        if (ent->last_s > 0)
            recs[k++] = (prodstate_rec){ent->e->name, ent->e->digest, ent->last_s};
    }
    *out = recs;
    *n = k;
    return ERR_OK;
}
