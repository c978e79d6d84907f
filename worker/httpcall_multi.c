/* httpcall_multi: the multi handle of the httpcall module: libcurl's socket interface over one
 * epoll set, sharded, with a wakeup eventfd. */
#include "httpcall_internal.h"

#include "clock.h"
#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Extra fds one poll accepts (command executor pipes); more are served on the next pass. */
#define HTTPCALL_EXTRA_MAX 256
/* Ready sockets taken from epoll per call; a larger burst is taken in several calls. */
#define HTTPCALL_EVENTS 256

/* CURLMOPT_SOCKETFUNCTION: mirror what libcurl wants to watch into the epoll set. */
static int httpcall_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    httpcall_shard *sh = ud;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(sh->hm->epfd, EPOLL_CTL_DEL, fd, NULL); /* ENOENT/EBADF are harmless here */
        httpcall_stage_watch(e, fd, 0);
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    httpcall_stage_watch(e, fd, ev.events);
    ev.data.u64 = (uint64_t)sh->idx << 32 | (uint32_t)fd;
    if (!sockp || epoll_ctl(sh->hm->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
        epoll_ctl(sh->hm->epfd, EPOLL_CTL_ADD, fd, &ev);
        curl_multi_assign(sh->m, fd, sh); /* any non-NULL mark: "already in the set" */
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: remember when libcurl wants to run its timeouts. */
static int httpcall_on_timer(CURLM *m, long timeout_ms, void *ud)
{
    (void)m;
    httpcall_shard *sh = ud;
    sh->timer_ns = timeout_ms < 0 ? -1 : clock_mono_ns() + (int64_t)timeout_ms * CLOCK_NS_PER_MS;
    return 0;
}

static int httpcall_shard_init(httpcall_multi *hm, int i, const httpcall_limits *lim)
{
    httpcall_shard *sh = &hm->sh[i];
    *sh = (httpcall_shard){curl_multi_init(), hm, (uint32_t)i, -1};
    if (!sh->m)
        return ERR_NOMEM;
    curl_multi_setopt(sh->m, CURLMOPT_SOCKETFUNCTION, httpcall_on_socket);
    curl_multi_setopt(sh->m, CURLMOPT_SOCKETDATA, sh);
    curl_multi_setopt(sh->m, CURLMOPT_TIMERFUNCTION, httpcall_on_timer);
    curl_multi_setopt(sh->m, CURLMOPT_TIMERDATA, sh);
    /* Per shard, the whole limit: a cap below the in-flight target would queue jobs in libcurl
     * while other shards sit idle; the pool's descriptor budget is the real bound. */
    curl_multi_setopt(sh->m, CURLMOPT_MAX_HOST_CONNECTIONS, lim->max_host_conns);
    curl_multi_setopt(sh->m, CURLMOPT_MAX_TOTAL_CONNECTIONS, lim->max_total_conns);
    if (lim->max_cached > 0)
        curl_multi_setopt(sh->m, CURLMOPT_MAXCONNECTS, lim->max_cached / hm->nshards + 4);
    return ERR_OK;
}

int httpcall_multi_new(const httpcall_limits *lim, httpcall_multi **out)
{
    httpcall_multi *hm = calloc(1, sizeof *hm);
    if (!hm)
        return ERR_NOMEM;
    long conns = lim->max_total_conns > 0 ? lim->max_total_conns : HTTPCALL_SHARD_CONNS;
    hm->nshards = (int)(conns / HTTPCALL_SHARD_CONNS);
    hm->nshards = hm->nshards < 1                     ? 1
                  : hm->nshards > HTTPCALL_SHARDS_MAX ? HTTPCALL_SHARDS_MAX
                                                      : hm->nshards;
    hm->epfd = epoll_create1(EPOLL_CLOEXEC);
    hm->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = hm->epfd >= 0 && hm->wakefd >= 0 ? ERR_OK : ERR_NOMEM;
    for (int i = 0; rc == ERR_OK && i < hm->nshards; i++)
        rc = httpcall_shard_init(hm, i, lim);
    if (rc != ERR_OK) {
        httpcall_multi_free(hm);
        return rc;
    }
    *out = hm;
    return ERR_OK;
}

void httpcall_multi_free(httpcall_multi *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nshards; i++) {
        if (m->sh[i].m)
            curl_multi_cleanup(m->sh[i].m);
    }
    if (m->epfd >= 0)
        close(m->epfd);
    if (m->wakefd >= 0)
        close(m->wakefd);
    free(m);
}

void httpcall_multi_wakeup(httpcall_multi *m)
{
    uint64_t one = 1;
    ssize_t n = write(m->wakefd, &one, sizeof one);
    (void)n; /* a saturated counter is still readable: the wakeup is not lost */
}

/* timeout_ms shortened to the earliest shard timer. */
static int httpcall_timer_ms(const httpcall_multi *m, int timeout_ms)
{
    int64_t now = clock_mono_ns();
    for (int i = 0; i < m->nshards; i++) {
        if (m->sh[i].timer_ns < 0)
            continue;
        int64_t left = (m->sh[i].timer_ns - now + CLOCK_NS_PER_MS - 1) / CLOCK_NS_PER_MS;
        if (left < timeout_ms)
            timeout_ms = left < 0 ? 0 : (int)left;
    }
    return timeout_ms;
}

int httpcall_multi_poll(httpcall_multi *m, struct pollfd *extra, size_t nextra, int timeout_ms)
{
    struct pollfd p[2 + HTTPCALL_EXTRA_MAX];
    size_t n = nextra < HTTPCALL_EXTRA_MAX ? nextra : HTTPCALL_EXTRA_MAX;
    p[0] = (struct pollfd){m->epfd, POLLIN, 0};
    p[1] = (struct pollfd){m->wakefd, POLLIN, 0};
    for (size_t i = 0; i < n; i++)
        p[2 + i] = (struct pollfd){extra[i].fd, extra[i].events, 0};
    int rc = poll(p, (nfds_t)(2 + n), httpcall_timer_ms(m, timeout_ms));
    if (rc < 0 && errno != EINTR)
        return ERR_IO;
    if (p[1].revents & POLLIN) {
        uint64_t v;
        ssize_t r = read(m->wakefd, &v, sizeof v);
        (void)r;
    }
    for (size_t i = 0; i < nextra; i++)
        extra[i].revents = i < n ? p[2 + i].revents : 0;
    return ERR_OK;
}

int httpcall_multi_perform(httpcall_multi *m)
{
    struct epoll_event evs[HTTPCALL_EVENTS];
    int running = 0, n;
    CURLMcode rc = CURLM_OK;
    do {
        n = epoll_wait(m->epfd, evs, HTTPCALL_EVENTS, 0);
        for (int i = 0; i < n; i++) {
            uint32_t shard = (uint32_t)(evs[i].data.u64 >> 32);
            int fd = (int)(uint32_t)evs[i].data.u64;
            int mask = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                       ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                       ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
            if (shard < (uint32_t)m->nshards)
                rc |= curl_multi_socket_action(m->sh[shard].m, fd, mask, &running);
        }
    } while (n == HTTPCALL_EVENTS);
    int64_t now = clock_mono_ns();
    for (int i = 0; i < m->nshards; i++) {
        httpcall_shard *sh = &m->sh[i];
        if (sh->timer_ns >= 0 && now >= sh->timer_ns) {
            sh->timer_ns = -1; /* libcurl sets the next deadline from inside the call */
            rc |= curl_multi_socket_action(sh->m, CURL_SOCKET_TIMEOUT, 0, &running);
        }
    }
    return rc == CURLM_OK ? ERR_OK : ERR_IO;
}

size_t httpcall_multi_active(const httpcall_multi *m)
{
    return m->active;
}

httpcall *httpcall_multi_next_done(httpcall_multi *m)
{
    for (int k = 0; k < m->nshards; k++) {
        httpcall_shard *sh = &m->sh[(m->done_next + k) % m->nshards];
        int left = 0;
        for (CURLMsg *msg = curl_multi_info_read(sh->m, &left); msg;
             msg = curl_multi_info_read(sh->m, &left)) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            httpcall *c = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            CURLcode rc = msg->data.result; /* msg is invalid after remove_handle */
            curl_multi_remove_handle(sh->m, c->e);
            c->owner = NULL;
            c->shard = NULL;
            m->active--;
            m->done_next = (int)sh->idx;
            httpcall_finish(c, rc);
            return c;
        }
    }
    return NULL;
}

int httpcall_start(httpcall_multi *m, httpcall *c)
{
    httpcall_shard *sh = &m->sh[m->next];
    if (c->owner || curl_multi_add_handle(sh->m, c->e) != CURLM_OK)
        return ERR_INVAL;
    m->next = (m->next + 1) % m->nshards;
    c->owner = m;
    c->shard = sh;
    m->active++;
    return ERR_OK;
}
