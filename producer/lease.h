/* lease: which producer of a group is active, decided by RabbitMQ alone.
 *
 * Producers started with the same --ha-group on one vhost form a group; exactly one of them
 * publishes. The lease is a token: one small message in the quorum queue
 * salvo.producer.lease.<group>, declared with x-single-active-consumer. Every producer of the
 * group consumes that queue (manual ack; the token is only acked when a newer one replaces
 * it, see lease_renew), on its one publishing
 * connection. The broker delivers only to the single active consumer, so the token reaches
 * one producer, which holds it unacked for as long as its connection lives: that producer is
 * active. When the connection ends, the broker returns the token and delivers it to the next
 * consumer at once: a process that dies closes its socket immediately, and a frozen or cut-off
 * one is closed by the broker after two to three missed heartbeats, so the heartbeat bounds
 * the takeover time. Nobody polls, and nothing is refused (no broker log noise).
 *
 * The token is published by a producer that finds the queue with no message and no consumer
 * (nobody holds or waits for a token); producers starting at the same instant may both
 * publish one, which is harmless: the active consumer receives both and acks the older. A
 * token is only acked once a newer one is in hand, so the group never runs out of tokens
 * while the queue lives.
 *
 * Because lease and publishes share one connection, a producer that lost the lease cannot
 * publish either: the broker has closed the connection its publishes would travel on. The
 * lease is remembered as the generation of the connection the token arrived on, so any
 * reconnect means "standby until the token comes again". The decisions are pure functions of
 * a monotonic "now" and connection generations (unit-tested); lease_join is the one call that
 * talks to the broker. Not thread-safe: the producer's one thread owns it. */
#ifndef SALVO_LEASE_H
#define SALVO_LEASE_H

#include "clock.h"
#include "mq.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_GROUP_MAX 64 /* the queue names stay well under AMQP's 255-byte limit */

typedef struct lease {
    bool enabled; /* a group was given; without one the producer is always active */
    char group[LEASE_GROUP_MAX + 1];
    char queue[96];      /* salvo.producer.lease.<group> */
    char key[80];        /* routing key of the token: lease.<group> */
    uint64_t joined_gen; /* connection that consumes the lease queue, 0 = none */
    int64_t retry_ns;    /* first pause after a failed join (doubling, capped) */
    int64_t next_try_ns; /* monotonic: no join attempt before this */
    unsigned failures;   /* consecutive failed joins */
    uint32_t others;     /* other consumers of the queue when we joined */
    int64_t renew_ns;    /* the active producer swaps in a fresh token this often */
} lease;

/* Check a group name: 1..LEASE_GROUP_MAX of [A-Za-z0-9_.-]. ERR_OK or ERR_INVAL. Pure. */
int lease_check_group(const char *group);

/* Set up for group (NULL or "" disables HA: lease_held is then always true). retry_ns > 0. */
void lease_init(lease *l, const char *group, int64_t retry_ns);

/* True when a producer on connection generation conn_gen (0 = none), whose last token
 * delivery came on token_gen (0 = never), may publish: HA is off, or the token arrived on that
 * very connection. */
bool lease_held(const lease *l, uint64_t conn_gen, uint64_t token_gen);
/* True when the producer should (re)join the lease queue at now_ns on conn_gen. */
bool lease_due(const lease *l, uint64_t conn_gen, int64_t now_ns);
/* Should a producer that joined publish the token? Yes when the queue it declared had neither
 * a message nor a consumer: no token exists anywhere. */
bool lease_needs_token(uint32_t messages, uint32_t consumers);
/* Record the result of a join on conn_gen at now_ns: ERR_OK marks it joined; an error
 * schedules the next attempt after a doubling pause (retry_ns up to 30 s). */
void lease_note(lease *l, int rc, uint64_t conn_gen, int64_t now_ns);

/* RabbitMQ closes a channel whose delivery stays unacked longer than its consumer_timeout
 * (30 min by default), so the active producer renews its token well before: it publishes a
 * fresh one, which the broker delivers to the same single active consumer (prefetch 2 leaves
 * room), and the publisher acks the older token when the fresh one arrives (publish.c), so a
 * lost publish never leaves the group without a token. True when the token received at got_ns
 * is due for renewal at now_ns (every l->renew_ns, LEASE_RENEW_NS unless set). */
#define LEASE_RENEW_NS (60 * CLOCK_NS_PER_SEC)
bool lease_renew_due(const lease *l, int64_t got_ns, int64_t now_ns);
/* Renew: publish a fresh token (by: this producer, borrowed). ERR_OK or ERR_MQ_CLOSED. */
int lease_renew(lease *l, mq *m, const char *by);

/* Join the group on m: declare the lease queue and its binding (channel MQ_CH_PUBLISH),
 * consume it with prefetch 2 on MQ_CH_MAIN, and publish the token when none exists (by names
 * this producer, borrowed). The token then arrives as a delivery on MQ_CH_MAIN, to whichever
 * producer the broker makes active. ERR_OK, or the broker's error (err says which step; the
 * connection may be unusable afterwards). A few RPC round trips. */
int lease_join(lease *l, mq *m, const char *by, char *err, size_t cap);

#endif
