/* cmdexec: posix_spawn in a new process group, one merged output pipe, a deadline, a reap. */
/* pipe2(O_CLOEXEC) is a GNU extension; it is needed because a plain pipe() then fcntl() leaves a
 * window in which another executor's spawn inherits our write end and delays our EOF. */
#define _GNU_SOURCE
#include "cmdexec.h"

#include "clock.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct cmdexec {
    pid_t pid; /* 0 once reaped */
    int fd;    /* read end of the output pipe, -1 once closed */
    int64_t start_mono, deadline_mono;
    size_t cap;
    char *buf;
    cmdexec_result res;
};

bool cmdexec_allowed(const char *argv0, const char *const *allow, size_t nallow)
{
    for (size_t i = 0; argv0 && i < nallow; i++) {
        if (strcmp(argv0, allow[i]) == 0)
            return true;
    }
    return false;
}

/* "NAME=value" strings for the child's environment: the job's, and nothing of ours. */
static char **cmdexec_envp(const job_command *c)
{
    char **envp = calloc(c->nenv + 1, sizeof *envp);
    for (size_t i = 0; envp && i < c->nenv; i++) {
        size_t n = strlen(c->env[i].name) + strlen(c->env[i].value) + 2;
        envp[i] = malloc(n);
        if (!envp[i])
            return envp; /* caller sees the NULL hole: spawn with a cut environment is refused */
        snprintf(envp[i], n, "%s=%s", c->env[i].name, c->env[i].value);
    }
    return envp;
}

static void cmdexec_envp_free(char **envp, size_t n)
{
    for (size_t i = 0; envp && i < n; i++)
        free(envp[i]);
    free(envp);
}

/* Child setup: own process group (so a timeout kills grandchildren too), default dispositions
 * for the signals the worker ignores or handles, nothing blocked, output into the pipe. */
static int cmdexec_spawn(cmdexec *c, const job_command *jc, char **argv, char **envp, int wfd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, wfd, 1);
    posix_spawn_file_actions_adddup2(&fa, wfd, 2);
    sigset_t def, none;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGHUP);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETSIGMASK);
    int rc = strchr(jc->argv[0], '/') ? posix_spawn(&c->pid, jc->argv[0], &fa, &at, argv, envp)
                                      : posix_spawnp(&c->pid, jc->argv[0], &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

int cmdexec_start(const job *j, size_t capture_cap, cmdexec **out, char *reason, size_t cap)
{
    const job_command *jc = &j->cmd;
    cmdexec *c = calloc(1, sizeof *c);
    char **envp = cmdexec_envp(jc);
    /* posix_spawn wants a NULL-terminated argv; a job's array is just argc long. */
    char **argv = calloc(jc->argc + 1, sizeof *argv);
    int p[2] = {-1, -1};
    int rc = ERR_NOMEM;
    if (!c || !envp || !argv || (jc->nenv && !envp[jc->nenv - 1]) || jc->argc == 0)
        goto fail;
    memcpy(argv, jc->argv, jc->argc * sizeof *argv);
    rc = ERR_EXEC;
    char eb[128] = "failed";
    if (pipe2(p, O_CLOEXEC) != 0) {
        strerror_r(errno, eb, sizeof eb);
        snprintf(reason, cap, "pipe: %s", eb);
        goto fail;
    }
    int err = cmdexec_spawn(c, jc, argv, envp, p[1]);
    if (err != 0) {
        strerror_r(err, eb, sizeof eb);
        snprintf(reason, cap, "spawn %.200s: %s", jc->argv[0], eb);
        goto fail;
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    c->fd = p[0];
    c->cap = capture_cap;
    c->start_mono = clock_mono_ns();
    c->deadline_mono = c->start_mono + (int64_t)jc->timeout_ms * CLOCK_NS_PER_MS;
    cmdexec_envp_free(envp, jc->nenv);
    free(argv);
    *out = c;
    return ERR_OK;
fail:
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    cmdexec_envp_free(envp, jc->nenv);
    free(argv);
    free(c);
    if (rc == ERR_NOMEM)
        snprintf(reason, cap, "out of memory");
    return rc;
}

int cmdexec_fd(const cmdexec *c)
{
    return c->fd;
}

/* Read whatever the pipe holds; keep up to cap bytes, drop the rest. Closes the pipe at EOF. */
static void cmdexec_read(cmdexec *c)
{
    char chunk[4096];
    while (c->fd >= 0) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close(c->fd);
            c->fd = -1;
            return;
        }
        size_t room = c->cap - c->res.output_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        c->res.truncated |= take < (size_t)n;
        char *b = take ? realloc(c->buf, c->res.output_len + take + 1) : c->buf;
        if (!b)
            continue; /* out of memory: the output is only informative */
        c->buf = b;
        memcpy(c->buf + c->res.output_len, chunk, take);
        c->res.output_len += take;
        c->buf[c->res.output_len] = '\0';
    }
}

static void cmdexec_reap(cmdexec *c, int flags)
{
    int st = 0;
    pid_t r = waitpid(c->pid, &st, flags);
    if (r != c->pid)
        return;
    c->pid = 0;
    c->res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    c->res.duration_ms = (clock_mono_ns() - c->start_mono) / CLOCK_NS_PER_MS;
}

bool cmdexec_step(cmdexec *c)
{
    cmdexec_read(c);
    if (c->pid > 0)
        cmdexec_reap(c, WNOHANG);
    if (c->pid > 0 && !c->res.timed_out && clock_mono_ns() >= c->deadline_mono) {
        c->res.timed_out = true;
        kill(-c->pid, SIGKILL);
    }
    if (c->pid == 0 && c->fd >= 0) {
        /* Exited, but a grandchild may hold the pipe open: take what is there and stop. */
        cmdexec_read(c);
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    if (c->pid > 0 || c->fd >= 0)
        return false;
    c->res.output = c->buf ? c->buf : "";
    return true;
}

int cmdexec_ms_left(const cmdexec *c)
{
    int64_t left = (c->deadline_mono - clock_mono_ns()) / CLOCK_NS_PER_MS;
    return left < 0 ? 0 : (left > 1000000 ? 1000000 : (int)left);
}

const cmdexec_result *cmdexec_result_get(const cmdexec *c)
{
    return &c->res;
}

void cmdexec_free(cmdexec *c)
{
    if (!c)
        return;
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        cmdexec_reap(c, 0);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}
