/* schedval: YAML nodes to values for the schedule file, and its error list with line:column. */
#include "schedval.h"

#include "clock.h"
#include "config.h"
#include "err.h"
#include "job.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SK_CONTEXT_NODES 10000 /* values in one context: aliases can multiply nodes cheaply */
#define SK_NAME_CHARS    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
#define SK_TOKEN_CHARS   SK_NAME_CHARS "!#$%&'*+^`|~" /* RFC 9110 token for header names */

static void sk_push(schedval_ctx *c, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void sk_push(schedval_ctx *c, int line, int col, const char *fmt, va_list ap)
{
    if (c->mute)
        return;
    c->total++;
    if (c->nerrs >= SCHEDVAL_ERRORS_MAX)
        return;
    if (c->nerrs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        schedval_error *p = realloc(c->errs, cap * sizeof *p);
        if (!p) {
            c->nomem = true;
            return;
        }
        c->errs = p;
        c->cap = cap;
    }
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    char *msg = strdup(buf);
    if (!msg) {
        c->nomem = true;
        return;
    }
    c->errs[c->nerrs++] = (schedval_error){line, col, c->total, msg};
}

void schedval_error_line(schedval_ctx *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sk_push(c, line, col, fmt, ap);
    va_end(ap);
}

void schedval_error_at(schedval_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    int line = n ? (int)n->start_mark.line + 1 : 1;
    int col = n ? (int)n->start_mark.column + 1 : 1;
    va_list ap;
    va_start(ap, fmt);
    sk_push(c, line, col, fmt, ap);
    va_end(ap);
}

const char *schedval_kind(const yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return "map";
    return n->type == YAML_SEQUENCE_NODE ? "list" : "scalar";
}

/* Variables holding the producer's own secrets: expanded into a job they would travel to the
 * target, the result records and the dead-letter queue. */
static bool sk_env_secret(const char *name)
{
    static const char *const secret[] = {"SALVO_AMQP_URL", "SALVO_SIGNING_KEYS",
                                         "SALVO_SIGNING_KEY_FILE"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        if (strcmp(name, secret[i]) == 0)
            return true;
    }
    return false;
}

/* Append ${NAME} at s (slen bytes left, s[0..1] == "${") to f; returns bytes consumed. */
static size_t sk_env(schedval_ctx *c, const yaml_node_t *n, const char *s, size_t slen, FILE *f,
                     bool *bad)
{
    const char *close = memchr(s, '}', slen);
    size_t nlen = close ? (size_t)(close - s - 2) : 0;
    char name[128];
    if (!close || nlen == 0 || nlen >= sizeof name || strspn(s + 2, SK_NAME_CHARS) < nlen ||
        memchr(s + 2, '.', nlen) || memchr(s + 2, '-', nlen)) {
        schedval_error_at(c, n, "malformed ${...}: expected ${NAME} (write $${ for a literal ${)");
        *bad = true;
        return slen;
    }
    memcpy(name, s + 2, nlen);
    name[nlen] = '\0';
    const char *v = getenv(name);
    if (sk_env_secret(name)) {
        schedval_error_at(c, n,
                          "${%s} is salvo's own secret (the broker password or signing keys)"
                          ": schedules may not expand it",
                          name);
        *bad = true;
    } else if (!v) {
        schedval_error_at(c, n, "environment variable '%s' is not set", name);
        *bad = true;
    } else {
        fputs(v, f);
    }
    return nlen + 3;
}

static bool sk_has_var(const char *s, size_t len)
{
    for (const char *p = memchr(s, '$', len); p; p = memchr(p + 1, '$', len - (size_t)(p + 1 - s)))
        if ((size_t)(p + 1 - s) < len && p[1] == '{')
            return true;
    return false;
}

char *schedval_text(schedval_ctx *c, const yaml_node_t *n, const char *what, size_t *len)
{
    if (n->type != YAML_SCALAR_NODE) {
        schedval_error_at(c, n, "%s: expected a scalar value, got a %s", what, schedval_kind(n));
        return NULL;
    }
    const char *s = (const char *)n->data.scalar.value;
    size_t slen = n->data.scalar.length;
    /* Most scalars hold no ${...}: copy them directly. open_memstream callocs and clears a
     * buffer per call, which was 39% of the instructions to load a 20,000-entry file. */
    if (!sk_has_var(s, slen)) {
        char *copy = strndup(s, slen);
        if (!copy)
            c->nomem = true;
        else if (len)
            *len = slen;
        return copy;
    }
    char *out = NULL;
    size_t olen = 0;
    bool bad = false;
    FILE *f = open_memstream(&out, &olen);
    if (!f) {
        c->nomem = true;
        return NULL;
    }
    for (size_t i = 0; i < slen;) {
        if (slen - i >= 3 && memcmp(s + i, "$${", 3) == 0) {
            fputs("${", f);
            i += 3;
        } else if (slen - i >= 2 && memcmp(s + i, "${", 2) == 0) {
            i += sk_env(c, n, s + i, slen - i, f, &bad);
        } else {
            fputc(s[i++], f);
        }
    }
    if (fclose(f) != 0 || !out) {
        c->nomem = true;
        bad = true;
    }
    if (bad) {
        free(out);
        return NULL;
    }
    if (len)
        *len = olen;
    return out;
}

/* True (and reported) when the key of pair i repeats an earlier key of the same map. */
static bool sk_dup_key(schedval_ctx *c, yaml_node_t *map, yaml_node_pair_t *pair)
{
    yaml_node_t *k = scheddoc_get(c->doc, pair->key);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        yaml_node_t *pk = scheddoc_get(c->doc, p->key);
        if (pk->type == YAML_SCALAR_NODE && pk->data.scalar.length == k->data.scalar.length &&
            memcmp(pk->data.scalar.value, k->data.scalar.value, k->data.scalar.length) == 0) {
            schedval_error_at(c, k, "duplicate key '%s' (first at line %d)",
                              (const char *)k->data.scalar.value, (int)pk->start_mark.line + 1);
            return true;
        }
    }
    return false;
}

