/* test_pool: the executor pool end to end without a broker: fake deliveries in, settles out of
 * the outcome queue, against an in-process HTTP server. Start, drain, hold, abort, duplicates,
 * retries, dead letters and parked redeliveries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "httpcall.h"
#include "inflight.h"
#include "jobwire.h"
#include "log.h"
#include "outq.h"
#include "pool.h"
#include "recent.h"
#include "rtprio.h"

#include <dirent.h>
#include <microhttpd.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int64_t delays[5] = {1000, 5000, 30000, 120000, 600000};

static struct MHD_Daemon *server;
static uint16_t port;
static bool rt_on;               /* whether this process may release at SCHED_FIFO 1 (root: yes) */
static _Atomic int64_t stamp_ns; /* when /stamp was last requested (realtime) */

/* /status/N answers N; /slow/MS answers 200 after MS. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)cls, (void)method, (void)version, (void)data, (void)size;
    if (!*con_cls) {
        *con_cls = c;
        return MHD_YES;
    }
    unsigned status = 200;
    if (strcmp(url, "/stamp") == 0)
        stamp_ns = clock_real_ns();
    if (strncmp(url, "/status/", 8) == 0)
        status = (unsigned)atoi(url + 8);
    else if (strncmp(url, "/slow/", 6) == 0)
        usleep((useconds_t)atoi(url + 6) * 1000);
    struct MHD_Response *r = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Everything one test needs: the pool and the objects it settles through. */
typedef struct fix {
    outq *q;
    recent *rec;
    inflight *inf;
    pool *p;
    settle_env env;
    uint64_t next_tag;
} fix;

static int group_setup(void **state)
{
    (void)state;
    log_init(LOG_WARN, LOG_TEXT, "test"); /* one line per job would drown the test output */
    rt_on = rtprio_setup(1, NULL, 0);     /* as the worker does, before any executor */
    server = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                              NULL, NULL, on_request, NULL, MHD_OPTION_CONNECTION_LIMIT, 1000u,
                              MHD_OPTION_END);
    if (!server)
        return -1;
    port = MHD_get_daemon_info(server, MHD_DAEMON_INFO_BIND_PORT)->port;
    return httpcall_global_init() == ERR_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(server);
    httpcall_global_fini();
    return 0;
}

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);
    /* Unsigned (test_trust covers keys); every attempt gets a result record unless a test
     * changes it before dispatching (the dispatch orders the change before the executors'
     * reads). */
    f->env = (settle_env){"test:1", delays, 5, NULL, SETTLE_RESULTS_ALL};
    assert_int_equal(outq_new(&f->q), ERR_OK);
    assert_int_equal(recent_new(1024, &f->rec), ERR_OK);
    assert_int_equal(inflight_new(64, &f->inf), ERR_OK);
    pool_opts o = {2, 200, 200, 1024, NULL, 0, &f->env, f->q, f->rec, f->inf, NULL};
    assert_int_equal(pool_new(&o, &f->p), ERR_OK);
    pool_set_generation(f->p, 1); /* as the I/O thread does once connected: make_task's gen */
    assert_int_equal(pool_start(f->p), ERR_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    pool_free(f->p);
    inflight_free(f->inf);
    recent_free(f->rec);
    outq_free(f->q);
    free(f);
    return 0;
}

/* A delivery as the I/O thread would hand it over: job `index` of schedule "pool". */
static task *make_task(fix *f, const char *path, int64_t due_ms, uint32_t attempt, uint32_t index)
{
    job j;
    job_init(&j);
    char id[128], url[128];
    job_format_id("pool", due_ms, index, id, sizeof id);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    j.id = strdup(id);
    j.schedule = strdup("pool");
    j.index = index;
    j.due_ms = due_ms;
    j.attempt = attempt;
    j.max_attempts = 3;
    j.kind = JOB_HTTP;
    j.http.method = strdup("GET");
    j.http.url = strdup(url);
    j.http.connect_timeout_ms = 2000;
    j.http.timeout_ms = 10000;
    mq_delivery d;
    memset(&d, 0, sizeof d);
    assert_int_equal(jobwire_encode(&j, &d.body, &d.len), ERR_OK);
    job_fini(&j);
    d.gen = 1;
    d.channel = 1;
    d.tag = ++f->next_tag;
    d.message_id = strdup(id);
    return task_new(&d, clock_real_ns());
}

/* Collect n settles from the outcome queue (fails after max_ms). */
static settle *collect(fix *f, size_t n, int64_t max_ms)
{
    settle *head = NULL, **tail = &head;
    size_t got = 0;
    int64_t end = clock_mono_ns() + max_ms * CLOCK_NS_PER_MS;
    while (got < n && clock_mono_ns() < end) {
        struct pollfd p = {outq_fd(f->q), POLLIN, 0};
        poll(&p, 1, 50);
        for (settle *s = outq_take(f->q); s; s = s->next) {
            *tail = s;
            tail = &s->next;
            got++;
        }
    }
    assert_int_equal(got, n);
    return head;
}

static void free_list(settle *s)
{
    while (s) {
        settle *next = s->next;
        settle_free(s);
        s = next;
    }
}

