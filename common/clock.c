/* clock: realtime/monotonic reads, absolute sleeps, ISO-8601 formatting and civil dates. */
#include "clock.h"

#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * CLOCK_NS_PER_SEC + ts.tv_nsec;
}

int64_t clock_real_ns(void)
{
    return clock_read(CLOCK_REALTIME);
}

int64_t clock_mono_ns(void)
{
    return clock_read(CLOCK_MONOTONIC);
}

static int clock_sleep_until(clockid_t id, int64_t when_ns)
{
    struct timespec ts = {.tv_sec = when_ns / CLOCK_NS_PER_SEC,
                          .tv_nsec = when_ns % CLOCK_NS_PER_SEC};
    int rc = clock_nanosleep(id, TIMER_ABSTIME, &ts, NULL);
    if (rc == 0)
        return ERR_OK;
    return rc == EINTR ? ERR_INTR : ERR_INVAL;
}

int clock_sleep_until_real(int64_t when_ns)
{
    return clock_sleep_until(CLOCK_REALTIME, when_ns);
}

int clock_sleep_until_mono(int64_t when_ns)
{
    return clock_sleep_until(CLOCK_MONOTONIC, when_ns);
}

/* Howard Hinnant's days_from_civil: exact proleptic Gregorian arithmetic without libc. */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void clock_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t clock_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int clock_ms_until(int64_t now_ns, int64_t then_ns, int max_ms)
{
    if (then_ns <= now_ns)
        return 0;
    int64_t left = then_ns - now_ns; /* may be near INT64_MAX: compare before rounding */
    if (left > (int64_t)max_ms * CLOCK_NS_PER_MS)
        return max_ms;
    return (int)((left + CLOCK_NS_PER_MS - 1) / CLOCK_NS_PER_MS);
}

char *clock_put_digits(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* Digits by hand rather than three snprintf calls: every log line, result record and request
 * header formats an instant, and snprintf made it ~4,200 instructions a call. */
char *clock_format_iso(int64_t real_ns, int digits, char *buf, size_t cap)
{
    /* int64_t nanoseconds span the years 1677-2262, so four year digits always suffice. */
    int64_t secs = clock_floor_div(real_ns, CLOCK_NS_PER_SEC);
    int64_t frac = real_ns - secs * CLOCK_NS_PER_SEC;
    int64_t days = clock_floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    clock_civil_from_days(days, &y, &m, &d);
    char out[40], *p = out; /* "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" */
    p = clock_put_digits(p, (uint64_t)y, 4);
    *p++ = '-';
    p = clock_put_digits(p, m, 2);
    *p++ = '-';
    p = clock_put_digits(p, d, 2);
    *p++ = 'T';
    p = clock_put_digits(p, (uint64_t)sod / 3600, 2);
    *p++ = ':';
    p = clock_put_digits(p, (uint64_t)sod / 60 % 60, 2);
    *p++ = ':';
    p = clock_put_digits(p, (uint64_t)sod % 60, 2);
    if (digits == 3 || digits == 6 || digits == 9) {
        *p++ = '.';
        uint64_t div = digits == 3 ? 1000000 : digits == 6 ? 1000 : 1;
        p = clock_put_digits(p, (uint64_t)frac / div, digits);
    }
    *p++ = 'Z';
    if (cap == 0)
        return buf;
    size_t n = (size_t)(p - out) < cap ? (size_t)(p - out) : cap - 1; /* as snprintf truncates */
    memcpy(buf, out, n);
    buf[n] = '\0';
    return buf;
}

/* Read exactly `n` decimal digits from *p, advancing it. */
static int clock_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return ERR_PARSE;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return ERR_OK;
}

static int clock_parse_zone(const char *p, int64_t *offset_s)
{
    *offset_s = 0;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return ERR_OK;
    if (*p != '+' && *p != '-')
        return ERR_PARSE;
    int sign = *p == '-' ? -1 : 1, hh, mm = 0;
    p++;
    if (clock_digits(&p, 2, &hh))
        return ERR_PARSE;
    if (*p == ':')
        p++;
    if (*p && clock_digits(&p, 2, &mm))
        return ERR_PARSE;
    if (*p || hh > 23 || mm > 59)
        return ERR_PARSE;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return ERR_OK;
}

int clock_parse_iso(const char *s, int64_t *out_ns)
{
    const char *p = s;
    int y, mo, d, h, mi, se;
    if (clock_digits(&p, 4, &y) || *p++ != '-' || clock_digits(&p, 2, &mo) || *p++ != '-' ||
        clock_digits(&p, 2, &d) || (*p != 'T' && *p != ' ') || !*p++ || clock_digits(&p, 2, &h) ||
        *p++ != ':' || clock_digits(&p, 2, &mi) || *p++ != ':' || clock_digits(&p, 2, &se))
        return ERR_PARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59)
        return ERR_PARSE;
    int64_t frac = 0, scale = CLOCK_NS_PER_SEC;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return ERR_PARSE;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    int64_t off;
    if (clock_parse_zone(p, &off))
        return ERR_PARSE;
    int64_t days = clock_days_from_civil(y, (unsigned)mo, (unsigned)d);
    unsigned cy_m, cy_d;
    int64_t cy_y;
    clock_civil_from_days(days, &cy_y, &cy_m, &cy_d);
    if (cy_d != (unsigned)d) /* Feb 30 and friends */
        return ERR_PARSE;
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - off;
    *out_ns = secs * CLOCK_NS_PER_SEC + frac;
    return ERR_OK;
}
