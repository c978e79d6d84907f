/* tzone: TZif (v1/v2/v3) reader plus the POSIX TZ footer rule, for thread-safe UTC <-> wall. */
#include "tzone.h"

#include "clock.h"
#include "err.h"
#include "fileio.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* IANA names are at most ~30 bytes; 255 is the limit a file name component allows. */
#define TZONE_NAME_MAX 255
/* The largest fat 2025b file is under 4 KiB; 256 KiB leaves room and still bounds the read. */
#define TZONE_FILE_MAX (256 * 1024)
/* Fat files hold a few hundred transitions up to 2037; anything past this is not a zone. */
#define TZONE_TRANS_MAX 10000
/* RFC 8536 3.2: UT offsets SHOULD lie in -25:59:59..+25:59:59. */
#define TZONE_OFF_MAX 93599
/* POSIX rule times may run -167..+167 hours (RFC 8536 3.3.1, the v3 extension). */
#define TZONE_RULE_HOURS_MAX 167
/* Resolving a wall time samples offsets this far either side: more than any UT offset, so the
 * samples fall on both sides of a transition near the wall time. */
#define TZONE_WINDOW_S (2 * 86400)

/* One end of a DST period from the POSIX rule: Jn (1..365, no Feb 29), n (0..365) or Mm.w.d. */
typedef struct tzone_rdate {
    char kind; /* 'J', 'N' or 'M' */
    int n, m, w, d;
    int32_t time_s; /* local time of day of the change, may be negative or past 24h */
} tzone_rdate;

typedef struct tzone_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tzone_rdate start, end;
} tzone_rule;

/* Transitions are resolved to offsets at load time: callers only ever need the offset, so
 * keeping the TZif types around would only add an indirection to every lookup. */
struct tzone {
    char name[TZONE_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;     /* ascending UTC instants */
    int32_t *trans_off; /* offset in force from trans[i] on */
    int32_t first_off;  /* before the first transition (TZif type 0) */
    bool has_rule;      /* the footer governs instants after the last transition */
    tzone_rule rule;
    unsigned refs;      /* holders of this shared instance (under tzone_cache_lock) */
    struct tzone *next; /* in tzone_cache */
};

/* Loaded zones are immutable, so one instance per name is shared by every holder: a schedule
 * of 100,000 entries in five zones reads five files, not 100,000. */
static pthread_mutex_t tzone_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tzone *tzone_cache;

/* ---- POSIX TZ rule (the TZif footer) ---------------------------------------------------- */

static bool tzone_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Skip a zone abbreviation: three or more letters, or <...> of letters, digits, '+', '-'. */
static const char *tzone_posix_name(const char *p)
{
    const char *s = p;
    if (*p == '<') {
        for (p++; *p && *p != '>'; p++) {
            if (!tzone_is_alpha(*p) && !(*p >= '0' && *p <= '9') && *p != '+' && *p != '-')
                return NULL;
        }
        return (*p == '>' && p - s >= 4) ? p + 1 : NULL;
    }
    while (tzone_is_alpha(*p))
        p++;
    return p - s >= 3 ? p : NULL;
}

static const char *tzone_posix_num(const char *p, int max, int *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    int v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > max)
            return NULL;
    }
    *out = v;
    return p;
}

