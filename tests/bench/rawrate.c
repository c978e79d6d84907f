/* rawrate: the raw broker rate salvo's end-to-end throughput is compared with. It publishes one
 * firing's messages (built from a schedule entry exactly as the producer builds them: same
 * bodies, ids, headers, persistent, mandatory) with publisher confirms to a quorum queue
 * declared like salvo.jobs, while K consumers with manual acks and a prefetch take them off,
 * and prints one JSON line: messages, bytes, publish+confirm rate, end-to-end rate.
 *
 * Shape of the measurement, chosen to match a salvo run: one publishing connection (the
 * producer), K consuming connections on their own threads (the workers), every message acked
 * on its own (a worker acks each job after its outcome). rabbitmq-c is used directly, so the
 * figure carries none of salvo's code. */
#include "clock.h"
#include "rawamqp.h"
#include "rawmsg.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A confirm that takes this long means the broker is in trouble; the run is void. */
#define RR_STALL_NS   (30 * CLOCK_NS_PER_SEC)
#define RR_WAIT_US    200000 /* one blocking frame wait; short so stalls are noticed */
#define RR_DRAIN_EACH 64     /* publishes between non-blocking reads of pending confirms */
#define RR_CONSUMERS  16
#define RR_CHANNELS   8 /* --channels: publishing channels, each in confirm mode */

typedef struct rr_opts {
    const char *url, *schedule, *entry, *queue;
    long count, consumers, prefetch, window, channels;
} rr_opts;

/* What the threads share: set up before they start, then only the atomics change. */
typedef struct rr_run {
    const rr_opts *o;
    const rawmsg_set *msgs;
    pthread_barrier_t ready; /* every consumer subscribed, publisher connected */
    atomic_size_t received;
    atomic_int failed;
    _Atomic int64_t last_ack_ns;
    pthread_mutex_t err_lock;
    char err[256];
} rr_run;

/* Publisher confirms of one channel: tags are 1..n in publish order on it; `multiple` settles
 * all up to a tag. */
typedef struct rr_confirms {
    uint8_t *done;
    size_t n, lo, count;
} rr_confirms;

/* Every publishing channel's confirms: message i goes to channel 1 + i % nch. */
typedef struct rr_pub {
    rr_confirms k[RR_CHANNELS];
    int nch;
} rr_pub;

static size_t rr_confirmed(const rr_pub *pb)
{
    size_t n = 0;
    for (int i = 0; i < pb->nch; i++)
        n += pb->k[i].count;
    return n;
}

static void rr_fail(rr_run *r, const char *msg)
{
    pthread_mutex_lock(&r->err_lock);
    if (!r->err[0])
        snprintf(r->err, sizeof r->err, "%s", msg);
    pthread_mutex_unlock(&r->err_lock);
    atomic_store(&r->failed, 1);
}

static void rr_confirm(rr_confirms *k, uint64_t tag, bool multiple)
{
    if (tag == 0 || tag > k->n)
        return;
    for (size_t i = multiple ? k->lo : (size_t)tag - 1; i < (size_t)tag; i++) {
        k->count += !k->done[i];
        k->done[i] = 1;
    }
    while (k->lo < k->n && k->done[k->lo])
        k->lo++;
}

/* Read one frame on the publishing connection within timeout_us: 1 handled, 0 nothing came,
 * -1 error (nack, return, close) with err set. */
static int rr_pub_frame(amqp_connection_state_t c, rr_pub *pb, long timeout_us, char *err,
                        size_t cap)
{
    amqp_frame_t f;
    struct timeval tv = {timeout_us / 1000000, timeout_us % 1000000};
    int rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, cap, "waiting for confirms: %s", amqp_error_string2(rc));
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 1;
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD && f.channel >= 1 && f.channel <= pb->nch) {
        const amqp_basic_ack_t *a = f.payload.method.decoded;
        rr_confirm(&pb->k[f.channel - 1], a->delivery_tag, a->multiple);
        return 1;
    }
    snprintf(err, cap, "publisher got method 0x%08x (nack, return or close)", f.payload.method.id);
    return -1;
}

