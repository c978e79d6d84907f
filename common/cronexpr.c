/* cronexpr: parse cron expressions (seconds, names, macros, @every) and find the next fire. */
#include "cronexpr.h"

#include "clock.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Nothing is searched past this many days (8 years with their leap days): long enough for the
 * next Feb 29 across a skipped century leap year (2096 -> 2104), short enough to bound 30 FEB. */
#define CRON_SEARCH_DAYS (8 * 365 + 2)
/* @every beyond ten years is surely a typo, and the bound keeps the sums far from overflow. */
#define CRON_EVERY_MAX (3650LL * 86400)
/* Instants further than ~35,000 years from 1970 are refused, so no local-time sum overflows. */
#define CRON_T_MAX (1LL << 40)

typedef struct cron_def {
    const char *name;
    unsigned lo, hi;
    const char *names; /* 3-letter names for lo.., or NULL */
} cron_def;

/* The six fields in 6-field order; the 5-field form starts at index 1. */
static const cron_def cron_defs[6] = {
    {"second", 0, 59, NULL},
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC"},
    {"day-of-week", 0, 7, "SUNMONTUEWEDTHUFRISAT"}, /* 7 is Sunday too */
};

static const struct {
    const char *name, *expr;
} cron_macros[] = {
    {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},
};

/* Where an error message points: the whole expression, and which field is being parsed. */
typedef struct cron_ctx {
    const char *expr;
    int fieldno; /* 1-based as the user wrote it (5-field form: minute is field 1) */
    const cron_def *def;
    char *err;
    size_t cap;
} cron_ctx;

__attribute__((format(printf, 3, 4))) static int cron_fail(const cron_ctx *cx, const char *at,
                                                           const char *fmt, ...)
{
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    int col = (int)(at - cx->expr) + 1;
    if (cx->def)
        snprintf(cx->err, cx->cap, "field %d (%s) at column %d: %s", cx->fieldno, cx->def->name,
                 col, detail);
    else
        snprintf(cx->err, cx->cap, "at column %d: %s", col, detail);
    return ERR_CRON;
}

static bool cron_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool cron_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool cron_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static char cron_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* A number or a 3-letter name, checked against the field's range. */
static int cron_value(const cron_ctx *cx, const char **pp, const char *end, unsigned *out)
{
    const char *p = *pp;
    unsigned v = 0;
    if (p < end && cron_is_digit(*p)) {
        for (; p < end && cron_is_digit(*p); p++)
            v = v > 100000 ? v : v * 10 + (unsigned)(*p - '0'); /* saturate, then reject */
    } else if (p < end && cron_is_alpha(*p)) {
        const char *s = p;
        while (p < end && cron_is_alpha(*p))
            p++;
        const char *n = cx->def->names;
        size_t i = 0, count = n ? strlen(n) / 3 : 0;
        while (i < count && !(p - s == 3 && cron_upper(s[0]) == n[3 * i] &&
                              cron_upper(s[1]) == n[3 * i + 1] && cron_upper(s[2]) == n[3 * i + 2]))
            i++;
        if (i == count)
            return cron_fail(cx, s, "unknown name '%.*s'", (int)(p - s), s);
        v = cx->def->lo + (unsigned)i;
    } else if (p < end) {
        return cron_fail(cx, p, "unexpected '%c'", *p);
    } else {
        return cron_fail(cx, p, "missing value");
    }
    if (v < cx->def->lo || v > cx->def->hi)
        return cron_fail(cx, *pp, "value %.*s out of range %u-%u", (int)(p - *pp), *pp, cx->def->lo,
                         cx->def->hi);
    *pp = p;
    *out = v;
    return ERR_OK;
}

/* "/n" after a range or '*'. */
static int cron_step(const cron_ctx *cx, const char **pp, const char *end, unsigned *out)
{
    const char *p = *pp + 1;
    unsigned v = 0, max = cx->def->hi - cx->def->lo + 1;
    if (p >= end || !cron_is_digit(*p))
        return cron_fail(cx, p, "missing step after '/'");
    for (; p < end && cron_is_digit(*p); p++)
        v = v > 100000 ? v : v * 10 + (unsigned)(*p - '0');
    if (v < 1 || v > max)
        return cron_fail(cx, *pp + 1, "step %u out of range 1-%u", v, max);
    *pp = p;
    *out = v;
    return ERR_OK;
}

