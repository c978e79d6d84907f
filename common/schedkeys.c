/* schedkeys: the keys of a schedule-file job, what each accepts, and where it lands. */
#include "schedkeys.h"

#include "clock.h"
#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SK_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
/* RFC 9110 token characters, for header names. */
#define SK_TOKEN_CHARS SK_NAME_CHARS "!#$%&'*+^`|~"

#define SCHED_FANOUT_MAX_TEXT "100000" /* SCHED_FANOUT_MAX, for messages */
#define SK_NKEYS(t)           (sizeof(t) / sizeof((t)[0]))

void schedkeys_http_fini(job_http *h)
{
    free(h->method);
    free(h->url);
    for (size_t i = 0; i < h->nheaders; i++) {
        free(h->headers[i].name);
        free(h->headers[i].value);
    }
    free(h->headers);
    free(h->body);
    free(h->ok_status);
    memset(h, 0, sizeof *h);
}

void schedkeys_entry_init(sched_entry *e)
{
    memset(e, 0, sizeof *e);
    jval_set_map(&e->context);
    e->http.timeout_ms = JOB_DEFAULT_TIMEOUT_MS;
    e->http.connect_timeout_ms = JOB_DEFAULT_CONNECT_TIMEOUT_MS;
    e->fan_count = 1;
    e->misfire = SCHED_MISFIRE_SKIP;
    e->misfire_max = SCHED_MISFIRE_ALL_MAX;
    e->max_attempts = JOB_DEFAULT_MAX_ATTEMPTS;
}

void schedkeys_entry_fini(sched_entry *e)
{
    free(e->name);
    free(e->tz_name);
    if (e->tz)
        tzone_free(e->tz);
    schedkeys_http_fini(&e->http);
    jval_fini(&e->context);
    for (size_t i = 0; e->fan_items && i < e->fan_count; i++)
        free(e->fan_items[i]);
    free(e->fan_items);
    memset(e, 0, sizeof *e);
}

/* Replace *slot with s (owned). */
static void sk_take(char **slot, char *s)
{
    free(*slot);
    *slot = s;
}

/* ---- schedule: name, cron / every / at, timezone ------------------------------------------ */

static void sk_name(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    size_t len = 0;
    (void)key;
    j->name_node = val; /* given, even if invalid: no second "has no name" message */
    char *s = schedval_text(c, val, "name", &len);
    if (!s)
        return;
    /* The name goes into firing ids ("name@instant#index") and metric labels. */
    if (len == 0 || len > JOB_NAME_MAX || strspn(s, SK_NAME_CHARS) != len) {
        schedval_error_at(c, val,
                          "name '%s': use 1-%d letters, digits, '.', '_' or '-' (no spaces)", s,
                          JOB_NAME_MAX);
        free(s);
        return;
    }
    sk_take(&j->e->name, s);
}

/* Claim the schedule kind for key; false (reported) when the job already has one. */
static bool sk_kind(schedval_ctx *c, schedkeys_job *j, const yaml_node_t *key)
{
    if (j->kind_key) {
        schedval_error_at(c, key, "give only one of cron, every or at ('%s' already at line %d)",
                          (const char *)j->kind_key->data.scalar.value,
                          (int)j->kind_key->start_mark.line + 1);
        return false;
    }
    j->kind_key = key;
    return true;
}

static void sk_cron(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    if (!sk_kind(c, j, key))
        return;
    char *s = schedval_text(c, val, "cron", NULL);
    char msg[256];
    if (!s)
        return;
    if (cronexpr_parse(&j->e->cron, s, msg, sizeof msg) != ERR_OK)
        schedval_error_at(c, val, "cron: bad expression '%s': %s", s, msg);
    j->e->kind = SCHED_CRON;
    free(s);
}

static void sk_every(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    int64_t ms = 0;
    if (!sk_kind(c, j, key) || !schedval_duration(c, val, "every", 1000, INT64_MAX, &ms))
        return;
    if (ms % 1000 != 0) {
        schedval_error_at(c, val, "every: must be a whole number of seconds");
        return;
    }
    memset(&j->e->cron, 0, sizeof j->e->cron);
    j->e->cron.every_s = ms / 1000;
    j->e->kind = SCHED_EVERY;
}

static void sk_at(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    int64_t ns = 0;
    if (!sk_kind(c, j, key))
        return;
    char *s = schedval_text(c, val, "at", NULL);
    if (!s)
        return;
    if (clock_parse_iso(s, &ns) != ERR_OK)
        schedval_error_at(c, val, "at: bad instant '%s' (expected e.g. 2026-12-01T11:30:00Z)", s);
    /* Floor, so a fractional instant fires in the second it falls in. */
    j->e->at_s =
        ns >= 0 ? ns / CLOCK_NS_PER_SEC : -((-ns + CLOCK_NS_PER_SEC - 1) / CLOCK_NS_PER_SEC);
    j->e->kind = SCHED_AT;
    free(s);
}

