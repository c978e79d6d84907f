/* topology: the table of exchanges, queues and bindings salvo declares, and its JSON form for
 * RabbitMQ definitions files. */
#include "topology.h"

#include "strbuf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Retry backoff ladder: short first (a blip), then long enough for a target to recover. */
const int64_t topo_retry_delay_ms[TOPO_RETRY_LEVELS] = {1000, 5000, 30000, 120000, 600000};

/* Quorum queues: replicated on every cluster member, so a broker node loss loses no job.
 * at-least-once dead-lettering needs reject-publish overflow (RabbitMQ 3.10 rule). */
#define QUORUM_ARGS                                                                                \
    {"x-queue-type", TOPO_ARG_STR, "quorum", 0},                                                   \
    {                                                                                              \
        "x-overflow", TOPO_ARG_STR, "reject-publish", 0                                            \
    }

static const topo_exchange topo_exchanges[] = {
    {TOPO_JOBS_EXCHANGE, "direct", {{0}}},     {TOPO_DEAD_EXCHANGE, "direct", {{0}}},
    {TOPO_RETRY_EXCHANGE, "direct", {{0}}},    {TOPO_RESULTS_EXCHANGE, "fanout", {{0}}},
    {TOPO_PRODUCER_EXCHANGE, "direct", {{0}}},
};

/* A last-value queue: each new watermark pushes the previous one out (drop-head), and the
 * quorum type keeps it through the loss of a cluster node like every job. */
const topo_arg topo_watermark_args[TOPO_ARGS_MAX] = {
    {"x-queue-type", TOPO_ARG_STR, "quorum", 0},
    {"x-max-length", TOPO_ARG_INT, NULL, 1},
    {"x-overflow", TOPO_ARG_STR, "drop-head", 0},
};

/* The broker delivers to one consumer at a time and moves on to the next when that consumer's
 * channel ends: the lease token goes to whoever is active. */
const topo_arg topo_lease_args[TOPO_ARGS_MAX] = {
    {"x-queue-type", TOPO_ARG_STR, "quorum", 0},
    {"x-single-active-consumer", TOPO_ARG_BOOL, NULL, 1},
};

static topology topo_table;
static pthread_once_t topo_once = PTHREAD_ONCE_INIT;

static topo_queue *topo_add_queue(const char *name)
{
    topo_queue *q = &topo_table.queues[topo_table.nqueues++];
    snprintf(q->name, sizeof q->name, "%s", name);
    return q;
}

static topo_binding *topo_bind(const char *src, const char *dest, const char *key)
{
    topo_binding *b = &topo_table.bindings[topo_table.nbindings++];
    b->source = src;
    snprintf(b->dest, sizeof b->dest, "%s", dest);
    snprintf(b->key, sizeof b->key, "%s", key);
    return b;
}

