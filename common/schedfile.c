/* schedfile: a YAML schedule file into validated entries (all errors or none); fire and expand. */
#include "schedfile.h"

#include "err.h"
#include "schedkeys.h"
#include "schedval.h"
#include "tmpl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SF_FILE_MAX (64 * 1024 * 1024) /* SCHED_ENTRIES_MAX entries of ~300 bytes, with room */

void schedfile_free(schedfile *sf)
{
    if (!sf)
        return;
    for (size_t i = 0; i < sf->n; i++)
        schedkeys_entry_fini(&sf->entries[i]);
    free(sf->entries);
    free(sf->path);
    free(sf);
}

/* ---- digest: FNV-1a 64 over a length-prefixed, type-tagged serialization ----------------- */

static void sf_h_bytes(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ULL;
    }
}

static void sf_h_u64(uint64_t *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    sf_h_bytes(h, b, sizeof b);
}

static void sf_h_str(uint64_t *h, const char *s, size_t n)
{
    sf_h_u64(h, s ? n : UINT64_MAX); /* NULL differs from "" */
    if (s)
        sf_h_bytes(h, s, n);
}

static void sf_h_jval(uint64_t *h, const jval *v)
{
    uint64_t bits = 0;
    sf_h_u64(h, (uint64_t)v->type);
    switch (v->type) {
    case JVAL_BOOL:
        sf_h_u64(h, v->u.b);
        break;
    case JVAL_INT:
        sf_h_u64(h, (uint64_t)v->u.i);
        break;
    case JVAL_FLOAT:
        memcpy(&bits, &v->u.f, sizeof bits);
        sf_h_u64(h, bits);
        break;
    case JVAL_STR:
        sf_h_str(h, v->u.s.ptr, v->u.s.len);
        break;
    case JVAL_ARRAY:
        sf_h_u64(h, v->u.arr.n);
        for (size_t i = 0; i < v->u.arr.n; i++)
            sf_h_jval(h, &v->u.arr.items[i]);
        break;
    case JVAL_MAP:
        sf_h_u64(h, v->u.map.n);
        for (size_t i = 0; i < v->u.map.n; i++) {
            sf_h_str(h, v->u.map.kv[i].key, strlen(v->u.map.kv[i].key));
            sf_h_jval(h, &v->u.map.kv[i].val);
        }
        break;
    default:
        break;
    }
}

static void sf_h_http(uint64_t *h, const job_http *x)
{
    sf_h_str(h, x->method, x->method ? strlen(x->method) : 0);
    sf_h_str(h, x->url, x->url ? strlen(x->url) : 0);
    sf_h_u64(h, x->nheaders);
    for (size_t i = 0; i < x->nheaders; i++) {
        sf_h_str(h, x->headers[i].name, strlen(x->headers[i].name));
        sf_h_str(h, x->headers[i].value, strlen(x->headers[i].value));
    }
    sf_h_str(h, x->body, x->body_len);
    sf_h_u64(h, x->connect_timeout_ms);
    sf_h_u64(h, x->timeout_ms);
    sf_h_u64(h, x->nok_status);
    for (size_t i = 0; i < x->nok_status; i++)
        sf_h_u64(h, x->ok_status[i]);
    sf_h_u64(h, x->follow_redirects);
}

static uint64_t sf_digest(const sched_entry *e)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const cronexpr *ce = &e->cron;
    sf_h_u64(&h, (uint64_t)e->kind);
    sf_h_u64(&h, ce->sec);
    sf_h_u64(&h, ce->min);
    sf_h_u64(&h, ce->hour);
    sf_h_u64(&h, ce->dom);
    sf_h_u64(&h, ce->month);
    sf_h_u64(&h, ce->dow);
    sf_h_u64(&h, (uint64_t)ce->dom_star << 1 | ce->dow_star);
    sf_h_u64(&h, (uint64_t)ce->every_s);
    sf_h_u64(&h, (uint64_t)e->at_s);
    sf_h_str(&h, e->tz_name, e->tz_name ? strlen(e->tz_name) : 0);
    sf_h_http(&h, &e->http);
    sf_h_jval(&h, &e->context);
    sf_h_u64(&h, e->fan_count);
    sf_h_u64(&h, e->fan_items != NULL);
    for (size_t i = 0; e->fan_items && i < e->fan_count; i++)
        sf_h_str(&h, e->fan_items[i], e->fan_items[i] ? strlen(e->fan_items[i]) : 0);
    sf_h_u64(&h, (uint64_t)e->misfire);
    sf_h_u64(&h, e->misfire_max);
    sf_h_u64(&h, (uint64_t)e->max_lateness_ms);
    sf_h_u64(&h, e->max_attempts);
    sf_h_u64(&h, (uint64_t)e->lead_ms);
    return h;
}

