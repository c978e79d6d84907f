/* result: builds the per-attempt result record through jval, so JSON escaping lives in one place.
 */
#include "result.h"

#include "clock.h"
#include "err.h"
#include "strbuf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when the bytes there are not one. */
static size_t result_utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned min;
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    if (n > left)
        return 0;
    unsigned cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

char *result_utf8_clean(const char *s, size_t len, size_t *out_len)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    char *out = malloc(len * 3 + 1);           /* each bad byte may become three */
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = result_utf8_seq(p + i, len - i);
        if (n == 0) {
            memcpy(out + o, repl, 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

/* The record is written straight into one growing buffer (strbuf): building it as a jval map
 * first cost about thirty small allocations per job, 6 % of a busy worker's CPU. */

static void result_key(strbuf *b, const char *key)
{
    strbuf_add(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
    strbuf_add(b, key, strlen(key));
    strbuf_add(b, "\":", 2);
}

static void result_put_str(strbuf *b, const char *key, const char *s)
{
    result_key(b, key);
    strbuf_add_json(b, s, strlen(s));
}

static void result_put_int(strbuf *b, const char *key, int64_t i)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)i);
    result_key(b, key);
    strbuf_add(b, num, (size_t)n);
}

static void result_put_raw(strbuf *b, const char *key, const char *json)
{
    result_key(b, key);
    strbuf_add(b, json, strlen(json));
}

static void result_put_time(strbuf *b, const char *key, int64_t ns)
{
    char iso[40];
    result_put_str(b, key, clock_format_iso(ns, 3, iso, sizeof iso));
}

static void result_put_response(strbuf *b, const result_rec *r)
{
    size_t n = 0;
    char *clean = result_utf8_clean(r->response ? r->response : "", r->response_len, &n);
    if (!clean) {
        b->failed = true;
        return;
    }
    result_key(b, "response");
    strbuf_add_json(b, clean, n);
    free(clean);
    result_put_raw(b, "truncated", r->truncated ? "true" : "false");
}

/* The timing fields: started/lateness/duration are null for attempts that never started. */
static void result_put_times(strbuf *b, const result_rec *r)
{
    result_put_time(b, "scheduled", r->due_ms * CLOCK_NS_PER_MS);
    if (r->started_ns) {
        result_put_time(b, "started", r->started_ns);
        result_put_int(b, "lateness_ms", r->started_ns / CLOCK_NS_PER_MS - r->due_ms);
        result_put_int(b, "duration_ms", (r->finished_ns - r->started_ns) / CLOCK_NS_PER_MS);
    } else {
        result_put_raw(b, "started", "null");
        result_put_raw(b, "lateness_ms", "null");
        result_put_raw(b, "duration_ms", "null");
    }
    result_put_time(b, "finished", r->finished_ns);
}

int result_encode(const result_rec *r, char **out, size_t *len)
{
    strbuf b = {0};
    strbuf_add(&b, "{", 1);
    result_put_str(&b, "id", r->id);
    result_put_str(&b, "schedule", r->schedule);
    result_put_int(&b, "index", r->index);
    result_put_int(&b, "attempt", r->attempt);
    result_put_str(&b, "outcome", r->outcome);
    result_put_int(&b, "status", r->status);
    if (r->reason && r->reason[0])
        result_put_str(&b, "reason", r->reason);
    if (r->error && r->error[0])
        result_put_str(&b, "error", r->error);
    result_put_times(&b, r);
    result_put_str(&b, "worker", r->worker);
    result_put_response(&b, r);
    strbuf_add(&b, "}", 1);
    *out = strbuf_take(&b, len);
    return *out ? ERR_OK : ERR_NOMEM;
}
