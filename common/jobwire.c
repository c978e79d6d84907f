/* jobwire: the job's msgpack wire format, and the bounded decoder that hostile bytes meet first.
 *
 * WIRE FORMAT, version 1 (JOBWIRE_VERSION). One AMQP body is exactly one msgpack map of at most
 * JOBWIRE_MAX_BYTES (256 KiB), nothing after it, nested at most JOBWIRE_MAX_DEPTH (8) deep (the
 * message map is level 1), holding at most JOBWIRE_MAX_OBJECTS (20000) msgpack objects. Anywhere
 * in it: map keys are strings, unique, without NUL; ints fit int64; ext is not used; a string
 * may come as str or bin (the writer uses str for valid UTF-8 and bin otherwise, so strict
 * readers such as Python's msgpack never meet invalid UTF-8 in a str). "uint" is an int >= 0.
 *
 *   key      type               req  limit, meaning (job_validate's)          job field
 *   v        uint               yes  format version: 1                        -
 *   id       str                yes  1..512 bytes, no control bytes           id
 *   sched    str                yes  1..200 bytes, no control bytes           schedule
 *   idx      uint               no   fan-out index < 2^32, default 0          index
 *   due      int                yes  ms since the epoch, years 1970..9999     due_ms
 *   att      uint               yes  1..max_att, 1 for the first run          attempt
 *   max_att  uint               yes  1..20                                    max_attempts
 *   late     int                no   ms >= 0, default 0 (no limit)            max_lateness_ms
 *   kind     str                yes  "http" or "cmd"                          kind
 *   http     map                kind=http; ignored for another kind           http
 *     m      str                yes  GET HEAD POST PUT PATCH DELETE OPTIONS   .method
 *     url    str                yes  http:// or https:// with a host, <= 8192 .url
 *     h      array of [str,str] no   <= 64 pairs; name an RFC 7230 token,     .headers
 *                                    value without CR/LF, both <= 8192 bytes
 *     body   str or bin         no   <= 192 KiB, any bytes; absent: no body   .body
 *     cto    uint               no   1..900000 ms, default 5000               .connect_timeout_ms
 *     to     uint               no   1..900000 ms, default 30000              .timeout_ms
 *     ok     array of uint      no   <= 32 statuses in 100..599; [] = 2xx     .ok_status
 *     redir  bool               no   default false                            .follow_redirects
 *   cmd      map                kind=cmd; ignored for another kind            cmd
 *     argv   array of str       yes  1..64 args of <= 4096 bytes, argv[0] set .argv
 *     env    array of [str,str] no   <= 64; name set, without '=';            .env
 *                                    name=value <= 4096 bytes
 *     to     uint               no   1..900000 ms, default 30000              .timeout_ms
 *   ctx      map                no   nil, bool, int, float32/64 (read as      context
 *                                    double), str, array, map; 7 levels deep
 *                                    at most; default {}
 *
 * Strings that become C strings (all but body and context values) must not hold NUL.
 * Determinism: every map's keys are written sorted bytewise, ints in their shortest form, floats
 * as float64, every optional key is written (but "body" only when the job has one, and only the
 * section its kind uses): one job, and any two equal jobs, always give the same bytes.
 * Compatibility: readers ignore keys they do not know, so a new optional key keeps v = 1. Bump
 * JOBWIRE_VERSION when a key changes type or meaning, a key becomes required, a limit shrinks,
 * or ext / huge ints start being used. A reader rejects v > JOBWIRE_VERSION (and v = 0) as
 * bad-version before it looks at anything else, so an old worker never half-understands a job.
 * Layers: jobmap.c maps a job to a value tree and back (the keys above); this file maps the tree
 * to bytes and back.
 *
 * Decoding order: size cap, our allocation-free pre-validator, msgpack-c, version, value tree,
 * schema (jobmap), job_validate, and for a message near a limit a re-encode: every job accepted
 * can be sent again (jobwire_surely_resendable says why the others need no re-encode).
 * The pre-validator is what makes msgpack-c safe: msgpack-c preallocates every declared
 * array/map count before reading an element (5 hostile bytes can ask for gigabytes), so nothing
 * reaches it until every declared count has been walked and found to exist. */
#include "jobwire.h"

#include "err.h"
#include "jobmap.h"

