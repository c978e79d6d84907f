/* strbuf: growable text with a sticky failure flag. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for n more bytes plus the NUL; false (and failed set) when memory runs out. */
static bool strbuf_reserve(strbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void strbuf_add(strbuf *b, const char *s, size_t n)
{
    if (!strbuf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void strbuf_adds(strbuf *b, const char *s)
{
    strbuf_add(b, s, strlen(s));
}

void strbuf_addf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!strbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void strbuf_add_json(strbuf *b, const char *s, size_t n)
{
    strbuf_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        strbuf_add(b, s + run, i - run);
        char esc[8];
        int k = c == '"' || c == '\\' ? snprintf(esc, sizeof esc, "\\%c", c)
                                      : snprintf(esc, sizeof esc, "\\u%04x", c);
        strbuf_add(b, esc, (size_t)k);
        run = i + 1;
    }
    strbuf_add(b, s + run, n - run);
    strbuf_add(b, "\"", 1);
}

char *strbuf_take(strbuf *b, size_t *len)
{
    char *p = b->failed ? NULL : b->p;
    if (b->failed)
        free(b->p);
    if (p && len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

void strbuf_fini(strbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
