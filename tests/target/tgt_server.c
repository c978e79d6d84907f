/* tgt_server: the recording target's epoll loops (one per thread, non-blocking, level-triggered),
 * each with its own SO_REUSEPORT listener, connections and reply timers. */
/* accept4 is a GNU extension: it saves two fcntl calls per connection under a burst. */
#define _GNU_SOURCE
#include "tgt_server.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "tgt_conn.h"
#include "tgt_http.h"
#include "tgt_listen.h"
#include "tgt_plan.h"
#include "tgt_record.h"
#include "tgt_rxstamp.h"
#include "tgt_shared.h"
#include "tgt_timer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Events taken per epoll_wait: big enough that a burst of connections is drained in few passes. */
#define TGT_SERVER_EVENTS 1024
/* An input buffer may hold a whole request plus the start of a pipelined next one. */
#define TGT_SERVER_MAX_IN (TGT_HTTP_MAX_HEAD + TGT_HTTP_MAX_BODY + 4096)

/* Serving threads at most: one per core is the point; more only adds contention. */
#define TGT_SERVER_THREADS_MAX 64

/* One serving thread's state. */
typedef struct tgt_server {
    tgt_shared *sh;
    int ep;
    int lfd;
    int sigfd;        /* the first thread only; -1 on the others */
    int spare_fd;     /* kept open so a descriptor can be freed to shed a connection at EMFILE */
    int rc;           /* the loop's result */
    int64_t batch_ns; /* realtime stamp taken when epoll_wait returned */
    tgt_conn_table conns;
    tgt_timer timers;
    pthread_t thread;
    int started;
} tgt_server;

static void tgt_server_send(tgt_server *s, tgt_conn *c);

static void tgt_server_close(tgt_server *s, tgt_conn *c)
{
    if (c->held)
        atomic_fetch_sub(&s->sh->held_now, 1);
    tgt_conn_close(&s->conns, c);
    tgt_shared_conn_closed(s->sh);
}

static void tgt_server_want_out(tgt_server *s, tgt_conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Put a complete response (head + small JSON body) into c->out. */
static void tgt_server_reply(tgt_conn *c, int status, const char *body)
{
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                     status, tgt_http_reason(status), strlen(body),
                     c->close_after ? "close" : "keep-alive", body);
    c->out_len = n > 0 && (size_t)n < sizeof c->out ? (size_t)n : 0;
    c->out_off = 0;
}

/* GET /__stats: counts for tests and the bench; flushes the records first so a test that saw
 * N requests here finds N lines in the file. Not recorded, not counted. */
static void tgt_server_stats(tgt_server *s, tgt_conn *c)
{
    char body[512];
    tgt_shared *sh = s->sh;
    tgt_shared_flush(sh, 1, 0);
    snprintf(body, sizeof body,
             "{\"requests\":%llu,\"connections_open\":%llu,\"connections_total\":%llu,"
             "\"max_open\":%llu,\"accept_dropped\":%llu,\"parse_errors\":%llu,"
             "\"held\":%llu,\"keys\":%zu}\n",
             (unsigned long long)atomic_load(&sh->requests),
             (unsigned long long)atomic_load(&sh->conns_open),
             (unsigned long long)atomic_load(&sh->conns_opened),
             (unsigned long long)atomic_load(&sh->conns_max_open),
             (unsigned long long)atomic_load(&sh->accept_dropped),
             (unsigned long long)atomic_load(&sh->parse_errors),
             (unsigned long long)atomic_load(&sh->held_now), tgt_shared_keys(sh));
    tgt_server_reply(c, 200, body);
}

/* Decide, record and prepare the answer to a parsed request; hold it if the plan says so. */
static void tgt_server_answer(tgt_server *s, tgt_conn *c, const tgt_http_req *req)
{
    tgt_span idem = tgt_http_header(req, "idempotency-key");
    tgt_plan_answer a;
    tgt_record_entry e = {.t_ns = c->start_ns,
                          .rx_ns = c->line_rx_ns,
                          .conn_id = c->id,
                          .req = req,
                          .body = c->in + req->head_len};
    if (tgt_shared_answer(s->sh, req->path.p, req->path.n, idem.p ? idem.p : "", idem.n, &e, &a) !=
        ERR_OK)
        log_warn("record file: write failed: a record was lost");
    char body[64];
    snprintf(body, sizeof body, "{\"status\":%d,\"seen\":%u}\n", a.status, a.seen);
    tgt_server_reply(c, a.status, body);
    if (a.delay_ms <= 0)
        return;
    tgt_timer_entry t = {clock_mono_ns() + a.delay_ms * CLOCK_NS_PER_MS, c->fd, c->gen};
    if (tgt_timer_push(&s->timers, t) == ERR_OK) {
        c->held = 1;
        atomic_fetch_add(&s->sh->held_now, 1);
    }
}