static bool cron_is_dayfield(const cron_def *def)
{
    return def == &cron_defs[3] || def == &cron_defs[5];
}

/* v or a-b after the first character of an item; a lone v with a step runs to the maximum. */
static int cron_range(const cron_ctx *cx, const char **pp, const char *end, unsigned *lo,
                      unsigned *hi)
{
    const char *start = *pp;
    int rc = cron_value(cx, pp, end, lo);
    if (rc != ERR_OK)
        return rc;
    if (*pp < end && **pp == '-') {
        (*pp)++;
        rc = cron_value(cx, pp, end, hi);
        if (rc != ERR_OK)
            return rc;
        if (*hi < *lo)
            return cron_fail(cx, start, "range %u-%u is reversed", *lo, *hi);
    } else if (!(*pp < end && **pp == '/') || *hi < *lo) {
        *hi = *lo; /* "v", or "7/n" in day-of-week, which is just Sunday */
    }
    return ERR_OK;
}

/* One list item: '*', '?', v, a-b, with an optional /step ("a/n" means a-max/n). */
static int cron_item(const cron_ctx *cx, const char *p, const char *end, uint64_t *bits)
{
    /* '*' and "a/n" cover each weekday once: 7 is only an alias for an explicit Sunday. */
    unsigned lo = cx->def->lo, hi = cx->def == &cron_defs[5] ? 6 : cx->def->hi, step = 1;
    int rc = ERR_OK;
    if (*p == '?') {
        if (!cron_is_dayfield(cx->def))
            return cron_fail(cx, p, "'?' is only allowed in day-of-month and day-of-week");
        if (end - p != 1)
            return cron_fail(cx, p + 1, "'?' must stand alone");
        p++;
    } else if (*p == '*') {
        p++;
    } else {
        rc = cron_range(cx, &p, end, &lo, &hi);
    }
    if (rc == ERR_OK && p < end && *p == '/')
        rc = cron_step(cx, &p, end, &step);
    if (rc != ERR_OK)
        return rc;
    if (p < end)
        return cron_fail(cx, p, "unexpected '%c'", *p);
    for (unsigned v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return ERR_OK;
}

/* A comma-separated list of items covering [p, end). */
static int cron_field(const cron_ctx *cx, const char *p, const char *end, uint64_t *bits)
{
    *bits = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (stop == p)
            return cron_fail(cx, p, "empty list item");
        int rc = cron_item(cx, p, stop, bits);
        if (rc != ERR_OK)
            return rc;
        if (!comma)
            return ERR_OK;
        p = comma + 1;
    }
}

/* Split into whitespace-separated fields, recording at most max of them but counting all, so
 * "found 7" can be reported. */
static int cron_split(const char *s, const char **beg, const char **end, int max)
{
    int n = 0;
    for (;;) {
        while (cron_is_space(*s))
            s++;
        if (*s == '\0')
            return n;
        const char *b = s;
        while (*s && !cron_is_space(*s))
            s++;
        if (n < max) {
            beg[n] = b;
            end[n] = s;
        }
        n++;
    }
}

static bool cron_is_star(const char *b, const char *e)
{
    return e - b == 1 && (*b == '*' || *b == '?');
}

static int cron_fields(cronexpr *out, cron_ctx *cx)
{
    const char *beg[6], *end[6];
    int n = cron_split(cx->expr, beg, end, 6);
    if (n != 5 && n != 6)
        return cron_fail(cx, cx->expr, "expected 5 or 6 fields, found %d", n);
    uint64_t bits[6] = {1}; /* 5-field form: second 0 */
    int first = 6 - n;
    for (int i = first; i < 6; i++) {
        cx->fieldno = i - first + 1;
        cx->def = &cron_defs[i];
        int rc = cron_field(cx, beg[i - first], end[i - first], &bits[i]);
        if (rc != ERR_OK)
            return rc;
    }
    out->sec = bits[0];
    out->min = bits[1];
    out->hour = (uint32_t)bits[2];
    out->dom = (uint32_t)bits[3];
    out->month = (uint16_t)bits[4];
    out->dow = (uint8_t)((bits[5] | bits[5] >> 7) & 0x7f); /* 7 folds onto Sunday */
    out->dom_star = cron_is_star(beg[3 - first], end[3 - first]);
    out->dow_star = cron_is_star(beg[5 - first], end[5 - first]);
    return ERR_OK;
}

