/* rawmsg: build one firing's messages from a schedule entry, as the producer's firebatch does. */
#include "rawmsg.h"

#include "clock.h"
#include "err.h"
#include "job.h"
#include "jobwire.h"
#include "schedfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sched_entry *rawmsg_entry(const schedfile *sf, const char *name)
{
    if (!name)
        return sf->n ? &sf->entries[0] : NULL;
    for (size_t i = 0; i < sf->n; i++) {
        if (strcmp(sf->entries[i].name, name) == 0)
            return &sf->entries[i];
    }
    return NULL;
}

/* The instant whose id and x-salvo-due the messages carry: only their length matters to the
 * broker, but a real instant keeps them byte-for-byte what the producer would send. */
static int rawmsg_due(const sched_entry *e, int64_t *due_s)
{
    if (e->kind == SCHED_AT) {
        *due_s = e->at_s;
        return ERR_OK;
    }
    return schedfile_next(e, clock_real_ns() / CLOCK_NS_PER_SEC, due_s);
}

static int rawmsg_one(const sched_entry *e, int64_t due_s, uint32_t index, rawmsg *m)
{
    job j;
    job_init(&j);
    int rc = schedfile_expand(e, due_s, index, &j);
    if (rc == ERR_OK)
        rc = jobwire_encode(&j, &m->body, &m->len);
    if (rc == ERR_OK) {
        m->id = j.id; /* the job's id moves into the message */
        j.id = NULL;
    }
    job_fini(&j);
    return rc;
}

static int rawmsg_fill(const sched_entry *e, size_t count, const sign_ring *ring, rawmsg_set *out,
                       char *err, size_t cap)
{
    int64_t due_s = 0;
    int rc = rawmsg_due(e, &due_s);
    if (rc != ERR_OK) {
        snprintf(err, cap, "entry %s has no next instant", e->name);
        return rc;
    }
    size_t n = count > 0 && count < e->fan_count ? count : e->fan_count;
    out->m = calloc(n, sizeof *out->m);
    if (!out->m)
        return ERR_NOMEM;
    snprintf(out->schedule, sizeof out->schedule, "%s", e->name);
    clock_format_iso(due_s * CLOCK_NS_PER_SEC, 0, out->due_iso, sizeof out->due_iso);
    out->max_lateness_ms = e->max_lateness_ms;
    out->due_ms = due_s * 1000;
    for (size_t i = 0; i < n; i++) {
        rawmsg *m = &out->m[i];
        rc = rawmsg_one(e, due_s, (uint32_t)i, m);
        if (rc == ERR_OK && ring)
            rc = sign_compute(ring, out->kid, m->id, out->due_ms, m->body, m->len, m->sig);
        if (rc != ERR_OK) {
            snprintf(err, cap, "entry %s, index %zu: %s", e->name, i, err_str(rc));
            return rc;
        }
        out->n++;
        out->bytes += out->m[i].len;
    }
    return ERR_OK;
}

int rawmsg_build(const char *path, const char *entry, size_t count, rawmsg_set *out, char *err,
                 size_t cap)
{
    schedfile *sf = NULL;
    sign_ring *ring = NULL;
    char *errors = NULL;
    memset(out, 0, sizeof *out);
    int rc = sign_ring_from_env(&ring, err, cap);
    if (rc != ERR_OK && rc != ERR_NOTFOUND)
        goto fail;
    rc = schedfile_load(path, &sf, &errors);
    if (rc != ERR_OK) {
        snprintf(err, cap, "%s", errors ? errors : err_str(rc));
        goto fail;
    }
    const sched_entry *e = rawmsg_entry(sf, entry);
    if (!e) {
        snprintf(err, cap, "%s: no entry %s", path, entry ? entry : "at all");
        rc = ERR_NOTFOUND;
        goto fail;
    }
    rc = rawmsg_fill(e, count, ring, out, err, cap);
    if (rc != ERR_OK)
        goto fail;
    schedfile_free(sf);
    sign_ring_free(ring);
    return ERR_OK;
fail:
    rawmsg_fini(out);
    schedfile_free(sf);
    sign_ring_free(ring);
    free(errors);
    return rc;
}

void rawmsg_fini(rawmsg_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->m[i].id);
        free(s->m[i].body);
    }
    free(s->m);
    s->m = NULL;
    s->n = 0;
    s->bytes = 0;
}