/* [+-]hh[:mm[:ss]] as seconds; max_h bounds the hours. */
static const char *tzone_posix_hms(const char *p, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    p = tzone_posix_num(p, max_h, &h);
    if (p && *p == ':')
        p = tzone_posix_num(p + 1, 59, &m);
    if (p && *p == ':')
        p = tzone_posix_num(p + 1, 59, &s);
    if (p)
        *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *tzone_posix_date(const char *p, tzone_rdate *r)
{
    r->time_s = 7200; /* POSIX default: 02:00 local */
    if (*p == 'J') {
        r->kind = 'J';
        p = tzone_posix_num(p + 1, 365, &r->n);
        if (p && r->n < 1)
            return NULL;
    } else if (*p == 'M') {
        r->kind = 'M';
        p = tzone_posix_num(p + 1, 12, &r->m);
        p = p && *p == '.' ? tzone_posix_num(p + 1, 5, &r->w) : NULL;
        p = p && *p == '.' ? tzone_posix_num(p + 1, 6, &r->d) : NULL;
        if (p && (r->m < 1 || r->w < 1))
            return NULL;
    } else {
        r->kind = 'N';
        p = tzone_posix_num(p, 365, &r->n);
    }
    if (p && *p == '/')
        p = tzone_posix_hms(p + 1, TZONE_RULE_HOURS_MAX, &r->time_s);
    return p;
}

/* Parse a footer such as "CET-1CEST,M3.5.0,M10.5.0/3". POSIX offsets are west-positive, so
 * they are negated into salvo's east-positive convention. */
static int tzone_posix_parse(const char *s, tzone_rule *r)
{
    int32_t off;
    memset(r, 0, sizeof *r);
    const char *p = tzone_posix_name(s);
    p = p ? tzone_posix_hms(p, 24, &off) : NULL;
    if (!p)
        return ERR_TZ;
    r->std_off = -off;
    r->dst_off = r->std_off;
    if (*p == '\0')
        return ERR_OK;
    p = tzone_posix_name(p);
    if (!p)
        return ERR_TZ;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        p = tzone_posix_hms(p, 24, &off);
        if (!p)
            return ERR_TZ;
        r->dst_off = -off;
    }
    /* No rule after a DST name: use the US rule, as glibc does. TZif footers always give one. */
    const char *rule = *p == ',' ? p + 1 : "M3.2.0,M11.1.0";
    p = tzone_posix_date(rule, &r->start);
    p = p && *p == ',' ? tzone_posix_date(p + 1, &r->end) : NULL;
    return (p && *p == '\0') ? ERR_OK : ERR_TZ;
}

static bool tzone_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since the epoch of a rule date in year y. */
static int64_t tzone_rdate_day(const tzone_rdate *r, int64_t y)
{
    int64_t jan1 = clock_days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->n - 1 + (tzone_leap(y) && r->n >= 60);
    if (r->kind == 'N')
        return jan1 + r->n;
    int64_t first = clock_days_from_civil(y, (unsigned)r->m, 1);
    int64_t next = r->m == 12 ? clock_days_from_civil(y + 1, 1, 1)
                              : clock_days_from_civil(y, (unsigned)r->m + 1, 1);
    int wday_first = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = first + (r->d - wday_first + 7) % 7 + (int64_t)(r->w - 1) * 7;
    while (day >= next) /* "week 5" means the last such weekday */
        day -= 7;
    return day;
}

static int32_t tzone_rule_offset(const tzone_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    unsigned m, d;
    clock_civil_from_days(clock_floor_div(t + r->std_off, 86400), &y, &m, &d);
    /* The start is written in standard time, the end in daylight time. */
    int64_t start = tzone_rdate_day(&r->start, y) * 86400 + r->start.time_s - r->std_off;
    int64_t end = tzone_rdate_day(&r->end, y) * 86400 + r->end.time_s - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

/* ---- TZif file ---------------------------------------------------------------------------- */

typedef struct tzone_hdr {
    int version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzone_hdr;

static uint32_t tzone_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tzone_be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)tzone_be32(p) << 32 | tzone_be32(p + 4));
}

/* Parse a 44-byte header and bound its counts before anything is sized from them. */
static int tzone_hdr_parse(const unsigned char *p, size_t len, tzone_hdr *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return ERR_TZ;
    h->version = p[4] == 0 ? 1 : p[4] - '0';
    h->isutcnt = tzone_be32(p + 20);
    h->isstdcnt = tzone_be32(p + 24);
    h->leapcnt = tzone_be32(p + 28);
    h->timecnt = tzone_be32(p + 32);
    h->typecnt = tzone_be32(p + 36);
    h->charcnt = tzone_be32(p + 40);
    if (h->version < 1 || h->version > 9 || h->typecnt < 1 || h->typecnt > 256 ||
        h->timecnt > TZONE_TRANS_MAX || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) || h->leapcnt > TZONE_FILE_MAX ||
        h->charcnt > TZONE_FILE_MAX)
        return ERR_TZ;
    return ERR_OK;
}

/* Size of the data block after a header; tsize is 4 (v1 block) or 8 (v2+ block). */
static size_t tzone_block_len(const tzone_hdr *h, size_t tsize)
{
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Copy transitions and resolve each one's type to its offset. Leap-second records ("right/"
 * zones) are skipped: salvo runs on POSIX time, which has none. */
