/* resend: follow-ups (retry, dead letter, missed) the broker nacked, waiting out a backoff
 * before the I/O thread publishes them again. Their originals stay unacked all along, so a
 * nacked follow-up is never dropped and its job never runs again because of the nack: the
 * worker only keeps asking the broker, ever more slowly, until it takes the follow-up (or the
 * connection is lost, and the broker redelivers the original). The wait is a deadline the
 * consumer loop polls against, never a sleep, so other jobs settle meanwhile.
 *
 * Schedule: the n-th consecutive nack of one follow-up waits RESEND_FIRST_MS * 2^(n-1),
 * capped at RESEND_CAP_MS. Logging (resend_notable): the first nack warns, later ones say so
 * only at a power-of-two count or after RESEND_QUIET_MS of silence.
 *
 * Channel: RabbitMQ 3.10 can keep nacking every publish of a channel to a quorum queue that lost
 * its leader or refused a publish, even once the queue would take it again; a new channel
 * works. So once one follow-up has been refused for RESEND_REOPEN_AFTER_MS, the worker opens a
 * new publish channel (resend_reopen_due); further reopens, while no nacked follow-up gets
 * through, come 1, 2, 4 ... s apart, at most RESEND_REOPEN_CAP_MS. I/O thread only. */
#ifndef SALVO_RESEND_H
#define SALVO_RESEND_H

#include "settle.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A nack with a passing cause (a quorum queue between leaders, a publish racing a policy
 * change) clears within a few round trips: ask again soon. */
#define RESEND_FIRST_MS 50
/* Causes that last (a length limit with reject-publish, a channel stuck nacking) need an
 * operator or a new channel: once a follow-up has been refused for seconds, asking every 5 s
 * costs the broker at most prefetch/5 publishes a second and lands the follow-up at most 5 s
 * after the refusal ends, the same order as the r2 retry delay. Reached after 7 nacks. */
#define RESEND_CAP_MS 5000
/* Longest silence between two log lines about one follow-up that keeps being nacked. */
#define RESEND_QUIET_MS 60000
/* The producer's figure for the same 3.10 behaviour: a leader election takes a few hundred ms,
 * so a refusal that outlasts a second is the channel's, or lasting. */
#define RESEND_REOPEN_AFTER_MS 1000
/* A queue that refuses for good then costs one channel close and open every 30 s, and a stuck
 * channel is replaced at most 30 s after its cause clears. */
#define RESEND_REOPEN_CAP_MS 30000

/* Follow-ups waiting to be published again, linked by settle.next in resend_at_ns order. */
typedef struct resend {
    settle *head;
    size_t n;
    unsigned reopens;     /* publish channels opened since a nacked follow-up last got through */
    int64_t reopen_at_ns; /* no new channel before this instant */
} resend;

/* The wait before publishing again after the nacks-th consecutive nack (nacks >= 1; 0 is
 * treated as 1). Pure, thread-safe. */
int64_t resend_delay_ms(unsigned nacks);

void resend_init(resend *r);
/* Free every settle still waiting (the caller has already dealt with their originals). */
void resend_fini(resend *r);

/* The broker nacked s's follow-up at now_ns: count the nack (first_nack_ns set on the first)
 * and queue s (ownership moves) until now_ns + resend_delay_ms(s->nacks). Never fails. */
void resend_add(resend *r, settle *s, int64_t now_ns);

/* Queue s (ownership moves) to be published at at_ns, its nack count unchanged: a follow-up
 * whose channel was replaced before its confirm came. Never fails. */
void resend_put(resend *r, settle *s, int64_t at_ns);

/* Whether the nack just counted on s (at now_ns) calls for a new publish channel: s has been
 * refused for RESEND_REOPEN_AFTER_MS and the spacing since the last reopen has passed. */
bool resend_reopen_due(const resend *r, const settle *s, int64_t now_ns);
/* A new publish channel was opened at now_ns: the next one waits twice as long as this one. */
void resend_reopened(resend *r, int64_t now_ns);
/* A follow-up that had been nacked was confirmed: the channel works again. */
void resend_recovered(resend *r);

/* Whether the nack just counted on s (by resend_add at now_ns) deserves a log line: the first
 * one, a power-of-two count, or the first after RESEND_QUIET_MS without one. Records the line
 * as written when it returns true. */
bool resend_notable(settle *s, int64_t now_ns);

/* Remove and return (linked by next, oldest deadline first) the settles due at now_ns. */
settle *resend_take_due(resend *r, int64_t now_ns);
/* Remove and return every waiting settle (the connection is gone, or the worker stops). */
settle *resend_take_all(resend *r);

/* The earliest deadline (monotonic ns), INT64_MAX when nothing waits. */
int64_t resend_next_ns(const resend *r);
size_t resend_count(const resend *r);

#endif
