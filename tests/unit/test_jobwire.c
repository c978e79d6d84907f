/* test_jobwire: the byte side of the wire: a table of hostile bodies, each with the allocations
 * its rejection cost (none when the pre-validator turns it away), every truncation of a valid
 * body, the pinned byte layout, and the sample corpus. Round trips are in test_jobmap.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "jobwire.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation accounting ----------------------------------------------------------------- */

/* Every allocation in the process (msgpack-c's included) is counted while `on` is set: through
 * the sanitizer allocator's hooks in sanitizer builds, else by replacing malloc, which glibc
 * supports (the __libc_ entry points are its own allocator). */
static struct {
    int on;
    size_t count, bytes, biggest;
} acct;

static void acct_note(size_t n)
{
    if (!acct.on)
        return;
    acct.count++;
    acct.bytes += n;
    acct.biggest = n > acct.biggest ? n : acct.biggest;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ACCT_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ACCT_HOOKS 1
#endif
#endif

#ifdef ACCT_HOOKS
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));
static void acct_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    acct_note(n);
}
static void acct_free_hook(const volatile void *p)
{
    (void)p;
}
static void acct_install(void)
{
    __sanitizer_install_malloc_and_free_hooks(acct_malloc_hook, acct_free_hook);
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *malloc(size_t n)
{
    acct_note(n);
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size)
{
    acct_note(size && n > SIZE_MAX / size ? SIZE_MAX : n * size);
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n)
{
    acct_note(n);
    return __libc_realloc(p, n);
}
void free(void *p)
{
    __libc_free(p);
}
static void acct_install(void)
{
}
#endif

static void acct_start(void)
{
    memset(&acct, 0, sizeof acct);
    acct.on = 1;
}

/* ---- an independent msgpack writer (not msgpack-c) ---------------------------------------- */

typedef struct wb {
    unsigned char *p;
    size_t len, cap;
} wb;

static void wb_put(wb *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* Hex pairs, spaces ignored. */
static void wb_hex(wb *b, const char *hex)
{
    for (const char *p = hex; *p; p++) {
        unsigned v;
        if (*p == ' ')
            continue;
        assert_int_equal(sscanf(p++, "%2x", &v), 1);
        unsigned char c = (unsigned char)v;
        wb_put(b, &c, 1);
    }
}

/* A type byte and a big-endian length of `bytes` bytes. */
static void wb_head(wb *b, unsigned type, size_t n, int bytes)
{
    unsigned char h[5] = {(unsigned char)type};
    for (int i = 0; i < bytes; i++)
        h[1 + i] = (unsigned char)(n >> (8 * (bytes - 1 - i)));
    wb_put(b, h, 1 + (size_t)bytes);
}

static void wb_strn(wb *b, const char *s, size_t n)
{
    if (n < 32)
        wb_head(b, 0xa0 | (unsigned)n, 0, 0);
    else
        wb_head(b, 0xda, n, 2); /* str16: our strings stay under 64 KiB */
    wb_put(b, s, n);
}

static void wb_repeat(wb *b, const char *hex, size_t times)
{
    for (size_t i = 0; i < times; i++)
        wb_hex(b, hex);
}

/* ---- the base messages, and mutations of them ---------------------------------------------- */

/* A value: hex bytes, or a str when it starts with a double quote ("\"POST"). */
static void wb_value(wb *b, const char *v)
{
    if (v[0] == '"')
        wb_strn(b, v + 1, strlen(v + 1));
    else
        wb_hex(b, v);
}

/* One row per key, in write order; a NULL value opens a section whose keys follow it. */
typedef struct field {
    const char *path, *value;
} field;

static const field http_msg[] = {
    {"v", "01"},
    {"id", "\"nightly@20261125T113000Z#0"},
    {"sched", "\"nightly"},
    {"idx", "00"},
    {"due", "cf 000001a212783ec0"}, /* 1795606200000 */
    {"att", "01"},
    {"max_att", "03"},
    {"late", "00"},
    {"kind", "\"http"},
    {"http", NULL},
    {"http.m", "\"POST"},
    {"http.url", "\"https://example.com/hook"},
    {"http.h", "91 92 ac 436f6e74656e742d54797065 b0 6170706c69636174696f6e2f6a736f6e"},
    {"http.body", "c4 07 7b2261223a317d"}, /* {"a":1} as bin */
    {"http.cto", "cd 03e8"},
    {"http.to", "cd 1388"},
    {"http.ok", "92 ccc8 ccc9"}, /* [200, 201] */
    {"http.redir", "c2"},
    {"ctx", "82 a6 74656e616e74 a4 61636d65 a1 6e 93 01 cb 3ff8000000000000 c0"},
};

static const field cmd_msg[] = {
    {"v", "01"},
    {"id", "\"cleanup@20261125T113000Z#3"},
    {"sched", "\"cleanup"},
    {"idx", "03"},
    {"due", "cf 000001a212783ec0"},
    {"att", "01"},
    {"max_att", "01"},
    {"kind", "\"cmd"},
    {"cmd", NULL},
    {"cmd.argv", "92 a9 2f62696e2f6563686f a2 6869"}, /* ["/bin/echo", "hi"] */
    {"cmd.env", "91 92 a4 4c414e47 a1 43"},           /* [["LANG", "C"]] */
    {"cmd.to", "cd 03e8"},
};

/* Replace the value at `path` (with value, or what gen writes), drop the key (both NULL), or
 * with `add` append path's last part as one more key of its map. */
typedef struct mut {
    const char *path, *value;
    void (*gen)(wb *b);
    int add;
} mut;

#define NMUT 2

static const mut *find_mut(const mut *m, const char *path)
{
    for (int i = 0; i < NMUT; i++) {
        if (m[i].path && !m[i].add && strcmp(m[i].path, path) == 0)
            return &m[i];
    }
    return NULL;
}

/* Keys the mutations add to the map whose keys start with `prefix`. */
static unsigned extras(wb *b, const mut *m, const char *prefix)
{
    unsigned n = 0;
    for (int i = 0; i < NMUT; i++) {
        const char *dot = m[i].add ? strrchr(m[i].path, '.') : NULL;
        size_t plen = dot ? (size_t)(dot - m[i].path) + 1 : 0;
        if (!m[i].add || strlen(prefix) != plen || strncmp(m[i].path, prefix, plen) != 0)
            continue;
        wb_strn(b, m[i].path + plen, strlen(m[i].path + plen));
        wb_value(b, m[i].value);
        n++;
    }
    return n;
}

/* Write the map of rows[*i..] under `prefix` as a map16, its count patched in at the end. */
static void build_map(wb *b, const field *rows, size_t n, size_t *i, const char *prefix,
                      const mut *m)
{
    size_t plen = strlen(prefix), at = b->len + 1;
    unsigned count = 0;
    wb_hex(b, "de 0000");
    while (*i < n && strncmp(rows[*i].path, prefix, plen) == 0) {
        const field *f = &rows[(*i)++];
        const mut *hit = find_mut(m, f->path);
        char sub[32];
        snprintf(sub, sizeof sub, "%s.", f->path);
        if (!hit || hit->value || hit->gen) {
            wb_strn(b, f->path + plen, strlen(f->path + plen));
            count++;
        }
        if (hit && hit->gen)
            hit->gen(b);
        else if (hit && hit->value)
            wb_value(b, hit->value);
        else if (!hit && f->value)
            wb_value(b, f->value);
        else if (!hit)
            build_map(b, rows, n, i, sub, m);
        while (*i < n && strncmp(rows[*i].path, sub, strlen(sub)) == 0)
            (*i)++; /* a replaced or dropped section's keys */
    }
    count += extras(b, m, prefix);
    b->p[at] = (unsigned char)(count >> 8);
    b->p[at + 1] = (unsigned char)count;
}

static void msg_build(wb *b, int cmd, const mut *m)
{
    size_t i = 0,
           n = cmd ? sizeof cmd_msg / sizeof cmd_msg[0] : sizeof http_msg / sizeof http_msg[0];
    build_map(b, cmd ? cmd_msg : http_msg, n, &i, "", m);
}

/* ---- generated inputs ---------------------------------------------------------------------- */

static void g_depth33(wb *b)
{
    wb_repeat(b, "91", 33);
    wb_hex(b, "c0");
}
static void g_objects_one(wb *b) /* one array declaring 20001 elements, all present */
{
    wb_head(b, 0xdc, JOBWIRE_MAX_OBJECTS + 1, 2);
    wb_repeat(b, "c0", JOBWIRE_MAX_OBJECTS + 1);
}
static void g_objects_sum(wb *b) /* each array fits the budget, the two together do not */
{
    wb_hex(b, "92");
    for (int i = 0; i < 2; i++) {
        wb_head(b, 0xdc, 15000, 2);
        wb_repeat(b, "c0", 15000);
    }
}
static void g_url_8193(wb *b)
{
    char u[JOB_URL_MAX + 1];
    memset(u, 'a', sizeof u);
    memcpy(u, "https://e.com/", 14);
    wb_strn(b, u, sizeof u);
}
static void g_ctx_f32(wb *b) /* {"f": [1.5f x 12000]}: 60 kB here, 108 kB as float64 */
{
    wb_hex(b, "81 a1 66 dc 2ee0");
    wb_repeat(b, "ca 3fc00000", 12000);
}
static void g_ctx_nils(wb *b) /* fills the http message, "late" left out, to 20000 objects */
{
    wb_hex(b, "81 a1 6e");
    wb_head(b, 0xdc, JOBWIRE_MAX_OBJECTS - 44, 2);
    wb_repeat(b, "c0", JOBWIRE_MAX_OBJECTS - 44);
}
static void g_bin(wb *b, size_t n)
{
    char *body = calloc(1, n);
    wb_head(b, 0xc6, n, 4); /* bin32 */
    wb_put(b, body, n);
    free(body);
}
static void g_body_max(wb *b) /* the largest valid body */
{
    g_bin(b, JOB_BODY_MAX);
}
static void g_body_over(wb *b) /* one byte over, still well under the message cap */
{
    g_bin(b, JOB_BODY_MAX + 1);
}
static void g_body_huge(wb *b) /* makes the whole message larger than 256 KiB */
{
    g_bin(b, JOBWIRE_MAX_BYTES);
}

/* ---- the table ----------------------------------------------------------------------------- */

typedef struct wcase {
    const char *name;
    const char *raw;    /* the whole body as hex ("" is empty input) ... */
    void (*gen)(wb *b); /* ... or as gen writes it; with neither: a base message with m */
    int cmd;            /* which base message: 0 http, 1 command */
    mut m[NMUT];
    const char *tail; /* hex appended after the message */
    int code;
    const char *want; /* substring of the reason, class included */
} wcase;

/* clang-format off */
#define RAW(name, hex, code, want)       {name, hex, NULL, 0, {{0}}, NULL, code, want}
#define GEN(name, fn, code, want)        {name, NULL, fn, 0, {{0}}, NULL, code, want}
#define TAIL(name, cmd, hex, code, want) {name, NULL, NULL, cmd, {{0}}, hex, code, want}
#define SET(name, cmd, path, v, code, w) {name, NULL, NULL, cmd, {{path, v, NULL, 0}}, NULL, code, w}
#define ADD(name, cmd, path, v, code, w) {name, NULL, NULL, cmd, {{path, v, NULL, 1}}, NULL, code, w}
#define SETGEN(name, path, fn, code, w)  {name, NULL, NULL, 0, {{path, NULL, fn, 0}}, NULL, code, w}
#define VADD(name, v, path, val, code, w) \
    {name, NULL, NULL, 0, {{"v", v, NULL, 0}, {path, val, NULL, 1}}, NULL, code, w}
#define SET2(name, p1, v1, g1, p2, v2, g2, code, w) \
    {name, NULL, NULL, 0, {{p1, v1, g1, 0}, {p2, v2, g2, 0}}, NULL, code, w}
/* clang-format on */
#define F ERR_WIRE_FORMAT
#define S ERR_WIRE_SCHEMA
#define V ERR_WIRE_VERSION

static const wcase wcases[] = {
    /* structure: the pre-validator's verdicts, reached before msgpack-c allocates anything */
    RAW("empty", "", F, "malformed: empty input"),
    RAW("0xc1 alone", "c1", F, "malformed: reserved byte 0xc1 at offset 0"),
    RAW("0xc1 as a value", "81 a1 76 c1", F, "reserved byte 0xc1 at offset 3"),
    RAW("0xc1 as a key", "81 c1 c0", F, "reserved byte 0xc1 at offset 1"),
    RAW("depth 9", "91 91 91 91 91 91 91 91 91 c0", F, "malformed: depth 9 > 8 at offset 8"),
    GEN("depth 33", g_depth33, F, "malformed: depth 9 > 8"),
    RAW("array32 of 2^27", "dd 08000000", F,
        "container at offset 0 declares 134217728 elements, 0 bytes remain"),
    RAW("array32 of 2^31-1", "dd 7fffffff", F, "declares 2147483647 elements"),
    RAW("nested array32 headers", "91 dd 00000001 dd 08000000", F,
        "container at offset 6 declares 134217728 elements"),
    RAW("map32 of 2^32-1", "df ffffffff", F, "declares 8589934590 elements"),
    RAW("map16 with odd content", "de 0003 a1 61 01 a1 62", F,
        "declares 6 elements, 5 bytes remain"),
    RAW("fixmap a value short", "82 a1 61 01 a1 62", F, "malformed: truncated at offset 6"),
    RAW("str32 past the end", "db 00010000 41", F, "value at offset 0 declares 65536 bytes"),
    RAW("bin32 past the end", "c6 ffffffff", F, "declares 4294967295 bytes, 0 remain"),
    RAW("ext32 past the end", "c9 00001000 01", F, "declares 4097 bytes, 1 remain"),
    RAW("fixext16 past the end", "d8 01 00", F, "declares 17 bytes, 2 remain"),
    RAW("fixstr past the end", "a5 61", F, "declares 5 bytes, 1 remain"),
    RAW("uint64 cut short", "cf 0000", F, "declares 8 bytes, 2 remain"),
    RAW("str16 header cut short", "da 00", F, "truncated at offset 0"),
    GEN("20001 objects in one array", g_objects_one, F, "exceeds 20000 objects"),
    GEN("20002 objects in two arrays", g_objects_sum, F, "exceeds 20000 objects"),
    RAW("nil nil", "c0 c0", F, "malformed: 1 trailing bytes at offset 1"),
    TAIL("valid map then garbage", 0, "c0 ff", F, "malformed: 2 trailing bytes"),
    TAIL("valid map twice", 1, "80", F, "1 trailing bytes"),
    SETGEN("message over 256 KiB", "http.body", g_body_huge, ERR_WIRE_SIZE, "too-large: "),
    SET2("float32 widened past 256 KiB", "http.body", NULL, g_body_max, "ctx", NULL, g_ctx_f32,
         ERR_WIRE_SIZE, "too-large: re-encoded it would pass the size or object limit"),
    SET2("defaults push objects over", "late", NULL, NULL, "ctx", NULL, g_ctx_nils, ERR_WIRE_SIZE,
         "too-large: re-encoded"),
    /* well-formed msgpack that is not a job of this version */
    RAW("top level array", "91 c0", S, "bad-schema: the message is array, want map"),
    RAW("top level str", "a3 666f6f", S, "the message is str, want map"),
    RAW("0xc1 inside a str", "a1 c1", S, "the message is str"),
    RAW("top level int", "05", S, "the message is uint"),
    SET("v 2", 0, "v", "02", V, "bad-version: v 2, this build reads 1..1"),
    SET("v 0", 1, "v", "00", V, "bad-version: v 0"),
    SET("v 2^64-1", 0, "v", "cf ffffffffffffffff", V, "bad-version: v 18446744073709551615"),
    VADD("v 2 goes before its ext", "02", "x", "d4 01 00", V, "bad-version"),
    SET("v as str", 0, "v", "\"1", S, "bad-schema: v is str, want uint"),
    SET("v missing", 0, "v", NULL, S, "bad-schema: v: missing"),
    SET("id as int", 0, "id", "2a", S, "bad-schema: id: is int, want str"),
    SET("id missing", 1, "id", NULL, S, "bad-schema: id: missing"),
    SET("id empty", 0, "id", "\"", S, "bad-schema: id: missing"),
    SET("id with NUL", 0, "id", "a3 610062", S, "id: contains a NUL byte"),
    ADD("duplicate top key", 0, "id", "\"x", S, "bad-schema: duplicate map key"),
    SET("due as str", 0, "due", "\"123", S, "due: is str, want int"),
    SET("due as float", 0, "due", "cb 4000000000000000", S, "due: is float, want int"),
    SET("due -1 as int64", 0, "due", "d3 ffffffffffffffff", S, "due_ms: -1 outside"),
    SET("att -1", 0, "att", "ff", S, "att: -1 not in 0..4294967295"),
    SET("att 0", 0, "att", "00", S, "bad-schema: attempt: 0 not in 1..3"),
    SET("idx 2^32", 1, "idx", "cf 0000000100000000", S, "idx: 4294967296 not in"),
    SET("late 2^64-1", 0, "late", "cf ffffffffffffffff", S,
        "integer 18446744073709551615 does not fit int64"),
    SET("late negative", 0, "late", "ff", S, "max_lateness_ms: negative"),
    SET("kind missing", 0, "kind", NULL, S, "bad-schema: kind: missing"),
    SET("kind ftp", 0, "kind", "\"ftp", S, "kind: want \"http\" or \"cmd\""),
    SET("http missing", 0, "http", NULL, S, "bad-schema: http: missing"),
    SET("http as array", 0, "http", "90", S, "http: is array, want map"),
    SET("cmd missing", 1, "cmd", NULL, S, "bad-schema: cmd: missing"),
    SET("method missing", 0, "http.m", NULL, S, "http.m: missing"),
    SET("method lower case", 0, "http.m", "\"post", S, "http.method: not one of"),
    SET("url as array", 0, "http.url", "91 a1 78", S, "bad-schema: http.url: is array, want str"),
    SETGEN("url 8193 bytes", "http.url", g_url_8193, S, "http.url: longer than 8192 bytes"),
    SET("url ftp", 0, "http.url", "\"ftp://x", S, "http.url: does not start"),
    SET("headers as map", 0, "http.h", "81 a1 61 a1 62", S, "http.h: is map, want array"),
    SET("header not a pair", 0, "http.h", "91 91 a1 61", S, "http.h[0]: want [name, value]"),
    SET("header a bare str", 0, "http.h", "91 a1 61", S, "http.h[0]: want [name, value]"),
    SET("header value int", 0, "http.h", "91 92 a1 61 01", S, "http.h[0]: is int, want str"),
    SET("header CRLF", 0, "http.h", "91 92 a1 61 a3 610d0a", S,
        "http.headers[0]: value missing or has CR/LF"),
    SET("body as int", 0, "http.body", "05", S, "http.body: is int, want str or bin"),
    SETGEN("body over 192 KiB", "http.body", g_body_over, S, "http.body: longer than 196608"),
    SET("ok holds a str", 0, "http.ok", "91 a1 61", S, "http.ok: is str, want int"),
    SET("ok 70000", 0, "http.ok", "91 ce 00011170", S, "http.ok: 70000 not in 0..65535"),
    SET("ok 700", 0, "http.ok", "91 cd 02bc", S, "http.ok_status[0]: 700 not in 100..599"),
    SET("redir as int", 0, "http.redir", "01", S, "http.redir: is int, want bool"),
    SET("cto 0", 0, "http.cto", "00", S, "http.connect_timeout_ms: 0 not in"),
    SET("argv empty", 1, "cmd.argv", "90", S, "cmd.argv: empty"),
    SET("argv holds an int", 1, "cmd.argv", "91 01", S, "cmd.argv[0]: is int, want str"),
    SET("env not pairs", 1, "cmd.env", "91 91 a1 61", S, "cmd.env[0]: want [name, value]"),
    SET("ctx as array", 0, "ctx", "90", S, "ctx: is array, want map"),
    SET("ctx int key", 0, "ctx", "81 01 02", S, "a map key is uint, want str"),
    SET("ctx ext value", 0, "ctx", "81 a1 61 d4 01 00", S, "a value is ext"),
    SET("ctx duplicate key", 0, "ctx", "82 a1 61 01 a1 61 02", S, "bad-schema: duplicate map key"),
    SET("ctx key with NUL", 0, "ctx", "81 a2 6100 01", S, "a map key contains a NUL byte"),
    /* accepted: the forward compatibility and leniency the format promises */
    ADD("unknown top key", 0, "zz", "81 a1 61 91 c0", ERR_OK, ""),
    ADD("unknown http key", 0, "http.zz", "c3", ERR_OK, ""),
    ADD("the other kind's section", 0, "cmd", "c0", ERR_OK, ""),
    SET("optional key left out", 0, "http.cto", NULL, ERR_OK, ""),
    SET("body as str", 0, "http.body", "\"{}", ERR_OK, ""),
    SET("ctx bin key", 0, "ctx", "81 c4 01 61 01", ERR_OK, ""),
    SET("ctx float32", 0, "ctx", "81 a1 66 ca 3fc00000", ERR_OK, ""),
    SET("att as uint64", 1, "att", "cf 0000000000000001", ERR_OK, ""),
    SETGEN("body at 192 KiB", "http.body", g_body_max, ERR_OK, ""),
};

static void build_case(const wcase *c, wb *b)
{
    if (c->gen)
        c->gen(b);
    else if (c->raw)
        wb_hex(b, c->raw);
    else
        msg_build(b, c->cmd, c->m);
    if (c->tail)
        wb_hex(b, c->tail);
}

/* Decode one case: reason and code must match, a rejected job must be left empty, and the memory
 * spent must stay linear in the input's bytes and objects (both capped: a few MB at most): nothing
 * at all when the size cap or the pre-validator refuses the bytes (every malformed case must be
 * theirs); else a few copies (msgpack-c's zone at 24 B an object, the value tree at 32, the
 * re-encode check's tree and buffer, every doubling of that buffer counted). */
static void run_case(const wcase *c)
{
    wb b = {0};
    job j;
    char reason[256] = "";
    build_case(c, &b);
    int early = b.len > JOBWIRE_MAX_BYTES || jobwire_prevalidate(b.p, b.len, NULL, 0) != ERR_OK;
    job_init(&j);
    acct_start();
    int rc = jobwire_decode(b.p, b.len, &j, reason, sizeof reason);
    acct.on = 0;
    if (rc != c->code || !strstr(reason, c->want))
        fail_msg("%s: rc %d \"%s\", want %d \"%s\"", c->name, rc, reason, c->code, c->want);
    if (rc != ERR_OK && (j.id || j.http.url || j.context.type != JVAL_MAP || j.context.u.map.n))
        fail_msg("%s: the rejected job was not left empty", c->name);
    if (early ? acct.count != 0 : c->code == F)
        fail_msg("%s: %zu allocations, early %d", c->name, acct.count, early);
    if (acct.biggest > 2 * b.len + 32 * JOBWIRE_MAX_OBJECTS + 65536 ||
        acct.bytes > 12 * b.len + 128 * JOBWIRE_MAX_OBJECTS + 262144)
        fail_msg("%s: %zu bytes allocated, biggest %zu", c->name, acct.bytes, acct.biggest);
    job_fini(&j);
    free(b.p);
}

static void test_hostile_table(void **state)
{
    (void)state;
    size_t n = sizeof wcases / sizeof wcases[0], hostile = 0;
    for (size_t i = 0; i < n; i++) {
        run_case(&wcases[i]);
        hostile += wcases[i].code != ERR_OK;
    }
    assert_true(hostile >= 30);
}

/* Every proper prefix of a valid body is truncated, and is refused without allocating. */
static void test_every_prefix_is_malformed(void **state)
{
    (void)state;
    const mut none[NMUT] = {{0}};
    for (int cmd = 0; cmd < 2; cmd++) {
        wb b = {0};
        job j;
        char reason[256];
        msg_build(&b, cmd, none);
        for (size_t len = 0; len < b.len; len++) {
            job_init(&j);
            acct_start();
            int rc = jobwire_decode(b.p, len, &j, reason, sizeof reason);
            acct.on = 0;
            if (rc != F || strncmp(reason, "malformed: ", 11) != 0 || acct.count)
                fail_msg("prefix %zu of %zu: rc %d \"%s\"", len, b.len, rc, reason);
        }
        job_init(&j);
        assert_int_equal(jobwire_decode(b.p, b.len, &j, reason, sizeof reason), ERR_OK);
        assert_int_equal(jobwire_prevalidate(b.p, b.len, NULL, 0), ERR_OK);
        job_fini(&j);
        free(b.p);
    }
}

/* ---- the sample corpus --------------------------------------------------------------------- */

/* tests/data/wire holds the table's inputs as files (those up to 32 KiB, written from it once),
 * named "<class>--<case>.msgpack" ("ok" for accepted ones), to seed fuzzers; this test holds
 * them to their class. */
static const char *const corpus_class[] = {"ok", "too-large", "malformed", "bad-schema",
                                           "bad-version"};

static void test_corpus_files(void **state)
{
    (void)state;
    static char buf[65536];
    DIR *d = opendir(SALVO_TEST_DATA "/wire");
    size_t seen[5] = {0};
    assert_non_null(d);
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        char path[512], reason[256], cls[16] = "";
        if (sscanf(e->d_name, "%15[a-z-]", cls) != 1 || !strstr(e->d_name, "--"))
            continue;
        cls[strstr(e->d_name, "--") - e->d_name] = '\0';
        snprintf(path, sizeof path, "%s/wire/%s", SALVO_TEST_DATA, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        job j;
        job_init(&j);
        int rc = jobwire_decode(buf, n, &j, reason, sizeof reason);
        job_fini(&j);
        size_t c = 0;
        while (c < 5 && strcmp(corpus_class[c], cls) != 0)
            c++;
        if (c == 5 || (c ? strncmp(reason, cls, strlen(cls)) != 0 : rc != ERR_OK))
            fail_msg("%s: rc %d \"%s\"", e->d_name, rc, reason);
        seen[c]++;
    }
    closedir(d);
    assert_true(seen[0] >= 5 && seen[2] >= 20 && seen[3] >= 30 && seen[4] >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_table),
        cmocka_unit_test(test_every_prefix_is_malformed),
        cmocka_unit_test(test_corpus_files),
    };
    acct_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
