/* wmetrics: registration of the worker's series and the few helpers that update them. */
#include "wmetrics.h"

#include "clock.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

int wmetrics_new(wmetrics **out)
{
    wmetrics *w = calloc(1, sizeof *w);
    metrics *m = w ? metrics_new() : NULL;
    if (!m) {
        free(w);
        return ERR_NOMEM;
    }
    w->reg = m;
    w->jobs = metrics_counter(m, "salvo_worker_jobs_total",
                              "Attempts settled, by outcome (stale: left for redelivery)",
                              "outcome", NULL);
    static const char *const names[] = {"ok", "retry", "dead", "missed", "duplicate", "stale"};
    metrics_series **slots[] = {&w->ok, &w->retry, &w->dead, &w->missed, &w->duplicate, &w->stale};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        *slots[i] = metrics_with(w->jobs, names[i], NULL);
    w->deliveries = metrics_with(
        metrics_counter(m, "salvo_worker_deliveries_total", "Messages received", NULL, NULL), NULL,
        NULL);
    w->rejected = metrics_counter(m, "salvo_worker_rejected_total",
                                  "Messages dead-lettered unread: bad signature or publisher",
                                  "reason", NULL);
    w->bad_signature = metrics_with(w->rejected, "bad-signature", NULL);
    w->bad_publisher = metrics_with(w->rejected, "bad-publisher", NULL);
    w->reconnects = metrics_with(
        metrics_counter(m, "salvo_worker_reconnects_total", "Broker connections lost", NULL, NULL),
        NULL, NULL);
    w->lateness = metrics_with(
        metrics_histogram(m, "salvo_worker_start_lateness_seconds",
                          "Request handed to libcurl minus the due instant (first attempts)",
                          metrics_lateness_buckets, METRICS_LATENESS_NBUCKETS, NULL, NULL),
        NULL, NULL);
    w->duration = metrics_with(metrics_histogram(m, "salvo_worker_job_duration_seconds",
                                                 "From start to outcome", metrics_duration_buckets,
                                                 METRICS_DURATION_NBUCKETS, NULL, NULL),
                               NULL, NULL);
    w->inflight = metrics_with(metrics_gauge(m, "salvo_worker_inflight",
                                             "Deliveries taken and not yet settled", NULL, NULL),
                               NULL, NULL);
    w->running = metrics_with(
        metrics_gauge(m, "salvo_worker_running", "Transfers and commands running", NULL, NULL),
        NULL, NULL);
    w->connected = metrics_with(
        metrics_gauge(m, "salvo_worker_connected", "1 while consuming from the broker", NULL, NULL),
        NULL, NULL);
    *out = w;
    return ERR_OK;
}

void wmetrics_free(wmetrics *w)
{
    if (!w)
        return;
    metrics_free(w->reg);
    free(w);
}

void wmetrics_outcome(wmetrics *w, const char *label)
{
    if (!w)
        return;
    metrics_series *s = strcmp(label, "ok") == 0          ? w->ok
                        : strcmp(label, "retry") == 0     ? w->retry
                        : strcmp(label, "missed") == 0    ? w->missed
                        : strcmp(label, "duplicate") == 0 ? w->duplicate
                        : strcmp(label, "stale") == 0     ? w->stale
                                                          : w->dead;
    metrics_inc(s);
}

void wmetrics_rejected(wmetrics *w, const char *reason)
{
    if (w)
        metrics_inc(strcmp(reason, "bad-publisher") == 0 ? w->bad_publisher : w->bad_signature);
}

void wmetrics_started(wmetrics *w, uint32_t attempt, int64_t due_ms, int64_t started_ns)
{
    if (!w || attempt > 1)
        return;
    double late = (double)(started_ns - due_ms * CLOCK_NS_PER_MS) / 1e9;
    metrics_observe(w->lateness, late < 0 ? 0 : late);
}

void wmetrics_finished(wmetrics *w, int64_t started_ns, int64_t finished_ns)
{
    if (w && started_ns)
        metrics_observe(w->duration, (double)(finished_ns - started_ns) / 1e9);
}
