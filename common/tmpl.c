/* tmpl: renders {{name}} placeholders through a caller's lookup, leaving unknown ones as written.
 */
#include "tmpl.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

/* A growing output buffer that refuses to pass max_len, so a hostile item cannot balloon a URL. */
typedef struct tmpl_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
} tmpl_buf;

static int tmpl_put(tmpl_buf *b, const char *s, size_t n)
{
    if (n > b->max - b->len)
        return ERR_RANGE;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return ERR_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return ERR_OK;
}

static const char *tmpl_find(const char *s, const char *end, const char *pat)
{
    for (const char *p = s; p + 1 < end; p++) {
        if (p[0] == pat[0] && p[1] == pat[1])
            return p;
    }
    return NULL;
}

static int tmpl_is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Expand the placeholder whose "{{" is at open and "}}" at close (or copy it verbatim). */
static int tmpl_one(tmpl_buf *b, const char *open, const char *close, tmpl_lookup fn, void *ud)
{
    const char *n = open + 2;
    const char *e = close;
    while (n < e && tmpl_is_space(*n))
        n++;
    while (e > n && tmpl_is_space(e[-1]))
        e--;
    char name[128];
    size_t nlen = (size_t)(e - n);
    const char *val = NULL;
    size_t vlen = 0;
    /* Names are short identifiers; a longer one cannot be known, so it stays verbatim. */
    if (nlen > 0 && nlen < sizeof name) {
        memcpy(name, n, nlen);
        name[nlen] = '\0';
        if (fn && fn(ud, name, &val, &vlen))
            return tmpl_put(b, val, vlen);
    }
    return tmpl_put(b, open, (size_t)(close + 2 - open));
}

int tmpl_render(const char *src, size_t len, tmpl_lookup fn, void *ud, size_t max_len, char **out,
                size_t *out_len)
{
    tmpl_buf b = {NULL, 0, 0, max_len};
    const char *p = src;
    const char *end = src + len;
    int rc = tmpl_put(&b, "", 0);
    while (rc == ERR_OK && p < end) {
        const char *open = tmpl_find(p, end, "{{");
        const char *close = open ? tmpl_find(open + 2, end, "}}") : NULL;
        if (!close) {
            rc = tmpl_put(&b, p, (size_t)(end - p));
            break;
        }
        /* "{{ a {{b}}": the first "{{" is plain text and the inner one starts the placeholder. */
        const char *inner = tmpl_find(open + 2, close, "{{");
        while (inner) {
            open = inner;
            inner = tmpl_find(open + 2, close, "{{");
        }
        rc = tmpl_put(&b, p, (size_t)(open - p));
        if (rc == ERR_OK)
            rc = tmpl_one(&b, open, close, fn, ud);
        p = close + 2;
    }
    if (rc != ERR_OK) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    if (out_len)
        *out_len = b.len;
    return ERR_OK;
}
