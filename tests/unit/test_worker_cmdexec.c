/* test_worker_cmdexec: the command executor: spawn, capture, exit codes, environment, timeout
 * killing the whole process group, spawn errors and the allow-list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "cmdexec.h"
#include "err.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A command job over literal arguments (the job only borrows them here). The arrays the tests
 * pass end with a non-NULL poison entry past argc: a decoded job's argv is exactly argc long, so
 * the executor must not rely on a terminating NULL. */
static job cmd_job(char **argv, size_t argc, job_kv *env, size_t nenv, uint32_t timeout_ms)
{
    job j;
    memset(&j, 0, sizeof j);
    j.kind = JOB_COMMAND;
    j.cmd.argv = argv;
    j.cmd.argc = argc;
    j.cmd.env = env;
    j.cmd.nenv = nenv;
    j.cmd.timeout_ms = timeout_ms;
    return j;
}

/* Drive the command to its end as an executor would; returns the wall time in ms. */
static int64_t drive(cmdexec *c)
{
    int64_t t0 = clock_mono_ns();
    while (!cmdexec_step(c)) {
        struct pollfd p = {cmdexec_fd(c), POLLIN, 0};
        int ms = cmdexec_ms_left(c);
        poll(&p, p.fd >= 0 ? 1 : 0, ms < 20 ? ms : 20);
        assert_true(clock_mono_ns() - t0 < 10 * CLOCK_NS_PER_SEC);
    }
    return (clock_mono_ns() - t0) / CLOCK_NS_PER_MS;
}

static const cmdexec_result *run(char **argv, size_t argc, job_kv *env, size_t nenv,
                                 uint32_t timeout_ms, size_t cap, cmdexec **out)
{
    job j = cmd_job(argv, argc, env, nenv, timeout_ms);
    char reason[256] = "";
    assert_int_equal(cmdexec_start(&j, cap, out, reason, sizeof reason), ERR_OK);
    drive(*out);
    return cmdexec_result_get(*out);
}

static void test_output_and_exit(void **state)
{
    (void)state;
    char *echo[] = {"/bin/sh", "-c", "echo out; echo err >&2", "POISON"};
    cmdexec *c = NULL;
    const cmdexec_result *r = run(echo, 3, NULL, 0, 5000, 1024, &c);
    assert_false(r->timed_out);
    assert_int_equal(r->exit_code, 0);
    assert_string_equal(r->output, "out\nerr\n");
    cmdexec_free(c);
    char *fail3[] = {"/bin/sh", "-c", "exit 3", NULL};
    r = run(fail3, 3, NULL, 0, 5000, 1024, &c);
    assert_int_equal(r->exit_code, 3);
    assert_string_equal(r->output, "");
    cmdexec_free(c);
}

/* The child sees the job's environment and nothing of the worker's. */
static void test_environment(void **state)
{
    (void)state;
    setenv("SALVO_TEST_SECRET", "leak", 1);
    char *env_argv[] = {"/usr/bin/env", "POISON"};
    job_kv env[] = {{"FOO", "bar"}, {"EMPTY", ""}};
    cmdexec *c = NULL;
    const cmdexec_result *r = run(env_argv, 1, env, 2, 5000, 1024, &c);
    assert_int_equal(r->exit_code, 0);
    assert_string_equal(r->output, "FOO=bar\nEMPTY=\n");
    cmdexec_free(c);
}

static void test_capture_cap(void **state)
{
    (void)state;
    char *big[] = {"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x", NULL};
    cmdexec *c = NULL;
    const cmdexec_result *r = run(big, 3, NULL, 0, 5000, 500, &c);
    assert_int_equal(r->exit_code, 0);
    assert_int_equal(r->output_len, 500);
    assert_true(r->truncated);
    cmdexec_free(c);
}

/* A timeout kills the whole process group, grandchildren included. */
static void test_timeout_kills_group(void **state)
{
    (void)state;
    char path[] = "/tmp/salvo-cmdexec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char script[256];
    snprintf(script, sizeof script, "sleep 30 & echo $! > %s; wait", path);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    job j = cmd_job(argv, 3, NULL, 0, 300);
    cmdexec *c = NULL;
    char reason[256];
    assert_int_equal(cmdexec_start(&j, 1024, &c, reason, sizeof reason), ERR_OK);
    int64_t ms = drive(c);
    const cmdexec_result *r = cmdexec_result_get(c);
    assert_true(r->timed_out);
    assert_int_equal(r->exit_code, 128 + SIGKILL);
    assert_true(ms >= 250 && ms < 3000);
    FILE *f = fopen(path, "r");
    long pid = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    unlink(path);
    /* The grandchild is gone (or a zombie about to be reaped by init). */
    int64_t end = clock_mono_ns() + 2 * CLOCK_NS_PER_SEC;
    char stat[64], buf[512] = "";
    snprintf(stat, sizeof stat, "/proc/%ld/stat", pid);
    for (;;) {
        FILE *s = fopen(stat, "r");
        if (!s)
            break;
        size_t n = fread(buf, 1, sizeof buf - 1, s);
        fclose(s);
        buf[n] = '\0';
        if (strstr(buf, ") Z "))
            break;
        assert_true(clock_mono_ns() < end);
        clock_sleep_until_mono(clock_mono_ns() + 10 * CLOCK_NS_PER_MS);
    }
    cmdexec_free(c);
}

static void test_spawn_error_and_allow_list(void **state)
{
    (void)state;
    char *argv[] = {"/nonexistent/program", NULL};
    job j = cmd_job(argv, 1, NULL, 0, 1000);
    cmdexec *c = NULL;
    char reason[256] = "";
    assert_int_equal(cmdexec_start(&j, 1024, &c, reason, sizeof reason), ERR_EXEC);
    assert_null(c);
    assert_non_null(strstr(reason, "spawn /nonexistent/program"));
    const char *allow[] = {"/bin/echo", "/usr/bin/env"};
    assert_true(cmdexec_allowed("/bin/echo", allow, 2));
    assert_true(cmdexec_allowed("/usr/bin/env", allow, 2));
    assert_false(cmdexec_allowed("/bin/echo2", allow, 2));
    assert_false(cmdexec_allowed("echo", allow, 2));
    assert_false(cmdexec_allowed("/bin/sh", NULL, 0));
    assert_false(cmdexec_allowed(NULL, allow, 2));
}

/* Freeing a running command kills and reaps it at once. */
static void test_free_running(void **state)
{
    (void)state;
    char *argv[] = {"/bin/sleep", "30", NULL};
    job j = cmd_job(argv, 2, NULL, 0, 60000);
    cmdexec *c = NULL;
    char reason[256];
    assert_int_equal(cmdexec_start(&j, 1024, &c, reason, sizeof reason), ERR_OK);
    assert_false(cmdexec_step(c));
    int64_t t0 = clock_mono_ns();
    cmdexec_free(c);
    assert_true(clock_mono_ns() - t0 < CLOCK_NS_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_exit),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_capture_cap),
        cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_spawn_error_and_allow_list),
        cmocka_unit_test(test_free_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
