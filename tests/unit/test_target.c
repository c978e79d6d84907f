/* test_target: the recording target's parser, status plan, records, receive stamps and timer
 * heap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "tgt_conn.h"
#include "tgt_http.h"
#include "tgt_plan.h"
#include "tgt_record.h"
#include "tgt_rxstamp.h"
#include "tgt_timer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int span_is(tgt_span s, const char *lit)
{
    return s.p && s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* ---- tgt_http_parse -------------------------------------------------------------------------- */

static const struct {
    const char *raw;
    int rc;     /* ERR_OK, TGT_HTTP_PARTIAL or ERR_PARSE */
    int status; /* error_status on ERR_PARSE */
    const char *path;
    size_t body_len;
    int keep_alive;
} http_cases[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", ERR_OK, 0, "/", 0, 1},
    {"GET /x?y=1 HTTP/1.1\r\n\r\n", ERR_OK, 0, "/x", 0, 1},
    {"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", ERR_OK, 0, "/p", 3, 1},
    {"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", TGT_HTTP_PARTIAL, 0, NULL, 0, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\n", TGT_HTTP_PARTIAL, 0, NULL, 0, 0},
    {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", ERR_OK, 0, "/", 0, 0},
    {"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n", ERR_OK, 0, "/", 0, 0},
    {"GET / HTTP/1.0\r\n\r\n", ERR_OK, 0, "/", 0, 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ERR_OK, 0, "/", 0, 1},
    {"GET / HTTP/1.1\n\n", ERR_OK, 0, "/", 0, 1},
    {"GET / HTTP/2.0\r\n\r\n", ERR_PARSE, 505, NULL, 0, 0},
    {"GET / HTTP/1.2\r\n\r\n", ERR_PARSE, 505, NULL, 0, 0},
    {"GET /\r\n\r\n", ERR_PARSE, 400, NULL, 0, 0},
    {"G(T / HTTP/1.1\r\n\r\n", ERR_PARSE, 400, NULL, 0, 0},
    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", ERR_PARSE, 400, NULL, 0, 0},
    {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", ERR_PARSE, 400, NULL, 0, 0},
    {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", ERR_PARSE, 400, NULL, 0, 0},
    {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ERR_PARSE, 400, NULL, 0,
     0},
    {"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", ERR_PARSE, 413, NULL, 0, 0},
    {"POST / HTTP/1.1\r\nContent-Length: 8388609\r\n\r\n", ERR_PARSE, 413, NULL, 0, 0},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", ERR_PARSE, 501, NULL, 0, 0},
};

static void test_http_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof http_cases / sizeof http_cases[0]; i++) {
        tgt_http_req req;
        const char *raw = http_cases[i].raw;
        int rc = tgt_http_parse(raw, strlen(raw), &req);
        if (rc != http_cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d", i, raw, rc, http_cases[i].rc);
        if (rc == ERR_PARSE)
            assert_int_equal(req.error_status, http_cases[i].status);
        if (rc != ERR_OK)
            continue;
        assert_true(span_is(req.path, http_cases[i].path));
        assert_int_equal(req.body_len, http_cases[i].body_len);
        assert_int_equal(req.keep_alive, http_cases[i].keep_alive);
        assert_int_equal(req.total_len, strlen(raw));
    }
}

static void test_http_headers_and_pipelining(void **state)
{
    (void)state;
    const char *raw = "POST /j?a=b HTTP/1.1\r\nIdempotency-Key:  job-1 \r\nX-A: 1\r\n"
                      "Content-Length: 2\r\n\r\n{}GET /next HTTP/1.1\r\n\r\n";
    tgt_http_req req;
    assert_int_equal(tgt_http_parse(raw, strlen(raw), &req), ERR_OK);
    assert_true(span_is(req.method, "POST"));
    assert_true(span_is(req.target, "/j?a=b"));
    assert_true(span_is(tgt_http_header(&req, "idempotency-key"), "job-1"));
    assert_true(span_is(tgt_http_header(&req, "X-a"), "1"));
    assert_null(tgt_http_header(&req, "missing").p);
    assert_int_equal(req.nheaders, 3);
    const char *next = raw + req.total_len;
    assert_int_equal(tgt_http_parse(next, strlen(next), &req), ERR_OK);
    assert_true(span_is(req.path, "/next"));
}

static void test_http_limits(void **state)
{
    (void)state;
    size_t n = TGT_HTTP_MAX_HEAD + 100;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    tgt_http_req req;
    assert_int_equal(tgt_http_parse(big, n, &req), ERR_PARSE);
    assert_int_equal(req.error_status, 431);
    free(big);

    char many[8192] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i <= TGT_HTTP_MAX_HEADERS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "H%d: v\r\n", i);
    strcat(many, "\r\n");
    assert_int_equal(tgt_http_parse(many, strlen(many), &req), ERR_PARSE);
    assert_int_equal(req.error_status, 431);
    assert_string_equal(tgt_http_reason(503), "Service Unavailable");
    assert_string_equal(tgt_http_reason(299), "Status");
}

/* ---- tgt_plan ------------------------------------------------------------------------------ */

static tgt_plan *plan_new(const char *status, const char *delay, int64_t def_delay)
{
    tgt_plan *p = NULL;
    char msg[128];
    int rc = tgt_plan_new(status, delay, def_delay, &p, msg, sizeof msg);
    if (rc != ERR_OK)
        fail_msg("plan '%s': %s", status ? status : "(none)", msg);
    return p;
}

static int plan_status(tgt_plan *p, const char *path, const char *key)
{
    tgt_plan_answer a;
    assert_int_equal(tgt_plan_next(p, path, strlen(path), key, strlen(key), &a), ERR_OK);
    return a.status;
}

static void test_plan_sequences(void **state)
{
    (void)state;
    tgt_plan *p = plan_new(" /flaky=500,200 ; /always500=500*;/gone=404*;default=201 ", NULL, 0);
    static const struct {
        const char *path, *key;
        int want;
    } steps[] = {
        {"/flaky", "k1", 500},     {"/flaky", "k1", 200},    {"/flaky", "k2", 500},
        {"/flaky", "k1", 201},     {"/flaky", "", 500},      {"/flaky", "", 200},
        {"/always500", "a", 500},  {"/always500", "a", 500}, {"/always500", "a", 500},
        {"/gone", "g", 404},       {"/gone", "h", 404},      {"/other", "k1", 201},
        {"/flaky/sub", "k1", 201}, {"/flak", "k1", 201},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int got = plan_status(p, steps[i].path, steps[i].key);
        if (got != steps[i].want)
            fail_msg("step %zu %s %s: %d, want %d", i, steps[i].path, steps[i].key, got,
                     steps[i].want);
    }
    tgt_plan_answer a;
    assert_int_equal(tgt_plan_next(p, "/flaky", 6, "k1", 2, &a), ERR_OK);
    assert_int_equal(a.seen, 4);
    tgt_plan_free(p);
}

static void test_plan_delays_and_many_keys(void **state)
{
    (void)state;
    tgt_plan *p = plan_new(NULL, "/slow=5000;/fast=0", 300);
    tgt_plan_answer a;
    tgt_plan_next(p, "/slow", 5, "", 0, &a);
    assert_int_equal(a.delay_ms, 5000);
    assert_int_equal(a.status, 200);
    tgt_plan_next(p, "/fast", 5, "", 0, &a);
    assert_int_equal(a.delay_ms, 0);
    tgt_plan_next(p, "/x", 2, "", 0, &a);
    assert_int_equal(a.delay_ms, 300);
    /* enough keys to grow the counter table several times; each key is counted on its own */
    char key[32];
    for (int round = 1; round <= 2; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(key, sizeof key, "job-%d", i);
            tgt_plan_next(p, "/k", 2, key, strlen(key), &a);
            if (a.seen != (unsigned)round)
                fail_msg("key %s round %d: seen %u", key, round, a.seen);
        }
    }
    assert_int_equal(tgt_plan_keys(p), 5003);
    tgt_plan_free(p);
    tgt_plan_free(NULL);
}

static void test_plan_rejects_bad_specs(void **state)
{
    (void)state;
    static const char *bad[] = {"/a",           "/a=",      "/a=99",      "/a=600",
                                "/a=500,",      "/a=500**", "nopath=200", "default=500,200",
                                "default=500*", "/a=2x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tgt_plan *p = NULL;
        char msg[128] = "";
        if (tgt_plan_new(bad[i], NULL, 0, &p, msg, sizeof msg) != ERR_PARSE)
            fail_msg("status spec '%s' accepted", bad[i]);
        assert_null(p);
        assert_true(msg[0] != '\0');
    }
    tgt_plan *p = NULL;
    char msg[128];
    assert_int_equal(tgt_plan_new(NULL, "/a=-1", 0, &p, msg, sizeof msg), ERR_PARSE);
    assert_int_equal(tgt_plan_new(NULL, "/a=1s", 0, &p, msg, sizeof msg), ERR_PARSE);
}

/* ---- tgt_record ------------------------------------------------------------------------------ */

static void test_record_escape_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"plain", 5, "plain"},
        {"q\"b\\", 4, "q\\\"b\\\\"},
        {"a\nb\tc\r", 6, "a\\nb\\tc\\r"},
        {"\x01\x7f", 2, "\\u0001\\u007f"},
        {"\0z", 2, "\\u0000z"},
        {"\xc3\xa9", 2, "\xc3\xa9"},                             /* é passes through */
        {"\xe2\x82\xac", 3, "\xe2\x82\xac"},                     /* € */
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},             /* emoji */
        {"\xff", 1, "\\ufffd"},                                  /* never valid */
        {"\xc3", 1, "\\ufffd"},                                  /* truncated sequence */
        {"\xc0\xaf", 2, "\\ufffd\\ufffd"},                       /* overlong '/' */
        {"\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd"},            /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t w = tgt_record_escape(out, sizeof out, cases[i].in, cases[i].n);
        out[w] = '\0';
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].want);
    }
    char small[5];
    /* never a partial escape: "ab" fits, the 6-byte \u0001 does not */
    assert_int_equal(tgt_record_escape(small, sizeof small, "ab\x01", 3), 2);
}