static int64_t now_ms(void)
{
    return clock_real_ns() / CLOCK_NS_PER_MS;
}

/* A delivery from a connection the I/O thread no longer has is settled without running: the
 * broker has handed it out again, and this copy could never be acked. */
static void test_stale_generation_not_started(void **state)
{
    fix *f = *state;
    stamp_ns = 0;
    pool_set_generation(f->p, 2); /* reconnected: deliveries of generation 1 are stale */
    pool_dispatch(f->p, make_task(f, "/stamp", now_ms(), 1, 0));
    settle *s = collect(f, 1, 5000);
    assert_int_equal(s->action, OUTCOME_ACK);
    assert_string_equal(s->label, "stale");
    assert_int_equal(s->status, 0);
    usleep(200 * 1000);
    assert_int_equal(stamp_ns, 0); /* the target never saw it */
    free_list(s);
    pool_set_generation(f->p, 1);
    pool_dispatch(f->p, make_task(f, "/stamp", now_ms(), 1, 1));
    s = collect(f, 1, 5000);
    assert_string_equal(s->label, "ok");
    assert_true(stamp_ns > 0);
    free_list(s);
}

/* 60 jobs of 300 ms on two threads finish together, then the pool drains and stops. */
static void test_start_and_drain(void **state)
{
    fix *f = *state;
    unsigned long raised = rtprio_raise_count();
    int64_t t0 = clock_mono_ns();
    for (uint32_t i = 0; i < 60; i++)
        pool_dispatch(f->p, make_task(f, "/slow/300", now_ms(), 1, i));
    settle *list = collect(f, 60, 5000);
    int64_t ms = (clock_mono_ns() - t0) / CLOCK_NS_PER_MS;
    print_message("60 jobs of 300 ms took %lld ms\n", (long long)ms);
    assert_true(ms < 2000);
    size_t n = 0;
    for (settle *s = list; s; s = s->next, n++) {
        assert_int_equal(s->action, OUTCOME_ACK);
        assert_string_equal(s->label, "ok");
        assert_int_equal(s->status, 200);
        assert_true(s->owns_claim);
        assert_non_null(s->result);
        assert_non_null(strstr(s->result, "\"outcome\":\"ok\""));
        assert_null(inflight_release(f->inf, s->id, s->attempt)); /* nothing parked */
    }
    assert_int_equal(n, 60);
    assert_int_equal(rtprio_raise_count(), raised); /* nothing held: nothing raised */
    free_list(list);
    /* An executor lets go of a task just after queueing its settle. */
    int64_t end = clock_mono_ns() + CLOCK_NS_PER_SEC;
    while (pool_load(f->p) != 0 && clock_mono_ns() < end)
        clock_sleep_until_mono(clock_mono_ns() + CLOCK_NS_PER_MS);
    assert_int_equal(pool_load(f->p), 0);
    pool_stop(f->p, false);
}

/* Whether every thread of this process runs at normal priority (SCHED_OTHER). */
static bool all_threads_normal(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    bool normal = true;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] != '.' && sched_getscheduler((pid_t)atoi(e->d_name)) != SCHED_OTHER)
            normal = false;
    }
    closedir(d);
    return normal;
}

/* A job due 300 ms ahead waits in the hold timer, its request held until its instant: the
 * server sees it at the instant, not before, and not long after. The release went out raised
 * (when the process may), and no thread stays raised after it. */
static void test_hold_until_due(void **state)
{
    fix *f = *state;
    int64_t due = now_ms() + 300;
    unsigned long raised = rtprio_raise_count();
    stamp_ns = 0;
    pool_dispatch(f->p, make_task(f, "/stamp", due, 1, 0));
    settle *s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_ACK);
    assert_true(stamp_ns >= due * CLOCK_NS_PER_MS);
    assert_true(stamp_ns - due * CLOCK_NS_PER_MS < 100 * CLOCK_NS_PER_MS);
    assert_true(s->lateness_ms >= 0 && s->lateness_ms < 100);
    free_list(s);
    if (rt_on)
        assert_true(rtprio_raise_count() > raised);
    else
        assert_int_equal(rtprio_raise_count(), raised);
    assert_true(all_threads_normal());
}

/* A job far in the future is clock skew; a settled (id, attempt) is a duplicate. */
static void test_skew_and_duplicate(void **state)
{
    fix *f = *state;
    pool_dispatch(f->p, make_task(f, "/status/200", now_ms() + 60000, 1, 1));
    settle *s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_DEAD);
    assert_string_equal(s->reason, "clock-skew");
    assert_string_equal(s->routing_key, "dead");
    free_list(s);
    int64_t due = now_ms();
    char id[128];
    job_format_id("pool", due, 7, id, sizeof id);
    assert_int_equal(recent_add(f->rec, id, 1), ERR_OK);
    pool_dispatch(f->p, make_task(f, "/status/200", due, 1, 7));
    s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_ACK);
    assert_string_equal(s->label, "duplicate");
    assert_null(s->result);
    free_list(s);
}

