/* rawamqp: connection and queue set-up for rawrate, straight on rabbitmq-c 0.11. */
#include "rawamqp.h"

#include "topology.h"

#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAWAMQP_FRAME_MAX 131072 /* rabbitmq-c's default frame size */
#define RAWAMQP_CONNECT_S 5

int rawamqp_check(amqp_connection_state_t c, const char *what, char *err, size_t cap)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(err, cap, "%s: %s", what, amqp_error_string2(r.library_error));
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = r.reply.decoded;
        snprintf(err, cap, "%s: channel closed %u %.*s", what, m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = r.reply.decoded;
        snprintf(err, cap, "%s: connection closed %u %.*s", what, m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else {
        snprintf(err, cap, "%s: broker error (method 0x%08x)", what, r.reply.id);
    }
    return -1;
}

/* amqp_parse_url rewrites its input, so it gets a copy that outlives the connect. */
static int rawamqp_open(amqp_connection_state_t c, char *copy, char *err, size_t cap)
{
    struct amqp_connection_info ci;
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK || ci.ssl) {
        snprintf(err, cap, "not a plain amqp:// URL");
        return -1;
    }
    if (!ci.vhost || !*ci.vhost) /* "amqp://host:port/" means the default vhost, as in mq.c */
        ci.vhost = "/";
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {RAWAMQP_CONNECT_S, 0};
    int rc = s ? amqp_socket_open_noblock(s, ci.host, ci.port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, cap, "connect %s:%d: %s", ci.host, ci.port, amqp_error_string2(rc));
        return -1;
    }
    amqp_rpc_reply_t r = amqp_login(c, ci.vhost, 0, RAWAMQP_FRAME_MAX, 0, AMQP_SASL_METHOD_PLAIN,
                                    ci.user, ci.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, cap, "login as %s refused", ci.user);
        return -1;
    }
    amqp_channel_open(c, RAWAMQP_CH);
    return rawamqp_check(c, "channel.open", err, cap);
}

amqp_connection_state_t rawamqp_connect(const char *url, char *err, size_t cap)
{
    char *copy = strdup(url);
    amqp_connection_state_t c = amqp_new_connection();
    if (!copy || !c) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    if (rawamqp_open(c, copy, err, cap) != 0)
        goto fail;
    free(copy);
    return c;
fail:
    if (c)
        amqp_destroy_connection(c);
    free(copy);
    return NULL;
}

/* salvo.jobs's arguments from the topology table, as an AMQP field table in entries[]. */
static size_t rawamqp_args(amqp_table_entry_t *entries, size_t cap)
{
    const topology *t = topology_get();
    size_t n = 0;
    for (size_t q = 0; q < t->nqueues; q++) {
        if (strcmp(t->queues[q].name, TOPO_JOBS_QUEUE) != 0)
            continue;
        for (size_t i = 0; i < TOPO_ARGS_MAX && t->queues[q].args[i].key && n < cap; i++) {
            const topo_arg *a = &t->queues[q].args[i];
            entries[n].key = amqp_cstring_bytes(a->key);
            if (a->kind == TOPO_ARG_STR) {
                entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
                entries[n].value.value.bytes = amqp_cstring_bytes(a->str);
            } else {
                entries[n].value.kind = AMQP_FIELD_KIND_I64;
                entries[n].value.value.i64 = a->i;
            }
            n++;
        }
    }
    return n;
}

int rawamqp_declare(amqp_connection_state_t c, const char *name, char *err, size_t cap)
{
    if (rawamqp_delete(c, name, err, cap) != 0)
        return -1;
    amqp_table_entry_t entries[TOPO_ARGS_MAX];
    amqp_table_t args = {(int)rawamqp_args(entries, TOPO_ARGS_MAX), entries};
    amqp_queue_declare(c, RAWAMQP_CH, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    return rawamqp_check(c, "queue.declare", err, cap);
}

int rawamqp_delete(amqp_connection_state_t c, const char *name, char *err, size_t cap)
{
    amqp_queue_delete(c, RAWAMQP_CH, amqp_cstring_bytes(name), 0, 0);
    return rawamqp_check(c, "queue.delete", err, cap);
}

void rawamqp_close(amqp_connection_state_t c)
{
    if (!c)
        return;
    amqp_channel_close(c, RAWAMQP_CH, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}
