/* schedcomp: private to the schedule-file parser. Composes libyaml events into documents
 * (scheddoc.h) one node at a time, so a file of 100,000 jobs is never held as one tree: each job
 * is composed into a small document of its own, checked, and the document reset for the next.
 * Anchors keep working across documents: an alias of a node in another document composes a copy
 * of it. */
#ifndef SALVO_SCHEDCOMP_H
#define SALVO_SCHEDCOMP_H

#include "scheddoc.h"

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* One anchor seen so far: where its node lives now. */
typedef struct schedcomp_anchor {
    char *name; /* owned */
    yaml_mark_t mark;
    scheddoc *doc; /* borrowed: the caller's, or &store */
    int id;
} schedcomp_anchor;

/* The parser, one event of lookahead, and the anchors. Single-threaded. */
typedef struct schedcomp {
    yaml_parser_t parser; /* error, problem, context and marks say what went wrong */
    yaml_event_t ev;      /* the lookahead when have_ev */
    bool have_ev;
    bool nomem;
    schedcomp_anchor *anchors; /* owned array */
    size_t nanchors;
    size_t cap;
    int *scratch; /* owned: children of the collections being composed */
    size_t nscratch;
    size_t scratch_cap;
    scheddoc store; /* copies of anchored nodes whose document was reset */
} schedcomp;

/* Start on len bytes of text (borrowed: must outlive the composer). ERR_OK or ERR_NOMEM. */
int schedcomp_init(schedcomp *sc, const char *text, size_t len);
/* Free everything; safe on a zeroed one and after a failed init. */
void schedcomp_fini(schedcomp *sc);

/* The next event without taking it (borrowed until the composer moves on); NULL after a parse
 * error (see schedcomp_failed). */
const yaml_event_t *schedcomp_peek(schedcomp *sc);
/* Take the next event, which must be a structural one (stream/document start or end, or the end
 * of a collection opened with schedcomp_open). False after a parse error. */
bool schedcomp_skip(schedcomp *sc);
/* Compose the next whole node (a scalar, an alias, or a collection to its end) into doc and set
 * *id. False after a parse or compose error (undefined alias, duplicate anchor) or when out of
 * memory. */
bool schedcomp_node(schedcomp *sc, scheddoc *doc, int *id);
/* Take the next event, a sequence or mapping start, and add an empty node of that kind for it
 * (its anchor, if any, is ignored), so the caller can compose what it holds one node at a time,
 * set its children with scheddoc_children and take the end with schedcomp_skip. */
bool schedcomp_open(schedcomp *sc, scheddoc *doc, int *id);
/* Before the caller resets or frees doc: copy its anchored nodes into the store, so later aliases
 * still resolve. False when out of memory. */
bool schedcomp_release(schedcomp *sc, scheddoc *doc);
/* True when a parse or compose error stopped the composer (the parser fields say which). */
bool schedcomp_failed(const schedcomp *sc);

#endif
