/* salvo-testpub: test-only publisher. Encodes N jobs (or raw bytes, for poison messages) and
 * publishes them to salvo.jobs with confirms, printing each firing id on stdout. The worker's
 * integration tests and the benchmark use it where the producer's schedule would be a detour.
 * Like the producer it signs each job when a key is configured (SALVO_SIGNING_KEY_FILE or
 * SALVO_SIGNING_KEYS) and sets user_id to its login; the forgery tests turn either off or
 * falsify it (--unsigned, --forge-key, --tamper-url, --user-id, --no-user-id). */
#include "err.h"
#include "job.h"
#include "jobwire.h"
#include "mq.h"
#include "sign.h"
#include "topology.h"

#include "clock.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_REPEAT 64 /* --header, --ctx, --ok, --cmd-arg */

typedef struct opts {
    const char *url, *amqp, *method, *body, *schedule, *raw;
    const char *forge_kid, *tamper_url, *user_id; /* forgery tests */
    bool unsigned_, no_user_id;
    const char *headers[MAX_REPEAT], *ctx[MAX_REPEAT], *argv[MAX_REPEAT];
    size_t nheaders, nctx, nargv, nok;
    uint16_t ok[MAX_REPEAT];
    long count, attempts, attempt, timeout_ms, late_ms;
    int64_t due_ms;
    bool redirects;
} opts;

static void usage(void)
{
    fputs("usage: salvo-testpub --amqp-url URL [--count N] [--url U] [--method M] [--body B]\n"
          "         [--header 'K: V']... [--ctx K=V]... [--ok STATUS]... [--schedule NAME]\n"
          "         [--due-in-ms MS | --due-at-ms MS] [--attempts N] [--attempt N]\n"
          "         [--timeout-ms N] [--late-ms N] [--redirects] [--cmd ARG]... [--raw FILE]\n"
          "         [--unsigned | --forge-key KID] [--tamper-url U] [--user-id U | --no-user-id]\n"
          "--forge-key signs with a fresh random key named KID (unknown to workers);\n"
          "--tamper-url signs the job with --url, then publishes it with U instead.\n"
          "Every job gets context {\"n\": <index>} plus the --ctx pairs; ids go to stdout.\n",
          stderr);
    exit(2);
}

static const struct option parse_longopts[] = {
    {"amqp-url", 1, 0, 'a'},  {"count", 1, 0, 'n'},      {"url", 1, 0, 'u'},
    {"method", 1, 0, 'm'},    {"body", 1, 0, 'b'},       {"header", 1, 0, 'H'},
    {"ctx", 1, 0, 'c'},       {"ok", 1, 0, 'k'},         {"schedule", 1, 0, 's'},
    {"due-in-ms", 1, 0, 'i'}, {"due-at-ms", 1, 0, 'd'},  {"attempts", 1, 0, 'A'},
    {"attempt", 1, 0, 'N'},   {"timeout-ms", 1, 0, 't'}, {"late-ms", 1, 0, 'l'},
    {"redirects", 0, 0, 'r'}, {"cmd", 1, 0, 'C'},        {"raw", 1, 0, 'R'},
    {"unsigned", 0, 0, 'U'},  {"forge-key", 1, 0, 'F'},  {"tamper-url", 1, 0, 'T'},
    {"user-id", 1, 0, 'I'},   {"no-user-id", 0, 0, 'Z'}, {0, 0, 0, 0}};

/* Options that repeat, collected into arrays. Returns false for any other option. */
static bool parse_list(int c, const char *arg, opts *o)
{
    if (c == 'H' && o->nheaders < MAX_REPEAT)
        o->headers[o->nheaders++] = arg;
    else if (c == 'c' && o->nctx < MAX_REPEAT)
        o->ctx[o->nctx++] = arg;
    else if (c == 'k' && o->nok < MAX_REPEAT)
        o->ok[o->nok++] = (uint16_t)atoi(arg);
    else if (c == 'C' && o->nargv < MAX_REPEAT)
        o->argv[o->nargv++] = arg;
    else
        return c == 'H' || c == 'c' || c == 'k' || c == 'C'; /* full: ignore the extra */
    return true;
}

/* Options with one value. Returns false for an unknown option. */
static bool parse_one(int c, const char *arg, opts *o)
{
    int64_t now_ms = clock_real_ns() / CLOCK_NS_PER_MS;
    switch (c) {
    case 'a':
        o->amqp = arg;
        break;
    case 'n':
        o->count = atol(arg);
        break;
    case 'u':
        o->url = arg;
        break;
    case 'm':
        o->method = arg;
        break;
    case 'b':
        o->body = arg;
        break;
    case 's':
        o->schedule = arg;
        break;
    case 'i':
        o->due_ms = now_ms + atoll(arg);
        break;
    case 'd':
        o->due_ms = atoll(arg);
        break;
    case 'A':
        o->attempts = atol(arg);
        break;
    case 'N':
        o->attempt = atol(arg);
        break;
    case 't':
        o->timeout_ms = atol(arg);
        break;
    case 'l':
        o->late_ms = atol(arg);
        break;
    case 'r':
        o->redirects = true;
        break;
    case 'R':
        o->raw = arg;
        break;
    case 'U':
        o->unsigned_ = true;
        break;
    case 'F':
        o->forge_kid = arg;
        break;
    case 'T':
        o->tamper_url = arg;
        break;
    case 'I':
        o->user_id = arg;
        break;
    case 'Z':
        o->no_user_id = true;
        break;
    default:
        return false;
    }
    return true;
}

