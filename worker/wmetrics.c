/* wmetrics: registration of the worker's series and the few helpers that update them. */
#include "wmetrics.h"

#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static metrics_series *wmetrics_one(metrics_family *f)
{
    return metrics_with(f, NULL, NULL);
}

/* Outcomes are pre-created so every one renders (as 0) before it first happens. */
static void wmetrics_outcomes(wmetrics *w, metrics *m)
{
    w->jobs = metrics_counter(m, "salvo_worker_jobs_total",
                              "Attempts settled, by outcome (stale: left for redelivery)",
                              "outcome", NULL);
    static const char *const names[] = {"ok",        "retry", "dead",    "missed",
                                        "duplicate", "stale", "invalid", "bad-signature"};
    metrics_series **slots[] = {&w->ok,        &w->retry, &w->dead,    &w->missed,
                                &w->duplicate, &w->stale, &w->invalid, &w->badsig};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        *slots[i] = metrics_with(w->jobs, names[i], NULL);
    w->dead_letters = metrics_counter(m, "salvo_worker_dead_letters_total",
                                      "Jobs published to salvo.dead (dead and missed), by reason",
                                      "reason", NULL);
    w->retries =
        metrics_counter(m, "salvo_worker_retries_total",
                        "Retries published, by retry level (r1 = first backoff)", "level", NULL);
}

static void wmetrics_timing(wmetrics *w, metrics *m)
{
    w->started = wmetrics_one(metrics_counter(m, "salvo_worker_jobs_started_total",
                                              "Attempts started (request handed to libcurl or "
                                              "process spawned)",
                                              NULL, NULL));
    w->lateness = wmetrics_one(
        metrics_histogram(m, "salvo_worker_start_lateness_seconds",
                          "Request handed to libcurl minus the due instant (first attempts)",
                          metrics_lateness_buckets, METRICS_LATENESS_NBUCKETS, NULL, NULL));
    w->duration = wmetrics_one(metrics_histogram(m, "salvo_worker_job_duration_seconds",
                                                 "From start to outcome", metrics_duration_buckets,
                                                 METRICS_DURATION_NBUCKETS, NULL, NULL));
    w->clock_skew = wmetrics_one(
        metrics_gauge(m, "salvo_worker_clock_skew_seconds",
                      "Last delivery's AMQP timestamp (publisher clock, whole seconds) minus "
                      "this worker's clock at receipt: about -1..0 when clocks agree",
                      NULL, NULL));
    w->clock_skew_events = wmetrics_one(
        metrics_counter(m, "salvo_worker_clock_skew_total",
                        "Deliveries stamped more than 2 s in this worker's future, and jobs "
                        "dead-lettered as clock-skew (due more than 5 s ahead)",
                        NULL, NULL));
}

