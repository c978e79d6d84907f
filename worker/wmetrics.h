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
    metrics_series *ok, *retry, *dead, *missed, *duplicate, *stale, *invalid, *badsig;
    metrics_family *dead_letters; /* salvo_worker_dead_letters_total{reason} */
    metrics_family *retries;      /* salvo_worker_retries_total{level} */
    metrics_series *deliveries, *reconnects, *started;
    metrics_series *followup_nacks; /* follow-up publishes the broker nacked (resend.h) */
    metrics_series *channel_swaps;  /* publish channels replaced after nacks (acker.c) */
    metrics_series *clock_skew, *clock_skew_events;
    metrics_family *rejected; /* salvo_worker_rejected_total{reason} */
    metrics_series *bad_signature, *bad_publisher;
    metrics_series *lateness, *duration; /* histograms, seconds */
    metrics_series *inflight, *running, *connected;
    metrics_family *brokers; /* salvo_worker_broker_connected{broker}: which node we are on */
} wmetrics;

/* Register every family in a new registry. ERR_OK or ERR_NOMEM. The caller owns *out
 * (wmetrics_free). Call before threads start. */
int wmetrics_new(wmetrics **out);
void wmetrics_free(wmetrics *w);

/* A settled attempt, by its label (ok, retry, dead, missed, duplicate) or stale. */
void wmetrics_outcome(wmetrics *w, const char *label);
/* A delivery refused by the trust gate before decoding: "bad-signature" or "bad-publisher".
 * Thread-safe (executors call it). */
void wmetrics_rejected(wmetrics *w, const char *reason);
/* An attempt settled on the broker (acked, its follow-up confirmed): counted by outcome, where a
 * dead letter whose reason says the message was never a valid job (too-large, malformed,
 * bad-version, bad-schema) is "invalid" and one whose reason starts with "bad-signature" is
 * "bad-signature"; a label outside the known ones gets its own series. Dead letters and misses
 * also count by reason (its first word: "http-404", "malformed", "late"), retries by level; a
 * "clock-skew" dead letter (due too far ahead) is also a skew event. */
void wmetrics_settled(wmetrics *w, const char *label, const char *reason, int retry_level);
/* A delivery received at recv_ns (realtime) whose AMQP timestamp (publish time, whole seconds;
 * 0 = none) was timestamp_s: sets the skew gauge, counts a timestamp more than
 * WMETRICS_SKEW_S ahead of this worker's clock as a skew event. */
#define WMETRICS_SKEW_S 2
void wmetrics_delivered(wmetrics *w, int64_t timestamp_s, int64_t recv_ns);
/* A request handed over at started_ns for a job due at due_ms: every attempt counts as
 * started; a first attempt's lateness is observed (a retry's is its backoff). */
void wmetrics_started(wmetrics *w, uint32_t attempt, int64_t due_ms, int64_t started_ns);
void wmetrics_finished(wmetrics *w, int64_t started_ns, int64_t finished_ns);
/* The broker endpoint (mq_endpoint: no password) the I/O thread is consuming from (up) or
 * just lost (!up): its series goes to 1 or 0, so a scrape says which node of a cluster the
 * worker is on. I/O thread only. */
void wmetrics_broker(wmetrics *w, const char *endpoint, bool up);

#endif
