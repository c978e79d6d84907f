/* run: `salvo-producer run`: start-up, the wait-then-fire loop, reload, and a draining stop.
 *
 * One thread does everything, in this order, forever: plan the next batch (settling misfires),
 * expand and encode it while its instant is still ahead, wait for the instant on the waker
 * while keeping the broker connection serviced (heartbeats are only sent inside library
 * calls), sleep the last few ms on an absolute realtime clock, publish the batch and wait for
 * its confirms, then record the firings and save the state.
 *
 * In a high-availability group (--ha-group) the loop only fires while it holds the lease
 * (lease.h). A standby keeps its plan loaded but builds no batch; it joins the lease queue on
 * each new connection and waits for the token. On receiving it, it reads the group's
 * watermark (watermark.h), moves every
 * entry to just after its last confirmed instant and plans from there, so the firings the
 * previous producer had not confirmed go out now, late, with their own ids. After each batch
 * the active producer writes the watermark. Losing the connection is losing the lease: the
 * batch in progress ends, and the producer stands by until it takes the lease again. */
#include "run.h"

#include "autolead.h"
#include "clock.h"
#include "err.h"
#include "fireplan.h"
#include "lease.h"
#include "log.h"
#include "pmetrics.h"
#include "publish.h"
#include "redact.h"
#include "runopts.h"
#include "signcfg.h"
#include "watermark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The waker's timer fires this long before the instant; the rest is an absolute sleep, which
 * lands within tens of microseconds, after the broker events that woke us were handled. */
#define RUN_MARGIN_NS (2 * CLOCK_NS_PER_MS)
/* A save rewrites every entry's line and fsyncs: 35-70 ms for 100k entries here. Saves are spaced
 * to this many times their cost (at least RUN_SAVE_MIN_NS), and always made before a longer wait. A
 * crash loses at most that interval of "last fired" instants: those firings then count as missed,
 * and a replay carries the same ids, deduplicated downstream. */
#define RUN_SAVE_SPACING 20
#define RUN_SAVE_MIN_NS  CLOCK_NS_PER_SEC
/* After a failed join of the lease queue (e.g. a missing permission), the first pause; it
 * doubles up to 30 s. */
#define RUN_LEASE_RETRY_NS (500 * CLOCK_NS_PER_MS)
/* A watermark up to this size is written after every batch; a bigger one (a schedule of some
 * thousands of entries) is spaced like the state file, so a takeover may repeat that interval's
 * firings, with the same ids. */
#define RUN_MARK_SMALL (64 * 1024)

typedef struct run_ctx {
    runopts o;
    waker w;
    fireplan plan;
    publish pub;
    fireplan_batch due; /* the next batch, planned */
    firebatch batch;    /* ... and built */
    bool ready;         /* due and batch match the plan */
    bool have_next;     /* false when nothing will ever fire */
    bool dirty;         /* firings committed since the last save */
    sign_ring *ring;    /* NULL when running --allow-unsigned without a key */
    int64_t saved_mono_ns, save_cost_ns;
    int lock_fd;
    pmetrics *pm; /* NULL when metrics are off */
    lease ls;     /* disabled without --ha-group: always active */
    watermark wm;
    bool was_active;   /* held the lease at the last look, for the step-down log line */
    bool mark_dirty;   /* firings committed since the last watermark write */
    size_t mark_bytes; /* size of the last watermark written */
    int64_t marked_mono_ns, mark_cost_ns;
} run_ctx;

static int64_t run_now_ms(void)
{
    return clock_real_ns() / CLOCK_NS_PER_MS;
}

static void run_log_errors(const char *errors)
{
    const char *p = errors ? errors : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (len > 0)
            log_err("%.*s", len, p);
        p += len + (nl != NULL);
    }
}