/* Take the next complete request out of c->in, if there is one. Returns 1 when a request was
 * taken (its reply is then ready in c->out, or held), 0 when more bytes are needed. */
static int tgt_server_take(tgt_server *s, tgt_conn *c)
{
    tgt_http_req req;
    if (c->in_len == 0)
        return 0;
    int rc = tgt_http_parse(c->in, c->in_len, &req);
    if (rc == TGT_HTTP_PARTIAL)
        return 0;
    c->busy = 1;
    if (rc != ERR_OK) {
        atomic_fetch_add(&s->sh->parse_errors, 1);
        c->close_after = 1;
        c->consumed = c->in_len;
        tgt_server_reply(c, req.error_status, "{\"error\":\"bad request\"}\n");
        return 1;
    }
    c->close_after = !req.keep_alive;
    c->consumed = req.total_len;
    tgt_conn_note_taken(c);
    static const char stats_path[] = "/__stats";
    if (req.path.n == sizeof stats_path - 1 && memcmp(req.path.p, stats_path, req.path.n) == 0)
        tgt_server_stats(s, c);
    else
        tgt_server_answer(s, c, &req);
    return 1;
}

/* Answer requests in order until one is held, the socket is full, or input runs out. */
static void tgt_server_serve(tgt_server *s, tgt_conn *c)
{
    while (c->fd >= 0 && !c->busy && tgt_server_take(s, c))
        if (!c->held)
            tgt_server_send(s, c);
}

static void tgt_server_send(tgt_server *s, tgt_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            tgt_server_want_out(s, c, 1);
            return;
        } else {
            tgt_server_close(s, c);
            return;
        }
    }
    tgt_server_want_out(s, c, 0);
    if (c->close_after) {
        tgt_server_close(s, c);
        return;
    }
    tgt_conn_advance(c);
}

/* Read everything available. The read stamp is the moment epoll reported the bytes, the same
 * for the whole batch, so connections served later in a big batch are not stamped late; the
 * kernel's receive stamp of each read (tgt_rxstamp) is kept beside it. */
static void tgt_server_read(tgt_server *s, tgt_conn *c)
{
    for (;;) {
        int rc = tgt_conn_reserve(c, 2048, TGT_SERVER_MAX_IN);
        if (rc == ERR_RANGE && !c->busy)
            break; /* the parser answers a request larger than it allows */
        if (rc != ERR_OK) {
            tgt_server_close(s, c); /* out of memory, or a client flooding pipelined requests */
            return;
        }
        int64_t rx_ns;
        ssize_t r = tgt_rxstamp_recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, &rx_ns);
        if (r > 0) {
            c->in_len += (size_t)r;
            tgt_conn_note_read(c, c->in_len - (size_t)r, s->batch_ns, rx_ns);
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            tgt_server_close(s, c); /* EOF or reset; a held reply is dropped with it */
            return;
        }
    }
    tgt_server_serve(s, c);
}

/* At EMFILE the pending connection would keep the listener readable forever: free the spare
 * descriptor, accept and close the connection, and take the spare back. */
static void tgt_server_shed(tgt_server *s)
{
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    int fd = accept(s->lfd, NULL, NULL);
    if (fd >= 0) {
        close(fd);
        uint64_t dropped = atomic_fetch_add(&s->sh->accept_dropped, 1) + 1;
        if (dropped % 1000 == 1)
            log_warn("descriptor limit reached: dropped a connection (%llu so far)",
                     (unsigned long long)dropped);
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Drain the accept queue: under a burst it holds thousands of connections. */
static void tgt_server_accept(tgt_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
                tgt_server_shed(s);
                continue;
            }
            return; /* EAGAIN: drained */
        }
        tgt_conn *c = tgt_conn_open(&s->conns, fd);
        if (c)
            c->id = tgt_shared_conn_opened(s->sh);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (c && epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            tgt_server_close(s, c);
    }
}

