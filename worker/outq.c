/* outq: a mutex-protected FIFO of settles with an eventfd doorbell. */
#include "outq.h"

#include "err.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct outq {
    pthread_mutex_t mu;
    settle *head, *tail;
    int efd;
};

int outq_new(outq **out)
{
    outq *q = calloc(1, sizeof *q);
    if (!q)
        return ERR_NOMEM;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0 || pthread_mutex_init(&q->mu, NULL) != 0) {
        if (q->efd >= 0)
            close(q->efd);
        free(q);
        return ERR_IO;
    }
    *out = q;
    return ERR_OK;
}

void outq_free(outq *q)
{
    if (!q)
        return;
    settle_free_list(q->head);
    close(q->efd);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int outq_fd(const outq *q)
{
    return q->efd;
}

void outq_kick(outq *q)
{
    uint64_t one = 1;
    ssize_t n = write(q->efd, &one, sizeof one);
    (void)n; /* a full counter is still readable, which is all the doorbell needs */
}

void outq_push(outq *q, settle *s)
{
    s->next = NULL;
    pthread_mutex_lock(&q->mu);
    bool was_empty = q->head == NULL;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    pthread_mutex_unlock(&q->mu);
    /* Only the first settle rings: the reader takes the whole queue at once. */
    if (was_empty)
        outq_kick(q);
}

settle *outq_take(outq *q)
{
    uint64_t v;
    /* Clear the doorbell before taking, so a push after the take rings again. */
    while (read(q->efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&q->mu);
    settle *list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    return list;
}
