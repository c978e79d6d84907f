/* gen_corpus: writes fuzz_message's seed corpus into a directory: valid jobs encoded by
 * jobwire_encode (http, command, rich context) in every signing mode, and hostile bodies the
 * decoder must refuse (allocation bombs, deep nesting, reserved bytes, truncation, bad schema).
 * Usage: gen_corpus DIR. Each file is the fuzz header (see fuzz_message.c) plus the body. */
#include "err.h"
#include "job.h"
#include "jobwire.h"
#include "jval.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUE INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */

static const char *gen_outdir;

/* mode 0..3 as in fuzz_message.c; for mode 2 a key id and a (wrong) signature are embedded. */
static void gen_emit(const char *name, int mode, const char *id, const void *body, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", gen_outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint8_t head[2 + 255 + 8];
    size_t n = strlen(id);
    head[0] = (uint8_t)mode, head[1] = (uint8_t)n;
    memcpy(head + 2, id, n);
    for (int i = 0; i < 8; i++)
        head[2 + n + (size_t)i] = (uint8_t)((uint64_t)DUE >> (56 - 8 * i));
    fwrite(head, 1, 2 + n + 8, f);
    if (mode == 2) {
        static const char sig[] =
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        fputc(3, f);
        fwrite("fz1", 1, 3, f);
        fwrite(sig, 1, 64, f);
    }
    fwrite(body, 1, len, f);
    fclose(f);
}

static char *gen_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

static void gen_base_job(job *j, const char *sched, job_kind kind)
{
    char id[JOB_ID_MAX + 1];
    job_init(j);
    job_format_id(sched, DUE, 0, id, sizeof id);
    j->id = gen_strdup(id);
    j->schedule = gen_strdup(sched);
    j->due_ms = DUE;
    j->attempt = 1;
    j->max_attempts = JOB_DEFAULT_MAX_ATTEMPTS;
    j->kind = kind;
}

static void gen_http_job(job *j, int rich)
{
    gen_base_job(j, rich ? "orders.sync" : "ping", JOB_HTTP);
    j->http.method = gen_strdup(rich ? "POST" : "GET");
    j->http.url =
        gen_strdup(rich ? "https://api.example.com:8443/v1/sync?full=1" : "http://127.0.0.1/");
    j->http.connect_timeout_ms = JOB_DEFAULT_CONNECT_TIMEOUT_MS;
    j->http.timeout_ms = JOB_DEFAULT_TIMEOUT_MS;
    if (!rich)
        return;
    j->index = 3, j->attempt = 2, j->max_attempts = 5, j->max_lateness_ms = 30000;
    j->http.nheaders = 2;
    j->http.headers = calloc(2, sizeof *j->http.headers);
    j->http.headers[0] = (job_kv){gen_strdup("Content-Type"), gen_strdup("application/json")};
    j->http.headers[1] = (job_kv){gen_strdup("X-Tenant"), gen_strdup("acme")};
    static const char body[] = "{\"full\":true}\0binary";
    j->http.body = malloc(sizeof body);
    memcpy(j->http.body, body, sizeof body);
    j->http.body_len = sizeof body - 1;
    j->http.nok_status = 2;
    j->http.ok_status = calloc(2, sizeof *j->http.ok_status);
    j->http.ok_status[0] = 200, j->http.ok_status[1] = 409;
    j->http.follow_redirects = true;
}

static void gen_cmd_job(job *j)
{
    gen_base_job(j, "backup", JOB_COMMAND);
    j->cmd.argc = 3;
    j->cmd.argv = calloc(3, sizeof *j->cmd.argv);
    j->cmd.argv[0] = gen_strdup("/usr/bin/backup");
    j->cmd.argv[1] = gen_strdup("--full");
    j->cmd.argv[2] = gen_strdup("");
    j->cmd.nenv = 1;
    j->cmd.env = calloc(1, sizeof *j->cmd.env);
    j->cmd.env[0] = (job_kv){gen_strdup("TZ"), gen_strdup("Europe/Paris")};
    j->cmd.timeout_ms = 60000;
}

