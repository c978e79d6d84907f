/* firebatch: expand + encode a batch ahead of time, then hand out publish parameters. */
#include "firebatch.h"

#include "clock.h"
#include "err.h"
#include "jobwire.h"
#include "log.h"
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int firebatch_grow(void **arr, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap)
        return ERR_OK;
    size_t n = *cap ? *cap : 16;
    while (n < want)
        n *= 2;
    void *p = realloc(*arr, n * size);
    if (!p)
        return ERR_NOMEM;
    *arr = p;
    *cap = n;
    return ERR_OK;
}

void firebatch_clear(firebatch *b)
{
    for (size_t i = 0; i < b->nm; i++) {
        free(b->m[i].id);
        free(b->m[i].body);
    }
    b->nm = b->nf = b->unconfirmed = b->skipped = 0;
    b->key_ms = 0;
}

void firebatch_fini(firebatch *b)
{
    if (!b)
        return;
    firebatch_clear(b);
    free(b->f);
    free(b->m);
    memset(b, 0, sizeof *b);
}

/* Build one job into message slot b->m[b->nm]; a job that cannot be built is skipped. */
static int firebatch_job(firebatch *b, const sched_entry *e, int64_t due_s, uint32_t index)
{
    job j;
    job_init(&j);
    firebatch_msg *m = &b->m[b->nm];
    memset(m, 0, sizeof *m);
    int rc = schedfile_expand(e, due_s, index, &j);
    if (rc == ERR_OK)
        rc = jobwire_encode(&j, &m->body, &m->len);
    if (rc == ERR_OK && b->ring)
        rc = sign_compute(b->ring, b->kid, j.id, j.due_ms, m->body, m->len, m->sig);
    if (rc != ERR_OK) {
        free(m->body);
        m->body = NULL;
    }
    if (rc == ERR_OK) {
        m->id = j.id; /* the job's id moves into the message */
        j.id = NULL;
        m->firing = (uint32_t)(b->nf - 1);
        b->nm++;
    } else if (rc != ERR_NOMEM) {
        log_err("job %s: fan-out index %u at %lld cannot be built: %s; not published", e->name,
                index, (long long)due_s, err_str(rc));
        b->skipped++;
        rc = ERR_OK;
    }
    job_fini(&j);
    return rc;
}

static int firebatch_firing_add(firebatch *b, const fireplan *p, const fireplan_firing *pf)
{
    const sched_entry *e = p->ents[pf->entry].e;
    int rc = firebatch_grow((void **)&b->f, &b->capf, b->nf + 1, sizeof *b->f);
    if (rc == ERR_OK)
        rc = firebatch_grow((void **)&b->m, &b->capm, b->nm + e->fan_count, sizeof *b->m);
    if (rc != ERR_OK)
        return rc;
    firebatch_firing *f = &b->f[b->nf++];
    memset(f, 0, sizeof *f);
    f->pf = *pf;
    f->schedule = e->name;
    f->max_lateness_ms = e->max_lateness_ms;
    f->lead_ms = e->lead_ms;
    clock_format_iso(pf->due_s * CLOCK_NS_PER_SEC, 0, f->due_iso, sizeof f->due_iso);
    f->first = (uint32_t)b->nm;
    for (uint32_t k = 0; k < e->fan_count && rc == ERR_OK; k++)
        rc = firebatch_job(b, e, pf->due_s, k);
    f->count = (uint32_t)b->nm - f->first;
    f->unconfirmed = f->count;
    return rc;
}

int firebatch_build(firebatch *b, const fireplan *p, const fireplan_batch *pb)
{
    firebatch_clear(b);
    b->key_ms = pb->key_ms;
    for (size_t i = 0; i < pb->n; i++) {
        int rc = firebatch_firing_add(b, p, &pb->f[i]);
        if (rc != ERR_OK) {
            firebatch_clear(b);
            return rc;
        }
    }
    b->unconfirmed = b->nm;
    return ERR_OK;
}

void firebatch_props(firebatch *b, int64_t now_ms)
{
    for (size_t i = 0; i < b->nf; i++) {
        firebatch_firing *f = &b->f[i];
        f->expiration[0] = '\0';
        if (f->max_lateness_ms > 0) {
            int64_t left = f->pf.due_s * 1000 + f->max_lateness_ms - now_ms;
            if (f->pf.replay)
                left = f->max_lateness_ms + f->lead_ms;
            snprintf(f->expiration, sizeof f->expiration, "%lld", (long long)(left > 0 ? left : 0));
        }
        f->hdrs[0] = (mq_hdr){"x-salvo-job", f->schedule, 0};
        f->hdrs[1] = (mq_hdr){"x-salvo-due", f->due_iso, 0};
        f->hdrs[2] = (mq_hdr){"x-salvo-attempt", NULL, 1};
        f->hdrs[3] = (mq_hdr){SIGN_HDR_DUE, NULL, f->pf.due_s * 1000};
    }
}

void firebatch_amqp(const firebatch *b, size_t i, int64_t now_ms, mq_hdr *hdrs, mq_msg *out)
{
    const firebatch_msg *m = &b->m[i];
    const firebatch_firing *f = &b->f[m->firing];
    size_t nh = FIREBATCH_FIRING_HDRS;
    memcpy(hdrs, f->hdrs, sizeof f->hdrs);
    if (m->sig[0]) {
        hdrs[nh++] = (mq_hdr){SIGN_HDR_KID, b->kid, 0};
        hdrs[nh++] = (mq_hdr){SIGN_HDR_SIG, m->sig, 0};
    }
    memset(out, 0, sizeof *out);
    out->exchange = TOPO_JOBS_EXCHANGE;
    out->routing_key = TOPO_JOBS_KEY;
    out->body = m->body;
    out->len = m->len;
    out->message_id = m->id;
    out->content_type = FIREBATCH_CONTENT_TYPE;
    out->expiration = f->expiration[0] ? f->expiration : NULL;
    out->timestamp_s = now_ms / 1000;
    out->headers = hdrs;
    out->nheaders = nh;
    out->mandatory = true;
    out->persistent = true;
}

bool firebatch_confirm(firebatch *b, size_t i)
{
    firebatch_msg *m = &b->m[i];
    if (m->status == FIREBATCH_CONFIRMED)
        return false;
    m->status = FIREBATCH_CONFIRMED;
    b->unconfirmed--;
    return --b->f[m->firing].unconfirmed == 0;
}
