/* test_httpcall_guard: the target policy as httpcall applies it: refused literals never become
 * transfers, the allow-list holds on redirects (checked where libcurl opens its socket). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "httpcall.h"
#include "netguard.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

static struct MHD_Daemon *server;
static uint16_t server_port;
static int requests; /* requests the server answered */

/* /to-localhost redirects to the same server by name; anything else answers 200. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)cls, (void)method, (void)version, (void)data, (void)data_size, (void)con_cls;
    __atomic_add_fetch(&requests, 1, __ATOMIC_SEQ_CST);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
    unsigned status = 200;
    if (strcmp(url, "/to-localhost") == 0) {
        char loc[64];
        snprintf(loc, sizeof loc, "http://localhost:%u/ok", server_port);
        MHD_add_response_header(r, "Location", loc);
        status = 302;
    }
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    server = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL,
                              MHD_OPTION_END);
    if (!server)
        return -1;
    server_port = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT)->port;
    return httpcall_global_init() == ERR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    httpcall_set_policy(NULL, NULL);
    MHD_stop_daemon(server);
    httpcall_global_fini();
    return 0;
}

static job make_job(const char *url, bool follow)
{
    job j;
    memset(&j, 0, sizeof j);
    j.id = "sched@20260101T000000Z#0";
    j.due_ms = 1767225600000;
    j.attempt = 1;
    j.max_attempts = 1;
    j.kind = JOB_HTTP;
    j.http.method = "GET";
    j.http.url = (char *)url;
    j.http.connect_timeout_ms = 2000;
    j.http.timeout_ms = 5000;
    j.http.follow_redirects = follow;
    return j;
}

/* Run one call to the end; its result (the caller frees *c). */
static const httpcall_result *run_one(const job *j, httpcall **c)
{
    httpcall_limits lim = {0, 0, 0};
    httpcall_multi *m = NULL;
    char reason[160];
    assert_int_equal(httpcall_multi_new(&lim, &m), ERR_OK);
    assert_int_equal(httpcall_new(j, 256, c, reason, sizeof reason), ERR_OK);
    assert_int_equal(httpcall_start(m, *c), ERR_OK);
    int64_t end = clock_mono_ns() + 10 * CLOCK_NS_PER_SEC;
    httpcall *done = NULL;
    while (!done && clock_mono_ns() < end) {
        assert_int_equal(httpcall_multi_perform(m), ERR_OK);
        done = httpcall_multi_next_done(m);
        if (!done)
            assert_int_equal(httpcall_multi_poll(m, NULL, 0, 100), ERR_OK);
    }
    assert_ptr_equal(done, *c);
    httpcall_multi_free(m);
    return httpcall_result_get(*c);
}

/* Every spelling of the metadata address is refused while the call is built: no transfer, so
 * no packet, exists for it. */
static void test_refused_literals(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254./",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fd00:ec2::254]/latest",
        "https://[fe80::1]:8443/",
        "http://user:pw@169.254.169.254:80/",
    };
    httpcall_set_policy(NULL, NULL);
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        job j = make_job(urls[i], false);
        httpcall *c = NULL;
        char reason[160] = "";
        if (httpcall_new(&j, 256, &c, reason, sizeof reason) != ERR_INVAL)
            fail_msg("%s: not refused", urls[i]);
        assert_null(c);
        if (strncmp(reason, "target refused: address ", 24) != 0)
            fail_msg("%s: reason '%s'", urls[i], reason);
    }
}

static void test_allow_list(void **state)
{
    (void)state;
    netguard *g = NULL;
    char err[128], reason[160] = "", url[80];
    assert_int_equal(netguard_new("127.0.0.1", false, &g, err, sizeof err), ERR_OK);
    httpcall_set_policy(g, NULL);
    /* Allowed host: runs. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", server_port);
    job j = make_job(url, false);
    httpcall *c = NULL;
    const httpcall_result *r = run_one(&j, &c);
    assert_int_equal(r->err, HTTPCALL_OK);
    assert_int_equal(r->status, 200);
    httpcall_free(c);
    /* Another name for the same server: refused before any transfer. */
    snprintf(url, sizeof url, "http://localhost:%u/ok", server_port);
    j = make_job(url, false);
    c = NULL;
    assert_int_equal(httpcall_new(&j, 256, &c, reason, sizeof reason), ERR_INVAL);
    assert_string_equal(reason, "target refused: host localhost is not in the allowed hosts");
    /* A redirect to it: refused where libcurl opens the new connection, never requested. */
    int before = __atomic_load_n(&requests, __ATOMIC_SEQ_CST);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/to-localhost", server_port);
    j = make_job(url, true);
    r = run_one(&j, &c);
    assert_int_equal(r->err, HTTPCALL_INVALID);
    assert_string_equal(r->error, "target refused: host localhost is not in the allowed hosts");
    assert_int_equal(__atomic_load_n(&requests, __ATOMIC_SEQ_CST), before + 1);
    httpcall_free(c);
    httpcall_set_policy(NULL, NULL);
    netguard_free(g);
}

static int build(const char *url, char *reason, size_t cap)
{
    job j = make_job(url, false);
    httpcall *c = NULL;
    int rc = httpcall_new(&j, 256, &c, reason, cap);
    httpcall_free(c);
    return rc;
}

/* httpcall keeps the last authority that passed: a new policy, or a URL whose authority only
 * starts the same, is checked again. */
static void test_kept_verdict(void **state)
{
    (void)state;
    netguard *g = NULL;
    char err[128], reason[160] = "", url[96];
    httpcall_set_policy(NULL, NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/a", server_port);
    assert_int_equal(build(url, reason, sizeof reason), ERR_OK);
    assert_int_equal(netguard_new("localhost", false, &g, err, sizeof err), ERR_OK);
    httpcall_set_policy(g, NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/b", server_port);
    assert_int_equal(build(url, reason, sizeof reason), ERR_INVAL);
    assert_string_equal(reason, "target refused: host 127.0.0.1 is not in the allowed hosts");
    snprintf(url, sizeof url, "http://localhost:%u/a", server_port);
    assert_int_equal(build(url, reason, sizeof reason), ERR_OK);
    snprintf(url, sizeof url, "http://localhost:%u@169.254.169.254/a", server_port);
    assert_int_equal(build(url, reason, sizeof reason), ERR_INVAL);
    snprintf(url, sizeof url, "http://localhost.evil:%u/a", server_port);
    assert_int_equal(build(url, reason, sizeof reason), ERR_INVAL);
    httpcall_set_policy(NULL, NULL);
    netguard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_literals),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_kept_verdict),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
