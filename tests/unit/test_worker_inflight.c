/* test_worker_inflight: claims on running (firing id, attempt) pairs and parked copies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "inflight.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static task *mk(uint64_t tag)
{
    mq_delivery d;
    memset(&d, 0, sizeof d);
    d.tag = tag;
    return task_new(&d, 0);
}

static void test_claim_park_release(void **state)
{
    (void)state;
    inflight *f = NULL;
    assert_int_equal(inflight_new(4, &f), ERR_OK);
    task *a = mk(1), *b = mk(2), *c = mk(3), *other = mk(4);
    assert_true(inflight_claim(f, "s@x#0", 1, a));
    assert_true(inflight_claim(f, "s@x#0", 2, other)); /* another attempt is another pair */
    assert_false(inflight_claim(f, "s@x#0", 1, b));
    assert_false(inflight_claim(f, "s@x#0", 1, c));
    assert_int_equal(inflight_count(f), 2);
    task *parked = inflight_release(f, "s@x#0", 1);
    size_t n = 0;
    uint64_t sum = 0;
    for (task *t = parked; t;) {
        task *next = t->next;
        sum += t->d.tag;
        n++;
        task_free(t);
        t = next;
    }
    assert_int_equal(n, 2);
    assert_int_equal(sum, 5);
    assert_null(inflight_release(f, "s@x#0", 1));  /* released once */
    assert_true(inflight_claim(f, "s@x#0", 1, a)); /* free to claim again */
    assert_int_equal(inflight_count(f), 2);
    /* Freeing the registry frees tasks still parked (ASan checks). */
    assert_false(inflight_claim(f, "s@x#0", 2, mk(5)));
    inflight_free(f);
    task_free(a);
    task_free(other);
}

typedef struct racer {
    inflight *f;
    int owners;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 500; i++) {
        char id[32];
        snprintf(id, sizeof id, "job#%d", i);
        task *t = mk((uint64_t)i);
        if (inflight_claim(r->f, id, 1, t)) {
            r->owners++;
            task_free(t);
        }
    }
    return NULL;
}

/* Four threads claim the same 500 pairs: exactly one owner each, the rest parked. */
static void test_threads(void **state)
{
    (void)state;
    inflight *f = NULL;
    assert_int_equal(inflight_new(16, &f), ERR_OK);
    racer r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer){f, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int owners = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        owners += r[i].owners;
    }
    assert_int_equal(owners, 500);
    assert_int_equal(inflight_count(f), 500);
    for (int i = 0; i < 500; i++) {
        char id[32];
        snprintf(id, sizeof id, "job#%d", i);
        size_t n = 0;
        for (task *p = inflight_release(f, id, 1); p;) {
            task *next = p->next;
            task_free(p);
            p = next;
            n++;
        }
        assert_int_equal(n, 3);
    }
    assert_int_equal(inflight_count(f), 0);
    inflight_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_park_release),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
