/* watermark: a producer group's "fired up to" instants, kept in the broker so that whichever
 * producer becomes active continues exactly after the last confirmed firing of each entry,
 * with the same deterministic firing ids, even with no local state directory.
 *
 * Where: the quorum queue salvo.producer.watermark.<group> (x-max-length 1, drop-head: a
 * last-value queue), fed through the salvo.producer exchange with routing key
 * watermark.<group>.
 * What: one message, the whole map in the state file's text format (prodstate.c:
 * "<last_s> <digest> <name>" per entry that has fired, with a header and a counted trailer),
 * content type text/plain, header x-salvo-producer = the writer's connection name, timestamp
 * = the writing time. The active producer writes it after a batch's firings are confirmed (so
 * it never claims an unconfirmed firing), at most once per batch, and spaced out when the map
 * is large; a producer that becomes active reads it with basic.get and puts it back
 * (basic.reject, requeue), so it survives any number of takeovers. A takeover that happens
 * between a batch's confirms and its watermark write repeats that batch with the same ids:
 * workers and targets see duplicates they can recognise, never a gap. Not thread-safe. */
#ifndef SALVO_WATERMARK_H
#define SALVO_WATERMARK_H

#include "mq.h"
#include "prodstate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATERMARK_CONTENT_TYPE "text/plain"
#define WATERMARK_MAX_BYTES    (64L * 1024 * 1024) /* a bigger message is junk, not a map */

typedef struct watermark {
    char queue[96];        /* salvo.producer.watermark.<group> */
    char key[80];          /* routing key: watermark.<group> */
    const char *by;        /* this producer's connection name, borrowed */
    uint64_t declared_gen; /* connection on which the queue was last declared */
} watermark;

/* Names for group (checked by lease_check_group); by is borrowed. */
void watermark_init(watermark *w, const char *group, const char *by);

/* Declare the queue and its binding on m unless already done on this connection. ERR_OK or
 * the broker's error (err says which step). One or two RPC round trips. */
int watermark_declare(watermark *w, mq *m, char *err, size_t cap);

/* Read the group's watermark without removing it: ERR_OK with *st filled (caller frees with
 * prodstate_fini) and writer/at_s describing who wrote it when; ERR_NOTFOUND when there is
 * none yet; ERR_PARSE when the message is not a watermark (it is dropped, logged); broker
 * errors. Blocks for a few RPC round trips. */
int watermark_read(watermark *w, mq *m, prodstate *st, char *writer, size_t wcap, int64_t *at_s,
                   char *err, size_t cap);

/* Publish recs (borrowed) as the new watermark, persistent, at now_s. ERR_OK (written to the
 * socket: the broker applies it in order, before anything later on the connection), ERR_NOMEM,
 * ERR_INVAL (a name with a newline) or ERR_MQ_CLOSED. *bytes gets the message size. */
int watermark_write(watermark *w, mq *m, const prodstate_rec *recs, size_t n, int64_t now_s,
                    size_t *bytes);

#endif
