/* cronexpr: cron expressions with seconds, evaluated in an IANA time zone.
 *   6 fields: sec min hour day-of-month month day-of-week
 *   5 fields: min hour day-of-month month day-of-week (seconds = 0)
 *   names (JAN..DEC, SUN..SAT), lists, ranges, steps (star-slash-n, a-b/n), '?' as '*' in dom/dow
 *   macros @yearly @annually @monthly @weekly @daily @midnight @hourly; @every <duration>
 * DST: a wall time inside a spring-forward gap fires once, at the first instant after the gap;
 * a wall time repeated at fall-back fires once, at its first occurrence. @every is a fixed
 * interval in UTC aligned to the Unix epoch, so every producer computes the same instants. */
#ifndef SALVO_CRONEXPR_H
#define SALVO_CRONEXPR_H

#include "tzone.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cronexpr {
    uint64_t sec;   /* bit n set = second n allowed (0..59) */
    uint64_t min;   /* 0..59 */
    uint32_t hour;  /* 0..23 */
    uint32_t dom;   /* bits 1..31 */
    uint16_t month; /* bits 1..12 */
    uint8_t dow;    /* bits 0..6, 0 = Sunday (7 accepted as Sunday) */
    bool dom_star;  /* field was '*' or '?': standard cron OR-semantics between dom and dow */
    bool dow_star;
    int64_t every_s; /* > 0 for @every; the bit fields are then unused */
} cronexpr;

/* Parse expr into *out (caller-owned, no allocation). On error returns ERR_CRON and writes a
 * message naming the field, its column and the problem, e.g.
 * "field 3 (hour) at column 7: value 25 out of range 0-23". Thread-safe. */
int cronexpr_parse(cronexpr *out, const char *expr, char *err, size_t cap);

/* The first fire instant strictly after `after` (UTC seconds) in zone tz (NULL = UTC).
 * Returns ERR_OK, or ERR_NOTFOUND when nothing matches within 8 years (e.g. 30 FEB).
 * Pure function of its inputs; thread-safe. */
int cronexpr_next(const cronexpr *ce, const tzone *tz, int64_t after, int64_t *next);

#endif