/* "@every 1h30m": one or more <number><unit> with units s, m, h, d. */
static int cron_every(cronexpr *out, cron_ctx *cx, const char *p)
{
    int64_t total = 0;
    while (cron_is_space(*p))
        p++;
    if (*p == '\0')
        return cron_fail(cx, p, "@every needs a duration such as 90s or 1h30m");
    while (*p && !cron_is_space(*p)) {
        const char *num = p;
        int64_t v = 0;
        for (; cron_is_digit(*p); p++)
            v = v > CRON_EVERY_MAX ? v : v * 10 + (*p - '0');
        if (p == num)
            return cron_fail(cx, p, "expected a number in the @every duration");
        const char *units = "smhd";
        const char *u = *p ? strchr(units, *p) : NULL;
        static const int64_t scale[] = {1, 60, 3600, 86400};
        if (!u)
            return cron_fail(cx, p, "expected a unit (s, m, h or d) after %lld", (long long)v);
        total += v > CRON_EVERY_MAX ? CRON_EVERY_MAX + 1 : v * scale[u - units];
        total = total > CRON_EVERY_MAX ? CRON_EVERY_MAX + 1 : total;
        p++;
    }
    while (cron_is_space(*p))
        p++;
    if (*p)
        return cron_fail(cx, p, "unexpected '%c' after the @every duration", *p);
    if (total < 1 || total > CRON_EVERY_MAX)
        return cron_fail(cx, cx->expr, "@every duration must be 1s to 3650d");
    out->every_s = total;
    return ERR_OK;
}

static int cron_macro(cronexpr *out, cron_ctx *cx, const char *p)
{
    const char *e = p;
    while (*e && !cron_is_space(*e))
        e++;
    size_t n = (size_t)(e - p);
    if (n == 6 && strncmp(p, "@every", 6) == 0)
        return cron_every(out, cx, e);
    for (size_t i = 0; i < sizeof cron_macros / sizeof cron_macros[0]; i++) {
        if (strlen(cron_macros[i].name) != n || strncmp(p, cron_macros[i].name, n) != 0)
            continue;
        while (cron_is_space(*e))
            e++;
        if (*e)
            return cron_fail(cx, e, "unexpected text after %s", cron_macros[i].name);
        cx->expr = cron_macros[i].expr;
        return cron_fields(out, cx);
    }
    return cron_fail(cx, p, "unknown macro '%.*s'", (int)(n > 32 ? 32 : n), p);
}

