/* schedfile: a YAML schedule file into validated entries (all errors or none); fire and expand. */
#include "schedfile.h"

#include "err.h"
#include "schedcomp.h"
#include "schedjobs.h"
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

/* One parse of one file. The job list is composed one job at a time into a document of its own
 * (stream), so the whole file is never one tree: libyaml's whole-file document was a fifth of
 * the instructions to load 100,000 jobs and most of its memory (230 MB, a quarter of the time in
 * page faults). */
typedef struct sf_parse {
    schedval_ctx c;
    schedcomp sc;
    scheddoc top; /* the root map; the streamed job list is an empty sequence in it */
    scheddoc job; /* one job of the streamed list at a time */
    int *root;    /* the root map's keys and values so far (owned) */
    size_t nroot;
    size_t root_cap;
    schedjobs js;
    const char *text;
    size_t len;
    bool stream;    /* compose the job list one job at a time */
    bool restart;   /* a defaults map came after a streamed job list: parse again, whole */
    bool jobs_seen; /* the first jobs key was met (only that one is streamed) */
    int streamed;   /* id in top of the streamed job list, 0 when none */
    int defaults;   /* id in top of the first defaults value, 0 when none yet */
    bool defaults_checked;
} sf_parse;

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

static bool sf_scalar_is(const yaml_node_t *n, const char *s)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.length == strlen(s) &&
           memcmp(n->data.scalar.value, s, n->data.scalar.length) == 0;
}