#include <msgpack.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reasons ------------------------------------------------------------------------------- */

/* ERR_NOMEM is reported as too-large too: the memory a decode needs grows with the message. */
static const char *jobwire_class(int code)
{
    return code == ERR_WIRE_FORMAT    ? "malformed"
           : code == ERR_WIRE_VERSION ? "bad-version"
           : code == ERR_WIRE_SCHEMA  ? "bad-schema"
                                      : "too-large";
}

/* Write "<class>: <detail>" into reason (when given) and return code. */
__attribute__((format(printf, 4, 5))) static int jobwire_fail(char *reason, size_t cap, int code,
                                                              const char *fmt, ...)
{
    if (!reason || cap == 0)
        return code;
    int n = snprintf(reason, cap, "%s: ", jobwire_class(code));
    if (n < 0 || (size_t)n >= cap)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- pre-validator ------------------------------------------------------------------------- */

enum { PV_FIXED, PV_BLOB, PV_ARRAY, PV_MAP, PV_RESERVED };

/* Type bytes 0xc0..0xdf: `len` big-endian length bytes follow the type byte (blob lengths,
 * container counts), then `fixed` more bytes (a scalar's value, or an ext's type byte). */
static const struct {
    uint8_t kind, len, fixed;
} jobwire_pv_types[32] = {
    {PV_FIXED, 0, 0},  {PV_RESERVED, 0, 0}, {PV_FIXED, 0, 0}, {PV_FIXED, 0, 0}, /* c0-c3 */
    {PV_BLOB, 1, 0},   {PV_BLOB, 2, 0},     {PV_BLOB, 4, 0},                    /* bin */
    {PV_BLOB, 1, 1},   {PV_BLOB, 2, 1},     {PV_BLOB, 4, 1},                    /* ext */
    {PV_FIXED, 0, 4},  {PV_FIXED, 0, 8},                                        /* float */
    {PV_FIXED, 0, 1},  {PV_FIXED, 0, 2},    {PV_FIXED, 0, 4}, {PV_FIXED, 0, 8}, /* uint */
    {PV_FIXED, 0, 1},  {PV_FIXED, 0, 2},    {PV_FIXED, 0, 4}, {PV_FIXED, 0, 8}, /* int */
    {PV_FIXED, 0, 2},  {PV_FIXED, 0, 3},    {PV_FIXED, 0, 5}, {PV_FIXED, 0, 9}, /* fixext */
    {PV_FIXED, 0, 17}, {PV_BLOB, 1, 0},     {PV_BLOB, 2, 0},  {PV_BLOB, 4, 0},  /* str */
    {PV_ARRAY, 2, 0},  {PV_ARRAY, 4, 0},    {PV_MAP, 2, 0},   {PV_MAP, 4, 0},
};

/* One object's header: its size, the payload bytes after it, and how many objects it holds. */
typedef struct jobwire_pv_item {
    size_t hdr;
    uint64_t payload;
    uint64_t children;
    bool container;
} jobwire_pv_item;

static int jobwire_pv_header(const uint8_t *p, size_t left, size_t off, jobwire_pv_item *it,
                             char *reason, size_t cap)
{
    uint8_t b = p[0];
    memset(it, 0, sizeof *it);
    it->hdr = 1;
    if (b <= 0x7f || b >= 0xe0) /* fixint */
        return ERR_OK;
    if (b <= 0x9f) { /* fixmap, fixarray */
        it->container = true;
        it->children = b <= 0x8f ? 2u * (b & 0x0fu) : (b & 0x0fu);
        return ERR_OK;
    }
    if (b <= 0xbf) { /* fixstr */
        it->payload = b & 0x1fu;
        return ERR_OK;
    }
    unsigned kind = jobwire_pv_types[b - 0xc0].kind, len = jobwire_pv_types[b - 0xc0].len;
    if (kind == PV_RESERVED)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "reserved byte 0xc1 at offset %zu", off);
    if (left < 1 + len)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "truncated at offset %zu", off);
    uint64_t n = 0;
    for (unsigned i = 0; i < len; i++)
        n = n << 8 | p[1 + i];
    it->hdr = 1 + len;
    it->payload = jobwire_pv_types[b - 0xc0].fixed + (kind == PV_BLOB ? n : 0);
    it->container = kind == PV_ARRAY || kind == PV_MAP;
    it->children = kind == PV_MAP ? 2 * n : kind == PV_ARRAY ? n : 0;
    return ERR_OK;
}

