/* httpcall: libcurl multi transfers built from jobs, with curl's errors turned into salvo's. */
#include "httpcall.h"

#include "clock.h"
#include "err.h"
#include "preconn.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Per-transfer receive buffer. libcurl's 16 KiB default times 5,000 concurrent transfers would
 * be 80 MB of buffers for replies we cap at a few KiB anyway. */
#define HTTPCALL_BUFFER     4096
#define HTTPCALL_MAX_REDIRS 10
/* Extra fds one poll accepts (command executor pipes); more are served on the next pass. */
#define HTTPCALL_EXTRA_MAX 256
/* Largest request held in a corked socket: well inside one TCP segment on any network. */
#define HTTPCALL_HOLD_MAX_BYTES 1024
/* What libcurl and salvo add to a request besides the job's own parts (Host, User-Agent,
 * Idempotency-Key, X-Salvo-*, request line syntax). */
#define HTTPCALL_REQ_OVERHEAD 400
/* Ready sockets taken from epoll per call; a larger burst is taken in several calls. */
#define HTTPCALL_EVENTS 256

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
    int pre_given;    /* the pre-connected socket libcurl took (libcurl closes it), -1 */
    struct sockaddr_storage pre_addr;
};

/* Easy handles kept per executor thread for the next job: curl_easy_init and _cleanup were a
 * good part of a job's malloc traffic, and curl_easy_reset keeps the handle's allocations.
 * Only threads that called httpcall_thread_init keep any (they drop them at httpcall_thread_fini),
 * so no thread leaves handles behind when it ends. */
#define HTTPCALL_EASY_CACHE 128
static _Thread_local CURL *httpcall_easy_cache[HTTPCALL_EASY_CACHE];
static _Thread_local size_t httpcall_easy_n;
static _Thread_local bool httpcall_easy_on;

static CURL *httpcall_easy_get(void)
{
    return httpcall_easy_n ? httpcall_easy_cache[--httpcall_easy_n] : curl_easy_init();
}

static void httpcall_easy_put(CURL *e)
{
    if (httpcall_easy_on && httpcall_easy_n < HTTPCALL_EASY_CACHE) {
        curl_easy_reset(e);
        httpcall_easy_cache[httpcall_easy_n++] = e;
        return;
    }
    curl_easy_cleanup(e);
}

void httpcall_thread_init(void)
{
    httpcall_easy_on = true;
}

void httpcall_thread_fini(void)
{
    httpcall_easy_on = false;
    while (httpcall_easy_n)
        curl_easy_cleanup(httpcall_easy_cache[--httpcall_easy_n]);
}

int httpcall_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? ERR_OK : ERR_NOMEM;
}

void httpcall_global_fini(void)
{
    curl_global_cleanup();
}

/* CURLMOPT_SOCKETFUNCTION: mirror what libcurl wants to watch into the epoll set. */
static int httpcall_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)e;
    httpcall_shard *sh = ud;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(sh->hm->epfd, EPOLL_CTL_DEL, fd, NULL); /* ENOENT/EBADF are harmless here */
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
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

/* Map a finished transfer's CURLcode onto salvo's three kinds of failure. */
static httpcall_err httpcall_classify(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HTTPCALL_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTPCALL_TIMEOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
        return HTTPCALL_INVALID;
    default:
        return HTTPCALL_CONNECT;
    }
}

