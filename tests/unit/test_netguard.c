/* test_netguard: the target allow-list and the refused-address policy, as tables of hostile and
 * ordinary spellings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

typedef struct addr_row {
    const char *addr; /* numeric, as inet_pton reads it */
    bool ok;
} addr_row;

static void sockaddr_of(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return;
    }
    assert_int_equal(inet_pton(AF_INET6, text, &v6->sin6_addr), 1);
    v6->sin6_family = AF_INET6;
}

static void test_addr_policy(void **state)
{
    (void)state;
    static const addr_row rows[] = {
        {"169.254.169.254", false},
        {"169.254.0.1", false},
        {"169.254.255.255", false},
        {"169.253.255.255", true},
        {"169.255.0.0", true},
        {"127.0.0.1", true},
        {"10.0.0.1", true},
        {"100.100.100.200", true},
        {"::ffff:169.254.169.254", false},   /* IPv4-mapped */
        {"::ffff:a9fe:a9fe", false},         /* the same, in hex */
        {"::169.254.169.254", false},        /* IPv4-compatible */
        {"64:ff9b::169.254.169.254", false}, /* NAT64 */
        {"::ffff:127.0.0.1", true},
        {"fd00:ec2::254", false},
        {"fd00:ec2:0:0:0:0:0:254", false},
        {"fd00:ec2::253", true},
        {"fe80::1", false},
        {"febf::1", false},
        {"fec0::1", true},
        {"::1", true},
        {"::", true},
        {"2001:db8::1", true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct sockaddr_storage ss;
        char why[128] = "";
        sockaddr_of(rows[i].addr, &ss);
        bool ok = netguard_addr_ok(NULL, (struct sockaddr *)&ss, why, sizeof why);
        if (ok != rows[i].ok)
            fail_msg("row %zu %s: ok=%d, want %d", i, rows[i].addr, ok, rows[i].ok);
        if (!ok)
            assert_non_null(strstr(why, "address "));
    }
    /* --allow-link-local lifts the policy. */
    netguard *g = NULL;
    char err[128];
    assert_int_equal(netguard_new(NULL, true, &g, err, sizeof err), ERR_OK);
    struct sockaddr_storage ss;
    char why[128];
    sockaddr_of("169.254.169.254", &ss);
    assert_true(netguard_addr_ok(g, (struct sockaddr *)&ss, why, sizeof why));
    netguard_free(g);
}

typedef struct lit_row {
    const char *host;
    const char *norm; /* NULL when not a literal */
} lit_row;

/* The spellings an attacker uses for one address all normalise to it. */
static void test_literals(void **state)
{
    (void)state;
    static const lit_row rows[] = {
        {"169.254.169.254", "169.254.169.254"},
        {"2852039166", "169.254.169.254"}, /* decimal */
        {"0xa9fea9fe", "169.254.169.254"}, /* hex */
        {"0xA9.0xFE.0xA9.0xFE", "169.254.169.254"},
        {"0251.0376.0251.0376", "169.254.169.254"}, /* octal */
        {"169.254.43518", "169.254.169.254"},       /* a.b.c with a 16-bit tail */
        {"[::ffff:169.254.169.254]", "::ffff:169.254.169.254"},
        {"[fd00:ec2::254]", "fd00:ec2::254"},
        {"::1", "::1"},
        {"169.254.169.254 x", NULL}, /* glibc's inet_aton would take this */
        {"example.com", NULL},
        {"deadbeef", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct sockaddr_storage ss;
        bool lit = netguard_literal(rows[i].host, &ss);
        if (lit != (rows[i].norm != NULL))
            fail_msg("row %zu %s: literal=%d", i, rows[i].host, lit);
        if (!lit)
            continue;
        char out[64];
        assert_true(netguard_norm(rows[i].host, out, sizeof out));
        assert_string_equal(out, rows[i].norm);
        char why[128];
        bool meta = strstr(rows[i].norm, "169.254") || strstr(rows[i].norm, "ec2");
        assert_int_equal(netguard_addr_ok(NULL, (struct sockaddr *)&ss, why, sizeof why), !meta);
    }
}

typedef struct host_row {
    const char *host;
    unsigned port;
    bool ok;
} host_row;

static void test_allow_list(void **state)
{
    (void)state;
    netguard *g = NULL;
    char err[128];
    assert_int_equal(netguard_new(" api.example.com, .svc.example.org ,127.0.0.1:8080,"
                                  "[2001:db8::1]:443, 10.0.0.5, EXACT.Example.net.",
                                  false, &g, err, sizeof err),
                     ERR_OK);
    static const host_row rows[] = {
        {"api.example.com", 443, true},
        {"API.EXAMPLE.COM", 80, true},
        {"api.example.com.", 443, true}, /* trailing dot */
        {"api.example.com..", 443, false},
        {"example.com", 443, false},
        {"evilapi.example.com", 443, false},
        {"api.example.com.evil.io", 443, false},
        {"a.svc.example.org", 443, true},
        {"a.b.svc.example.org", 443, true},
        {"svc.example.org", 443, false}, /* a suffix entry does not match its own apex */
        {"xsvc.example.org", 443, false},
        {"127.0.0.1", 8080, true},
        {"127.0.0.1", 80, false},
        {"2130706433", 8080, true}, /* decimal spelling of 127.0.0.1 */
        {"0x7f.1", 8080, true},
        {"[2001:db8::1]", 443, true},
        {"[2001:0db8:0::1]", 443, true},
        {"2001:db8::1", 443, true},
        {"[2001:db8::1]", 80, false},
        {"10.0.0.5", 1, true},
        {"exact.example.net", 80, true},
        {"169.254.169.254", 80, false},
        {"", 80, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (netguard_host_ok(g, rows[i].host, rows[i].port) != rows[i].ok)
            fail_msg("row %zu %s:%u: want %d", i, rows[i].host, rows[i].port, rows[i].ok);
    }
    netguard_free(g);
    /* No list: every host. */
    assert_true(netguard_host_ok(NULL, "anything.example", 1));
    assert_int_equal(netguard_new("", false, &g, err, sizeof err), ERR_OK);
    assert_true(netguard_host_ok(g, "anything.example", 1));
    netguard_free(g);
}

static void test_bad_entries(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "host:0",    "host:65536", "host:",   "host:80x", ".",
        "user@host", "host/path",  "[::1]:x", ":80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        netguard *g = NULL;
        char err[128] = "";
        if (netguard_new(bad[i], false, &g, err, sizeof err) != ERR_INVAL)
            fail_msg("entry '%s' accepted", bad[i]);
        assert_non_null(strstr(err, "allowed host"));
        assert_null(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_policy),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_bad_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