/* A container's declared count must be believable before anyone allocates for it: each element
 * takes at least one byte, and all of them count against the object budget. */
static int jobwire_pv_container(const jobwire_pv_item *it, size_t off, size_t rest, size_t objects,
                                int level, char *reason, size_t cap)
{
    if (level > JOBWIRE_MAX_DEPTH)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "depth %d > %d at offset %zu", level,
                            JOBWIRE_MAX_DEPTH, off);
    if (it->children > rest)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT,
                            "container at offset %zu declares %llu elements, %zu bytes remain", off,
                            (unsigned long long)it->children, rest);
    if (it->children > JOBWIRE_MAX_OBJECTS - objects)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT,
                            "container at offset %zu exceeds %d objects", off, JOBWIRE_MAX_OBJECTS);
    return ERR_OK;
}

/* jobwire_prevalidate, also counting the objects for jobwire_decode. */
static int jobwire_pv_walk(const void *buf, size_t len, size_t *nobjects, char *reason, size_t cap)
{
    const uint8_t *p = buf;
    uint64_t todo[JOBWIRE_MAX_DEPTH + 1]; /* objects still to read per open level; [0]: root */
    int sp = 1;
    size_t off = 0, objects = 0;
    if (!buf || len == 0)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "empty input");
    todo[0] = 1;
    while (sp > 0) {
        if (todo[sp - 1] == 0) {
            sp--;
            continue;
        }
        todo[sp - 1]--;
        if (off >= len)
            return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "truncated at offset %zu", off);
        if (++objects > JOBWIRE_MAX_OBJECTS)
            return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "more than %d objects at offset %zu",
                                JOBWIRE_MAX_OBJECTS, off);
        jobwire_pv_item it;
        int rc = jobwire_pv_header(p + off, len - off, off, &it, reason, cap);
        size_t rest = rc ? 0 : len - off - it.hdr;
        if (!rc && it.container)
            rc = jobwire_pv_container(&it, off, rest, objects, sp, reason, cap);
        else if (!rc && it.payload > rest)
            rc = jobwire_fail(reason, cap, ERR_WIRE_FORMAT,
                              "value at offset %zu declares %llu bytes, %zu remain", off,
                              (unsigned long long)it.payload, rest);
        if (rc)
            return rc;
        off += it.hdr + (size_t)it.payload;
        if (it.children)
            todo[sp++] = it.children;
    }
    if (off != len)
        return jobwire_fail(reason, cap, ERR_WIRE_FORMAT, "%zu trailing bytes at offset %zu",
                            len - off, off);
    *nobjects = objects;
    return ERR_OK;
}

int jobwire_prevalidate(const void *buf, size_t len, char *reason, size_t cap)
{
    size_t objects;
    return jobwire_pv_walk(buf, len, &objects, reason, cap);
}

/* ---- value tree to msgpack ----------------------------------------------------------------- */

/* Well-formed UTF-8: no stray continuation bytes, overlong forms, surrogates or code points past
 * U+10FFFF. */
static bool jobwire_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xc2 || c > 0xf4) /* a continuation byte, an overlong lead, or past U+10FFFF */
            return false;
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        unsigned cp = c & (0x7fu >> len), min = len == 4 ? 0x10000 : len == 3 ? 0x800 : 0x80;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* msgpack-c pack calls return 0 or -1 (allocation failed); they are ORed and checked once. */
static int jobwire_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    if (jobwire_utf8((const unsigned char *)s, n))
        return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
    return msgpack_pack_bin(pk, n) | msgpack_pack_bin_body(pk, s, n);
}

static int jobwire_pack_jval(msgpack_packer *pk, const jval *v, int level);

