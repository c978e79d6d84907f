/* tgt_server: the recording target's epoll loops (one thread by default, more with --threads):
 * accept, read and stamp, parse, decide the answer from the plan, record, hold the reply if
 * asked, write it, keep alive. */
#ifndef SALVO_TGT_SERVER_H
#define SALVO_TGT_SERVER_H

#include <stdint.h>

/* The kernel caps the backlog at net.core.somaxconn (4096 here); asking for that much means a
 * burst of thousands of new connections is queued instead of having SYNs dropped (a dropped
 * SYN is retried after ~1 s and would show up as lateness that is not the scheduler's). */
#define TGT_SERVER_BACKLOG 4096
/* Records reach the file at most this long after the request: tests poll the file. */
#define TGT_SERVER_FLUSH_NS (100 * 1000000LL)

typedef struct tgt_config {
    const char *bind;        /* IPv4 address to listen on */
    int port;                /* 0: an ephemeral port */
    const char *record_path; /* NULL: record nothing */
    int64_t delay_ms;        /* hold every reply this long unless path_delay says otherwise */
    const char *status_plan; /* see tgt_plan_new; NULL: always 200 */
    const char *path_delay;  /* see tgt_plan_new; NULL: delay_ms everywhere */
    int threads;             /* serving threads, each with its own SO_REUSEPORT listener; 0: 1 */
} tgt_config;

/* Listen, print "listening PORT\n" on stdout (flushed), and serve until SIGTERM or SIGINT, then
 * flush the records and return ERR_OK. SIGTERM/SIGINT are blocked and read through a signalfd;
 * SIGPIPE is ignored. Returns ERR_INVAL for a bad plan or address (logged), ERR_IO when the
 * socket, epoll or record file cannot be set up, ERR_NOMEM. Blocks; the caller's thread serves
 * too. */
int tgt_server_run(const tgt_config *cfg);

#endif