int wmetrics_new(wmetrics **out)
{
    wmetrics *w = calloc(1, sizeof *w);
    metrics *m = w ? metrics_new() : NULL;
    if (!m) {
        free(w);
        return ERR_NOMEM;
    }
    w->reg = m;
    wmetrics_outcomes(w, m);
    wmetrics_timing(w, m);
    w->rejected = metrics_counter(m, "salvo_worker_rejected_total",
                                  "Messages dead-lettered unread: bad signature or publisher",
                                  "reason", NULL);
    w->bad_signature = metrics_with(w->rejected, "bad-signature", NULL);
    w->bad_publisher = metrics_with(w->rejected, "bad-publisher", NULL);
    w->deliveries = wmetrics_one(
        metrics_counter(m, "salvo_worker_deliveries_total", "Messages received", NULL, NULL));
    w->reconnects = wmetrics_one(
        metrics_counter(m, "salvo_worker_reconnects_total", "Broker connections lost", NULL, NULL));
    w->followup_nacks = wmetrics_one(
        metrics_counter(m, "salvo_worker_followup_nacks_total",
                        "Follow-up publishes (retry, dead letter, missed) the broker nacked; "
                        "each is published again after a backoff, its original kept unacked",
                        NULL, NULL));
    w->channel_swaps = wmetrics_one(
        metrics_counter(m, "salvo_worker_publish_channel_replaced_total",
                        "Publishing channels replaced after nacking a follow-up for a second "
                        "(the consuming channel and its unacked jobs stay)",
                        NULL, NULL));
    w->inflight = wmetrics_one(metrics_gauge(m, "salvo_worker_inflight",
                                             "Deliveries taken and not yet settled", NULL, NULL));
    w->running = wmetrics_one(
        metrics_gauge(m, "salvo_worker_running", "Transfers and commands running", NULL, NULL));
    w->connected =
        wmetrics_one(metrics_gauge(m, "salvo_worker_connected",
                                   "1 while connected and consuming from the broker", NULL, NULL));
    w->brokers =
        metrics_gauge(m, "salvo_worker_broker_connected",
                      "1 for the broker node consumed from, 0 for nodes left", "broker", NULL);
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

/* Reasons that mean the body was never a valid job (jobwire's rejection prefixes). */
static bool wmetrics_invalid(const char *reason)
{
    static const char *const prefixes[] = {"too-large", "malformed", "bad-version", "bad-schema"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp(reason, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* The reason's first word, so a label never carries a detail ("malformed: ..." -> "malformed")
 * and "late-1234ms" is "late": a bounded set of series. */
static void wmetrics_reason_key(const char *reason, char *out, size_t cap)
{
    if (strncmp(reason, "late-", 5) == 0) {
        snprintf(out, cap, "late");
        return;
    }
    size_t n = strcspn(reason, ": ");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), reason);
    if (!out[0])
        snprintf(out, cap, "unknown");
}

void wmetrics_settled(wmetrics *w, const char *label, const char *reason, int retry_level)
{
    if (!w)
        return;
    reason = reason ? reason : "";
    bool dead = strcmp(label, "dead") == 0, missed = strcmp(label, "missed") == 0;
    if (dead && wmetrics_invalid(reason))
        label = "invalid";
    else if (dead && strncmp(reason, "bad-signature", 13) == 0)
        label = "bad-signature";
    metrics_inc(metrics_with(w->jobs, label, NULL));
    if (dead || missed || strcmp(label, "bad-signature") == 0) {
        char key[48];
        wmetrics_reason_key(reason, key, sizeof key);
        metrics_inc(metrics_with(w->dead_letters, key, NULL));
        if (strcmp(key, "clock-skew") == 0)
            metrics_inc(w->clock_skew_events);
    } else if (strcmp(label, "retry") == 0) {
        char level[16];
        snprintf(level, sizeof level, "r%d", retry_level);
        metrics_inc(metrics_with(w->retries, level, NULL));
    }
}

void wmetrics_delivered(wmetrics *w, int64_t timestamp_s, int64_t recv_ns)
{
    if (!w)
        return;
    metrics_inc(w->deliveries);
    if (timestamp_s <= 0)
        return;
    double skew = (double)timestamp_s - (double)recv_ns / 1e9;
    metrics_set(w->clock_skew, skew);
    if (skew > WMETRICS_SKEW_S)
        metrics_inc(w->clock_skew_events);
}

void wmetrics_started(wmetrics *w, uint32_t attempt, int64_t due_ms, int64_t started_ns)
{
    if (!w)
        return;
    metrics_inc(w->started);
    if (attempt > 1)
        return;
    double late = (double)(started_ns - due_ms * CLOCK_NS_PER_MS) / 1e9;
    metrics_observe(w->lateness, late < 0 ? 0 : late);
}

void wmetrics_broker(wmetrics *w, const char *endpoint, bool up)
{
    if (w)
        metrics_set(metrics_with(w->brokers, endpoint, NULL), up ? 1 : 0);
}

void wmetrics_finished(wmetrics *w, int64_t started_ns, int64_t finished_ns)
{
    if (w && started_ns)
        metrics_observe(w->duration, (double)(finished_ns - started_ns) / 1e9);
}
