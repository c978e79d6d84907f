/* mq: salvo's one wrapper around librabbitmq-c 0.11 (the only file that includes <amqp.h>).
 *
 * Design: one `mq` is one AMQP connection, owned by exactly one thread (rabbitmq-c's hard rule:
 * a connection is never touched by two threads). Everything the broker sends (deliveries,
 * publisher confirms, returns, blocked/unblocked, consumer cancel, channel/connection close)
 * comes back through one call, mq_poll(), as an mq_event, so producer and worker each run a
 * single loop. Any broker-side close makes the connection unusable (mq_poll returns
 * MQ_EV_CLOSED); the owner frees it and reconnects with mq_backoff_ms(). Each connection has a
 * generation number: delivery tags are only valid on the generation that produced them. */
#ifndef SALVO_MQ_H
#define SALVO_MQ_H

#include "topology.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Channel numbers salvo uses on every connection. */
#define MQ_CH_MAIN        1 /* producer: confirmed publishes; worker: the consumer */
#define MQ_CH_PUBLISH     2 /* worker: confirmed publishes of retries, dead letters, results */
#define MQ_CH_PUBLISH_ALT 3 /* worker: the publish channel's stand-in after mq_channel_swap */
#define MQ_CHANNELS       4 /* channel numbers below this are salvo's (0 is the connection's) */

typedef struct mq mq;

typedef struct mq_opts {
    const char *urls;       /* comma-separated amqp:// or amqps:// URLs; borrowed */
    const char *conn_name;  /* shown in the management UI, e.g. "salvo-worker@host:1234" */
    int heartbeat_s;        /* default 10 */
    int connect_timeout_ms; /* TCP connect + TLS + login; default 5000 */
    int rpc_timeout_ms;     /* every synchronous RPC; default 10000 */
    const char *tls_ca;     /* CA file for amqps://; NULL = system store */
    const char *tls_cert;   /* optional client certificate (PEM) */
    const char *tls_key;    /* optional client key (PEM) */
} mq_opts;

/* A header, borrowed when publishing, owned by an mq_delivery when received. */
typedef struct mq_hdr {
    const char *key;
    const char *str; /* string value, or NULL when the value is an integer */
    int64_t i;
} mq_hdr;

/* One message to publish; every pointer is borrowed for the call. */
typedef struct mq_msg {
    const char *exchange;
    const char *routing_key;
    const void *body;
    size_t len;
    const char *message_id;   /* NULL to omit */
    const char *content_type; /* NULL to omit */
    const char *expiration;   /* per-message TTL in ms as decimal text; NULL = none */
    const char *user_id;      /* validated by the broker against the login; NULL to omit */
    int64_t timestamp_s;      /* 0 to omit */
    const mq_hdr *headers;
    size_t nheaders;
    bool mandatory;  /* unroutable comes back as MQ_EV_RETURN */
    bool persistent; /* delivery_mode 2 */
} mq_msg;

/* A delivery copied out of rabbitmq-c: the envelope is already destroyed, so the body lives as
 * long as this struct, independent of the connection. Owned by whoever holds it. */
typedef struct mq_delivery {
    uint64_t gen; /* connection generation; ack only on the same generation */
    int channel;
    uint64_t tag;
    bool redelivered;
    int64_t delivery_count; /* x-delivery-count (quorum queues), 0 when absent */
    char *exchange, *routing_key;
    char *message_id, *user_id, *content_type, *expiration; /* NULL when absent */
    int64_t timestamp_s;
    mq_hdr *headers; /* owned; string values and keys owned */
    size_t nheaders;
    char *body; /* owned, NUL-terminated for convenience; len excludes the NUL */
    size_t len;
} mq_delivery;

