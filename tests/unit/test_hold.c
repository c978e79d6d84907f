/* test_hold: precise mode's timer fires held items at their instants, earliest first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "hold.h"

#include <pthread.h>
#include <stdlib.h>

#define MS          CLOCK_NS_PER_MS
#define LATE_MAX_MS 250

/* What the fire callback saw: item ids in firing order and when each fired. */
typedef struct rec {
    pthread_mutex_t mu;
    int ids[2048];
    int64_t at[2048];
    size_t n;
    size_t batches;
    int dropped;
} rec;

typedef struct item {
    int id;
    int64_t due;
} item;

static void on_fire(void *ud, void **items, size_t n)
{
    rec *r = ud;
    int64_t now = clock_real_ns();
    pthread_mutex_lock(&r->mu);
    r->batches++;
    for (size_t i = 0; i < n && r->n < 2048; i++) {
        r->ids[r->n] = ((item *)items[i])->id;
        r->at[r->n++] = now;
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_drop(void *ud, void *it)
{
    rec *r = ud;
    r->dropped++;
    (void)it;
}

static size_t rec_count(rec *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void wait_for(rec *r, size_t n, int64_t max_ms)
{
    int64_t end = clock_mono_ns() + max_ms * MS;
    while (rec_count(r) < n && clock_mono_ns() < end)
        clock_sleep_until_mono(clock_mono_ns() + 2 * MS);
}

static int setup(void **state)
{
    rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    rec *r = *state;
    pthread_mutex_destroy(&r->mu);
    free(r);
    return 0;
}

/* Items added out of order fire in due order, ties in arrival order, never before their due. */
static void test_ordering(void **state)
{
    rec *r = *state;
    hold *h = NULL;
    assert_int_equal(hold_new(2, on_fire, r, &h), ERR_OK);
    assert_int_equal(hold_start(h), ERR_OK);
    static const int offsets_ms[] = {250, 60, 180, 60, 120, 300, 90};
    enum { N = sizeof offsets_ms / sizeof offsets_ms[0] };
    item items[N];
    int64_t base = clock_real_ns();
    for (int i = 0; i < N; i++) {
        items[i] = (item){i, base + offsets_ms[i] * MS};
        assert_int_equal(hold_add(h, items[i].due, &items[i]), ERR_OK);
    }
    wait_for(r, N, 2000);
    static const int want[] = {1, 3, 6, 4, 2, 0, 5};
    assert_int_equal(r->n, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r->ids[i], want[i]);
        assert_true(r->at[i] >= items[r->ids[i]].due);
        /* Generous bound (sanitizers, a loaded 2-core CI machine): late by a scheduling hiccup
         * at worst, far from the 1 s a polling timer would show. */
        assert_true(r->at[i] - items[r->ids[i]].due < LATE_MAX_MS * MS);
    }
    assert_int_equal(hold_count(h), 0);
    hold_free(h);
}

/* A new earliest item wakes the thread out of a long sleep. */
static void test_earlier_item_wakes(void **state)
{
    rec *r = *state;
    hold *h = NULL;
    assert_int_equal(hold_new(0, on_fire, r, &h), ERR_OK);
    assert_int_equal(hold_start(h), ERR_OK);
    int64_t base = clock_real_ns();
    item late = {1, base + 3000 * MS}, early = {2, base + 80 * MS};
    assert_int_equal(hold_add(h, late.due, &late), ERR_OK);
    clock_sleep_until_real(base + 20 * MS);
    assert_int_equal(hold_add(h, early.due, &early), ERR_OK);
    wait_for(r, 1, 1000);
    assert_int_equal(rec_count(r), 1);
    assert_int_equal(r->ids[0], 2);
    assert_true(r->at[0] - early.due < LATE_MAX_MS * MS);
    assert_int_equal(hold_count(h), 1);
    /* Stopping hands the unfired item to drop and refuses new ones. */
    hold_stop(h, on_drop, r);
    assert_int_equal(r->dropped, 1);
    assert_int_equal(hold_add(h, base, &early), ERR_INVAL);
    hold_free(h);
}

/* An item already due fires at once. */
static void test_past_due(void **state)
{
    rec *r = *state;
    hold *h = NULL;
    assert_int_equal(hold_new(4, on_fire, r, &h), ERR_OK);
    assert_int_equal(hold_start(h), ERR_OK);
    item it = {7, clock_real_ns() - 1000 * MS};
    int64_t t0 = clock_real_ns();
    assert_int_equal(hold_add(h, it.due, &it), ERR_OK);
    wait_for(r, 1, 1000);
    assert_int_equal(r->ids[0], 7);
    assert_true(r->at[0] - t0 < LATE_MAX_MS * MS);
    hold_free(h);
}

/* A burst larger than one batch all fires at the instant, in arrival order. */
static void test_burst(void **state)
{
    rec *r = *state;
    hold *h = NULL;
    assert_int_equal(hold_new(16, on_fire, r, &h), ERR_OK);
    assert_int_equal(hold_start(h), ERR_OK);
    enum { N = 1000 };
    static item items[N];
    int64_t due = clock_real_ns() + 100 * MS;
    for (int i = 0; i < N; i++) {
        items[i] = (item){i, due};
        assert_int_equal(hold_add(h, due, &items[i]), ERR_OK);
    }
    wait_for(r, N, 2000);
    assert_int_equal(r->n, N);
    assert_true(r->batches >= N / 256);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r->ids[i], i);
        assert_true(r->at[i] >= due);
    }
    assert_true(r->at[N - 1] - due < LATE_MAX_MS * MS);
    hold_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ordering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_earlier_item_wakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_past_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