static int jobwire_pack_array(msgpack_packer *pk, const jval *v, int level)
{
    if (msgpack_pack_array(pk, v->u.arr.n))
        return ERR_NOMEM;
    for (size_t i = 0; i < v->u.arr.n; i++) {
        int rc = jobwire_pack_jval(pk, &v->u.arr.items[i], level + 1);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

static int jobwire_kv_cmp(const void *a, const void *b)
{
    const jval_kv *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

/* Keys go out sorted, so equal maps built in any order give equal bytes. */
static int jobwire_pack_map(msgpack_packer *pk, const jval *v, int level)
{
    size_t n = v->u.map.n;
    const jval_kv **idx = n ? malloc(n * sizeof *idx) : NULL;
    if (n && !idx)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = &v->u.map.kv[i];
    if (n > 1)
        qsort(idx, n, sizeof *idx, jobwire_kv_cmp);
    int rc = msgpack_pack_map(pk, n) ? ERR_NOMEM : ERR_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = jobwire_pack_str(pk, idx[i]->key, strlen(idx[i]->key)) ? ERR_NOMEM : ERR_OK;
        if (!rc)
            rc = jobwire_pack_jval(pk, &idx[i]->val, level + 1);
    }
    free(idx);
    return rc;
}

/* `level` is where v sits on the wire (the message map is 1). A container past the reader's
 * depth limit could never be decoded, so it is refused here, which also bounds the recursion. */
static int jobwire_pack_jval(msgpack_packer *pk, const jval *v, int level)
{
    int e = 0;
    if ((v->type == JVAL_ARRAY || v->type == JVAL_MAP) && level > JOBWIRE_MAX_DEPTH)
        return ERR_WIRE_SIZE;
    switch (v->type) {
    case JVAL_NIL:
        e = msgpack_pack_nil(pk);
        break;
    case JVAL_BOOL:
        e = v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case JVAL_INT:
        e = msgpack_pack_int64(pk, v->u.i);
        break;
    case JVAL_FLOAT:
        e = msgpack_pack_double(pk, v->u.f);
        break;
    case JVAL_STR:
        e = jobwire_pack_str(pk, v->u.s.ptr, v->u.s.len);
        break;
    case JVAL_ARRAY:
        return jobwire_pack_array(pk, v, level);
    case JVAL_MAP:
        return jobwire_pack_map(pk, v, level);
    }
    return e ? ERR_NOMEM : ERR_OK;
}

int jobwire_encode(const job *j, char **out, size_t *out_len)
{
    jval tree, ver;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    *out = NULL;
    *out_len = 0;
    int rc = jobmap_from_job(j, &tree);
    if (rc)
        return rc;
    jval_set_int(&ver, JOBWIRE_VERSION);
    rc = jval_map_put(&tree, "v", &ver);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (!rc)
        rc = jobwire_pack_jval(&pk, &tree, 1);
    jval_fini(&tree);
    if (!rc && sb.size > JOBWIRE_MAX_BYTES)
        rc = ERR_WIRE_SIZE;
    /* What we send must get past our own reader's first gate (the object budget, too). */
    if (!rc && jobwire_prevalidate(sb.data, sb.size, NULL, 0))
        rc = ERR_WIRE_SIZE;
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    *out_len = sb.size;
    *out = msgpack_sbuffer_release(&sb);
    return ERR_OK;
}

/* ---- msgpack to value tree ----------------------------------------------------------------- */

typedef struct jobwire_dec {
    char *reason;
    size_t cap;
} jobwire_dec;

#define JOBWIRE_BAD(d, ...) jobwire_fail((d)->reason, (d)->cap, ERR_WIRE_SCHEMA, __VA_ARGS__)
#define JOBWIRE_NOMEM(d)    jobwire_fail((d)->reason, (d)->cap, ERR_NOMEM, "out of memory decoding")

static int jobwire_want(jobwire_dec *d, const char *what, const msgpack_object *o, const char *want)
{
    static const char *const names[] = {"nil",   "bool", "uint", "int", "float", "str",
                                        "array", "map",  "bin",  "ext", "float"};
    unsigned t = (unsigned)o->type;
    return JOBWIRE_BAD(d, "%s is %s, want %s", what, t < 11 ? names[t] : "?", want);
}

static int jobwire_jval(jobwire_dec *d, const msgpack_object *o, jval *out);

static int jobwire_key_cmp(const void *a, const void *b)
{
    return strcmp(((const jval_kv *)a)->key, ((const jval_kv *)b)->key);
}

/* Keys are sorted once all are read: duplicates then sit side by side and cost one pass, not a
 * lookup per key (a hostile map may hold thousands). */
static int jobwire_map(jobwire_dec *d, const msgpack_object *o, jval *out)
{
    uint32_t n = o->via.map.size;
    jval_set_map(out);
    out->u.map.kv = n ? calloc(n, sizeof *out->u.map.kv) : NULL;
    if (n && !out->u.map.kv)
        return JOBWIRE_NOMEM(d);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR && k->type != MSGPACK_OBJECT_BIN)
            return jobwire_want(d, "a map key", k, "str");
        if (k->via.str.size && memchr(k->via.str.ptr, '\0', k->via.str.size))
            return JOBWIRE_BAD(d, "a map key contains a NUL byte");
        /* msgpack-c can leave ptr NULL for an empty key, and strndup must not see NULL. */
        out->u.map.kv[i].key = strndup(k->via.str.size ? k->via.str.ptr : "", k->via.str.size);
        if (!out->u.map.kv[i].key)
            return JOBWIRE_NOMEM(d);
        out->u.map.n++; /* counted once it owns something, so jval_fini frees exactly that */
        int rc = jobwire_jval(d, &o->via.map.ptr[i].val, &out->u.map.kv[i].val);
        if (rc)
            return rc;
    }
    if (n > 1)
        qsort(out->u.map.kv, n, sizeof *out->u.map.kv, jobwire_key_cmp);
    for (uint32_t i = 1; i < n; i++) {
        if (strcmp(out->u.map.kv[i - 1].key, out->u.map.kv[i].key) == 0)
            return JOBWIRE_BAD(d, "duplicate map key");
    }
    return ERR_OK;
}