static void httpcall_finish(httpcall *c, CURLcode rc)
{
    long status = 0;
    curl_off_t ra = 0, total_us = 0;
    curl_easy_getinfo(c->e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->e, CURLINFO_RETRY_AFTER, &ra);
    curl_easy_getinfo(c->e, CURLINFO_TOTAL_TIME_T, &total_us);
    c->res.err = httpcall_classify(rc);
    c->res.status = (int)status;
    c->res.retry_after_ms = ra > 0 ? (int64_t)ra * 1000 : -1;
    c->res.duration_ms = (int64_t)total_us / 1000;
    c->res.body = c->buf ? c->buf : "";
    if (rc != CURLE_OK) {
        const char *msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
        snprintf(c->res.error, sizeof c->res.error, "%s", msg);
    }
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

static size_t httpcall_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    httpcall *c = ud;
    size_t n = size * nmemb;
    size_t room = c->cap - c->res.body_len;
    size_t take = n < room ? n : room;
    if (take < n)
        c->res.truncated = true;
    if (take > 0) {
        /* Grown as bytes arrive: most replies are tiny, and thousands are in flight. */
        char *p = realloc(c->buf, c->res.body_len + take + 1);
        if (!p)
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        c->buf = p;
        memcpy(c->buf + c->res.body_len, data, take);
        c->res.body_len += take;
        c->buf[c->res.body_len] = '\0';
    }
    /* The rest is read and dropped: a long reply is not a failed job. */
    return n;
}

/* Headers salvo sets itself; a job's own copy is dropped so the request carries one of each. */
static bool httpcall_reserved(const char *name)
{
    static const char *const names[] = {"Idempotency-Key", "X-Salvo-Scheduled-At",
                                        "X-Salvo-Attempt", "Expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

static int httpcall_add_header(struct curl_slist **l, const char *name, const char *value)
{
    char line[JOB_HEADER_MAX + 8];
    /* "Name;" is libcurl's spelling for a header sent with an empty value. */
    if (value[0])
        snprintf(line, sizeof line, "%s: %s", name, value);
    else
        snprintf(line, sizeof line, "%s;", name);
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n)
        return ERR_NOMEM;
    *l = n;
    return ERR_OK;
}

static int httpcall_headers(httpcall *c, const job *j, char *reason, size_t cap)
{
    for (size_t i = 0; i < j->http.nheaders; i++) {
        const job_kv *h = &j->http.headers[i];
        if (strpbrk(h->name, "\r\n:") || strpbrk(h->value, "\r\n")) {
            snprintf(reason, cap, "header %.64s holds a line break or colon", h->name);
            return ERR_INVAL;
        }
        if (strlen(h->name) + strlen(h->value) > JOB_HEADER_MAX) {
            snprintf(reason, cap, "header %.64s longer than %d bytes", h->name, JOB_HEADER_MAX);
            return ERR_INVAL;
        }
        if (!httpcall_reserved(h->name) && httpcall_add_header(&c->hdrs, h->name, h->value))
            return ERR_NOMEM;
    }
    char iso[40], attempt[16];
    clock_format_iso(j->due_ms * CLOCK_NS_PER_MS, 3, iso, sizeof iso);
    snprintf(attempt, sizeof attempt, "%u", j->attempt);
    if (httpcall_add_header(&c->hdrs, "Idempotency-Key", j->id) ||
        httpcall_add_header(&c->hdrs, "X-Salvo-Scheduled-At", iso) ||
        httpcall_add_header(&c->hdrs, "X-Salvo-Attempt", attempt) ||
        httpcall_add_header(&c->hdrs, "Expect", "")) /* no 100-continue round trip */
        return ERR_NOMEM;
    return ERR_OK;
}

/* Method and body. GET and HEAD use libcurl's own modes so it reads replies correctly. */
static void httpcall_method(CURL *e, const job_http *h)
{
    bool body = h->body != NULL;
    if (strcmp(h->method, "GET") == 0 && !body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(h->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(h->method, "POST") == 0 || body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? h->body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? h->body : "");
    }
    if (strcmp(h->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method);
}

/* Options every transfer gets, whatever the job says. */
static void httpcall_safe_defaults(httpcall *c)
{
    CURL *e = c->e;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)HTTPCALL_BUFFER);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, httpcall_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "salvo-worker");
}

