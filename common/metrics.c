/* metrics: registry, lock-free updates and the Prometheus text renderer. */
#include "metrics.h"

#include "err.h"
#include "log.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with at most half the slots used keeps probes short. */
#define METRICS_SLOTS (2 * METRICS_SERIES_MAX)

const double metrics_lateness_buckets[METRICS_LATENESS_NBUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
const double metrics_duration_buckets[METRICS_DURATION_NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900};

typedef enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
} metrics_type;

static const char *const metrics_type_names[] = {"counter", "gauge", "histogram"};

struct metrics_series {
    const metrics_family *fam;
    char *values[METRICS_LABELS_MAX];
    _Atomic uint64_t value;    /* counter count, or a gauge's double bits */
    _Atomic uint64_t sum;      /* histogram: double bits */
    _Atomic uint64_t bucket[]; /* histogram: nbounds + 1 per-bucket (not cumulative) counts */
};

struct metrics_family {
    metrics_type type;
    char *name, *help;
    int nlabels;
    char *labels[METRICS_LABELS_MAX];
    double bounds[METRICS_BUCKETS_MAX];
    size_t nbounds;
    pthread_rwlock_t lock;                      /* guards n, series[] and slots[] */
    metrics_series *series[METRICS_SERIES_MAX]; /* creation order; never moved */
    size_t n;
    uint16_t slots[METRICS_SLOTS]; /* index + 1 into series[], 0 = empty */
    metrics_family *next;
};

struct metrics {
    pthread_mutex_t lock; /* guards the family list */
    metrics_family *head, *tail;
};

static uint64_t metrics_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double metrics_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ---- registration -------------------------------------------------------------------------- */

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void metrics_series_free(metrics_series *s)
{
    if (!s)
        return;
    for (int i = 0; i < METRICS_LABELS_MAX; i++)
        free(s->values[i]);
    free(s);
}

