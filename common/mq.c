/* mq: AMQP connection lifecycle over librabbitmq-c 0.11: connect with fail-over across URLs,
 * login with capabilities, topology declaration, consume and settle. Events: mqpoll.c. */
#include "mq_internal.h"

#include "err.h"
#include "log.h"
#include "redact.h"
#include "topology.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MQ_FRAME_MAX   131072 /* rabbitmq-c's default; a 256 KiB body spans two frames */
#define MQ_URLS_MAX    16
#define MQ_DEF_HB_S    10 /* well under RabbitMQ's 60 s; dead peers are noticed in 20 s */
#define MQ_DEF_CONN_MS 5000
#define MQ_DEF_RPC_MS  10000

static atomic_uint_fast64_t mq_next_gen = 1;

void mq_global_init(void)
{
    /* A broken broker socket must surface as an error code, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    amqp_set_initialize_ssl_library(1);
    amqp_initialize_ssl_library();
}

int mq_opts_check(const mq_opts *o, char *err, size_t cap)
{
    const char *const files[][2] = {
        {"--tls-ca", o->tls_ca}, {"--tls-cert", o->tls_cert}, {"--tls-key", o->tls_key}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (files[i][1] && access(files[i][1], R_OK) != 0) {
            snprintf(err, cap, "%s %s: not a readable file", files[i][0], files[i][1]);
            return ERR_INVAL;
        }
    }
    if (!o->tls_cert != !o->tls_key) {
        snprintf(err, cap,
                 "--tls-cert and --tls-key go together (a client certificate and its key)");
        return ERR_INVAL;
    }
    return ERR_OK;
}

int mq_fail_reply(mq *m, amqp_rpc_reply_t r, const char *what, char *err, size_t cap)
{
    m->open = false;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(err, cap, "%s: %s", what, amqp_error_string2(r.library_error));
        return ERR_MQ_CLOSED;
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        const amqp_bytes_t *text = NULL;
        int code = 0;
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *c = r.reply.decoded;
            code = c->reply_code, text = &c->reply_text;
        } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *c = r.reply.decoded;
            code = c->reply_code, text = &c->reply_text;
        }
        snprintf(err, cap, "%s: broker said %d %.*s", what, code, text ? (int)text->len : 0,
                 text ? (const char *)text->bytes : "");
        return ERR_MQ_CHANNEL;
    }
    snprintf(err, cap, "%s: no reply", what);
    return ERR_MQ_CLOSED;
}

static amqp_socket_t *mq_socket_new(mq *m, const struct amqp_connection_info *ci, const mq_opts *o,
                                    char *err, size_t cap)
{
    if (!ci->ssl) {
        amqp_socket_t *s = amqp_tcp_socket_new(m->conn);
        if (!s)
            snprintf(err, cap, "cannot create TCP socket");
        return s;
    }
    amqp_socket_t *s = amqp_ssl_socket_new(m->conn);
    if (!s) {
        snprintf(err, cap, "cannot create TLS socket");
        return NULL;
    }
    /* Peer and hostname verification are 0.11's defaults; set anyway, so a library default that
     * changes can never turn them off. TLS 1.0 and 1.1 are refused. */
    amqp_ssl_socket_set_verify_peer(s, 1);
    amqp_ssl_socket_set_verify_hostname(s, 1);
    if (amqp_ssl_socket_set_ssl_versions(s, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
        snprintf(err, cap, "cannot restrict TLS to 1.2 and later");
        return NULL;
    }
    if (o->tls_ca && amqp_ssl_socket_set_cacert(s, o->tls_ca) != AMQP_STATUS_OK) {
        snprintf(err, cap, "cannot load CA file %s", o->tls_ca);
        return NULL;
    }
    if (!o->tls_cert != !o->tls_key) {
        snprintf(err, cap, "a client certificate needs its key and a key its certificate");
        return NULL;
    }
    if (o->tls_cert && o->tls_key &&
        amqp_ssl_socket_set_key(s, o->tls_cert, o->tls_key) != AMQP_STATUS_OK) {
        snprintf(err, cap, "cannot load client certificate %s", o->tls_cert);
        return NULL;
    }
    return s;
}

/* Client properties: the name shown in the management UI, and the capabilities without which
 * the broker sends neither connection.blocked nor basic.cancel. */
static amqp_rpc_reply_t mq_login(mq *m, const struct amqp_connection_info *ci, const mq_opts *o)
{
    amqp_table_entry_t caps[] = {
        {amqp_cstring_bytes("consumer_cancel_notify"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("connection.blocked"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("publisher_confirms"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("basic.nack"), {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
        {amqp_cstring_bytes("authentication_failure_close"),
         {AMQP_FIELD_KIND_BOOLEAN, {.boolean = 1}}},
    };
    amqp_table_entry_t props[] = {
        {amqp_cstring_bytes("connection_name"),
         {AMQP_FIELD_KIND_UTF8,
          {.bytes = amqp_cstring_bytes(o->conn_name ? o->conn_name : "salvo")}}},
        {amqp_cstring_bytes("product"),
         {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes("salvo")}}},
        {amqp_cstring_bytes("capabilities"),
         {AMQP_FIELD_KIND_TABLE, {.table = {sizeof caps / sizeof caps[0], caps}}}},
    };
    amqp_table_t table = {sizeof props / sizeof props[0], props};
    int hb = o->heartbeat_s > 0 ? o->heartbeat_s : MQ_DEF_HB_S;
    return amqp_login_with_properties(m->conn, ci->vhost, 0, MQ_FRAME_MAX, hb, &table,
                                      AMQP_SASL_METHOD_PLAIN, ci->user, ci->password);
}

int mq_open_channel(mq *m, int ch, char *err, size_t cap)
{
    amqp_channel_open(m->conn, (amqp_channel_t)ch);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(m->conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        return mq_fail_reply(m, r, "channel.open", err, cap);
    m->chan_open[ch] = true;
    return ERR_OK;
}

/* rabbitmq-c writes with no deadline and only checks heartbeats while reading, so a publish to
 * a broker that vanished mid-write could hang; the kernel gives up on unacknowledged data after
 * TCP_USER_TIMEOUT instead, and the write fails. */
static void mq_set_user_timeout(mq *m, const mq_opts *o)
{
    int hb = o->heartbeat_s > 0 ? o->heartbeat_s : MQ_DEF_HB_S;
    unsigned ms = (unsigned)hb * 2000u;
    int fd = amqp_get_sockfd(m->conn);
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) != 0)
        log_debug("TCP_USER_TIMEOUT not set on the broker socket");
}

static int mq_connect_one(mq *m, const char *url, const mq_opts *o, char *err, size_t cap)
{
    char *copy = strdup(url);
    struct amqp_connection_info ci;
    int rc = ERR_NOMEM;
    if (!copy)
        goto out;
    rc = ERR_INVAL;
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        snprintf(err, cap, "not an amqp:// or amqps:// URL");
        goto out;
    }
    /* "amqp://host/" parses to an empty vhost; nobody means that, everybody means "/". */
    if (ci.vhost[0] == '\0')
        ci.vhost = "/";
    snprintf(m->endpoint, sizeof m->endpoint, "%s://%s@%s:%d%s%s", ci.ssl ? "amqps" : "amqp",
             ci.user, ci.host, ci.port, ci.vhost[0] == '/' ? "" : "/", ci.vhost);
    snprintf(m->user, sizeof m->user, "%s", ci.user);
    rc = ERR_MQ_CONNECT;
    m->conn = amqp_new_connection();
    amqp_socket_t *sock = m->conn ? mq_socket_new(m, &ci, o, err, cap) : NULL;
    if (!sock)
        goto out;
    int conn_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : MQ_DEF_CONN_MS;
    struct timeval tv = {conn_ms / 1000, (conn_ms % 1000) * 1000};
    int st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, cap, "connect: %s", amqp_error_string2(st));
        goto out;
    }
    amqp_set_handshake_timeout(m->conn, &tv);
    amqp_rpc_reply_t r = mq_login(m, &ci, o);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        rc = ERR_MQ_LOGIN;
        mq_fail_reply(m, r, "login", err, cap);
        goto out;
    }
    m->open = true;
    mq_set_user_timeout(m, o);
    int rpc_ms = o->rpc_timeout_ms > 0 ? o->rpc_timeout_ms : MQ_DEF_RPC_MS;
    struct timeval rtv = {rpc_ms / 1000, (rpc_ms % 1000) * 1000};
    amqp_set_rpc_timeout(m->conn, &rtv);
    rc = mq_open_channel(m, MQ_CH_MAIN, err, cap);
    if (rc == ERR_OK)
        rc = mq_open_channel(m, MQ_CH_PUBLISH, err, cap);
out:
    free(copy);
    return rc;
}

