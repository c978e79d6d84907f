/* topology: the RabbitMQ objects salvo uses, in one table. The binaries declare it on every
 * (re)connect and deploy/rabbitmq/definitions.json carries the same objects; a test compares
 * the two, so this table is the single source of truth.
 *
 *   producer --(salvo.jobs, key "job")--> [salvo.jobs]  quorum, at-least-once dead-lettering
 *        [salvo.jobs] dead letters --(salvo.dead, key "missed")--> [salvo.missed]
 *              The broker dead-letters a job for one reason in practice: its per-message TTL
 *              (max_lateness) ran out before any worker took it. Workers settle every other
 *              failure themselves, and dead-letter poison at 5 deliveries, long before the
 *              broker's own delivery-limit backstop; x-death in the UI says which it was.
 *              (A headers exchange cannot sort by x-first-death-reason: RabbitMQ ignores
 *              binding arguments that start with "x-".)
 *   worker  --(salvo.retry, key "rN")--> [salvo.retry.N] TTL --> salvo.jobs "job" (next attempt)
 *   worker  --(salvo.dead, key "dead"|"missed")--> [salvo.dead] / [salvo.missed]
 *   worker  --(salvo.results)--> [salvo.results] (bounded, newest kept)
 *   producer --(salvo.producer, key watermark.<group>)--> [salvo.producer.watermark.<group>]
 *   producer --(salvo.producer, key lease.<group>)--> [salvo.producer.lease.<group>]
 *              High availability (producer/lease.h): per producer group, a quorum last-value
 *              queue holding the confirmed "fired up to" instants, and a single-active-consumer
 *              queue holding the lease token that only the active producer receives. Both are
 *              per group, so the producer declares them at run time (they are not in the
 *              table); its user may configure salvo.producer.* only. */
#ifndef SALVO_TOPOLOGY_H
#define SALVO_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#define TOPO_JOBS_EXCHANGE     "salvo.jobs"
#define TOPO_JOBS_QUEUE        "salvo.jobs"
#define TOPO_JOBS_KEY          "job"
#define TOPO_DEAD_EXCHANGE     "salvo.dead"
#define TOPO_DEAD_QUEUE        "salvo.dead"
#define TOPO_DEAD_KEY          "dead"
#define TOPO_MISSED_QUEUE      "salvo.missed"
#define TOPO_MISSED_KEY        "missed"
#define TOPO_RETRY_EXCHANGE    "salvo.retry"
#define TOPO_RESULTS_EXCHANGE  "salvo.results"
#define TOPO_RESULTS_QUEUE     "salvo.results"
#define TOPO_PRODUCER_EXCHANGE "salvo.producer"
#define TOPO_LEASE_PREFIX      "salvo.producer.lease."
#define TOPO_WATERMARK_PREFIX  "salvo.producer.watermark."

/* A redelivery-count ceiling the broker enforces as a backstop; workers dead-letter a message
 * themselves well before it (a job that crashed workers this often is poison). */
#define TOPO_DELIVERY_LIMIT 20
/* Retry levels: attempt n waits in salvo.retry.<level> where level = min(n, TOPO_RETRY_LEVELS). */
#define TOPO_RETRY_LEVELS 5
extern const int64_t topo_retry_delay_ms[TOPO_RETRY_LEVELS];

typedef enum topo_arg_kind {
    TOPO_ARG_STR,
    TOPO_ARG_INT,
    TOPO_ARG_BOOL, /* i: 0 or 1 */
} topo_arg_kind;

typedef struct topo_arg {
    const char *key;
    topo_arg_kind kind;
    const char *str;
    int64_t i;
} topo_arg;

#define TOPO_ARGS_MAX 8

typedef struct topo_exchange {
    const char *name;
    const char *type; /* direct, fanout, headers, topic */
    topo_arg args[TOPO_ARGS_MAX];
} topo_exchange;

typedef struct topo_queue {
    char name[64];
    topo_arg args[TOPO_ARGS_MAX];
    /* A classic queue lives on one node: while that node is down in a cluster, declaring it
     * is refused with 404. An optional queue (results) is then skipped, with its bindings,
     * instead of keeping every client from reconnecting. */
    int optional;
} topo_queue;

typedef struct topo_binding {
    const char *source; /* exchange */
    char dest[64];      /* queue or exchange */
    int dest_is_exchange;
    char key[16];
    topo_arg args[TOPO_ARGS_MAX]; /* headers-exchange match arguments */
} topo_binding;

typedef struct topology {
    const topo_exchange *exchanges;
    size_t nexchanges;
    topo_queue queues[16];
    size_t nqueues;
    topo_binding bindings[16];
    size_t nbindings;
} topology;

/* Arguments of a salvo.producer.watermark.<group> queue: quorum, only the newest message kept. */
extern const topo_arg topo_watermark_args[TOPO_ARGS_MAX];
/* Arguments of a salvo.producer.lease.<group> queue: quorum, single active consumer. */
extern const topo_arg topo_lease_args[TOPO_ARGS_MAX];

/* Build the table (static storage, built once, thread-safe after the first call). */
const topology *topology_get(void);

/* Print the topology as the "exchanges", "queues" and "bindings" arrays of a RabbitMQ
 * definitions file for vhost `vhost` to a malloc'd string (caller frees). */
char *topology_definitions_json(const char *vhost);

#endif
