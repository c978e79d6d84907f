/* prodstate: the producer's memory across restarts: the last confirmed fire instant of each
 * schedule entry, in one small text file in the state directory. It is written atomically
 * (temp file, fsync, rename, fsync of the directory), so a crash leaves the old file or the
 * new one, never a torn one. A missing or damaged file means "start fresh", never a refusal
 * to start: the misfire policy then treats every entry as new. */
#ifndef SALVO_PRODSTATE_H
#define SALVO_PRODSTATE_H

#include <stddef.h>
#include <stdint.h>

#define PRODSTATE_FILE    "producer.state"
#define PRODSTATE_VERSION 1 /* bump when a line's fields change */

/* One entry's record. When loaded, name points into the prodstate's buffer. */
typedef struct prodstate_rec {
    const char *name;
    uint64_t digest; /* the entry's digest when it fired: a changed entry starts afresh */
    int64_t last_s;  /* last confirmed fire instant, UTC seconds */
} prodstate_rec;

/* A loaded state: records sorted by name for lookup. Owned by the caller. */
typedef struct prodstate {
    prodstate_rec *recs;
    size_t n;
    char *buf; /* the file's text; names point into it */
} prodstate;

/* Read <dir>/producer.state into *st (zeroed first). Returns ERR_OK; ERR_NOTFOUND when there is
 * no file (st empty, not an error for the caller); ERR_PARSE when the file is damaged (st left
 * empty, the problem and line are logged as a warning); ERR_IO when it cannot be read; ERR_NOMEM.
 * Caller frees st with prodstate_fini in every case. Not thread-safe against a concurrent save. */
int prodstate_load(const char *dir, prodstate *st);
void prodstate_fini(prodstate *st);

/* The state text (format at the top of prodstate.c) of recs (borrowed; names without a
 * newline), malloc'd, *len bytes plus a NUL. NULL when out of memory. Pure; thread-safe. */
char *prodstate_encode(const prodstate_rec *recs, size_t n, size_t *len);
/* Parse state text: takes ownership of buf (malloc'd, len bytes plus a NUL; it becomes st->buf
 * or is freed). ERR_OK; ERR_PARSE (st empty) for a damaged text (*bad_line = the first bad
 * line, 1-based) or a name given twice (*bad_line = 0); ERR_NOMEM. Caller frees st with
 * prodstate_fini. */
int prodstate_decode(char *buf, size_t len, prodstate *st, size_t *bad_line);

/* Borrowed record for name, or NULL. O(log n). */
const prodstate_rec *prodstate_find(const prodstate *st, const char *name);

/* Write recs (borrowed; names must not hold a newline) to <dir>/producer.state atomically,
 * creating dir (mode 0755) when missing. ERR_OK, ERR_INVAL (a name with a newline), ERR_IO
 * (errno has the detail; the old file is untouched) or ERR_NOMEM. Blocks on fsync. */
int prodstate_save(const char *dir, const prodstate_rec *recs, size_t n);

/* Take an exclusive lock on <dir>/producer.lock (creating dir and file), so two producers never
 * share one state directory and overwrite each other's instants. *fd gets the descriptor that
 * holds the lock until closed. ERR_OK, ERR_EXISTS when another process holds it, ERR_IO. */
int prodstate_lock(const char *dir, int *fd);

#endif