/* Split "a, b ,c" into trimmed pieces inside buf; returns the count. */
static size_t mq_split_urls(char *buf, char **urls)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n < MQ_URLS_MAX;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t len = strlen(t);
        while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
            t[--len] = '\0';
        if (len)
            urls[n++] = t;
    }
    return n;
}

static void mq_destroy_conn(mq *m)
{
    if (m->conn)
        amqp_destroy_connection(m->conn);
    m->conn = NULL;
    m->open = false;
}

int mq_connect(const mq_opts *o, size_t *next_url, mq **out, char *err, size_t cap)
{
    char *buf = strdup(o->urls ? o->urls : "");
    char *urls[MQ_URLS_MAX];
    mq *m = calloc(1, sizeof *m);
    int rc = ERR_NOMEM;
    if (!buf || !m)
        goto fail;
    size_t n = mq_split_urls(buf, urls);
    rc = ERR_INVAL;
    if (n == 0) {
        snprintf(err, cap, "no broker URL given");
        goto fail;
    }
    for (size_t k = 0; k < n; k++) {
        size_t idx = (*next_url + k) % n;
        char one[256] = "";
        rc = mq_connect_one(m, urls[idx], o, one, sizeof one);
        if (rc == ERR_OK) {
            *next_url = idx;
            m->gen = atomic_fetch_add(&mq_next_gen, 1);
            free(buf);
            *out = m;
            return ERR_OK;
        }
        char red[256];
        redact_url(urls[idx], red, sizeof red);
        snprintf(err, cap, "%s: %s", red, one);
        mq_destroy_conn(m);
    }
fail:
    free(buf);
    free(m);
    return rc;
}