static int jobwire_array(jobwire_dec *d, const msgpack_object *o, jval *out)
{
    uint32_t n = o->via.array.size;
    jval_set_array(out);
    out->u.arr.items = n ? calloc(n, sizeof *out->u.arr.items) : NULL;
    if (n && !out->u.arr.items)
        return JOBWIRE_NOMEM(d);
    for (uint32_t i = 0; i < n; i++) {
        out->u.arr.n++;
        int rc = jobwire_jval(d, &o->via.array.ptr[i], &out->u.arr.items[i]);
        if (rc)
            return rc;
    }
    return ERR_OK;
}

/* Recursion is bounded: the pre-validator already capped nesting at JOBWIRE_MAX_DEPTH. */
static int jobwire_jval(jobwire_dec *d, const msgpack_object *o, jval *out)
{
    jval_set_nil(out);
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return ERR_OK;
    case MSGPACK_OBJECT_BOOLEAN:
        jval_set_bool(out, o->via.boolean);
        return ERR_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return JOBWIRE_BAD(d, "integer %llu does not fit int64",
                               (unsigned long long)o->via.u64);
        jval_set_int(out, (int64_t)o->via.u64);
        return ERR_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        jval_set_int(out, o->via.i64);
        return ERR_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        jval_set_float(out, o->via.f64);
        return ERR_OK;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: /* str and bin share one layout in msgpack_object */
        return jval_set_str(out, o->via.str.ptr, o->via.str.size) ? JOBWIRE_NOMEM(d) : ERR_OK;
    case MSGPACK_OBJECT_ARRAY:
        return jobwire_array(d, o, out);
    case MSGPACK_OBJECT_MAP:
        return jobwire_map(d, o, out);
    default:
        return jobwire_want(d, "a value", o, "no ext");
    }
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* The version says how to read everything else, so it is checked before anything else. */
static int jobwire_version(jobwire_dec *d, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return jobwire_want(d, "the message", o, "map");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 1 || k->via.str.ptr[0] != 'v')
            continue;
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return jobwire_want(d, "v", v, "uint");
        if (v->via.u64 == 0 || v->via.u64 > JOBWIRE_VERSION)
            return jobwire_fail(d->reason, d->cap, ERR_WIRE_VERSION,
                                "v %llu, this build reads 1..%d", (unsigned long long)v->via.u64,
                                JOBWIRE_VERSION);
        return ERR_OK;
    }
    return JOBWIRE_BAD(d, "v: missing");
}

/* msgpack-c only ever sees bytes the pre-validator passed. Its verdicts are still mapped in case
 * the two ever disagree: CONTINUE means truncated, EXTRA_BYTES trailing bytes. Its zone is gone
 * when this returns; the tree has copies. The zone's first chunk is JOBWIRE_ZONE_CHUNK, not
 * msgpack-c's 8 KB: a job's objects fit it, and a malloc of 1 KB or more makes glibc consolidate
 * its fast bins first, which was 3.4 % of a worker's CPU in the throughput benchmark when every
 * decode asked for 8 KB. */