/* The job list when it was composed whole, into top (the file's defaults come after it). */
static void sf_jobs(sf_parse *p, yaml_node_t *defaults, yaml_node_t *jobs)
{
    size_t n = (size_t)(jobs->data.sequence.items.top - jobs->data.sequence.items.start);
    if (n > SCHED_ENTRIES_MAX) {
        schedval_error_at(&p->c, jobs, "jobs: %zu jobs is above the maximum %d", n,
                          SCHED_ENTRIES_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *map = scheddoc_get(&p->top, jobs->data.sequence.items.start[i]);
        if (!schedjobs_add(&p->c, &p->js, &p->top, defaults, &p->top, map))
            return;
    }
}

/* The checks of the root map, once the whole document has been read. */
static void sf_top_check(sf_parse *p, int root_id)
{
    schedval_ctx *c = &p->c;
    yaml_node_t *root = scheddoc_get(&p->top, root_id);
    sf_top top = {NULL, NULL};
    c->doc = &p->top;
    schedval_map(c, root, sf_top_keys, 2, false, &top, "schedule file");
    if (root->type != YAML_MAPPING_NODE)
        return;
    if (top.defaults && !p->defaults_checked)
        schedjobs_defaults(c, top.defaults);
    if (!top.jobs)
        schedval_error_at(c, root, "missing 'jobs' (the list of jobs)");
    else if (p->streamed && top.jobs == scheddoc_get(&p->top, p->streamed))
        ; /* built while it was read */
    else if (top.jobs->type != YAML_SEQUENCE_NODE)
        schedval_error_at(c, top.jobs, "jobs: expected a list, got a %s", schedval_kind(top.jobs));
    else
        sf_jobs(p, top.defaults, top.jobs);
    if (!c->nomem)
        schedjobs_dups(c, &p->js);
}

/* Compose one job into a document of its own, build its entry, and reset the document. */
static bool sf_stream_job(sf_parse *p, yaml_node_t *defaults, size_t n)
{
    int id = 0;
    bool ok = schedcomp_node(&p->sc, &p->job, &id);
    if (ok && n <= SCHED_ENTRIES_MAX)
        ok = schedjobs_add(&p->c, &p->js, &p->top, defaults, &p->job, scheddoc_get(&p->job, id));
    if (ok)
        ok = schedcomp_release(&p->sc, &p->job);
    scheddoc_reset(&p->job);
    return ok;
}

/* The job list, streamed: an empty sequence in top stands for it. */
static bool sf_stream_jobs(sf_parse *p, int *id)
{
    yaml_node_t *defaults = NULL;
    const yaml_event_t *ev = NULL;
    size_t n = 0;
    if (!schedcomp_open(&p->sc, &p->top, id))
        return false;
    p->streamed = *id;
    if (p->defaults) { /* top gets no node while the list is read: the pointer stays valid */
        defaults = scheddoc_get(&p->top, p->defaults);
        p->c.doc = &p->top;
        schedjobs_defaults(&p->c, defaults);
        p->defaults_checked = true;
    }
    while ((ev = schedcomp_peek(&p->sc)) && ev->type != YAML_SEQUENCE_END_EVENT) {
        if (!sf_stream_job(p, defaults, ++n))
            return false;
    }
    if (n > SCHED_ENTRIES_MAX)
        schedval_error_line(&p->c, (int)scheddoc_get(&p->top, *id)->start_mark.line + 1,
                            (int)scheddoc_get(&p->top, *id)->start_mark.column + 1,
                            "jobs: %zu jobs is above the maximum %d", n, SCHED_ENTRIES_MAX);
    return ev && schedcomp_skip(&p->sc);
}

static bool sf_root_push(sf_parse *p, int id)
{
    if (p->nroot == p->root_cap) {
        size_t cap = p->root_cap ? p->root_cap * 2 : 8;
        int *ids = realloc(p->root, cap * sizeof *ids);
        if (!ids) {
            p->c.nomem = true;
            return false;
        }
        p->root = ids;
        p->root_cap = cap;
    }
    p->root[p->nroot++] = id;
    return true;
}

/* One key and its value of the root map. */
static bool sf_root_pair(sf_parse *p)
{
    int key = 0, val = 0;
    if (!schedcomp_node(&p->sc, &p->top, &key))
        return false;
    bool is_jobs = sf_scalar_is(scheddoc_get(&p->top, key), "jobs");
    bool is_defaults = sf_scalar_is(scheddoc_get(&p->top, key), "defaults");
    const yaml_event_t *ev = schedcomp_peek(&p->sc);
    if (is_defaults && p->streamed) {
        p->restart = true; /* the jobs already built lack these defaults */
        return true;
    }
    if (!ev)
        return false;
    bool ok = false;
    if (is_jobs && !p->jobs_seen && p->stream && ev->type == YAML_SEQUENCE_START_EVENT &&
        !ev->data.sequence_start.anchor)
        ok = sf_stream_jobs(p, &val);
    else
        ok = schedcomp_node(&p->sc, &p->top, &val);
    p->jobs_seen |= is_jobs;
    if (ok && is_defaults && !p->defaults)
        p->defaults = val;
    return ok && sf_root_push(p, key) && sf_root_push(p, val);
}

static bool sf_root_map(sf_parse *p, int *root)
{
    const yaml_event_t *ev = NULL;
    if (!schedcomp_open(&p->sc, &p->top, root))
        return false;
    while ((ev = schedcomp_peek(&p->sc)) && ev->type != YAML_MAPPING_END_EVENT) {
        if (!sf_root_pair(p))
            return false;
        if (p->restart)
            return true;
    }
    if (!scheddoc_children(&p->top, *root, p->root, p->nroot)) {
        p->c.nomem = true;
        return false;
    }
    return ev && schedcomp_skip(&p->sc);
}

/* The first document, built and checked. False after a parse or compose error. */
static bool sf_first_doc(sf_parse *p)
{
    const yaml_event_t *ev = schedcomp_peek(&p->sc);
    int root = 0;
    if (!ev || !schedcomp_skip(&p->sc)) /* the stream start */
        return false;
    ev = schedcomp_peek(&p->sc);
    if (ev && ev->type == YAML_STREAM_END_EVENT) {
        schedval_error_line(&p->c, 1, 1, "empty file: expected a map with a 'jobs' list");
        return true;
    }
    if (!ev || !schedcomp_skip(&p->sc)) /* the document start */
        return false;
    ev = schedcomp_peek(&p->sc);
    if (!ev)
        return false;
    bool ok = ev->type == YAML_MAPPING_START_EVENT ? sf_root_map(p, &root)
                                                   : schedcomp_node(&p->sc, &p->top, &root);
    if (!ok || p->restart || !schedcomp_skip(&p->sc)) /* the document end */
        return ok;
    sf_top_check(p, root);
    return true;
}

/* A second document is an error at its root. False after a parse or compose error in it. */
static bool sf_second_doc(sf_parse *p)
{
    const yaml_event_t *ev = schedcomp_peek(&p->sc);
    int root = 0;
    if (!ev || ev->type != YAML_DOCUMENT_START_EVENT)
        return ev != NULL;
    if (!schedcomp_skip(&p->sc))
        return false;
    scheddoc_reset(&p->job);
    bool ok = schedcomp_node(&p->sc, &p->job, &root);
    if (ok) {
        p->c.doc = &p->job;
        schedval_error_at(&p->c, scheddoc_get(&p->job, root), "only one YAML document per file");
    }
    return ok;
}

static void sf_parse_run(sf_parse *p)
{
    if (schedcomp_init(&p->sc, p->text, p->len) != ERR_OK) {
        p->c.nomem = true;
        return;
    }
    if (!sf_first_doc(p)) {
        if (schedcomp_failed(&p->sc))
            schedval_syntax(&p->c, &p->sc.parser, p->text, p->len, true);
    } else if (!p->restart && !p->c.nomem && !sf_second_doc(p) && schedcomp_failed(&p->sc)) {
        schedval_syntax(&p->c, &p->sc.parser, p->text, p->len, false);
    }
    p->c.nomem |= p->sc.nomem;
}

static void sf_parse_fini(sf_parse *p)
{
    scheddoc_fini(&p->top);
    scheddoc_fini(&p->job);
    free(p->root);
    schedcomp_fini(&p->sc);
    schedjobs_fini(&p->js);
    schedval_fini(&p->c);
}

int schedfile_parse(const char *name, const char *text, size_t len, schedfile **out, char **errors)
{
    sf_parse p = {.c = {.name = name}, .text = text, .len = len, .stream = true};
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
    sf_parse_run(&p);
    if (p.restart) { /* rare: defaults after the jobs; read the file again as one document */
        sf_parse_fini(&p);
        p = (sf_parse){.c = {.name = name}, .text = text, .len = len, .stream = false};
        sf_parse_run(&p);
    }
    int rc = p.c.nomem ? ERR_NOMEM : p.c.total ? ERR_SCHEDULE : ERR_OK;
    if (rc != ERR_OK && errors)
        *errors = schedval_render(&p.c);
    if (rc == ERR_OK)
        schedjobs_take(&p.js, sf);
    sf_parse_fini(&p);
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
