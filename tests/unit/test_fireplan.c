/* test_fireplan: what fires when, driven by an injected clock: batches, misfire skip/once/all
 * across restarts and outages, clock steps, reload, state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "fireplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0    1767225600LL /* 2026-01-01T00:00:00Z, a multiple of 10 s */
#define SEC   1000LL
#define GRACE (60 * SEC)

/* One job of a test schedule: name, timing line ("every: 10s"), extra YAML lines. */
typedef struct tjob {
    const char *name;
    const char *when;
    const char *extra;
} tjob;

static schedfile *load(const tjob *jobs, size_t n)
{
    char text[8192];
    size_t at = (size_t)snprintf(text, sizeof text, "jobs:\n");
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(text + at, sizeof text - at,
                               "  - name: %s\n    %s\n    http: {url: http://127.0.0.1/%s}\n%s",
                               jobs[i].name, jobs[i].when, jobs[i].name,
                               jobs[i].extra ? jobs[i].extra : "");
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_parse("test.yaml", text, at, &sf, &errors);
    if (rc != ERR_OK)
        fail_msg("schedule did not parse: %s\n%s", errors ? errors : "", text);
    free(errors);
    return sf;
}

static void plan(fireplan *p, const tjob *jobs, size_t n, const prodstate *st, int64_t now_ms)
{
    assert_int_equal(fireplan_init(p, load(jobs, n), st, now_ms, GRACE), ERR_OK);
}

/* The next batch at now_ms must be exactly (key, [(entry, due, replay)...]). */
typedef struct want {
    uint32_t entry;
    int64_t due_s;
    bool replay;
} want;

static void expect(fireplan *p, fireplan_batch *b, int64_t now_ms, int64_t key_ms, const want *w,
                   size_t n)
{
    assert_int_equal(fireplan_next(p, now_ms, b), ERR_OK);
    assert_int_equal(b->key_ms, key_ms);
    assert_int_equal(b->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(b->f[i].entry, w[i].entry);
        assert_int_equal(b->f[i].due_s, w[i].due_s);
        assert_int_equal(b->f[i].replay, w[i].replay);
    }
}

static void commit_all(fireplan *p, const fireplan_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        fireplan_commit(p, &b->f[i]);
}