static void test_record_file_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/test_target_recXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    tgt_record *rec = NULL;
    assert_int_equal(tgt_record_open(path, &rec), ERR_OK);
    const char *raw = "POST /a?x HTTP/1.1\r\nIdempotency-Key: k\"1\r\nX-Salvo-Attempt: 3\r\n"
                      "X-Dup: a\r\nx-dup: b\r\nContent-Length: 4\r\n\r\nbody";
    tgt_http_req req;
    assert_int_equal(tgt_http_parse(raw, strlen(raw), &req), ERR_OK);
    tgt_record_entry e = {.t_ns = 123,
                          .rx_ns = 100,
                          .conn_id = 7,
                          .req = &req,
                          .body = raw + req.head_len,
                          .status = 503,
                          .seen = 2};
    assert_int_equal(tgt_record_add(rec, &e), ERR_OK);
    e.rx_ns = 0; /* no kernel stamp: null */
    assert_int_equal(tgt_record_add(rec, &e), ERR_OK);
    assert_true(tgt_record_pending(rec) > 0);
    assert_int_equal(tgt_record_close(rec), ERR_OK);
    char line[1024] = "";
    char line2[1024] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line2, sizeof line2, f));
    fclose(f);
    unlink(path);
    assert_non_null(strstr(line2, "{\"t_ns\":123,\"rx_ns\":null,\"conn\":7,"));
    assert_string_equal(
        line,
        "{\"t_ns\":123,\"rx_ns\":100,\"conn\":7,\"method\":\"POST\",\"path\":\"/a\",\"target\":\"/"
        "a?x\","
        "\"idem\":\"k\\\"1\",\"sched_at\":null,\"attempt\":3,\"headers\":{\"idempotency-key\":"
        "\"k\\\"1\",\"x-salvo-attempt\":\"3\",\"x-dup\":\"a, b\",\"content-length\":\"4\"},"
        "\"body\":\"body\",\"body_len\":4,\"status\":503,\"seen\":2}\n");
}

