/* test_httpcall: libcurl transfers built from jobs, against an in-process HTTP server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "httpcall.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct MHD_Daemon *server;
static uint16_t server_port;

/* Request body collected across MHD's upload callbacks. */
typedef struct upload {
    char buf[4096];
    size_t len;
} upload;

static enum MHD_Result count_key(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    if (strcasecmp(key, "Idempotency-Key") == 0)
        (*(int *)cls)++;
    return MHD_YES;
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "-";
}

/* Routes: /status/N, /slow/MS, /retry-after, /big, /redirect, anything else echoes. */
static struct MHD_Response *route(struct MHD_Connection *c, const char *url, const char *method,
                                  const upload *up, unsigned *status)
{
    static char big[100000];
    char text[8192];
    *status = 200;
    if (strncmp(url, "/status/", 8) == 0) {
        *status = (unsigned)atoi(url + 8);
        snprintf(text, sizeof text, "status %u", *status);
    } else if (strncmp(url, "/slow/", 6) == 0) {
        usleep((useconds_t)atoi(url + 6) * 1000);
        snprintf(text, sizeof text, "slow");
    } else if (strcmp(url, "/retry-after") == 0) {
        *status = 503;
        struct MHD_Response *r = MHD_create_response_from_buffer(4, "busy", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Retry-After", "7");
        return r;
    } else if (strcmp(url, "/big") == 0) {
        memset(big, 'a', sizeof big);
        return MHD_create_response_from_buffer(sizeof big, big, MHD_RESPMEM_PERSISTENT);
    } else if (strcmp(url, "/redirect") == 0) {
        *status = 302;
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", "/status/200");
        return r;
    } else {
        int nkey = 0;
        MHD_get_connection_values(c, MHD_HEADER_KIND, count_key, &nkey);
        snprintf(text, sizeof text, "method=%s key=%s nkey=%d attempt=%s sched=%s x=%s body=%.*s",
                 method, hdr(c, "Idempotency-Key"), nkey, hdr(c, "X-Salvo-Attempt"),
                 hdr(c, "X-Salvo-Scheduled-At"), hdr(c, "X-Custom"), (int)up->len, up->buf);
    }
    return MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    upload *up = *con_cls;
    if (!up) {
        *con_cls = calloc(1, sizeof *up);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*data_size) {
        size_t n = *data_size < sizeof up->buf - up->len ? *data_size : sizeof up->buf - up->len;
        memcpy(up->buf + up->len, data, n);
        up->len += n;
        *data_size = 0;
        return MHD_YES;
    }
    unsigned status;
    struct MHD_Response *r = route(c, url, method, up, &status);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode tc)
{
    (void)cls;
    (void)c;
    (void)tc;
    free(*con_cls);
    *con_cls = NULL;
}

static int start_server(void **state)
{
    (void)state;
    server = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                              NULL, NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done,
                              NULL, MHD_OPTION_CONNECTION_LIMIT, 2000u,
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!server)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT);
    server_port = info->port;
    return httpcall_global_init() == ERR_OK ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    MHD_stop_daemon(server);
    httpcall_global_fini();
    return 0;
}

/* A job as the decoder would leave it, built from literals (the test never frees it). */
static job make_job(const char *method, const char *path, uint32_t timeout_ms)
{
    static char urls[256][128];
    static int next;
    char *url = urls[next++ % 256];
    if (strstr(path, "://"))
        snprintf(url, 128, "%s", path);
    else
        snprintf(url, 128, "http://127.0.0.1:%u%s", server_port, path);
    job j;
    memset(&j, 0, sizeof j);
    j.id = "sched@20260101T000000Z#3";
    j.due_ms = 1767225600000; /* 2026-01-01T00:00:00Z */
    j.attempt = 2;
    j.max_attempts = 4;
    j.kind = JOB_HTTP;
    j.http.method = (char *)method;
    j.http.url = url;
    j.http.connect_timeout_ms = 2000;
    j.http.timeout_ms = timeout_ms;
    return j;
}