static void metrics_family_free(metrics_family *f)
{
    for (size_t i = 0; i < f->n; i++)
        metrics_series_free(f->series[i]);
    for (int i = 0; i < METRICS_LABELS_MAX; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    pthread_rwlock_destroy(&f->lock);
    free(f);
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    metrics_family *next;
    for (metrics_family *f = m->head; f; f = next) {
        next = f->next;
        metrics_family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool metrics_name_ok(const char *s, bool colon)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

static bool metrics_label_ok(const char *l, metrics_type type)
{
    return metrics_name_ok(l, false) && strncmp(l, "__", 2) != 0 &&
           !(type == METRICS_HISTOGRAM && strcmp(l, "le") == 0);
}

/* Why a registration is refused, or NULL when it is fine. */
static const char *metrics_check(metrics_type type, const char *name, const char *help,
                                 const char *const *labels, const double *bounds, size_t nb)
{
    size_t len = name ? strlen(name) : 0;
    if (!metrics_name_ok(name, true) || !help)
        return "bad name or help";
    if (type == METRICS_COUNTER && (len < 6 || strcmp(name + len - 6, "_total") != 0))
        return "a counter's name must end in _total";
    for (int i = 0; i < METRICS_LABELS_MAX && labels[i]; i++) {
        if (!metrics_label_ok(labels[i], type))
            return "bad label name";
    }
    if (labels[0] && labels[1] && strcmp(labels[0], labels[1]) == 0)
        return "duplicate label name";
    if (type == METRICS_HISTOGRAM && (nb == 0 || nb > METRICS_BUCKETS_MAX))
        return "bad bucket count";
    for (size_t i = 0; i < nb; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return "bucket bounds must be finite and increasing";
    }
    return NULL;
}

static metrics_family *metrics_family_new(metrics_type type, const char *name, const char *help,
                                          const char *const *labels, const double *bounds,
                                          size_t nb)
{
    metrics_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (pthread_rwlock_init(&f->lock, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    bool ok = f->name && f->help;
    for (int i = 0; i < METRICS_LABELS_MAX && labels[i]; i++) {
        f->labels[i] = strdup(labels[i]);
        ok = ok && f->labels[i];
        f->nlabels = i + 1;
    }
    if (nb)
        memcpy(f->bounds, bounds, nb * sizeof *bounds);
    f->nbounds = nb;
    if (!ok || (f->nlabels == 0 && !metrics_with(f, NULL, NULL))) {
        metrics_family_free(f);
        return NULL;
    }
    return f;
}

static metrics_family *metrics_register(metrics *m, metrics_type type, const char *name,
                                        const char *help, const char *l1, const char *l2,
                                        const double *bounds, size_t nb)
{
    const char *labels[METRICS_LABELS_MAX] = {l1, l1 ? l2 : NULL};
    const char *why = metrics_check(type, name, help, labels, bounds, nb);
    metrics_family *f = NULL;
    pthread_mutex_lock(&m->lock);
    for (metrics_family *g = m->head; g && !why; g = g->next) {
        if (strcmp(g->name, name) == 0)
            why = "duplicate name";
    }
    if (!why) {
        f = metrics_family_new(type, name, help, labels, bounds, nb);
        why = f ? NULL : "out of memory";
    }
    if (f && m->tail)
        m->tail->next = f;
    else if (f)
        m->head = f;
    m->tail = f ? f : m->tail;
    pthread_mutex_unlock(&m->lock);
    if (why)
        log_err("metrics: cannot register %s: %s", name ? name : "(null)", why);
    return f;
}

metrics_family *metrics_counter(metrics *m, const char *name, const char *help, const char *label1,
                                const char *label2)
{
    return metrics_register(m, METRICS_COUNTER, name, help, label1, label2, NULL, 0);
}

metrics_family *metrics_gauge(metrics *m, const char *name, const char *help, const char *label1,
                              const char *label2)
{
    return metrics_register(m, METRICS_GAUGE, name, help, label1, label2, NULL, 0);
}

metrics_family *metrics_histogram(metrics *m, const char *name, const char *help,
                                  const double *bounds, size_t nbounds, const char *label1,
                                  const char *label2)
{
    return metrics_register(m, METRICS_HISTOGRAM, name, help, label1, label2, bounds, nbounds);
}

/* ---- series lookup ------------------------------------------------------------------------- */

static uint32_t metrics_hash(const char *const *v, int n)
{
    uint32_t h = 2166136261u; /* FNV-1a; the separator keeps ("ab","") apart from ("a","b") */
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0xffu) * 16777619u;
    }
    return h;
}

/* The slot holding these values, or the empty slot where they belong. Caller holds the lock. */
static size_t metrics_slot(const metrics_family *f, const char *const *v)
{
    size_t i = metrics_hash(v, f->nlabels) % METRICS_SLOTS;
    for (;; i = (i + 1) % METRICS_SLOTS) {
        if (f->slots[i] == 0)
            return i;
        const metrics_series *s = f->series[f->slots[i] - 1];
        bool same = true;
        for (int k = 0; k < f->nlabels && same; k++)
            same = strcmp(s->values[k], v[k]) == 0;
        if (same)
            return i;
    }
}

static metrics_series *metrics_series_new(metrics_family *f, const char *const *v)
{
    size_t nb = f->type == METRICS_HISTOGRAM ? f->nbounds + 1 : 0;
    metrics_series *s = calloc(1, sizeof *s + nb * sizeof s->bucket[0]);
    if (!s)
        return NULL;
    s->fam = f;
    for (int k = 0; k < f->nlabels; k++) {
        s->values[k] = strdup(v[k]);
        if (!s->values[k]) {
            metrics_series_free(s);
            return NULL;
        }
    }
    return s;
}

/* Find or create under the write lock; the last slot is kept for the overflow series. */
static metrics_series *metrics_create(metrics_family *f, const char **v)
{
    static const char *const overflow[METRICS_LABELS_MAX] = {METRICS_OVERFLOW, METRICS_OVERFLOW};
    metrics_series *s = NULL;
    pthread_rwlock_wrlock(&f->lock);
    size_t slot = metrics_slot(f, v);
    if (f->slots[slot] == 0 && f->n >= METRICS_SERIES_MAX - 1) {
        v = (const char **)overflow;
        slot = metrics_slot(f, v);
    }
    if (f->slots[slot]) {
        s = f->series[f->slots[slot] - 1];
    } else {
        s = metrics_series_new(f, v);
        if (s) {
            f->series[f->n++] = s;
            f->slots[slot] = (uint16_t)f->n;
        }
    }
    pthread_rwlock_unlock(&f->lock);
    return s;
}

metrics_series *metrics_with(metrics_family *f, const char *v1, const char *v2)
{
    if (!f)
        return NULL;
    const char *v[METRICS_LABELS_MAX] = {v1 ? v1 : "", v2 ? v2 : ""};
    pthread_rwlock_rdlock(&f->lock);
    size_t slot = metrics_slot(f, v);
    metrics_series *s = f->slots[slot] ? f->series[f->slots[slot] - 1] : NULL;
    pthread_rwlock_unlock(&f->lock);
    return s ? s : metrics_create(f, v);
}

/* ---- updates ------------------------------------------------------------------------------- */

static bool metrics_is(const metrics_series *s, metrics_type t)
{
    return s && s->fam->type == t;
}

void metrics_inc(metrics_series *s)
{
    metrics_add(s, 1);
}

void metrics_add(metrics_series *s, uint64_t n)
{
    if (metrics_is(s, METRICS_COUNTER))
        atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void metrics_set(metrics_series *s, double v)
{
    if (metrics_is(s, METRICS_GAUGE))
        atomic_store_explicit(&s->value, metrics_bits(v), memory_order_relaxed);
}

/* Add to a double kept as bits: compare-and-swap until no other thread got in between. */
static void metrics_add_double(_Atomic uint64_t *cell, double delta)
{
    uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(cell, &old,
                                                  metrics_bits(metrics_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void metrics_gauge_add(metrics_series *s, double delta)
{
    if (metrics_is(s, METRICS_GAUGE))
        metrics_add_double(&s->value, delta);
}

void metrics_observe(metrics_series *s, double seconds)
{
    if (!metrics_is(s, METRICS_HISTOGRAM))
        return;
    const metrics_family *f = s->fam;
    size_t i = 0;
    while (i < f->nbounds && !(seconds <= f->bounds[i])) /* NaN falls through to +Inf */
        i++;
    atomic_fetch_add_explicit(&s->bucket[i], 1, memory_order_relaxed);
    metrics_add_double(&s->sum, seconds);
}

double metrics_read(const metrics_series *s)
{
    if (!s)
        return 0;
    if (s->fam->type == METRICS_HISTOGRAM) {
        uint64_t n = 0;
        for (size_t i = 0; i <= s->fam->nbounds; i++)
            n += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
        return (double)n;
    }
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    return s->fam->type == METRICS_COUNTER ? (double)v : metrics_double(v);
}

double metrics_read_sum(const metrics_series *s)
{
    if (!metrics_is(s, METRICS_HISTOGRAM))
        return 0;
    return metrics_double(atomic_load_explicit(&s->sum, memory_order_relaxed));
}

/* ---- rendering ----------------------------------------------------------------------------- */

typedef struct metrics_buf {
    char *p;
    size_t len, cap;
    bool oom;
} metrics_buf;

static void metrics_put(metrics_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void metrics_puts(metrics_buf *b, const char *s)
{
    metrics_put(b, s, strlen(s));
}

/* Text format escapes: backslash and newline everywhere, double quotes inside label values. */
static void metrics_put_escaped(metrics_buf *b, const char *s, bool label_value)
{
    for (const char *run = s;; s++) {
        const char *esc = *s == '\\'                 ? "\\\\"
                          : *s == '\n'               ? "\\n"
                          : *s == '"' && label_value ? "\\\""
                                                     : NULL;
        if (!esc && *s)
            continue;
        metrics_put(b, run, (size_t)(s - run));
        if (!*s)
            return;
        metrics_puts(b, esc);
        run = s + 1;
    }
}

/* The shortest text that reads back as the same double: fixed notation for exponents -4..16 so
 * bucket bounds read "10" and "0.0025" as Prometheus' own clients write them, else 1e-05. */
static const char *metrics_format_double(double d, char *tmp, size_t cap)
{
    if (isnan(d) || isinf(d))
        return isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf";
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(tmp, cap, "%.*e", digits - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, cap, "%.*e", digits - 1, d);
    int exp = atoi(strchr(tmp, 'e') + 1);
    if (exp >= -4 && exp <= 16)
        snprintf(tmp, cap, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, d);
    return tmp;
}

static void metrics_put_double(metrics_buf *b, double d)
{
    char tmp[40];
    metrics_puts(b, metrics_format_double(d, tmp, sizeof tmp));
}

/* "{a="x",le="0.5"} " or just " " when there is nothing to show. */
static void metrics_put_labels(metrics_buf *b, const metrics_series *s, const char *le)
{
    const metrics_family *f = s->fam;
    for (int k = 0; k < f->nlabels; k++) {
        metrics_puts(b, k == 0 ? "{" : ",");
        metrics_puts(b, f->labels[k]);
        metrics_puts(b, "=\"");
        metrics_put_escaped(b, s->values[k], true);
        metrics_puts(b, "\"");
    }
    if (le) {
        metrics_puts(b, f->nlabels ? ",le=\"" : "{le=\"");
        metrics_puts(b, le);
        metrics_puts(b, "\"");
    }
    metrics_puts(b, f->nlabels || le ? "} " : " ");
}

static void metrics_render_histogram(metrics_buf *b, const metrics_series *s)
{
    const metrics_family *f = s->fam;
    char num[32], le[40];
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += atomic_load_explicit(&s->bucket[i], memory_order_relaxed);
        metrics_puts(b, f->name);
        metrics_puts(b, "_bucket");
        metrics_put_labels(
            b, s, i < f->nbounds ? metrics_format_double(f->bounds[i], le, sizeof le) : "+Inf");
        snprintf(num, sizeof num, "%" PRIu64 "\n", cum);
        metrics_puts(b, num);
    }
    metrics_puts(b, f->name);
    metrics_puts(b, "_sum");
    metrics_put_labels(b, s, NULL);
    metrics_put_double(b, metrics_read_sum(s));
    metrics_puts(b, "\n");
    metrics_puts(b, f->name);
    metrics_puts(b, "_count");
    metrics_put_labels(b, s, NULL);
    snprintf(num, sizeof num, "%" PRIu64 "\n", cum); /* the same reads as +Inf: always equal */
    metrics_puts(b, num);
}

static void metrics_render_family(metrics_buf *b, metrics_family *f)
{
    metrics_puts(b, "# HELP ");
    metrics_puts(b, f->name);
    metrics_puts(b, " ");
    metrics_put_escaped(b, f->help, false);
    metrics_puts(b, "\n# TYPE ");
    metrics_puts(b, f->name);
    metrics_puts(b, " ");
    metrics_puts(b, metrics_type_names[f->type]);
    metrics_puts(b, "\n");
    pthread_rwlock_rdlock(&f->lock);
    for (size_t i = 0; i < f->n; i++) {
        const metrics_series *s = f->series[i];
        if (f->type == METRICS_HISTOGRAM) {
            metrics_render_histogram(b, s);
            continue;
        }
        char num[32];
        metrics_puts(b, f->name);
        metrics_put_labels(b, s, NULL);
        uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
        if (f->type == METRICS_COUNTER) /* exact beyond 2^53, unlike a double */
            snprintf(num, sizeof num, "%" PRIu64, v);
        metrics_puts(b, f->type == METRICS_COUNTER
                            ? num
                            : metrics_format_double(metrics_double(v), num, sizeof num));
        metrics_puts(b, "\n");
    }
    pthread_rwlock_unlock(&f->lock);
}

int metrics_render(metrics *m, char **out, size_t *out_len)
{
    metrics_buf b = {0};
    metrics_put(&b, "", 0); /* an empty registry still renders as "" */
    pthread_mutex_lock(&m->lock);
    for (metrics_family *f = m->head; f; f = f->next)
        metrics_render_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        *out = NULL;
        return ERR_NOMEM;
    }
    *out = b.p;
    if (out_len)
        *out_len = b.len;
    return ERR_OK;
}