static void sk_timezone(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    tzone *tz = NULL;
    char msg[256];
    (void)key;
    char *s = schedval_text(c, val, "timezone", NULL);
    if (!s)
        return;
    int rc = tzone_load(s, &tz, msg, sizeof msg);
    if (rc == ERR_NOMEM)
        c->nomem = true;
    if (rc != ERR_OK) {
        /* tzone's message may already name the zone; keep only its reason. */
        const char *why = strstr(msg, "': ");
        schedval_error_at(c, val, "timezone: unknown time zone '%s' (%s)", s, why ? why + 3 : msg);
        free(s);
        return;
    }
    tzone_free(j->e->tz);
    j->e->tz = tz;
    sk_take(&j->e->tz_name, s);
}

/* ---- http ---------------------------------------------------------------------------------- */

static void sk_method(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    size_t len = 0;
    (void)key;
    char *s = schedval_text(c, val, "http.method", &len);
    if (!s)
        return;
    for (size_t i = 0; i < len; i++)
        s[i] = (char)toupper((unsigned char)s[i]);
    if (len == 0 || len > JOB_METHOD_MAX || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != len) {
        schedval_error_at(c, val, "http.method: '%s' is not an HTTP method", s);
        free(s);
        return;
    }
    sk_take(&j->e->http.method, s);
}

/* NULL when url is an absolute http(s) URL with a host; else why not. */
static const char *sk_url_problem(const char *url, size_t len)
{
    size_t skip = strncasecmp(url, "http://", 7) == 0    ? 7
                  : strncasecmp(url, "https://", 8) == 0 ? 8
                                                         : 0;
    if (skip == 0)
        return "the scheme must be http:// or https://";
    if (len > JOB_URL_MAX)
        return "longer than 8192 bytes";
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
            return "spaces and control characters must be percent-encoded";
    }
    const char *host = url + skip;
    size_t hlen = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hlen);
    if (at) {
        hlen -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    if (hlen == 0 || host[0] == ':')
        return "no host";
    return NULL;
}

static void sk_url(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    size_t len = 0;
    (void)key;
    j->has_url = true; /* given, even if invalid: no second "needs http.url" message */
    char *s = schedval_text(c, val, "http.url", &len);
    if (!s)
        return;
    const char *why = sk_url_problem(s, len);
    if (why) {
        schedval_error_at(c, val, "http.url: bad URL '%.200s': %s", s, why);
        free(s);
        return;
    }
    sk_take(&j->e->http.url, s);
}

/* Set one header, replacing a same-named one (names are case-insensitive in HTTP). */
static int sk_header_put(job_http *h, const char *name, char *value)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (strcasecmp(h->headers[i].name, name) == 0) {
            sk_take(&h->headers[i].value, value);
            return ERR_OK;
        }
    }
    job_kv *kv = realloc(h->headers, (h->nheaders + 1) * sizeof *kv);
    if (kv)
        h->headers = kv;
    char *n = kv ? strdup(name) : NULL;
    if (!n) {
        free(value);
        return ERR_NOMEM;
    }
    h->headers[h->nheaders++] = (job_kv){n, value};
    return ERR_OK;
}

static void sk_header(schedval_ctx *c, schedkeys_job *j, yaml_node_t *k, yaml_node_t *v)
{
    const char *name = (const char *)k->data.scalar.value;
    size_t nlen = k->data.scalar.length;
    if (nlen == 0 || strspn(name, SK_TOKEN_CHARS) != nlen) {
        schedval_error_at(c, k, "http.headers: '%s' is not a valid header name", name);
        return;
    }
    size_t vlen = 0;
    char *value = schedval_text(c, v, "http.headers", &vlen);
    if (!value)
        return;
    if (strcspn(value, "\r\n") != vlen || nlen + vlen > JOB_HEADER_MAX) {
        schedval_error_at(c, v, "http.headers: value of '%s' has a line break or is too long",
                          name);
        free(value);
        return;
    }
    if (sk_header_put(&j->e->http, name, value) != ERR_OK)
        c->nomem = true;
    else if (j->e->http.nheaders > JOB_HEADERS_MAX)
        schedval_error_at(c, k, "http.headers: more than %d headers", JOB_HEADERS_MAX);
}