/* ---- tgt_rxstamp and tgt_conn's stamps ------------------------------------------------------- */

/* A connected loopback pair: *srv is the accepted end of a listener with stamping on or off. */
static void loopback_pair(int stamp, int *cli, int *srv)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    if (stamp)
        assert_int_equal(tgt_rxstamp_enable(lfd), ERR_OK);
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&sa, sizeof sa), 0);
    *srv = accept(lfd, NULL, NULL);
    assert_true(*srv >= 0);
    close(lfd);
}

/* The kernel switches stamping on machine-wide some time after the first socket asks for it (a
 * deferred static key), so the first segments can come unstamped: wait for a stamp on a pair
 * kept open, which keeps stamping on, and return it. */
static void rxstamp_warm_up(int *cli, int *srv)
{
    loopback_pair(1, cli, srv);
    int64_t rx = 0;
    char c = 'x';
    for (int i = 0; i < 200 && rx == 0; i++) {
        assert_int_equal(send(*cli, &c, 1, 0), 1);
        assert_int_equal(tgt_rxstamp_recv(*srv, &c, 1, &rx), 1);
        if (rx == 0)
            usleep(5000);
    }
    assert_true(rx != 0);
}

/* The stamp is taken when the bytes arrive, not when they are read 30 ms later, and only on a
 * socket (accepted from a listener) that asked for it. */