/* Run calls on one multi until every one finished (or 10 s passed); returns how many. */
static size_t run_all(httpcall_multi *m, httpcall **calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(httpcall_start(m, calls[i]), ERR_OK);
    size_t done = 0;
    int64_t end = clock_mono_ns() + 10 * CLOCK_NS_PER_SEC;
    while (done < n && clock_mono_ns() < end) {
        assert_int_equal(httpcall_multi_perform(m), ERR_OK);
        while (httpcall_multi_next_done(m))
            done++;
        if (done < n)
            assert_int_equal(httpcall_multi_poll(m, NULL, 0, 200), ERR_OK);
    }
    return done;
}

static const httpcall_result *run_one(const job *j, size_t cap, httpcall **out)
{
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    char reason[128];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    assert_int_equal(httpcall_new(j, cap, out, reason, sizeof reason), ERR_OK);
    assert_int_equal(run_all(m, out, 1), 1);
    assert_int_equal(httpcall_multi_active(m), 0);
    httpcall_multi_free(m);
    return httpcall_result_get(*out);
}

/* The salvo headers arrive once each; the job's own headers pass, its Idempotency-Key does not. */
static void test_headers(void **state)
{
    (void)state;
    job j = make_job("GET", "/echo", 5000);
    job_kv hs[] = {{"X-Custom", "hello"}, {"idempotency-key", "forged"}};
    j.http.headers = hs;
    j.http.nheaders = 2;
    httpcall *c = NULL;
    const httpcall_result *r = run_one(&j, 4096, &c);
    assert_int_equal(r->err, HTTPCALL_OK);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "method=GET key=sched@20260101T000000Z#3 nkey=1 attempt=2 "
                                 "sched=2026-01-01T00:00:00.000Z x=hello body=");
    assert_int_equal(r->retry_after_ms, -1);
    httpcall_free(c);
}

typedef struct method_row {
    const char *method;
    const char *body;
    const char *want;
} method_row;

