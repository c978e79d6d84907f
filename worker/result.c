/* result: builds the per-attempt result record through jval, so JSON escaping lives in one place.
 */
#include "result.h"

#include "clock.h"
#include "err.h"
#include "jval.h"

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

static int result_put_str(jval *map, const char *key, const char *s)
{
    jval v;
    if (jval_set_str(&v, s, strlen(s)) != ERR_OK)
        return ERR_NOMEM;
    int rc = jval_map_put(map, key, &v);
    jval_fini(&v); /* left NIL when moved; still owned when the put failed */
    return rc;
}

static int result_put_int(jval *map, const char *key, int64_t i)
{
    jval v;
    jval_set_int(&v, i);
    return jval_map_put(map, key, &v);
}

static int result_put_nil(jval *map, const char *key)
{
    jval v;
    jval_set_nil(&v);
    return jval_map_put(map, key, &v);
}

static int result_put_time(jval *map, const char *key, int64_t ns)
{
    char iso[40];
    return result_put_str(map, key, clock_format_iso(ns, 3, iso, sizeof iso));
}

static int result_put_response(jval *map, const result_rec *r)
{
    size_t n = 0;
    char *clean = result_utf8_clean(r->response ? r->response : "", r->response_len, &n);
    if (!clean)
        return ERR_NOMEM;
    jval v;
    int rc = jval_set_str(&v, clean, n);
    free(clean);
    if (rc == ERR_OK)
        rc = jval_map_put(map, "response", &v);
    jval_fini(&v);
    jval bv;
    jval_set_bool(&bv, r->truncated);
    return rc | jval_map_put(map, "truncated", &bv);
}

/* The timing fields: started/lateness/duration are null for attempts that never started. */
static int result_put_times(jval *m, const result_rec *r)
{
    int rc = result_put_time(m, "scheduled", r->due_ms * CLOCK_NS_PER_MS);
    if (r->started_ns) {
        rc |= result_put_time(m, "started", r->started_ns);
        rc |= result_put_int(m, "lateness_ms", r->started_ns / CLOCK_NS_PER_MS - r->due_ms);
        rc |= result_put_int(m, "duration_ms", (r->finished_ns - r->started_ns) / CLOCK_NS_PER_MS);
    } else {
        rc |= result_put_nil(m, "started") | result_put_nil(m, "lateness_ms") |
              result_put_nil(m, "duration_ms");
    }
    return rc | result_put_time(m, "finished", r->finished_ns);
}

int result_encode(const result_rec *r, char **out, size_t *len)
{
    jval m;
    jval_set_map(&m);
    int rc = result_put_str(&m, "id", r->id);
    rc |= result_put_str(&m, "schedule", r->schedule);
    rc |= result_put_int(&m, "index", r->index);
    rc |= result_put_int(&m, "attempt", r->attempt);
    rc |= result_put_str(&m, "outcome", r->outcome);
    rc |= result_put_int(&m, "status", r->status);
    if (r->reason && r->reason[0])
        rc |= result_put_str(&m, "reason", r->reason);
    if (r->error && r->error[0])
        rc |= result_put_str(&m, "error", r->error);
    rc |= result_put_times(&m, r);
    rc |= result_put_str(&m, "worker", r->worker);
    rc |= result_put_response(&m, r);
    char *text = rc == ERR_OK ? jval_to_text(&m, len) : NULL;
    jval_fini(&m);
    if (!text)
        return ERR_NOMEM;
    *out = text;
    return ERR_OK;
}
