/* mqops: the AMQP methods salvo sends: topology declaration, confirm mode, publish, consume,
 * cancel, ack and reject. */
#include "mq_internal.h"

#include "err.h"
#include "log.h"
#include "topology.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Convert a topology argument list into an AMQP table using caller storage. */
static amqp_table_t mq_args_table(const topo_arg *args, amqp_table_entry_t *ents)
{
    int n = 0;
    for (; n < TOPO_ARGS_MAX && args[n].key; n++) {
        ents[n].key = amqp_cstring_bytes(args[n].key);
        if (args[n].kind == TOPO_ARG_STR) {
            ents[n].value.kind = AMQP_FIELD_KIND_UTF8;
            ents[n].value.value.bytes = amqp_cstring_bytes(args[n].str);
        } else if (args[n].kind == TOPO_ARG_BOOL) {
            ents[n].value.kind = AMQP_FIELD_KIND_BOOLEAN;
            ents[n].value.value.boolean = args[n].i != 0;
        } else {
            ents[n].value.kind = AMQP_FIELD_KIND_I64;
            ents[n].value.value.i64 = args[n].i;
        }
    }
    return (amqp_table_t){n, ents};
}

static int mq_check(mq *m, const char *what, const char *name, char *err, size_t cap)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(m->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return ERR_OK;
    char label[160];
    snprintf(label, sizeof label, "%s %s", what, name);
    return mq_fail_reply(m, r, label, err, cap);
}

static bool mq_access_refused(amqp_rpc_reply_t r)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return false;
    const amqp_channel_close_t *c = r.reply.decoded;
    return c->reply_code == AMQP_ACCESS_REFUSED;
}

/* After a channel-level refusal the connection lives on: acknowledge the close (rabbitmq-c
 * does not) and open the channel again. */
static int mq_reopen_channel(mq *m, int ch, char *err, size_t cap)
{
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method(m->conn, (amqp_channel_t)ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != 0) {
        snprintf(err, cap, "channel.close-ok: connection lost");
        m->open = false;
        return ERR_MQ_CLOSED;
    }
    m->open = true;
    int rc = mq_open_channel(m, ch, err, cap);
    /* A new channel starts outside confirm mode; restore what the owner had asked for. */
    if (rc == ERR_OK && m->confirming[ch]) {
        m->confirming[ch] = false;
        rc = mq_confirm_select(m, ch);
    }
    return rc;
}

static bool mq_not_found(amqp_rpc_reply_t r)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return false;
    const amqp_channel_close_t *c = r.reply.decoded;
    return c->reply_code == AMQP_NOT_FOUND;
}

/* Declare one queue; an optional one the broker reports missing (its home node is down) is
 * skipped with a warning: *skipped is set and the channel reopened. */
static int mq_declare_topo_queue(mq *m, const topo_queue *q, int passive, bool *skipped, char *err,
                                 size_t cap)
{
    amqp_table_entry_t ents[TOPO_ARGS_MAX];
    amqp_queue_declare(m->conn, MQ_CH_MAIN, amqp_cstring_bytes(q->name), passive, 1, 0, 0,
                       passive ? amqp_empty_table : mq_args_table(q->args, ents));
    int rc = mq_check(m, "queue.declare", q->name, err, cap);
    *skipped = false;
    if (rc != ERR_MQ_CHANNEL || !q->optional || !mq_not_found(amqp_get_rpc_reply(m->conn)))
        return rc;
    log_warn("%s; going on without it (it lives on a node that is down)", err);
    *skipped = true;
    err[0] = '\0';
    return mq_reopen_channel(m, MQ_CH_MAIN, err, cap);
}

static bool mq_is_skipped(const topology *t, const bool *skipped, const char *queue)
{
    for (size_t i = 0; i < t->nqueues; i++)
        if (skipped[i] && strcmp(t->queues[i].name, queue) == 0)
            return true;
    return false;
}

/* Declare (passive = 0) or only check the existence of (passive = 1) every exchange and
 * queue, then bind (full declaration only: a binding cannot be checked passively). */
static int mq_declare_all(mq *m, int passive, char *err, size_t cap)
{
    const topology *t = topology_get();
    amqp_table_entry_t ents[TOPO_ARGS_MAX];
    bool skipped[sizeof t->queues / sizeof t->queues[0]] = {false};
    int rc = ERR_OK;
    for (size_t i = 0; i < t->nexchanges && rc == ERR_OK; i++) {
        const topo_exchange *e = &t->exchanges[i];
        amqp_exchange_declare(m->conn, MQ_CH_MAIN, amqp_cstring_bytes(e->name),
                              amqp_cstring_bytes(e->type), passive, 1, 0, 0,
                              passive ? amqp_empty_table : mq_args_table(e->args, ents));
        rc = mq_check(m, "exchange.declare", e->name, err, cap);
    }
    for (size_t i = 0; i < t->nqueues && rc == ERR_OK; i++)
        rc = mq_declare_topo_queue(m, &t->queues[i], passive, &skipped[i], err, cap);
    for (size_t i = 0; i < t->nbindings && rc == ERR_OK && !passive; i++) {
        const topo_binding *b = &t->bindings[i];
        if (!b->dest_is_exchange && mq_is_skipped(t, skipped, b->dest))
            continue;
        amqp_queue_bind(m->conn, MQ_CH_MAIN, amqp_cstring_bytes(b->dest),
                        amqp_cstring_bytes(b->source), amqp_cstring_bytes(b->key),
                        mq_args_table(b->args, ents));
        rc = mq_check(m, "queue.bind", b->dest, err, cap);
    }
    return rc;
}

