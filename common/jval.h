/* jval: a small dynamic value tree (nil, bool, int, float, string, array, map with string
 * keys). It is how a job's *context* travels: an arbitrary map built from the schedule file,
 * serialized with the job, and owned by the one job that carries it. */
#ifndef SALVO_JVAL_H
#define SALVO_JVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jval_type {
    JVAL_NIL = 0,
    JVAL_BOOL,
    JVAL_INT,
    JVAL_FLOAT,
    JVAL_STR,
    JVAL_ARRAY,
    JVAL_MAP,
} jval_type;

typedef struct jval jval;
typedef struct jval_kv jval_kv;

/* A value. Strings own a NUL-terminated copy (len excludes the NUL; embedded NULs allowed). */
struct jval {
    jval_type type;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *ptr;
            size_t len;
        } s;
        struct {
            jval *items;
            size_t n;
            size_t cap; /* slots allocated, so pushes grow geometrically; 0 means exactly n */
        } arr;
        struct {
            jval_kv *kv;
            size_t n;
            size_t cap; /* as for arr */
        } map;
    } u;
};

struct jval_kv {
    char *key; /* owned, NUL-terminated */
    jval val;
};

/* Release everything v owns and reset it to JVAL_NIL. Safe on a zeroed or NIL value. */
void jval_fini(jval *v);
/* Deep copy. dst is overwritten (not freed first). ERR_OK or ERR_NOMEM (dst left NIL). */
int jval_clone(jval *dst, const jval *src);
/* Constructors into *v (overwritten). Strings are copied. ERR_OK or ERR_NOMEM. */
void jval_set_nil(jval *v);
int jval_set_str(jval *v, const char *s, size_t len);
void jval_set_int(jval *v, int64_t i);
void jval_set_bool(jval *v, bool b);
void jval_set_float(jval *v, double f);
void jval_set_map(jval *v);   /* empty map */
void jval_set_array(jval *v); /* empty array */
/* Append to an array / insert-or-replace in a map; *item is moved (left NIL). */
int jval_array_push(jval *arr, jval *item);
int jval_map_put(jval *map, const char *key, jval *val);
/* Borrowed lookup of a map key; NULL when v is not a map or the key is absent. */
const jval *jval_map_get(const jval *v, const char *key);
/* Borrowed lookup of a dotted path ("store.id"; array indexes as numbers "items.0"). */
const jval *jval_path(const jval *v, const char *path);
/* Render a scalar as text into a malloc'd string (strings verbatim, ints decimal, floats %.17g,
 * bools true/false, nil empty). Arrays/maps render as compact JSON. Caller frees. */
char *jval_to_text(const jval *v, size_t *len);
/* Structural equality. */
bool jval_equal(const jval *a, const jval *b);

#endif