static void run_save_state(run_ctx *c)
{
    prodstate_rec *recs = NULL;
    size_t n = 0;
    int64_t t0 = clock_mono_ns();
    int rc = fireplan_state(&c->plan, &recs, &n);
    if (rc == ERR_OK)
        rc = prodstate_save(c->o.state_dir, recs, n);
    if (rc != ERR_OK)
        log_err("saving state to %s/%s failed: %s", c->o.state_dir, PRODSTATE_FILE, err_str(rc));
    else
        log_debug("state saved: %zu jobs in %.1f ms", n, (double)(clock_mono_ns() - t0) / 1e6);
    free(recs);
    c->dirty = false;
    c->saved_mono_ns = clock_mono_ns();
    c->save_cost_ns = c->saved_mono_ns - t0;
}

/* Save when the spacing has passed, or when the next batch is further away than it. */
static void run_maybe_save(run_ctx *c)
{
    if (!c->dirty)
        return;
    int64_t spacing = c->save_cost_ns * RUN_SAVE_SPACING;
    if (spacing < RUN_SAVE_MIN_NS)
        spacing = RUN_SAVE_MIN_NS;
    int64_t wait_ns = c->have_next ? c->due.key_ms * CLOCK_NS_PER_MS - clock_real_ns() : INT64_MAX;
    if (clock_mono_ns() - c->saved_mono_ns >= spacing || wait_ns >= spacing)
        run_save_state(c);
}

/* ---- high availability -------------------------------------------------------------------- */

static uint64_t run_gen(const run_ctx *c)
{
    return publish_connected(&c->pub) ? mq_generation(c->pub.m) : 0;
}

/* The lease token arrived on the current connection (always true without a group). */
static bool run_holds(const run_ctx *c)
{
    return lease_held(&c->ls, run_gen(c), c->pub.token_gen);
}

/* May fire: holds the lease and has taken over (read the watermark) on this connection. */
static bool run_active(const run_ctx *c)
{
    return !c->ls.enabled || (run_holds(c) && c->was_active);
}

/* Write the watermark: after every batch when it is small, else spaced like the state file
 * (or at once when force, or when the next batch is further away than the spacing). */
static void run_mark(run_ctx *c, bool force)
{
    if (!c->ls.enabled || !c->mark_dirty || !run_active(c))
        return;
    int64_t t0 = clock_mono_ns();
    int64_t spacing = c->mark_cost_ns * RUN_SAVE_SPACING;
    if (spacing < RUN_SAVE_MIN_NS)
        spacing = RUN_SAVE_MIN_NS;
    int64_t wait_ns = c->have_next ? c->due.key_ms * CLOCK_NS_PER_MS - clock_real_ns() : INT64_MAX;
    if (!force && c->mark_bytes > RUN_MARK_SMALL && t0 - c->marked_mono_ns < spacing &&
        wait_ns < spacing)
        return;
    prodstate_rec *recs = NULL;
    size_t n = 0, bytes = 0;
    int rc = fireplan_state(&c->plan, &recs, &n);
    if (rc == ERR_OK)
        rc = watermark_write(&c->wm, c->pub.m, recs, n, clock_real_ns() / CLOCK_NS_PER_SEC, &bytes);
    free(recs);
    if (rc != ERR_OK) {
        log_warn("writing the watermark to %s failed: %s", c->wm.queue, err_str(rc));
        return;
    }
    c->mark_dirty = false;
    c->mark_bytes = bytes;
    c->marked_mono_ns = clock_mono_ns();
    c->mark_cost_ns = c->marked_mono_ns - t0;
    log_debug("watermark written: %zu entries, %zu bytes", n, bytes);
}

/* Just took the lease: continue after the group's watermark. ERR_OK when active and planned
 * from it; else the connection failed and the producer stays standby. */
