/* salvo-worker: options, process setup (descriptors, signals, libraries) and the run command. */
#include "cli.h"
#include "config.h"
#include "consume.h"
#include "err.h"
#include "httpcall.h"
#include "httpd.h"
#include "inflight.h"
#include "log.h"
#include "mq.h"
#include "outq.h"
#include "pool.h"
#include "recent.h"
#include "redact.h"
#include "rtprio.h"
#include "settle.h"
#include "signcfg.h"
#include "topology.h"
#include "wmetrics.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROG "salvo-worker"
/* Descriptors kept back from the transfer budget: stdio, the broker socket, one eventfd, and
 * each executor's wakeup pair, with room to spare. */
#define FD_RESERVE_BASE       64
#define FD_RESERVE_PER_THREAD 4
/* A libcurl transfer holds its socket plus, while a name resolves, the threaded resolver's pair
 * (field notes §7); a staged precise one, until its move, its connection and both ends of its
 * staging socketpair (httpcall_stage.c): budget three each. */
#define FDS_PER_TRANSFER 3
/* Settled attempts remembered for duplicate detection: a few times what can be in flight, so a
 * whole prefetch window redelivered after a reconnect is still recognised. */
#define RECENT_MIN     16384
#define RECENT_PER_JOB 4
#define ALLOW_MAX      64

typedef struct run_cfg {
    const char *urls, *tls_ca, *tls_cert, *tls_key, *allow, *metrics_addr;
    const char *allow_hosts, *http_ca;
    bool allow_link_local;
    const char *key_file, *publishers;
    bool allow_unsigned;
    sign_ring *ring; /* NULL when running --allow-unsigned without a key */
    trust_publishers pubs;
    int64_t threads, max_inflight, heartbeat, capture, release_prio;
    int64_t grace_ms;
    int level, format, results;
} run_cfg;

static volatile sig_atomic_t run_stop;
static outq *run_outq; /* the signal handler rings its doorbell */

static void on_signal(int sig)
{
    (void)sig;
    run_stop = run_stop + 1; /* a second signal ends the grace period at once */
    if (run_outq)
        outq_kick(run_outq);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Raise the soft descriptor limit to the hard one and derive how many transfers may run. */
static size_t fd_budget(size_t threads, size_t max_inflight)
{
    struct rlimit rl;
    size_t budget = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        size_t reserve = FD_RESERVE_BASE + FD_RESERVE_PER_THREAD * threads;
        size_t lim = rl.rlim_cur == RLIM_INFINITY ? 1000000 : (size_t)rl.rlim_cur;
        budget = lim > reserve + FDS_PER_TRANSFER ? (lim - reserve) / FDS_PER_TRANSFER : 1;
        log_info("descriptor limit %zu: up to %zu transfers at once", lim, budget);
    }
    if (max_inflight > budget)
        log_warn("--max-inflight %zu is above the descriptor budget of %zu transfers: jobs past "
                 "it wait for a free slot; run more worker processes instead",
                 max_inflight, budget);
    return budget;
}

/* Split the comma-separated allow-list in place into at most ALLOW_MAX entries. */
static size_t split_allow(char *list, const char **out)
{
    size_t n = 0;
    char *save = NULL;
    for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok && n < ALLOW_MAX;
         tok = strtok_r(NULL, ",", &save)) {
        if (*tok)
            out[n++] = tok;
    }
    return n;
}

/* Everything the run shares between its threads, built before any thread starts. */
typedef struct worker {
    outq *q;
    recent *rec;
    inflight *inf;
    wmetrics *wm; /* NULL with --metrics-addr off */
    httpd *http;
    pool *p;
} worker;

