/* test_lease: the producer group's active/standby decisions, driven by an injected monotonic
 * clock and connection generations (no broker): when to join the lease queue, when to publish
 * the token, what holding it means across reconnects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "lease.h"

#include <string.h>

#define MS    CLOCK_NS_PER_MS
#define RETRY (500 * MS)

static void test_group_names(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "billing", "eu-west.1", "A_B-c.9"};
    static const char *const bad[] = {"", "has space", "slash/no", "star*", "é"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(lease_check_group(good[i]), ERR_OK);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(lease_check_group(bad[i]), ERR_INVAL);
    assert_int_equal(lease_check_group(NULL), ERR_INVAL);
    char longest[LEASE_GROUP_MAX + 2];
    memset(longest, 'g', sizeof longest);
    longest[LEASE_GROUP_MAX] = '\0';
    assert_int_equal(lease_check_group(longest), ERR_OK);
    longest[LEASE_GROUP_MAX] = 'g';
    longest[LEASE_GROUP_MAX + 1] = '\0';
    assert_int_equal(lease_check_group(longest), ERR_INVAL);
}

/* Without a group every producer is active, connected or not, and never joins. */
static void test_disabled_is_always_active(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, NULL, RETRY);
    assert_false(l.enabled);
    assert_true(lease_held(&l, 0, 0));
    assert_true(lease_held(&l, 7, 0));
    assert_false(lease_due(&l, 7, 0));
    lease_init(&l, "", RETRY);
    assert_false(l.enabled);
}

/* Join once per connection; active only when the token came on that very connection. */
static void test_join_then_token(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, "g1", RETRY);
    assert_string_equal(l.queue, "salvo.producer.lease.g1");
    assert_string_equal(l.key, "lease.g1");
    assert_false(lease_held(&l, 0, 0)); /* not connected */
    assert_false(lease_due(&l, 0, 0));
    assert_true(lease_due(&l, 3, 1000 * MS));
    lease_note(&l, ERR_OK, 3, 1000 * MS);
    assert_false(lease_due(&l, 3, 2000 * MS)); /* joined: wait for the token, no polling */
    assert_false(lease_held(&l, 3, 0));        /* standing by */
    assert_false(lease_held(&l, 3, 2));        /* a token from an older connection */
    assert_true(lease_held(&l, 3, 3));         /* the broker made us the active consumer */
}

/* Any other connection is standby again: the broker returned the token with the old one. */
static void test_reconnect_loses_lease(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, "g1", RETRY);
    lease_note(&l, ERR_OK, 3, 0);
    assert_true(lease_held(&l, 3, 3));
    assert_false(lease_held(&l, 0, 3)); /* disconnected: stop publishing at once */
    assert_false(lease_held(&l, 4, 3)); /* reconnected: not until the token comes again */
    assert_true(lease_due(&l, 4, 1));   /* and join again at once */
}

/* A failed join (a missing permission, a lost connection) is retried after a doubling pause
 * capped at 30 s, and a success resets it. */
static void test_failed_join_backs_off(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, "g1", RETRY);
    int64_t now = 0;
    int64_t want[] = {RETRY, 2 * RETRY, 4 * RETRY, 8 * RETRY};
    for (size_t i = 0; i < 4; i++) {
        lease_note(&l, ERR_MQ_CHANNEL, 5, now);
        assert_false(lease_due(&l, 5, now + want[i] - 1));
        assert_true(lease_due(&l, 5, now + want[i]));
        now += want[i];
    }
    for (int i = 0; i < 20; i++)
        lease_note(&l, ERR_MQ_CHANNEL, 5, now);
    assert_true(lease_due(&l, 5, now + 30 * CLOCK_NS_PER_SEC));
    assert_false(lease_due(&l, 5, now + 30 * CLOCK_NS_PER_SEC - 1));
    lease_note(&l, ERR_OK, 5, now);
    assert_int_equal(l.failures, 0);
}

/* The token is published only when none can exist: no message and no consumer. */
static void test_needs_token(void **state)
{
    (void)state;
    assert_true(lease_needs_token(0, 0));
    assert_false(lease_needs_token(1, 0)); /* a token waits in the queue */
    assert_false(lease_needs_token(0, 1)); /* someone holds it or waits for it */
    assert_false(lease_needs_token(2, 3));
}

/* The active producer renews its token every LEASE_RENEW_NS, far inside RabbitMQ's default
 * 30-minute consumer_timeout. */
static void test_renew_due(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, "g1", RETRY);
    assert_false(lease_renew_due(&l, 0, LEASE_RENEW_NS - 1));
    assert_true(lease_renew_due(&l, 0, LEASE_RENEW_NS));
    assert_true(LEASE_RENEW_NS * 10 <= 30 * 60 * CLOCK_NS_PER_SEC);
    l.renew_ns = 2 * CLOCK_NS_PER_SEC; /* --lease-renew */
    assert_false(lease_renew_due(&l, 5, 5 + 2 * CLOCK_NS_PER_SEC - 1));
    assert_true(lease_renew_due(&l, 5, 5 + 2 * CLOCK_NS_PER_SEC));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_names),
        cmocka_unit_test(test_disabled_is_always_active),
        cmocka_unit_test(test_join_then_token),
        cmocka_unit_test(test_reconnect_loses_lease),
        cmocka_unit_test(test_failed_join_backs_off),
        cmocka_unit_test(test_needs_token),
        cmocka_unit_test(test_renew_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
