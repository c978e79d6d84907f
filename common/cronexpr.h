/* cronexpr: cron expressions with seconds, evaluated in an IANA time zone.
 *   6 fields: sec min hour day-of-month month day-of-week
 *   5 fields: min hour day-of-month month day-of-week (seconds = 0)
 *   names (JAN..DEC, SUN..SAT), lists, ranges, steps (star-slash-n, a-b/n), '?' as '*' in dom/dow
 *   macros @yearly @annually @monthly @weekly @daily @midnight @hourly; @every <duration>,
 *   where duration is one or more <n><unit> with units s m h d (90s, 1h30m), 1s to 3650d
 *   "a/n" runs from a to the field's maximum (Saturday in day-of-week); day-of-week 7 is
 *   Sunday; ranges must not wrap (FRI-MON is an error)
 *   day-of-month and day-of-week: when both are restricted (neither is exactly '*' or '?'), a
 *   day matches if either matches (Vixie cron); otherwise both must match
 * DST: a wall time inside a spring-forward gap fires once, at the first instant after the gap;
 * a wall time repeated at fall-back fires once, at its first occurrence. The rule is per wall
 * time and applies to every schedule alike: "0 0/15 * * * *" in New York on the fall-back day
 * fires at 01:00, 01:15, 01:30, 01:45 EDT and next at 02:00 EST, and a per-second schedule
 * pauses for the repeated hour. Several gap wall times (02:00, 02:15, ...) all map to the gap's
 * end, which is one instant, so it fires once. Use @every for a steady interval across DST.
 * @every is a fixed interval in UTC aligned to the Unix epoch, so every producer computes the
 * same instants. */
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

/* Parse expr into *out (caller-owned, no allocation). On error returns ERR_CRON, zeroes *out
 * and writes a message naming the field, the 1-based column of the offending text and the
 * problem, e.g. "field 3 (hour) at column 7: value 25 out of range 0-23" (fields are numbered
 * as written, so in the 5-field form minute is field 1); errors not tied to one field read
 * "at column 1: expected 5 or 6 fields, found 7". err may be NULL. Thread-safe. */
int cronexpr_parse(cronexpr *out, const char *expr, char *err, size_t cap);

/* The first fire instant strictly after `after` (UTC seconds) in zone tz (NULL = UTC).
 * Returns ERR_OK, ERR_NOTFOUND when nothing matches within 8 years (e.g. 30 FEB), or ERR_RANGE
 * when `after` is more than 2^40 s (~35,000 years) from the epoch. Skips whole months, days,
 * hours and minutes that cannot match. Pure function of its inputs; thread-safe. */
int cronexpr_next(const cronexpr *ce, const tzone *tz, int64_t after, int64_t *next);

#endif
