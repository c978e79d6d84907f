/* jval: the dynamic value tree behind a job's context: construction, copy, lookup, text. */
#include "jval.h"

#include "strbuf.h"

#include "err.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jval_fini(jval *v)
{
    if (!v)
        return;
    switch (v->type) {
    case JVAL_STR:
        free(v->u.s.ptr);
        break;
    case JVAL_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++)
            jval_fini(&v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case JVAL_MAP:
        for (size_t i = 0; i < v->u.map.n; i++) {
            free(v->u.map.kv[i].key);
            jval_fini(&v->u.map.kv[i].val);
        }
        free(v->u.map.kv);
        break;
    default:
        break;
    }
    jval_set_nil(v);
}

void jval_set_nil(jval *v)
{
    memset(v, 0, sizeof *v);
    v->type = JVAL_NIL;
}

int jval_set_str(jval *v, const char *s, size_t len)
{
    jval_set_nil(v);
    char *p = malloc(len + 1);
    if (!p)
        return ERR_NOMEM;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    v->type = JVAL_STR;
    v->u.s.ptr = p;
    v->u.s.len = len;
    return ERR_OK;
}

void jval_set_int(jval *v, int64_t i)
{
    jval_set_nil(v);
    v->type = JVAL_INT;
    v->u.i = i;
}

void jval_set_bool(jval *v, bool b)
{
    jval_set_nil(v);
    v->type = JVAL_BOOL;
    v->u.b = b;
}

void jval_set_float(jval *v, double f)
{
    jval_set_nil(v);
    v->type = JVAL_FLOAT;
    v->u.f = f;
}

void jval_set_map(jval *v)
{
    jval_set_nil(v);
    v->type = JVAL_MAP;
}

void jval_set_array(jval *v)
{
    jval_set_nil(v);
    v->type = JVAL_ARRAY;
}

/* Make room for one more of `size`-byte slots: capacity doubles, so n pushes cost O(n) copying
 * whatever the allocator does with realloc. A cap below n (0 from a zeroed or hand-built
 * container) means the array holds exactly n. */
static int jval_grow(void **slots, size_t n, size_t *cap, size_t size)
{
    size_t have = *cap > n ? *cap : n;
    if (n < have)
        return ERR_OK;
    size_t want = have ? 2 * have : 4;
    void *p = realloc(*slots, want * size);
    if (!p)
        return ERR_NOMEM;
    *slots = p;
    *cap = want;
    return ERR_OK;
}

/* On failure the item stays with the caller. */
int jval_array_push(jval *arr, jval *item)
{
    if (!arr || arr->type != JVAL_ARRAY || !item)
        return ERR_INVAL;
    void *slots = arr->u.arr.items;
    if (jval_grow(&slots, arr->u.arr.n, &arr->u.arr.cap, sizeof(jval)))
        return ERR_NOMEM;
    arr->u.arr.items = slots;
    arr->u.arr.items[arr->u.arr.n++] = *item;
    jval_set_nil(item);
    return ERR_OK;
}

static jval_kv *jval_map_find(const jval *map, const char *key, size_t klen)
{
    for (size_t i = 0; i < map->u.map.n; i++) {
        jval_kv *kv = &map->u.map.kv[i];
        if (strncmp(kv->key, key, klen) == 0 && kv->key[klen] == '\0')
            return kv;
    }
    return NULL;
}

int jval_map_put(jval *map, const char *key, jval *val)
{
    if (!map || map->type != JVAL_MAP || !key || !val)
        return ERR_INVAL;
    jval_kv *kv = jval_map_find(map, key, strlen(key));
    if (kv) {
        jval_fini(&kv->val);
        kv->val = *val;
        jval_set_nil(val);
        return ERR_OK;
    }
    char *k = strdup(key);
    void *slots = map->u.map.kv;
    if (!k || jval_grow(&slots, map->u.map.n, &map->u.map.cap, sizeof(jval_kv))) {
        free(k);
        return ERR_NOMEM;
    }
    map->u.map.kv = slots;
    map->u.map.kv[map->u.map.n].key = k;
    map->u.map.kv[map->u.map.n].val = *val;
    map->u.map.n++;
    jval_set_nil(val);
    return ERR_OK;
}

const jval *jval_map_get(const jval *v, const char *key)
{
    if (!v || v->type != JVAL_MAP || !key)
        return NULL;
    jval_kv *kv = jval_map_find(v, key, strlen(key));
    return kv ? &kv->val : NULL;
}

/* One path segment: a map key, or a decimal index into an array ("007" is not an index). */
static const jval *jval_step(const jval *v, const char *seg, size_t len)
{
    if (v->type == JVAL_MAP) {
        jval_kv *kv = jval_map_find(v, seg, len);
        return kv ? &kv->val : NULL;
    }
    if (v->type != JVAL_ARRAY || len == 0 || len > 19 || (len > 1 && seg[0] == '0'))
        return NULL;
    uint64_t idx = 0;
    for (size_t i = 0; i < len; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return NULL;
        idx = idx * 10 + (uint64_t)(seg[i] - '0');
    }
    return idx < v->u.arr.n ? &v->u.arr.items[idx] : NULL;
}

const jval *jval_path(const jval *v, const char *path)
{
    if (!v || !path)
        return NULL;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        v = jval_step(v, p, len);
        if (!v || !dot)
            return v;
        p = dot + 1;
    }
}

