/* lease: which producer of a group is active, decided by RabbitMQ alone.
 *
 * Producers started with the same --ha-group on one vhost form a group; exactly one of them
 * publishes. The lease is the exclusive queue salvo.producer.lease.<group>: a producer that
 * declares it (exclusive, on its one publishing connection) is active; the others get 405
 * RESOURCE_LOCKED and ask again every retry interval. The broker deletes an exclusive queue the
 * moment its connection ends: a process killed outright closes its socket at once, and a frozen
 * or cut-off one is closed by the broker after about two missed heartbeats, so the producer's
 * heartbeat bounds the takeover time. Because lease and publishes share that connection, a
 * producer that lost the lease cannot publish another job either: the broker has closed the
 * connection its publishes would travel on. The lease is remembered as the generation of the
 * connection it was taken on, so any reconnect means "standby until the lease is taken again".
 *
 * The decisions are pure functions of a monotonic "now" (unit-tested); lease_try is the one
 * call that talks to the broker. Not thread-safe: the producer's one thread owns it. */
#ifndef SALVO_LEASE_H
#define SALVO_LEASE_H

#include "mq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_GROUP_MAX 64 /* the queue names stay well under AMQP's 255-byte limit */

typedef struct lease {
    bool enabled; /* a group was given; without one the producer is always active */
    char group[LEASE_GROUP_MAX + 1];
    char queue[96];      /* salvo.producer.lease.<group> */
    uint64_t gen;        /* generation of the connection holding the lease, 0 = none */
    int64_t retry_ns;    /* between two attempts while standing by */
    int64_t next_try_ns; /* monotonic: no attempt before this */
    unsigned refusals;   /* consecutive "held by another producer" answers */
} lease;

/* Check a group name: 1..LEASE_GROUP_MAX of [A-Za-z0-9_.-]. ERR_OK or ERR_INVAL. Pure. */
int lease_check_group(const char *group);

/* Set up for group (NULL or "" disables HA: lease_held is then always true). retry_ns > 0. */
void lease_init(lease *l, const char *group, int64_t retry_ns);

/* True when a producer holding connection generation conn_gen (0 = no connection) may
 * publish: HA is off, or the lease was taken on that very connection. */
bool lease_held(const lease *l, uint64_t conn_gen);
/* True when a standby should ask for the lease at now_ns (monotonic). */
bool lease_due(const lease *l, uint64_t conn_gen, int64_t now_ns);
/* How long a standby may wait at now_ns before its next attempt, in ms (0 when due). */
int lease_wait_ms(const lease *l, int64_t now_ns);
/* Record the answer to an attempt made on conn_gen at now_ns: ERR_OK takes the lease, anything
 * else leaves it free and schedules the next attempt. */
void lease_note(lease *l, int rc, uint64_t conn_gen, int64_t now_ns);

/* Ask the broker for the lease on m when due (lease_due), and note the answer. ERR_OK when this
 * producer holds the lease now (newly or already), ERR_EXISTS when another one does, ERR_INTR
 * when no attempt is due yet (or m is closed), or the broker error (err says why; the connection
 * may be unusable afterwards). Blocks for one RPC round trip. */
int lease_try(lease *l, mq *m, int64_t now_ns, char *err, size_t cap);

#endif
