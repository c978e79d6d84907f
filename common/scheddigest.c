/* scheddigest: FNV-1a 64 over a length-prefixed, type-tagged serialization of an entry. */
#include "scheddigest.h"

#include <string.h>

static void sd_h_bytes(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ULL;
    }
}

static void sd_h_u64(uint64_t *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    sd_h_bytes(h, b, sizeof b);
}

static void sd_h_str(uint64_t *h, const char *s, size_t n)
{
    sd_h_u64(h, s ? n : UINT64_MAX); /* NULL differs from "" */
    if (s)
        sd_h_bytes(h, s, n);
}

static void sd_h_jval(uint64_t *h, const jval *v)
{
    uint64_t bits = 0;
    sd_h_u64(h, (uint64_t)v->type);
    switch (v->type) {
    case JVAL_BOOL:
        sd_h_u64(h, v->u.b);
        break;
    case JVAL_INT:
        sd_h_u64(h, (uint64_t)v->u.i);
        break;
    case JVAL_FLOAT:
        memcpy(&bits, &v->u.f, sizeof bits);
        sd_h_u64(h, bits);
        break;
    case JVAL_STR:
        sd_h_str(h, v->u.s.ptr, v->u.s.len);
        break;
    case JVAL_ARRAY:
        sd_h_u64(h, v->u.arr.n);
        for (size_t i = 0; i < v->u.arr.n; i++)
            sd_h_jval(h, &v->u.arr.items[i]);
        break;
    case JVAL_MAP:
        sd_h_u64(h, v->u.map.n);
        for (size_t i = 0; i < v->u.map.n; i++) {
            sd_h_str(h, v->u.map.kv[i].key, strlen(v->u.map.kv[i].key));
            sd_h_jval(h, &v->u.map.kv[i].val);
        }
        break;
    default:
        break;
    }
}

static void sd_h_http(uint64_t *h, const job_http *x)
{
    sd_h_str(h, x->method, x->method ? strlen(x->method) : 0);
    sd_h_str(h, x->url, x->url ? strlen(x->url) : 0);
    sd_h_u64(h, x->nheaders);
    for (size_t i = 0; i < x->nheaders; i++) {
        sd_h_str(h, x->headers[i].name, strlen(x->headers[i].name));
        sd_h_str(h, x->headers[i].value, strlen(x->headers[i].value));
    }
    sd_h_str(h, x->body, x->body_len);
    sd_h_u64(h, x->connect_timeout_ms);
    sd_h_u64(h, x->timeout_ms);
    sd_h_u64(h, x->nok_status);
    for (size_t i = 0; i < x->nok_status; i++)
        sd_h_u64(h, x->ok_status[i]);
    sd_h_u64(h, x->follow_redirects);
}

uint64_t scheddigest_entry(const sched_entry *e)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const cronexpr *ce = &e->cron;
    sd_h_u64(&h, (uint64_t)e->kind);
    sd_h_u64(&h, ce->sec);
    sd_h_u64(&h, ce->min);
    sd_h_u64(&h, ce->hour);
    sd_h_u64(&h, ce->dom);
    sd_h_u64(&h, ce->month);
    sd_h_u64(&h, ce->dow);
    sd_h_u64(&h, (uint64_t)ce->dom_star << 1 | ce->dow_star);
    sd_h_u64(&h, (uint64_t)ce->every_s);
    sd_h_u64(&h, (uint64_t)e->at_s);
    sd_h_str(&h, e->tz_name, e->tz_name ? strlen(e->tz_name) : 0);
    sd_h_http(&h, &e->http);
    sd_h_jval(&h, &e->context);
    sd_h_u64(&h, e->fan_count);
    sd_h_u64(&h, e->fan_items != NULL);
    for (size_t i = 0; e->fan_items && i < e->fan_count; i++)
        sd_h_str(&h, e->fan_items[i], e->fan_items[i] ? strlen(e->fan_items[i]) : 0);
    sd_h_u64(&h, (uint64_t)e->misfire);
    sd_h_u64(&h, e->misfire_max);
    sd_h_u64(&h, (uint64_t)e->max_lateness_ms);
    sd_h_u64(&h, e->max_attempts);
    sd_h_u64(&h, (uint64_t)e->lead_ms);
    return h;
}