int httpcall_new(const job *j, size_t capture_cap, httpcall **out, char *reason, size_t cap)
{
    httpcall *c = calloc(1, sizeof *c);
    int rc = ERR_NOMEM;
    if (!c)
        goto fail;
    c->pre_fd = c->pre_given = -1;
    c->cap = capture_cap;
    c->e = httpcall_easy_get();
    if (!c->e)
        goto fail;
    rc = httpcall_headers(c, j, reason, cap);
    if (rc != ERR_OK)
        goto fail;
    httpcall_safe_defaults(c);
    const job_http *h = &j->http;
    curl_easy_setopt(c->e, CURLOPT_URL, h->url);
    curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c->e, CURLOPT_FOLLOWLOCATION, h->follow_redirects ? 1L : 0L);
    curl_easy_setopt(c->e, CURLOPT_MAXREDIRS, (long)HTTPCALL_MAX_REDIRS);
    httpcall_method(c->e, h);
    c->res.retry_after_ms = -1;
    c->req_bytes = strlen(h->method) + strlen(h->url) + h->body_len + HTTPCALL_REQ_OVERHEAD;
    for (size_t i = 0; i < h->nheaders; i++)
        c->req_bytes += strlen(h->headers[i].name) + strlen(h->headers[i].value) + 4;
    *out = c;
    return ERR_OK;
fail:
    if (rc == ERR_NOMEM)
        snprintf(reason, cap, "out of memory");
    httpcall_free(c);
    return rc;
}

/* ---- precise mode: connect ahead of the instant ------------------------------------------ */

/* CURLOPT_OPENSOCKETFUNCTION: hand over the pre-connected socket when libcurl opens a new
 * connection to its address; otherwise open one as libcurl would. */
static curl_socket_t httpcall_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    httpcall *c = ud;
    if (purpose == CURLSOCKTYPE_IPCXN && c->pre_fd >= 0 && preconn_same(&c->pre_addr, &a->addr)) {
        c->pre_given = c->pre_fd;
        c->pre_fd = -1;
        return c->pre_given;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* CURLOPT_SOCKOPTFUNCTION: tell libcurl the handed-over socket needs no connect(). */
static int httpcall_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    const httpcall *c = ud;
    (void)purpose;
    return fd == c->pre_given ? CURL_SOCKOPT_ALREADY_CONNECTED : CURL_SOCKOPT_OK;
}

bool httpcall_preconnect(httpcall *c, const char *url, bool hold)
{
    if (c->pre_fd >= 0 || !preconn_addr(url, &c->pre_addr))
        return false;
    /* Holding the request in a corked socket only works when it fits one segment (a larger one
     * would send its first part early) and needs no handshake after TCP's (TLS would stall). */
    hold = hold && c->req_bytes <= HTTPCALL_HOLD_MAX_BYTES && strncasecmp(url, "http://", 7) == 0;
    c->pre_fd = preconn_open(&c->pre_addr, hold, &hold);
    if (c->pre_fd < 0)
        return false;
    curl_easy_setopt(c->e, CURLOPT_OPENSOCKETFUNCTION, httpcall_open_socket);
    curl_easy_setopt(c->e, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(c->e, CURLOPT_SOCKOPTFUNCTION, httpcall_sockopt);
    curl_easy_setopt(c->e, CURLOPT_SOCKOPTDATA, c);
    /* A held request must go out on this socket, never on a cached uncorked connection. */
    if (hold)
        curl_easy_setopt(c->e, CURLOPT_FRESH_CONNECT, 1L);
    return hold;
}

void httpcall_release(httpcall *c)
{
    if (c->pre_given >= 0)
        preconn_uncork(c->pre_given);
    if (c->pre_fd >= 0) /* released before libcurl took it: it must not hold anything either */
        preconn_uncork(c->pre_fd);
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

const httpcall_result *httpcall_result_get(const httpcall *c)
{
    return &c->res;
}

void httpcall_set_ud(httpcall *c, void *ud)
{
    c->ud = ud;
}

void *httpcall_ud(const httpcall *c)
{
    return c->ud;
}

void httpcall_free(httpcall *c)
{
    if (!c)
        return;
    if (c->owner) {
        curl_multi_remove_handle(c->shard->m, c->e);
        c->owner->active--;
    }
    if (c->e)
        httpcall_easy_put(c->e);
    if (c->pre_fd >= 0)
        close(c->pre_fd); /* libcurl reused a cached connection instead */
    curl_slist_free_all(c->hdrs);
    free(c->buf);
    free(c);
}
