/* httpcall_stage: precise mode's staged start. libcurl's work to start a request (~86,000
 * instructions) is done at admission, seconds ahead, into a local staging connection; within the
 * cork window the written bytes are moved into the corked TCP connection and the connection is put
 * under libcurl's descriptor number, so at the instant only the uncork is left to do. */
#define _GNU_SOURCE /* dup3 and accept4: close-on-exec in the same step, no window for a spawn */
#include "httpcall_internal.h"

#include "err.h"
#include "preconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

/* This thread's staging listener on 127.0.0.1 (libcurl 7.88 calls connect() even on a socket
 * it was told is connected, which only an established TCP socket survives, so the staging pair
 * is a loopback TCP connection, not a socketpair). -1 until first needed. */
static _Thread_local int httpcall_stage_lfd = -1;
static _Thread_local struct sockaddr_in httpcall_stage_addr;

static int httpcall_stage_listener(void)
{
    if (httpcall_stage_lfd >= 0)
        return httpcall_stage_lfd;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    httpcall_stage_addr = a;
    httpcall_stage_lfd = fd;
    return fd;
}

void httpcall_stage_thread_fini(void)
{
    if (httpcall_stage_lfd >= 0)
        close(httpcall_stage_lfd);
    httpcall_stage_lfd = -1;
}

/* Accept the connection cfd just made to the listener, and only that one: any local process can
 * connect to it too, and a stranger's bytes must never become a request. -1 when it is not
 * there (loopback completes the handshake inside connect, so that is not expected). */
static int httpcall_stage_accept(int lfd, int cfd)
{
    struct sockaddr_in mine, peer;
    socklen_t len = sizeof mine;
    if (getsockname(cfd, (struct sockaddr *)&mine, &len) != 0)
        return -1;
    for (int tries = 0; tries < 8; tries++) {
        len = sizeof peer;
        int afd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (afd < 0)
            return -1;
        if (peer.sin_port == mine.sin_port && peer.sin_addr.s_addr == mine.sin_addr.s_addr)
            return afd;
        close(afd);
    }
    return -1;
}

bool httpcall_stage_open(httpcall *c, int64_t wait_ms)
{
    int lfd = httpcall_stage_listener();
    if (lfd < 0)
        return false;
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), afd = -1;
    struct stat st;
    /* Closed with a reset, not a FIN: 10,000 staged connections must not leave as many
     * loopback ports in TIME_WAIT. */
    if (cfd < 0 || !preconn_reset_on_close(cfd))
        goto fail;
    if (connect(cfd, (struct sockaddr *)&httpcall_stage_addr, sizeof httpcall_stage_addr) != 0 &&
        errno != EINPROGRESS)
        goto fail;
    afd = httpcall_stage_accept(lfd, cfd);
    if (afd < 0 || fstat(cfd, &st) != 0)
        goto fail;
    c->stage_rd = afd;
    c->stage_wr = cfd;
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
fail:
    if (cfd >= 0)
        close(cfd);
    if (afd >= 0)
        close(afd);
    return false;
}

void httpcall_stage_watch(CURL *e, curl_socket_t fd, uint32_t events)
{
    httpcall *c = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
    if (c && c->stage_rd >= 0 && fd == c->pre_given)
        c->stage_want = events;
}

void httpcall_stage_close(httpcall *c)
{
    if (c->stage_wr >= 0) /* first: its reset leaves the other end nothing to linger on */
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

/* Whether libcurl still holds the staged end under pre_given: it closes it only when the
 * transfer ends, and the number may have been reused since. */
static bool httpcall_stage_held(const httpcall *c)
{
    struct stat st;
    return c->pre_given >= 0 && c->owner && fstat(c->pre_given, &st) == 0 &&
           st.st_ino == c->stage_ino;
}

bool httpcall_staged(const httpcall *c)
{
    return c->stage_rd >= 0;
}

int httpcall_stage_move(httpcall *c)
{
    if (c->stage_rd < 0)
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
