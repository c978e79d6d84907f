/* test_worker_preconn: which URLs get an early connection, to what address, and what a held
 * request does when its socket is closed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "preconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct row {
    const char *url;
    int family; /* 0: not numeric, no early connection */
    const char *addr;
    unsigned port;
} row;

static const row rows[] = {
    {"http://127.0.0.1:8080/x", AF_INET, "127.0.0.1", 8080},
    {"http://10.1.2.3/", AF_INET, "10.1.2.3", 80},
    {"https://10.1.2.3/a?b=c", AF_INET, "10.1.2.3", 443},
    {"HTTP://127.0.0.1", AF_INET, "127.0.0.1", 80},
    {"http://user:pw@127.0.0.1:81/", AF_INET, "127.0.0.1", 81},
    {"http://[::1]:9000/p", AF_INET6, "::1", 9000},
    {"https://[fe80::1]/", AF_INET6, "fe80::1", 443},
    {"http://127.0.0.1?q", AF_INET, "127.0.0.1", 80},
    {"http://localhost:8080/", 0, NULL, 0},
    {"http://example.com/", 0, NULL, 0},
    {"ftp://127.0.0.1/", 0, NULL, 0},
    {"http://127.0.0.1:0/", 0, NULL, 0},
    {"http://127.0.0.1:99999/", 0, NULL, 0},
    {"http://127.0.0.1:/", 0, NULL, 0},
    {"http://[::1/", 0, NULL, 0},
    {"http:///", 0, NULL, 0},
    {"127.0.0.1", 0, NULL, 0},
};

static void test_addr_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct sockaddr_storage ss;
        bool ok = preconn_addr(rows[i].url, &ss);
        print_message("%s\n", rows[i].url);
        assert_int_equal(ok, rows[i].family != 0);
        if (!ok)
            continue;
        assert_int_equal(ss.ss_family, rows[i].family);
        char buf[64];
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *v4 = (const void *)&ss;
            inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
            assert_int_equal(ntohs(v4->sin_port), rows[i].port);
        } else {
            const struct sockaddr_in6 *v6 = (const void *)&ss;
            inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
            assert_int_equal(ntohs(v6->sin6_port), rows[i].port);
        }
        assert_string_equal(buf, rows[i].addr);
    }
}

static void test_same(void **state)
{
    (void)state;
    struct sockaddr_storage a, b;
    assert_true(preconn_addr("http://127.0.0.1:8080/", &a));
    assert_true(preconn_addr("http://127.0.0.1:8080/other", &b));
    assert_true(preconn_same(&a, (struct sockaddr *)&b));
    assert_true(preconn_addr("http://127.0.0.1:8081/", &b));
    assert_false(preconn_same(&a, (struct sockaddr *)&b));
    assert_true(preconn_addr("http://127.0.0.2:8080/", &b));
    assert_false(preconn_same(&a, (struct sockaddr *)&b));
    assert_true(preconn_addr("http://[::1]:8080/", &b));
    assert_false(preconn_same(&a, (struct sockaddr *)&b));
}

/* Bytes the peer s receives within ms before the connection ends (0 after a reset or EOF). */
static ssize_t peer_reads(int s, int ms)
{
    struct pollfd p = {s, POLLIN, 0};
    ssize_t total = 0;
    char buf[256];
    while (poll(&p, 1, ms) == 1) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n <= 0)
            break;
        total += n;
    }
    return total;
}

/* A corked socket closed while its request is held (a worker killed before the instant) drops
 * the request: the peer sees a reset and no bytes. Uncorked first, the same bytes do arrive. */
static void test_held_request_dies_unsent(void **state)
{
    (void)state;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    struct sockaddr_storage ss;
    memcpy(&ss, &a, sizeof a);
    const char req[] = "GET /held HTTP/1.1\r\n\r\n";
    for (int release = 0; release < 2; release++) {
        bool corked = false;
        int fd = preconn_open(&ss, true, &corked);
        assert_true(fd >= 0);
        assert_true(corked);
        int s = accept(l, NULL, NULL);
        assert_true(s >= 0);
        struct pollfd w = {fd, POLLOUT, 0};
        assert_int_equal(poll(&w, 1, 2000), 1);
        assert_int_equal(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
        if (release)
            preconn_uncork(fd);
        close(fd);
        assert_int_equal(peer_reads(s, 500), release ? (ssize_t)(sizeof req - 1) : 0);
        close(s);
    }
    close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_held_request_dies_unsent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