static int rr_publish_one(amqp_connection_state_t c, const rr_run *r, size_t i)
{
    const rawmsg_set *s = r->msgs;
    char expiration[24];
    amqp_table_entry_t h[6] = {
        {amqp_cstring_bytes("x-salvo-job"), {AMQP_FIELD_KIND_UTF8, {.bytes = {0, NULL}}}},
        {amqp_cstring_bytes("x-salvo-due"), {AMQP_FIELD_KIND_UTF8, {.bytes = {0, NULL}}}},
        {amqp_cstring_bytes("x-salvo-attempt"), {AMQP_FIELD_KIND_I64, {.i64 = 1}}},
        {amqp_cstring_bytes(SIGN_HDR_DUE), {AMQP_FIELD_KIND_I64, {.i64 = s->due_ms}}},
        {amqp_cstring_bytes(SIGN_HDR_KID), {AMQP_FIELD_KIND_UTF8, {.bytes = {0, NULL}}}},
        {amqp_cstring_bytes(SIGN_HDR_SIG), {AMQP_FIELD_KIND_UTF8, {.bytes = {0, NULL}}}},
    };
    h[0].value.value.bytes = amqp_cstring_bytes(s->schedule);
    h[1].value.value.bytes = amqp_cstring_bytes(s->due_iso);
    h[4].value.value.bytes = amqp_cstring_bytes(s->kid);
    h[5].value.value.bytes = amqp_cstring_bytes(s->m[i].sig);
    int nh = s->kid[0] ? 6 : 4; /* the producer's headers, signature included when it signs */
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p.content_type = amqp_cstring_bytes("application/msgpack");
    p.delivery_mode = 2;
    p.message_id = amqp_cstring_bytes(s->m[i].id);
    p.timestamp = (uint64_t)(clock_real_ns() / CLOCK_NS_PER_SEC);
    p.headers = (amqp_table_t){nh, h};
    if (s->max_lateness_ms > 0) {
        snprintf(expiration, sizeof expiration, "%lld", (long long)s->max_lateness_ms);
        p.expiration = amqp_cstring_bytes(expiration);
        p._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    }
    amqp_bytes_t body = {s->m[i].len, s->m[i].body};
    amqp_channel_t ch = (amqp_channel_t)(RAWAMQP_CH + (long)i % r->o->channels);
    return amqp_basic_publish(c, ch, amqp_cstring_bytes(""), amqp_cstring_bytes(r->o->queue), 1, 0,
                              &p, body);
}

/* Wait until at most `limit` publishes are unconfirmed. 0, or -1 with err set. */
static int rr_settle(amqp_connection_state_t c, rr_pub *pb, size_t published, size_t limit,
                     char *err, size_t cap)
{
    int64_t deadline = clock_mono_ns() + RR_STALL_NS;
    while (published - rr_confirmed(pb) > limit) {
        if (rr_pub_frame(c, pb, RR_WAIT_US, err, cap) < 0)
            return -1;
        if (clock_mono_ns() > deadline) {
            snprintf(err, cap, "no confirm progress for 30 s (%zu of %zu)", rr_confirmed(pb),
                     published);
            return -1;
        }
        amqp_maybe_release_buffers(c);
    }
    return 0;
}

/* Publish every message, keeping at most --window unconfirmed; returns the ns when the last
 * confirm arrived, or -1. */
