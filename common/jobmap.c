/* jobmap: a job to a value tree and back: the message schema, apart from its msgpack bytes. The
 * keys, types and limits are the wire format documented at the top of jobwire.c: change both
 * together (and bump JOBWIRE_VERSION when a key changes type or meaning). */
#include "jobmap.h"

#include "err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- job to tree --------------------------------------------------------------------------- */

/* These helpers consume *v whether they succeed or not, so a failed chain leaks nothing. */
static int jobmap_put(jval *map, const char *key, jval *v)
{
    int rc = jval_map_put(map, key, v);
    jval_fini(v);
    return rc;
}

static int jobmap_push(jval *arr, jval *v)
{
    int rc = jval_array_push(arr, v);
    jval_fini(v);
    return rc;
}

static int jobmap_str(jval *v, const char *s)
{
    return jval_set_str(v, s ? s : "", s ? strlen(s) : 0);
}

static int jobmap_put_str(jval *map, const char *key, const char *s)
{
    jval v;
    return jobmap_str(&v, s) ? ERR_NOMEM : jobmap_put(map, key, &v);
}

static int jobmap_put_int(jval *map, const char *key, int64_t i)
{
    jval v;
    jval_set_int(&v, i);
    return jobmap_put(map, key, &v);
}

static int jobmap_push_str(jval *arr, const char *s)
{
    jval v;
    return jobmap_str(&v, s) ? ERR_NOMEM : jobmap_push(arr, &v);
}

/* [[name, value], ...]: pairs rather than a map, because header order and repeats matter. */
static int jobmap_put_kvs(jval *map, const char *key, const job_kv *kv, size_t n)
{
    jval arr, pair;
    jval_set_array(&arr);
    for (size_t i = 0; kv && i < n; i++) {
        jval_set_array(&pair);
        if (jobmap_push_str(&pair, kv[i].name) || jobmap_push_str(&pair, kv[i].value) ||
            jobmap_push(&arr, &pair)) {
            jval_fini(&pair);
            jval_fini(&arr);
            return ERR_NOMEM;
        }
    }
    return jobmap_put(map, key, &arr);
}

static int jobmap_put_http(jval *map, const job_http *h)
{
    jval s, ok, v;
    jval_set_map(&s);
    jval_set_array(&ok);
    for (size_t i = 0; h->ok_status && i < h->nok_status; i++) {
        jval_set_int(&v, h->ok_status[i]);
        if (jobmap_push(&ok, &v))
            goto fail;
    }
    if (jobmap_put_str(&s, "m", h->method) || jobmap_put_str(&s, "url", h->url) ||
        jobmap_put_kvs(&s, "h", h->headers, h->nheaders) ||
        (h->body && jval_set_str(&v, h->body, h->body_len)) ||
        (h->body && jobmap_put(&s, "body", &v)) ||
        jobmap_put_int(&s, "cto", h->connect_timeout_ms) ||
        jobmap_put_int(&s, "to", h->timeout_ms) || jobmap_put(&s, "ok", &ok))
        goto fail;
    jval_set_bool(&v, h->follow_redirects);
    if (jobmap_put(&s, "redir", &v))
        goto fail;
    return jobmap_put(map, "http", &s);
fail:
    jval_fini(&ok);
    jval_fini(&s);
    return ERR_NOMEM;
}

static int jobmap_put_cmd(jval *map, const job_command *c)
{
    jval s, argv;
    jval_set_map(&s);
    jval_set_array(&argv);
    for (size_t i = 0; c->argv && i < c->argc; i++) {
        if (jobmap_push_str(&argv, c->argv[i]))
            goto fail;
    }
    if (jobmap_put(&s, "argv", &argv) || jobmap_put_kvs(&s, "env", c->env, c->nenv) ||
        jobmap_put_int(&s, "to", c->timeout_ms))
        goto fail;
    return jobmap_put(map, "cmd", &s);
fail:
    jval_fini(&argv);
    jval_fini(&s);
    return ERR_NOMEM;
}

int jobmap_from_job(const job *j, jval *out)
{
    jval ctx;
    jval_set_nil(out);
    if (j->kind != JOB_HTTP && j->kind != JOB_COMMAND)
        return ERR_INVAL;
    jval_set_map(out);
    if (jobmap_put_str(out, "id", j->id) || jobmap_put_str(out, "sched", j->schedule) ||
        jobmap_put_int(out, "idx", j->index) || jobmap_put_int(out, "due", j->due_ms) ||
        jobmap_put_int(out, "att", j->attempt) || jobmap_put_int(out, "max_att", j->max_attempts) ||
        jobmap_put_int(out, "late", j->max_lateness_ms) ||
        jobmap_put_str(out, "kind", j->kind == JOB_HTTP ? "http" : "cmd") ||
        (j->kind == JOB_HTTP ? jobmap_put_http(out, &j->http) : jobmap_put_cmd(out, &j->cmd)) ||
        jval_clone(&ctx, &j->context) || jobmap_put(out, "ctx", &ctx)) {
        jval_fini(out);
        return ERR_NOMEM;
    }
    return ERR_OK;
}

