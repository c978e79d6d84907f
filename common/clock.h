/* clock: the two clocks salvo uses. Realtime says *when* a job is due (wall clock, UTC);
 * monotonic measures durations and timeouts, immune to clock steps. */
#ifndef SALVO_CLOCK_H
#define SALVO_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_NS_PER_SEC 1000000000LL
#define CLOCK_NS_PER_MS  1000000LL

/* Nanoseconds since the Unix epoch (CLOCK_REALTIME). Thread-safe. */
int64_t clock_real_ns(void);
/* Nanoseconds on CLOCK_MONOTONIC, for durations only. Thread-safe. */
int64_t clock_mono_ns(void);

/* Sleep until the realtime instant `when_ns` with an absolute clock_nanosleep, so repeated
 * sleeps never accumulate drift, and a clock step is honoured by the kernel. Returns ERR_OK at
 * the instant, or ERR_INTR when a signal arrived first (the caller re-checks its flags and
 * calls again). Blocks; thread-safe. */
int clock_sleep_until_real(int64_t when_ns);
/* Same on CLOCK_MONOTONIC. */
int clock_sleep_until_mono(int64_t when_ns);

/* Format a realtime instant as ISO-8601 UTC, e.g. "2026-11-25T11:30:00.123Z" with `digits`
 * fractional digits (0, 3, 6 or 9). Writes at most cap bytes including NUL; returns buf. */
char *clock_format_iso(int64_t real_ns, int digits, char *buf, size_t cap);

/* Write v as exactly width decimal digits at p (zero-padded; higher digits dropped), no NUL;
 * returns p + width. The building block of the instant and firing-id formatters, which avoid
 * snprintf on their hot paths. */
char *clock_put_digits(char *p, uint64_t v, int width);

/* a / b rounded towards minus infinity (b > 0): the day or second an instant before 1970 falls
 * in. */
int64_t clock_floor_div(int64_t a, int64_t b);

/* A poll timeout: whole milliseconds from now_ns until then_ns (same clock), rounded up so that
 * a wait never ends before the instant, 0 once it has passed, at most max_ms (>= 0). */
int clock_ms_until(int64_t now_ns, int64_t then_ns, int max_ms);

/* Parse "YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm|-hh:mm]" (a missing zone means UTC) into ns since the
 * epoch. Returns ERR_OK or ERR_PARSE. Thread-safe (no TZ environment use). */
int clock_parse_iso(const char *s, int64_t *out_ns);

/* Days since 1970-01-01 for a proleptic Gregorian date, and back; exact for all int64 years we
 * use. Shared by the cron and time-zone code so neither needs timegm/gmtime_r. */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d);
void clock_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

#endif
