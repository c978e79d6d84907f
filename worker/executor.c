/* executor: the pool thread's loop (inbox, multi perform, completions, poll) and its stop. The
 * per-task steps (admit, start, finish) live in run.c. */
#include "executor.h"

#include "clock.h"
#include "cmdexec.h"
#include "err.h"
#include "log.h"
#include "rtprio.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Poll bound when nothing else limits it: stop requests also arrive by wakeup, so this only
 * bounds how stale a missed wakeup could make the loop. */
#define EXECUTOR_POLL_MS 1000
/* While commands run or tasks wait for descriptors, look again this often: process exits and
 * other executors' finished transfers do not wake this thread. */
#define EXECUTOR_BUSY_POLL_MS 50
/* Tasks handled between two libcurl drives in one pass (~10-30 ms of work). */
#define EXECUTOR_SLICE 64

int executor_init(executor *ex, exec_shared *sh, int idx, size_t max_cmds)
{
    memset(ex, 0, sizeof *ex);
    if (pthread_mutex_init(&ex->mu, NULL) != 0)
        return ERR_NOMEM;
    ex->sh = sh;
    ex->idx = idx;
    /* Without it (never expected), held requests are released by poll's timeout, up to 1 ms
     * late. */
    ex->release_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    atomic_init(&ex->load, 0);
    ex->max_cmds = max_cmds ? max_cmds : 1;
    ex->cmds = calloc(ex->max_cmds, sizeof *ex->cmds);
    if (!ex->cmds || httpcall_multi_new(&sh->limits, &ex->multi) != ERR_OK) {
        free(ex->cmds);
        pthread_mutex_destroy(&ex->mu);
        if (ex->release_fd >= 0)
            close(ex->release_fd);
        memset(ex, 0, sizeof *ex); /* what executor_fini recognises as "never built" */
        return ERR_NOMEM;
    }
    return ERR_OK;
}

void executor_push(executor *ex, task *t)
{
    t->next = NULL;
    atomic_fetch_add(&ex->load, 1);
    pthread_mutex_lock(&ex->mu);
    bool was_empty = ex->in_head == NULL;
    if (ex->in_tail)
        ex->in_tail->next = t;
    else
        ex->in_head = t;
    ex->in_tail = t;
    pthread_mutex_unlock(&ex->mu);
    /* Only the first task rings: the executor takes the whole inbox at once, and a ring stays
     * pending until its next wait, so a burst of 1,000 costs one wakeup instead of 1,000. */
    if (was_empty)
        httpcall_multi_wakeup(ex->multi);
}

void executor_push_due(executor *ex, task *t)
{
    t->next = NULL;
    atomic_fetch_add(&ex->load, 1);
    pthread_mutex_lock(&ex->mu);
    bool was_empty = ex->due_head == NULL;
    if (ex->due_tail)
        ex->due_tail->next = t;
    else
        ex->due_head = t;
    ex->due_tail = t;
    pthread_mutex_unlock(&ex->mu);
    if (was_empty)
        httpcall_multi_wakeup(ex->multi);
}

size_t executor_load(executor *ex)
{
    return atomic_load(&ex->load);
}

void executor_stop(executor *ex, bool abort)
{
    pthread_mutex_lock(&ex->mu);
    ex->stopping = true;
    ex->aborting |= abort;
    pthread_mutex_unlock(&ex->mu);
    httpcall_multi_wakeup(ex->multi);
}

/* Put the due list (mutex held) in front of list and empty it. */
static task *executor_due_before(executor *ex, task *list)
{
    task *head = ex->due_head;
    if (!head)
        return list;
    ex->due_tail->next = list;
    ex->due_head = ex->due_tail = NULL;
    return head;
}

/* Take the due list and the whole inbox, due tasks first, and read the stop flags in one
 * critical section. */
static task *executor_take(executor *ex, bool *stopping, bool *aborting)
{
    pthread_mutex_lock(&ex->mu);
    task *list = ex->in_head;
    ex->in_head = ex->in_tail = NULL;
    list = executor_due_before(ex, list);
    *stopping = ex->stopping;
    *aborting = ex->aborting;
    pthread_mutex_unlock(&ex->mu);
    return list;
}

/* Between two slices of a burst: tasks the hold released meanwhile go ahead of the admissions
 * still waiting. A 5,000-job fan-out admitted until its instant would otherwise keep its own
 * first jobs, released 180 ms early to be written corked, from starting until after it. */
static task *executor_take_due(executor *ex, task *list)
{
    pthread_mutex_lock(&ex->mu);
    list = executor_due_before(ex, list);
    pthread_mutex_unlock(&ex->mu);
    return list;
}

static bool executor_idle(const executor *ex)
{
    return httpcall_multi_active(ex->multi) == 0 && ex->ncmds == 0 && !ex->backlog_head;
}

static int executor_poll_ms(const executor *ex)
{
    int ms = EXECUTOR_POLL_MS;
    if (ex->ncmds || ex->backlog_head)
        ms = EXECUTOR_BUSY_POLL_MS;
    int release = run_release_ms(ex);
    if (release < ms)
        ms = release;
    for (size_t i = 0; i < ex->ncmds; i++) {
        int left = cmdexec_ms_left(ex->cmds[i]->cmd);
        if (left < ms)
            ms = left;
    }
    return ms;
}

