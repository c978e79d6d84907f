/* tgt_record: JSON-lines record file of the recording target, buffered in memory. */
#include "tgt_record.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Write out once this much is buffered: large writes, bounded memory at any request rate. */
#define TGT_RECORD_FLUSH_AT (256 * 1024)
/* Worst-case growth of one escaped byte ("\u00XX"). */
#define TGT_RECORD_ESC_MAX 6

struct tgt_record {
    int fd; /* -1: count only, write nothing */
    char *buf;
    size_t len;
    size_t cap;
};

int tgt_record_open(const char *path, tgt_record **out)
{
    tgt_record *rec = calloc(1, sizeof *rec);
    if (!rec)
        return ERR_NOMEM;
    rec->fd = -1;
    if (path) {
        rec->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (rec->fd < 0) {
            int saved = errno;
            free(rec);
            errno = saved;
            return ERR_IO;
        }
    }
    *out = rec;
    return ERR_OK;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when s does not start one. */
static size_t tgt_record_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len <= 1 || n < len)
        return len == 1 ? 1 : 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong forms, UTF-16 surrogates and code points above U+10FFFF */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* Escaped form of one byte below 0x80 into out; returns its length. */
static size_t tgt_record_escape_ascii(unsigned char c, char out[TGT_RECORD_ESC_MAX])
{
    static const char hex[] = "0123456789abcdef";
    const char *shortcut = c == '"'    ? "\\\""
                           : c == '\\' ? "\\\\"
                           : c == '\n' ? "\\n"
                           : c == '\r' ? "\\r"
                           : c == '\t' ? "\\t"
                                       : NULL;
    if (shortcut) {
        memcpy(out, shortcut, 2);
        return 2;
    }
    if (c >= 0x20 && c != 0x7f) {
        out[0] = (char)c;
        return 1;
    }
    memcpy(out, "\\u00", 4);
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}

size_t tgt_record_escape(char *dst, size_t cap, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        char esc[TGT_RECORD_ESC_MAX];
        const char *src = esc;
        size_t seq = tgt_record_utf8_len(p + i, n - i);
        size_t k;
        if (seq == 1) {
            k = tgt_record_escape_ascii(p[i], esc);
        } else if (seq > 1) {
            src = (const char *)p + i;
            k = seq;
        } else {
            src = "\\ufffd";
            k = 6;
            seq = 1;
        }
        if (w + k > cap)
            break;
        memcpy(dst + w, src, k);
        w += k;
        i += seq;
    }
    return w;
}

static int tgt_record_reserve(tgt_record *rec, size_t extra)
{
    if (rec->len + extra <= rec->cap)
        return ERR_OK;
    size_t cap = rec->cap ? rec->cap : 64 * 1024;
    while (cap < rec->len + extra)
        cap *= 2;
    char *grown = realloc(rec->buf, cap);
    if (!grown)
        return ERR_NOMEM;
    rec->buf = grown;
    rec->cap = cap;
    return ERR_OK;
}

/* The append helpers reserve as they go; the caller checks tgt_record_reserve's result once per
 * line through `ok`, so a failed allocation drops the line instead of corrupting the file. */
static void tgt_record_lit(tgt_record *rec, const char *s, int *ok)
{
    size_t n = strlen(s);
    if (*ok && tgt_record_reserve(rec, n) == ERR_OK) {
        memcpy(rec->buf + rec->len, s, n);
        rec->len += n;
    } else {
        *ok = 0;
    }
}

/* Escaped bytes, no quotes. */
static void tgt_record_raw(tgt_record *rec, const char *s, size_t n, int *ok)
{
    if (!*ok || tgt_record_reserve(rec, n * TGT_RECORD_ESC_MAX) != ERR_OK) {
        *ok = 0;
        return;
    }
    rec->len += tgt_record_escape(rec->buf + rec->len, n * TGT_RECORD_ESC_MAX, s, n);
}

static void tgt_record_str(tgt_record *rec, const char *s, size_t n, int *ok)
{
    tgt_record_lit(rec, "\"", ok);
    tgt_record_raw(rec, s, n, ok);
    tgt_record_lit(rec, "\"", ok);
}

static void tgt_record_num(tgt_record *rec, const char *key, long long v, int *ok)
{
    char num[48];
    snprintf(num, sizeof num, ",\"%s\":%lld", key, v);
    tgt_record_lit(rec, num, ok);
}

/* "key":"value" or "key":null for an absent header. */
static void tgt_record_opt(tgt_record *rec, const char *key, tgt_span v, int *ok)
{
    char k[32];
    snprintf(k, sizeof k, ",\"%s\":", key);
    tgt_record_lit(rec, k, ok);
    if (v.p)
        tgt_record_str(rec, v.p, v.n, ok);
    else
        tgt_record_lit(rec, "null", ok);
}