/* The key node of a pair when it is a usable string key; reports and returns NULL otherwise. */
static yaml_node_t *sk_key(schedval_ctx *c, yaml_node_t *map, yaml_node_pair_t *pair)
{
    yaml_node_t *k = scheddoc_get(c->doc, pair->key);
    if (k->type != YAML_SCALAR_NODE) {
        schedval_error_at(c, k, "expected a string key, got a %s", schedval_kind(k));
        return NULL;
    }
    return sk_dup_key(c, map, pair) ? NULL : k;
}

static void sk_unknown(schedval_ctx *c, yaml_node_t *k, const schedval_key *keys, size_t n)
{
    const char *word = (const char *)k->data.scalar.value;
    const char *best = NULL;
    size_t best_d = strlen(word) / 2 + 1; /* closer than half the word, or it misleads */
    for (size_t i = 0; i < n; i++) {
        size_t d = config_distance(word, keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = keys[i].hint ? keys[i].hint : keys[i].name;
        }
    }
    if (best)
        schedval_error_at(c, k, "unknown key '%s' (did you mean '%s'?)", word, best);
    else
        schedval_error_at(c, k, "unknown key '%s'", word);
}

void schedval_map(schedval_ctx *c, yaml_node_t *map, const schedval_key *keys, size_t n,
                  bool in_defaults, void *ud, const char *what)
{
    if (map->type != YAML_MAPPING_NODE) {
        schedval_error_at(c, map, "%s: expected a map, got a %s", what, schedval_kind(map));
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = sk_key(c, map, p);
        if (!k)
            continue;
        const schedval_key *key = NULL;
        for (size_t i = 0; i < n && !key; i++) {
            if (strcmp(keys[i].name, (const char *)k->data.scalar.value) == 0)
                key = &keys[i];
        }
        if (!key || !key->fn)
            sk_unknown(c, k, keys, n);
        else if (in_defaults && key->job_only)
            schedval_error_at(c, k, "'%s' is not allowed in defaults (set it on each job)",
                              key->name);
        else
            key->fn(c, ud, k, scheddoc_get(c->doc, p->value));
    }
}

/* ---- the document and its errors ---------------------------------------------------------- */