#define JOBWIRE_ZONE_CHUNK 1000

static int jobwire_unpack(jobwire_dec *d, const void *buf, size_t len, jval *tree)
{
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    int rc;
    if (!msgpack_zone_init(&zone, JOBWIRE_ZONE_CHUNK))
        return JOBWIRE_NOMEM(d);
    int r = msgpack_unpack(buf, len, &off, &zone, &obj);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        rc = JOBWIRE_NOMEM(d);
    else if (r != MSGPACK_UNPACK_SUCCESS || off != len)
        rc = jobwire_fail(d->reason, d->cap, ERR_WIRE_FORMAT, "msgpack-c refused it (%d at %zu)", r,
                          off);
    else
        rc = jobwire_version(d, &obj);
    if (!rc)
        rc = jobwire_jval(d, &obj, tree);
    msgpack_zone_destroy(&zone);
    return rc;
}

/* Retries re-send a job, so one that would not re-encode within the limits is refused now, not
 * at its first retry: float32 widened to float64, optional keys written out, or a short str that
 * is not UTF-8 going out as bin can push a message that was just under a limit over it. */
static int jobwire_resendable(const job *j, char *reason, size_t cap)
{
    char *buf;
    size_t len;
    int rc = jobwire_encode(j, &buf, &len);
    free(buf);
    if (rc == ERR_WIRE_SIZE)
        return jobwire_fail(reason, cap, rc, "re-encoded it would pass the size or object limit");
    return rc ? jobwire_fail(reason, cap, ERR_NOMEM, "out of memory decoding") : ERR_OK;
}

/* How much a re-encode can outgrow the message it was decoded from, so that the re-encode
 * itself is needed only for messages near a limit. Per object at most 4 bytes: a float32 comes
 * back as float64 (+4); a non-UTF-8 fixstr goes out as bin8 (+1); ints are written in their
 * shortest form and every other object keeps its size or shrinks (unknown keys and the unused
 * kind's section are dropped). Once per message: the optional keys the writer always writes
 * (idx, late, h, cto, to, ok, redir, env, ctx: under 80 bytes and 20 objects with their values)
 * and three maps growing from fixmap to map16 (6 bytes). The fuzz target re-encodes every job
 * the decoder accepts (tests/fuzz/fuzz_message.c), so a wrong bound would show up there. */
#define JOBWIRE_GROW_PER_OBJECT 4
#define JOBWIRE_GROW_BYTES      256
#define JOBWIRE_GROW_OBJECTS    32

static bool jobwire_surely_resendable(size_t len, size_t objects)
{
    return len + JOBWIRE_GROW_PER_OBJECT * objects + JOBWIRE_GROW_BYTES <= JOBWIRE_MAX_BYTES &&
           objects + JOBWIRE_GROW_OBJECTS <= JOBWIRE_MAX_OBJECTS;
}

int jobwire_decode(const void *buf, size_t len, job *out, char *reason, size_t cap)
{
    jobwire_dec d = {.reason = reason, .cap = cap};
    char why[256];
    jval tree;
    if (reason && cap)
        reason[0] = '\0';
    if (len > JOBWIRE_MAX_BYTES)
        return jobwire_fail(reason, cap, ERR_WIRE_SIZE, "%zu bytes > %d", len, JOBWIRE_MAX_BYTES);
    size_t objects = 0;
    int rc = jobwire_pv_walk(buf, len, &objects, reason, cap);
    if (rc)
        return rc;
    jval_set_nil(&tree);
    rc = jobwire_unpack(&d, buf, len, &tree);
    if (!rc) {
        rc = jobmap_to_job(&tree, out, why, sizeof why);
        if (rc)
            jobwire_fail(reason, cap, rc, "%s", why);
    }
    jval_fini(&tree);
    if (!rc && job_validate(out, why, sizeof why))
        rc = jobwire_fail(reason, cap, ERR_WIRE_SCHEMA, "%s", why);
    if (!rc && !jobwire_surely_resendable(len, objects))
        rc = jobwire_resendable(out, reason, cap);
    if (rc)
        job_fini(out);
    return rc;
}
