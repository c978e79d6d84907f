/* job: lifetime (init/fini/clone), schema validation and the deterministic firing id. */
#include "job.h"

#include "clock.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* due_ms must fit four-digit years so every firing id has the same shape:
 * 9999-12-31T23:59:59.999Z. */
#define JOB_DUE_MAX_MS 253402300799999LL

void job_init(job *j)
{
    memset(j, 0, sizeof *j);
    jval_set_map(&j->context);
}

static void job_kvs_free(job_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void job_fini(job *j)
{
    if (!j)
        return;
    free(j->id);
    free(j->schedule);
    free(j->http.method);
    free(j->http.url);
    job_kvs_free(j->http.headers, j->http.nheaders);
    free(j->http.body);
    free(j->http.ok_status);
    for (size_t i = 0; j->cmd.argv && i < j->cmd.argc; i++)
        free(j->cmd.argv[i]);
    free(j->cmd.argv);
    job_kvs_free(j->cmd.env, j->cmd.nenv);
    jval_fini(&j->context);
    job_init(j);
}

/* Copy a NUL-terminated string; NULL stays NULL. */
static int job_strdup(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return (src && !*dst) ? ERR_NOMEM : ERR_OK;
}

/* Copy n bytes into a fresh buffer with a NUL after them (bodies are binary but callers like to
 * treat them as text). NULL stays NULL. */
static int job_memdup(void **dst, const void *src, size_t n, size_t pad)
{
    *dst = NULL;
    if (!src)
        return ERR_OK;
    char *p = malloc(n + pad);
    if (!p)
        return ERR_NOMEM;
    memcpy(p, src, n);
    if (pad)
        p[n] = '\0';
    *dst = p;
    return ERR_OK;
}

/* Slots are zeroed first, so a half-done copy is still safe to free with its full count. */
static int job_kvs_clone(job_kv **dst, size_t *ndst, const job_kv *src, size_t n)
{
    *dst = NULL;
    *ndst = 0;
    if (!src || n == 0)
        return ERR_OK;
    *dst = calloc(n, sizeof **dst);
    if (!*dst)
        return ERR_NOMEM;
    *ndst = n;
    for (size_t i = 0; i < n; i++) {
        if (job_strdup(&(*dst)[i].name, src[i].name) || job_strdup(&(*dst)[i].value, src[i].value))
            return ERR_NOMEM;
    }
    return ERR_OK;
}

static int job_http_clone(job_http *dst, const job_http *src)
{
    *dst = *src;
    dst->method = dst->url = dst->body = NULL;
    dst->headers = NULL;
    dst->nheaders = 0;
    dst->ok_status = NULL;
    dst->nok_status = 0;
    if (job_strdup(&dst->method, src->method) || job_strdup(&dst->url, src->url) ||
        job_kvs_clone(&dst->headers, &dst->nheaders, src->headers, src->nheaders) ||
        job_memdup((void **)&dst->body, src->body, src->body_len, 1))
        return ERR_NOMEM;
    if (src->ok_status && src->nok_status) {
        if (job_memdup((void **)&dst->ok_status, src->ok_status,
                       src->nok_status * sizeof *src->ok_status, 0))
            return ERR_NOMEM;
        dst->nok_status = src->nok_status;
    }
    return ERR_OK;
}

static int job_cmd_clone(job_command *dst, const job_command *src)
{
    dst->timeout_ms = src->timeout_ms;
    if (src->argv && src->argc) {
        dst->argv = calloc(src->argc, sizeof *dst->argv);
        if (!dst->argv)
            return ERR_NOMEM;
        dst->argc = src->argc;
        for (size_t i = 0; i < src->argc; i++) {
            if (job_strdup(&dst->argv[i], src->argv[i]))
                return ERR_NOMEM;
        }
    }
    return job_kvs_clone(&dst->env, &dst->nenv, src->env, src->nenv);
}

int job_clone(job *dst, const job *src)
{
    job_init(dst);
    dst->index = src->index;
    dst->due_ms = src->due_ms;
    dst->attempt = src->attempt;
    dst->max_attempts = src->max_attempts;
    dst->max_lateness_ms = src->max_lateness_ms;
    dst->kind = src->kind;
    jval_fini(&dst->context);
    if (job_strdup(&dst->id, src->id) || job_strdup(&dst->schedule, src->schedule) ||
        job_http_clone(&dst->http, &src->http) || job_cmd_clone(&dst->cmd, &src->cmd) ||
        jval_clone(&dst->context, &src->context))
        goto fail;
    return ERR_OK;
fail:
    job_fini(dst);
    return ERR_NOMEM;
}

/* ---- validation ----------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int job_bad(char *reason, size_t cap, const char *fmt,
                                                         ...)
{
    if (reason && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, cap, fmt, ap);
        va_end(ap);
    }
    return ERR_WIRE_SCHEMA;
}

static bool job_has_ctl(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

/* Names that end up in logs, metric labels and an Idempotency-Key header: no control bytes. */
static int job_check_name(const char *field, const char *s, size_t max, char *reason, size_t cap)
{
    if (!s || !*s)
        return job_bad(reason, cap, "%s: missing", field);
    if (strlen(s) > max)
        return job_bad(reason, cap, "%s: longer than %zu bytes", field, max);
    if (job_has_ctl(s))
        return job_bad(reason, cap, "%s: contains a control character", field);
    return ERR_OK;
}

static int job_check_ms(const char *field, uint32_t ms, char *reason, size_t cap)
{
    if (ms < 1 || ms > JOB_TIMEOUT_MAX_MS)
        return job_bad(reason, cap, "%s: %u not in 1..%d ms", field, ms, JOB_TIMEOUT_MAX_MS);
    return ERR_OK;
}

static int job_check_method(const char *m, char *reason, size_t cap)
{
    static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; m && i < sizeof ok / sizeof ok[0]; i++) {
        if (strcmp(m, ok[i]) == 0)
            return ERR_OK;
    }
    return job_bad(reason, cap, "http.method: not one of GET HEAD POST PUT PATCH DELETE OPTIONS");
}