static void test_methods(void **state)
{
    (void)state;
    static const method_row rows[] = {
        {"POST", "{\"a\":1}", "method=POST"}, {"PUT", "payload", "method=PUT"},
        {"DELETE", NULL, "method=DELETE"},    {"PATCH", "p", "method=PATCH"},
        {"POST", NULL, "method=POST"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        job j = make_job(rows[i].method, "/echo", 5000);
        j.http.body = (char *)rows[i].body;
        j.http.body_len = rows[i].body ? strlen(rows[i].body) : 0;
        httpcall *c = NULL;
        const httpcall_result *r = run_one(&j, 4096, &c);
        assert_int_equal(r->status, 200);
        assert_non_null(strstr(r->body, rows[i].want));
        char want_body[64];
        snprintf(want_body, sizeof want_body, "body=%s", rows[i].body ? rows[i].body : "");
        assert_non_null(strstr(r->body, want_body));
        httpcall_free(c);
    }
}

typedef struct status_row {
    const char *path;
    bool follow;
    httpcall_err err;
    int status;
    int64_t retry_after_ms;
} status_row;

static void test_statuses(void **state)
{
    (void)state;
    const status_row rows[] = {
        {"/status/404", false, HTTPCALL_OK, 404, -1},
        {"/status/500", false, HTTPCALL_OK, 500, -1},
        {"/status/204", false, HTTPCALL_OK, 204, -1},
        {"/retry-after", false, HTTPCALL_OK, 503, 7000},
        {"/redirect", false, HTTPCALL_OK, 302, -1},
        {"/redirect", true, HTTPCALL_OK, 200, -1},
        {"ftp://127.0.0.1/x", false, HTTPCALL_INVALID, 0, -1},
        {"file:///etc/hostname", false, HTTPCALL_INVALID, 0, -1},
        {"gopher://127.0.0.1/", false, HTTPCALL_INVALID, 0, -1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        job j = make_job("GET", rows[i].path, 5000);
        j.http.follow_redirects = rows[i].follow;
        httpcall *c = NULL;
        const httpcall_result *r = run_one(&j, 4096, &c);
        print_message("row %zu %s: err %d status %d\n", i, rows[i].path, r->err, r->status);
        assert_int_equal(r->err, rows[i].err);
        assert_int_equal(r->status, rows[i].status);
        assert_int_equal(r->retry_after_ms, rows[i].retry_after_ms);
        if (r->err != HTTPCALL_OK)
            assert_true(r->error[0] != '\0');
        httpcall_free(c);
    }
}

static void test_timeout(void **state)
{
    (void)state;
    job j = make_job("GET", "/slow/3000", 300);
    httpcall *c = NULL;
    int64_t t0 = clock_mono_ns();
    const httpcall_result *r = run_one(&j, 4096, &c);
    int64_t ms = (clock_mono_ns() - t0) / CLOCK_NS_PER_MS;
    assert_int_equal(r->err, HTTPCALL_TIMEOUT);
    assert_true(ms >= 250 && ms < 2000);
    httpcall_free(c);
}

static void test_connect_refused(void **state)
{
    (void)state;
    /* A port that was just free: bind, read it back, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", ntohs(a.sin_port));
    job j = make_job("GET", url, 2000);
    httpcall *c = NULL;
    const httpcall_result *r = run_one(&j, 4096, &c);
    assert_int_equal(r->err, HTTPCALL_CONNECT);
    assert_int_equal(r->status, 0);
    httpcall_free(c);
}

static void test_capture_cap(void **state)
{
    (void)state;
    job j = make_job("GET", "/big", 5000);
    httpcall *c = NULL;
    const httpcall_result *r = run_one(&j, 1024, &c);
    assert_int_equal(r->err, HTTPCALL_OK);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, 1024);
    assert_true(r->truncated);
    assert_int_equal(strlen(r->body), 1024);
    httpcall_free(c);
}

static void test_header_injection(void **state)
{
    (void)state;
    job j = make_job("GET", "/echo", 5000);
    job_kv hs[] = {{"X-Custom", "a\r\nX-Evil: 1"}};
    j.http.headers = hs;
    j.http.nheaders = 1;
    httpcall *c = NULL;
    char reason[128] = "";
    assert_int_equal(httpcall_new(&j, 4096, &c, reason, sizeof reason), ERR_INVAL);
    assert_null(c);
    assert_non_null(strstr(reason, "X-Custom"));
}

/* One thread, one multi, 200 concurrent half-second requests: about half a second, not the 100 s
 * they would take one after another (the bound leaves room for sanitizer builds). */
static void test_concurrency(void **state)
{
    (void)state;
    enum { N = 200 };
    static httpcall *calls[N];
    static job jobs[N];
    httpcall_limits lim = {N, N, N};
    httpcall_multi *m = NULL;
    char reason[128];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    for (int i = 0; i < N; i++) {
        jobs[i] = make_job("GET", "/slow/500", 10000);
        assert_int_equal(httpcall_new(&jobs[i], 256, &calls[i], reason, sizeof reason), ERR_OK);
    }
    int64_t t0 = clock_mono_ns();
    assert_int_equal(run_all(m, calls, N), N);
    int64_t ms = (clock_mono_ns() - t0) / CLOCK_NS_PER_MS;
    print_message("%d concurrent 500 ms requests took %lld ms\n", N, (long long)ms);
    assert_true(ms < 10000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(httpcall_result_get(calls[i])->status, 200);
        httpcall_free(calls[i]);
    }
    httpcall_multi_free(m);
}

static void *waker(void *arg)
{
    clock_sleep_until_mono(clock_mono_ns() + 100 * CLOCK_NS_PER_MS);
    httpcall_multi_wakeup(arg);
    return NULL;
}

/* Another thread's wakeup ends a long poll; freeing an attached call aborts it. */
static void test_wakeup_and_abort(void **state)
{
    (void)state;
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    char reason[128];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    job j = make_job("GET", "/slow/3000", 10000);
    httpcall *c = NULL;
    assert_int_equal(httpcall_new(&j, 256, &c, reason, sizeof reason), ERR_OK);
    httpcall_set_ud(c, &j);
    assert_ptr_equal(httpcall_ud(c), &j);
    assert_int_equal(httpcall_start(m, c), ERR_OK);
    assert_int_equal(httpcall_start(m, c), ERR_INVAL);
    assert_int_equal(httpcall_multi_perform(m), ERR_OK);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waker, m), 0);
    int64_t t0 = clock_mono_ns();
    assert_int_equal(httpcall_multi_poll(m, NULL, 0, 10000), ERR_OK);
    int64_t ms = (clock_mono_ns() - t0) / CLOCK_NS_PER_MS;
    pthread_join(t, NULL);
    assert_true(ms < 2000);
    assert_int_equal(httpcall_multi_active(m), 1);
    httpcall_free(c);
    assert_int_equal(httpcall_multi_active(m), 0);
    httpcall_multi_free(m);
}

/* Extra fds (the command executor's pipes) end the poll when readable. */
static void test_extra_fds(void **state)
{
    (void)state;
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    struct pollfd pf = {p[0], POLLIN, 0};
    int64_t t0 = clock_mono_ns();
    assert_int_equal(httpcall_multi_poll(m, &pf, 1, 5000), ERR_OK);
    assert_true(clock_mono_ns() - t0 < CLOCK_NS_PER_SEC);
    assert_true(pf.revents & POLLIN);
    close(p[0]);
    close(p[1]);
    httpcall_multi_free(m);
}

/* A listening socket on 127.0.0.1 and the URL of path on it. */
static int listen_local(const char *path, char *url, size_t cap)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 8), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, cap, "http://127.0.0.1:%u%s", ntohs(a.sin_port), path);
    return l;
}

