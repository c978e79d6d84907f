/* rawamqp: the few rabbitmq-c calls rawrate makes outside its hot loops: connect and log in,
 * declare the measurement queue with salvo.jobs's own arguments, delete it. rawrate talks to
 * rabbitmq-c directly, not through common/mq, so the reference rate carries none of salvo's
 * code: it is what the library and the broker can do on their own. */
#ifndef SALVO_RAWAMQP_H
#define SALVO_RAWAMQP_H

#include <amqp.h>
#include <stddef.h>

/* Channel every rawrate connection uses. */
#define RAWAMQP_CH 1

/* Connect to url (amqp://user:pass@host:port/vhost; borrowed), log in without heartbeats (a
 * run lasts seconds) and open RAWAMQP_CH. Returns the connection or NULL with a reason in err.
 * Blocks; the connection belongs to the calling thread from then on. */
amqp_connection_state_t rawamqp_connect(const char *url, char *err, size_t cap);

/* Delete queue `name` if present, then declare it durable with the arguments salvo.jobs has
 * (topology.c: quorum, delivery limit, dead-lettering, reject-publish), so it starts empty and
 * costs the broker what salvo.jobs does. 0 or -1 with err set. */
int rawamqp_declare(amqp_connection_state_t c, const char *name, char *err, size_t cap);

/* Delete queue `name`. 0 or -1 with err set. */
int rawamqp_delete(amqp_connection_state_t c, const char *name, char *err, size_t cap);

/* 0 when the last RPC succeeded, else -1 with "what: reason" in err. */
int rawamqp_check(amqp_connection_state_t c, const char *what, char *err, size_t cap);

/* Close politely and destroy; NULL-safe. */
void rawamqp_close(amqp_connection_state_t c);

#endif