/* The authority is what sits between "//" and the first / ? or #; the host is what is left
 * after dropping "userinfo@" and ":port" (an IPv6 literal keeps its brackets). */
static size_t job_url_hostlen(const char *rest)
{
    size_t alen = strcspn(rest, "/?#");
    const char *host = rest;
    for (size_t i = 0; i < alen; i++) {
        if (rest[i] == '@')
            host = rest + i + 1;
    }
    size_t hlen = alen - (size_t)(host - rest);
    if (hlen && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);
        return close && close > host + 1 ? (size_t)(close - host) + 1 : 0;
    }
    const char *colon = memchr(host, ':', hlen);
    return colon ? (size_t)(colon - host) : hlen;
}

static int job_check_url(const char *url, char *reason, size_t cap)
{
    if (!url || !*url)
        return job_bad(reason, cap, "http.url: missing");
    if (strlen(url) > JOB_URL_MAX)
        return job_bad(reason, cap, "http.url: longer than %d bytes", JOB_URL_MAX);
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return job_bad(reason, cap, "http.url: space or control byte at offset %zu",
                           (size_t)(p - url));
    }
    const char *rest = NULL;
    if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return job_bad(reason, cap, "http.url: does not start with http:// or https://");
    if (job_url_hostlen(rest) == 0)
        return job_bad(reason, cap, "http.url: has no host");
    return ERR_OK;
}

/* RFC 7230 token: 1*tchar. */
static bool job_is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

static int job_check_headers(const job_http *h, char *reason, size_t cap)
{
    if (h->nheaders > JOB_HEADERS_MAX)
        return job_bad(reason, cap, "http.headers: %zu headers, at most %d", h->nheaders,
                       JOB_HEADERS_MAX);
    if (h->nheaders && !h->headers)
        return job_bad(reason, cap, "http.headers: missing");
    size_t total = 0;
    for (size_t i = 0; i < h->nheaders; i++) {
        const job_kv *kv = &h->headers[i];
        if (!kv->name || !job_is_token(kv->name))
            return job_bad(reason, cap, "http.headers[%zu]: name is not an HTTP token", i);
        if (!kv->value || strpbrk(kv->value, "\r\n"))
            return job_bad(reason, cap, "http.headers[%zu]: value missing or has CR/LF", i);
        if (strlen(kv->name) + strlen(kv->value) > JOB_HEADER_MAX)
            return job_bad(reason, cap, "http.headers[%zu]: longer than %d bytes", i,
                           JOB_HEADER_MAX);
        total += strlen(kv->name) + strlen(kv->value);
    }
    if (total > JOB_HEADERS_BYTES_MAX)
        return job_bad(reason, cap, "http.headers: %zu bytes in all, at most %d", total,
                       JOB_HEADERS_BYTES_MAX);
    return ERR_OK;
}