/* ---- tree to job --------------------------------------------------------------------------- */

/* Reading state: where the reason goes, and the kind once read (the table reads "kind" before
 * the sections, whatever order the message had). */
typedef struct jobmap_rd {
    char *reason;
    size_t cap;
    job_kind kind;
} jobmap_rd;

__attribute__((format(printf, 2, 3))) static int jobmap_bad(jobmap_rd *r, const char *fmt, ...)
{
    if (r->reason && r->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->reason, r->cap, fmt, ap);
        va_end(ap);
    }
    return ERR_WIRE_SCHEMA;
}

static int jobmap_nomem(jobmap_rd *r)
{
    jobmap_bad(r, "out of memory");
    return ERR_NOMEM;
}

static int jobmap_want(jobmap_rd *r, const char *path, const jval *v, const char *want)
{
    static const char *const names[] = {"nil", "bool", "int", "float", "str", "array", "map"};
    unsigned t = (unsigned)v->type;
    return jobmap_bad(r, "%s: is %s, want %s", path, t < 7 ? names[t] : "?", want);
}

/* A string that becomes a C string: a NUL inside would cut it short without anyone noticing. */
static int jobmap_cstr(jobmap_rd *r, const char *path, const jval *v, char **dst)
{
    if (v->type != JVAL_STR)
        return jobmap_want(r, path, v, "str");
    if (memchr(v->u.s.ptr, '\0', v->u.s.len))
        return jobmap_bad(r, "%s: contains a NUL byte", path);
    *dst = strdup(v->u.s.ptr);
    return *dst ? ERR_OK : jobmap_nomem(r);
}

static int jobmap_int(jobmap_rd *r, const char *path, const jval *v, int64_t min, int64_t max,
                      int64_t *out)
{
    if (v->type != JVAL_INT)
        return jobmap_want(r, path, v, "int");
    if (v->u.i < min || v->u.i > max)
        return jobmap_bad(r, "%s: %lld not in %lld..%lld", path, (long long)v->u.i, (long long)min,
                          (long long)max);
    *out = v->u.i;
    return ERR_OK;
}

/* An array's zeroed copy; the count is set with the allocation, so job_fini frees a half-read
 * list like a whole one. */
static int jobmap_list(jobmap_rd *r, const char *path, const jval *v, size_t size, void **arr,
                       size_t *n)
{
    *arr = NULL;
    if (v->type != JVAL_ARRAY)
        return jobmap_want(r, path, v, "array");
    if (v->u.arr.n == 0)
        return ERR_OK;
    *arr = calloc(v->u.arr.n, size);
    if (!*arr)
        return jobmap_nomem(r);
    *n = v->u.arr.n;
    return ERR_OK;
}

static int jobmap_kvs(jobmap_rd *r, const char *path, const jval *v, job_kv **kv, size_t *n)
{
    char item[64];
    void *p;
    int rc = jobmap_list(r, path, v, sizeof **kv, &p, n);
    *kv = p;
    for (size_t i = 0; !rc && i < *n; i++) {
        const jval *e = &v->u.arr.items[i];
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        if (e->type != JVAL_ARRAY || e->u.arr.n != 2)
            return jobmap_bad(r, "%s: want [name, value]", item);
        rc = jobmap_cstr(r, item, &e->u.arr.items[0], &(*kv)[i].name);
        if (!rc)
            rc = jobmap_cstr(r, item, &e->u.arr.items[1], &(*kv)[i].value);
    }
    return rc;
}

static int jobmap_ok(jobmap_rd *r, const char *path, const jval *v, job_http *h)
{
    void *p;
    int64_t code = 0;
    int rc = jobmap_list(r, path, v, sizeof *h->ok_status, &p, &h->nok_status);
    h->ok_status = p;
    for (size_t i = 0; !rc && i < h->nok_status; i++) {
        rc = jobmap_int(r, path, &v->u.arr.items[i], 0, UINT16_MAX, &code);
        h->ok_status[i] = (uint16_t)code;
    }
    return rc;
}

