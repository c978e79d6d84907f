/* tzone: IANA time zones read straight from TZif files (/usr/share/zoneinfo, or $TZDIR), so
 * converting between UTC and a zone's wall clock is thread-safe and per job: no setenv("TZ"),
 * no tzset(), no localtime_r() with process-global state. */
#ifndef SALVO_TZONE_H
#define SALVO_TZONE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tzone tzone;

/* A wall-clock reading in some zone. */
typedef struct tzone_civil {
    int64_t year;
    unsigned month;  /* 1..12 */
    unsigned day;    /* 1..31 */
    unsigned hour;   /* 0..23 */
    unsigned minute; /* 0..59 */
    unsigned second; /* 0..59 */
    unsigned wday;   /* 0 = Sunday .. 6 */
    int32_t utc_offset_s;
} tzone_civil;

/* Load a zone by IANA name ("Europe/Paris", "UTC"). Zones are cached and shared: loading a
 * name already held returns the same instance with one more reference (tzone_free drops it).from
 * $TZDIR or /usr/share/zoneinfo. The name must be 1..255 bytes of [A-Za-z0-9/_+-.], must not
 * contain ".." or start with '/'. "UTC" and "Etc/UTC" fall back to a built-in UTC when the file is
 * missing. Instants after the file's last transition follow its POSIX TZ footer (e.g.
 * "CET-1CEST,M3.5.0,M10.5.0/3"). Returns ERR_OK, ERR_TZ (bad name, unknown or unreadable or
 * malformed file; err says why, err may be NULL) or ERR_NOMEM. The caller owns *out (tzone_free).
 * Uses no libc time-zone state, so loading is thread-safe, and an immutable tzone is safe to share
 * between threads. */
int tzone_load(const char *name, tzone **out, char *err, size_t cap);
/* Free a zone; NULL is a no-op. */
void tzone_free(tzone *tz);
/* The name it was loaded by; borrowed, lives as long as tz. */
const char *tzone_name(const tzone *tz);

/* UTC offset in seconds (east positive) in force at the UTC instant t. */
int32_t tzone_offset_at(const tzone *tz, int64_t t);
/* Wall clock at the UTC instant t. */
void tzone_to_civil(const tzone *tz, int64_t t, tzone_civil *out);

/* Resolve a wall-clock time (local seconds since 1970-01-01T00:00 as if the zone were UTC) to
 * UTC. Returns the number of UTC instants that show this wall time: 1 (normal), 2 (fall-back
 * overlap: *first is the earlier one) or 0 (spring-forward gap: *first is the instant the gap
 * ends, i.e. the first valid instant after it). */
int tzone_from_local(const tzone *tz, int64_t local, int64_t *first);

#endif