static int worker_build(worker *w, const run_cfg *cfg, const settle_env *env,
                        const char *const *allow, size_t nallow)
{
    size_t threads = (size_t)cfg->threads, max_inflight = (size_t)cfg->max_inflight;
    size_t nrecent =
        max_inflight * RECENT_PER_JOB > RECENT_MIN ? max_inflight * RECENT_PER_JOB : RECENT_MIN;
    if (outq_new(&w->q) != ERR_OK || recent_new(nrecent, &w->rec) != ERR_OK ||
        inflight_new(max_inflight, &w->inf) != ERR_OK ||
        (!httpd_addr_off(cfg->metrics_addr) && wmetrics_new(&w->wm) != ERR_OK))
        return ERR_NOMEM;
    pool_opts po = {.threads = threads,
                    .max_inflight = max_inflight,
                    .fd_budget = fd_budget(threads, max_inflight),
                    .capture_cap = (size_t)cfg->capture,
                    .allow = allow,
                    .nallow = nallow,
                    .env = env,
                    .out = w->q,
                    .recent = w->rec,
                    .inflight = w->inf,
                    .wm = w->wm};
    if (pool_new(&po, &w->p) != ERR_OK)
        return ERR_NOMEM;
    /* Pool threads start with the stop signals blocked, so only this thread is interrupted. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = pool_start(w->p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* GET /healthz: healthy while connected and consuming (the gauge the I/O thread sets: 0 after a
 * lost connection, a broker-cancelled consumer, or the stop's cancel). */
static bool worker_health(void *arg, char *reason, size_t cap)
{
    const wmetrics *wm = arg;
    if (metrics_read(wm->connected) > 0.5)
        return true;
    snprintf(reason, cap, "broker connection down");
    return false;
}

/* The /metrics and /healthz server unless turned off. ERR_OK, or the error of an explicit
 * address that cannot be served (logged; see httpd_serve). */
static int worker_http(worker *w, const char *addr)
{
    if (!w->wm)
        return ERR_OK;
    httpd_opts o = {addr, HTTPD_PORT_WORKER, w->wm->reg, worker_health, w->wm};
    return httpd_serve(&o, &w->http);
}

static void worker_fini(worker *w)
{
    httpd_stop(w->http);
    pool_free(w->p);
    inflight_free(w->inf);
    wmetrics_free(w->wm);
    recent_free(w->rec);
    outq_free(w->q);
}

/* Before any executor thread: they read the level rtprio_setup leaves. */
static void worker_release_priority(int64_t prio)
{
    char err[160];
    if (rtprio_setup((int)prio, err, sizeof err))
        log_notice("held requests are released at SCHED_FIFO priority %lld", (long long)prio);
    else if (prio > 0)
        log_notice("--release-priority: %s; held requests are released at normal priority", err);
}

/* Build the pool and its companions, run the I/O loop on this thread, tear down. */
static int worker_run(const run_cfg *cfg, const char *const *allow, size_t nallow)
{
    char host[128] = "localhost", name[200], ident[160];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, PROG "@%s:%ld", host, (long)getpid());
    snprintf(ident, sizeof ident, "%s:%ld", host, (long)getpid());
    settle_env env = {ident, topo_retry_delay_ms, TOPO_RETRY_LEVELS, cfg->ring,
                      (settle_results)cfg->results};
    worker w = {0};
    worker_release_priority(cfg->release_prio);
    if (worker_build(&w, cfg, &env, allow, nallow) != ERR_OK) {
        log_err("cannot start: out of memory or threads");
        worker_fini(&w);
        return 1;
    }
    if (worker_http(&w, cfg->metrics_addr) != ERR_OK) {
        worker_fini(&w);
        return 2; /* an address we cannot bind is a configuration error */
    }
    run_outq = w.q;
    log_notice("%s: %lld executor threads, max in flight %lld, grace %lld ms", name,
               (long long)cfg->threads, (long long)cfg->max_inflight, (long long)cfg->grace_ms);
    consume_opts co = {
        {cfg->urls, name, (int)cfg->heartbeat, 0, 0, cfg->tls_ca, cfg->tls_cert, cfg->tls_key},
        (uint16_t)cfg->max_inflight,
        cfg->grace_ms,
        &cfg->pubs};
    consume_deps deps = {w.p, w.q, w.rec, w.inf, w.wm};
    consume_stats st;
    consume_run(&co, &deps, &run_stop, &st);
    run_outq = NULL;
    worker_fini(&w);
    return 0;
}

/* The HTTP target policy (allow-list, refused addresses, custom CA), set before any thread.
 * ERR_OK, or ERR_INVAL after logging why (a configuration error). */