static int run_take_over(run_ctx *c)
{
    prodstate st;
    char by[300] = "", err[320] = "", at[40] = "";
    int64_t at_s = 0;
    int rc = watermark_read(&c->wm, c->pub.m, &st, by, sizeof by, &at_s, err, sizeof err);
    if (rc != ERR_OK && rc != ERR_NOTFOUND && rc != ERR_PARSE) {
        /* Firing without the watermark could repeat what the last producer fired: give the
         * lease back with the connection and try again from scratch. */
        log_warn("took the lease %s but could not read the watermark (%s); standing by",
                 c->ls.queue, rc == ERR_NOMEM ? err_str(rc) : err);
        publish_abandon(&c->pub, "watermark unreadable");
        return rc;
    }
    firebatch_clear(&c->batch);
    c->ready = false;
    c->was_active = true;
    pmetrics_active(c->pm, true, true);
    if (rc != ERR_OK) {
        log_notice("became active: holding lease %s on %s; no watermark yet, continuing from the "
                   "local state",
                   c->ls.queue, mq_endpoint(c->pub.m));
        return ERR_OK;
    }
    size_t moved = fireplan_adopt(&c->plan, &st);
    clock_format_iso(at_s * CLOCK_NS_PER_SEC, 0, at, sizeof at);
    log_notice("became active: holding lease %s on %s; watermark of %zu jobs written by %s at %s: "
               "%zu jobs continue after it",
               c->ls.queue, mq_endpoint(c->pub.m), st.n, by, at, moved);
    prodstate_fini(&st);
    c->dirty |= moved > 0;
    return ERR_OK;
}

/* The active producer renews its token before the broker's consumer_timeout could close the
 * channel that holds it (lease.h). The fresh token comes back as a delivery on this connection,
 * so the producer stays active throughout. */
static void run_keep_lease(run_ctx *c)
{
    publish *p = &c->pub;
    if (!c->ls.enabled || !run_active(c) ||
        !lease_renew_due(&c->ls, p->token_mono_ns, clock_mono_ns()))
        return;
    p->token_mono_ns = clock_mono_ns(); /* once per interval, whatever the outcome */
    if (lease_renew(&c->ls, p->m, c->o.conn_name) != ERR_OK)
        log_warn("renewing the lease token failed: connection lost");
    else
        log_debug("lease token renewal published (holding tag %llu)",
                  (unsigned long long)p->token_tag);
}

/* Join the lease queue on this connection when due. */
static void run_join(run_ctx *c)
{
    char err[320] = "";
    int64_t now = clock_mono_ns();
    if (!lease_due(&c->ls, run_gen(c), now))
        return;
    int rc = watermark_declare(&c->wm, c->pub.m, err, sizeof err);
    if (rc == ERR_OK)
        rc = lease_join(&c->ls, c->pub.m, c->o.conn_name, err, sizeof err);
    lease_note(&c->ls, rc, run_gen(c), now);
    if (rc != ERR_OK)
        log_warn("joining lease %s failed (e.g. no permission on salvo.producer.*): %s; trying "
                 "again in %lld ms",
                 c->ls.queue, err, (long long)((c->ls.next_try_ns - now) / CLOCK_NS_PER_MS));
    else if (c->ls.others > 0)
        log_notice("standing by: lease %s is held by another producer of group %s (%u other "
                   "producer(s) connected)",
                   c->ls.queue, c->ls.group, c->ls.others);
}

/* One standby step: take over when the token came, else reconnect, join, or wait for the
 * token. ERR_OK when this producer became active. */
static int run_standby(run_ctx *c)
{
    bool holds = run_holds(c);
    if (c->was_active && !holds) {
        log_warn("lost the lease %s with the broker connection: standing by (publishing "
                 "stopped; the producer that takes the lease fires what was not confirmed)",
                 c->ls.queue);
        c->was_active = false;
        pmetrics_active(c->pm, false, false);
        firebatch_clear(&c->batch);
        c->ready = false;
    }
    if (holds)
        return run_take_over(c);
    waker_arm(&c->w, 0);
    if (!publish_connected(&c->pub)) {
        publish_connect(&c->pub, false); /* returns early on a signal: the caller looks */
        return ERR_INTR;
    }
    run_join(c);
    if (publish_connected(&c->pub) && !run_holds(c)) {
        int64_t ms = c->o.heartbeat_s * 500;
        if (c->ls.joined_gen != run_gen(c)) {
            int64_t left = (c->ls.next_try_ns - clock_mono_ns()) / CLOCK_NS_PER_MS + 1;
            ms = left < ms ? left : ms;
        }
        publish_service(&c->pub, (int)(ms > 0 ? ms : 1));
    }
    return ERR_INTR;
}