int mq_declare_topology(mq *m, char *err, size_t cap)
{
    int rc = mq_declare_all(m, 0, err, cap);
    if (rc != ERR_MQ_CHANNEL || !mq_access_refused(amqp_get_rpc_reply(m->conn)))
        return rc;
    /* A least-privilege user (deploy/rabbitmq/definitions.json) may not configure anything;
     * the definitions created the topology, so checking that it exists is enough. */
    log_notice("broker refused to declare the topology (no configure permission); "
               "checking that it exists instead");
    rc = mq_reopen_channel(m, MQ_CH_MAIN, err, cap);
    if (rc == ERR_OK)
        rc = mq_declare_all(m, 1, err, cap);
    if (rc != ERR_OK && strstr(err, "404"))
        snprintf(err + strlen(err), cap - strlen(err),
                 " (load deploy/rabbitmq/definitions.json into the broker)");
    return rc;
}

int mq_declare_queue(mq *m, int channel, const char *queue, const topo_arg *args,
                     const char *exchange, const char *key, uint32_t counts[2], char *err,
                     size_t cap)
{
    amqp_table_entry_t ents[TOPO_ARGS_MAX];
    if (!m->open)
        return ERR_MQ_CLOSED;
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(m->conn, (amqp_channel_t)channel, amqp_cstring_bytes(queue), 0, 1, 0, 0,
                           mq_args_table(args, ents));
    int rc = mq_check(m, "queue.declare", queue, err, cap);
    if (rc == ERR_OK && ok && counts) {
        counts[0] = ok->message_count;
        counts[1] = ok->consumer_count;
    }
    if (rc == ERR_OK && exchange) {
        amqp_queue_bind(m->conn, (amqp_channel_t)channel, amqp_cstring_bytes(queue),
                        amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), amqp_empty_table);
        rc = mq_check(m, "queue.bind", queue, err, cap);
    }
    return rc;
}

int mq_confirm_select(mq *m, int channel)
{
    char err[200];
    if (channel < 1 || channel >= MQ_CHANNELS)
        return ERR_INVAL;
    amqp_confirm_select(m->conn, (amqp_channel_t)channel);
    int rc = mq_check(m, "confirm.select", "", err, sizeof err);
    if (rc == ERR_OK) {
        m->confirming[channel] = true;
        m->pub_seq[channel] = 0;
    }
    return rc;
}

int mq_channel_swap(mq *m, int from, int to, char *err, size_t cap)
{
    if (from < 1 || from >= MQ_CHANNELS || to < 1 || to >= MQ_CHANNELS || from == to ||
        !m->chan_open[from] || m->chan_open[to])
        return ERR_INVAL;
    if (!m->open)
        return ERR_MQ_CLOSED;
    amqp_rpc_reply_t r = amqp_channel_close(m->conn, (amqp_channel_t)from, AMQP_REPLY_SUCCESS);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return mq_fail_reply(m, r, "channel.close", err, cap);
    m->chan_open[from] = false;
    bool confirm = m->confirming[from];
    m->confirming[from] = false;
    int rc = mq_open_channel(m, to, err, cap);
    if (rc != ERR_OK)
        return rc;
    if (confirm && mq_confirm_select(m, to) != ERR_OK) {
        snprintf(err, cap, "confirm.select refused on channel %d", to);
        return ERR_MQ_CHANNEL;
    }
    return ERR_OK;
}