static int jobmap_argv(jobmap_rd *r, const char *path, const jval *v, job_command *c)
{
    char item[64];
    void *p;
    int rc = jobmap_list(r, path, v, sizeof *c->argv, &p, &c->argc);
    c->argv = p;
    for (size_t i = 0; !rc && i < c->argc; i++) {
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        rc = jobmap_cstr(r, item, &v->u.arr.items[i], &c->argv[i]);
    }
    return rc;
}

/* The body is moved, not copied: it may be 192 KiB, and the tree is thrown away next. */
static int jobmap_body(jobmap_rd *r, const char *path, jval *v, job_http *h)
{
    if (v->type != JVAL_STR)
        return jobmap_want(r, path, v, "str or bin");
    h->body = v->u.s.ptr; /* jval strings carry their NUL */
    h->body_len = v->u.s.len;
    jval_set_nil(v);
    return ERR_OK;
}

static bool jobmap_is(const jval *v, const char *s)
{
    return v->type == JVAL_STR && v->u.s.len == strlen(s) && memcmp(v->u.s.ptr, s, v->u.s.len) == 0;
}

static int jobmap_kind(jobmap_rd *r, const char *path, const jval *v, job_kind *kind)
{
    *kind = jobmap_is(v, "http") ? JOB_HTTP : jobmap_is(v, "cmd") ? JOB_COMMAND : 0;
    r->kind = *kind;
    return *kind ? ERR_OK : jobmap_bad(r, "%s: want \"http\" or \"cmd\"", path);
}

/* One table row per key: what it holds, whether it must be there, where it goes (`off` into
 * the struct being filled; composite readers find their fields from the struct itself). */
enum {
    JOBMAP_STR,
    JOBMAP_U32,
    JOBMAP_I64,
    JOBMAP_BOOL,
    JOBMAP_KIND,
    JOBMAP_HDRS,
    JOBMAP_BODY,
    JOBMAP_OK,
    JOBMAP_ARGV,
    JOBMAP_ENV,
    JOBMAP_HTTP,
    JOBMAP_CMD,
    JOBMAP_CTX
};

typedef struct jobmap_field {
    const char *key;
    uint8_t type;
    bool required;
    size_t off;
} jobmap_field;

/* "kind" comes before the sections so they know whether they apply. */
static const jobmap_field jobmap_job_fields[] = {
    {"id", JOBMAP_STR, true, offsetof(job, id)},
    {"sched", JOBMAP_STR, true, offsetof(job, schedule)},
    {"idx", JOBMAP_U32, false, offsetof(job, index)},
    {"due", JOBMAP_I64, true, offsetof(job, due_ms)},
    {"att", JOBMAP_U32, true, offsetof(job, attempt)},
    {"max_att", JOBMAP_U32, true, offsetof(job, max_attempts)},
    {"late", JOBMAP_I64, false, offsetof(job, max_lateness_ms)},
    {"kind", JOBMAP_KIND, true, offsetof(job, kind)},
    {"http", JOBMAP_HTTP, false, offsetof(job, http)},
    {"cmd", JOBMAP_CMD, false, offsetof(job, cmd)},
    {"ctx", JOBMAP_CTX, false, offsetof(job, context)},
};

static const jobmap_field jobmap_http_fields[] = {
    {"m", JOBMAP_STR, true, offsetof(job_http, method)},
    {"url", JOBMAP_STR, true, offsetof(job_http, url)},
    {"h", JOBMAP_HDRS, false, 0},
    {"body", JOBMAP_BODY, false, 0},
    {"cto", JOBMAP_U32, false, offsetof(job_http, connect_timeout_ms)},
    {"to", JOBMAP_U32, false, offsetof(job_http, timeout_ms)},
    {"ok", JOBMAP_OK, false, 0},
    {"redir", JOBMAP_BOOL, false, offsetof(job_http, follow_redirects)},
};

static const jobmap_field jobmap_cmd_fields[] = {
    {"argv", JOBMAP_ARGV, true, 0},
    {"env", JOBMAP_ENV, false, 0},
    {"to", JOBMAP_U32, false, offsetof(job_command, timeout_ms)},
};

#define JOBMAP_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int jobmap_fields(jobmap_rd *r, const char *name, jval *map, const jobmap_field *f,
                         size_t nf, void *base);

/* jval_map_get, but the value may be moved out. */
static jval *jobmap_get(jval *map, const char *key)
{
    for (size_t i = 0; i < map->u.map.n; i++) {
        if (strcmp(map->u.map.kv[i].key, key) == 0)
            return &map->u.map.kv[i].val;
    }
    return NULL;
}