static void parse(int argc, char **argv, opts *o)
{
    *o = (opts){.method = "GET",
                .schedule = "testpub",
                .count = 1,
                .attempts = 4,
                .attempt = 1,
                .timeout_ms = 30000,
                .due_ms = clock_real_ns() / CLOCK_NS_PER_MS};
    int c;
    for (c = getopt_long(argc, argv, "", parse_longopts, NULL); c != -1;
         c = getopt_long(argc, argv, "", parse_longopts, NULL)) {
        if (!parse_list(c, optarg, o) && !parse_one(c, optarg, o))
            usage();
    }
    if (!o->amqp || (!o->url && !o->nargv && !o->raw) || o->count < 1)
        usage();
}

/* "Name: value" into a job_kv, both malloc'd. */
static void split_header(const char *h, job_kv *kv)
{
    const char *colon = strchr(h, ':');
    size_t n = colon ? (size_t)(colon - h) : strlen(h);
    kv->name = strndup(h, n);
    const char *v = colon ? colon + 1 : "";
    while (*v == ' ')
        v++;
    kv->value = strdup(v);
}

static void fill_http(const opts *o, job *j)
{
    j->kind = JOB_HTTP;
    j->http.method = strdup(o->method);
    j->http.url = strdup(o->url);
    j->http.connect_timeout_ms = JOB_DEFAULT_CONNECT_TIMEOUT_MS;
    j->http.timeout_ms = (uint32_t)o->timeout_ms;
    j->http.follow_redirects = o->redirects;
    if (o->body) {
        j->http.body = strdup(o->body);
        j->http.body_len = strlen(o->body);
    }
    j->http.headers = calloc(o->nheaders + 1, sizeof *j->http.headers);
    for (size_t i = 0; i < o->nheaders; i++)
        split_header(o->headers[i], &j->http.headers[i]);
    j->http.nheaders = o->nheaders;
    j->http.ok_status = calloc(o->nok + 1, sizeof *j->http.ok_status);
    memcpy(j->http.ok_status, o->ok, o->nok * sizeof *o->ok);
    j->http.nok_status = o->nok;
}

static void fill_cmd(const opts *o, job *j)
{
    j->kind = JOB_COMMAND;
    j->cmd.argv = calloc(o->nargv + 1, sizeof *j->cmd.argv);
    for (size_t i = 0; i < o->nargv; i++)
        j->cmd.argv[i] = strdup(o->argv[i]);
    j->cmd.argc = o->nargv;
    j->cmd.timeout_ms = (uint32_t)o->timeout_ms;
}

static void fill_context(const opts *o, long index, job *j)
{
    jval v;
    jval_set_int(&v, index);
    jval_map_put(&j->context, "n", &v);
    for (size_t i = 0; i < o->nctx; i++) {
        const char *eq = strchr(o->ctx[i], '=');
        if (!eq)
            continue;
        char *key = strndup(o->ctx[i], (size_t)(eq - o->ctx[i]));
        jval_set_str(&v, eq + 1, strlen(eq + 1));
        jval_map_put(&j->context, key, &v);
        free(key);
    }
}

