/* mqpoll: everything the broker sends, read frame by frame and turned into one mq_event.
 * Deliveries are copied out and their rabbitmq-c storage released at once, so a job never
 * holds on to connection memory and the connection can be dropped while jobs run. */
#include "mq_internal.h"

#include "err.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *mq_bytes_dup(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (s) {
        if (b.len)
            memcpy(s, b.bytes, b.len);
        s[b.len] = '\0';
    }
    return s;
}

static char *mq_prop_dup(const amqp_basic_properties_t *p, amqp_flags_t flag, amqp_bytes_t b)
{
    return (p->_flags & flag) ? mq_bytes_dup(b) : NULL;
}

static int mq_field_int(const amqp_field_value_t *v, int64_t *out)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        *out = v->value.i8;
        return 1;
    case AMQP_FIELD_KIND_U8:
        *out = v->value.u8;
        return 1;
    case AMQP_FIELD_KIND_I16:
        *out = v->value.i16;
        return 1;
    case AMQP_FIELD_KIND_U16:
        *out = v->value.u16;
        return 1;
    case AMQP_FIELD_KIND_I32:
        *out = v->value.i32;
        return 1;
    case AMQP_FIELD_KIND_U32:
        *out = v->value.u32;
        return 1;
    case AMQP_FIELD_KIND_I64:
        *out = v->value.i64;
        return 1;
    case AMQP_FIELD_KIND_U64:
        *out = (int64_t)v->value.u64;
        return 1;
    default:
        return 0;
    }
}

/* Copy string and integer headers; other kinds (tables, arrays: x-death) are skipped. */
static int mq_copy_headers(mq_delivery *d, const amqp_table_t *t)
{
    if (t->num_entries <= 0)
        return ERR_OK;
    d->headers = calloc((size_t)t->num_entries, sizeof *d->headers);
    if (!d->headers)
        return ERR_NOMEM;
    for (int i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        mq_hdr *h = &d->headers[d->nheaders];
        int64_t iv;
        if (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES) {
            h->str = mq_bytes_dup(e->value.value.bytes);
            if (!h->str)
                return ERR_NOMEM;
        } else if (mq_field_int(&e->value, &iv)) {
            h->i = iv;
        } else {
            continue;
        }
        h->key = mq_bytes_dup(e->key);
        if (!h->key)
            return ERR_NOMEM;
        d->nheaders++;
    }
    return ERR_OK;
}

static int mq_copy_message(mq_delivery *d, const amqp_message_t *msg)
{
    const amqp_basic_properties_t *p = &msg->properties;
    d->body = mq_bytes_dup(msg->body);
    d->len = msg->body.len;
    d->message_id = mq_prop_dup(p, AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id);
    d->user_id = mq_prop_dup(p, AMQP_BASIC_USER_ID_FLAG, p->user_id);
    d->content_type = mq_prop_dup(p, AMQP_BASIC_CONTENT_TYPE_FLAG, p->content_type);
    d->expiration = mq_prop_dup(p, AMQP_BASIC_EXPIRATION_FLAG, p->expiration);
    d->timestamp_s = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp : 0;
    if (!d->body)
        return ERR_NOMEM;
    if ((p->_flags & AMQP_BASIC_HEADERS_FLAG) && mq_copy_headers(d, &p->headers) != ERR_OK)
        return ERR_NOMEM;
    d->delivery_count = mq_delivery_header_int(d, "x-delivery-count", 0);
    return ERR_OK;
}