/* Keep the release timer armed at the earliest held instant. poll's timeout is whole
 * milliseconds, rounded up so that nothing is released early, so it wakes the thread up to 1 ms
 * after the instant; an absolute realtime timerfd wakes it on time (tens of microseconds). */
static void executor_arm_release(executor *ex)
{
    int64_t at = ex->nheld ? ex->held_next_ns : 0;
    if (ex->release_fd < 0 || at == ex->release_armed_ns)
        return;
    struct itimerspec its = {{0, 0}, {0, 0}}; /* all zero disarms */
    its.it_value.tv_sec = (time_t)(at / CLOCK_NS_PER_SEC);
    its.it_value.tv_nsec = (long)(at % CLOCK_NS_PER_SEC);
    if (timerfd_settime(ex->release_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        ex->release_armed_ns = at;
}

static void executor_poll(executor *ex)
{
    struct pollfd fds[256];
    size_t n = 0;
    executor_arm_release(ex);
    if (ex->release_armed_ns)
        fds[n++] = (struct pollfd){ex->release_fd, POLLIN, 0};
    for (size_t i = 0; i < ex->ncmds && n < sizeof fds / sizeof fds[0]; i++) {
        int fd = cmdexec_fd(ex->cmds[i]->cmd);
        if (fd >= 0)
            fds[n++] = (struct pollfd){fd, POLLIN, 0};
    }
    /* A thread whose next timed wake-up is its held requests' instant sleeps raised (rtprio.h).
     * Woken at normal priority, it queued behind what the other executors' first sends had
     * woken and began its own burst milliseconds late (2-3 ms of 10 in a 1,000-job burst on 2
     * cores). Woken for anything else, it goes back to normal priority at once; woken with
     * something held due, run_release (the pass's first step) lowers it before a move ahead of
     * its instant and after the walk. */
    int ms = executor_poll_ms(ex);
    if (ex->nheld && run_release_ms(ex) <= ms)
        rtprio_raise();
    httpcall_multi_poll(ex->multi, fds, n, ms);
    if (!ex->nheld || run_release_ms(ex) > 0)
        rtprio_lower();
    if (ex->release_armed_ns && (fds[0].revents & POLLIN)) {
        uint64_t expirations;
        ssize_t r = read(ex->release_fd, &expirations, sizeof expirations);
        (void)r;                  /* EAGAIN only if another read got there first */
        ex->release_armed_ns = 0; /* fired: a timerfd does not fire twice */
    }
}

/* One pass: new tasks, waiting tasks, transfers, commands. */
static void executor_pass(executor *ex, task *in)
{
    run_release(ex);
    while (in) {
        /* A burst is taken in slices, with libcurl driven and due requests released between
         * them: 2,500 jobs take ~0.5 s to start, far past any instant in the middle. */
        for (int k = 0; in && k < EXECUTOR_SLICE; k++) {
            task *t = in;
            in = in->next;
            t->next = NULL;
            if (t->admitted)
                run_start(ex, t);
            else
                run_admit(ex, t);
        }
        in = executor_take_due(ex, in);
        if (in) {
            run_release(ex);
            httpcall_multi_perform(ex->multi);
        }
    }
    run_backlog(ex);
    httpcall_multi_perform(ex->multi);
    run_release(ex);
    run_log_started(ex);
    run_collect(ex);
    run_step_cmds(ex);
}

static void *executor_main(void *arg)
{
    executor *ex = arg;
    httpcall_thread_init();
    for (;;) {
        bool stopping, aborting;
        task *in = executor_take(ex, &stopping, &aborting);
        if (aborting) {
            rtprio_lower(); /* woken raised for an instant: dropping is no release */
            run_drop_list(ex, in);
            break;
        }
        executor_pass(ex, in);
        if (stopping && executor_idle(ex))
            break;
        executor_poll(ex);
    }
    run_drop_all(ex);
    httpcall_thread_fini();
    return NULL;
}

int executor_start(executor *ex)
{
    if (pthread_create(&ex->thread, NULL, executor_main, ex) != 0)
        return ERR_NOMEM;
    ex->started = true;
    return ERR_OK;
}

void executor_join(executor *ex)
{
    if (ex->started) {
        pthread_join(ex->thread, NULL);
        ex->started = false;
    }
}

void executor_fini(executor *ex)
{
    if (!ex->multi)
        return;
    if (ex->started) {
        executor_stop(ex, true);
        pthread_join(ex->thread, NULL);
        ex->started = false;
    }
    bool s, a;
    run_drop_list(ex, executor_take(ex, &s, &a));
    run_drop_all(ex);
    free(ex->cmds);
    ex->cmds = NULL;
    if (ex->release_fd >= 0)
        close(ex->release_fd);
    ex->release_fd = -1;
    httpcall_multi_free(ex->multi);
    ex->multi = NULL;
    pthread_mutex_destroy(&ex->mu);
}