/* SIGHUP: a broken file keeps the old schedule, with every error logged as file:line. */
static void run_reload(run_ctx *c)
{
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_load(c->o.schedule, &sf, &errors);
    if (rc == ERR_OK)
        autolead_apply(sf, c->o.fanout_lead_us);
    if (rc != ERR_OK) {
        log_err("reload of %s failed (%s); keeping the previous schedule of %zu jobs",
                c->o.schedule, err_str(rc), c->plan.n);
        run_log_errors(errors);
        free(errors);
        pmetrics_reload(c->pm, false);
        return;
    }
    firebatch_clear(&c->batch); /* it borrows names from the plan about to be replaced */
    c->ready = false;
    rc = fireplan_reload(&c->plan, sf, run_now_ms());
    if (rc != ERR_OK)
        log_err("reload of %s: out of memory; keeping the previous schedule", c->o.schedule);
    pmetrics_reload(c->pm, rc == ERR_OK);
    pmetrics_schedules(c->pm, c->plan.n);
}

/* Plan and build the next batch ahead of its instant. */
static int run_prepare(run_ctx *c)
{
    int64_t t0 = clock_mono_ns();
    int rc = fireplan_next(&c->plan, run_now_ms(), &c->due);
    c->have_next = rc == ERR_OK;
    pmetrics_next_fire(c->pm, c->have_next ? c->due.key_ms : 0);
    if (rc == ERR_NOTFOUND) {
        c->ready = true;
        log_notice("nothing left to fire; waiting for a reload or a stop");
        return ERR_OK;
    }
    if (rc == ERR_OK)
        rc = firebatch_build(&c->batch, &c->plan, &c->due);
    if (rc != ERR_OK)
        return rc;
    c->ready = true;
    if (log_enabled(LOG_DEBUG)) {
        char at[40];
        clock_format_iso(c->due.key_ms * CLOCK_NS_PER_MS, 3, at, sizeof at);
        log_debug("prepared batch for %s: %zu jobs of %zu firings in %.1f ms", at, c->batch.nm,
                  c->batch.nf, (double)(clock_mono_ns() - t0) / 1e6);
    }
    return ERR_OK;
}

/* Wait for the batch's instant with the connection serviced. ERR_OK at the instant, ERR_INTR
 * when a signal or a clock step needs the loop's attention first. */
static int run_wait(run_ctx *c)
{
    int64_t key = c->have_next ? c->due.key_ms * CLOCK_NS_PER_MS : INT64_MAX;
    int64_t hb_half_ms = c->o.heartbeat_s * 500;
    for (;;) {
        if (waker_peek(&c->w, WAKER_HUP | WAKER_TERM | WAKER_CLOCKSET))
            return ERR_INTR;
        if (!run_active(c)) {
            if (run_standby(c) == ERR_OK)
                return ERR_INTR; /* active now: plan from the watermark first */
            continue;
        }
        run_keep_lease(c);
        int64_t now = clock_real_ns();
        if (now >= key - RUN_MARGIN_NS) {
            while (clock_real_ns() < key)
                clock_sleep_until_real(key);
            return ERR_OK;
        }
        waker_arm(&c->w, key == INT64_MAX ? 0 : key - RUN_MARGIN_NS);
        if (!publish_connected(&c->pub)) {
            publish_connect(&c->pub, false);
        } else {
            int64_t left_ms = (key - RUN_MARGIN_NS - now) / CLOCK_NS_PER_MS + 1;
            publish_service(&c->pub, (int)(left_ms < hb_half_ms ? left_ms : hb_half_ms));
        }
        waker_take(&c->w, WAKER_TIMER); /* only a wake-up: the clock is read again above */
    }
}