static void tgt_server_fire_timers(tgt_server *s)
{
    tgt_timer_entry t;
    int64_t now = clock_mono_ns();
    while (tgt_timer_pop_due(&s->timers, now, &t)) {
        tgt_conn *c = tgt_conn_get(&s->conns, t.fd);
        if (!c || c->gen != t.gen || !c->held)
            continue; /* the connection closed while its reply was held */
        c->held = 0;
        atomic_fetch_sub(&s->sh->held_now, 1);
        tgt_server_send(s, c);
        if (c->fd >= 0)
            tgt_server_serve(s, c);
    }
}

/* Sleep until the next held reply is due or the record buffer must be flushed (ms, -1: none). */
static int tgt_server_timeout(tgt_server *s)
{
    int64_t now = clock_mono_ns();
    int64_t wake = INT64_MAX;
    tgt_timer_entry t;
    if (tgt_timer_peek(&s->timers, &t))
        wake = t.due_ns;
    int64_t flush = tgt_shared_flush_due(s->sh, TGT_SERVER_FLUSH_NS);
    if (flush < wake)
        wake = flush;
    if (wake == INT64_MAX)
        return -1;
    if (wake <= now)
        return 0;
    return (int)((wake - now + CLOCK_NS_PER_MS - 1) / CLOCK_NS_PER_MS);
}

static void tgt_server_maybe_flush(tgt_server *s)
{
    if (tgt_shared_flush(s->sh, 0, TGT_SERVER_FLUSH_NS) != ERR_OK)
        log_warn("record file: write failed: %d (will retry)", errno);
}

