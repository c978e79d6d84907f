/* schedjobs: job maps into schedule entries, one at a time; defaults; duplicate names. */
#include "schedjobs.h"

#include "err.h"
#include "scheddigest.h"
#include "schedkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when s (len bytes) renders to itself within max: no placeholder, not too long. */
static bool sj_plain_str(const char *s, size_t len, size_t max)
{
    if (len > max)
        return false;
    for (const char *p = s ? memchr(s, '{', len) : NULL; p;
         p = memchr(p + 1, '{', len - (size_t)(p + 1 - s))) {
        if ((size_t)(p + 1 - s) < len && p[1] == '{')
            return false;
    }
    return true;
}

static bool sj_plain_jval(const jval *v)
{
    if (v->type == JVAL_STR)
        return sj_plain_str(v->u.s.ptr, v->u.s.len, JOB_BODY_MAX);
    for (size_t i = 0; v->type == JVAL_ARRAY && i < v->u.arr.n; i++) {
        if (!sj_plain_jval(&v->u.arr.items[i]))
            return false;
    }
    for (size_t i = 0; v->type == JVAL_MAP && i < v->u.map.n; i++) {
        if (!sj_plain_jval(&v->u.map.kv[i].val))
            return false;
    }
    return true;
}

/* True when expanding e for a firing would copy every field unchanged (schedfile_expand). */
static bool sj_plain(const sched_entry *e)
{
    const job_http *h = &e->http;
    if (!h->url || !sj_plain_str(h->url, strlen(h->url), JOB_URL_MAX) ||
        !sj_plain_str(h->body, h->body_len, JOB_BODY_MAX))
        return false;
    for (size_t i = 0; i < h->nheaders; i++) {
        const char *v = h->headers[i].value;
        if (!sj_plain_str(v, strlen(v), JOB_HEADER_MAX))
            return false;
    }
    return sj_plain_jval(&e->context);
}

/* Validate the job firing idx of a plain entry would be, borrowing the entry's fields instead of
 * expanding copies of them: the copies were a third of the time to load 100,000 entries. */
static bool sj_plain_valid(const sched_entry *e, uint32_t idx, char *why, size_t cap, int *rc)
{
    char id[JOB_ID_MAX + 1];
    if (job_format_id(e->name, 0, idx, id, sizeof id) != ERR_OK)
        return false; /* schedfile_expand says what is wrong */
    job j;
    job_init(&j);
    j.id = id;
    j.schedule = e->name;
    j.index = idx;
    j.attempt = 1;
    j.max_attempts = e->max_attempts;
    j.max_lateness_ms = e->max_lateness_ms;
    j.kind = JOB_HTTP;
    j.http = e->http;
    j.context = e->context;
    *rc = job_validate(&j, why, cap); /* j borrows everything: no job_fini */
    return true;
}

static void sj_job_sample(schedval_ctx *c, const sched_entry *e, const yaml_node_t *map)
{
    /* The longest fan-out item is the one that could push a field past a limit. */
    uint32_t idx = e->fan_count - 1;
    for (uint32_t i = 0; e->fan_items && i < e->fan_count; i++) {
        if (strlen(e->fan_items[i]) > strlen(e->fan_items[idx]))
            idx = i;
    }
    job j;
    char why[256];
    int rc = ERR_OK;
    if (sj_plain(e) && sj_plain_valid(e, idx, why, sizeof why, &rc)) {
        if (rc != ERR_OK)
            schedval_error_at(c, map, "job '%s': %s", e->name, why);
        return;
    }
    job_init(&j);
    rc = schedfile_expand(e, 0, idx, &j);
    if (rc == ERR_NOMEM)
        c->nomem = true;
    else if (rc != ERR_OK)
        schedval_error_at(c, map, "job '%s': fan-out item %u makes a field too long", e->name, idx);
    else if (job_validate(&j, why, sizeof why) != ERR_OK)
        schedval_error_at(c, map, "job '%s': %s", e->name, why);
    job_fini(&j);
}

