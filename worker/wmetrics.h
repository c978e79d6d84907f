/* wmetrics: the worker's Prometheus series, registered once at start. Executors observe start
 * lateness and duration; the I/O thread counts outcomes, deliveries and reconnects and sets the
 * gauges. Every update is a lock-free atomic (metrics.h); a NULL wmetrics (metrics off) makes
 * every call a no-op, so the job path never tests a flag. */
#ifndef SALVO_WMETRICS_H
#define SALVO_WMETRICS_H

#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct wmetrics {
    metrics *reg;
    metrics_family *jobs; /* salvo_worker_jobs_total{outcome} */
    metrics_series *ok, *retry, *dead, *missed, *duplicate, *stale;
    metrics_series *deliveries, *reconnects;
    metrics_family *rejected; /* salvo_worker_rejected_total{reason} */
    metrics_series *bad_signature, *bad_publisher;
    metrics_series *lateness, *duration; /* histograms, seconds */
    metrics_series *inflight, *running, *connected;
} wmetrics;

/* Register every family in a new registry. ERR_OK or ERR_NOMEM. The caller owns *out
 * (wmetrics_free). Call before threads start. */
int wmetrics_new(wmetrics **out);
void wmetrics_free(wmetrics *w);

/* A settled attempt, by its label (ok, retry, dead, missed, duplicate) or stale. */
void wmetrics_outcome(wmetrics *w, const char *label);
/* A request handed over at started_ns for a job due at due_ms; a first attempt's lateness is
 * observed (a retry's is its backoff). */
/* A delivery refused by the trust gate before decoding: "bad-signature" or "bad-publisher".
 * Thread-safe (executors call it). */
void wmetrics_rejected(wmetrics *w, const char *reason);
void wmetrics_started(wmetrics *w, uint32_t attempt, int64_t due_ms, int64_t started_ns);
void wmetrics_finished(wmetrics *w, int64_t started_ns, int64_t finished_ns);

#endif
