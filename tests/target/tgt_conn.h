/* tgt_conn: one client connection of the recording target and the table of them, indexed by
 * file descriptor. Private to tgt_server.c and tgt_conn.c. */
#ifndef SALVO_TGT_CONN_H
#define SALVO_TGT_CONN_H

#include <stddef.h>
#include <stdint.h>

/* Room for a full response head plus the /__stats body. */
#define TGT_CONN_OUT_CAP 1024

/* Why a connection exists as a struct at all: a request's first bytes are stamped when they are
 * read, but the reply may be held and written much later, so the stamp, the buffered bytes and
 * the pending reply have to live somewhere between loop passes. */
typedef struct tgt_conn {
    int fd;       /* -1: the slot is free */
    uint32_t gen; /* bumped at every close, so a stale held-reply timer is recognised */
    uint64_t id;  /* 1, 2, ... in accept order (recorded as "conn") */
    char *in;
    size_t in_len;
    size_t in_cap;
    int64_t start_ns; /* realtime stamp of the first byte of the request being read; 0: none */
    int64_t next_ns;  /* the same for bytes read while a reply was still pending */
    int64_t last_ns;  /* stamp of the latest read */
    /* Kernel receive stamps (tgt_rxstamp; 0: none): of the read that completed the request line
     * of the request being read, the same for the next one while a reply is pending, and of
     * the latest read. A request line is what the benchmark's "arrival" means. */
    int64_t line_rx_ns;
    int64_t next_line_rx_ns;
    int64_t last_rx_ns;
    int busy;        /* a request has been taken and its reply is held or being written */
    int held;        /* the reply waits for its timer */
    int close_after; /* close once the reply is written (Connection: close, or an error) */
    int want_out;    /* EPOLLOUT is registered */
    size_t consumed; /* length of the request being answered at the start of `in` */
    char out[TGT_CONN_OUT_CAP];
    size_t out_len;
    size_t out_off;
} tgt_conn;

typedef struct tgt_conn_table {
    tgt_conn **slots; /* by fd; allocated on first use and reused */
    size_t nslots;
    uint64_t opened; /* total accepted */
    uint64_t open;   /* currently open */
    uint64_t max_open;
} tgt_conn_table;

/* Table for descriptors below nslots (the RLIMIT_NOFILE soft limit). ERR_OK or ERR_NOMEM. */
int tgt_conn_table_init(tgt_conn_table *t, size_t nslots);
/* Close every open connection and free everything; NULL-safe and safe after a failed init. */
void tgt_conn_table_fini(tgt_conn_table *t);

/* Take over an accepted, non-blocking fd. Returns the connection, or NULL (fd closed) when the
 * fd is out of range or memory ran out. */
tgt_conn *tgt_conn_open(tgt_conn_table *t, int fd);
/* The open connection on fd, or NULL. */
tgt_conn *tgt_conn_get(const tgt_conn_table *t, int fd);
/* Close the socket and free the slot for reuse (bumps gen). */
void tgt_conn_close(tgt_conn_table *t, tgt_conn *c);

/* Make room for at least `want` more input bytes, growing up to `max` total. Returns ERR_OK,
 * ERR_RANGE when the buffer is already at max, or ERR_NOMEM. */
int tgt_conn_reserve(tgt_conn *c, size_t want, size_t max);
/* Account for bytes just appended to `in` (from offset `from`) by one read at read_ns, whose
 * kernel stamp is rx_ns: sets the stamps of the request they belong to. */
void tgt_conn_note_read(tgt_conn *c, size_t from, int64_t read_ns, int64_t rx_ns);
/* A request of c->consumed bytes was just taken: bytes already read beyond it belong to the
 * next request and carry the latest read's stamps. */
void tgt_conn_note_taken(tgt_conn *c);
/* Drop the request just answered from the input and get ready for the next one. */
void tgt_conn_advance(tgt_conn *c);

#endif
