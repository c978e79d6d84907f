/* httpcall_internal: the objects httpcall.c (transfers) and httpcall_multi.c (the multi
 * handle over epoll) share; nothing outside the httpcall module includes this. */
#ifndef SALVO_HTTPCALL_INTERNAL_H
#define SALVO_HTTPCALL_INTERNAL_H

#include "httpcall.h"

#include <curl/curl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* libcurl's socket interface over our own epoll set: each wait and each perform costs what is
 * ready, not what is in flight. curl_multi_poll rebuilds a pollfd array of every socket on every
 * call, which made a burst of 1,000 connections quadratic (hundreds of ms of start lateness).
 *
 * One executor's transfers are spread over shards, each its own CURLM with its own connection
 * cache, all in the one epoll set. libcurl looks for a reusable connection by walking every
 * connection it holds to the host, so one multi with 1,000 connections to one target spent
 * ~90 ms of a burst walking lists; 16 shards of ~60 took ~28 ms. */
#define HTTPCALL_SHARDS_MAX  32
#define HTTPCALL_SHARD_CONNS 64 /* connections per shard that keep that walk short */

typedef struct httpcall_shard {
    CURLM *m;
    struct httpcall_multi *hm;
    uint32_t idx;
    int64_t timer_ns; /* monotonic deadline of libcurl's timer, -1 when none */
} httpcall_shard;

struct httpcall_multi {
    httpcall_shard sh[HTTPCALL_SHARDS_MAX];
    int nshards;
    int next;      /* round-robin shard for the next transfer */
    int done_next; /* shard to read completions from first */
    size_t active;
    int epfd;   /* every shard's sockets; epoll data = shard << 32 | fd */
    int wakefd; /* eventfd: httpcall_multi_wakeup from other threads */
};

struct httpcall {
    CURL *e;
    httpcall_multi *owner; /* non-NULL while attached */
    httpcall_shard *shard;
    struct curl_slist *hdrs;
    char *buf; /* captured body, grown on demand up to cap */
    size_t cap;
    httpcall_result res;
    char errbuf[CURL_ERROR_SIZE];
    void *ud;
    size_t req_bytes; /* about what the request puts on the wire (line, headers, body) */
    int pre_fd;       /* pre-connected socket not yet handed to libcurl, -1 when none */
    int pre_given;    /* the socket libcurl took (libcurl closes it), -1 */
    struct sockaddr_storage pre_addr;
    /* Staging (httpcall_stage.c): libcurl is given stage_wr, one end of a socketpair, instead
     * of pre_fd, and writes its request there long before the instant; stage_rd is the other
     * end. -1 when not staged, lifted or moved. */
    int stage_rd;
    int stage_wr;        /* until libcurl takes it (then it is pre_given) */
    ino_t stage_ino;     /* what libcurl holds (stage_wr, the connection once lifted): its
                          * inode recognises it again at the move */
    uint32_t stage_want; /* epoll events libcurl last asked for on its staged end */
    char *stage_buf;     /* the request once lifted out of the pair (libcurl then holds the
                          * connection), until the move writes it there; NULL */
    size_t stage_len;
    int64_t timeout_ms; /* the job's total timeout, as set on the handle */
    char refused[160];  /* why the guard refused a connection; "" when it did not */
};

/* Fill c->res from the finished transfer's code (httpcall.c); called once, after libcurl let
 * go of the handle. */
void httpcall_finish(httpcall *c, CURLcode rc);

/* Staging (httpcall_stage.c). Open the staging socketpair for c (pre_fd already open) and
 * lengthen its total timeout by wait_ms, since libcurl counts it from a start that is that much
 * early. False (c unchanged) when it cannot be made. */
bool httpcall_stage_open(httpcall *c, int64_t wait_ms);
/* The socket callback saw libcurl ask for events on fd of transfer e: remember them when fd is
 * a staged end, so a copying move can watch the real connection the same way; when libcurl
 * only reads (its request is all written), lift the request and hand it the connection now. */
void httpcall_stage_watch(CURL *e, curl_socket_t fd, uint32_t events);
/* Close whatever staging descriptors c still owns. */
void httpcall_stage_close(httpcall *c);

#endif