static void run_log_batch(const run_ctx *c, const publish_report *r, size_t committed)
{
    const firebatch *b = &c->batch;
    char due[40], more[32] = "";
    if (b->nf == 0)
        return;
    clock_format_iso(b->f[0].pf.due_s * CLOCK_NS_PER_SEC, 0, due, sizeof due);
    if (b->nf > 1)
        snprintf(more, sizeof more, " (+%zu more)", b->nf - 1);
    double late = (double)(r->pass_real_ns - b->key_ms * CLOCK_NS_PER_MS) / 1e6;
    log_info("fired job=%s%s due=%s jobs=%zu confirmed=%zu lateness_ms=%.1f publish_ms=%.1f "
             "confirm_ms=%.1f total_ms=%.1f published=%u reconnects=%u%s",
             b->f[0].schedule, more, due, b->nm, b->nm - b->unconfirmed, late,
             (double)r->publish_ns / 1e6, (double)r->confirm_ns / 1e6, (double)r->total_ns / 1e6,
             r->published, r->reconnects, b->f[0].pf.replay ? " misfire-replay" : "");
    if (committed < b->nf && !run_active(c))
        log_warn("%zu of %zu firings not confirmed before the connection, and the lease with it, "
                 "was lost: left to the producer that takes the lease",
                 b->nf - committed, b->nf);
    else if (committed < b->nf)
        log_err("%zu of %zu firings not confirmed before the stop: not recorded as fired",
                b->nf - committed, b->nf);
}

/* One line per job: its firing id, schedule, lateness and whether the broker confirmed it. The
 * producer only ever publishes first attempts (retries are the worker's). */
static void run_log_jobs(const run_ctx *c, const publish_report *r)
{
    const firebatch *b = &c->batch;
    if (!log_enabled(LOG_INFO))
        return;
    double late = (double)(r->pass_real_ns - b->key_ms * CLOCK_NS_PER_MS) / 1e6;
    for (size_t i = 0; i < b->nm; i++) {
        const firebatch_firing *f = &b->f[b->m[i].firing];
        bool ok = b->m[i].status == FIREBATCH_CONFIRMED;
        log_msg(ok ? LOG_INFO : LOG_WARN, b->m[i].id,
                "published schedule=%s attempt=1 due=%s lateness_ms=%.1f status=%s", f->schedule,
                f->due_iso, late, ok ? "confirmed" : "unconfirmed");
    }
}

/* Publish the built batch, record what the broker confirmed, save the state. */
static int run_fire(run_ctx *c)
{
    publish_report r;
    int rc = publish_batch(&c->pub, &c->batch, &r);
    size_t committed = 0;
    for (size_t i = 0; i < c->batch.nf; i++) {
        if (c->batch.f[i].unconfirmed == 0) {
            fireplan_commit(&c->plan, &c->batch.f[i].pf);
            committed++;
        }
    }
    run_log_batch(c, &r, committed);
    run_log_jobs(c, &r);
    pmetrics_batch(c->pm, &c->batch, r.pass_real_ns, r.confirm_ns, r.published);
    c->dirty |= committed > 0;
    c->mark_dirty |= committed > 0;
    firebatch_clear(&c->batch);
    c->ready = false;
    return rc;
}

static int run_loop(run_ctx *c)
{
    for (;;) {
        unsigned bits = waker_take(&c->w, WAKER_HUP | WAKER_TERM | WAKER_CLOCKSET | WAKER_TIMER);
        if (bits & WAKER_TERM)
            return 0;
        pmetrics_clock_step(
            c->pm, fireplan_observe(&c->plan, run_now_ms(), clock_mono_ns() / CLOCK_NS_PER_MS));
        if (bits & WAKER_HUP)
            run_reload(c);
        if (!c->ready && run_active(c) && run_prepare(c) != ERR_OK) {
            log_err("planning the next batch: out of memory");
            return 1;
        }
        run_maybe_save(c);
        run_mark(c, false);
        if (run_wait(c) != ERR_OK || !c->have_next || !c->ready)
            continue;
        if (fireplan_stale(&c->plan, &c->due, run_now_ms())) {
            firebatch_clear(&c->batch);
            c->ready = false;
            continue;
        }
        int rc = run_fire(c);
        if (rc == ERR_MQ_CLOSED && c->ls.enabled)
            continue; /* the lease is gone: run_wait stands by */
        run_mark(c, false);
        if (rc == ERR_TIMEOUT)
            return 1;
        if (rc != ERR_OK) {
            log_err("publishing: %s", err_str(rc));
            return 1;
        }
    }
}

