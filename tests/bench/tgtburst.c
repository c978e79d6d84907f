/* tgtburst: the recording target's own floor. It opens N connections to salvo-target ahead of
 * time, then at a whole second T writes one small request on each, from K threads at once, and
 * prints when its writes began and ended. The target stamps each request twice: when its
 * request line arrives (the kernel's receive stamp) and when its thread reads it. The spread of
 * the arrival stamps past T is what loopback TCP and one client on these cores cost; that of the
 * read stamps adds the target's thread(s) (salvo-target --threads) reading N requests. No
 * lateness measured through the target can be lower than the floor of the same stamp. */
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TB_THREADS_MAX 16
#define TB_REQ_MAX     256
/* Connections stay open this long after the writes, so the target (holding its replies as in a
 * latency run) never sees a client vanish before it has read every request. */
#define TB_LINGER_S 3

typedef struct tb_opts {
    int port;
    long count, threads;
    int priority; /* SCHED_FIFO priority of the writers, as the workers' --release-priority */
    long long at_s;
    const char *prefix; /* Idempotency-Key prefix: how the driver finds these records */
} tb_opts;

typedef struct tb_thread {
    pthread_t th;
    const tb_opts *o;
    const int *fds;
    long lo, hi; /* this thread's connections: fds[lo .. hi) */
    int64_t first_ns, last_ns;
    long failed;
} tb_thread;

static int tb_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *tb_writer(void *arg)
{
    tb_thread *t = arg;
    char req[TB_REQ_MAX];
    /* Raised before the sleep, as a worker's executor sleeps raised until its instant. */
    struct sched_param sp = {.sched_priority = t->o->priority};
    if (t->o->priority > 0 && sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
        fprintf(stderr, "tgtburst: SCHED_FIFO %d refused: %s\n", t->o->priority, strerror(errno));
        t->failed = t->hi - t->lo; /* no floor at another priority than asked */
        return NULL;
    }
    clock_sleep_until_real(t->o->at_s * CLOCK_NS_PER_SEC);
    t->first_ns = clock_real_ns();
    for (long i = t->lo; i < t->hi; i++) {
        int n = snprintf(req, sizeof req,
                         "GET /burst/%ld HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Idempotency-Key: %s#%ld\r\n\r\n",
                         i, t->o->prefix, i);
        if (write(t->fds[i], req, (size_t)n) != n)
            t->failed++;
    }
    t->last_ns = clock_real_ns();
    return NULL;
}

static void tb_usage(int code)
{
    fputs("usage: tgtburst --port P --count N --at EPOCH_S --prefix KEY [--threads K]\n"
          "                [--priority R]\n"
          "  Opens N connections to 127.0.0.1:P now, writes one GET on each at EPOCH_S from K\n"
          "  threads (default 2) with Idempotency-Key KEY#i, keeps them open 3 s, and prints\n"
          "  one JSON line. The writers run at SCHED_FIFO R when R > 0 (default 0: normal), as\n"
          "  salvo-worker --release-priority R releases. Exit 0, 1 when connections or writes\n"
          "  failed (or the priority was refused), 2 on bad usage.\n",
          code ? stderr : stdout);
    exit(code);
}

static void tb_options(int argc, char **argv, tb_opts *o)
{
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},    {"count", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 'k'}, {"at", required_argument, NULL, 'a'},
        {"prefix", required_argument, NULL, 'x'},  {"priority", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    *o = (tb_opts){0, 0, 2, 0, 0, NULL};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'p')
            o->port = atoi(optarg);
        else if (ch == 'n')
            o->count = atol(optarg);
        else if (ch == 'k')
            o->threads = atol(optarg);
        else if (ch == 'a')
            o->at_s = atoll(optarg);
        else if (ch == 'x')
            o->prefix = optarg;
        else if (ch == 'r')
            o->priority = atoi(optarg);
        else
            tb_usage(ch == 'h' ? 0 : 2);
    }
    if (o->port <= 0 || o->port > 65535 || o->count < 1 || o->threads < 1 ||
        o->threads > TB_THREADS_MAX || o->at_s <= 0 || !o->prefix || o->priority < 0 ||
        o->priority > 99 || optind != argc)
        tb_usage(2);
}

/* Run the writers at T and print the report. Returns the exit code. */
static int tb_burst(const tb_opts *o, const int *fds)
{
    tb_thread t[TB_THREADS_MAX];
    long per = (o->count + o->threads - 1) / o->threads, started = 0, failed = 0;
    for (long k = 0; k < o->threads; k++) {
        long lo = k * per, hi = lo + per < o->count ? lo + per : o->count;
        t[k] = (tb_thread){.o = o, .fds = fds, .lo = lo, .hi = lo < hi ? hi : lo};
        if (pthread_create(&t[k].th, NULL, tb_writer, &t[k]) != 0)
            break;
        started++;
    }
    int64_t first = INT64_MAX, last = 0;
    for (long k = 0; k < started; k++) {
        pthread_join(t[k].th, NULL);
        first = t[k].first_ns < first ? t[k].first_ns : first;
        last = t[k].last_ns > last ? t[k].last_ns : last;
        failed += t[k].failed;
    }
    int64_t t_ns = o->at_s * CLOCK_NS_PER_SEC;
    printf("{\"count\": %ld, \"threads\": %ld, \"write_first_ms\": %.3f, \"write_last_ms\": %.3f, "
           "\"failed\": %ld}\n",
           o->count, started, (double)(first - t_ns) / 1e6, (double)(last - t_ns) / 1e6, failed);
    fflush(stdout);
    return started == o->threads && failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    tb_opts o;
    tb_options(argc, argv, &o);
    int *fds = calloc((size_t)o.count, sizeof *fds);
    if (!fds) {
        fprintf(stderr, "tgtburst: out of memory\n");
        return 1;
    }
    long n = 0;
    for (; n < o.count; n++) {
        fds[n] = tb_connect(o.port);
        if (fds[n] < 0)
            break;
    }
    int code = 1;
    if (n < o.count) {
        char msg[128];
        strerror_r(errno, msg, sizeof msg);
        fprintf(stderr, "tgtburst: connection %ld of %ld failed: %s\n", n + 1, o.count, msg);
    } else if (clock_real_ns() >= o.at_s * CLOCK_NS_PER_SEC) {
        fprintf(stderr, "tgtburst: connecting took past the instant; give a later --at\n");
    } else {
        code = tb_burst(&o, fds);
        sleep(TB_LINGER_S);
    }
    /* A reset instead of a FIN: no TIME_WAIT left behind to slow the next run's connects. */
    struct linger rst = {1, 0};
    for (long i = 0; i < n; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
        close(fds[i]);
    }
    free(fds);
    return code;
}