static void sk_headers(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    (void)key;
    if (val->type != YAML_MAPPING_NODE) {
        schedval_error_at(c, val, "http.headers: expected a map, got a %s", schedval_kind(val));
        return;
    }
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start; p < val->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = scheddoc_get(c->doc, p->key);
        if (k->type != YAML_SCALAR_NODE) {
            schedval_error_at(c, k, "http.headers: expected a header name");
            continue;
        }
        sk_header(c, ud, k, scheddoc_get(c->doc, p->value));
    }
}

static void sk_body(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    size_t len = 0;
    (void)key;
    char *s = schedval_text(c, val, "http.body", &len);
    if (!s)
        return;
    if (len > JOB_BODY_MAX) {
        schedval_error_at(c, val, "http.body: %zu bytes is above the maximum %d", len,
                          JOB_BODY_MAX);
        free(s);
        return;
    }
    sk_take(&j->e->http.body, s);
    j->e->http.body_len = len;
}

static void sk_timeout(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    schedkeys_job *j = ud;
    int64_t ms = 0;
    bool total = strcmp((const char *)key->data.scalar.value, "timeout") == 0;
    const char *what = total ? "http.timeout" : "http.connect_timeout";
    if (!schedval_duration(c, val, what, 1, JOB_TIMEOUT_MAX_MS, &ms))
        return;
    if (total)
        j->e->http.timeout_ms = (uint32_t)ms;
    else
        j->e->http.connect_timeout_ms = (uint32_t)ms;
}

static void sk_success(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    job_http *h = &((schedkeys_job *)ud)->e->http;
    (void)key;
    if (val->type != YAML_SEQUENCE_NODE) {
        schedval_error_at(c, val, "http.success: expected a list of status codes, got a %s",
                          schedval_kind(val));
        return;
    }
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n > JOB_STATUS_MAX) {
        schedval_error_at(c, val, "http.success: more than %d status codes", JOB_STATUS_MAX);
        return;
    }
    uint16_t *st = calloc(n ? n : 1, sizeof *st);
    if (!st) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t v = 0;
        yaml_node_t *it = scheddoc_get(c->doc, val->data.sequence.items.start[i]);
        if (schedval_int(c, it, "http.success", 100, 599, &v))
            st[i] = (uint16_t)v;
    }
    free(h->ok_status);
    h->ok_status = st;
    h->nok_status = n;
}

static void sk_follow(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    (void)key;
    schedval_bool(c, val, "http.follow_redirects",
                  &((schedkeys_job *)ud)->e->http.follow_redirects);
}

static const schedval_key sk_http_keys[] = {
    {"method", sk_method, false, NULL},   {"url", sk_url, false, NULL},
    {"headers", sk_headers, false, NULL}, {"body", sk_body, false, NULL},
    {"timeout", sk_timeout, false, NULL}, {"connect_timeout", sk_timeout, false, NULL},
    {"success", sk_success, false, NULL}, {"follow_redirects", sk_follow, false, NULL},
};

static void sk_http(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    (void)key;
    if (val->type != YAML_MAPPING_NODE) /* reported below; "needs http.url" would repeat it */
        ((schedkeys_job *)ud)->has_url = true;
    schedval_map(c, val, sk_http_keys, SK_NKEYS(sk_http_keys), false, ud, "http");
}

/* ---- context, fan_out, delivery ----------------------------------------------------------- */

static void sk_context(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    (void)key;
    schedval_context(c, val, &((schedkeys_job *)ud)->e->context);
}

typedef struct sk_fan {
    schedkeys_job *j;
    const yaml_node_t *first; /* the count or items key already given */
} sk_fan;

/* Claim the fan_out form for key; false (reported) when count/items was already given. */
static bool sk_fan_claim(schedval_ctx *c, sk_fan *f, const yaml_node_t *key)
{
    if (f->first) {
        schedval_error_at(c, key, "fan_out: give count or items, not both");
        return false;
    }
    f->first = key;
    return true;
}

static void sk_fan_count(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    sk_fan *f = ud;
    int64_t n = 0;
    if (sk_fan_claim(c, f, key) && schedval_int(c, val, "fan_out.count", 1, SCHED_FANOUT_MAX, &n))
        f->j->e->fan_count = (uint32_t)n;
}

