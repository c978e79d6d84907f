/* metrics: a small thread-safe Prometheus registry (counters, gauges, histograms with up to two
 * labels) and its text exposition, format 0.0.4.
 *
 * Design: families are registered once at start-up; each distinct set of label values is a
 * series with a stable address. Looking a series up takes a read lock (a write lock only the
 * first time a label set is seen); updating one is a C11 atomic, never a mutex, so worker threads
 * can count every job without contending. Callers on hot paths keep the series pointer.
 * Naming: salvo_ prefix, counters end in _total (enforced), durations are _seconds. */
#ifndef SALVO_METRICS_H
#define SALVO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_LABELS_MAX  2
#define METRICS_BUCKETS_MAX 24  /* finite bucket bounds per histogram; +Inf is implicit */
#define METRICS_SERIES_MAX  512 /* per family: label sets past this fold into "_other" */
#define METRICS_OVERFLOW    "_other"

/* Start lateness: 1 ms (what a healthy fleet achieves) to 60 s (clearly broken). */
#define METRICS_LATENESS_NBUCKETS 15
extern const double metrics_lateness_buckets[METRICS_LATENESS_NBUCKETS];
/* Job duration: 5 ms to 15 min (JOB_TIMEOUT_MAX_MS). */
#define METRICS_DURATION_NBUCKETS 16
extern const double metrics_duration_buckets[METRICS_DURATION_NBUCKETS];

typedef struct metrics metrics;
typedef struct metrics_family metrics_family;
typedef struct metrics_series metrics_series;

/* A new empty registry; NULL when out of memory. Free with metrics_free (NULL-safe); no series
 * pointer may be used afterwards. */
metrics *metrics_new(void);
void metrics_free(metrics *m);

/* Register a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and, for a counter, end in
 * "_total"; help is text (escaped on output); label1/label2 are label names
 * ([a-zA-Z_][a-zA-Z0-9_]*, not
 * "__*", not "le" for histograms) or NULL for fewer labels. Histogram bounds are strictly
 * increasing finite seconds (1..METRICS_BUCKETS_MAX of them, copied). A family without labels
 * gets its single series at once, so it renders as 0 before the first update. Returns a family
 * owned by m, or NULL on a bad argument, a duplicate name or no memory (and logs why).
 * Thread-safe, but meant for start-up. */
metrics_family *metrics_counter(metrics *m, const char *name, const char *help, const char *label1,
                                const char *label2);
metrics_family *metrics_gauge(metrics *m, const char *name, const char *help, const char *label1,
                              const char *label2);
metrics_family *metrics_histogram(metrics *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds, const char *label1,
                                  const char *label2);

/* The series for these label values (NULL values count as ""; extra values are ignored),
 * created at zero on first use. Past METRICS_SERIES_MAX label sets every new set maps to the one
 * whose values are all METRICS_OVERFLOW, so a flood of unexpected labels cannot eat memory.
 * Returns a pointer valid for the registry's life; NULL only when f is NULL or memory ran out.
 * Thread-safe (read lock; write lock on creation). */
metrics_series *metrics_with(metrics_family *f, const char *v1, const char *v2);

/* Updates: lock-free and thread-safe. Each is a no-op on NULL or on the wrong family type.
 * Counters only go up; gauges are set or moved; histograms observe a value in seconds. */
void metrics_inc(metrics_series *s);
void metrics_add(metrics_series *s, uint64_t n);
void metrics_set(metrics_series *s, double v);
void metrics_gauge_add(metrics_series *s, double delta);
void metrics_observe(metrics_series *s, double seconds);

/* Current value: a counter's count, a gauge's value, a histogram's observation count; and a
 * histogram's sum. 0 for NULL. Thread-safe. */
double metrics_read(const metrics_series *s);
double metrics_read_sum(const metrics_series *s);

/* Render every family in registration order, series in creation order, as Prometheus text
 * format 0.0.4 (HELP, TYPE, samples; histograms as cumulative _bucket{le=...}, _sum, _count;
 * label values escaped). *out is malloc'd and NUL-terminated, the caller frees it.
 * ERR_OK or ERR_NOMEM. Thread-safe: concurrent updates may land on either side of the cut, but
 * a histogram's +Inf bucket always equals its _count. */
int metrics_render(metrics *m, char **out, size_t *out_len);

#endif
