/* job: the unit of work. A job carries everything it needs to run on any worker with nothing
 * shared: who fired it and when, what to execute, and its own context map. The producer builds
 * one per firing (and per fan-out item); the worker decodes one per delivery and the thread that
 * runs it owns it alone. The wire encoding lives in jobwire.c. */
#ifndef SALVO_JOB_H
#define SALVO_JOB_H

#include "jval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits enforced by job_validate(), on both sides of the wire. Each says why. */
#define JOB_ID_MAX         512  /* firing id: schedule name + instant + index */
#define JOB_NAME_MAX       200  /* schedule names show up in logs and metrics labels */
#define JOB_URL_MAX        8192 /* what common HTTP servers accept in a request line */
#define JOB_METHOD_MAX     16
#define JOB_HEADERS_MAX    64           /* count */
#define JOB_HEADER_MAX     8192         /* one name+value, matching server defaults */
#define JOB_BODY_MAX       (192 * 1024) /* request body; leaves room under the 256 KiB message cap */
#define JOB_ARGV_MAX       64
#define JOB_ARG_MAX        4096
#define JOB_ENV_MAX        64
#define JOB_STATUS_MAX     32               /* explicit success statuses */
#define JOB_TIMEOUT_MAX_MS (15 * 60 * 1000) /* half of RabbitMQ's 30 min consumer_timeout */
#define JOB_ATTEMPTS_MAX   20
/* All header names and values together: nginx's default header buffers hold 4 x 8 KiB. */
#define JOB_HEADERS_BYTES_MAX 32768
/* Context nesting, the context map itself being level 1: with the message map around it this is
 * exactly the wire's JOBWIRE_MAX_DEPTH of 8, so a valid job always decodes. */
#define JOB_CONTEXT_DEPTH_MAX 7

#define JOB_DEFAULT_TIMEOUT_MS         30000
#define JOB_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define JOB_DEFAULT_MAX_ATTEMPTS       4

typedef enum job_kind {
    JOB_HTTP = 1,
    JOB_COMMAND = 2,
} job_kind;

/* A name/value pair (HTTP header, environment variable). Both owned. */
typedef struct job_kv {
    char *name;
    char *value;
} job_kv;

typedef struct job_http {
    char *method;    /* "GET", "POST", ...; owned */
    char *url;       /* http:// or https://; owned */
    job_kv *headers; /* owned array of nheaders */
    size_t nheaders;
    char *body; /* owned, may be NULL; body_len bytes (NUL-terminated for convenience) */
    size_t body_len;
    uint32_t connect_timeout_ms;
    uint32_t timeout_ms; /* total, 1 .. JOB_TIMEOUT_MAX_MS */
    uint16_t *ok_status; /* owned; empty means "any 2xx" */
    size_t nok_status;
    bool follow_redirects;
} job_http;

typedef struct job_command {
    char **argv; /* owned array of argc owned strings; argv[0] is the program */
    size_t argc;
    job_kv *env; /* owned */
    size_t nenv;
    uint32_t timeout_ms;
} job_command;

typedef struct job {
    char *id;                /* firing id, deterministic: "<schedule>@<YYYYMMDDTHHMMSSZ>#<index>" */
    char *schedule;          /* schedule (entry) name */
    uint32_t index;          /* fan-out index, 0 for single jobs */
    int64_t due_ms;          /* scheduled instant, ms since the Unix epoch (UTC) */
    uint32_t attempt;        /* 1 for the first run */
    uint32_t max_attempts;   /* 1 .. JOB_ATTEMPTS_MAX */
    int64_t max_lateness_ms; /* a start later than due + this is a miss; 0 = no limit */
    job_kind kind;
    job_http http;   /* valid when kind == JOB_HTTP */
    job_command cmd; /* valid when kind == JOB_COMMAND */
    jval context;    /* always a JVAL_MAP (possibly empty) */
} job;

/* Zero a job and make its context an empty map. */
void job_init(job *j);
/* Free everything j owns; j is left as after job_init. Safe on a zeroed job. */
void job_fini(job *j);
/* Deep copy into dst (dst must be fresh from job_init). ERR_OK or ERR_NOMEM. */
int job_clone(job *dst, const job *src);

/* Check a job against the schema and limits above. On failure returns ERR_WIRE_SCHEMA and writes
 * a one-line reason naming the field ("http.url: longer than 8192 bytes"). Thread-safe. */
int job_validate(const job *j, char *reason, size_t cap);

/* Build the deterministic firing id into buf: "<schedule>@<YYYYMMDDTHHMMSSZ>#<index>".
 * Two producers firing the same schedule at the same instant produce the same id. */
int job_format_id(const char *schedule, int64_t due_ms, uint32_t index, char *buf, size_t cap);

#endif