/* Wait on m (its own poll, no busy loop) for the next finished call; NULL after 5 s. */
static httpcall *wait_done(httpcall_multi *m)
{
    httpcall *done = NULL;
    int64_t end = clock_mono_ns() + 5 * CLOCK_NS_PER_SEC;
    while (!done && clock_mono_ns() < end) {
        httpcall_multi_poll(m, NULL, 0, 50);
        httpcall_multi_perform(m);
        done = httpcall_multi_next_done(m);
    }
    return done;
}

/* Drive m until s has data or ms pass; whether it had. */
static bool drive_until_readable(httpcall_multi *m, int s, int ms)
{
    int64_t end = clock_mono_ns() + (int64_t)ms * CLOCK_NS_PER_MS;
    do {
        httpcall_multi_perform(m);
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 5) == 1)
            return true;
    } while (clock_mono_ns() < end);
    return false;
}

/* A pre-connected call sends its request over the socket opened ahead of time: the request
 * arrives on the connection accepted before the transfer even started, and no other one. */
static void test_preconnect(void **state)
{
    (void)state;
    char url[64];
    int l = listen_local("/pre", url, sizeof url);
    job j = make_job("GET", url, 5000);
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    httpcall *c = NULL;
    char reason[128];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    assert_int_equal(httpcall_new(&j, 256, &c, reason, sizeof reason), ERR_OK);
    assert_int_equal(httpcall_preconnect(c, url, false, 0), HTTPCALL_HOLD_NONE);
    struct pollfd pa = {l, POLLIN, 0};
    assert_int_equal(poll(&pa, 1, 2000), 1); /* connected before any transfer exists */
    int s1 = accept(l, NULL, NULL);
    assert_true(s1 >= 0);
    assert_int_equal(httpcall_start(m, c), ERR_OK);
    char req[2048] = "";
    size_t got = 0;
    int64_t end = clock_mono_ns() + 5 * CLOCK_NS_PER_SEC;
    while (!strstr(req, "\r\n\r\n") && clock_mono_ns() < end) {
        httpcall_multi_perform(m);
        struct pollfd p = {s1, POLLIN, 0};
        if (poll(&p, 1, 10) == 1) {
            ssize_t n = read(s1, req + got, sizeof req - 1 - got);
            assert_true(n > 0);
            got += (size_t)n;
            req[got] = '\0';
        }
    }
    assert_non_null(strstr(req, "GET /pre HTTP/1.1"));
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_int_equal(write(s1, resp, strlen(resp)), (ssize_t)strlen(resp));
    assert_ptr_equal(wait_done(m), c);
    assert_int_equal(httpcall_result_get(c)->status, 200);
    struct pollfd pl = {l, POLLIN, 0};
    assert_int_equal(poll(&pl, 1, 0), 0); /* no second connection */
    httpcall_free(c);
    httpcall_multi_free(m);
    close(s1);
    close(l);
}