static int tzone_block_load(tzone *tz, const tzone_hdr *h, const unsigned char *p, size_t tsize)
{
    const unsigned char *idx = p + (size_t)h->timecnt * tsize;
    const unsigned char *types = idx + h->timecnt;
    int32_t offs[256];
    for (uint32_t i = 0; i < h->typecnt; i++) {
        offs[i] = (int32_t)tzone_be32(types + (size_t)i * 6);
        if (offs[i] < -TZONE_OFF_MAX || offs[i] > TZONE_OFF_MAX || types[i * 6 + 4] > 1)
            return ERR_TZ;
    }
    tz->trans = calloc(h->timecnt ? h->timecnt : 1, sizeof *tz->trans);
    tz->trans_off = calloc(h->timecnt ? h->timecnt : 1, sizeof *tz->trans_off);
    if (!tz->trans || !tz->trans_off)
        return ERR_NOMEM;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        const unsigned char *tp = p + (size_t)i * tsize;
        tz->trans[i] = tsize == 8 ? tzone_be64(tp) : (int64_t)(int32_t)tzone_be32(tp);
        if (idx[i] >= h->typecnt || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            return ERR_TZ;
        tz->trans_off[i] = offs[idx[i]];
    }
    tz->ntrans = h->timecnt;
    tz->first_off = offs[0];
    return ERR_OK;
}

/* The v2+ footer: "\n<POSIX TZ>\n". An empty one means the last type stays in force. */
static int tzone_footer_load(tzone *tz, const unsigned char *p, size_t len)
{
    char buf[128];
    if (len < 2 || p[0] != '\n')
        return ERR_TZ;
    const unsigned char *nl = memchr(p + 1, '\n', len - 1);
    size_t n = nl ? (size_t)(nl - p - 1) : 0;
    if (!nl || n >= sizeof buf)
        return ERR_TZ;
    if (n == 0)
        return ERR_OK;
    memcpy(buf, p + 1, n);
    buf[n] = '\0';
    if (tzone_posix_parse(buf, &tz->rule) != ERR_OK)
        return ERR_TZ;
    tz->has_rule = true;
    return ERR_OK;
}

/* Parse a whole TZif image, preferring the 64-bit v2+ block when there is one. */
static int tzone_parse(tzone *tz, const unsigned char *buf, size_t len)
{
    tzone_hdr h;
    if (tzone_hdr_parse(buf, len, &h) != ERR_OK)
        return ERR_TZ;
    size_t v1_len = tzone_block_len(&h, 4);
    if (v1_len > len - 44)
        return ERR_TZ;
    if (h.version == 1)
        return tzone_block_load(tz, &h, buf + 44, 4);
    const unsigned char *p = buf + 44 + v1_len;
    size_t rest = len - 44 - v1_len;
    if (tzone_hdr_parse(p, rest, &h) != ERR_OK)
        return ERR_TZ;
    size_t v2_len = tzone_block_len(&h, 8);
    if (v2_len > rest - 44)
        return ERR_TZ;
    int rc = tzone_block_load(tz, &h, p + 44, 8);
    if (rc != ERR_OK)
        return rc;
    return tzone_footer_load(tz, p + 44 + v2_len, rest - 44 - v2_len);
}

/* ---- public API --------------------------------------------------------------------------- */

/* Names are relative paths under the zone directory: refuse anything that could leave it. */
static bool tzone_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZONE_NAME_MAX || name[0] == '/' || strstr(name, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!tzone_is_alpha(c) && !(c >= '0' && c <= '9') && !strchr("/_+-.", c))
            return false;
    }
    return true;
}

static int tzone_load_file(tzone *tz, const char *name, char *err, size_t cap)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    fileio_buf file = {0};
    int n = snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    int rc = n > 0 && (size_t)n < sizeof path ? fileio_read(path, TZONE_FILE_MAX, &file, NULL, 0)
                                              : ERR_IO;
    if (rc == ERR_OK && !S_ISREG(file.mode)) {
        fileio_fini(&file); /* a zone is a file: never a device or a pipe under TZDIR */
        rc = ERR_IO;
    }
    bool builtin_utc = !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC");
    if (rc != ERR_OK && builtin_utc)
        return ERR_OK; /* a calloc'ed tzone is already UTC */
    if (rc != ERR_OK) {
        snprintf(err, cap, "time zone '%s': cannot read %s", name, path);
        return ERR_TZ;
    }
    rc = tzone_parse(tz, (const unsigned char *)file.data, file.len);
    fileio_fini(&file);
    if (rc == ERR_TZ)
        snprintf(err, cap, "time zone '%s': %s is not a valid TZif file", name, path);
    return rc;
}

