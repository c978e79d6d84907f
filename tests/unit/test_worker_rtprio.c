/* test_worker_rtprio: the release priority is taken only when the kernel grants it, and is
 * refused with a reason otherwise; it raises only the calling thread, and lowers back to normal
 * priority with the thread's nice value kept. Each case runs in a child process, which drops
 * privileges as the case needs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "rtprio.h"

#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each child check returns 0, or the line of the first check that failed. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child check failed: %s (line %d)\n", #cond, __LINE__);                \
            return __LINE__;                                                                       \
        }                                                                                          \
    } while (0)

static int run_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Drop CAP_SYS_NICE from the effective and permitted sets (a no-op for a user without it). */
static int drop_sys_nice(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    d[CAP_TO_INDEX(CAP_SYS_NICE)].effective &= ~CAP_TO_MASK(CAP_SYS_NICE);
    d[CAP_TO_INDEX(CAP_SYS_NICE)].permitted &= ~CAP_TO_MASK(CAP_SYS_NICE);
    return (int)syscall(SYS_capset, &h, d);
}

static int set_rtprio_limit(rlim_t n)
{
    struct rlimit r = {n, n};
    return setrlimit(RLIMIT_RTPRIO, &r);
}

/* Whether the kernel lets this process take SCHED_FIFO 1: CAP_SYS_NICE, or an RLIMIT_RTPRIO of
 * at least 1 (root without CAP_SYS_RESOURCE, as on the CI machine, cannot raise that limit). */
static bool may_raise(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    struct rlimit r;
    if (syscall(SYS_capget, &h, d) == 0 &&
        (d[CAP_TO_INDEX(CAP_SYS_NICE)].effective & CAP_TO_MASK(CAP_SYS_NICE)))
        return true;
    return getrlimit(RLIMIT_RTPRIO, &r) == 0 && r.rlim_cur >= 1;
}

static int policy_is(int policy, int prio)
{
    struct sched_param p;
    return sched_getscheduler(0) == policy && sched_getparam(0, &p) == 0 &&
           p.sched_priority == prio;
}

static int child_off(void)
{
    char err[160] = "x";
    CHECK(!rtprio_setup(0, err, sizeof err));
    CHECK(err[0] == '\0');
    CHECK(rtprio_level() == 0);
    CHECK(!rtprio_raise());
    CHECK(policy_is(SCHED_OTHER, 0));
    return 0;
}

static int child_refused(void)
{
    char err[160] = "";
    CHECK(set_rtprio_limit(0) == 0);
    CHECK(drop_sys_nice() == 0);
    CHECK(!rtprio_setup(1, err, sizeof err));
    CHECK(strstr(err, "SCHED_FIFO 1 refused") != NULL);
    CHECK(strstr(err, "RLIMIT_RTPRIO") != NULL);
    CHECK(rtprio_level() == 0);
    CHECK(!rtprio_raise());
    CHECK(policy_is(SCHED_OTHER, 0));
    return 0;
}

static void *raise_in_thread(void *arg)
{
    int *ok = arg;
    *ok = rtprio_raise() && policy_is(SCHED_FIFO, 1);
    rtprio_lower();
    *ok = *ok && policy_is(SCHED_OTHER, 0);
    return NULL;
}

/* Raising is per thread, repeatable, and lowering keeps the thread's nice value. */
static int child_thread_and_nice(void)
{
    CHECK(setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5) == 0);
    CHECK(rtprio_setup(1, NULL, 0));
    CHECK(rtprio_raise());
    CHECK(rtprio_raise()); /* already raised: still true, no second change */
    CHECK(policy_is(SCHED_FIFO, 1));
    int ok = 0;
    pthread_t th;
    pthread_attr_t attr;
    /* A new thread must start at normal priority whatever its creator runs at: explicit. */
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED) == 0);
    CHECK(pthread_create(&th, &attr, raise_in_thread, &ok) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    pthread_attr_destroy(&attr);
    CHECK(ok == 1);
    CHECK(policy_is(SCHED_FIFO, 1)); /* the other thread's lowering did not lower this one */
    rtprio_lower();
    CHECK(policy_is(SCHED_OTHER, 0));
    CHECK(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)) == 5);
    rtprio_lower(); /* lowering twice is harmless */
    CHECK(policy_is(SCHED_OTHER, 0));
    return 0;
}

static void test_off(void **state)
{
    (void)state;
    assert_int_equal(run_child(child_off), 0);
}

static void test_refused_without_cap_or_rlimit(void **state)
{
    (void)state;
    assert_int_equal(run_child(child_refused), 0);
}

static void test_per_thread_and_nice_kept(void **state)
{
    (void)state;
    if (!may_raise()) {
        print_message("needs CAP_SYS_NICE or RLIMIT_RTPRIO >= 1 (CI runs as root)\n");
        skip();
    }
    assert_int_equal(run_child(child_thread_and_nice), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_refused_without_cap_or_rlimit),
        cmocka_unit_test(test_per_thread_and_nice_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