/* Containers are copied into exactly-sized arrays (no per-key lookups), and n counts only the
 * slots already filled, so jval_fini on a half-built copy frees exactly what exists. */
static int jval_clone_array(jval *dst, const jval *src)
{
    jval_set_array(dst);
    if (src->u.arr.n == 0)
        return ERR_OK;
    dst->u.arr.items = calloc(src->u.arr.n, sizeof *dst->u.arr.items);
    if (!dst->u.arr.items)
        return ERR_NOMEM;
    for (size_t i = 0; i < src->u.arr.n; i++) {
        if (jval_clone(&dst->u.arr.items[i], &src->u.arr.items[i]))
            return ERR_NOMEM;
        dst->u.arr.n++;
    }
    return ERR_OK;
}

static int jval_clone_map(jval *dst, const jval *src)
{
    jval_set_map(dst);
    if (src->u.map.n == 0)
        return ERR_OK;
    dst->u.map.kv = calloc(src->u.map.n, sizeof *dst->u.map.kv);
    if (!dst->u.map.kv)
        return ERR_NOMEM;
    for (size_t i = 0; i < src->u.map.n; i++) {
        jval_kv *kv = &dst->u.map.kv[i];
        kv->key = strdup(src->u.map.kv[i].key);
        if (!kv->key)
            return ERR_NOMEM;
        dst->u.map.n++;
        if (jval_clone(&kv->val, &src->u.map.kv[i].val))
            return ERR_NOMEM;
    }
    return ERR_OK;
}

int jval_clone(jval *dst, const jval *src)
{
    int rc = ERR_OK;
    jval_set_nil(dst);
    if (src->type == JVAL_STR)
        rc = jval_set_str(dst, src->u.s.ptr, src->u.s.len);
    else if (src->type == JVAL_ARRAY)
        rc = jval_clone_array(dst, src);
    else if (src->type == JVAL_MAP)
        rc = jval_clone_map(dst, src);
    else
        *dst = *src;
    if (rc)
        jval_fini(dst);
    return rc;
}

/* Maps compare as sets of keys (order does not matter: the wire sorts them); floats compare
 * numerically, and NaN equals NaN so a decoded copy equals its original. */
bool jval_equal(const jval *a, const jval *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JVAL_NIL:
        return true;
    case JVAL_BOOL:
        return a->u.b == b->u.b;
    case JVAL_INT:
        return a->u.i == b->u.i;
    case JVAL_FLOAT:
        return a->u.f == b->u.f || (isnan(a->u.f) && isnan(b->u.f));
    case JVAL_STR:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    case JVAL_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (size_t i = 0; i < a->u.arr.n; i++) {
            if (!jval_equal(&a->u.arr.items[i], &b->u.arr.items[i]))
                return false;
        }
        return true;
    case JVAL_MAP:
        if (a->u.map.n != b->u.map.n)
            return false;
        for (size_t i = 0; i < a->u.map.n; i++) {
            const jval *other = jval_map_get(b, a->u.map.kv[i].key);
            if (!other || !jval_equal(&a->u.map.kv[i].val, other))
                return false;
        }
        return true;
    }
    return false;
}

static void jval_render(strbuf *b, const jval *v, bool json);

/* Containers are JSON whatever the level, so nested values render as JSON too. */
static void jval_render_container(strbuf *b, const jval *v)
{
    bool map = v->type == JVAL_MAP;
    size_t n = map ? v->u.map.n : v->u.arr.n;
    strbuf_add(b, map ? "{" : "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_add(b, ",", 1);
        if (map) {
            strbuf_add_json(b, v->u.map.kv[i].key, strlen(v->u.map.kv[i].key));
            strbuf_add(b, ":", 1);
        }
        jval_render(b, map ? &v->u.map.kv[i].val : &v->u.arr.items[i], true);
    }
    strbuf_add(b, map ? "}" : "]", 1);
}

static void jval_render(strbuf *b, const jval *v, bool json)
{
    char num[32];
    switch (v->type) {
    case JVAL_NIL:
        strbuf_adds(b, json ? "null" : "");
        break;
    case JVAL_BOOL:
        strbuf_adds(b, v->u.b ? "true" : "false");
        break;
    case JVAL_INT:
        snprintf(num, sizeof num, "%" PRId64, v->u.i);
        strbuf_adds(b, num);
        break;
    case JVAL_FLOAT:
        /* JSON has no NaN or infinity; null is what JSON encoders commonly emit instead. */
        if (json && !isfinite(v->u.f))
            snprintf(num, sizeof num, "null");
        else
            snprintf(num, sizeof num, "%.17g", v->u.f);
        strbuf_adds(b, num);
        break;
    case JVAL_STR:
        if (json)
            strbuf_add_json(b, v->u.s.ptr, v->u.s.len);
        else
            strbuf_add(b, v->u.s.ptr, v->u.s.len);
        break;
    case JVAL_ARRAY:
    case JVAL_MAP:
        jval_render_container(b, v);
        break;
    }
}

char *jval_to_text(const jval *v, size_t *len)
{
    strbuf b = {0};
    strbuf_add(&b, "", 0); /* an empty rendering (nil, "") is still a malloc'd "" */
    jval_render(&b, v, false);
    return strbuf_take(&b, len);
}
