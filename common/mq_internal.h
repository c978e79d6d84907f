/* mq_internal: the connection struct shared by mq.c (lifecycle, declarations, settling) and
 * mqpoll.c (reading broker events). Not for use outside those two files. */
#ifndef SALVO_MQ_INTERNAL_H
#define SALVO_MQ_INTERNAL_H

#include "mq.h"

#include <amqp.h>

struct mq {
    amqp_connection_state_t conn;
    uint64_t gen;
    bool open;    /* false once the broker closed us or the socket failed */
    bool blocked; /* connection.blocked received, not yet unblocked */
    char endpoint[300];
    char user[128]; /* the login user, for the AMQP user_id property */
    char consumer_tag[128];
    bool chan_open[MQ_CHANNELS];   /* per channel: opened by us and not closed since */
    bool confirming[MQ_CHANNELS];  /* per channel: in confirm mode */
    uint64_t pub_seq[MQ_CHANNELS]; /* per channel: last publish sequence number (confirm mode) */
};

/* Record a library/broker failure: marks the connection closed and writes a reason.
 * Returns ERR_MQ_CLOSED or ERR_MQ_CHANNEL. */
int mq_fail_reply(mq *m, amqp_rpc_reply_t r, const char *what, char *err, size_t cap);
/* channel.open on ch, and mark it open (mq_free closes what is marked). ERR_OK, or as
 * mq_fail_reply. */
int mq_open_channel(mq *m, int ch, char *err, size_t cap);

#endif
