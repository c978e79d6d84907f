/* test_httpd: address parsing, and a real server on 127.0.0.1 spoken to with a raw socket:
 * /metrics, /healthz turning 503 and back, 404/405, HEAD, bind address and port conflicts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "httpd.h"
#include "httpreq.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void test_parse_addr(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        int rc, family, port;
        const char *ip;
    } rows[] = {
        {"127.0.0.1:9000", ERR_OK, AF_INET, 9000, "127.0.0.1"},
        {NULL, ERR_OK, AF_INET, 9471, "127.0.0.1"},
        {"", ERR_OK, AF_INET, 9471, "127.0.0.1"},
        {":0", ERR_OK, AF_INET, 0, "127.0.0.1"},
        {"localhost", ERR_OK, AF_INET, 9471, "127.0.0.1"},
        {"0.0.0.0:80", ERR_OK, AF_INET, 80, "0.0.0.0"},
        {"[::1]:9100", ERR_OK, AF_INET6, 9100, "::1"},
        {"[::]", ERR_OK, AF_INET6, 9471, "::"},
        {"metrics.example:80", ERR_INVAL, 0, 0, NULL},
        {"::1:80", ERR_INVAL, 0, 0, NULL},
        {"1.2.3.4:70000", ERR_INVAL, 0, 0, NULL},
        {"1.2.3.4:-1", ERR_INVAL, 0, 0, NULL},
        {"1.2.3.4:8a", ERR_INVAL, 0, 0, NULL},
        {"1.2.3.4:", ERR_INVAL, 0, 0, NULL},
        {"[::1", ERR_INVAL, 0, 0, NULL},
        {"[::1]x", ERR_INVAL, 0, 0, NULL},
        {"1.2.3.400", ERR_INVAL, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char err[256] = "", ip[64] = "";
        int rc = httpd_parse_addr(rows[i].addr, HTTPD_PORT_WORKER, &ss, &len, err, sizeof err);
        if (rc != rows[i].rc)
            fail_msg("row %zu (%s): rc %d", i, rows[i].addr, rc);
        if (rc != ERR_OK) {
            assert_non_null(strstr(err, "expected HOST:PORT"));
            continue;
        }
        assert_int_equal(ss.ss_family, rows[i].family);
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
        const void *a = ss.ss_family == AF_INET ? (const void *)&v4->sin_addr : &v6->sin6_addr;
        inet_ntop(ss.ss_family, a, ip, sizeof ip);
        assert_string_equal(ip, rows[i].ip);
        assert_int_equal(ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port),
                         rows[i].port);
        assert_int_equal(len, ss.ss_family == AF_INET ? sizeof *v4 : sizeof *v6);
    }
}

static atomic_bool healthy = true;

static bool health_cb(void *arg, char *reason, size_t cap)
{
    assert_ptr_equal(arg, &healthy);
    if (atomic_load(&healthy))
        return true;
    snprintf(reason, cap, "broker connection down");
    return false;
}

static void test_serve(void **state)
{
    (void)state;
    metrics *m = metrics_new();
    metrics_family *f =
        metrics_counter(m, "salvo_jobs_started_total", "Jobs started.", "schedule", NULL);
    metrics_add(metrics_with(f, "nightly", NULL), 7);
    httpd *h = NULL;
    char err[256] = "";
    httpd_opts o = {
        .addr = "127.0.0.1:0", .registry = m, .health = health_cb, .health_arg = &healthy};
    assert_int_equal(httpd_start(&o, &h, err, sizeof err), ERR_OK);
    int port = httpd_port(h);
    assert_true(port > 0);

    httpreq_reply r;
    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
    char *want = NULL;
    assert_int_equal(metrics_render(m, &want, NULL), ERR_OK);
    assert_string_equal(r.body, want);
    assert_non_null(strstr(r.body, "salvo_jobs_started_total{schedule=\"nightly\"} 7\n"));
    free(want);

    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    atomic_store(&healthy, false);
    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "unhealthy: broker connection down\n");
    atomic_store(&healthy, true);
    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/healthz?verbose=1", &r), 0);
    assert_int_equal(r.status, 200);

    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/metricsx", &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/", &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(httpreq_send("127.0.0.1", port, "POST", "/metrics", &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD"));
    assert_int_equal(httpreq_send("127.0.0.1", port, "HEAD", "/metrics", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "");

    /* Bound to 127.0.0.1 only: another loopback address on the same port is refused. */
    httpreq_reply other;
    assert_int_equal(httpreq_send("127.0.0.2", port, "GET", "/healthz", &other), -1);

    /* The port is taken: a second server fails with the reason. */
    httpd *h2 = NULL;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    o.addr = addr;
    assert_int_equal(httpd_start(&o, &h2, err, sizeof err), ERR_IO);
    assert_null(h2);
    assert_non_null(strstr(err, addr));

    httpd_stop(h);
    assert_int_equal(httpreq_send("127.0.0.1", port, "GET", "/healthz", &r), -1);
    metrics_free(m);
}

static void test_defaults(void **state)
{
    (void)state;
    httpd *h = NULL;
    char err[256] = "";
    httpd_opts o = {.addr = ":0"}; /* no registry, no health callback */
    assert_int_equal(httpd_start(&o, &h, err, sizeof err), ERR_OK);
    httpreq_reply r;
    assert_int_equal(httpreq_send("127.0.0.1", httpd_port(h), "GET", "/healthz", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(httpreq_send("127.0.0.1", httpd_port(h), "GET", "/metrics", &r), 0);
    assert_int_equal(r.status, 404);
    httpd_stop(h);
    httpd_stop(NULL);
    o.addr = "nowhere:1";
    assert_int_equal(httpd_start(&o, &h, err, sizeof err), ERR_INVAL);
    assert_null(h);
}

/* httpd_serve: "off" and "" serve nothing; a taken default port is only a warning (a second
 * process of one role on a host), a taken explicit port is an error. */
static void test_serve_opt(void **state)
{
    (void)state;
    assert_true(httpd_addr_off("off"));
    assert_true(httpd_addr_off(""));
    assert_false(httpd_addr_off(NULL));
    assert_false(httpd_addr_off("127.0.0.1:0"));
    httpd *h = (httpd *)1, *h2 = (httpd *)1;
    httpd_opts o = {.addr = "off"};
    assert_int_equal(httpd_serve(&o, &h), ERR_OK);
    assert_null(h);
    o.addr = "127.0.0.1:0";
    assert_int_equal(httpd_serve(&o, &h), ERR_OK);
    assert_non_null(h);
    int port = httpd_port(h);
    assert_true(port > 0);
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
    o.addr = taken;
    assert_int_equal(httpd_serve(&o, &h2), ERR_IO);
    assert_null(h2);
    o.addr = NULL;
    o.default_port = port;
    h2 = (httpd *)1;
    assert_int_equal(httpd_serve(&o, &h2), ERR_OK);
    assert_null(h2);
    httpd_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_serve_opt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