/* basic.deliver: read the content frames that follow and copy everything out. */
static int mq_on_deliver(mq *m, const amqp_frame_t *f, mq_event *ev)
{
    const amqp_basic_deliver_t *dl = f->payload.method.decoded;
    mq_delivery *d = &ev->delivery;
    d->gen = m->gen;
    d->channel = f->channel;
    d->tag = dl->delivery_tag;
    d->redelivered = dl->redelivered;
    d->exchange = mq_bytes_dup(dl->exchange);
    d->routing_key = mq_bytes_dup(dl->routing_key);
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(m->conn, f->channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        mq_fail_reply(m, r, "read message", ev->reason, sizeof ev->reason);
        ev->kind = MQ_EV_CLOSED;
        return ERR_MQ_CLOSED;
    }
    int rc = mq_copy_message(d, &msg);
    amqp_destroy_message(&msg);
    ev->kind = MQ_EV_DELIVERY;
    return rc;
}

int mq_get(mq *m, int channel, const char *queue, mq_delivery *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!m->open)
        return ERR_MQ_CLOSED;
    amqp_rpc_reply_t r =
        amqp_basic_get(m->conn, (amqp_channel_t)channel, amqp_cstring_bytes(queue), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return mq_fail_reply(m, r, "basic.get", err, cap);
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
        return ERR_NOTFOUND; /* basic.get-empty */
    const amqp_basic_get_ok_t *ok = r.reply.decoded;
    out->gen = m->gen;
    out->channel = channel;
    out->tag = ok->delivery_tag;
    out->redelivered = ok->redelivered;
    out->exchange = mq_bytes_dup(ok->exchange);
    out->routing_key = mq_bytes_dup(ok->routing_key);
    amqp_message_t msg;
    r = amqp_read_message(m->conn, (amqp_channel_t)channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        mq_delivery_fini(out);
        return mq_fail_reply(m, r, "basic.get body", err, cap);
    }
    int rc = mq_copy_message(out, &msg);
    amqp_destroy_message(&msg);
    if (rc != ERR_OK)
        mq_delivery_fini(out);
    return rc;
}

static int mq_on_return(mq *m, const amqp_frame_t *f, mq_event *ev)
{
    const amqp_basic_return_t *ret = f->payload.method.decoded;
    ev->reply_code = ret->reply_code;
    snprintf(ev->reason, sizeof ev->reason, "%.*s", (int)ret->reply_text.len,
             (const char *)ret->reply_text.bytes);
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(m->conn, f->channel, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        mq_fail_reply(m, r, "read returned message", ev->reason, sizeof ev->reason);
        ev->kind = MQ_EV_CLOSED;
        return ERR_MQ_CLOSED;
    }
    ev->message_id =
        mq_prop_dup(&msg.properties, AMQP_BASIC_MESSAGE_ID_FLAG, msg.properties.message_id);
    amqp_destroy_message(&msg);
    ev->kind = MQ_EV_RETURN;
    return ERR_OK;
}

/* The broker closed a channel or the connection: answer close-ok (rabbitmq-c does not), and
 * report the connection unusable; the owner reconnects. */