static void tgt_server_event(tgt_server *s, const struct epoll_event *ev)
{
    if (ev->data.fd == s->lfd) {
        tgt_server_accept(s);
        return;
    }
    if (ev->data.fd == s->sigfd) {
        struct signalfd_siginfo si;
        if (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            log_notice("signal %u: flushing records and exiting", si.ssi_signo);
        tgt_shared_stop(s->sh);
        return;
    }
    if (ev->data.fd == s->sh->stopfd)
        return; /* the loop reads the stop flag */
    tgt_conn *c = tgt_conn_get(&s->conns, ev->data.fd);
    if (!c)
        return;
    if (ev->events & EPOLLOUT) {
        tgt_server_send(s, c);
        if (c->fd >= 0)
            tgt_server_serve(s, c);
    }
    if (c->fd >= 0 && (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        tgt_server_read(s, c);
}

static int tgt_server_loop(tgt_server *s)
{
    struct epoll_event evs[TGT_SERVER_EVENTS];
    while (!atomic_load(&s->sh->stop)) {
        int n = epoll_wait(s->ep, evs, TGT_SERVER_EVENTS, tgt_server_timeout(s));
        s->batch_ns = clock_real_ns();
        if (n < 0 && errno != EINTR) {
            log_err("epoll_wait failed: errno %d", errno);
            tgt_shared_stop(s->sh);
            return ERR_IO;
        }
        for (int i = 0; i < n; i++)
            tgt_server_event(s, &evs[i]);
        tgt_server_fire_timers(s);
        tgt_server_maybe_flush(s);
    }
    return ERR_OK;
}

/* SIGTERM and SIGINT arrive through a signalfd so the loop finishes its pass, flushes the
 * records and returns normally; a signal handler could interrupt a half-written record. */
static int tgt_server_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int tgt_server_watch(tgt_server *s, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? ERR_OK : ERR_IO;
}

/* Epoll set, spare descriptor, connection table and listener of one thread. Every thread binds
 * the same port with SO_REUSEPORT, so the kernel spreads connections over them by address hash
 * and each thread accepts, reads and stamps its own share. */
static int tgt_server_thread_setup(tgt_server *s, const tgt_config *cfg, int *port, int reuse)
{
    struct rlimit rl;
    size_t nslots = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                        ? (size_t)rl.rlim_cur
                        : 65536;
    int rc = tgt_conn_table_init(&s->conns, nslots);
    if (rc != ERR_OK)
        return rc;
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->ep < 0 || tgt_server_watch(s, s->sh->stopfd) != ERR_OK ||
        (s->sigfd >= 0 && tgt_server_watch(s, s->sigfd) != ERR_OK)) {
        log_err("epoll setup failed: errno %d", errno);
        return ERR_IO;
    }
    rc = tgt_listen_open(cfg->bind, *port, TGT_SERVER_BACKLOG, reuse, &s->lfd, port);
    if (rc != ERR_OK)
        return rc;
    /* Accepted sockets inherit it: no extra system call per connection during a burst. */
    if (tgt_rxstamp_enable(s->lfd) != ERR_OK)
        log_warn("SO_TIMESTAMPING refused (errno %d): records get no rx_ns", errno);
    return tgt_server_watch(s, s->lfd);
}

static void tgt_server_thread_teardown(tgt_server *s)
{
    tgt_conn_table_fini(&s->conns);
    tgt_timer_fini(&s->timers);
    int fds[] = {s->lfd, s->sigfd, s->spare_fd, s->ep};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Plan and record file, shared by every thread. */
static int tgt_server_shared_setup(tgt_shared *sh, const tgt_config *cfg)
{
    char msg[256];
    tgt_plan *plan = NULL;
    tgt_record *rec = NULL;
    int rc = tgt_plan_new(cfg->status_plan, cfg->path_delay, cfg->delay_ms, &plan, msg, sizeof msg);
    if (rc != ERR_OK) {
        log_err("bad --status-plan/--path-delay: %s", msg);
        return rc == ERR_PARSE ? ERR_INVAL : rc;
    }
    rc = tgt_record_open(cfg->record_path, &rec);
    if (rc != ERR_OK) {
        log_err("cannot open record file %s: errno %d", cfg->record_path, errno);
        tgt_plan_free(plan);
        return rc;
    }
    rc = tgt_shared_init(sh, plan, rec);
    if (rc != ERR_OK) {
        tgt_record_close(rec);
        tgt_plan_free(plan);
    }
    return rc;
}

static void *tgt_server_thread_main(void *arg)
{
    tgt_server *s = arg;
    s->rc = tgt_server_loop(s);
    return NULL;
}

/* Set up every thread's server (the first one also watches signals), then start all but the
 * first, which runs on the caller. */
static int tgt_server_start(tgt_server *sv, int n, const tgt_config *cfg)
{
    int port = cfg->port;
    for (int i = 0; i < n; i++) {
        tgt_server *s = &sv[i];
        if (i == 0) {
            s->sigfd = tgt_server_signals();
            if (s->sigfd < 0)
                return ERR_IO;
        }
        int rc = tgt_server_thread_setup(s, cfg, &port, n > 1);
        if (rc != ERR_OK)
            return rc;
    }
    printf("listening %d\n", port);
    fflush(stdout);
    for (int i = 1; i < n; i++) {
        if (pthread_create(&sv[i].thread, NULL, tgt_server_thread_main, &sv[i]) != 0)
            return ERR_NOMEM;
        sv[i].started = 1;
    }
    return ERR_OK;
}

int tgt_server_run(const tgt_config *cfg)
{
    int n = cfg->threads < 1                        ? 1
            : cfg->threads > TGT_SERVER_THREADS_MAX ? TGT_SERVER_THREADS_MAX
                                                    : cfg->threads;
    tgt_server sv[TGT_SERVER_THREADS_MAX];
    memset(sv, 0, sizeof sv);
    tgt_shared sh;
    int rc = tgt_server_shared_setup(&sh, cfg);
    if (rc != ERR_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        sv[i].sh = &sh;
        sv[i].ep = sv[i].lfd = sv[i].sigfd = sv[i].spare_fd = -1;
        tgt_timer_init(&sv[i].timers);
    }
    rc = tgt_server_start(sv, n, cfg);
    if (rc == ERR_OK)
        rc = tgt_server_loop(&sv[0]);
    tgt_shared_stop(&sh);
    for (int i = 1; i < n; i++) {
        if (sv[i].started)
            pthread_join(sv[i].thread, NULL);
        if (rc == ERR_OK)
            rc = sv[i].rc;
    }
    if (rc == ERR_OK)
        log_notice("served %llu requests on %llu connections (at most %llu open) with %d threads",
                   (unsigned long long)atomic_load(&sh.requests),
                   (unsigned long long)atomic_load(&sh.conns_opened),
                   (unsigned long long)atomic_load(&sh.conns_max_open), n);
    for (int i = 0; i < n; i++)
        tgt_server_thread_teardown(&sv[i]);
    if (tgt_shared_fini(&sh) != ERR_OK)
        log_err("record file: final flush failed: errno %d", errno);
    return rc;
}