static void topo_build(void)
{
    topology *t = &topo_table;
    t->exchanges = topo_exchanges;
    t->nexchanges = sizeof topo_exchanges / sizeof topo_exchanges[0];

    topo_queue *jobs = topo_add_queue(TOPO_JOBS_QUEUE);
    const topo_arg jobs_args[] = {QUORUM_ARGS,
                                  {"x-delivery-limit", TOPO_ARG_INT, NULL, TOPO_DELIVERY_LIMIT},
                                  {"x-dead-letter-exchange", TOPO_ARG_STR, TOPO_DEAD_EXCHANGE, 0},
                                  {"x-dead-letter-routing-key", TOPO_ARG_STR, TOPO_MISSED_KEY, 0},
                                  {"x-dead-letter-strategy", TOPO_ARG_STR, "at-least-once", 0}};
    memcpy(jobs->args, jobs_args, sizeof jobs_args);
    topo_bind(TOPO_JOBS_EXCHANGE, TOPO_JOBS_QUEUE, TOPO_JOBS_KEY);

    const topo_arg plain_quorum[] = {QUORUM_ARGS};
    memcpy(topo_add_queue(TOPO_DEAD_QUEUE)->args, plain_quorum, sizeof plain_quorum);
    memcpy(topo_add_queue(TOPO_MISSED_QUEUE)->args, plain_quorum, sizeof plain_quorum);
    topo_bind(TOPO_DEAD_EXCHANGE, TOPO_DEAD_QUEUE, TOPO_DEAD_KEY);
    topo_bind(TOPO_DEAD_EXCHANGE, TOPO_MISSED_QUEUE, TOPO_MISSED_KEY);

    for (int lvl = 1; lvl <= TOPO_RETRY_LEVELS; lvl++) {
        char name[64], key[16];
        snprintf(name, sizeof name, "salvo.retry.%d", lvl);
        snprintf(key, sizeof key, "r%d", lvl);
        topo_queue *q = topo_add_queue(name);
        const topo_arg retry_args[] = {
            QUORUM_ARGS,
            {"x-message-ttl", TOPO_ARG_INT, NULL, topo_retry_delay_ms[lvl - 1]},
            {"x-dead-letter-exchange", TOPO_ARG_STR, TOPO_JOBS_EXCHANGE, 0},
            {"x-dead-letter-routing-key", TOPO_ARG_STR, TOPO_JOBS_KEY, 0},
            {"x-dead-letter-strategy", TOPO_ARG_STR, "at-least-once", 0}};
        memcpy(q->args, retry_args, sizeof retry_args);
        topo_bind(TOPO_RETRY_EXCHANGE, name, key);
    }

    /* Results are for humans and dashboards: bounded, oldest dropped, never blocking. */
    topo_queue *res = topo_add_queue(TOPO_RESULTS_QUEUE);
    const topo_arg res_args[] = {{"x-max-length", TOPO_ARG_INT, NULL, 100000},
                                 {"x-overflow", TOPO_ARG_STR, "drop-head", 0}};
    memcpy(res->args, res_args, sizeof res_args);
    res->optional = 1;
    topo_bind(TOPO_RESULTS_EXCHANGE, TOPO_RESULTS_QUEUE, "");
}

const topology *topology_get(void)
{
    pthread_once(&topo_once, topo_build);
    return &topo_table;
}

static void topo_args_json(strbuf *b, const topo_arg *args)
{
    strbuf_addf(b, "{");
    for (int i = 0; i < TOPO_ARGS_MAX && args[i].key; i++) {
        if (args[i].kind == TOPO_ARG_STR)
            strbuf_addf(b, "%s\"%s\":\"%s\"", i ? "," : "", args[i].key, args[i].str);
        else if (args[i].kind == TOPO_ARG_BOOL)
            strbuf_addf(b, "%s\"%s\":%s", i ? "," : "", args[i].key, args[i].i ? "true" : "false");
        else
            strbuf_addf(b, "%s\"%s\":%lld", i ? "," : "", args[i].key, (long long)args[i].i);
    }
    strbuf_addf(b, "}");
}

char *topology_definitions_json(const char *vhost)
{
    const topology *t = topology_get();
    strbuf b = {0};
    strbuf_addf(&b, "{\"exchanges\":[");
    for (size_t i = 0; i < t->nexchanges; i++) {
        const topo_exchange *e = &t->exchanges[i];
        strbuf_addf(&b,
                    "%s{\"name\":\"%s\",\"vhost\":\"%s\",\"type\":\"%s\",\"durable\":true,"
                    "\"auto_delete\":false,\"internal\":false,\"arguments\":",
                    i ? "," : "", e->name, vhost, e->type);
        topo_args_json(&b, e->args);
        strbuf_addf(&b, "}");
    }
    strbuf_addf(&b, "],\"queues\":[");
    for (size_t i = 0; i < t->nqueues; i++) {
        strbuf_addf(&b,
                    "%s{\"name\":\"%s\",\"vhost\":\"%s\",\"durable\":true,\"auto_delete\":false,"
                    "\"arguments\":",
                    i ? "," : "", t->queues[i].name, vhost);
        topo_args_json(&b, t->queues[i].args);
        strbuf_addf(&b, "}");
    }
    strbuf_addf(&b, "],\"bindings\":[");
    for (size_t i = 0; i < t->nbindings; i++) {
        const topo_binding *bd = &t->bindings[i];
        strbuf_addf(&b,
                    "%s{\"source\":\"%s\",\"vhost\":\"%s\",\"destination\":\"%s\","
                    "\"destination_type\":\"%s\",\"routing_key\":\"%s\",\"arguments\":",
                    i ? "," : "", bd->source, vhost, bd->dest,
                    bd->dest_is_exchange ? "exchange" : "queue", bd->key);
        topo_args_json(&b, bd->args);
        strbuf_addf(&b, "}");
    }
    strbuf_addf(&b, "]}");
    return strbuf_take(&b, NULL);
}