static void mq_fill_props(const mq_msg *msg, amqp_basic_properties_t *p, amqp_table_entry_t *h)
{
    memset(p, 0, sizeof *p);
    if (msg->persistent) {
        p->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
        p->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    }
#define MQ_STR_PROP(field, flag)                                                                   \
    if (msg->field) {                                                                              \
        p->_flags |= flag;                                                                         \
        p->field = amqp_cstring_bytes(msg->field);                                                 \
    }
    MQ_STR_PROP(message_id, AMQP_BASIC_MESSAGE_ID_FLAG)
    MQ_STR_PROP(content_type, AMQP_BASIC_CONTENT_TYPE_FLAG)
    MQ_STR_PROP(expiration, AMQP_BASIC_EXPIRATION_FLAG)
    MQ_STR_PROP(user_id, AMQP_BASIC_USER_ID_FLAG)
#undef MQ_STR_PROP
    if (msg->timestamp_s) {
        p->_flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        p->timestamp = (uint64_t)msg->timestamp_s;
    }
    if (msg->nheaders) {
        for (size_t i = 0; i < msg->nheaders; i++) {
            h[i].key = amqp_cstring_bytes(msg->headers[i].key);
            if (msg->headers[i].str) {
                h[i].value.kind = AMQP_FIELD_KIND_UTF8;
                h[i].value.value.bytes = amqp_cstring_bytes(msg->headers[i].str);
            } else {
                h[i].value.kind = AMQP_FIELD_KIND_I64;
                h[i].value.value.i64 = msg->headers[i].i;
            }
        }
        p->_flags |= AMQP_BASIC_HEADERS_FLAG;
        p->headers = (amqp_table_t){(int)msg->nheaders, h};
    }
}

/* Headers salvo sets are few; a fixed ceiling keeps publish allocation-free. */
#define MQ_PUB_HEADERS_MAX 16

int mq_publish(mq *m, int channel, const mq_msg *msg, uint64_t *seq)
{
    if (!m->open || msg->nheaders > MQ_PUB_HEADERS_MAX)
        return msg->nheaders > MQ_PUB_HEADERS_MAX ? ERR_INVAL : ERR_MQ_CLOSED;
    amqp_basic_properties_t props;
    amqp_table_entry_t hdrs[MQ_PUB_HEADERS_MAX];
    mq_fill_props(msg, &props, hdrs);
    amqp_bytes_t body = {msg->len, (void *)msg->body};
    int st =
        amqp_basic_publish(m->conn, (amqp_channel_t)channel, amqp_cstring_bytes(msg->exchange),
                           amqp_cstring_bytes(msg->routing_key), msg->mandatory, 0, &props, body);
    if (st != AMQP_STATUS_OK) {
        m->open = false;
        return ERR_MQ_CLOSED;
    }
    if (channel >= 1 && channel < MQ_CHANNELS && m->confirming[channel])
        m->pub_seq[channel]++;
    if (seq)
        *seq = channel >= 1 && channel < MQ_CHANNELS ? m->pub_seq[channel] : 0;
    return ERR_OK;
}

int mq_consume(mq *m, const char *queue, uint16_t prefetch, char *err, size_t cap)
{
    /* global=0: per-consumer prefetch, the only kind quorum queues honour. */
    amqp_basic_qos(m->conn, MQ_CH_MAIN, 0, prefetch, 0);
    int rc = mq_check(m, "basic.qos", "", err, cap);
    if (rc != ERR_OK)
        return rc;
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(m->conn, MQ_CH_MAIN, amqp_cstring_bytes(queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    rc = mq_check(m, "basic.consume", queue, err, cap);
    if (rc == ERR_OK && ok)
        snprintf(m->consumer_tag, sizeof m->consumer_tag, "%.*s", (int)ok->consumer_tag.len,
                 (const char *)ok->consumer_tag.bytes);
    return rc;
}

int mq_cancel(mq *m)
{
    char err[200];
    if (!m->open || !m->consumer_tag[0])
        return ERR_MQ_CLOSED;
    amqp_basic_cancel(m->conn, MQ_CH_MAIN, amqp_cstring_bytes(m->consumer_tag));
    m->consumer_tag[0] = '\0';
    return mq_check(m, "basic.cancel", "", err, sizeof err);
}

static int mq_send_ack(mq *m, uint64_t d_gen, int channel, uint64_t tag, int multiple)
{
    if (d_gen != m->gen)
        return ERR_INVAL;
    if (!m->open)
        return ERR_MQ_CLOSED;
    if (amqp_basic_ack(m->conn, (amqp_channel_t)channel, tag, multiple) != AMQP_STATUS_OK) {
        m->open = false;
        return ERR_MQ_CLOSED;
    }
    return ERR_OK;
}

int mq_ack(mq *m, uint64_t d_gen, int channel, uint64_t tag)
{
    return mq_send_ack(m, d_gen, channel, tag, 0);
}

int mq_ack_upto(mq *m, uint64_t d_gen, int channel, uint64_t tag)
{
    return mq_send_ack(m, d_gen, channel, tag, 1);
}

int mq_reject(mq *m, uint64_t d_gen, int channel, uint64_t tag, bool requeue)
{
    if (d_gen != m->gen)
        return ERR_INVAL;
    if (!m->open)
        return ERR_MQ_CLOSED;
    if (amqp_basic_reject(m->conn, (amqp_channel_t)channel, tag, requeue) != AMQP_STATUS_OK) {
        m->open = false;
        return ERR_MQ_CLOSED;
    }
    return ERR_OK;
}