/* Checks that need the whole job, then the settings nothing in the file gave. */
static void sj_job_finish(schedval_ctx *c, schedkeys_job *j, const yaml_node_t *map,
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
    sj_job_sample(c, e, map);
    e->digest = scheddigest_entry(e);
}

static void sj_job(schedval_ctx *c, sched_entry *e, scheddoc *ddoc, yaml_node_t *defaults,
                   scheddoc *jdoc, yaml_node_t *map, schedjobs_pos *name)
{
    schedkeys_job j = {.e = e};
    size_t before = c->total;
    c->doc = jdoc;
    e->line = (int)map->start_mark.line + 1;
    if (map->type != YAML_MAPPING_NODE) {
        schedval_error_at(c, map, "job: expected a map, got a %s", schedval_kind(map));
        return;
    }
    if (defaults) { /* already checked once on their own; stay quiet on each job */
        c->doc = ddoc;
        c->mute = true;
        schedkeys_job_apply(c, &j, defaults, true);
        c->mute = false;
        c->doc = jdoc;
    }
    schedkeys_job_apply(c, &j, map, false);
    if (j.name_node)
        *name = (schedjobs_pos){(int)j.name_node->start_mark.line + 1,
                                (int)j.name_node->start_mark.column + 1};
    sj_job_finish(c, &j, map, before);
}

bool schedjobs_add(schedval_ctx *c, schedjobs *js, scheddoc *ddoc, yaml_node_t *defaults,
                   scheddoc *jdoc, yaml_node_t *map)
{
    if (js->n == js->cap) {
        /* Entries hold no pointers into the array, so it may move as it grows. */
        size_t cap = js->cap ? js->cap * 2 : 64;
        sched_entry *e = realloc(js->entries, cap * sizeof *e);
        if (e)
            js->entries = e;
        schedjobs_pos *p = e ? realloc(js->names, cap * sizeof *p) : NULL;
        if (!p) {
            c->nomem = true;
            return false;
        }
        js->names = p;
        js->cap = cap;
    }
    sched_entry *e = &js->entries[js->n];
    schedkeys_entry_init(e);
    js->names[js->n++] = (schedjobs_pos){0, 0};
    sj_job(c, e, ddoc, defaults, jdoc, map, &js->names[js->n - 1]);
    return !c->nomem;
}

typedef struct sj_named {
    const char *name;
    size_t i;
} sj_named;

static int sj_named_cmp(const void *a, const void *b)
{
    const sj_named *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r)
        return r;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorting finds duplicates in n log n: a file may hold SCHED_ENTRIES_MAX jobs. */
void schedjobs_dups(schedval_ctx *c, const schedjobs *js)
{
    sj_named *v = malloc((js->n ? js->n : 1) * sizeof *v);
    size_t n = 0, first = 0;
    if (!v) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < js->n; i++) {
        if (js->entries[i].name && js->names[i].line)
            v[n++] = (sj_named){js->entries[i].name, i};
    }
    qsort(v, n, sizeof *v, sj_named_cmp);
    for (size_t k = 1; k < n; k++) {
        if (strcmp(v[k].name, v[first].name) != 0) {
            first = k;
            continue;
        }
        const schedjobs_pos *at = &js->names[v[k].i];
        schedval_error_line(c, at->line, at->col, "duplicate job name '%s' (first at line %d)",
                            v[k].name, js->names[v[first].i].line);
    }
    free(v);
}

void schedjobs_defaults(schedval_ctx *c, yaml_node_t *defaults)
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

void schedjobs_take(schedjobs *js, schedfile *sf)
{
    sf->entries = js->entries;
    sf->n = js->n;
    free(js->names);
    memset(js, 0, sizeof *js);
}

void schedjobs_fini(schedjobs *js)
{
    for (size_t i = 0; i < js->n; i++)
        schedkeys_entry_fini(&js->entries[i]);
    free(js->entries);
    free(js->names);
    memset(js, 0, sizeof *js);
}