static int64_t rr_publish_all(amqp_connection_state_t c, rr_run *r, char *err, size_t cap)
{
    size_t n = r->msgs->n, limit = (size_t)r->o->window;
    rr_pub pb = {.nch = (int)r->o->channels};
    int64_t done_ns = -1;
    for (int i = 0; i < pb.nch; i++) {
        size_t ni = n / (size_t)pb.nch + ((size_t)i < n % (size_t)pb.nch);
        pb.k[i] = (rr_confirms){calloc(ni ? ni : 1, 1), ni, 0, 0};
        if (!pb.k[i].done) {
            snprintf(err, cap, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n && !atomic_load(&r->failed); i++) {
        if (rr_publish_one(c, r, i) != AMQP_STATUS_OK) {
            snprintf(err, cap, "basic.publish failed at message %zu", i);
            goto out;
        }
        if (i % RR_DRAIN_EACH == RR_DRAIN_EACH - 1) {
            int got;
            while ((got = rr_pub_frame(c, &pb, 0, err, cap)) == 1)
                ;
            if (got < 0)
                goto out;
            amqp_maybe_release_buffers(c);
        }
        if (rr_settle(c, &pb, i + 1, limit, err, cap) != 0)
            goto out;
    }
    if (rr_settle(c, &pb, n, 0, err, cap) == 0)
        done_ns = clock_mono_ns();
out:
    for (int i = 0; i < pb.nch; i++)
        free(pb.k[i].done);
    return done_ns;
}

/* One consumer: subscribe, meet the others at the barrier, ack each delivery on its own until
 * all n messages are in (counted across consumers). */
static void rr_consume_loop(amqp_connection_state_t c, rr_run *r)
{
    size_t n = r->msgs->n;
    while (atomic_load(&r->received) < n && !atomic_load(&r->failed)) {
        amqp_envelope_t env;
        struct timeval tv = {0, RR_WAIT_US};
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t rep = amqp_consume_message(c, &env, &tv, 0);
        if (rep.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            rep.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (rep.reply_type != AMQP_RESPONSE_NORMAL) {
            rr_fail(r, "consumer: connection error or unexpected frame");
            return;
        }
        int rc = amqp_basic_ack(c, RAWAMQP_CH, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
        if (rc != AMQP_STATUS_OK) {
            rr_fail(r, "consumer: basic.ack failed");
            return;
        }
        if (atomic_fetch_add(&r->received, 1) + 1 == n)
            atomic_store(&r->last_ack_ns, clock_mono_ns());
    }
}

static void *rr_consumer(void *arg)
{
    rr_run *r = arg;
    char err[256] = "";
    amqp_connection_state_t c = rawamqp_connect(r->o->url, err, sizeof err);
    if (c) {
        amqp_basic_qos(c, RAWAMQP_CH, 0, (uint16_t)r->o->prefetch, 0);
        if (rawamqp_check(c, "basic.qos", err, sizeof err) == 0) {
            amqp_basic_consume(c, RAWAMQP_CH, amqp_cstring_bytes(r->o->queue), amqp_empty_bytes, 0,
                               0, 0, amqp_empty_table);
            rawamqp_check(c, "basic.consume", err, sizeof err);
        }
    }
    if (err[0])
        rr_fail(r, err);
    pthread_barrier_wait(&r->ready);
    if (!err[0])
        rr_consume_loop(c, r);
    rawamqp_close(c);
    return NULL;
}

static void rr_usage(FILE *to, int code)
{
    fputs("usage: rawrate --amqp-url URL --schedule FILE [--entry NAME] [--count N]\n"
          "               [--consumers K] [--prefetch P] [--window W] [--queue NAME]\n"
          "               [--channels C]\n"
          "  Publishes one firing of the entry (default: the first; --count caps it) with\n"
          "  confirms, at most W unconfirmed (default 5000), to a quorum queue declared like\n"
          "  salvo.jobs (default salvo.bench.raw, deleted after), consumed by K connections\n"
          "  (default 2; 0: publish only) with prefetch P (default 1000) and one ack per\n"
          "  message. C channels (default 1) share the publishing, each in confirm mode.\n"
          "  Prints one JSON line; exit 0, 1 on a broker failure, 2 on bad usage.\n",
          to);
    exit(code);
}

static long rr_num(const char *opt, const char *v, long lo, long hi)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi) {
        fprintf(stderr, "rawrate: %s: '%s' is not a number in %ld-%ld\n", opt, v, lo, hi);
        exit(2);
    }
    return n;
}

static void rr_options(int argc, char **argv, rr_opts *o)
{
    static const struct option lo[] = {
        {"amqp-url", required_argument, NULL, 'u'},
        {"schedule", required_argument, NULL, 's'},
        {"entry", required_argument, NULL, 'e'},
        {"count", required_argument, NULL, 'n'},
        {"consumers", required_argument, NULL, 'k'},
        {"prefetch", required_argument, NULL, 'p'},
        {"window", required_argument, NULL, 'w'},
        {"queue", required_argument, NULL, 'q'},
        {"channels", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (rr_opts){NULL, NULL, NULL, "salvo.bench.raw", 0, 2, 1000, 5000, 1};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o->url = optarg;
            break;
        case 's':
            o->schedule = optarg;
            break;
        case 'e':
            o->entry = optarg;
            break;
        case 'q':
            o->queue = optarg;
            break;
        case 'n':
            o->count = rr_num("--count", optarg, 1, 10000000);
            break;
        case 'k':
            o->consumers = rr_num("--consumers", optarg, 0, RR_CONSUMERS);
            break;
        case 'c':
            o->channels = rr_num("--channels", optarg, 1, RR_CHANNELS);
            break;
        case 'p':
            o->prefetch = rr_num("--prefetch", optarg, 1, 65535);
            break;
        case 'w':
            o->window = rr_num("--window", optarg, 1, 10000000);
            break;
        case 'h':
            rr_usage(stdout, 0);
            break;
        default:
            rr_usage(stderr, 2);
        }
    }
    if (!o->url || !o->schedule || optind != argc)
        rr_usage(stderr, 2);
}

/* Put channel 1 (open) and channels 2..n (opened here) in confirm mode. 0 or -1 with err. */
static int rr_channels(amqp_connection_state_t c, long n, char *err, size_t cap)
{
    for (long i = 0; i < n; i++) {
        amqp_channel_t ch = (amqp_channel_t)(RAWAMQP_CH + i);
        if (i > 0) {
            amqp_channel_open(c, ch);
            if (rawamqp_check(c, "channel.open", err, cap) != 0)
                return -1;
        }
        amqp_confirm_select(c, ch);
        if (rawamqp_check(c, "confirm.select", err, cap) != 0)
            return -1;
    }
    return 0;
}

/* Start the consumers, publish once they are subscribed, wait for the last ack. */
static int rr_measure(rr_run *r, amqp_connection_state_t pub)
{
    pthread_t th[RR_CONSUMERS];
    char err[256] = "";
    long k = r->o->consumers, started = 0;
    pthread_barrier_init(&r->ready, NULL, (unsigned)k + 1);
    for (; started < k; started++) {
        if (pthread_create(&th[started], NULL, rr_consumer, r) != 0)
            break;
    }
    if (started < k) { /* the barrier can never fill: the run is over before it began */
        fprintf(stderr, "rawrate: cannot start consumer threads\n");
        exit(1);
    }
    pthread_barrier_wait(&r->ready);
    int64_t t0 = clock_mono_ns(), confirmed = -1;
    if (!atomic_load(&r->failed)) {
        confirmed = rr_publish_all(pub, r, err, sizeof err);
        if (confirmed < 0)
            rr_fail(r, err);
    }
    for (long i = 0; i < k; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r->ready);
    if (atomic_load(&r->failed)) {
        fprintf(stderr, "rawrate: %s\n", r->err);
        return 1;
    }
    double pub_s = (double)(confirmed - t0) / 1e9;
    double all_s = k ? (double)(atomic_load(&r->last_ack_ns) - t0) / 1e9 : pub_s;
    size_t n = r->msgs->n;
    printf("{\"messages\": %zu, \"body_bytes\": %.1f, \"consumers\": %ld, \"prefetch\": %ld, "
           "\"channels\": %ld, \"publish_s\": %.3f, \"publish_msgs_s\": %.1f, "
           "\"seconds\": %.3f, \"msgs_s\": %.1f}\n",
           n, (double)r->msgs->bytes / (double)n, k, r->o->prefetch, r->o->channels, pub_s,
           (double)n / pub_s, all_s, (double)n / all_s);
    return 0;
}

int main(int argc, char **argv)
{
    rr_opts o;
    rawmsg_set msgs;
    char err[512] = "";
    rr_options(argc, argv, &o);
    if (rawmsg_build(o.schedule, o.entry, (size_t)o.count, &msgs, err, sizeof err) != 0) {
        fprintf(stderr, "rawrate: %s\n", err);
        return 2;
    }
    rr_run r = {.o = &o, .msgs = &msgs};
    pthread_mutex_init(&r.err_lock, NULL);
    int code = 1;
    amqp_connection_state_t pub = rawamqp_connect(o.url, err, sizeof err);
    if (pub && rawamqp_declare(pub, o.queue, err, sizeof err) == 0) {
        if (rr_channels(pub, o.channels, err, sizeof err) == 0)
            code = rr_measure(&r, pub);
        if (code == 0 && rawamqp_delete(pub, o.queue, err, sizeof err) != 0)
            code = 1;
    }
    if (err[0])
        fprintf(stderr, "rawrate: %s\n", err);
    rawamqp_close(pub);
    rawmsg_fini(&msgs);
    pthread_mutex_destroy(&r.err_lock);
    return code;
}
