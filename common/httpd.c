/* httpd: /metrics and /healthz over libmicrohttpd's internal polling thread. */
#include "httpd.h"

#include "err.h"
#include "log.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTPD_CONN_MAX   16    /* scrapers and probes, not traffic: a few are plenty */
#define HTTPD_TIMEOUT_S  10    /* an idle or slow client is cut off after this */
#define HTTPD_MEM_MAX    32768 /* per connection: request line + headers; no bodies */
#define HTTPD_BACKLOG    16
#define HTTPD_REASON_MAX 256
#define HTTPD_METRICS_CT "text/plain; version=0.0.4; charset=utf-8"
#define HTTPD_TEXT_CT    "text/plain; charset=utf-8"

struct httpd {
    struct MHD_Daemon *daemon;
    metrics *registry;
    httpd_health_fn health;
    void *health_arg;
    char last_log[256]; /* libmicrohttpd's last message, to explain a failed start */
};

/* libmicrohttpd's messages end in '\n'; ours must not. */
__attribute__((format(printf, 2, 0))) static void httpd_logger(void *cls, const char *fmt,
                                                               va_list ap)
{
    httpd *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    snprintf(h->last_log, sizeof h->last_log, "%s", msg);
    log_warn("httpd: %s", msg);
}

static int httpd_parse_port(const char *s, int *port)
{
    char *end;
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return ERR_INVAL;
    long v = strtol(s, &end, 10);
    if (v > 65535)
        return ERR_INVAL;
    *port = (int)v;
    return ERR_OK;
}

/* Split addr into host (into buf) and port text; brackets stripped from an IPv6 host. */
static int httpd_split(const char *addr, char *host, size_t cap, const char **port)
{
    const char *colon = strrchr(addr, ':');
    size_t hl;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            return ERR_INVAL;
        *port = close[1] == ':' ? close + 2 : NULL;
        addr++, hl = (size_t)(close - addr);
    } else if (colon && strchr(addr, ':') != colon) {
        return ERR_INVAL; /* a bare IPv6 address needs brackets to carry a port */
    } else {
        *port = colon ? colon + 1 : NULL;
        hl = colon ? (size_t)(colon - addr) : strlen(addr);
    }
    if (hl >= cap)
        return ERR_INVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    return ERR_OK;
}

int httpd_parse_addr(const char *addr, int default_port, struct sockaddr_storage *out,
                     socklen_t *out_len, char *err, size_t cap)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s = NULL;
    int port = default_port;
    if (!addr)
        addr = "";
    memset(out, 0, sizeof *out);
    if (httpd_split(addr, host, sizeof host, &port_s) != ERR_OK ||
        (port_s && httpd_parse_port(port_s, &port) != ERR_OK) || port < 0 || port > 65535)
        goto bad;
    if (!*host || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "%s", *host ? "127.0.0.1" : HTTPD_DEFAULT_HOST);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *out_len = sizeof *v4;
        return ERR_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *out_len = sizeof *v6;
        return ERR_OK;
    }
bad:
    snprintf(err, cap, "metrics address '%s': expected HOST:PORT with a numeric IP or localhost",
             addr);
    return ERR_INVAL;
}

static enum MHD_Result httpd_reply(struct MHD_Connection *c, unsigned status, char *body,
                                   size_t len, const char *type, bool must_free)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (must_free)
            free(body);
        return MHD_NO; /* libmicrohttpd closes the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result httpd_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return httpd_reply(c, status, (char *)text, strlen(text), HTTPD_TEXT_CT, false);
}

static enum MHD_Result httpd_metrics(const httpd *h, struct MHD_Connection *c)
{
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(h->registry, &text, &len) != ERR_OK)
        return httpd_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return httpd_reply(c, MHD_HTTP_OK, text, len, HTTPD_METRICS_CT, true);
}

static enum MHD_Result httpd_health(const httpd *h, struct MHD_Connection *c)
{
    char reason[HTTPD_REASON_MAX] = "", body[HTTPD_REASON_MAX + 16];
    if (!h->health || h->health(h->health_arg, reason, sizeof reason))
        return httpd_text(c, MHD_HTTP_OK, "ok\n");
    snprintf(body, sizeof body, "unhealthy: %s\n", reason[0] ? reason : "no reason given");
    return httpd_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result httpd_handle(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    const httpd *h = cls;
    (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    bool is_metrics = strcmp(url, "/metrics") == 0 && h->registry;
    bool is_health = strcmp(url, "/healthz") == 0;
    if (!is_metrics && !is_health)
        return httpd_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return httpd_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    return is_metrics ? httpd_metrics(h, c) : httpd_health(h, c);
}

int httpd_start(const httpd_opts *o, httpd **out, char *err, size_t cap)
{
    struct sockaddr_storage sa;
    socklen_t sl;
    *out = NULL;
    int rc = httpd_parse_addr(o->addr, o->default_port, &sa, &sl, err, cap);
    if (rc != ERR_OK)
        return rc;
    httpd *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, cap, "metrics server: out of memory");
        return ERR_NOMEM;
    }
    h->registry = o->registry, h->health = o->health, h->health_arg = o->health_arg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG |
                     (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    uint16_t port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                   : ((struct sockaddr_in *)&sa)->sin_port);
    /* The logger goes first: libmicrohttpd prints to stderr for options read before it. */
    h->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, httpd_handle, h, MHD_OPTION_EXTERNAL_LOGGER, httpd_logger, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTPD_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPD_MEM_MAX, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)HTTPD_BACKLOG, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, cap, "metrics server on %s: %s", o->addr ? o->addr : "(default)",
                 h->last_log[0] ? h->last_log : "cannot start");
        free(h);
        return ERR_IO;
    }
    *out = h;
    return ERR_OK;
}

bool httpd_addr_off(const char *addr)
{
    return addr && (addr[0] == '\0' || strcmp(addr, "off") == 0);
}

int httpd_serve(const httpd_opts *o, httpd **out)
{
    char err[320] = "";
    *out = NULL;
    if (httpd_addr_off(o->addr))
        return ERR_OK;
    int rc = httpd_start(o, out, err, sizeof err);
    if (rc == ERR_OK) {
        log_notice("metrics and health on port %d", httpd_port(*out));
        return ERR_OK;
    }
    if (!o->addr) {
        log_warn("%s; running without /metrics and /healthz (set --metrics-addr)", err);
        return ERR_OK;
    }
    log_err("--metrics-addr %s: %s", o->addr, err);
    return rc;
}

int httpd_port(const httpd *h)
{
    const union MHD_DaemonInfo *i =
        h ? MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return i ? i->port : 0;
}

void httpd_stop(httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
