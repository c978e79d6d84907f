/* schedkeys: private to schedfile.c. The keys a job (or the defaults map) may hold, what each
 * accepts, and how each one lands in a sched_entry. */
#ifndef SALVO_SCHEDKEYS_H
#define SALVO_SCHEDKEYS_H

#include "schedfile.h"
#include "schedval.h"

#include <stdbool.h>

/* The entry being built plus what only parsing needs to know about it. */
typedef struct schedkeys_job {
    sched_entry *e;
    const yaml_node_t *kind_key;  /* the cron/every/at key that set e->kind */
    const yaml_node_t *name_node; /* where the name was given, for duplicate messages */
    bool has_url;
} schedkeys_job;

/* Apply one job map, or the defaults map (in_defaults: name/cron/every/at refused), to j->e.
 * Later keys override earlier ones; http.headers and context merge key by key, fan_out and
 * http.success replace. Errors go to c. */
void schedkeys_job_apply(schedval_ctx *c, schedkeys_job *j, yaml_node_t *map, bool in_defaults);

/* An entry holding the built-in defaults (JOB_DEFAULT_* timeouts and attempts, one job per
 * firing, misfire skip, empty context; schedfile fills UTC and GET after parsing when still
 * unset), and its release (safe on one only partly filled; leaves it zeroed). */
void schedkeys_entry_init(sched_entry *e);
void schedkeys_entry_fini(sched_entry *e);

/* Free everything an http template owns and zero it. Safe on a zeroed one. */
void schedkeys_http_fini(job_http *h);

#endif