void schedval_syntax(schedval_ctx *c, const yaml_parser_t *p, const char *text, size_t len,
                     bool alone)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->nomem = true;
        return;
    }
    if (alone) {
        for (size_t i = 0; i < c->nerrs; i++)
            free(c->errs[i].msg);
        c->nerrs = c->total = 0;
    }
    int line = (int)p->problem_mark.line + 1;
    int col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) { /* bad encoding: only a byte offset is known */
        line = 1;
        col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            col = text[i] == '\n' ? 1 : col + 1;
            line += text[i] == '\n';
        }
    }
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        schedval_error_line(c, line, col, "YAML syntax error: %s (%s at line %d)", problem,
                            p->context, (int)p->context_mark.line + 1);
    else
        schedval_error_line(c, line, col, "YAML syntax error: %s", problem);
}

static int sv_err_cmp(const void *a, const void *b)
{
    const schedval_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

char *schedval_render(schedval_ctx *c)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    qsort(c->errs, c->nerrs, sizeof *c->errs, sv_err_cmp);
    for (size_t i = 0; i < c->nerrs; i++)
        fprintf(f, "%s:%d:%d: %s\n", c->name, c->errs[i].line, c->errs[i].col, c->errs[i].msg);
    if (c->total > c->nerrs)
        fprintf(f, "%s: ... and %zu more errors\n", c->name, c->total - c->nerrs);
    if (c->nomem)
        fprintf(f, "%s: out of memory\n", c->name);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

void schedval_fini(schedval_ctx *c)
{
    for (size_t i = 0; i < c->nerrs; i++)
        free(c->errs[i].msg);
    free(c->errs);
    c->errs = NULL;
    c->nerrs = c->cap = 0;
}

/* ---- typed scalars ------------------------------------------------------------------------ */

static void sk_fmt_ms(int64_t ms, char *buf, size_t cap)
{
    if (ms && ms % 3600000 == 0)
        snprintf(buf, cap, "%lldh", (long long)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(buf, cap, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, cap, "%lldms", (long long)ms);
}

bool schedval_int(schedval_ctx *c, const yaml_node_t *n, const char *what, int64_t min, int64_t max,
                  int64_t *out)
{
    char *s = schedval_text(c, n, what, NULL);
    if (!s)
        return false;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    bool ok = end != s && *end == '\0' && strspn(s, "-0123456789") == strlen(s) && v > LLONG_MIN &&
              v < LLONG_MAX;
    if (!ok)
        schedval_error_at(c, n, "%s: expected an integer, got '%s'", what, s);
    else if (v < min)
        schedval_error_at(c, n, "%s: %lld is below the minimum %lld", what, v, (long long)min);
    else if (v > max)
        schedval_error_at(c, n, "%s: %lld is above the maximum %lld", what, v, (long long)max);
    free(s);
    *out = v;
    return ok && v >= min && v <= max;
}

bool schedval_duration(schedval_ctx *c, const yaml_node_t *n, const char *what, int64_t min,
                       int64_t max, int64_t *out)
{
    char *s = schedval_text(c, n, what, NULL);
    if (!s)
        return false;
    char lim[32];
    bool ok = false;
    if (config_parse_duration(s, out) != ERR_OK) {
        schedval_error_at(c, n, "%s: bad duration '%s' (expected e.g. 250ms, 30s, 5m, 1h30m)", what,
                          s);
    } else if (*out < min) {
        sk_fmt_ms(min, lim, sizeof lim);
        schedval_error_at(c, n, "%s: %s is below the minimum %s", what, s, lim);
    } else if (*out > max) {
        sk_fmt_ms(max, lim, sizeof lim);
        schedval_error_at(c, n, "%s: %s is above the maximum %s", what, s, lim);
    } else {
        ok = true;
    }
    free(s);
    return ok;
}

bool schedval_bool(schedval_ctx *c, const yaml_node_t *n, const char *what, bool *out)
{
    char *s = schedval_text(c, n, what, NULL);
    if (!s)
        return false;
    bool ok = strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0;
    if (ok)
        *out = strcasecmp(s, "true") == 0;
    else
        schedval_error_at(c, n, "%s: expected true or false, got '%s'", what, s);
    free(s);
    return ok;
}

/* ---- context values ----------------------------------------------------------------------- */

/* YAML core-schema resolution of a plain scalar: int, float, bool, null, else string. */
static int sk_plain(schedval_ctx *c, const yaml_node_t *n, const char *s, size_t len, jval *out)
{
    static const char *const nils[] = {"", "~", "null", "Null", "NULL"};
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 5; i++) {
        if (strcmp(s, nils[i]) == 0) {
            jval_set_nil(out);
            return ERR_OK;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, trues[i]) == 0 || strcmp(s, falses[i]) == 0) {
            jval_set_bool(out, strcmp(s, trues[i]) == 0);
            return ERR_OK;
        }
    }
    size_t sign = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    size_t digits = strspn(s + sign, "0123456789");
    if (digits > 0 && sign + digits == len) {
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (v == LLONG_MAX || v == LLONG_MIN) {
            schedval_error_at(c, n, "context: integer '%s' out of range", s);
            return ERR_RANGE;
        }
        jval_set_int(out, v);
        return ERR_OK;
    }
    /* Float only with a digit and a '.' or exponent, so "inf", "nan" or "0x1p3" stay strings. */
    bool has_digit = strpbrk(s, "0123456789") != NULL;
    bool shaped = strspn(s + sign, "0123456789.eE+-") == len - sign && strpbrk(s, ".eE");
    char *end = NULL;
    double d = has_digit && shaped ? strtod(s, &end) : 0;
    if (end && *end == '\0') {
        jval_set_float(out, d);
        return ERR_OK;
    }
    return jval_set_str(out, s, len);
}

