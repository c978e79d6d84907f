/* cmdexec: the command executor. A job of kind JOB_COMMAND runs one program (which must be on the
 * worker's allow-list, checked by the caller) with the job's argv and only the job's environment,
 * through posix_spawn, in its own process group, stdin from /dev/null and stdout+stderr merged
 * into one pipe captured up to a cap. On timeout the whole process group is killed. A cmdexec is
 * driven by the executor thread that started it: it never blocks and never spawns threads. */
#ifndef SALVO_CMDEXEC_H
#define SALVO_CMDEXEC_H

#include "job.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cmdexec cmdexec;

typedef struct cmdexec_result {
    bool timed_out;
    int exit_code;      /* exit status, or 128 + signal number when killed */
    const char *output; /* first bytes of stdout+stderr (NUL-terminated), owned by the cmdexec */
    size_t output_len;
    bool truncated;
    int64_t duration_ms;
} cmdexec_result;

/* True when argv0 is on the allow-list (exact match of the program as the job names it). */
bool cmdexec_allowed(const char *argv0, const char *const *allow, size_t nallow);

/* Spawn the job's program (j borrowed for the call). ERR_OK with *out owned by the caller, or
 * ERR_EXEC with reason (e.g. "spawn /bin/nope: No such file or directory"), ERR_NOMEM. */
int cmdexec_start(const job *j, size_t capture_cap, cmdexec **out, char *reason, size_t cap);
/* The pipe to watch for readability while the command runs (-1 once it is closed). */
int cmdexec_fd(const cmdexec *c);
/* Read what output is ready, reap the process when it has exited, kill the group at the deadline.
 * Returns true once the command is finished (result valid). Never blocks. */
bool cmdexec_step(cmdexec *c);
/* Milliseconds until this command's deadline (0 when passed); bounds the executor's poll. */
int cmdexec_ms_left(const cmdexec *c);
const cmdexec_result *cmdexec_result_get(const cmdexec *c);
/* Kill the group if still running, reap, close, free. Safe on NULL. */
void cmdexec_free(cmdexec *c);

#endif
