/* httpcall_stage: precise mode's staged start. libcurl's work to start a request (~86,000
 * instructions) is done at admission, seconds ahead, into a local socketpair. Once libcurl waits
 * for the reply, the request is lifted into memory and the corked TCP connection put under
 * libcurl's descriptor number; within the cork window the request is written into it, and at the
 * instant only the uncork is left to do. libcurl is told the pair's end is connected
 * (curlconnect makes 7.x believe it). */
#define _GNU_SOURCE /* dup3: close-on-exec in the same step, no window for a spawn */
#include "httpcall_internal.h"

#include "err.h"
#include "preconn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

bool httpcall_stage_open(httpcall *c, int64_t wait_ms)
{
    /* A socketpair: private to this process, nothing to accept or check, and a tenth of the
     * cost of a loopback TCP connection (whose handshake and teardown run the whole receive
     * path: 28 % of a worker's CPU during a 10,000-job admission went to connect()). */
    int sv[2];
    struct stat st;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    if (fstat(sv[0], &st) != 0) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    c->stage_wr = sv[0];
    c->stage_rd = sv[1];
    c->stage_ino = st.st_ino;
    c->stage_want = 0;
    curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms + wait_ms));
    /* Closed after its reply, not kept idle: a staged fan-out of 10,000 would leave 10,000 idle
     * connections to one host, and the next one's 10,000 new connects then exhaust the
     * ephemeral ports of one parity, where each connect() walks all of them (46 % of a
     * worker's CPU in __inet_hash_connect on the second burst in a row). A smaller held batch
     * keeps its connections: jobs that arrive too late to pre-connect reuse them. */
    curl_easy_setopt(c->e, CURLOPT_FORBID_REUSE, 1L);
    return true;
}

/* A held request fits HTTPCALL_HOLD_MAX_BYTES by estimate; a larger one is copied at the move. */
#define HTTPCALL_STAGE_LIFT_MAX 4096

/* libcurl has written its whole request into the pair and now waits for the reply: take the
 * bytes into memory and put the corked connection under libcurl's descriptor number at once,
 * seconds before the window. The window's work per request is then one write into that
 * connection (httpcall_stage_move) instead of a read, a dup3, two epoll changes and the pair's
 * teardown: 10,000 moves took 230 ms, more than the window. Called from libcurl's socket
 * callback, which registers the number again right after, now for the connection. When the
 * bytes cannot all be taken, nothing changes and the move copies them from the pair. */
static void httpcall_stage_lift(httpcall *c)
{
    char buf[HTTPCALL_STAGE_LIFT_MAX];
    struct stat st;
    ssize_t n;
    do /* a peek: left in place when the lift does not happen */
        n = recv(c->stage_rd, buf, sizeof buf, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n <= 0 || (size_t)n == sizeof buf || fstat(c->pre_fd, &st) != 0)
        return;
    char *copy = malloc((size_t)n);
    if (!copy)
        return;
    /* Replacing the pair's end also drops its epoll registration (its last reference). */
    if (dup3(c->pre_fd, c->pre_given, O_CLOEXEC) < 0) {
        free(copy);
        return;
    }
    close(c->pre_fd);
    c->pre_fd = -1;
    httpcall_stage_close(c);
    memcpy(copy, buf, (size_t)n);
    c->stage_buf = copy;
    c->stage_len = (size_t)n;
    c->stage_ino = st.st_ino;
}

void httpcall_stage_watch(CURL *e, curl_socket_t fd, uint32_t events)
{
    httpcall *c = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
    if (!c || c->stage_rd < 0 || fd != c->pre_given)
        return;
    c->stage_want = events;
    if (events == EPOLLIN) /* reading only: the request is all written */
        httpcall_stage_lift(c);
}

void httpcall_stage_close(httpcall *c)
{
    free(c->stage_buf);
    c->stage_buf = NULL;
    if (c->stage_wr >= 0)
        close(c->stage_wr);
    if (c->stage_rd >= 0)
        close(c->stage_rd);
    c->stage_rd = c->stage_wr = -1;
}

/* Copy what libcurl wrote so far from the pair into the corked connection. Every byte or
 * ERR_IO: the request is small (it fits one segment), so the connection's send buffer always
 * has room; a short write would mean a truncated request. */
static int httpcall_stage_copy(httpcall *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(c->stage_rd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return ERR_OK;
        if (n <= 0)
            return ERR_IO;
        ssize_t w = send(c->pre_fd, buf, (size_t)n, MSG_NOSIGNAL);
        if (w != n)
            return ERR_IO;
    }
}

/* A lifted request goes into the connection libcurl already holds. Whole or ERR_IO, and then
 * nothing of it leaves: a disconnect (connect to AF_UNSPEC) resets the connection and drops what
 * is queued, and libcurl sees a broken connection. */
static int httpcall_stage_put(httpcall *c)
{
    ssize_t w;
    do
        w = send(c->pre_given, c->stage_buf, c->stage_len, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    free(c->stage_buf);
    c->stage_buf = NULL;
    if (w == (ssize_t)c->stage_len)
        return ERR_OK;
    struct sockaddr none = {.sa_family = AF_UNSPEC};
    connect(c->pre_given, &none, sizeof none);
    return ERR_IO;
}

/* Whether libcurl still holds what was given to it under pre_given (the pair's end, or since the
 * lift the connection): it closes it only when the transfer ends, and the number may have been
 * reused since. */
static bool httpcall_stage_held(const httpcall *c)
{
    struct stat st;
    return c->pre_given >= 0 && c->owner && fstat(c->pre_given, &st) == 0 &&
           st.st_ino == c->stage_ino;
}

bool httpcall_staged(const httpcall *c)
{
    return c->stage_rd >= 0 || c->stage_buf;
}

int httpcall_stage_move(httpcall *c)
{
    if (!httpcall_staged(c))
        return ERR_OK;
    if (c->stage_wr >= 0) {
        /* libcurl has not opened its connection yet: it simply gets the corked one. */
        httpcall_stage_close(c);
        return ERR_OK;
    }
    if (!httpcall_stage_held(c)) { /* the transfer already ended */
        httpcall_stage_close(c);
        c->pre_given = -1;
        return ERR_OK;
    }
    if (c->stage_buf)
        return httpcall_stage_put(c);
    int rc = httpcall_stage_copy(c);
    int epfd = c->owner->epfd, fd = c->pre_given;
    /* The pair's registration goes first: the set must not keep a closed description. */
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    if (rc == ERR_OK && dup3(c->pre_fd, fd, O_CLOEXEC) < 0)
        rc = ERR_IO;
    /* Nothing partial reaches the target: pre_fd, corked, closes with a reset (preconn_open),
     * which drops what is queued. libcurl must not wait for a reply to a request that never
     * left. */
    if (rc != ERR_OK)
        shutdown(fd, SHUT_RDWR);
    if (c->stage_want) {
        struct epoll_event ev = {.events = c->stage_want};
        ev.data.u64 = (uint64_t)c->shard->idx << 32 | (uint32_t)fd;
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    close(c->pre_fd);
    c->pre_fd = -1;
    httpcall_stage_close(c);
    return rc;
}
