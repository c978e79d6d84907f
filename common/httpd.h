/* httpd: the small HTTP server every salvo process runs for Prometheus and health checks
 * (GET /metrics, GET /healthz), on libmicrohttpd's own thread. The only file that includes
 * <microhttpd.h>.
 *
 * Why a separate thread: a scrape must answer even while the main loop waits on the broker, and
 * must never block it; everything the server reads (the metrics registry, the health callback)
 * is thread-safe, so the server shares no lock with the job path. */
#ifndef SALVO_HTTPD_H
#define SALVO_HTTPD_H

#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Default ports, one per role so a producer and a worker can share a host. */
#define HTTPD_PORT_PRODUCER 9470
#define HTTPD_PORT_WORKER   9471
#define HTTPD_DEFAULT_HOST  "127.0.0.1" /* metrics stay private unless asked otherwise */

/* Health: return true when healthy; otherwise write a short reason ("broker connection down")
 * into reason. Called on the server thread for every GET /healthz: must be thread-safe, quick
 * and non-blocking (read atomics the main loop sets). */
typedef bool (*httpd_health_fn)(void *arg, char *reason, size_t cap);

typedef struct httpd_opts {
    const char *addr;       /* --metrics-addr value; NULL = HTTPD_DEFAULT_HOST:default_port */
    int default_port;       /* used when addr names no port; 0 = any free port */
    metrics *registry;      /* borrowed, must outlive the server; NULL = /metrics is 404 */
    httpd_health_fn health; /* NULL = always healthy */
    void *health_arg;       /* passed to health */
} httpd_opts;

typedef struct httpd httpd;

/* Parse "HOST:PORT", "HOST", ":PORT" or "[IPv6]:PORT" into a socket address. HOST is a numeric
 * IPv4/IPv6 address or "localhost" (127.0.0.1); no DNS, so a typo cannot bind somewhere
 * unexpected. A missing host is HTTPD_DEFAULT_HOST, a missing port default_port.
 * ERR_OK or ERR_INVAL with err saying why. Thread-safe. */
int httpd_parse_addr(const char *addr, int default_port, struct sockaddr_storage *out,
                     socklen_t *out_len, char *err, size_t cap);

/* Bind to exactly that address and serve on an internal thread:
 *   GET /metrics  200, text/plain; version=0.0.4 (the registry rendered)
 *   GET /healthz  200 "ok", or 503 "unhealthy: <reason>"
 *   other paths 404, other methods 405 (HEAD works like GET).
 * At most 16 connections, 10 s idle timeout, 32 KiB per request. ERR_OK with *out set, ERR_INVAL
 * (bad address) or ERR_IO (bind failed: err has the libmicrohttpd text), ERR_NOMEM.
 * Call from the main thread; the server thread runs until httpd_stop. */
int httpd_start(const httpd_opts *o, httpd **out, char *err, size_t cap);

/* The port actually bound (useful with port 0). */
int httpd_port(const httpd *h);

/* True when a --metrics-addr value turns the server off: "off" or "". NULL (not given) is on. */
bool httpd_addr_off(const char *addr);

/* Start the server a --metrics-addr value asks for, logging the outcome. addr "off" or "" : no
 * server (ERR_OK, *out NULL). addr NULL: the role's default port on HTTPD_DEFAULT_HOST, where a
 * bind failure is only a warning (ERR_OK, *out NULL), because a second process of the same role
 * on one host finds the port taken and must still run. An explicit address that cannot be used
 * is an error (ERR_INVAL, ERR_IO, ERR_NOMEM; logged), which callers treat as a configuration
 * error. o->addr is the value; the rest as for httpd_start. Call from the main thread. */
int httpd_serve(const httpd_opts *o, httpd **out);

/* Stop the server, waiting for its thread and open requests to finish; NULL-safe. */
void httpd_stop(httpd *h);

#endif