static void test_rxstamp_is_arrival(void **state)
{
    (void)state;
    int wcli, wsrv;
    rxstamp_warm_up(&wcli, &wsrv);
    for (int stamp = 0; stamp <= 1; stamp++) {
        int cli, srv;
        loopback_pair(stamp, &cli, &srv);
        const char req[] = "GET / HTTP/1.1\r\n\r\n";
        int64_t before = clock_real_ns();
        assert_int_equal(send(cli, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
        int64_t sent = clock_real_ns();
        usleep(30 * 1000);
        char buf[64];
        int64_t rx = -1;
        assert_int_equal(tgt_rxstamp_recv(srv, buf, sizeof buf, &rx), (ssize_t)(sizeof req - 1));
        int64_t read = clock_real_ns();
        if (!stamp) {
            assert_int_equal(rx, 0);
        } else {
            assert_true(rx >= before && rx <= sent);
            assert_true(read - rx >= 25 * CLOCK_NS_PER_MS);
        }
        close(cli);
        close(srv);
    }
    close(wcli);
    close(wsrv);
}

/* Append s to c's input as one read stamped (read_ns, rx_ns). */
static void conn_feed(tgt_conn *c, const char *s, int64_t read_ns, int64_t rx_ns)
{
    size_t n = strlen(s);
    assert_int_equal(tgt_conn_reserve(c, n, 1 << 20), ERR_OK);
    memcpy(c->in + c->in_len, s, n);
    c->in_len += n;
    tgt_conn_note_read(c, c->in_len - n, read_ns, rx_ns);
}

/* Take the request at the start of c->in as the server does. */
static void conn_take(tgt_conn *c)
{
    tgt_http_req req;
    assert_int_equal(tgt_http_parse(c->in, c->in_len, &req), ERR_OK);
    c->busy = 1;
    c->consumed = req.total_len;
    tgt_conn_note_taken(c);
}

/* t_ns follows the first bytes, rx_ns the read that completed the request line, also for
 * pipelined requests read before or while the previous reply was pending. */
static void test_conn_line_stamps(void **state)
{
    (void)state;
    tgt_conn c;
    memset(&c, 0, sizeof c);
    conn_feed(&c, "GET /a HT", 10, 1);
    assert_int_equal(c.start_ns, 10);
    assert_int_equal(c.line_rx_ns, 0);
    conn_feed(&c, "TP/1.1\r\nHost: x\r\n", 20, 2);
    assert_int_equal(c.line_rx_ns, 2);
    conn_feed(&c, "\r\nGET /b HTTP/1.1\r\n\r\nGET /c", 30, 3);
    assert_int_equal(c.line_rx_ns, 2); /* later header lines do not move it */
    conn_take(&c);
    assert_int_equal(c.next_line_rx_ns, 3);
    tgt_conn_advance(&c);
    assert_int_equal(c.start_ns, 30);
    assert_int_equal(c.line_rx_ns, 3);
    conn_take(&c); /* /b; "GET /c" has no complete line yet */
    assert_int_equal(c.next_line_rx_ns, 0);
    conn_feed(&c, " HTTP/1.1\r\n\r\n", 40, 4);
    assert_int_equal(c.next_line_rx_ns, 4);
    tgt_conn_advance(&c);
    assert_int_equal(c.line_rx_ns, 4);
    assert_int_equal(c.start_ns, 30); /* its first bytes came in the read at 30 */
    free(c.in);
}

/* ---- tgt_timer ----------------------------------------------------------------------------- */

static void test_timer_orders_by_deadline(void **state)
{
    (void)state;
    tgt_timer t;
    tgt_timer_init(&t);
    /* a scrambled sequence larger than the first allocation */
    for (int i = 0; i < 3000; i++) {
        tgt_timer_entry e = {.due_ns = (i * 7919) % 3000, .fd = i, .gen = 1};
        assert_int_equal(tgt_timer_push(&t, e), ERR_OK);
    }
    tgt_timer_entry e;
    assert_true(tgt_timer_peek(&t, &e));
    assert_int_equal(e.due_ns, 0);
    assert_false(tgt_timer_pop_due(&t, -1, &e));
    int64_t last = -1;
    int n = 0;
    while (tgt_timer_pop_due(&t, 1499, &e)) {
        assert_true(e.due_ns >= last && e.due_ns <= 1499);
        last = e.due_ns;
        n++;
    }
    assert_int_equal(n, 1500);
    assert_true(tgt_timer_peek(&t, &e));
    assert_int_equal(e.due_ns, 1500);
    tgt_timer_fini(&t);
    assert_false(tgt_timer_peek(&t, &e));
    tgt_timer_fini(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_table),
        cmocka_unit_test(test_http_headers_and_pipelining),
        cmocka_unit_test(test_http_limits),
        cmocka_unit_test(test_plan_sequences),
        cmocka_unit_test(test_plan_delays_and_many_keys),
        cmocka_unit_test(test_plan_rejects_bad_specs),
        cmocka_unit_test(test_record_escape_table),
        cmocka_unit_test(test_record_file_lines),
        cmocka_unit_test(test_rxstamp_is_arrival),
        cmocka_unit_test(test_conn_line_stamps),
        cmocka_unit_test(test_timer_orders_by_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