static int sk_jval(schedval_ctx *c, yaml_node_t *n, int depth, size_t *budget, jval *out);

static int sk_jval_items(schedval_ctx *c, yaml_node_t *n, int depth, size_t *budget, jval *out)
{
    jval_set_array(out);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        jval item = {0};
        int rc = sk_jval(c, scheddoc_get(c->doc, *it), depth + 1, budget, &item);
        if (rc == ERR_OK)
            rc = jval_array_push(out, &item);
        jval_fini(&item);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static int sk_jval_pairs(schedval_ctx *c, yaml_node_t *n, int depth, size_t *budget, jval *out)
{
    if (out->type != JVAL_MAP) /* context merges into the map defaults already filled */
        jval_set_map(out);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = sk_key(c, n, p);
        if (!k)
            return ERR_SCHEDULE;
        jval v = {0};
        int rc = sk_jval(c, scheddoc_get(c->doc, p->value), depth + 1, budget, &v);
        if (rc == ERR_OK)
            rc = jval_map_put(out, (const char *)k->data.scalar.value, &v);
        jval_fini(&v);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static int sk_jval(schedval_ctx *c, yaml_node_t *n, int depth, size_t *budget, jval *out)
{
    /* The wire's depth limit, checked here so the message points at the node; it also stops a
     * self-referencing alias. */
    bool container = n->type == YAML_SEQUENCE_NODE || n->type == YAML_MAPPING_NODE;
    if ((container && depth > JOB_CONTEXT_DEPTH_MAX) || *budget == 0) {
        if (*budget == 0)
            schedval_error_at(c, n, "context: more than %d values", SK_CONTEXT_NODES);
        else
            schedval_error_at(c, n, "context: nested deeper than %d levels", JOB_CONTEXT_DEPTH_MAX);
        return ERR_RANGE;
    }
    (*budget)--;
    if (n->type == YAML_SEQUENCE_NODE)
        return sk_jval_items(c, n, depth, budget, out);
    if (n->type == YAML_MAPPING_NODE)
        return sk_jval_pairs(c, n, depth, budget, out);
    size_t len = 0;
    char *s = schedval_text(c, n, "context", &len);
    if (!s)
        return ERR_SCHEDULE;
    int rc = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? sk_plain(c, n, s, len, out)
                                                             : jval_set_str(out, s, len);
    free(s);
    return rc;
}

void schedval_context(schedval_ctx *c, yaml_node_t *map, jval *into)
{
    if (map->type != YAML_MAPPING_NODE) {
        schedval_error_at(c, map, "context: expected a map, got a %s", schedval_kind(map));
        return;
    }
    size_t budget = SK_CONTEXT_NODES;
    if (sk_jval_pairs(c, map, 1, &budget, into) == ERR_NOMEM)
        c->nomem = true;
}