static int target_policy(const run_cfg *c, netguard **out)
{
    char err[256] = "";
    if (netguard_new(c->allow_hosts, c->allow_link_local, out, err, sizeof err) != ERR_OK) {
        log_err("--allow-hosts: %s", err[0] ? err : "out of memory");
        return ERR_INVAL;
    }
    if (c->http_ca && access(c->http_ca, R_OK) != 0) {
        log_err("--http-ca %s: not a readable file", c->http_ca);
        netguard_free(*out);
        return ERR_INVAL;
    }
    httpcall_set_policy(*out, c->http_ca);
    if (c->allow_link_local)
        log_warn("--allow-link-local: jobs may call link-local and cloud metadata addresses");
    return ERR_OK;
}

static const char *const level_names[] = {"err", "warn", "notice", "info", "debug", NULL};
static const char *const format_names[] = {"text", "json", NULL};
static const char *const results_names[] = {"off", "failures", "all", NULL}; /* settle_results */

static int cmd_run(int argc, char **argv)
{
    run_cfg c = {0};
    const config_opt opts[] = {
        {"amqp-url", "SALVO_AMQP_URL", CONFIG_STRING, &c.urls, "amqp://guest:guest@127.0.0.1:5672/",
         "broker URL(s), comma-separated for fail-over", NULL, 0, 0, CONFIG_SECRET},
        {"threads", "SALVO_THREADS", CONFIG_INT, &c.threads, "0",
         "executor threads (0 = one per core)", NULL, 0, 256, 0},
        {"max-inflight", "SALVO_MAX_INFLIGHT", CONFIG_INT, &c.max_inflight, "1000",
         "jobs in flight at once (the consumer prefetch)", NULL, 1, 65535, 0},
        {"release-priority", "SALVO_RELEASE_PRIORITY", CONFIG_INT, &c.release_prio, "1",
         "SCHED_FIFO priority of the moment held jobs' requests go out, so other threads cannot "
         "delay them (0 = normal priority; needs CAP_SYS_NICE or RLIMIT_RTPRIO)",
         NULL, 0, RTPRIO_MAX, 0},
        {"grace", "SALVO_GRACE", CONFIG_DURATION, &c.grace_ms, "30s",
         "on SIGTERM, how long jobs in flight may finish", NULL, 0, 3600000, 0},
        {"heartbeat", "SALVO_HEARTBEAT", CONFIG_INT, &c.heartbeat, "10",
         "AMQP heartbeat interval in seconds", NULL, 1, 300, 0},
        {"capture", "SALVO_CAPTURE", CONFIG_INT, &c.capture, "4096",
         "reply or output bytes kept for the result record", NULL, 0, 65536, 0},
        {"results", "SALVO_RESULTS", CONFIG_ENUM, &c.results, "failures",
         "attempts that publish a result record to salvo.results: failures (retry, dead, missed), "
         "all, or off",
         results_names, 0, 0, 0},
        {"allow-command", "SALVO_ALLOW_COMMAND", CONFIG_STRING, &c.allow, NULL,
         "programs command jobs may run, comma-separated (default: none)", NULL, 0, 0, 0},
        {"allow-hosts", "SALVO_ALLOW_HOSTS", CONFIG_STRING, &c.allow_hosts, NULL,
         "HTTP targets jobs may call: host, host:port or .suffix, comma-separated (default: any)",
         NULL, 0, 0, 0},
        {"allow-link-local", "SALVO_ALLOW_LINK_LOCAL", CONFIG_BOOL, &c.allow_link_local, "false",
         "let jobs call link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10)", NULL,
         0, 0, 0},
        {"http-ca", "SALVO_HTTP_CA", CONFIG_STRING, &c.http_ca, NULL,
         "CA bundle (PEM) for https:// targets (default: the system store)", NULL, 0, 0, 0},
        {"tls-ca", "SALVO_TLS_CA", CONFIG_STRING, &c.tls_ca, NULL, "CA file for amqps://", NULL, 0,
         0, 0},
        {"tls-cert", "SALVO_TLS_CERT", CONFIG_STRING, &c.tls_cert, NULL,
         "client certificate (PEM) for amqps://", NULL, 0, 0, 0},
        {"tls-key", "SALVO_TLS_KEY", CONFIG_STRING, &c.tls_key, NULL,
         "client key (PEM) for amqps://", NULL, 0, 0, 0},
        {"signing-key-file", "SALVO_SIGNING_KEY_FILE", CONFIG_STRING, &c.key_file, NULL,
         "file of the keys that verify jobs (salvo-producer keygen); or set SALVO_SIGNING_KEYS",
         NULL, 0, 0, 0},
        {"allow-unsigned", "SALVO_ALLOW_UNSIGNED", CONFIG_BOOL, &c.allow_unsigned, "false",
         "start without a signing key and run unsigned jobs (insecure)", NULL, 0, 0, 0},
        {"allowed-publishers", "SALVO_ALLOWED_PUBLISHERS", CONFIG_STRING, &c.publishers, NULL,
         "broker users (AMQP user_id) whose jobs run, comma-separated; the worker's own login "
         "is always allowed (default: only it)",
         NULL, 0, 0, 0},
        {"metrics-addr", "SALVO_METRICS_ADDR", CONFIG_STRING, &c.metrics_addr, NULL,
         "serve /metrics and /healthz on HOST:PORT (default 127.0.0.1:9471; off: none)", NULL, 0, 0,
         0},
        {"log-level", "SALVO_LOG_LEVEL", CONFIG_ENUM, &c.level, "info", "log threshold",
         level_names, 0, 0, 0},
        {"log-format", "SALVO_LOG_FORMAT", CONFIG_ENUM, &c.format, "text", "log line format",
         format_names, 0, 0, 0},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0},
    };
    char err[512];
    int first = argc;
    /* The broker password may come in a file (a Docker or Kubernetes secret). */
    int rc = config_env_from_file("SALVO_AMQP_URL", err, sizeof err);
    if (rc == ERR_OK)
        rc = config_parse(opts, argc, argv, &first, err, sizeof err);
    if (rc == CONFIG_HELP) {
        config_usage(stdout,
                     PROG " run [options]\n\nConsume salvo.jobs and run each job: HTTP calls "
                          "(libcurl multi) and allowed commands.",
                     opts);
        return 0;
    }
    if (rc != ERR_OK || first < argc) {
        fprintf(stderr, PROG " run: %s\n", rc != ERR_OK ? err : "unexpected argument");
        return 2;
    }
    if (c.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        c.threads = cores > 0 ? cores : 1;
    }
    mq_opts tls = {.tls_ca = c.tls_ca, .tls_cert = c.tls_cert, .tls_key = c.tls_key};
    if (mq_opts_check(&tls, err, sizeof err) != ERR_OK) {
        fprintf(stderr, PROG " run: %s\n", err);
        return 2;
    }
    log_init((log_level)c.level, (log_format)c.format, "worker");
    redact_warn_argv(argc, argv, "amqp-url", "SALVO_AMQP_URL");
    if (trust_parse(c.publishers, &c.pubs, err, sizeof err) != ERR_OK) {
        fprintf(stderr, PROG " run: %s\n", err);
        return 2;
    }
    /* Before any thread: the keys may come from the environment, which this edits. */
    if (signcfg_load(c.key_file, c.allow_unsigned, &c.ring) != ERR_OK) {
        trust_fini(&c.pubs);
        return 2; /* logged */
    }
    netguard *guard = NULL;
    if (target_policy(&c, &guard) != ERR_OK) {
        sign_ring_free(c.ring);
        trust_fini(&c.pubs);
        return 2;
    }
    char *allow_buf = c.allow ? strdup(c.allow) : NULL;
    const char *allow[ALLOW_MAX];
    size_t nallow = split_allow(allow_buf, allow);
    /* Before any thread: libcurl's and OpenSSL's global state, and SIGPIPE ignored. */
    mq_global_init();
    int code = 1;
    if (httpcall_global_init() == ERR_OK) {
        install_signals();
        code = worker_run(&c, allow, nallow);
        httpcall_global_fini();
    }
    free(allow_buf);
    netguard_free(guard);
    sign_ring_free(c.ring);
    trust_fini(&c.pubs);
    return code;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: " PROG " run [options]\n       " PROG " --help | --version\n\n"
                 "Commands:\n  run      consume jobs from RabbitMQ and execute them\n\n"
                 "Run '" PROG " run --help' for its options.\n");
}

int main(int argc, char **argv)
{
    int code = cli_preamble(argc, argv, PROG, usage);
    if (code != CLI_CONTINUE)
        return code;
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, PROG ": unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