/* 503: retry at level r1 with the job re-encoded as attempt 2 and a jittered expiration. */
static void test_retry_settle(void **state)
{
    fix *f = *state;
    pool_dispatch(f->p, make_task(f, "/status/503", now_ms(), 1, 2));
    settle *s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_RETRY);
    assert_string_equal(s->exchange, "salvo.retry");
    assert_string_equal(s->routing_key, "r1");
    assert_int_equal(s->status, 503);
    long exp = atol(s->expiration);
    assert_true(exp >= 800 && exp <= 1000);
    job j;
    job_init(&j);
    char reason[128];
    assert_int_equal(jobwire_decode(s->body, s->len, &j, reason, sizeof reason), ERR_OK);
    assert_int_equal(j.attempt, 2);
    assert_string_equal(j.id, s->id);
    /* The retry carries the template, not this attempt's expansion. */
    assert_non_null(strstr(j.http.url, "/status/503"));
    job_fini(&j);
    mq_msg m;
    settle_message(s, &m);
    assert_true(m.mandatory && m.persistent);
    assert_string_equal(m.message_id, s->id);
    free_list(s);
}

/* --results failures (the default) records a retry but not a success; off records neither. */
static void test_results_mode(void **state)
{
    fix *f = *state;
    f->env.results = SETTLE_RESULTS_FAILURES;
    pool_dispatch(f->p, make_task(f, "/status/200", now_ms(), 1, 3));
    settle *s = collect(f, 1, 3000);
    assert_string_equal(s->label, "ok");
    assert_null(s->result);
    free_list(s);
    pool_dispatch(f->p, make_task(f, "/status/503", now_ms(), 1, 4));
    s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_RETRY);
    assert_non_null(s->result);
    assert_non_null(strstr(s->result, "\"outcome\":\"retry\""));
    free_list(s);
    f->env.results = SETTLE_RESULTS_OFF;
    pool_dispatch(f->p, make_task(f, "/status/503", now_ms(), 1, 5));
    s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_RETRY);
    assert_null(s->result);
    free_list(s);
}

/* Undecodable bytes: dead with the decoder's reason, the original body and headers. */
static void test_malformed_settle(void **state)
{
    fix *f = *state;
    mq_delivery d;
    memset(&d, 0, sizeof d);
    static const char poison[] = "\xdd\x08\x00\x00\x00";
    d.body = malloc(5);
    memcpy(d.body, poison, 5);
    d.len = 5;
    d.gen = 1;
    d.tag = 99;
    d.message_id = strdup("poison-1");
    pool_dispatch(f->p, task_new(&d, clock_real_ns()));
    settle *s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_DEAD);
    assert_int_equal(strncmp(s->reason, "malformed: ", 11), 0);
    assert_int_equal(s->len, 5);
    assert_memory_equal(s->body, poison, 5);
    assert_null(s->id);
    assert_null(s->result);
    assert_int_equal(s->nhdrs, 4);
    assert_string_equal(s->hdrs[0].key, "x-salvo-reason");
    assert_string_equal(s->hdrs[0].str, s->reason);
    assert_string_equal(s->hdrs[3].str, "");
    mq_msg m;
    settle_message(s, &m);
    assert_string_equal(m.message_id, "poison-1");
    assert_int_equal(s->tag, 99);
    free_list(s);
}

/* A copy of a running job is parked, not run; the owner's release hands it back. */
static void test_redelivery_parks(void **state)
{
    fix *f = *state;
    int64_t due = now_ms();
    pool_dispatch(f->p, make_task(f, "/slow/400", due, 1, 3));
    clock_sleep_until_mono(clock_mono_ns() + 100 * CLOCK_NS_PER_MS);
    pool_dispatch(f->p, make_task(f, "/slow/400", due, 1, 3));
    settle *s = collect(f, 1, 3000);
    assert_int_equal(s->action, OUTCOME_ACK);
    /* Only one settle: give the copy a moment to prove it is not running too. */
    clock_sleep_until_mono(clock_mono_ns() + 600 * CLOCK_NS_PER_MS);
    assert_null(outq_take(f->q));
    task *parked = inflight_release(f->inf, s->id, s->attempt);
    assert_non_null(parked);
    assert_null(parked->next);
    assert_int_equal(parked->d.tag, s->tag + 1);
    task_free(parked);
    free_list(s);
}

/* Aborting drops tasks still running, promptly and without settling them. */
static void test_abort(void **state)
{
    fix *f = *state;
    for (uint32_t i = 0; i < 10; i++)
        pool_dispatch(f->p, make_task(f, "/slow/5000", now_ms(), 1, 10 + i));
    pool_dispatch(f->p, make_task(f, "/status/200", now_ms() + 2000, 1, 30)); /* held */
    clock_sleep_until_mono(clock_mono_ns() + 300 * CLOCK_NS_PER_MS);
    assert_int_equal(pool_load(f->p), 11);
    int64_t t0 = clock_mono_ns();
    pool_stop(f->p, true);
    assert_true(clock_mono_ns() - t0 < CLOCK_NS_PER_SEC);
    assert_null(outq_take(f->q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_generation_not_started, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_until_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skew_and_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redelivery_parks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