static int mq_on_close(mq *m, const amqp_frame_t *f, mq_event *ev)
{
    int code;
    amqp_bytes_t text;
    if (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = f->payload.method.decoded;
        code = c->reply_code, text = c->reply_text;
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(m->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        const amqp_connection_close_t *c = f->payload.method.decoded;
        code = c->reply_code, text = c->reply_text;
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(m->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    m->open = false;
    ev->kind = MQ_EV_CLOSED;
    ev->reply_code = code;
    snprintf(ev->reason, sizeof ev->reason, "%s closed by broker: %d %.*s",
             f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection", code,
             (int)text.len, (const char *)text.bytes);
    return ERR_MQ_CLOSED;
}

static int mq_on_method(mq *m, const amqp_frame_t *f, mq_event *ev)
{
    ev->channel = f->channel;
    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return mq_on_deliver(m, f, ev);
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f->payload.method.decoded;
        ev->kind = MQ_EV_ACK, ev->tag = a->delivery_tag, ev->multiple = a->multiple;
        return ERR_OK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        const amqp_basic_nack_t *a = f->payload.method.decoded;
        ev->kind = MQ_EV_NACK, ev->tag = a->delivery_tag, ev->multiple = a->multiple;
        return ERR_OK;
    }
    case AMQP_BASIC_RETURN_METHOD:
        return mq_on_return(m, f, ev);
    case AMQP_CONNECTION_BLOCKED_METHOD:
        m->blocked = true, ev->kind = MQ_EV_BLOCKED;
        return ERR_OK;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        m->blocked = false, ev->kind = MQ_EV_UNBLOCKED;
        return ERR_OK;
    case AMQP_BASIC_CANCEL_METHOD:
        m->consumer_tag[0] = '\0', ev->kind = MQ_EV_CANCELLED;
        return ERR_OK;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        return mq_on_close(m, f, ev);
    default:
        ev->kind = MQ_EV_TIMEOUT; /* an ok we did not wait for (e.g. cancel-ok): ignore */
        return ERR_OK;
    }
}

/* Wait for the socket or the wake fd without losing frames rabbitmq-c has already buffered.
 * Returns 1 when the socket may have data, 0 on timeout, 2 on wake. */
static int mq_wait_ready(mq *m, int timeout_ms, int wake_fd)
{
    if (amqp_frames_enqueued(m->conn) || amqp_data_in_buffer(m->conn))
        return 1;
    struct pollfd p[2] = {{amqp_get_sockfd(m->conn), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (n <= 0)
        return n < 0 && errno != EINTR ? 1 : 0;
    if (wake_fd >= 0 && (p[1].revents & POLLIN))
        return 2;
    return 1;
}

int mq_poll(mq *m, int timeout_ms, int wake_fd, mq_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (!m->open) {
        ev->kind = MQ_EV_CLOSED;
        snprintf(ev->reason, sizeof ev->reason, "connection already closed");
        return ERR_MQ_CLOSED;
    }
    amqp_maybe_release_buffers(m->conn);
    int ready = mq_wait_ready(m, timeout_ms, wake_fd);
    if (ready == 2) {
        ev->kind = MQ_EV_WAKE;
        return ERR_OK;
    }
    /* Even on timeout, one zero-wait call lets rabbitmq-c send a due heartbeat and notice a
     * silent broker (it only services heartbeats inside its own calls). */
    struct timeval tv = {0, ready ? 50000 : 0};
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(m->conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT) {
        ev->kind = MQ_EV_TIMEOUT;
        return ERR_OK;
    }
    if (st != AMQP_STATUS_OK) {
        m->open = false;
        ev->kind = MQ_EV_CLOSED;
        snprintf(ev->reason, sizeof ev->reason, "connection lost: %s", amqp_error_string2(st));
        return ERR_MQ_CLOSED;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) {
        ev->kind = MQ_EV_TIMEOUT; /* stray content frame: nothing to report */
        return ERR_OK;
    }
    return mq_on_method(m, &f, ev);
}

void mq_delivery_fini(mq_delivery *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nheaders; i++) {
        free((char *)d->headers[i].key);
        free((char *)d->headers[i].str);
    }
    free(d->headers);
    free(d->exchange);
    free(d->routing_key);
    free(d->message_id);
    free(d->user_id);
    free(d->content_type);
    free(d->expiration);
    free(d->body);
    memset(d, 0, sizeof *d);
}

void mq_event_fini(mq_event *ev)
{
    if (!ev)
        return;
    free(ev->message_id);
    ev->message_id = NULL;
    mq_delivery_fini(&ev->delivery);
}

const char *mq_delivery_header(const mq_delivery *d, const char *key)
{
    for (size_t i = 0; i < d->nheaders; i++) {
        if (strcmp(d->headers[i].key, key) == 0)
            return d->headers[i].str;
    }
    return NULL;
}

int64_t mq_delivery_header_int(const mq_delivery *d, const char *key, int64_t def)
{
    for (size_t i = 0; i < d->nheaders; i++) {
        if (strcmp(d->headers[i].key, key) == 0 && !d->headers[i].str)
            return d->headers[i].i;
    }
    return def;
}
