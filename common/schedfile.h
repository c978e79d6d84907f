/* schedfile: the YAML schedule file (libyaml). Parses and validates a whole file into entries;
 * a file with any error yields no schedule at all, and every error names file:line:column and
 * the problem. The file format is documented in deploy/examples/schedule.yaml and the README. */
#ifndef SALVO_SCHEDFILE_H
#define SALVO_SCHEDFILE_H

#include "cronexpr.h"
#include "job.h"
#include "jval.h"
#include "tzone.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_FANOUT_MAX      100000 /* one entry may expand to this many jobs per firing */
#define SCHED_ENTRIES_MAX     200000
#define SCHED_LEAD_MAX_MS     5000 /* precise mode: at most 5 s early (worker holds <= 5 s) */
#define SCHED_MISFIRE_ALL_MAX 1000 /* misfire: all replays at most this many firings */

typedef enum sched_kind {
    SCHED_CRON = 1, /* cron: "..." (also @hourly etc.) */
    SCHED_EVERY,    /* every: 30s (stored as cron.every_s) */
    SCHED_AT,       /* at: one ISO-8601 instant */
} sched_kind;

typedef enum sched_misfire {
    SCHED_MISFIRE_SKIP = 0, /* default: firings missed while down are dropped (logged) */
    SCHED_MISFIRE_ONCE,     /* fire once for all missed firings */
    SCHED_MISFIRE_ALL,      /* fire every missed firing, at most misfire_max */
} sched_misfire;

typedef struct sched_entry {
    char *name; /* unique in the file; owned */
    int line;   /* where the entry starts, for messages */
    sched_kind kind;
    cronexpr cron;      /* SCHED_CRON and SCHED_EVERY */
    int64_t at_s;       /* SCHED_AT */
    char *tz_name;      /* owned; "UTC" by default */
    tzone *tz;          /* owned */
    job_http http;      /* template: url/headers/body may hold {{item}}, {{index}}, {{context.x}} */
    jval context;       /* map; may hold {{item}} / {{index}} in string values */
    uint32_t fan_count; /* jobs per firing (>= 1) */
    char **fan_items;   /* owned; NULL when fan_out was a count; else fan_count items */
    sched_misfire misfire;
    uint32_t misfire_max;
    int64_t max_lateness_ms; /* 0 = none */
    uint32_t max_attempts;   /* retries + 1 */
    int64_t lead_ms;         /* 0 .. SCHED_LEAD_MAX_MS */
    uint64_t digest;         /* hash of everything above but name/line: reload keeps state of
                                entries whose digest is unchanged */
} sched_entry;

typedef struct schedfile {
    char *path;
    sched_entry *entries; /* owned array */
    size_t n;
} schedfile;

/* Parse the file at path. On success *out is a new schedfile (schedfile_free). On failure
 * returns ERR_SCHEDULE (or ERR_IO / ERR_NOMEM) and, when errors is non-NULL, sets *errors to a
 * malloc'd text of one "file:line:col: message" per line, all errors found (caller frees).
 * ${VAR} is replaced from the environment; an unset VAR is an error. */
int schedfile_load(const char *path, schedfile **out, char **errors);
/* Same from memory; `name` is used in messages in place of the path. */
int schedfile_parse(const char *name, const char *text, size_t len, schedfile **out, char **errors);
void schedfile_free(schedfile *sf);

/* First fire instant of e strictly after `after` (UTC seconds). ERR_NOTFOUND when none (an
 * `at` in the past). */
int schedfile_next(const sched_entry *e, int64_t after, int64_t *next);

/* Build the job for one firing: fan-out item/index substituted into url, headers, body and
 * context strings; id from job_format_id. *out must be fresh from job_init. */
int schedfile_expand(const sched_entry *e, int64_t due_s, uint32_t index, job *out);

#endif
