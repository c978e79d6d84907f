/* test_worker_curlconnect: the worker's connect() skips exactly the marked call libcurl 7.x makes
 * on a staging socketpair end, and passes every other call through to the real one. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "curlconnect.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in inet_addr_of(unsigned short port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A marked socketpair end "connects" to an internet address once; unmarked, the real call's
 * EINVAL comes back, and the pair still carries bytes either way. */
static void test_marked_pair_end(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct sockaddr_in a = inet_addr_of(9);
    assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof a), -1);
    assert_int_equal(errno, EINVAL);
    curlconnect_mark(sv[0]);
    assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof a), 0);
    /* the mark is spent */
    assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof a), -1);
    assert_int_equal(write(sv[0], "GET", 3), 3);
    char buf[4];
    assert_int_equal(read(sv[1], buf, sizeof buf), 3);
    close(sv[0]);
    close(sv[1]);
}

/* A mark on another descriptor, or on a TCP socket, leaves the real connect() to do its work:
 * a TCP connect to a listener really connects, one to a closed port is really refused. */
static void test_other_calls_pass_through(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = inet_addr_of(0);
    socklen_t len = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    curlconnect_mark(fd);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    int afd = accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    close(afd);
    close(fd);
    close(lfd); /* its port is now closed */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    curlconnect_mark(fd);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
}

/* Debian 12's libcurl (7.88) needs the workaround; a libcurl from 8.0 on would not. */
static void test_needed_matches_version(void **state)
{
    (void)state;
    assert_int_equal(curlconnect_needed(),
                     curl_version_info(CURLVERSION_NOW)->version_num < 0x080000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marked_pair_end),
        cmocka_unit_test(test_other_calls_pass_through),
        cmocka_unit_test(test_needed_matches_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