/* A context with every value type and nesting down to the allowed depth. */
static void gen_rich_context(job *j)
{
    jval v, inner, arr;
    jval_set_str(&v, "store-42", 8);
    jval_map_put(&j->context, "store", &v);
    jval_set_int(&v, -9007199254740993LL);
    jval_map_put(&j->context, "big", &v);
    jval_set_float(&v, 0.1);
    jval_map_put(&j->context, "ratio", &v);
    jval_set_bool(&v, true);
    jval_map_put(&j->context, "flag", &v);
    jval_set_nil(&v);
    jval_map_put(&j->context, "none", &v);
    jval_set_array(&arr);
    for (int i = 0; i < 3; i++) {
        jval_set_int(&v, i);
        jval_array_push(&arr, &v);
    }
    jval_set_map(&inner);
    jval_map_put(&inner, "items", &arr);
    for (int depth = 0; depth < 4; depth++) {
        jval outer;
        jval_set_map(&outer);
        jval_map_put(&outer, "next", &inner);
        inner = outer;
    }
    jval_map_put(&j->context, "deep", &inner);
}

static void gen_emit_job(const char *name, job *j, int modes)
{
    char *buf = NULL, file[128];
    size_t len = 0;
    char reason[256] = "";
    int rc = job_validate(j, reason, sizeof reason);
    if (rc == ERR_OK)
        rc = jobwire_encode(j, &buf, &len);
    if (rc != ERR_OK) {
        fprintf(stderr, "gen_corpus: %s: %s %s\n", name, err_str(rc), reason);
        exit(1);
    }
    for (int mode = 0; mode < modes; mode++) {
        snprintf(file, sizeof file, "valid-%s-mode%d", name, mode);
        gen_emit(file, mode, j->id, buf, len);
    }
    /* The same bytes cut short and with one byte too many. */
    snprintf(file, sizeof file, "hostile-%s-truncated", name);
    gen_emit(file, 0, j->id, buf, len / 2);
    buf = realloc(buf, len + 1);
    buf[len] = (char)0xc0;
    snprintf(file, sizeof file, "hostile-%s-trailing", name);
    gen_emit(file, 0, j->id, buf, len + 1);
    free(buf);
    job_fini(j);
}

static void gen_emit_hostile(void)
{
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
    } rows[] = {
        {"map32-bomb", "\xdf\x08\x00\x00\x00", 5},   /* map of 134M pairs, 5 bytes */
        {"array32-bomb", "\xdd\x7f\xff\xff\xff", 5}, /* msgpack-c: NOMEM */
        {"nested-bombs", "\x91\xdd\x08\x00\x00\x00\xdd\x08\x00\x00\x00", 11},
        {"reserved-c1", "\x81\xa1v\xc1", 4},
        {"two-objects", "\xc0\xc0", 2},
        {"not-a-map", "\x93\x01\x02\x03", 4},
        {"str32-huge", "\xdb\xff\xff\xff\xff", 5},
        {"ext", "\x81\xa1v\xd4\x01\x01", 6},
        {"version-2", "\x81\xa1v\x02", 4},
        {"version-0", "\x81\xa1v\x00", 4},
        {"version-neg", "\x81\xa1v\xff", 4},
        {"empty", "", 0},
        {"dup-keys", "\x82\xa1v\x01\xa1v\x01", 7},
        {"key-not-str", "\x81\x01\x01", 3},
        /* An empty key read first: msgpack-c hands out a NULL pointer for it. */
        {"empty-key-first", "\x82\xa0\xa0\xa1v\x01", 6},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char file[128];
        snprintf(file, sizeof file, "hostile-%s", rows[i].name);
        gen_emit(file, 0, "x@20260101T000000Z#0", rows[i].bytes, rows[i].len);
    }
    /* 33 nested arrays: one past msgpack-c's fixed stack, far past our depth 8. */
    char deep[34];
    memset(deep, 0x91, 33);
    deep[33] = (char)0xc0;
    gen_emit("hostile-depth-33", 0, "x", deep, sizeof deep);
    gen_emit("forged-bad-sig", 2, "x", "\x81\xa1v\x01", 4);
    gen_emit("forged-missing", 3, "x", "\x81\xa1v\x01", 4);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    gen_outdir = argv[1];
    job j;
    gen_http_job(&j, 0);
    gen_emit_job("http-get", &j, 4);
    gen_http_job(&j, 1);
    gen_rich_context(&j);
    gen_emit_job("http-rich", &j, 2);
    gen_cmd_job(&j);
    gen_emit_job("cmd", &j, 2);
    gen_emit_hostile();
    return 0;
}