/* A held request: libcurl writes it as soon as the call starts, the kernel keeps it corked,
 * and it reaches the server only once released. */
static void test_preconnect_hold(void **state)
{
    (void)state;
    char url[64];
    int l = listen_local("/held", url, sizeof url);
    job j = make_job("GET", url, 5000);
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    httpcall *c = NULL;
    char reason[128];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    assert_int_equal(httpcall_new(&j, 256, &c, reason, sizeof reason), ERR_OK);
    assert_int_equal(httpcall_preconnect(c, url, true, 0), HTTPCALL_HOLD_CORK);
    struct pollfd pa = {l, POLLIN, 0};
    assert_int_equal(poll(&pa, 1, 2000), 1);
    int s1 = accept(l, NULL, NULL);
    assert_int_equal(httpcall_start(m, c), ERR_OK);
    /* libcurl has written the request by now, but nothing arrives while it is held. */
    for (int i = 0; i < 10; i++) {
        httpcall_multi_perform(m);
        httpcall_multi_poll(m, NULL, 0, 5);
    }
    struct pollfd p1 = {s1, POLLIN, 0};
    assert_int_equal(poll(&p1, 1, 80), 0);
    int64_t t0 = clock_mono_ns();
    httpcall_release(c);
    assert_int_equal(poll(&p1, 1, 1000), 1);
    assert_true(clock_mono_ns() - t0 < 50 * CLOCK_NS_PER_MS);
    char req[2048] = "";
    assert_true(read(s1, req, sizeof req - 1) > 0);
    assert_non_null(strstr(req, "GET /held HTTP/1.1"));
    httpcall_free(c);
    httpcall_multi_free(m);
    close(s1);
    close(l);
}

/* Descriptors this process has open. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* A staged call of j to url (listened on by l), started on m and driven until libcurl waits for
 * the reply: by then its request is lifted, the pair is gone and libcurl holds the corked
 * connection, whose accepted end is *s1. Nothing has reached the target. */
static httpcall *start_lifted(httpcall_multi *m, const job *j, const char *url, int l, int *s1)
{
    httpcall *c = NULL;
    char reason[128];
    assert_int_equal(httpcall_new(j, 256, &c, reason, sizeof reason), ERR_OK);
    int fds = count_fds();
    assert_int_equal(httpcall_preconnect(c, url, true, 1000), HTTPCALL_HOLD_STAGE);
    assert_int_equal(count_fds(), fds + 3); /* the connection and the pair */
    *s1 = accept(l, NULL, NULL);
    assert_true(*s1 >= 0);
    assert_int_equal(httpcall_start(m, c), ERR_OK);
    assert_false(drive_until_readable(m, *s1, 80)); /* written, but into the stage */
    assert_true(httpcall_staged(c));
    /* lifted: the pair is gone, libcurl's number is the connection (and s1 is new) */
    assert_int_equal(count_fds(), fds + 2);
    return c;
}

/* A staged request: libcurl writes it at once into the staging socketpair, and once it waits
 * for the reply the request is lifted out and libcurl is given the real, corked connection
 * (nothing arrives); the move writes it there (still nothing), the release sends it, and the
 * reply reaches libcurl over that connection. Twice on one thread. */
static void test_preconnect_stage(void **state)
{
    (void)state;
    httpcall_thread_init();
    char url[64];
    int l = listen_local("/staged", url, sizeof url);
    job j = make_job("GET", url, 5000);
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    for (int round = 0; round < 2; round++) {
        int s1;
        httpcall *c = start_lifted(m, &j, url, l, &s1);
        assert_int_equal(httpcall_stage_move(c), ERR_OK);
        assert_false(httpcall_staged(c));
        assert_false(drive_until_readable(m, s1, 80)); /* moved, but corked */
        httpcall_release(c);
        assert_true(drive_until_readable(m, s1, 1000));
        char req[2048] = "";
        assert_true(read(s1, req, sizeof req - 1) > 0);
        assert_non_null(strstr(req, "GET /staged HTTP/1.1"));
        assert_non_null(strstr(req, "\r\n\r\n"));
        const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_int_equal(write(s1, resp, strlen(resp)), (ssize_t)strlen(resp));
        assert_ptr_equal(wait_done(m), c); /* the reply woke the multi's own wait */
        assert_int_equal(httpcall_result_get(c)->status, 200);
        assert_string_equal(httpcall_result_get(c)->body, "ok");
        httpcall_free(c);
        close(s1);
    }
    struct pollfd pl = {l, POLLIN, 0};
    assert_int_equal(poll(&pl, 1, 0), 0); /* no connection but the two pre-opened ones */
    httpcall_multi_free(m);
    close(l);
    httpcall_thread_fini();
}