/* Load the schedule and the state and build the plan. Returns an exit code, or -1 to go on. */
static int run_start(run_ctx *c)
{
    int64_t t0 = clock_mono_ns();
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_load(c->o.schedule, &sf, &errors);
    if (rc == ERR_OK)
        autolead_apply(sf, c->o.fanout_lead_us);
    if (rc != ERR_OK) {
        log_err("schedule %s is not valid (%s); refusing to start", c->o.schedule, err_str(rc));
        run_log_errors(errors);
        free(errors);
        return rc == ERR_NOMEM ? 1 : 2;
    }
    int64_t t1 = clock_mono_ns();
    rc = prodstate_lock(c->o.state_dir, &c->lock_fd);
    if (rc != ERR_OK) {
        log_err("state directory %s: %s", c->o.state_dir,
                rc == ERR_EXISTS ? "in use by another producer" : "cannot be created or locked");
        schedfile_free(sf);
        return 2;
    }
    prodstate st;
    prodstate_load(c->o.state_dir, &st);
    rc = fireplan_init(&c->plan, sf, &st, run_now_ms(), c->o.misfire_grace_ms);
    prodstate_fini(&st);
    if (rc != ERR_OK) {
        log_err("planning %s: %s", c->o.schedule, err_str(rc));
        return 1;
    }
    log_notice("loaded %s: %zu jobs in %.1f ms (planned in %.1f ms)", c->o.schedule, c->plan.n,
               (double)(t1 - t0) / 1e6, (double)(clock_mono_ns() - t1) / 1e6);
    return -1;
}

int producer_run(int argc, char **argv)
{
    run_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return 1;
    c->lock_fd = -1;
    int code = runopts_parse(&c->o, argc, argv);
    if (code >= 0) {
        free(c);
        return code;
    }
    log_init((log_level)c->o.log_level, (log_format)c->o.log_format, "producer");
    redact_warn_argv(argc, argv, "amqp-url", "SALVO_AMQP_URL");
    if (signcfg_load(c->o.key_file, c->o.allow_unsigned, &c->ring) != ERR_OK) {
        free(c);
        return 2; /* logged: a missing or broken key is a configuration error */
    }
    c->batch.ring = c->ring;
    mq_global_init();
    /* Signals are taken over before the (possibly long) load, so an early SIGHUP is a reload
     * request, not the default "terminate". */
    if (waker_init(&c->w) != ERR_OK) {
        log_err("cannot set up signal and timer descriptors");
        code = 1;
    } else {
        code = run_start(c);
    }
    if (code < 0 && pmetrics_new(c->o.metrics_addr, &c->pm) != ERR_OK)
        code = 2; /* an explicit --metrics-addr that cannot be served (logged) */
    if (code < 0) {
        pmetrics_schedules(c->pm, c->plan.n);
        lease_init(&c->ls, c->o.ha_group, RUN_LEASE_RETRY_NS);
        c->ls.renew_ns = c->o.lease_renew_ms * CLOCK_NS_PER_MS;
        pmetrics_active(c->pm, !c->ls.enabled, false);
        watermark_init(&c->wm, c->o.ha_group, c->o.conn_name);
        c->o.pub.fenced = c->ls.enabled;
        if (c->ls.enabled)
            log_notice("high availability: group %s, lease %s, heartbeat %lld s", c->ls.group,
                       c->ls.queue, (long long)c->o.heartbeat_s);
        publish_init(&c->pub, &c->o.pub, &c->w);
        c->pub.pm = c->pm;
        publish_try(&c->pub); /* connected before the first batch is built, when the broker is up */
        code = run_loop(c);
        run_save_state(c);
        run_mark(c, true);
        publish_fini(&c->pub);
        pmetrics_free(c->pm);
        log_notice("stopped (exit %d)", code);
    }
    waker_fini(&c->w);
    fireplan_fini(&c->plan);
    fireplan_batch_fini(&c->due);
    firebatch_fini(&c->batch);
    sign_ring_free(c->ring);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    free(c);
    return code;
}