static tzone *tzone_cache_find(const char *name)
{
    for (tzone *tz = tzone_cache; tz; tz = tz->next) {
        if (strcmp(tz->name, name) == 0)
            return tz;
    }
    return NULL;
}

static void tzone_destroy(tzone *tz)
{
    free(tz->trans);
    free(tz->trans_off);
    free(tz);
}

int tzone_load(const char *name, tzone **out, char *err, size_t cap)
{
    *out = NULL;
    if (!err)
        cap = 0; /* snprintf(NULL, 0, ...) is a valid no-op */
    if (!name || !tzone_name_ok(name)) {
        snprintf(err, cap, "invalid time zone name '%.64s'", name ? name : "(null)");
        return ERR_TZ;
    }
    int rc = ERR_OK;
    pthread_mutex_lock(&tzone_cache_lock);
    tzone *tz = tzone_cache_find(name);
    if (tz) {
        tz->refs++;
        goto out;
    }
    rc = ERR_NOMEM;
    tz = calloc(1, sizeof *tz);
    if (!tz)
        goto out;
    memcpy(tz->name, name, strlen(name) + 1);
    rc = tzone_load_file(tz, name, err, cap);
    if (rc != ERR_OK) {
        tzone_destroy(tz);
        tz = NULL;
        goto out;
    }
    tz->refs = 1;
    tz->next = tzone_cache;
    tzone_cache = tz;
out:
    pthread_mutex_unlock(&tzone_cache_lock);
    *out = tz;
    return rc;
}

void tzone_free(tzone *tz)
{
    if (!tz)
        return;
    pthread_mutex_lock(&tzone_cache_lock);
    bool last = --tz->refs == 0;
    if (last) {
        tzone **pp = &tzone_cache;
        while (*pp && *pp != tz)
            pp = &(*pp)->next;
        if (*pp)
            *pp = tz->next;
    }
    pthread_mutex_unlock(&tzone_cache_lock);
    if (last)
        tzone_destroy(tz);
}

const char *tzone_name(const tzone *tz)
{
    return tz->name;
}

int32_t tzone_offset_at(const tzone *tz, int64_t t)
{
    size_t n = tz->ntrans;
    if (n == 0)
        return tz->has_rule ? tzone_rule_offset(&tz->rule, t) : tz->first_off;
    if (t < tz->trans[0])
        return tz->first_off;
    if (t > tz->trans[n - 1] && tz->has_rule)
        return tzone_rule_offset(&tz->rule, t);
    size_t lo = 0, hi = n; /* invariant: trans[lo] <= t < trans[hi] (hi == n: past the end) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->trans_off[lo];
}

void tzone_to_civil(const tzone *tz, int64_t t, tzone_civil *out)
{
    int32_t off = tzone_offset_at(tz, t);
    int64_t local = t + off;
    int64_t days = clock_floor_div(local, 86400);
    int64_t sod = local - days * 86400;
    clock_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (unsigned)(sod / 3600);
    out->minute = (unsigned)(sod / 60 % 60);
    out->second = (unsigned)(sod % 60);
    out->wday = (unsigned)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    out->utc_offset_s = off;
}

/* Inside a gap, find the transition: the first instant in (lo, hi] whose wall clock has
 * jumped past `local`. The wall clock is monotonic there because only one transition lies in
 * the window. */
static int64_t tzone_gap_end(const tzone *tz, int64_t local, int64_t lo, int64_t hi)
{
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + tzone_offset_at(tz, mid) > local)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

int tzone_from_local(const tzone *tz, int64_t local, int64_t *first)
{
    int32_t before = tzone_offset_at(tz, local - TZONE_WINDOW_S);
    int32_t after = tzone_offset_at(tz, local + TZONE_WINDOW_S);
    int32_t cand[3] = {before, tzone_offset_at(tz, local), after};
    int64_t found[3];
    int count = 0;
    for (int i = 0; i < 3; i++) {
        int64_t t = local - cand[i];
        bool dup = false;
        for (int j = 0; j < count; j++)
            dup = dup || found[j] == t;
        if (!dup && tzone_offset_at(tz, t) == cand[i])
            found[count++] = t;
    }
    if (count > 0) {
        *first = found[0];
        for (int j = 1; j < count; j++)
            *first = found[j] < *first ? found[j] : *first;
        return count > 2 ? 2 : count;
    }
    /* A gap: the clock jumped from `before` to `after` (> before) across `local`. */
    *first =
        after > before ? tzone_gap_end(tz, local, local - after, local - before) : local - before;
    return 0;
}