static void test_fresh_start_and_batches(void **state)
{
    (void)state;
    const tjob jobs[] = {
        {"a", "every: 10s", NULL},
        {"b", "every: 20s", NULL},
        {"early", "every: 10s", "    lead: 2s\n"},
    };
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 3, NULL, T0 * SEC + 3500);
    /* The lead job's publish instant (due - 2 s) comes first, in a batch of its own. */
    expect(&p, &b, T0 * SEC + 3500, (T0 + 8) * SEC, (want[]){{2, T0 + 10, false}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, T0 * SEC + 8000, (T0 + 10) * SEC, (want[]){{0, T0 + 10, false}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, T0 * SEC + 10001, (T0 + 18) * SEC, (want[]){{2, T0 + 20, false}}, 1);
    commit_all(&p, &b);
    /* a and b share T0+20: one batch, in file order. */
    expect(&p, &b, T0 * SEC + 18000, (T0 + 20) * SEC,
           (want[]){{0, T0 + 20, false}, {1, T0 + 20, false}}, 2);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* A firing exactly at the start instant is on time, not missed. */
static void test_start_on_the_second(void **state)
{
    (void)state;
    const tjob jobs[] = {{"a", "every: 10s", NULL}};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 1, NULL, (T0 + 10) * SEC);
    expect(&p, &b, (T0 + 10) * SEC, (T0 + 10) * SEC, (want[]){{0, T0 + 10, false}}, 1);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* Restart after downtime: state says a, b, c last fired at T0; the producer comes back at
 * T0+35.5 s. Missed: T0+10, T0+20, T0+30. */
static void test_misfire_policies_across_restart(void **state)
{
    (void)state;
    const tjob jobs[] = {
        {"skip", "every: 10s", "    misfire: skip\n"},
        {"once", "every: 10s", "    misfire: once\n"},
        {"all2", "every: 10s", "    misfire: all\n    misfire_max: 2\n"},
        {"all9", "every: 10s", "    misfire: all\n    misfire_max: 9\n"},
    };
    schedfile *probe = load(jobs, 4);
    /* Records sorted by name, as prodstate_load leaves them: all2 all9 once skip. */
    static const size_t order[] = {2, 3, 1, 0};
    prodstate_rec recs[4];
    for (size_t i = 0; i < 4; i++)
        recs[i] = (prodstate_rec){jobs[order[i]].name, probe->entries[order[i]].digest, T0};
    prodstate st = {recs, 4, NULL};
    int64_t now = T0 * SEC + 35500;
    fireplan p;
    fireplan_batch b = {0};
    assert_int_equal(fireplan_init(&p, probe, &st, now, GRACE), ERR_OK);
    /* Oldest first: all9 replays T0+10 (all2 only the latest two, from T0+20). */
    expect(&p, &b, now, (T0 + 10) * SEC, (want[]){{3, T0 + 10, true}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 20) * SEC, (want[]){{2, T0 + 20, true}, {3, T0 + 20, true}}, 2);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 30) * SEC,
           (want[]){{1, T0 + 30, true}, {2, T0 + 30, true}, {3, T0 + 30, true}}, 3);
    commit_all(&p, &b);
    /* Then everyone, skip included, is back on the clock at T0+40. */
    expect(&p, &b, now, (T0 + 40) * SEC,
           (want[]){
               {0, T0 + 40, false}, {1, T0 + 40, false}, {2, T0 + 40, false}, {3, T0 + 40, false}},
           4);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* A restart with a changed entry (other digest) or no state does not replay anything. */
static void test_restart_changed_entry_starts_fresh(void **state)
{
    (void)state;
    const tjob jobs[] = {{"once", "every: 10s", "    misfire: once\n"}};
    prodstate_rec rec = {"once", 12345, T0}; /* digest of some older version */
    prodstate st = {&rec, 1, NULL};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 1, &st, T0 * SEC + 35500);
    expect(&p, &b, T0 * SEC + 35500, (T0 + 40) * SEC, (want[]){{0, T0 + 40, false}}, 1);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* Per-second job, a day down, misfire all capped at 3: exactly the latest 3, then on the
 * clock; no cliff, and quick (the search walks back from now, not forward from the state). */
static void test_misfire_all_long_outage_is_bounded(void **state)
{
    (void)state;
    const tjob jobs[] = {{"tick", "every: 1s", "    misfire: all\n    misfire_max: 3\n"}};
    schedfile *sf = load(jobs, 1);
    prodstate_rec rec = {"tick", sf->entries[0].digest, T0};
    prodstate st = {&rec, 1, NULL};
    int64_t now = (T0 + 86400) * SEC + 500;
    fireplan p;
    fireplan_batch b = {0};
    int64_t t0 = clock_mono_ns();
    assert_int_equal(fireplan_init(&p, sf, &st, now, GRACE), ERR_OK);
    for (int64_t k = 3; k >= 1; k--) {
        expect(&p, &b, now, (T0 + 86400 - k + 1) * SEC, (want[]){{0, T0 + 86400 - k + 1, true}}, 1);
        commit_all(&p, &b);
    }
    expect(&p, &b, now, (T0 + 86401) * SEC, (want[]){{0, T0 + 86401, false}}, 1);
    assert_true(clock_mono_ns() - t0 < 200 * CLOCK_NS_PER_MS);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* Broker outage while running: a firing late by less than the grace still fires (late);
 * beyond the grace the policy applies. */
static void test_outage_grace_then_policy(void **state)
{
    (void)state;
    const tjob jobs[] = {{"a", "every: 10s", NULL}};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 1, NULL, T0 * SEC - 1000);
    expect(&p, &b, T0 * SEC - 1000, T0 * SEC, (want[]){{0, T0, false}}, 1);
    assert_false(fireplan_stale(&p, &b, T0 * SEC + 30 * SEC)); /* 30 s late: still fires */
    commit_all(&p, &b);
    /* Still down until T0+75 s: T0+10 is 65 s late, beyond the grace. */
    int64_t now = T0 * SEC + 75 * SEC;
    expect(&p, &b, T0 * SEC + 9000, (T0 + 10) * SEC, (want[]){{0, T0 + 10, false}}, 1);
    assert_true(fireplan_stale(&p, &b, now));
    /* skip drops T0+10 (older than now - grace = T0+15); T0+20 is within the grace. */
    expect(&p, &b, now, (T0 + 20) * SEC, (want[]){{0, T0 + 20, false}}, 1);
    assert_false(fireplan_stale(&p, &b, now));
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* Clock steps: detected from realtime vs monotonic; backward never re-fires. */
static void test_clock_steps(void **state)
{
    (void)state;
    const tjob jobs[] = {{"a", "every: 10s", "    misfire: all\n"}};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 1, NULL, T0 * SEC - 500);
    assert_int_equal(fireplan_observe(&p, T0 * SEC - 500, 1000), 0);
    assert_int_equal(fireplan_observe(&p, T0 * SEC + 500, 2000), 0); /* in step */
    assert_int_equal(fireplan_observe(&p, T0 * SEC + 100, 2100), -500);
    assert_int_equal(fireplan_observe(&p, (T0 + 3600) * SEC + 200, 2200), 3600 * SEC);
    expect(&p, &b, T0 * SEC, T0 * SEC, (want[]){{0, T0, false}}, 1);
    commit_all(&p, &b);
    /* Backward an hour: the next batch is still after the last fired instant. */
    expect(&p, &b, (T0 - 3600) * SEC, (T0 + 10) * SEC, (want[]){{0, T0 + 10, false}}, 1);
    commit_all(&p, &b);
    /* Forward 2 minutes: T0+20 .. T0+120 fall in the jump; those older than the grace are
     * a misfire (all: replayed, oldest first), the rest fire late as usual. */
    int64_t now = (T0 + 130) * SEC; /* T0+70 is then exactly at the grace: on time */
    expect(&p, &b, now, (T0 + 20) * SEC, (want[]){{0, T0 + 20, true}}, 1);
    commit_all(&p, &b);
    for (int64_t t = T0 + 30; t <= T0 + 60; t += 10) {
        expect(&p, &b, now, t * SEC, (want[]){{0, t, true}}, 1);
        commit_all(&p, &b);
    }
    expect(&p, &b, now, (T0 + 70) * SEC, (want[]){{0, T0 + 70, false}}, 1);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

static void test_state_ahead_of_clock(void **state)
{
    (void)state;
    const tjob jobs[] = {{"a", "every: 10s", "    misfire: once\n"}};
    schedfile *sf = load(jobs, 1);
    prodstate_rec rec = {"a", sf->entries[0].digest, T0 + 100};
    prodstate st = {&rec, 1, NULL};
    fireplan p;
    fireplan_batch b = {0};
    assert_int_equal(fireplan_init(&p, sf, &st, T0 * SEC, GRACE), ERR_OK);
    expect(&p, &b, T0 * SEC, (T0 + 110) * SEC, (want[]){{0, T0 + 110, false}}, 1);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

static void test_reload_keeps_unchanged(void **state)
{
    (void)state;
    const tjob v1[] = {
        {"keep", "every: 10s", NULL},
        {"change", "every: 10s", NULL},
        {"drop", "every: 10s", NULL},
    };
    const tjob v2[] = {
        {"added", "every: 10s", NULL},
        {"change", "every: 10s", "    max_lateness: 5s\n"},
        {"keep", "every: 10s", NULL},
    };
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, v1, 3, NULL, T0 * SEC - 100);
    expect(&p, &b, T0 * SEC - 100, T0 * SEC,
           (want[]){{0, T0, false}, {1, T0, false}, {2, T0, false}}, 3);
    commit_all(&p, &b);
    /* Reload at T0+15 s while nothing fired at T0+10 yet (say the broker was down): "keep"
     * keeps its pending T0+10; "change" and "added" start from now (T0+20). */
    assert_int_equal(fireplan_reload(&p, load(v2, 3), (T0 + 15) * SEC), ERR_OK);
    assert_int_equal(p.n, 3);
    expect(&p, &b, (T0 + 15) * SEC, (T0 + 10) * SEC, (want[]){{2, T0 + 10, false}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, (T0 + 15) * SEC, (T0 + 20) * SEC,
           (want[]){{0, T0 + 20, false}, {1, T0 + 20, false}, {2, T0 + 20, false}}, 3);
    /* State: "keep" last fired at T0+10, "change" keeps T0 as its floor, "drop" is gone. */
    prodstate_rec *recs = NULL;
    size_t n = 0;
    assert_int_equal(fireplan_state(&p, &recs, &n), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(recs[0].name, "change");
    assert_int_equal(recs[0].last_s, T0);
    assert_int_equal(recs[0].digest, p.ents[1].e->digest);
    assert_string_equal(recs[1].name, "keep");
    assert_int_equal(recs[1].last_s, T0 + 10);
    free(recs);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* A batch planned before a reload no longer matches the plan. */
static void test_reload_makes_batch_stale(void **state)
{
    (void)state;
    const tjob v1[] = {{"a", "every: 10s", NULL}};
    const tjob v2[] = {{"b", "every: 10s", NULL}, {"a", "every: 10s", "    lead: 1s\n"}};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, v1, 1, NULL, T0 * SEC - 100);
    expect(&p, &b, T0 * SEC - 100, T0 * SEC, (want[]){{0, T0, false}}, 1);
    assert_int_equal(fireplan_reload(&p, load(v2, 2), T0 * SEC - 50), ERR_OK);
    /* Entry 0 is now "b", also due at T0: only the generation tells the batch is stale. */
    assert_int_equal(p.ents[0].next_s, T0);
    assert_true(fireplan_stale(&p, &b, T0 * SEC - 50));
    fireplan_commit(&p, &b.f[0]); /* ignored */
    assert_int_equal(p.ents[0].last_s, 0);
    assert_int_equal(p.ents[0].next_s, T0);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

static void test_at_fires_once(void **state)
{
    (void)state;
    const tjob jobs[] = {{"once", "at: \"2026-01-01T00:00:30Z\"", NULL}};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 1, NULL, T0 * SEC);
    expect(&p, &b, T0 * SEC, (T0 + 30) * SEC, (want[]){{0, T0 + 30, false}}, 1);
    commit_all(&p, &b);
    assert_int_equal(fireplan_next(&p, (T0 + 30) * SEC, &b), ERR_NOTFOUND);
    assert_int_equal(fireplan_key(&p, 0), INT64_MAX);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* Takeover: a standby planned from T0 adopts the active producer's watermark and continues
 * right after it; its own older state, other digests and older watermarks change nothing. */
static void test_adopt_watermark_takeover(void **state)
{
    (void)state;
    const tjob jobs[] = {{"a", "every: 10s", NULL}, {"b", "every: 10s", NULL}};
    fireplan p;
    fireplan_batch b = {0};
    plan(&p, jobs, 2, NULL, T0 * SEC + 500);
    /* Watermark: a fired up to T0+30, b's record is from another version of b. */
    prodstate_rec recs[] = {{"a", p.ents[0].e->digest, T0 + 30}, {"b", 999, T0 + 50}};
    prodstate st = {recs, 2, NULL};
    assert_int_equal(fireplan_adopt(&p, &st), 1);
    /* The leader died after T0+30: T0+40 is due at T0+42.5, late but inside the grace. */
    int64_t now = (T0 + 42) * SEC + 500;
    expect(&p, &b, now, (T0 + 10) * SEC, (want[]){{1, T0 + 10, false}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 20) * SEC, (want[]){{1, T0 + 20, false}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 30) * SEC, (want[]){{1, T0 + 30, false}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 40) * SEC, (want[]){{0, T0 + 40, false}, {1, T0 + 40, false}}, 2);
    commit_all(&p, &b);
    /* Adopting the same or an older watermark again moves nothing back. */
    recs[0].last_s = T0 + 20;
    assert_int_equal(fireplan_adopt(&p, &st), 0);
    expect(&p, &b, now, (T0 + 50) * SEC, (want[]){{0, T0 + 50, false}, {1, T0 + 50, false}}, 2);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

/* A restart with no local state but a watermark in the broker: the firings between the
 * watermark and the start follow the misfire policy, as with a state file; none repeats. */
static void test_adopt_watermark_restart(void **state)
{
    (void)state;
    const tjob jobs[] = {{"all", "every: 10s", "    misfire: all\n    misfire_max: 9\n"},
                         {"skip", "every: 10s", "    misfire: skip\n"}};
    fireplan p;
    fireplan_batch b = {0};
    int64_t now = (T0 + 35) * SEC;
    plan(&p, jobs, 2, NULL, now);
    prodstate_rec recs[] = {{"all", p.ents[0].e->digest, T0 + 10},
                            {"skip", p.ents[1].e->digest, T0 + 10}};
    prodstate st = {recs, 2, NULL};
    assert_int_equal(fireplan_adopt(&p, &st), 2);
    expect(&p, &b, now, (T0 + 20) * SEC, (want[]){{0, T0 + 20, true}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 30) * SEC, (want[]){{0, T0 + 30, true}}, 1);
    commit_all(&p, &b);
    expect(&p, &b, now, (T0 + 40) * SEC, (want[]){{0, T0 + 40, false}, {1, T0 + 40, false}}, 2);
    fireplan_batch_fini(&b);
    fireplan_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_start_and_batches),
        cmocka_unit_test(test_start_on_the_second),
        cmocka_unit_test(test_misfire_policies_across_restart),
        cmocka_unit_test(test_restart_changed_entry_starts_fresh),
        cmocka_unit_test(test_misfire_all_long_outage_is_bounded),
        cmocka_unit_test(test_outage_grace_then_policy),
        cmocka_unit_test(test_clock_steps),
        cmocka_unit_test(test_state_ahead_of_clock),
        cmocka_unit_test(test_reload_keeps_unchanged),
        cmocka_unit_test(test_reload_makes_batch_stale),
        cmocka_unit_test(test_at_fires_once),
        cmocka_unit_test(test_adopt_watermark_takeover),
        cmocka_unit_test(test_adopt_watermark_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