int cronexpr_parse(cronexpr *out, const char *expr, char *err, size_t cap)
{
    cron_ctx cx = {.expr = expr, .err = err, .cap = err ? cap : 0};
    memset(out, 0, sizeof *out);
    if (!expr)
        return cron_fail(&cx, "", "no expression");
    const char *p = expr;
    while (cron_is_space(*p))
        p++;
    if (*p == '\0')
        return cron_fail(&cx, p, "empty expression");
    int rc = *p == '@' ? cron_macro(out, &cx, p) : cron_fields(out, &cx);
    if (rc != ERR_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- next fire time --------------------------------------------------------------------- */

/* A broken-down wall clock being advanced field by field. */
typedef struct cron_tm {
    int64_t days; /* since 1970-01-01 */
    int64_t y;
    unsigned mo, d, h, mi, s, wday;
} cron_tm;

static void cron_tm_day(cron_tm *c, int64_t days)
{
    c->days = days;
    clock_civil_from_days(days, &c->y, &c->mo, &c->d);
    c->wday = (unsigned)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    c->h = c->mi = c->s = 0;
}

static void cron_tm_next_month(cron_tm *c)
{
    int64_t y = c->mo == 12 ? c->y + 1 : c->y;
    cron_tm_day(c, clock_days_from_civil(y, c->mo == 12 ? 1 : c->mo + 1, 1));
}

static void cron_tm_next_hour(cron_tm *c)
{
    if (c->h == 23) {
        cron_tm_day(c, c->days + 1);
        return;
    }
    c->h++;
    c->mi = c->s = 0;
}

static void cron_tm_next_minute(cron_tm *c)
{
    if (c->mi == 59) {
        cron_tm_next_hour(c);
        return;
    }
    c->mi++;
    c->s = 0;
}

/* Lowest set bit at or above `from`, or -1. */
static int cron_next_bit(uint64_t bits, unsigned from)
{
    uint64_t rest = from > 63 ? 0 : bits >> from;
    return rest ? (int)from + __builtin_ctzll(rest) : -1;
}

/* Vixie semantics: when both day fields are restricted, either may match. */
static bool cron_day_ok(const cronexpr *ce, const cron_tm *c)
{
    bool dom = (ce->dom >> c->d) & 1, dow = (ce->dow >> c->wday) & 1;
    return (ce->dom_star || ce->dow_star) ? (dom && dow) : (dom || dow);
}

/* The first wall time >= wall (local seconds) that matches all fields, ignoring DST. Whole
 * months, days, hours and minutes that cannot match are skipped in one step each. */
static int cron_find(const cronexpr *ce, int64_t wall, int64_t limit_days, int64_t *out)
{
    cron_tm c;
    int64_t days = clock_floor_div(wall, 86400), sod = wall - days * 86400;
    cron_tm_day(&c, days);
    c.h = (unsigned)(sod / 3600);
    c.mi = (unsigned)(sod / 60 % 60);
    c.s = (unsigned)(sod % 60);
    while (c.days <= limit_days) {
        if (!((ce->month >> c.mo) & 1)) {
            cron_tm_next_month(&c);
            continue;
        }
        int h = cron_day_ok(ce, &c) ? cron_next_bit(ce->hour, c.h) : -1;
        if (h < 0) {
            cron_tm_day(&c, c.days + 1);
            continue;
        }
        if ((unsigned)h != c.h) {
            c.h = (unsigned)h;
            c.mi = c.s = 0;
        }
        int m = cron_next_bit(ce->min, c.mi);
        if (m < 0 || m > 59) {
            cron_tm_next_hour(&c);
            continue;
        }
        if ((unsigned)m != c.mi) {
            c.mi = (unsigned)m;
            c.s = 0;
        }
        int s = cron_next_bit(ce->sec, c.s);
        if (s < 0 || s > 59) {
            cron_tm_next_minute(&c);
            continue;
        }
        *out = c.days * 86400 + c.h * 3600 + c.mi * 60 + (unsigned)s;
        return ERR_OK;
    }
    return ERR_NOTFOUND;
}

int cronexpr_next(const cronexpr *ce, const tzone *tz, int64_t after, int64_t *next)
{
    if (after < -CRON_T_MAX || after > CRON_T_MAX)
        return ERR_RANGE;
    if (ce->every_s > 0) {
        *next = (clock_floor_div(after, ce->every_s) + 1) * ce->every_s;
        return ERR_OK;
    }
    int64_t wall = after + (tz ? tzone_offset_at(tz, after) : 0) + 1;
    int64_t limit_days = clock_floor_div(wall, 86400) + CRON_SEARCH_DAYS;
    for (;;) {
        int64_t w, t;
        int rc = cron_find(ce, wall, limit_days, &w);
        if (rc != ERR_OK)
            return rc;
        if (!tz) {
            *next = w;
            return ERR_OK;
        }
        /* Gap: fire at the gap's end. Overlap: only the first occurrence, so a wall time whose
         * first occurrence is already past (after sits in the repeat) is skipped. */
        tzone_from_local(tz, w, &t);
        if (t > after) {
            *next = t;
            return ERR_OK;
        }
        wall = w + 1;
    }
}