typedef enum mq_ev_kind {
    MQ_EV_TIMEOUT = 0, /* nothing within the timeout (heartbeats were serviced) */
    MQ_EV_WAKE,        /* the wake fd became readable; the caller drains it */
    MQ_EV_DELIVERY,    /* ev.delivery is filled; the caller owns it (mq_delivery_fini) */
    MQ_EV_ACK,         /* publisher confirm: ev.tag (all <= tag when ev.multiple) */
    MQ_EV_NACK,
    MQ_EV_RETURN,  /* unroutable mandatory publish: ev.message_id (owned), ev.reply_code */
    MQ_EV_BLOCKED, /* broker resource alarm: stop publishing */
    MQ_EV_UNBLOCKED,
    MQ_EV_CANCELLED, /* broker cancelled our consumer (queue deleted, failover) */
    MQ_EV_CLOSED,    /* connection or channel closed / lost: ev.reason says why; reconnect */
} mq_ev_kind;

typedef struct mq_event {
    mq_ev_kind kind;
    int channel;
    uint64_t tag;
    bool multiple;
    int reply_code;
    char *message_id; /* MQ_EV_RETURN: owned copy, freed by mq_event_fini */
    char reason[256];
    mq_delivery delivery;
} mq_event;

/* Once per process, before any thread starts: ignores SIGPIPE and initialises OpenSSL for
 * amqps. Not thread-safe. */
void mq_global_init(void);

/* Check o's TLS files before any connection: each one given is a readable file, and a client
 * certificate and key come together. ERR_OK, or ERR_INVAL with err naming the option (a
 * configuration error: exit 2). Thread-safe. */
int mq_opts_check(const mq_opts *o, char *err, size_t cap);

/* Connect to one of the URLs, trying them in order starting at index *next_url (wrapping
 * around once), log in with client properties (connection name; capabilities
 * consumer_cancel_notify, connection.blocked, publisher_confirms), open MQ_CH_MAIN and
 * MQ_CH_PUBLISH, set the RPC timeout. On success *next_url is the index used, so a caller that
 * loses the connection can pass *next_url + 1 to fail over. ERR_OK, ERR_MQ_CONNECT,
 * ERR_MQ_LOGIN or ERR_INVAL (bad URL); err gets a one-line reason with passwords redacted.
 * Blocks up to connect_timeout_ms per URL. The caller owns *out (mq_free). */
int mq_connect(const mq_opts *o, size_t *next_url, mq **out, char *err, size_t cap);

/* Close politely when the connection is healthy (bounded by the RPC timeout), then free.
 * Safe on NULL and on a broken connection. */
void mq_free(mq *m);

/* The owner gives up on a connection the broker still holds open but misbehaves on (no
 * confirms, or nothing but nacks): the next mq_free drops it without the polite close, whose
 * replies such a broker may be slow to send. Safe on NULL. */
void mq_abandon(mq *m);

/* "amqp://user@host:port/vhost" of the current node, password never included. */
const char *mq_endpoint(const mq *m);
/* The user this connection logged in as: what RabbitMQ accepts as a message's user_id. */
const char *mq_user(const mq *m);
uint64_t mq_generation(const mq *m);
bool mq_is_open(const mq *m);
bool mq_is_blocked(const mq *m);

/* Declare salvo's topology (topology.c) idempotently on MQ_CH_MAIN. ERR_OK or ERR_MQ_CHANNEL
 * with err saying which object the broker refused (e.g. argument mismatch). */
int mq_declare_topology(mq *m, char *err, size_t cap);

/* Declare a durable queue with args (a topology argument list, borrowed) and, when exchange is
 * not NULL, bind it to exchange with routing key `key`. counts (may be NULL) gets the queue's
 * ready messages and consumers as the broker reported them. ERR_OK, ERR_MQ_CHANNEL (err says
 * which step the broker refused) or ERR_MQ_CLOSED. */
int mq_declare_queue(mq *m, int channel, const char *queue, const topo_arg *args,
                     const char *exchange, const char *key, uint32_t counts[2], char *err,
                     size_t cap);