void mq_free(mq *m)
{
    if (!m)
        return;
    /* Polite close only on a healthy connection: after a socket error rabbitmq-c's close
     * calls can block or crash (rabbitmq-c #458). Both are bounded by the RPC timeout. A
     * blocked connection is not read by the broker, so a close would only wait out that
     * timeout: drop it instead. */
    if (m->open && m->conn && !m->blocked) {
        for (int ch = MQ_CHANNELS - 1; ch >= MQ_CH_MAIN; ch--) {
            if (m->chan_open[ch])
                amqp_channel_close(m->conn, (amqp_channel_t)ch, AMQP_REPLY_SUCCESS);
        }
        amqp_connection_close(m->conn, AMQP_REPLY_SUCCESS);
    }
    mq_destroy_conn(m);
    free(m);
}

void mq_abandon(mq *m)
{
    if (m)
        m->open = false;
}

const char *mq_endpoint(const mq *m)
{
    return m->endpoint;
}

const char *mq_user(const mq *m)
{
    return m->user;
}

uint64_t mq_generation(const mq *m)
{
    return m->gen;
}

bool mq_is_open(const mq *m)
{
    return m && m->open;
}

bool mq_is_blocked(const mq *m)
{
    return m->blocked;
}

int mq_backoff_ms(unsigned n)
{
    unsigned shift = n > 7 ? 7 : (n ? n - 1 : 0);
    unsigned d = 500u << shift;
    if (d > 30000)
        d = 30000;
    unsigned r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned)n * 2654435761u;
    return (int)(d / 2 + r % (d / 2 + 1));
}