/* The http or cmd section; only the one the job's kind names is read, the other is ignored. */
static int jobmap_section(jobmap_rd *r, const char *path, jval *v, bool http, void *dst)
{
    if (r->kind != (http ? JOB_HTTP : JOB_COMMAND))
        return ERR_OK;
    if (v->type != JVAL_MAP)
        return jobmap_want(r, path, v, "map");
    if (!http) {
        ((job_command *)dst)->timeout_ms = JOB_DEFAULT_TIMEOUT_MS;
        return jobmap_fields(r, path, v, jobmap_cmd_fields, JOBMAP_COUNT(jobmap_cmd_fields), dst);
    }
    ((job_http *)dst)->connect_timeout_ms = JOB_DEFAULT_CONNECT_TIMEOUT_MS;
    ((job_http *)dst)->timeout_ms = JOB_DEFAULT_TIMEOUT_MS;
    return jobmap_fields(r, path, v, jobmap_http_fields, JOBMAP_COUNT(jobmap_http_fields), dst);
}

static int jobmap_value(jobmap_rd *r, const char *path, jval *v, const jobmap_field *f, void *base)
{
    void *dst = (char *)base + f->off;
    int64_t i = 0;
    int rc;
    switch (f->type) {
    case JOBMAP_STR:
        return jobmap_cstr(r, path, v, dst);
    case JOBMAP_U32:
        rc = jobmap_int(r, path, v, 0, UINT32_MAX, &i);
        *(uint32_t *)dst = (uint32_t)i;
        return rc;
    case JOBMAP_I64:
        return jobmap_int(r, path, v, INT64_MIN, INT64_MAX, dst);
    case JOBMAP_BOOL:
        if (v->type != JVAL_BOOL)
            return jobmap_want(r, path, v, "bool");
        *(bool *)dst = v->u.b;
        return ERR_OK;
    case JOBMAP_KIND:
        return jobmap_kind(r, path, v, dst);
    case JOBMAP_HDRS:
        return jobmap_kvs(r, path, v, &((job_http *)base)->headers, &((job_http *)base)->nheaders);
    case JOBMAP_ENV:
        return jobmap_kvs(r, path, v, &((job_command *)base)->env, &((job_command *)base)->nenv);
    case JOBMAP_BODY:
        return jobmap_body(r, path, v, base);
    case JOBMAP_OK:
        return jobmap_ok(r, path, v, base);
    case JOBMAP_ARGV:
        return jobmap_argv(r, path, v, base);
    case JOBMAP_HTTP:
    case JOBMAP_CMD:
        return jobmap_section(r, path, v, f->type == JOBMAP_HTTP, dst);
    default: /* JOBMAP_CTX, moved like the body */
        if (v->type != JVAL_MAP)
            return jobmap_want(r, path, v, "map");
        jval_fini(dst);
        *(jval *)dst = *v;
        jval_set_nil(v);
        return ERR_OK;
    }
}

/* "name.key" (or "key" at the top) into path, truncated to cap. Not snprintf: it ran for every
 * field of every job received and was a quarter of the worker's decode instructions. */
static void jobmap_path(char *path, size_t cap, const char *name, const char *key)
{
    size_t a = strlen(name), b = strlen(key), n = 0;
    if (a && a < cap - 1) {
        memcpy(path, name, a);
        path[a] = '.';
        n = a + 1;
    }
    if (b > cap - 1 - n)
        b = cap - 1 - n;
    memcpy(path + n, key, b);
    path[n + b] = '\0';
}

/* Keys the table does not know are never looked at: that is the forward compatibility. */
static int jobmap_fields(jobmap_rd *r, const char *name, jval *map, const jobmap_field *f,
                         size_t nf, void *base)
{
    char path[32]; /* the longest is "http.redir" */
    for (size_t k = 0; k < nf; k++) {
        jval *v = jobmap_get(map, f[k].key);
        jobmap_path(path, sizeof path, name, f[k].key);
        if (!v && f[k].required)
            return jobmap_bad(r, "%s: missing", path);
        int rc = v ? jobmap_value(r, path, v, &f[k], base) : ERR_OK;
        if (rc)
            return rc;
    }
    return ERR_OK;
}

int jobmap_to_job(jval *tree, job *out, char *reason, size_t cap)
{
    jobmap_rd r = {.reason = reason, .cap = cap, .kind = 0};
    int rc;
    if (tree->type != JVAL_MAP)
        rc = jobmap_want(&r, "message", tree, "map");
    else
        rc = jobmap_fields(&r, "", tree, jobmap_job_fields, JOBMAP_COUNT(jobmap_job_fields), out);
    if (!rc && !jval_map_get(tree, out->kind == JOB_HTTP ? "http" : "cmd"))
        rc = jobmap_bad(&r, "%s: missing", out->kind == JOB_HTTP ? "http" : "cmd");
    if (rc)
        job_fini(out);
    return rc;
}
