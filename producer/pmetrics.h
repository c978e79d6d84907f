/* pmetrics: the producer's Prometheus series and its /metrics + /healthz server. The main loop
 * and the publisher update the series at a few points per batch (never per message inside the
 * publish loop at T); the server thread only reads atomics. A NULL pmetrics (metrics off) makes
 * every call a no-op, so callers never test a flag. */
#ifndef SALVO_PMETRICS_H
#define SALVO_PMETRICS_H

#include "firebatch.h"
#include "httpd.h"
#include "metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pmetrics {
    metrics *reg;
    httpd *http;
    metrics_family *published; /* salvo_producer_jobs_published_total{schedule} */
    metrics_family *confirmed; /* salvo_producer_jobs_confirmed_total{schedule} */
    metrics_series *publishes, *batches, *build_errors;
    metrics_series *confirm_s, *lateness_s; /* histograms, seconds, one observation per batch */
    metrics_series *reconnects, *connected, *blocked;
    metrics_series *active, *leases; /* high availability (lease.h) */
    metrics_series *clock_steps, *clock_last_step;
    metrics_series *schedules, *reload_ok, *reload_failed, *next_fire;
} pmetrics;

/* Register the series and start the server named by addr (a --metrics-addr value, see
 * httpd_serve: NULL = 127.0.0.1:HTTPD_PORT_PRODUCER, "off"/"" = none). *out is NULL when
 * metrics are off. ERR_OK; ERR_NOMEM; or the error of an explicit address that cannot be
 * served (logged; a configuration error). The caller owns *out (pmetrics_free). Call from the
 * main thread before the loop starts. */
int pmetrics_new(const char *addr, pmetrics **out);
/* Stop the server and free the registry; NULL-safe. */
void pmetrics_free(pmetrics *pm);

/* Broker connection state, from the publisher: connected after the topology is declared
 * (reconnect counts every connection after the first), lost, blocked / unblocked. */
void pmetrics_connected(pmetrics *pm, bool reconnect);
void pmetrics_lost(pmetrics *pm);
void pmetrics_blocked(pmetrics *pm, bool blocked);

/* A batch is over: per schedule, jobs published (every job of the batch that was built) and
 * confirmed; the pass's lateness (pass start minus the batch instant) and publish-to-confirm
 * time; basic.publish calls, republications included. */
void pmetrics_batch(pmetrics *pm, const firebatch *b, int64_t pass_real_ns, int64_t confirm_ns,
                    unsigned publishes);

/* High availability: active is true while this producer is the one that publishes (always
 * without --ha-group); took counts a lease taken (a takeover, or the first start). */
void pmetrics_active(pmetrics *pm, bool active, bool took);

/* A realtime clock step seen by the loop (step_ms as fireplan_observe returns it; 0 = none). */
void pmetrics_clock_step(pmetrics *pm, int64_t step_ms);
/* Schedule entries loaded, after start or a reload (ok false: a failed reload). */
void pmetrics_schedules(pmetrics *pm, size_t n);
void pmetrics_reload(pmetrics *pm, bool ok);
/* The next batch's instant, ms since the epoch; 0 when nothing will fire. */
void pmetrics_next_fire(pmetrics *pm, int64_t key_ms);

#endif
