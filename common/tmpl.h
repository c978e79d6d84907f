/* tmpl: {{name}} placeholders. The producer fills {{item}} and {{index}} for fan-out; the worker
 * fills {{context.key}} from the job's own context. A placeholder the lookup does not know is
 * left as written, so each side expands only its own names. */
#ifndef SALVO_TMPL_H
#define SALVO_TMPL_H

#include <stddef.h>

/* Return 1 and set *val and *len (borrowed until the lookup is called again or render returns)
 * when name is known, 0 to leave the placeholder untouched. name is the trimmed text between the
 * braces. */
typedef int (*tmpl_lookup)(void *ud, const char *name, const char **val, size_t *len);

/* Render src (len bytes) into a malloc'd, NUL-terminated *out of *out_len bytes.
 * ERR_OK, ERR_NOMEM, or ERR_RANGE when the result would exceed max_len. Thread-safe. */
int tmpl_render(const char *src, size_t len, tmpl_lookup fn, void *ud, size_t max_len, char **out,
                size_t *out_len);

#endif
