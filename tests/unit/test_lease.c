/* test_lease: the producer group's active/standby decisions, driven by an injected monotonic
 * clock and connection generations (no broker): when to ask for the lease, what holding it
 * means across reconnects. */
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

/* Without a group every producer is active, connected or not, and never asks. */
static void test_disabled_is_always_active(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, NULL, RETRY);
    assert_false(l.enabled);
    assert_true(lease_held(&l, 0));
    assert_true(lease_held(&l, 7));
    assert_false(lease_due(&l, 7, 0));
    lease_init(&l, "", RETRY);
    assert_false(l.enabled);
}

static void test_standby_then_active(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, "g1", RETRY);
    assert_string_equal(l.queue, "salvo.producer.lease.g1");
    /* Not connected: neither active nor asking. */
    assert_false(lease_held(&l, 0));
    assert_false(lease_due(&l, 0, 0));
    /* Connected (generation 3): ask at once; refused, ask again only after the interval. */
    int64_t now = 1000 * MS;
    assert_true(lease_due(&l, 3, now));
    lease_note(&l, ERR_EXISTS, 3, now);
    assert_false(lease_held(&l, 3));
    assert_int_equal(l.refusals, 1);
    assert_false(lease_due(&l, 3, now + RETRY - 1));
    assert_int_equal(lease_wait_ms(&l, now + 100 * MS), 400);
    assert_true(lease_due(&l, 3, now + RETRY));
    assert_int_equal(lease_wait_ms(&l, now + RETRY), 0);
    /* Granted: active on that connection, nothing more to ask. */
    lease_note(&l, ERR_OK, 3, now + RETRY);
    assert_true(lease_held(&l, 3));
    assert_false(lease_due(&l, 3, now + 10 * RETRY));
    assert_int_equal(l.refusals, 0);
}

/* Any other connection is standby again, even the next one a moment later: the broker deleted
 * the lease with the old connection, so it must be taken again (and the watermark re-read). */
static void test_reconnect_loses_lease(void **state)
{
    (void)state;
    lease l;
    lease_init(&l, "g1", RETRY);
    lease_note(&l, ERR_OK, 3, 0);
    assert_true(lease_held(&l, 3));
    assert_false(lease_held(&l, 0)); /* disconnected: stop publishing at once */
    assert_false(lease_held(&l, 4));
    assert_true(lease_due(&l, 4, 1)); /* and ask at once on the new connection */
    lease_note(&l, ERR_MQ_CLOSED, 4, 1);
    assert_false(lease_held(&l, 3)); /* a failed attempt forgets the old generation too */
    assert_int_equal(l.refusals, 0); /* not a refusal by another producer */
    assert_false(lease_due(&l, 5, 1 + RETRY - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_names),
        cmocka_unit_test(test_disabled_is_always_active),
        cmocka_unit_test(test_standby_then_active),
        cmocka_unit_test(test_reconnect_loses_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