/* ---- firing and expansion ----------------------------------------------------------------- */

int schedfile_next(const sched_entry *e, int64_t after, int64_t *next)
{
    if (e->kind == SCHED_AT) {
        if (e->at_s <= after)
            return ERR_NOTFOUND;
        *next = e->at_s;
        return ERR_OK;
    }
    return cronexpr_next(&e->cron, e->tz, after, next);
}

/* What {{item}} and {{index}} stand for in one firing. */
typedef struct sf_item {
    const char *item;
    size_t item_len;
    char index[16];
    size_t index_len;
} sf_item;

static int sf_lookup(void *ud, const char *name, const char **val, size_t *len)
{
    const sf_item *it = ud;
    if (strcmp(name, "item") == 0) {
        *val = it->item;
        *len = it->item_len;
        return 1;
    }
    if (strcmp(name, "index") == 0) {
        *val = it->index;
        *len = it->index_len;
        return 1;
    }
    return 0; /* {{context.x}} and the rest are the worker's */
}

static int sf_render(sf_item *it, const char *s, size_t len, size_t max, char **out,
                     size_t *out_len)
{
    return tmpl_render(s, len, sf_lookup, it, max, out, out_len);
}

static int sf_expand_headers(const job_http *src, sf_item *it, job_http *dst)
{
    if (src->nheaders == 0)
        return ERR_OK;
    dst->headers = calloc(src->nheaders, sizeof *dst->headers);
    if (!dst->headers)
        return ERR_NOMEM;
    for (size_t i = 0; i < src->nheaders; i++) {
        const job_kv *kv = &src->headers[i];
        dst->nheaders++;
        dst->headers[i].name = strdup(kv->name);
        if (!dst->headers[i].name)
            return ERR_NOMEM;
        int rc = sf_render(it, kv->value, strlen(kv->value), JOB_HEADER_MAX, &dst->headers[i].value,
                           NULL);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static int sf_expand_http(const job_http *src, sf_item *it, job_http *dst)
{
    dst->connect_timeout_ms = src->connect_timeout_ms;
    dst->timeout_ms = src->timeout_ms;
    dst->follow_redirects = src->follow_redirects;
    dst->method = strdup(src->method ? src->method : "GET");
    if (!dst->method)
        return ERR_NOMEM;
    int rc = sf_render(it, src->url ? src->url : "", src->url ? strlen(src->url) : 0, JOB_URL_MAX,
                       &dst->url, NULL);
    if (rc == ERR_OK)
        rc = sf_expand_headers(src, it, dst);
    if (rc == ERR_OK && src->body)
        rc = sf_render(it, src->body, src->body_len, JOB_BODY_MAX, &dst->body, &dst->body_len);
    if (rc == ERR_OK && src->nok_status) {
        dst->ok_status = malloc(src->nok_status * sizeof *dst->ok_status);
        if (!dst->ok_status)
            return ERR_NOMEM;
        memcpy(dst->ok_status, src->ok_status, src->nok_status * sizeof *dst->ok_status);
        dst->nok_status = src->nok_status;
    }
    return rc;
}

/* Substitute item/index into every string of v, in place. */
static int sf_expand_jval(jval *v, sf_item *it)
{
    int rc = ERR_OK;
    if (v->type == JVAL_STR) {
        char *s = NULL;
        size_t n = 0;
        rc = sf_render(it, v->u.s.ptr, v->u.s.len, JOB_BODY_MAX, &s, &n);
        if (rc == ERR_OK) {
            jval_fini(v); /* the constructors overwrite without freeing */
            rc = jval_set_str(v, s, n);
        }
        free(s);
    } else if (v->type == JVAL_ARRAY) {
        for (size_t i = 0; rc == ERR_OK && i < v->u.arr.n; i++)
            rc = sf_expand_jval(&v->u.arr.items[i], it);
    } else if (v->type == JVAL_MAP) {
        for (size_t i = 0; rc == ERR_OK && i < v->u.map.n; i++)
            rc = sf_expand_jval(&v->u.map.kv[i].val, it);
    }
    return rc;
}

static int sf_expand_ids(const sched_entry *e, int64_t due_s, uint32_t index, job *out)
{
    char id[JOB_ID_MAX + 1];
    int rc = job_format_id(e->name, due_s * 1000, index, id, sizeof id);
    if (rc != ERR_OK)
        return rc;
    out->id = strdup(id);
    out->schedule = strdup(e->name);
    if (!out->id || !out->schedule)
        return ERR_NOMEM;
    out->index = index;
    out->due_ms = due_s * 1000;
    out->attempt = 1;
    out->max_attempts = e->max_attempts;
    out->max_lateness_ms = e->max_lateness_ms;
    out->kind = JOB_HTTP;
    return ERR_OK;
}

int schedfile_expand(const sched_entry *e, int64_t due_s, uint32_t index, job *out)
{
    if (index >= e->fan_count || !e->name)
        return ERR_RANGE;
    sf_item it = {0};
    it.index_len = (size_t)snprintf(it.index, sizeof it.index, "%u", index);
    it.item = e->fan_items ? e->fan_items[index] : it.index;
    it.item_len = e->fan_items ? strlen(e->fan_items[index]) : it.index_len;
    int rc = sf_expand_ids(e, due_s, index, out);
    if (rc == ERR_OK)
        rc = sf_expand_http(&e->http, &it, &out->http);
    if (rc == ERR_OK) {
        jval_fini(&out->context);
        rc = jval_clone(&out->context, &e->context);
    }
    if (rc == ERR_OK)
        rc = sf_expand_jval(&out->context, &it);
    if (rc != ERR_OK)
        job_fini(out);
    return rc;
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void sf_job_sample(schedval_ctx *c, const sched_entry *e, const yaml_node_t *map)
{
    /* The longest fan-out item is the one that could push a field past a limit. */
    uint32_t idx = e->fan_count - 1;
    for (uint32_t i = 0; e->fan_items && i < e->fan_count; i++) {
        if (strlen(e->fan_items[i]) > strlen(e->fan_items[idx]))
            idx = i;
    }
    job j;
    char why[256];
    job_init(&j);
    int rc = schedfile_expand(e, 0, idx, &j);
    if (rc == ERR_NOMEM)
        c->nomem = true;
    else if (rc != ERR_OK)
        schedval_error_at(c, map, "job '%s': fan-out item %u makes a field too long", e->name, idx);
    else if (job_validate(&j, why, sizeof why) != ERR_OK)
        schedval_error_at(c, map, "job '%s': %s", e->name, why);
    job_fini(&j);
}

/* Checks that need the whole job, then the settings nothing in the file gave. */
static void sf_job_finish(schedval_ctx *c, schedkeys_job *j, const yaml_node_t *map,
                          size_t errors_before)
{
    sched_entry *e = j->e;
    const char *name = e->name ? e->name : "?";
    char why[256];
    if (!j->name_node)
        schedval_error_at(c, map, "job has no name");
    if (!j->kind_key)
        schedval_error_at(c, map, "job '%s': needs one of cron, every or at", name);
    if (!j->has_url)
        schedval_error_at(c, map, "job '%s': needs http.url", name);
    if (c->total != errors_before)
        return;
    if (!e->http.method)
        e->http.method = strdup("GET");
    if (!e->tz_name)
        e->tz_name = strdup("UTC");
    if (!e->http.method || !e->tz_name) {
        c->nomem = true;
        return;
    }
    if (!e->tz && tzone_load(e->tz_name, &e->tz, why, sizeof why) != ERR_OK) {
        schedval_error_at(c, map, "job '%s': time zone UTC: %s", name, why);
        return;
    }
    sf_job_sample(c, e, map);
    e->digest = sf_digest(e);
}

static void sf_job(schedval_ctx *c, sched_entry *e, yaml_node_t *defaults, yaml_node_t *map,
                   const yaml_node_t **name_node)
{
    schedkeys_job j = {.e = e};
    size_t before = c->total;
    e->line = (int)map->start_mark.line + 1;
    if (map->type != YAML_MAPPING_NODE) {
        schedval_error_at(c, map, "job: expected a map, got a %s", schedval_kind(map));
        return;
    }
    if (defaults) { /* already checked once on their own; stay quiet on each job */
        c->mute = true;
        schedkeys_job_apply(c, &j, defaults, true);
        c->mute = false;
    }
    schedkeys_job_apply(c, &j, map, false);
    *name_node = j.name_node;
    sf_job_finish(c, &j, map, before);
}

typedef struct sf_named {
    const char *name;
    size_t i;
} sf_named;

static int sf_named_cmp(const void *a, const void *b)
{
    const sf_named *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r)
        return r;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorting finds duplicates in n log n: a file may hold SCHED_ENTRIES_MAX jobs. */
static void sf_dups(schedval_ctx *c, const schedfile *sf, const yaml_node_t **name_nodes)
{
    sf_named *v = malloc((sf->n ? sf->n : 1) * sizeof *v);
    size_t n = 0, first = 0;
    if (!v) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < sf->n; i++) {
        if (sf->entries[i].name)
            v[n++] = (sf_named){sf->entries[i].name, i};
    }
    qsort(v, n, sizeof *v, sf_named_cmp);
    for (size_t k = 1; k < n; k++) {
        if (strcmp(v[k].name, v[first].name) != 0) {
            first = k;
            continue;
        }
        schedval_error_at(c, name_nodes[v[k].i], "duplicate job name '%s' (first at line %d)",
                          v[k].name, (int)name_nodes[v[first].i]->start_mark.line + 1);
    }
    free(v);
}

typedef struct sf_top {
    yaml_node_t *defaults;
    yaml_node_t *jobs;
} sf_top;

static void sf_top_defaults(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    (void)c;
    (void)key;
    ((sf_top *)ud)->defaults = val;
}

static void sf_top_jobs(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val)
{
    (void)c;
    (void)key;
    ((sf_top *)ud)->jobs = val;
}

static const schedval_key sf_top_keys[] = {
    {"defaults", sf_top_defaults, false, NULL},
    {"jobs", sf_top_jobs, false, NULL},
};

/* Check defaults once on their own, so their errors are reported once, not once per job. */
static void sf_defaults(schedval_ctx *c, yaml_node_t *defaults)
{
    sched_entry scratch;
    schedkeys_job j = {.e = &scratch};
    schedkeys_entry_init(&scratch);
    if (defaults->type == YAML_MAPPING_NODE)
        schedkeys_job_apply(c, &j, defaults, true);
    else
        schedval_error_at(c, defaults, "defaults: expected a map, got a %s",
                          schedval_kind(defaults));
    schedkeys_entry_fini(&scratch);
}

static void sf_jobs(schedval_ctx *c, schedfile *sf, yaml_node_t *defaults, yaml_node_t *jobs)
{
    size_t n = (size_t)(jobs->data.sequence.items.top - jobs->data.sequence.items.start);
    if (n > SCHED_ENTRIES_MAX) {
        schedval_error_at(c, jobs, "jobs: %zu jobs is above the maximum %d", n, SCHED_ENTRIES_MAX);
        return;
    }
    const yaml_node_t **names = calloc(n ? n : 1, sizeof *names);
    sf->entries = calloc(n ? n : 1, sizeof *sf->entries);
    if (!names || !sf->entries) {
        free(names);
        c->nomem = true;
        return;
    }
    sf->n = n;
    for (size_t i = 0; i < n; i++)
        schedkeys_entry_init(&sf->entries[i]);
    for (size_t i = 0; i < n && !c->nomem; i++) {
        yaml_node_t *map = yaml_document_get_node(&c->doc, jobs->data.sequence.items.start[i]);
        sf_job(c, &sf->entries[i], defaults, map, &names[i]);
    }
    if (!c->nomem)
        sf_dups(c, sf, names);
    free(names);
}

static void sf_build(schedval_ctx *c, schedfile *sf)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    sf_top top = {NULL, NULL};
    if (!root) {
        schedval_error_line(c, 1, 1, "empty file: expected a map with a 'jobs' list");
        return;
    }
    schedval_map(c, root, sf_top_keys, 2, false, &top, "schedule file");
    if (root->type != YAML_MAPPING_NODE)
        return;
    if (top.defaults)
        sf_defaults(c, top.defaults);
    if (!top.jobs)
        schedval_error_at(c, root, "missing 'jobs' (the list of jobs)");
    else if (top.jobs->type != YAML_SEQUENCE_NODE)
        schedval_error_at(c, top.jobs, "jobs: expected a list, got a %s", schedval_kind(top.jobs));
    else
        sf_jobs(c, sf, top.defaults, top.jobs);
}

int schedfile_parse(const char *name, const char *text, size_t len, schedfile **out, char **errors)
{
    schedval_ctx c = {.name = name};
    schedfile *sf = calloc(1, sizeof *sf);
    *out = NULL;
    if (errors)
        *errors = NULL;
    if (sf)
        sf->path = strdup(name);
    if (!sf || !sf->path) {
        free(sf);
        return ERR_NOMEM;
    }
    bool loaded = schedval_load(&c, text, len);
    if (loaded)
        sf_build(&c, sf);
    int rc = c.nomem ? ERR_NOMEM : c.total ? ERR_SCHEDULE : ERR_OK;
    if (rc != ERR_OK && errors)
        *errors = schedval_render(&c);
    schedval_fini(&c, loaded);
    if (rc != ERR_OK)
        schedfile_free(sf);
    else
        *out = sf;
    return rc;
}

/* Read a whole regular file of at most SF_FILE_MAX bytes into a malloc'd buffer. */
static int sf_read(const char *path, char **buf, size_t *len, char *why, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    ssize_t got = 0;
    *buf = NULL;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode) || st.st_size > SF_FILE_MAX) {
        snprintf(why, cap, "%s", S_ISREG(st.st_mode) ? "larger than 64 MiB" : "not a regular file");
        close(fd);
        return ERR_SCHEDULE;
    }
    *buf = malloc((size_t)st.st_size + 1);
    if (!*buf) {
        close(fd);
        snprintf(why, cap, "out of memory");
        return ERR_NOMEM;
    }
    for (*len = 0; *len < (size_t)st.st_size; *len += (size_t)got) {
        got = read(fd, *buf + *len, (size_t)st.st_size - *len);
        if (got < 0 && errno == EINTR)
            got = 0;
        else if (got <= 0)
            break;
    }
    if (got < 0)
        goto fail;
    close(fd);
    return ERR_OK;
fail:
    if (strerror_r(errno, why, cap) != 0)
        snprintf(why, cap, "error %d", errno);
    if (fd >= 0)
        close(fd);
    free(*buf);
    *buf = NULL;
    return ERR_IO;
}

int schedfile_load(const char *path, schedfile **out, char **errors)
{
    char *text = NULL;
    size_t len = 0;
    char why[256];
    *out = NULL;
    if (errors)
        *errors = NULL;
    int rc = sf_read(path, &text, &len, why, sizeof why);
    if (rc != ERR_OK) {
        size_t cap = strlen(path) + strlen(why) + 32;
        char *msg = errors ? malloc(cap) : NULL;
        if (msg) {
            snprintf(msg, cap, "%s: cannot read: %s\n", path, why);
            *errors = msg;
        }
        return rc;
    }
    rc = schedfile_parse(path, text, len, out, errors);
    free(text);
    return rc;
}
