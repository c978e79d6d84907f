/* test_fireheap: the producer's next-fire heap against a plain array model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "fireheap.h"

#include <stdlib.h>
#include <string.h>

#define MODEL_N 500

/* The model: key per index, INT64_MAX meaning absent. */
static int64_t model[MODEL_N];

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

static void model_min(int64_t *key, uint32_t *idx)
{
    *key = INT64_MAX;
    *idx = UINT32_MAX;
    for (uint32_t i = 0; i < MODEL_N; i++) {
        if (model[i] < *key) {
            *key = model[i];
            *idx = i;
        }
    }
}

static void test_pop_order(void **state)
{
    (void)state;
    static const struct {
        uint32_t idx;
        int64_t key;
    } rows[] = {{3, 50}, {0, 10}, {7, 10}, {1, 40}, {5, -2}, {2, 10}, {4, 99}, {6, 40}};
    static const uint32_t want[] = {5, 0, 2, 7, 1, 6, 3, 4}; /* key, then index */
    fireheap h;
    assert_int_equal(fireheap_init(&h, 8), ERR_OK);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(fireheap_set(&h, rows[i].idx, rows[i].key), ERR_OK);
    int64_t key, prev = INT64_MIN;
    uint32_t idx;
    for (size_t i = 0; i < 8; i++) {
        assert_true(fireheap_pop(&h, &key, &idx));
        assert_int_equal(idx, want[i]);
        assert_true(key >= prev);
        prev = key;
    }
    assert_false(fireheap_pop(&h, &key, &idx));
    fireheap_fini(&h);
}

static void test_move_and_remove(void **state)
{
    (void)state;
    fireheap h;
    assert_int_equal(fireheap_init(&h, 4), ERR_OK);
    fireheap_set(&h, 0, 100);
    fireheap_set(&h, 1, 200);
    fireheap_set(&h, 2, 300);
    fireheap_set(&h, 2, 50); /* move up */
    int64_t key;
    uint32_t idx;
    assert_true(fireheap_peek(&h, &key, &idx));
    assert_int_equal(idx, 2);
    assert_int_equal(key, 50);
    fireheap_set(&h, 2, 500); /* move down */
    assert_true(fireheap_peek(&h, &key, &idx));
    assert_int_equal(idx, 0);
    fireheap_remove(&h, 0);
    fireheap_remove(&h, 0); /* absent: nothing happens */
    assert_false(fireheap_contains(&h, 0));
    assert_int_equal(fireheap_key(&h, 0), INT64_MAX);
    assert_int_equal(fireheap_key(&h, 2), 500);
    assert_true(fireheap_peek(&h, &key, &idx));
    assert_int_equal(idx, 1);
    assert_int_equal(fireheap_set(&h, 4, 1), ERR_RANGE);
    assert_int_equal(h.n, 2);
    fireheap_fini(&h);
    fireheap_fini(&h); /* twice is safe */
}

/* Thousands of random inserts, moves, removes and pops, checked against the model each step. */
static void test_random_against_model(void **state)
{
    (void)state;
    fireheap h;
    assert_int_equal(fireheap_init(&h, MODEL_N), ERR_OK);
    for (size_t i = 0; i < MODEL_N; i++)
        model[i] = INT64_MAX;
    for (int step = 0; step < 20000; step++) {
        uint32_t idx = rnd() % MODEL_N;
        int64_t key = (int64_t)(rnd() % 1000);
        switch (rnd() % 4) {
        case 0:
        case 1:
            fireheap_set(&h, idx, key);
            model[idx] = key;
            break;
        case 2:
            fireheap_remove(&h, idx);
            model[idx] = INT64_MAX;
            break;
        default: {
            int64_t mk, hk;
            uint32_t mi, hi;
            model_min(&mk, &mi);
            bool got = fireheap_pop(&h, &hk, &hi);
            assert_int_equal(got, mk != INT64_MAX);
            if (got) {
                assert_int_equal(hk, mk);
                assert_int_equal(hi, mi);
                model[mi] = INT64_MAX;
            }
        }
        }
        assert_int_equal(fireheap_key(&h, idx), model[idx]);
    }
    fireheap_fini(&h);
}

static void test_collect(void **state)
{
    (void)state;
    fireheap h;
    uint32_t out[MODEL_N];
    assert_int_equal(fireheap_init(&h, MODEL_N), ERR_OK);
    for (uint32_t i = 0; i < MODEL_N; i++)
        fireheap_set(&h, MODEL_N - 1 - i, (int64_t)(i % 7)); /* idx 499 gets 0, ... */
    size_t n = fireheap_collect(&h, 0, out);
    size_t want = 0;
    for (uint32_t i = 0; i < MODEL_N; i++)
        want += i % 7 == 0;
    assert_int_equal(n, want);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(fireheap_key(&h, out[k]), 0);
        if (k > 0)
            assert_true(out[k - 1] < out[k]); /* ascending index order */
    }
    assert_int_equal(fireheap_collect(&h, -1, out), 0);
    assert_int_equal(fireheap_collect(&h, 6, out), MODEL_N);
    fireheap_fini(&h);
}

static void test_empty(void **state)
{
    (void)state;
    fireheap h;
    int64_t key;
    uint32_t idx, out[1];
    assert_int_equal(fireheap_init(&h, 0), ERR_OK);
    assert_false(fireheap_peek(&h, &key, &idx));
    assert_int_equal(fireheap_collect(&h, INT64_MAX, out), 0);
    assert_int_equal(fireheap_set(&h, 0, 1), ERR_RANGE);
    fireheap_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pop_order),
        cmocka_unit_test(test_move_and_remove),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_collect),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