static int job_check_http(const job_http *h, char *reason, size_t cap)
{
    int rc = job_check_method(h->method, reason, cap);
    if (!rc)
        rc = job_check_url(h->url, reason, cap);
    if (!rc)
        rc = job_check_headers(h, reason, cap);
    if (rc)
        return rc;
    if (h->body_len > JOB_BODY_MAX)
        return job_bad(reason, cap, "http.body: longer than %d bytes", JOB_BODY_MAX);
    if (h->body_len && !h->body)
        return job_bad(reason, cap, "http.body: missing");
    if (h->nok_status > JOB_STATUS_MAX || (h->nok_status && !h->ok_status))
        return job_bad(reason, cap, "http.ok_status: more than %d statuses", JOB_STATUS_MAX);
    for (size_t i = 0; i < h->nok_status; i++) {
        if (h->ok_status[i] < 100 || h->ok_status[i] > 599)
            return job_bad(reason, cap, "http.ok_status[%zu]: %u not in 100..599", i,
                           (unsigned)h->ok_status[i]);
    }
    rc = job_check_ms("http.connect_timeout_ms", h->connect_timeout_ms, reason, cap);
    return rc ? rc : job_check_ms("http.timeout_ms", h->timeout_ms, reason, cap);
}

static int job_check_env(const job_command *c, char *reason, size_t cap)
{
    if (c->nenv > JOB_ENV_MAX || (c->nenv && !c->env))
        return job_bad(reason, cap, "cmd.env: more than %d variables", JOB_ENV_MAX);
    for (size_t i = 0; i < c->nenv; i++) {
        const job_kv *kv = &c->env[i];
        if (!kv->name || !*kv->name || strchr(kv->name, '=') || !kv->value)
            return job_bad(reason, cap, "cmd.env[%zu]: name empty or has '='", i);
        if (strlen(kv->name) + 1 + strlen(kv->value) > JOB_ARG_MAX)
            return job_bad(reason, cap, "cmd.env[%zu]: longer than %d bytes", i, JOB_ARG_MAX);
    }
    return ERR_OK;
}

static int job_check_cmd(const job_command *c, char *reason, size_t cap)
{
    if (!c->argv || c->argc == 0)
        return job_bad(reason, cap, "cmd.argv: empty");
    if (c->argc > JOB_ARGV_MAX)
        return job_bad(reason, cap, "cmd.argv: %zu arguments, at most %d", c->argc, JOB_ARGV_MAX);
    for (size_t i = 0; i < c->argc; i++) {
        if (!c->argv[i] || (i == 0 && !*c->argv[i]))
            return job_bad(reason, cap, "cmd.argv[%zu]: missing", i);
        if (strlen(c->argv[i]) > JOB_ARG_MAX)
            return job_bad(reason, cap, "cmd.argv[%zu]: longer than %d bytes", i, JOB_ARG_MAX);
    }
    int rc = job_check_env(c, reason, cap);
    return rc ? rc : job_check_ms("cmd.timeout_ms", c->timeout_ms, reason, cap);
}

/* True when v and everything inside it nests at most `room` container levels deep. Recursion
 * stops as soon as the budget is spent, so its depth is bounded by JOB_CONTEXT_DEPTH_MAX. */
static bool job_depth_ok(const jval *v, int room)
{
    if (v->type != JVAL_ARRAY && v->type != JVAL_MAP)
        return true;
    if (room < 1)
        return false;
    size_t n = v->type == JVAL_ARRAY ? v->u.arr.n : v->u.map.n;
    for (size_t i = 0; i < n; i++) {
        const jval *c = v->type == JVAL_ARRAY ? &v->u.arr.items[i] : &v->u.map.kv[i].val;
        if (!job_depth_ok(c, room - 1))
            return false;
    }
    return true;
}

