/* test_worker_pending: follow-ups waiting for publisher confirms, in sequence order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "pending.h"

#include <stdlib.h>
#include <string.h>

static settle *mk(uint64_t tag, const char *id)
{
    settle *s = calloc(1, sizeof *s);
    s->tag = tag;
    s->id = id ? strdup(id) : NULL;
    return s;
}

/* Tags of a confirmed list, in order, into out; returns the count and frees the list. */
static size_t tags(settle *s, uint64_t *out)
{
    size_t n = 0;
    while (s) {
        settle *next = s->next;
        out[n++] = s->tag;
        settle_free(s);
        s = next;
    }
    return n;
}

static void test_single_and_multiple(void **state)
{
    (void)state;
    pending p;
    pending_init(&p);
    /* Publish sequence 1..10; the odd ones are result records, which are not tracked. */
    for (uint64_t seq = 2; seq <= 10; seq += 2)
        assert_int_equal(pending_add(&p, seq, mk(100 + seq, "j")), ERR_OK);
    assert_int_equal(pending_count(&p), 5);
    uint64_t got[16];
    assert_null(pending_confirm(&p, 1, false)); /* a result record's confirm */
    assert_int_equal(tags(pending_confirm(&p, 6, false), got), 1);
    assert_int_equal(got[0], 106);
    assert_int_equal(tags(pending_confirm(&p, 7, true), got), 2); /* 2 and 4 */
    assert_int_equal(got[0], 102);
    assert_int_equal(got[1], 104);
    assert_int_equal(pending_count(&p), 2);
    assert_null(pending_confirm(&p, 6, false)); /* already confirmed */
    assert_int_equal(tags(pending_confirm(&p, 100, true), got), 2);
    assert_int_equal(got[0], 108);
    assert_int_equal(got[1], 110);
    assert_int_equal(pending_count(&p), 0);
    pending_fini(&p);
}

/* Growth and reuse of the consumed front keep order over many adds and confirms. */
static void test_many(void **state)
{
    (void)state;
    pending p;
    pending_init(&p);
    uint64_t seq = 0, confirmed = 0, got[8];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 7; i++) {
            seq++;
            assert_int_equal(pending_add(&p, seq, mk(seq, NULL)), ERR_OK);
        }
        for (int i = 0; i < 5; i++) {
            confirmed++;
            assert_int_equal(tags(pending_confirm(&p, confirmed, false), got), 1);
            assert_int_equal(got[0], confirmed);
        }
    }
    assert_int_equal(pending_count(&p), seq - confirmed);
    pending_fini(&p); /* frees the rest: ASan checks */
}

static void test_returned_and_take_all(void **state)
{
    (void)state;
    pending p;
    pending_init(&p);
    assert_int_equal(pending_add(&p, 1, mk(1, "a")), ERR_OK);
    assert_int_equal(pending_add(&p, 2, mk(2, "b")), ERR_OK);
    assert_int_equal(pending_add(&p, 3, mk(3, "b")), ERR_OK);
    assert_true(pending_mark_returned(&p, "b"));
    assert_false(pending_mark_returned(&p, "zzz"));
    assert_false(pending_mark_returned(&p, NULL));
    settle *all = pending_take_all(&p);
    assert_int_equal(pending_count(&p), 0);
    assert_false(all->returned);
    assert_true(all->next->returned);        /* the oldest "b" */
    assert_false(all->next->next->returned); /* the next one is not */
    uint64_t got[4];
    assert_int_equal(tags(all, got), 3);
    pending_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_and_multiple),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_returned_and_take_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
