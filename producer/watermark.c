/* watermark: read and write a producer group's confirmed instants in the broker (design at the
 * top of watermark.h). */
#include "watermark.h"

#include "err.h"
#include "log.h"
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATERMARK_HDR_BY "x-salvo-producer"

void watermark_init(watermark *w, const char *group, const char *by)
{
    memset(w, 0, sizeof *w);
    snprintf(w->queue, sizeof w->queue, "%s%s", TOPO_WATERMARK_PREFIX, group ? group : "");
    /* Not the bare group: group "lease.x"'s watermark must not route to group x's lease. */
    snprintf(w->key, sizeof w->key, "watermark.%s", group ? group : "");
    w->by = by;
}

int watermark_declare(watermark *w, mq *m, char *err, size_t cap)
{
    if (!mq_is_open(m))
        return ERR_MQ_CLOSED;
    if (w->declared_gen == mq_generation(m))
        return ERR_OK;
    int rc = mq_declare_queue(m, MQ_CH_PUBLISH, w->queue, topo_watermark_args,
                              TOPO_PRODUCER_EXCHANGE, w->key, NULL, err, cap);
    if (rc == ERR_OK)
        w->declared_gen = mq_generation(m);
    return rc;
}

/* Take the body of d and parse it as state text. */
static int watermark_parse(mq_delivery *d, prodstate *st)
{
    size_t bad = 0;
    if (d->len > (size_t)WATERMARK_MAX_BYTES)
        return ERR_PARSE;
    char *body = d->body;
    d->body = NULL;
    int rc = prodstate_decode(body, d->len, st, &bad);
    if (rc == ERR_PARSE)
        log_err("the watermark message is damaged (line %zu; 0: a job named twice); dropping it",
                bad);
    return rc;
}

int watermark_read(watermark *w, mq *m, prodstate *st, char *writer, size_t wcap, int64_t *at_s,
                   char *err, size_t cap)
{
    mq_delivery d;
    memset(st, 0, sizeof *st);
    int rc = mq_get(m, MQ_CH_PUBLISH, w->queue, &d, err, cap);
    if (rc != ERR_OK)
        return rc;
    const char *by = mq_delivery_header(&d, WATERMARK_HDR_BY);
    snprintf(writer, wcap, "%s", by ? by : "unknown");
    *at_s = d.timestamp_s;
    rc = watermark_parse(&d, st);
    /* Put it back for the next takeover; a message that is no watermark is dropped instead,
     * so it cannot block every later reader. */
    int src = mq_reject(m, d.gen, d.channel, d.tag, rc != ERR_PARSE);
    mq_delivery_fini(&d);
    if (src != ERR_OK && rc == ERR_OK) {
        prodstate_fini(st);
        snprintf(err, cap, "basic.reject: connection lost");
        return src;
    }
    return rc;
}

int watermark_write(watermark *w, mq *m, const prodstate_rec *recs, size_t n, int64_t now_s,
                    size_t *bytes)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr(recs[i].name, '\n'))
            return ERR_INVAL;
    }
    size_t len = 0;
    char *body = prodstate_encode(recs, n, &len);
    if (!body)
        return ERR_NOMEM;
    mq_hdr hdr = {WATERMARK_HDR_BY, w->by ? w->by : "salvo-producer", 0};
    mq_msg msg = {.exchange = TOPO_PRODUCER_EXCHANGE,
                  .routing_key = w->key,
                  .body = body,
                  .len = len,
                  .content_type = WATERMARK_CONTENT_TYPE,
                  .timestamp_s = now_s,
                  .headers = &hdr,
                  .nheaders = 1,
                  .persistent = true};
    int rc = mq_publish(m, MQ_CH_PUBLISH, &msg, NULL);
    free(body);
    *bytes = len;
    return rc;
}
