/* strbuf: a growable text buffer for building JSON and other text in one allocation. After
 * the first failed allocation every append is a no-op and `failed` stays set, so a builder
 * checks once at the end instead of after every append. */
#ifndef SALVO_STRBUF_H
#define SALVO_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *p; /* owned; NUL-terminated once anything was added */
    size_t len, cap;
    bool failed;
} strbuf;

/* Append n bytes (may include NULs). */
void strbuf_add(strbuf *b, const char *s, size_t n);
/* Append a NUL-terminated string. */
void strbuf_adds(strbuf *b, const char *s);
/* Append printf output. */
void strbuf_addf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append n bytes as a quoted JSON string: quote, backslash and control bytes escaped (\uXXXX
 * for controls), other bytes as given (callers pass UTF-8). */
void strbuf_add_json(strbuf *b, const char *s, size_t n);
/* Hand the text to the caller (who frees it) and reset b; NULL when an append failed (the
 * buffer is freed then). *len (may be NULL) gets the length. */
char *strbuf_take(strbuf *b, size_t *len);
/* Free the text and reset b. Safe on a zeroed buffer. */
void strbuf_fini(strbuf *b);

#endif