static void sk_fan_items(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    sk_fan *f = ud;
    sched_entry *e = f->j->e;
    if (!sk_fan_claim(c, f, key))
        return;
    if (val->type != YAML_SEQUENCE_NODE) {
        schedval_error_at(c, val, "fan_out.items: expected a list, got a %s", schedval_kind(val));
        return;
    }
    size_t n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
    if (n == 0 || n > SCHED_FANOUT_MAX) {
        schedval_error_at(c, val, "fan_out.items: %zu items is %s", n,
                          n ? "above the maximum " SCHED_FANOUT_MAX_TEXT : "not enough (need 1)");
        return;
    }
    e->fan_items = calloc(n, sizeof *e->fan_items);
    if (!e->fan_items) {
        c->nomem = true;
        return;
    }
    e->fan_count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = scheddoc_get(c->doc, val->data.sequence.items.start[i]);
        e->fan_items[i] = schedval_text(c, it, "fan_out.items", NULL);
    }
}

static const schedval_key sk_fan_keys[] = {
    {"count", sk_fan_count, false, NULL},
    {"items", sk_fan_items, false, NULL},
};

static void sk_fan_out(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    sk_fan f = {ud, NULL};
    sched_entry *e = f.j->e;
    (void)key;
    /* A job's fan_out replaces the one from defaults as a whole. */
    for (size_t i = 0; e->fan_items && i < e->fan_count; i++)
        free(e->fan_items[i]);
    free(e->fan_items);
    e->fan_items = NULL;
    e->fan_count = 1;
    schedval_map(c, val, sk_fan_keys, SK_NKEYS(sk_fan_keys), false, &f, "fan_out");
    if (val->type == YAML_MAPPING_NODE && !f.first)
        schedval_error_at(c, val, "fan_out: needs count or items");
}

static void sk_misfire(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    static const char *const names[] = {"skip", "once", "all"};
    schedkeys_job *j = ud;
    (void)key;
    char *s = schedval_text(c, val, "misfire", NULL);
    if (!s)
        return;
    for (size_t i = 0; i < SK_NKEYS(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            j->e->misfire = (sched_misfire)i;
            free(s);
            return;
        }
    }
    schedval_error_at(c, val, "misfire: '%s' is not one of skip, once, all", s);
    free(s);
}

static void sk_misfire_max(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    int64_t n = 0;
    (void)key;
    if (schedval_int(c, val, "misfire_max", 1, SCHED_MISFIRE_ALL_MAX, &n))
        ((schedkeys_job *)ud)->e->misfire_max = (uint32_t)n;
}

static void sk_max_lateness(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    int64_t ms = 0;
    (void)key;
    /* A day is far beyond any sane lateness budget; the cap only keeps arithmetic safe. */
    if (schedval_duration(c, val, "max_lateness", 0, 86400000, &ms))
        ((schedkeys_job *)ud)->e->max_lateness_ms = ms;
}

static void sk_retries(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    int64_t n = 0;
    (void)key;
    if (schedval_int(c, val, "retries", 0, JOB_ATTEMPTS_MAX - 1, &n))
        ((schedkeys_job *)ud)->e->max_attempts = (uint32_t)n + 1;
}

static void sk_lead(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    int64_t ms = 0;
    (void)key;
    if (schedval_duration(c, val, "lead", 0, SCHED_LEAD_MAX_MS, &ms))
        ((schedkeys_job *)ud)->e->lead_ms = ms;
}

static const schedval_key sk_job_keys[] = {
    {"name", sk_name, true, NULL},
    {"cron", sk_cron, true, NULL},
    {"every", sk_every, true, NULL},
    {"at", sk_at, true, NULL},
    {"timezone", sk_timezone, false, NULL},
    {"http", sk_http, false, NULL},
    {"context", sk_context, false, NULL},
    {"fan_out", sk_fan_out, false, NULL},
    {"misfire", sk_misfire, false, NULL},
    {"misfire_max", sk_misfire_max, false, NULL},
    {"max_lateness", sk_max_lateness, false, NULL},
    {"retries", sk_retries, false, NULL},
    {"lead", sk_lead, false, NULL},
    /* Keys that belong one level down, written at job level by mistake. */
    {"url", NULL, false, "http.url"},
    {"method", NULL, false, "http.method"},
    {"headers", NULL, false, "http.headers"},
    {"body", NULL, false, "http.body"},
    {"timeout", NULL, false, "http.timeout"},
    {"connect_timeout", NULL, false, "http.connect_timeout"},
    {"success", NULL, false, "http.success"},
    {"follow_redirects", NULL, false, "http.follow_redirects"},
    {"count", NULL, false, "fan_out.count"},
    {"items", NULL, false, "fan_out.items"},
};

void schedkeys_job_apply(schedval_ctx *c, schedkeys_job *j, yaml_node_t *map, bool in_defaults)
{
    schedval_map(c, map, sk_job_keys, SK_NKEYS(sk_job_keys), in_defaults, j,
                 in_defaults ? "defaults" : "job");
}