static int job_check_core(const job *j, char *reason, size_t cap)
{
    int rc = job_check_name("id", j->id, JOB_ID_MAX, reason, cap);
    if (!rc)
        rc = job_check_name("schedule", j->schedule, JOB_NAME_MAX, reason, cap);
    if (rc)
        return rc;
    if (j->due_ms < 0 || j->due_ms > JOB_DUE_MAX_MS)
        return job_bad(reason, cap, "due_ms: %lld outside years 1970..9999", (long long)j->due_ms);
    if (j->max_attempts < 1 || j->max_attempts > JOB_ATTEMPTS_MAX)
        return job_bad(reason, cap, "max_attempts: %u not in 1..%d", j->max_attempts,
                       JOB_ATTEMPTS_MAX);
    if (j->attempt < 1 || j->attempt > j->max_attempts)
        return job_bad(reason, cap, "attempt: %u not in 1..%u", j->attempt, j->max_attempts);
    if (j->max_lateness_ms < 0)
        return job_bad(reason, cap, "max_lateness_ms: negative");
    if (j->context.type != JVAL_MAP)
        return job_bad(reason, cap, "context: not a map");
    if (!job_depth_ok(&j->context, JOB_CONTEXT_DEPTH_MAX))
        return job_bad(reason, cap, "context: nested deeper than %d levels", JOB_CONTEXT_DEPTH_MAX);
    return ERR_OK;
}

int job_validate(const job *j, char *reason, size_t cap)
{
    if (!j)
        return job_bad(reason, cap, "job: missing");
    int rc = job_check_core(j, reason, cap);
    if (rc)
        return rc;
    if (j->kind == JOB_HTTP)
        return job_check_http(&j->http, reason, cap);
    if (j->kind == JOB_COMMAND)
        return job_check_cmd(&j->cmd, reason, cap);
    return job_bad(reason, cap, "kind: %d is neither http nor command", (int)j->kind);
}

/* The id of a year in 0..9999 without snprintf, which was most of the cost of building a
 * firing's 10,000 ids and of loading a 100,000-entry schedule. Same bytes as the general form. */
static int job_format_id_fast(const char *schedule, unsigned y, unsigned m, unsigned d,
                              unsigned sod, uint32_t index, char *buf, size_t cap)
{
    char tail[32], *p = tail, rev[10];
    int nrev = 0;
    *p++ = '@';
    p = clock_put_digits(p, y, 4);
    p = clock_put_digits(p, m, 2);
    p = clock_put_digits(p, d, 2);
    *p++ = 'T';
    p = clock_put_digits(p, sod / 3600, 2);
    p = clock_put_digits(p, sod / 60 % 60, 2);
    p = clock_put_digits(p, sod % 60, 2);
    *p++ = 'Z';
    *p++ = '#';
    do {
        rev[nrev++] = (char)('0' + index % 10);
        index /= 10;
    } while (index);
    while (nrev)
        *p++ = rev[--nrev];
    size_t ls = strlen(schedule), lt = (size_t)(p - tail);
    if (ls + lt >= cap) {
        buf[0] = '\0';
        return ERR_RANGE;
    }
    memcpy(buf, schedule, ls);
    memcpy(buf + ls, tail, lt);
    buf[ls + lt] = '\0';
    return ERR_OK;
}

int job_format_id(const char *schedule, int64_t due_ms, uint32_t index, char *buf, size_t cap)
{
    if (!schedule || !buf || cap == 0)
        return ERR_INVAL;
    int64_t secs = clock_floor_div(due_ms, 1000);
    int64_t days = clock_floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    clock_civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999)
        return job_format_id_fast(schedule, (unsigned)y, m, d, (unsigned)sod, index, buf, cap);
    int n = snprintf(buf, cap, "%s@%04lld%02u%02uT%02d%02d%02dZ#%u", schedule, (long long)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), index);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return ERR_RANGE;
    }
    return ERR_OK;
}