/* basic.get of one message from queue with manual ack: ERR_OK with *out filled (the caller
 * owns it: settle with mq_ack/mq_reject, then mq_delivery_fini), ERR_NOTFOUND when the queue is
 * empty, ERR_MQ_CHANNEL or ERR_MQ_CLOSED (err says why). */
int mq_get(mq *m, int channel, const char *queue, mq_delivery *out, char *err, size_t cap);

/* Put a channel in confirm mode. Publish sequence numbers then start at 1 per channel. */
int mq_confirm_select(mq *m, int channel);

/* Close channel `from` and open channel `to` in its place, in confirm mode when `from` was (its
 * publish sequence starts again at 1). The worker's way out of a publish channel the broker keeps
 * nacking (RabbitMQ 3.10 does so after a quorum queue lost its leader or refused a publish)
 * without closing the consuming channel, which would requeue every unacked delivery. Confirms
 * and returns of `from` read before its close-ok may still come out of mq_poll afterwards, with
 * ev.channel == from: the caller ignores them, which is why `to` must be another number. ERR_OK,
 * ERR_INVAL, ERR_MQ_CHANNEL or ERR_MQ_CLOSED (err says why; the connection is then unusable).
 * Blocks for three round trips at most, each bounded by the RPC timeout. */
int mq_channel_swap(mq *m, int from, int to, char *err, size_t cap);

/* basic.publish without waiting. *seq (may be NULL) gets the confirm sequence number when the
 * channel is in confirm mode. ERR_OK or ERR_MQ_CLOSED. Can block while the broker applies TCP
 * back-pressure (rabbitmq-c 0.11 writes without a deadline); callers stop publishing on
 * MQ_EV_BLOCKED, which the broker sends first, and a vanished broker is cut off by the socket's
 * TCP_USER_TIMEOUT (twice the heartbeat). */
int mq_publish(mq *m, int channel, const mq_msg *msg, uint64_t *seq);

/* basic.qos(prefetch) + basic.consume with manual acks on MQ_CH_MAIN. */
int mq_consume(mq *m, const char *queue, uint16_t prefetch, char *err, size_t cap);
int mq_cancel(mq *m); /* basic.cancel of our consumer; deliveries in flight still arrive */

/* Settle a delivery. Returns ERR_INVAL (and does nothing) when d_gen is not this connection's
 * generation: acking a tag from an old connection would close the channel with 406. */
int mq_ack(mq *m, uint64_t d_gen, int channel, uint64_t tag);
/* basic.ack with multiple=true: every unacked delivery on channel up to and including tag,
 * which must itself be unacked (RabbitMQ closes the channel otherwise). Errors as mq_ack. */
int mq_ack_upto(mq *m, uint64_t d_gen, int channel, uint64_t tag);
int mq_reject(mq *m, uint64_t d_gen, int channel, uint64_t tag, bool requeue);

/* Wait up to timeout_ms for the next broker event, servicing heartbeats. When wake_fd >= 0,
 * its readability ends the wait with MQ_EV_WAKE (the caller drains it). ev is overwritten;
 * call mq_event_fini after handling. Never blocks longer than timeout_ms plus the time to
 * read one already-started message. */
int mq_poll(mq *m, int timeout_ms, int wake_fd, mq_event *ev);
void mq_event_fini(mq_event *ev);
void mq_delivery_fini(mq_delivery *d);
/* Value of a delivery header: string (NULL if absent or an integer), or integer (def if absent). */
const char *mq_delivery_header(const mq_delivery *d, const char *key);
int64_t mq_delivery_header_int(const mq_delivery *d, const char *key, int64_t def);

/* Reconnect delay for the n-th consecutive failure (n >= 1): exponential from 500 ms, capped at
 * 30 s, with full jitter in [d/2, d]. Thread-safe. */
int mq_backoff_ms(unsigned n);

#endif
