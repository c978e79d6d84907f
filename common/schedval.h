/* schedval: private to the schedule-file parser (schedfile.c, schedkeys.c). Turns libyaml nodes
 * into values (${VAR} substitution, integers, durations, booleans, typed context trees) and
 * collects every error of a file, each with the line:column of the node at fault. */
#ifndef SALVO_SCHEDVAL_H
#define SALVO_SCHEDVAL_H

#include "jval.h"
#include "scheddoc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define SCHEDVAL_ERRORS_MAX 1000 /* messages kept per file; the rest are only counted */

typedef struct schedval_error {
    int line; /* 1-based */
    int col;  /* 1-based */
    size_t seq;
    char *msg; /* owned */
} schedval_error;

/* One parse of one file: everything said about it. Single-threaded. */
typedef struct schedval_ctx {
    const char *name;     /* file name for messages; borrowed */
    scheddoc *doc;        /* borrowed: the document the nodes being walked belong to */
    schedval_error *errs; /* owned array */
    size_t nerrs;
    size_t cap;
    size_t total; /* all errors, including those past SCHEDVAL_ERRORS_MAX */
    bool mute;    /* applying defaults again to each job: they were already checked once */
    bool nomem;
} schedval_ctx;

/* Called with the key and value nodes of one key of a map; ud is schedval_map's. */
typedef void (*schedval_fn)(schedval_ctx *c, void *ud, yaml_node_t *key, yaml_node_t *val);

typedef struct schedval_key {
    const char *name;
    schedval_fn fn;   /* NULL: not valid here, but a common slip; suggest hint instead */
    bool job_only;    /* not allowed under defaults: (name, cron, every, at) */
    const char *hint; /* with fn NULL: where the key belongs ("http.timeout") */
} schedval_key;

/* Report the parse or compose error parser p stopped at, with libyaml's line:column (text and
 * len locate a bad encoding); alone drops the errors found before it, which the broken syntax
 * may have caused. A memory error only sets c->nomem. */
void schedval_syntax(schedval_ctx *c, const yaml_parser_t *p, const char *text, size_t len,
                     bool alone);
/* All messages sorted by position, one "name:line:col: message\n" each; malloc'd, NULL when out
 * of memory. */
char *schedval_render(schedval_ctx *c);
/* Free the messages. */
void schedval_fini(schedval_ctx *c);

/* Record an error at node n (1:1 when n is NULL) or at line:col. Skipped while c->mute. */
void schedval_error_at(schedval_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void schedval_error_line(schedval_ctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "map", "list" or "scalar", for "expected a map, got a list". */
const char *schedval_kind(const yaml_node_t *n);

/* Walk a mapping node: reject non-string and duplicate keys, report unknown keys with the
 * nearest known one (or its hint), reject job_only keys when in_defaults, call each key's fn
 * with ud.
 * what names the map in "expected a map" messages. */
void schedval_map(schedval_ctx *c, yaml_node_t *map, const schedval_key *keys, size_t n,
                  bool in_defaults, void *ud, const char *what);

/* A scalar's text with ${VAR} substituted from the environment ($${ is a literal ${); an unset
 * variable is an error. malloc'd (caller frees), *len set when len is non-NULL; NULL after an
 * error (reported, naming `what`). */
char *schedval_text(schedval_ctx *c, const yaml_node_t *n, const char *what, size_t *len);

/* Typed scalars, bounds inclusive. Return true with *out set, or false after reporting. */
bool schedval_int(schedval_ctx *c, const yaml_node_t *n, const char *what, int64_t min, int64_t max,
                  int64_t *out);
bool schedval_duration(schedval_ctx *c, const yaml_node_t *n, const char *what, int64_t min,
                       int64_t max, int64_t *out);
bool schedval_bool(schedval_ctx *c, const yaml_node_t *n, const char *what, bool *out);

/* Merge a YAML map into *into (made a map if it is not one), key by key: plain scalars are
 * typed (42 int, 1.5 float, true bool, null/~ nil), quoted ones stay strings. */
void schedval_context(schedval_ctx *c, yaml_node_t *map, jval *into);

#endif
