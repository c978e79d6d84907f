/* tgt_plan: status sequences per path and Idempotency-Key, and hold times per path. */
#include "tgt_plan.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tgt_plan_entry {
    char *path;
    int statuses[TGT_PLAN_MAX_STEPS];
    size_t nstatus;   /* 0: this entry only sets a delay */
    int repeat_last;  /* trailing '*' */
    int64_t delay_ms; /* -1: the default delay */
} tgt_plan_entry;

/* One attempt counter per (path, key), open addressing; the key copy is "path\0key". */
typedef struct tgt_plan_slot {
    uint64_t hash;
    char *key; /* NULL: empty slot */
    size_t key_len;
    unsigned count;
} tgt_plan_slot;

struct tgt_plan {
    tgt_plan_entry *entries;
    size_t nentries;
    int default_status;
    int64_t default_delay_ms;
    tgt_plan_slot *slots;
    size_t nslots; /* power of two */
    size_t used;
};

#define TGT_PLAN_FIRST_SLOTS 1024

static tgt_plan_entry *tgt_plan_entry_for(tgt_plan *plan, const char *path, size_t n, int add)
{
    for (size_t i = 0; i < plan->nentries; i++)
        if (strlen(plan->entries[i].path) == n && memcmp(plan->entries[i].path, path, n) == 0)
            return &plan->entries[i];
    if (!add)
        return NULL;
    tgt_plan_entry *grown = realloc(plan->entries, (plan->nentries + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    plan->entries = grown;
    tgt_plan_entry *e = &grown[plan->nentries];
    memset(e, 0, sizeof *e);
    e->delay_ms = -1;
    e->path = strndup(path, n);
    if (!e->path)
        return NULL;
    plan->nentries++;
    return e;
}

/* Parse "500,200*" into e; a status is three digits 100-599. */
static int tgt_plan_statuses(const char *s, tgt_plan_entry *e, char *msg, size_t cap)
{
    const char *p = s;
    e->nstatus = 0;
    e->repeat_last = 0;
    for (;;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 100 || v > 599 || e->nstatus == TGT_PLAN_MAX_STEPS) {
            snprintf(msg, cap, "bad status list '%s' (100-599, at most %d)", s, TGT_PLAN_MAX_STEPS);
            return ERR_PARSE;
        }
        e->statuses[e->nstatus++] = (int)v;
        p = end;
        if (*p == '*' && p[1] == '\0') {
            e->repeat_last = 1;
            return ERR_OK;
        }
        if (*p == '\0')
            return ERR_OK;
        if (*p != ',') {
            snprintf(msg, cap, "bad status list '%s'", s);
            return ERR_PARSE;
        }
        p++;
    }
}

/* Apply one "PATH=VALUE" item of a status (is_delay 0) or delay (is_delay 1) spec. */
static int tgt_plan_item(tgt_plan *plan, char *item, int is_delay, char *msg, size_t cap)
{
    char *eq = strchr(item, '=');
    if (!eq || eq == item || (item[0] != '/' && strncmp(item, "default=", 8) != 0)) {
        snprintf(msg, cap, "bad plan item '%s' (want /path=VALUE or default=VALUE)", item);
        return ERR_PARSE;
    }
    *eq = '\0';
    const char *value = eq + 1;
    if (strcmp(item, "default") == 0 && !is_delay) {
        tgt_plan_entry tmp;
        int rc = tgt_plan_statuses(value, &tmp, msg, cap);
        if (rc != ERR_OK)
            return rc;
        if (tmp.nstatus != 1 || tmp.repeat_last) {
            snprintf(msg, cap, "default takes one status, not '%s'", value);
            return ERR_PARSE;
        }
        plan->default_status = tmp.statuses[0];
        return ERR_OK;
    }
    tgt_plan_entry *e = tgt_plan_entry_for(plan, item, strlen(item), 1);
    if (!e)
        return ERR_NOMEM;
    if (!is_delay)
        return tgt_plan_statuses(value, e, msg, cap);
    char *end = NULL;
    long long ms = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || ms < 0 || ms > 3600 * 1000) {
        snprintf(msg, cap, "bad delay '%s' for %s (0-3600000 ms)", value, item);
        return ERR_PARSE;
    }
    e->delay_ms = ms;
    return ERR_OK;
}

/* Split spec on ';' (whitespace around items ignored) and apply each item. */
static int tgt_plan_spec(tgt_plan *plan, const char *spec, int is_delay, char *msg, size_t cap)
{
    if (!spec)
        return ERR_OK;
    char *copy = strdup(spec);
    if (!copy)
        return ERR_NOMEM;
    int rc = ERR_OK;
    char *save = NULL;
    for (char *it = strtok_r(copy, ";", &save); it && rc == ERR_OK;
         it = strtok_r(NULL, ";", &save)) {
        while (*it == ' ')
            it++;
        size_t n = strlen(it);
        while (n > 0 && it[n - 1] == ' ')
            it[--n] = '\0';
        if (n > 0)
            rc = tgt_plan_item(plan, it, is_delay, msg, cap);
    }
    free(copy);
    return rc;
}

