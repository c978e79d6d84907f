/* pmetrics: registration of the producer's series, its health check and the update helpers. */
#include "pmetrics.h"

#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>

static metrics_series *pmetrics_counter(metrics *m, const char *name, const char *help)
{
    return metrics_with(metrics_counter(m, name, help, NULL, NULL), NULL, NULL);
}

static metrics_series *pmetrics_gauge(metrics *m, const char *name, const char *help)
{
    return metrics_with(metrics_gauge(m, name, help, NULL, NULL), NULL, NULL);
}

static metrics_series *pmetrics_hist(metrics *m, const char *name, const char *help)
{
    return metrics_with(metrics_histogram(m, name, help, metrics_lateness_buckets,
                                          METRICS_LATENESS_NBUCKETS, NULL, NULL),
                        NULL, NULL);
}

static void pmetrics_register(pmetrics *pm)
{
    metrics *m = pm->reg;
    pm->published = metrics_counter(m, "salvo_producer_jobs_published_total",
                                    "Jobs of finished batches, by schedule", "schedule", NULL);
    pm->confirmed = metrics_counter(m, "salvo_producer_jobs_confirmed_total",
                                    "Jobs confirmed by the broker, by schedule", "schedule", NULL);
    pm->publishes = pmetrics_counter(m, "salvo_producer_publishes_total",
                                     "basic.publish calls, republications included");
    pm->batches = pmetrics_counter(m, "salvo_producer_batches_total", "Batches published");
    pm->build_errors = pmetrics_counter(m, "salvo_producer_build_errors_total",
                                        "Jobs left out of a batch because they could not be built");
    pm->lateness_s = pmetrics_hist(m, "salvo_producer_publish_lateness_seconds",
                                   "Per batch: first publish of the pass that got it through "
                                   "minus its instant");
    pm->confirm_s = pmetrics_hist(m, "salvo_producer_publish_confirm_seconds",
                                  "Per batch: that pass's first publish to its last confirm");
    pm->reconnects = pmetrics_counter(m, "salvo_producer_reconnects_total",
                                      "Broker connections made after the first");
    pm->connected = pmetrics_gauge(m, "salvo_producer_connected",
                                   "1 while connected to the broker with the topology declared");
    pm->blocked = pmetrics_gauge(m, "salvo_producer_blocked",
                                 "1 while the broker blocks publishing (resource alarm)");
    pm->active = pmetrics_gauge(m, "salvo_producer_active",
                                "1 while this producer publishes: always without --ha-group; in a "
                                "group, while it holds the lease");
    pm->leases = pmetrics_counter(m, "salvo_producer_lease_acquired_total",
                                  "Times this producer took its group's lease (became active)");
    pm->clock_steps = pmetrics_counter(m, "salvo_producer_clock_steps_total",
                                       "Realtime clock steps seen (against the monotonic clock)");
    pm->clock_last_step = pmetrics_gauge(m, "salvo_producer_clock_last_step_seconds",
                                         "Size of the last clock step seen (negative: back)");
    pm->schedules = pmetrics_gauge(m, "salvo_producer_schedules", "Schedule entries loaded");
    metrics_family *rl = metrics_counter(m, "salvo_producer_reloads_total",
                                         "Schedule reloads (SIGHUP), by result", "result", NULL);
    pm->reload_ok = metrics_with(rl, "ok", NULL);
    pm->reload_failed = metrics_with(rl, "failed", NULL);
    pm->next_fire = pmetrics_gauge(m, "salvo_producer_next_fire_timestamp_seconds",
                                   "Instant of the next batch, Unix seconds (0: none)");
}

/* GET /healthz: healthy while connected with the topology declared (the gauge the publisher
 * sets from the main thread). */
static bool pmetrics_health(void *arg, char *reason, size_t cap)
{
    const pmetrics *pm = arg;
    if (metrics_read(pm->connected) > 0.5)
        return true;
    snprintf(reason, cap, "broker connection down");
    return false;
}

int pmetrics_new(const char *addr, pmetrics **out)
{
    *out = NULL;
    if (httpd_addr_off(addr))
        return ERR_OK;
    pmetrics *pm = calloc(1, sizeof *pm);
    if (!pm || !(pm->reg = metrics_new())) {
        free(pm);
        return ERR_NOMEM;
    }
    pmetrics_register(pm);
    httpd_opts o = {addr, HTTPD_PORT_PRODUCER, pm->reg, pmetrics_health, pm};
    int rc = httpd_serve(&o, &pm->http);
    if (rc != ERR_OK) {
        pmetrics_free(pm);
        return rc;
    }
    *out = pm;
    return ERR_OK;
}

void pmetrics_free(pmetrics *pm)
{
    if (!pm)
        return;
    httpd_stop(pm->http); /* first: the server thread reads the registry */
    metrics_free(pm->reg);
    free(pm);
}

void pmetrics_connected(pmetrics *pm, bool reconnect)
{
    if (!pm)
        return;
    if (reconnect)
        metrics_inc(pm->reconnects);
    metrics_set(pm->blocked, 0); /* a new connection starts unblocked */
    metrics_set(pm->connected, 1);
}

void pmetrics_lost(pmetrics *pm)
{
    if (pm)
        metrics_set(pm->connected, 0);
}

void pmetrics_active(pmetrics *pm, bool active, bool took)
{
    if (!pm)
        return;
    if (took)
        metrics_inc(pm->leases);
    metrics_set(pm->active, active ? 1 : 0);
}

void pmetrics_blocked(pmetrics *pm, bool blocked)
{
    if (pm)
        metrics_set(pm->blocked, blocked ? 1 : 0);
}

void pmetrics_batch(pmetrics *pm, const firebatch *b, int64_t pass_real_ns, int64_t confirm_ns,
                    unsigned publishes)
{
    if (!pm || b->nf == 0)
        return;
    for (size_t i = 0; i < b->nf; i++) {
        const firebatch_firing *f = &b->f[i];
        metrics_add(metrics_with(pm->published, f->schedule, NULL), f->count);
        metrics_add(metrics_with(pm->confirmed, f->schedule, NULL), f->count - f->unconfirmed);
    }
    metrics_inc(pm->batches);
    metrics_add(pm->publishes, publishes);
    metrics_add(pm->build_errors, b->skipped);
    double late = (double)(pass_real_ns - b->key_ms * CLOCK_NS_PER_MS) / 1e9;
    metrics_observe(pm->lateness_s, late < 0 ? 0 : late);
    if (confirm_ns > 0)
        metrics_observe(pm->confirm_s, (double)confirm_ns / 1e9);
}

void pmetrics_clock_step(pmetrics *pm, int64_t step_ms)
{
    if (!pm || step_ms == 0)
        return;
    metrics_inc(pm->clock_steps);
    metrics_set(pm->clock_last_step, (double)step_ms / 1e3);
}

void pmetrics_schedules(pmetrics *pm, size_t n)
{
    if (pm)
        metrics_set(pm->schedules, (double)n);
}

void pmetrics_reload(pmetrics *pm, bool ok)
{
    if (pm)
        metrics_inc(ok ? pm->reload_ok : pm->reload_failed);
}

void pmetrics_next_fire(pmetrics *pm, int64_t key_ms)
{
    if (pm)
        metrics_set(pm->next_fire, (double)key_ms / 1e3);
}
