/* outq: the one road from executor threads back to the I/O thread. Executors push settles under
 * a mutex; the first push into an empty queue makes an eventfd readable, and that eventfd is the
 * wake fd the I/O thread passes to mq_poll, so a finished job is acked within one loop pass
 * rather than one poll timeout. A signal handler can also kick the fd. */
#ifndef SALVO_OUTQ_H
#define SALVO_OUTQ_H

#include "settle.h"

typedef struct outq outq;

/* ERR_OK or ERR_NOMEM / ERR_IO (no eventfd). The caller owns *out. */
int outq_new(outq **out);
/* Free the queue and any settles still in it. Safe on NULL. Not while others push. */
void outq_free(outq *q);
/* The fd that becomes readable when settles are waiting (or after outq_kick). */
int outq_fd(const outq *q);
/* Append s (ownership moves to the queue). Thread-safe. */
void outq_push(outq *q, settle *s);
/* Take every waiting settle, oldest first, as a list linked by next (NULL when empty), and
 * clear the fd. Thread-safe; meant for the I/O thread. */
settle *outq_take(outq *q);
/* Make the fd readable without a settle. Async-signal-safe (one write()). */
void outq_kick(outq *q);

#endif