/* Encode job number index; returns the body (caller frees) and writes its id. */
static char *build(const opts *o, long index, size_t *len, char *id, size_t cap)
{
    job j;
    job_init(&j);
    job_format_id(o->schedule, o->due_ms, (uint32_t)index, id, cap);
    j.id = strdup(id);
    j.schedule = strdup(o->schedule);
    j.index = (uint32_t)index;
    j.due_ms = o->due_ms;
    j.attempt = (uint32_t)o->attempt;
    j.max_attempts = (uint32_t)o->attempts;
    j.max_lateness_ms = o->late_ms;
    if (o->nargv)
        fill_cmd(o, &j);
    else
        fill_http(o, &j);
    fill_context(o, index, &j);
    char reason[256];
    char *body = NULL;
    if (job_validate(&j, reason, sizeof reason) != ERR_OK)
        fprintf(stderr, "salvo-testpub: job does not validate: %s\n", reason);
    else {
        int rc = jobwire_encode(&j, &body, len);
        if (rc != ERR_OK)
            fprintf(stderr, "salvo-testpub: encode failed: %s\n", err_str(rc));
    }
    job_fini(&j);
    return body;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (size_t r = buf ? fread(buf, 1, cap, f) : 0; r > 0; r = fread(buf + n, 1, cap - n, f)) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Wait until every publish up to last_seq is confirmed; false on nack, return or close. */
static bool wait_confirms(mq *m, uint64_t last_seq)
{
    uint64_t acked = 0;
    int64_t deadline = clock_mono_ns() + 30 * CLOCK_NS_PER_SEC;
    while (acked < last_seq && clock_mono_ns() < deadline) {
        mq_event ev;
        mq_poll(m, 500, -1, &ev);
        mq_ev_kind k = ev.kind;
        if (k == MQ_EV_ACK && ev.tag > acked)
            acked = ev.tag;
        mq_event_fini(&ev);
        if (k == MQ_EV_NACK || k == MQ_EV_RETURN || k == MQ_EV_CLOSED) {
            fprintf(stderr, "salvo-testpub: publish failed (event %d)\n", (int)k);
            return false;
        }
    }
    return acked >= last_seq;
}

/* The ring to sign with: none (--unsigned, or no key configured), a fresh random key no worker
 * knows (--forge-key), or the configured one. Exits 1 when a key cannot be loaded. */
static sign_ring *load_ring(const opts *o)
{
    char err[512] = "", dir[] = "/tmp/salvo-testpub-XXXXXX", path[64];
    sign_ring *r = NULL;
    int rc = ERR_NOTFOUND;
    if (o->unsigned_)
        return NULL;
    if (o->forge_kid && mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/key", dir);
        rc = sign_keygen(path, o->forge_kid, err, sizeof err);
        if (rc == ERR_OK)
            rc = sign_ring_load(path, &r, err, sizeof err);
        unlink(path);
        rmdir(dir);
    } else if (!o->forge_kid) {
        rc = sign_ring_from_env(&r, err, sizeof err);
        if (rc == ERR_NOTFOUND)
            return NULL;
    }
    if (rc != ERR_OK) {
        fprintf(stderr, "salvo-testpub: signing key: %s\n", err);
        exit(1);
    }
    return r;
}

/* The body to publish for job index: as signed, or with --tamper-url the same job pointing
 * elsewhere (a forger's edit of a signed message). */
static char *build_published(const opts *o, long index, const char *signed_body, size_t len,
                             size_t *out_len)
{
    if (!o->tamper_url) {
        *out_len = len;
        char *copy = malloc(len ? len : 1);
        if (copy)
            memcpy(copy, signed_body, len);
        return copy;
    }
    opts t = *o;
    char id[600];
    t.url = o->tamper_url;
    return build(&t, index, out_len, id, sizeof id);
}

/* Publish one job (or the raw bytes): headers x-salvo-due-ms and, with a ring, the signature
 * over the body as built; the body sent may be a tampered one. */
static int publish_one(mq *m, const opts *o, const sign_ring *ring, long i, uint64_t *seq)
{
    char id[600] = "raw", kid[SIGN_KID_MAX + 1], sig[SIGN_HEX_LEN + 1];
    size_t len = 0, sent_len = 0;
    char *body = o->raw ? read_file(o->raw, &len) : build(o, i, &len, id, sizeof id);
    char *sent = body ? build_published(o, i, body, len, &sent_len) : NULL;
    mq_hdr hdrs[3] = {{SIGN_HDR_DUE, NULL, o->due_ms}};
    size_t nh = 1;
    int rc = sent ? ERR_OK : ERR_NOMEM;
    if (rc == ERR_OK && ring)
        rc = sign_compute(ring, kid, id, o->due_ms, body, len, sig);
    if (rc == ERR_OK && ring) {
        hdrs[nh++] = (mq_hdr){SIGN_HDR_KID, kid, 0};
        hdrs[nh++] = (mq_hdr){SIGN_HDR_SIG, sig, 0};
    }
    mq_msg msg = {.exchange = TOPO_JOBS_EXCHANGE,
                  .routing_key = TOPO_JOBS_KEY,
                  .body = sent,
                  .len = sent_len,
                  .message_id = id,
                  .content_type = "application/msgpack",
                  .user_id = o->no_user_id ? NULL
                             : o->user_id  ? o->user_id
                                           : mq_user(m),
                  .headers = hdrs,
                  .nheaders = nh,
                  .mandatory = true,
                  .persistent = true};
    if (rc == ERR_OK && mq_publish(m, MQ_CH_MAIN, &msg, seq) != ERR_OK)
        rc = ERR_MQ_CLOSED;
    if (rc == ERR_OK)
        printf("%s\n", id);
    free(body);
    free(sent);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    sign_ring *ring = load_ring(&o);
    mq_global_init();
    mq_opts mo = {.urls = o.amqp, .conn_name = "salvo-testpub"};
    size_t next = 0;
    mq *m = NULL;
    char err[512];
    if (mq_connect(&mo, &next, &m, err, sizeof err) != ERR_OK ||
        mq_declare_topology(m, err, sizeof err) != ERR_OK) {
        fprintf(stderr, "salvo-testpub: %s\n", err);
        mq_free(m);
        sign_ring_free(ring);
        return 1;
    }
    mq_confirm_select(m, MQ_CH_MAIN);
    uint64_t seq = 0;
    int code = 0;
    for (long i = 0; i < o.count && code == 0; i++)
        code = publish_one(m, &o, ring, i, &seq) == ERR_OK ? 0 : 1;
    if (code == 0 && !wait_confirms(m, seq))
        code = 1;
    fflush(stdout);
    mq_free(m);
    sign_ring_free(ring);
    return code;
}