/* X-Salvo-Attempt as a number when it is one, so tests compare integers. */
static void tgt_record_attempt(tgt_record *rec, tgt_span v, int *ok)
{
    int digits = v.p && v.n > 0 && v.n <= 9;
    for (size_t i = 0; digits && i < v.n; i++)
        digits = v.p[i] >= '0' && v.p[i] <= '9';
    if (!digits) {
        tgt_record_opt(rec, "attempt", v, ok);
        return;
    }
    tgt_record_num(rec, "attempt", strtoll(v.p, NULL, 10), ok);
}

static int tgt_record_same_name(tgt_span a, tgt_span b)
{
    return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

/* Every header once, in first-seen order, names lower-cased, values of repeats joined. */
static void tgt_record_headers(tgt_record *rec, const tgt_http_req *req, int *ok)
{
    tgt_record_lit(rec, ",\"headers\":{", ok);
    for (size_t i = 0, first = 1; i < req->nheaders; i++) {
        int repeat = 0;
        for (size_t j = 0; j < i && !repeat; j++)
            repeat = tgt_record_same_name(req->names[i], req->names[j]);
        if (repeat)
            continue;
        tgt_record_lit(rec, first ? "\"" : ",\"", ok);
        first = 0;
        size_t name_at = rec->len;
        tgt_record_raw(rec, req->names[i].p, req->names[i].n, ok);
        for (size_t c = name_at; *ok && c < rec->len; c++)
            if (rec->buf[c] >= 'A' && rec->buf[c] <= 'Z')
                rec->buf[c] = (char)(rec->buf[c] - 'A' + 'a');
        tgt_record_lit(rec, "\":\"", ok);
        tgt_record_raw(rec, req->values[i].p, req->values[i].n, ok);
        for (size_t j = i + 1; j < req->nheaders; j++) {
            if (!tgt_record_same_name(req->names[i], req->names[j]))
                continue;
            tgt_record_lit(rec, ", ", ok);
            tgt_record_raw(rec, req->values[j].p, req->values[j].n, ok);
        }
        tgt_record_lit(rec, "\"", ok);
    }
    tgt_record_lit(rec, "}", ok);
}

int tgt_record_add(tgt_record *rec, const tgt_record_entry *e)
{
    const tgt_http_req *req = e->req;
    size_t start = rec->len;
    int ok = 1;
    char head[128];
    char rx[24] = "null";
    if (e->rx_ns != 0)
        snprintf(rx, sizeof rx, "%lld", (long long)e->rx_ns);
    snprintf(head, sizeof head,
             "{\"t_ns\":%lld,\"rx_ns\":%s,\"conn\":%llu,\"method\":", (long long)e->t_ns, rx,
             (unsigned long long)e->conn_id);
    tgt_record_lit(rec, head, &ok);
    tgt_record_str(rec, req->method.p, req->method.n, &ok);
    tgt_record_opt(rec, "path", req->path, &ok);
    tgt_record_opt(rec, "target", req->target, &ok);
    tgt_record_opt(rec, "idem", tgt_http_header(req, "idempotency-key"), &ok);
    tgt_record_opt(rec, "sched_at", tgt_http_header(req, "x-salvo-scheduled-at"), &ok);
    tgt_record_attempt(rec, tgt_http_header(req, "x-salvo-attempt"), &ok);
    tgt_record_headers(rec, req, &ok);
    size_t shown = req->body_len < TGT_RECORD_BODY_CAP ? req->body_len : TGT_RECORD_BODY_CAP;
    tgt_record_opt(rec, "body", (tgt_span){e->body, shown}, &ok);
    tgt_record_num(rec, "body_len", (long long)req->body_len, &ok);
    tgt_record_num(rec, "status", e->status, &ok);
    tgt_record_num(rec, "seen", e->seen, &ok);
    tgt_record_lit(rec, "}\n", &ok);
    if (!ok) {
        rec->len = start;
        return ERR_NOMEM;
    }
    if (rec->fd < 0)
        rec->len = 0;
    return rec->len >= TGT_RECORD_FLUSH_AT ? tgt_record_flush(rec) : ERR_OK;
}

int tgt_record_flush(tgt_record *rec)
{
    size_t off = 0;
    while (off < rec->len) {
        ssize_t w = write(rec->fd, rec->buf + off, rec->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            /* keep what was not written; the next flush retries it */
            memmove(rec->buf, rec->buf + off, rec->len - off);
            rec->len -= off;
            return ERR_IO;
        }
        off += (size_t)w;
    }
    rec->len = 0;
    return ERR_OK;
}

size_t tgt_record_pending(const tgt_record *rec)
{
    return rec->len;
}

int tgt_record_close(tgt_record *rec)
{
    if (!rec)
        return ERR_OK;
    int rc = rec->fd >= 0 ? tgt_record_flush(rec) : ERR_OK;
    if (rec->fd >= 0)
        close(rec->fd);
    free(rec->buf);
    free(rec);
    return rc;
}