/* A lifted request whose connection the target reset before the window: the move's write
 * fails, reports it, and the transfer ends as a broken connection. */
static void test_preconnect_stage_reset(void **state)
{
    (void)state;
    char url[64];
    int l = listen_local("/reset", url, sizeof url);
    job j = make_job("GET", url, 5000);
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    int s1;
    httpcall *c = start_lifted(m, &j, url, l, &s1);
    struct linger rst = {1, 0};
    assert_int_equal(setsockopt(s1, SOL_SOCKET, SO_LINGER, &rst, sizeof rst), 0);
    close(s1);
    usleep(20 * 1000); /* the reset reaches the worker's end (loopback: at once) */
    assert_int_equal(httpcall_stage_move(c), ERR_IO);
    assert_false(httpcall_staged(c));
    httpcall_release(c);
    assert_ptr_equal(wait_done(m), c);
    assert_int_equal(httpcall_result_get(c)->err, HTTPCALL_CONNECT);
    assert_int_equal(httpcall_result_get(c)->status, 0);
    httpcall_free(c);
    httpcall_multi_free(m);
    close(l);
}

/* Requests that cannot be held: TLS (its handshake would stall) and large ones (they would
 * send their first segment early). Both still pre-connect. */
static void test_preconnect_no_hold(void **state)
{
    (void)state;
    httpcall *c = NULL;
    char reason[128];
    job j = make_job("GET", "https://127.0.0.1:9/", 5000);
    assert_int_equal(httpcall_new(&j, 256, &c, reason, sizeof reason), ERR_OK);
    assert_int_equal(httpcall_preconnect(c, "https://127.0.0.1:9/", true, 1000),
                     HTTPCALL_HOLD_NONE);
    httpcall_free(c);
    char body[2048];
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    job big = make_job("POST", "http://127.0.0.1:9/", 5000);
    big.http.body = body;
    big.http.body_len = strlen(body);
    assert_int_equal(httpcall_new(&big, 256, &c, reason, sizeof reason), ERR_OK);
    assert_int_equal(httpcall_preconnect(c, "http://127.0.0.1:9/", true, 1000), HTTPCALL_HOLD_NONE);
    httpcall_free(c);
}

/* A host name is left to libcurl (resolving it here would block the executor). */
static void test_preconnect_skips_names(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%u/status/200", server_port);
    job j = make_job("GET", url, 5000);
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    httpcall *c = NULL;
    char reason[128];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    assert_int_equal(httpcall_new(&j, 256, &c, reason, sizeof reason), ERR_OK);
    assert_int_equal(httpcall_preconnect(c, url, true, 1000), HTTPCALL_HOLD_NONE);
    assert_int_equal(httpcall_preconnect(c, "not a url", true, 1000), HTTPCALL_HOLD_NONE);
    assert_int_equal(run_all(m, &c, 1), 1);
    assert_int_equal(httpcall_result_get(c)->status, 200);
    httpcall_free(c);
    httpcall_multi_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),          cmocka_unit_test(test_methods),
        cmocka_unit_test(test_statuses),         cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connect_refused),  cmocka_unit_test(test_capture_cap),
        cmocka_unit_test(test_header_injection), cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_wakeup_and_abort), cmocka_unit_test(test_extra_fds),
        cmocka_unit_test(test_preconnect),       cmocka_unit_test(test_preconnect_skips_names),
        cmocka_unit_test(test_preconnect_hold),  cmocka_unit_test(test_preconnect_no_hold),
        cmocka_unit_test(test_preconnect_stage), cmocka_unit_test(test_preconnect_stage_reset),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
