/* schedjobs: private to schedfile.c. The entries of a schedule file as its job maps arrive, one
 * at a time (each may live in a document of its own), with the defaults applied to each and the
 * checks that need every job (duplicate names). */
#ifndef SALVO_SCHEDJOBS_H
#define SALVO_SCHEDJOBS_H

#include "schedfile.h"
#include "schedval.h"

#include <stdbool.h>
#include <stddef.h>

/* Where an entry's name was given (line 0: it has none), for duplicate-name messages. */
typedef struct schedjobs_pos {
    int line;
    int col;
} schedjobs_pos;

/* The entries built so far; zero it to start. Single-threaded. */
typedef struct schedjobs {
    sched_entry *entries; /* owned array of n */
    schedjobs_pos *names; /* owned array of n */
    size_t n;
    size_t cap;
} schedjobs;

/* Check the defaults map once on its own (its nodes in c->doc), so its errors are reported once,
 * not once per job. */
void schedjobs_defaults(schedval_ctx *c, yaml_node_t *defaults);

/* Build the next entry from one job map (its nodes in jdoc) with the defaults map (NULL: none;
 * its nodes in ddoc, checked already) under it. Errors go to c; false only when out of memory
 * (c->nomem set). Leaves c->doc pointing at jdoc. */
bool schedjobs_add(schedval_ctx *c, schedjobs *js, scheddoc *ddoc, yaml_node_t *defaults,
                   scheddoc *jdoc, yaml_node_t *map);

/* Report every repeated job name at its second and later places. */
void schedjobs_dups(schedval_ctx *c, const schedjobs *js);

/* Move the entries into sf (which must hold none) and leave js empty. */
void schedjobs_take(schedjobs *js, schedfile *sf);
/* Free the entries not taken; leaves js zeroed. */
void schedjobs_fini(schedjobs *js);

#endif