int tgt_plan_new(const char *status_spec, const char *delay_spec, int64_t default_delay_ms,
                 tgt_plan **out, char *msg, size_t msg_cap)
{
    int rc = ERR_NOMEM;
    tgt_plan *plan = calloc(1, sizeof *plan);
    if (!plan)
        goto fail;
    plan->default_status = 200;
    plan->default_delay_ms = default_delay_ms;
    plan->nslots = TGT_PLAN_FIRST_SLOTS;
    plan->slots = calloc(plan->nslots, sizeof *plan->slots);
    if (!plan->slots)
        goto fail;
    rc = tgt_plan_spec(plan, status_spec, 0, msg, msg_cap);
    if (rc == ERR_OK)
        rc = tgt_plan_spec(plan, delay_spec, 1, msg, msg_cap);
    if (rc != ERR_OK)
        goto fail;
    *out = plan;
    return ERR_OK;
fail:
    if (rc == ERR_NOMEM)
        snprintf(msg, msg_cap, "out of memory");
    tgt_plan_free(plan);
    return rc;
}

void tgt_plan_free(tgt_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->nentries; i++)
        free(plan->entries[i].path);
    free(plan->entries);
    for (size_t i = 0; plan->slots && i < plan->nslots; i++)
        free(plan->slots[i].key);
    free(plan->slots);
    free(plan);
}

/* FNV-1a over the path, a NUL separator, then the key. */
static uint64_t tgt_plan_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static tgt_plan_slot *tgt_plan_probe(tgt_plan_slot *slots, size_t nslots, uint64_t h, const char *k,
                                     size_t n)
{
    for (size_t i = h & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
        tgt_plan_slot *s = &slots[i];
        if (!s->key || (s->hash == h && s->key_len == n && memcmp(s->key, k, n) == 0))
            return s;
    }
}

/* Double the table when 70% full, so probes stay short. */
static int tgt_plan_grow(tgt_plan *plan)
{
    if ((plan->used + 1) * 10 < plan->nslots * 7)
        return ERR_OK;
    size_t n = plan->nslots * 2;
    tgt_plan_slot *slots = calloc(n, sizeof *slots);
    if (!slots)
        return ERR_NOMEM;
    for (size_t i = 0; i < plan->nslots; i++) {
        tgt_plan_slot *old = &plan->slots[i];
        if (old->key)
            *tgt_plan_probe(slots, n, old->hash, old->key, old->key_len) = *old;
    }
    free(plan->slots);
    plan->slots = slots;
    plan->nslots = n;
    return ERR_OK;
}

/* Count one more request for (path, key); returns the new count, 1 when memory ran out. */
static unsigned tgt_plan_count(tgt_plan *plan, const char *path, size_t path_len, const char *key,
                               size_t key_len, int *rc)
{
    char stack[512];
    size_t n = path_len + 1 + key_len;
    char *k = n <= sizeof stack ? stack : malloc(n);
    unsigned count = 1;
    *rc = ERR_NOMEM;
    if (!k || tgt_plan_grow(plan) != ERR_OK)
        goto done;
    memcpy(k, path, path_len);
    k[path_len] = '\0';
    memcpy(k + path_len + 1, key, key_len);
    uint64_t h = tgt_plan_hash(k, n);
    tgt_plan_slot *s = tgt_plan_probe(plan->slots, plan->nslots, h, k, n);
    if (!s->key) {
        s->key = malloc(n);
        if (!s->key)
            goto done;
        memcpy(s->key, k, n);
        s->key_len = n;
        s->hash = h;
        plan->used++;
    }
    count = ++s->count;
    *rc = ERR_OK;
done:
    if (k != stack)
        free(k);
    return count;
}

int tgt_plan_next(tgt_plan *plan, const char *path, size_t path_len, const char *key,
                  size_t key_len, tgt_plan_answer *out)
{
    int rc = ERR_OK;
    tgt_plan_entry *e = tgt_plan_entry_for(plan, path, path_len, 0);
    out->seen = tgt_plan_count(plan, path, path_len, key, key_len, &rc);
    out->status = plan->default_status;
    out->delay_ms = e && e->delay_ms >= 0 ? e->delay_ms : plan->default_delay_ms;
    if (e && e->nstatus > 0) {
        size_t i = out->seen - 1;
        if (i < e->nstatus)
            out->status = e->statuses[i];
        else if (e->repeat_last)
            out->status = e->statuses[e->nstatus - 1];
    }
    return rc;
}

size_t tgt_plan_keys(const tgt_plan *plan)
{
    return plan->used;
}
