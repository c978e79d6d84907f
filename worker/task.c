/* task: allocation and release of one delivery's worker-side state. */
#include "task.h"

#include "cmdexec.h"
#include "httpcall.h"

#include <stdlib.h>
#include <string.h>

task *task_new(mq_delivery *d, int64_t recv_ns)
{
    task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->d = *d;
    memset(d, 0, sizeof *d);
    job_init(&t->j);
    t->recv_ns = recv_ns;
    t->retry_after_ms = -1;
    return t;
}

void task_rewind(task *t)
{
    httpcall_free(t->call);
    t->call = NULL;
    job_fini(&t->j);
    job_init(&t->j);
    t->decoded = t->admitted = t->owns_claim = false;
}

void task_free(task *t)
{
    if (!t)
        return;
    httpcall_free(t->call);
    cmdexec_free(t->cmd);
    mq_delivery_fini(&t->d);
    job_fini(&t->j);
    free(t->response);
    free(t);
}
