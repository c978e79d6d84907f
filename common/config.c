/* config: defaults < environment < flags, from one option table per binary or subcommand. */
#include "config.h"

#include "err.h"
#include "fileio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_DIST_MAXLEN 64 /* names are short; beyond this a suggestion is useless anyway */

static const struct {
    const char *unit;
    int64_t ms;
} config_units[] = {
    /* Longest first among those sharing a letter, so "ms" is not read as "m" then "s". */
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

/* Read one "<digits><unit>" term at *p, advancing past it. */
static int config_duration_term(const char **p, int64_t *ms, size_t *unit_idx)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return ERR_PARSE;
    while (*s >= '0' && *s <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return ERR_PARSE;
        v = v * 10 + (*s++ - '0');
    }
    size_t n = sizeof config_units / sizeof config_units[0];
    for (size_t i = 0; i < n; i++) {
        size_t ulen = strlen(config_units[i].unit);
        if (strncmp(s, config_units[i].unit, ulen) == 0) {
            if (v > INT64_MAX / config_units[i].ms)
                return ERR_PARSE;
            *ms = v * config_units[i].ms;
            *unit_idx = i;
            *p = s + ulen;
            return ERR_OK;
        }
    }
    return ERR_PARSE;
}

int config_parse_duration(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return ERR_PARSE;
    size_t digits = strspn(s, "0123456789");
    if (s[digits] == '\0') { /* a plain integer means seconds */
        if (digits > 15)
            return ERR_PARSE;
        *ms = strtoll(s, NULL, 10) * 1000;
        return ERR_OK;
    }
    int64_t total = 0;
    int64_t prev_unit = INT64_MAX;
    while (*s) {
        int64_t v = 0;
        size_t idx = 0;
        if (config_duration_term(&s, &v, &idx) != ERR_OK)
            return ERR_PARSE;
        /* "1h30m" reads naturally; "30m1h" or "1s1s" is almost surely a typo. */
        if (config_units[idx].ms >= prev_unit || v > INT64_MAX - total)
            return ERR_PARSE;
        prev_unit = config_units[idx].ms;
        total += v;
    }
    *ms = total;
    return ERR_OK;
}

size_t config_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > CONFIG_DIST_MAXLEN || lb > CONFIG_DIST_MAXLEN)
        return (size_t)-1;
    size_t row[CONFIG_DIST_MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int config_fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int config_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return ERR_INVAL;
}

static int config_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return ERR_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return ERR_OK;
        }
    }
    return ERR_INVAL;
}

static int config_int(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return ERR_INVAL;
    *out = v;
    return ERR_OK;
}

static int config_enum(const config_opt *o, const char *s, int *out)
{
    for (int i = 0; o->choices && o->choices[i]; i++) {
        if (strcmp(o->choices[i], s) == 0) {
            *out = i;
            return ERR_OK;
        }
    }
    return ERR_INVAL;
}

/* Describe what an option expects, for error messages. */
static const char *config_expect(const config_opt *o)
{
    switch (o->type) {
    case CONFIG_INT:
        return "an integer";
    case CONFIG_DURATION:
        return "a duration such as 250ms, 30s, 5m or 1h30m";
    case CONFIG_BOOL:
        return "true or false";
    case CONFIG_ENUM:
        return "one of the listed choices (see --help)";
    default:
        return "a string";
    }
}

static int config_range(const config_opt *o, int64_t v, const char *src, char *err, size_t cap)
{
    if ((o->min || o->max) && (v < o->min || v > o->max)) {
        if (o->flags & CONFIG_SECRET)
            return config_fail(err, cap, "%s: value out of range", src);
        return config_fail(err, cap, "%s: %lld is out of range %lld..%lld", src, (long long)v,
                           (long long)o->min, (long long)o->max);
    }
    return ERR_OK;
}

/* Parse text into the option's target; src names the flag or variable for messages. */
static int config_set(const config_opt *o, const char *text, const char *src, char *err, size_t cap)
{
    int64_t v = 0;
    int rc = ERR_OK;
    switch (o->type) {
    case CONFIG_STRING:
        *(const char **)o->ptr = text;
        return ERR_OK;
    case CONFIG_INT:
        rc = config_int(text, &v);
        break;
    case CONFIG_DURATION:
        rc = config_parse_duration(text, &v) == ERR_OK ? ERR_OK : ERR_INVAL;
        break;
    case CONFIG_BOOL:
        rc = config_bool(text, (bool *)o->ptr);
        break;
    case CONFIG_ENUM:
        rc = config_enum(o, text, (int *)o->ptr);
        break;
    }
    if (rc != ERR_OK && (o->flags & CONFIG_SECRET))
        return config_fail(err, cap, "%s: invalid value: expected %s", src, config_expect(o));
    if (rc != ERR_OK)
        return config_fail(err, cap, "%s: invalid value '%s': expected %s", src, text,
                           config_expect(o));
    if (o->type == CONFIG_INT || o->type == CONFIG_DURATION) {
        rc = config_range(o, v, src, err, cap);
        if (rc == ERR_OK)
            *(int64_t *)o->ptr = v;
    }
    return rc;
}

static int config_defaults_env(const config_opt *table, char *err, size_t cap)
{
    for (const config_opt *o = table; o->flag; o++) {
        if (o->def) {
            int rc = config_set(o, o->def, o->flag, err, cap);
            if (rc != ERR_OK)
                return rc;
        }
    }
    for (const config_opt *o = table; o->flag; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        /* An empty variable counts as unset: compose files often pass "VAR=" through. */
        if (v && *v) {
            int rc = config_set(o, v, o->env, err, cap);
            if (rc != ERR_OK)
                return rc;
        }
    }
    return ERR_OK;
}

static const config_opt *config_find(const config_opt *table, const char *name, size_t len)
{
    for (const config_opt *o = table; o->flag; o++) {
        if (strlen(o->flag) == len && strncmp(o->flag, name, len) == 0)
            return o;
    }
    return NULL;
}

static int config_unknown(const config_opt *table, const char *arg, char *err, size_t cap)
{
    char name[CONFIG_DIST_MAXLEN + 1];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
    const char *best = NULL;
    size_t best_d = 3; /* beyond two edits a suggestion misleads more than it helps */
    for (const config_opt *o = table; o->flag; o++) {
        size_t d = config_distance(name, o->flag);
        if (d < best_d) {
            best_d = d;
            best = o->flag;
        }
    }
    if (best)
        return config_fail(err, cap, "unknown option '--%s' (did you mean '--%s'?)", name, best);
    return config_fail(err, cap, "unknown option '--%s' (see --help)", name);
}

/* Handle argv[*i] which starts with "--"; may consume the next argument as its value. */
static int config_flag(const config_opt *table, int argc, char **argv, int *i, char *err,
                       size_t cap)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
    char src[CONFIG_DIST_MAXLEN + 3];
    const config_opt *o = config_find(table, arg, nlen);
    if (!o && !eq && strncmp(arg, "no-", 3) == 0) {
        o = config_find(table, arg + 3, nlen - 3);
        if (o && o->type == CONFIG_BOOL)
            return config_set(o, "false", argv[*i], err, cap);
        o = NULL;
    }
    if (!o)
        return config_unknown(table, argv[*i], err, cap);
    snprintf(src, sizeof src, "--%s", o->flag);
    if (eq)
        return config_set(o, eq + 1, src, err, cap);
    if (o->type == CONFIG_BOOL)
        return config_set(o, "true", src, err, cap);
    if (*i + 1 >= argc)
        return config_fail(err, cap, "%s: missing value: expected %s", src, config_expect(o));
    (*i)++;
    return config_set(o, argv[*i], src, err, cap);
}

/* Walk argv applying flags; positionals are collected in pos (in order), *npos counts them. */
static int config_argv(const config_opt *table, int argc, char **argv, char **pos, int *npos,
                       char *err, size_t cap)
{
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            pos[(*npos)++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            only_pos = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return CONFIG_HELP;
        } else if (a[1] != '-') {
            return config_fail(err, cap, "unknown option '%s' (options are --long; see --help)", a);
        } else {
            int rc = config_flag(table, argc, argv, &i, err, cap);
            if (rc != ERR_OK)
                return rc;
        }
    }
    return ERR_OK;
}

#define CONFIG_FILE_MAX 65536 /* a URL list or a key list: far less; refuses /dev/zero */

int config_env_from_file(const char *env, char *err, size_t cap)
{
    char name[128];
    snprintf(name, sizeof name, "%s_FILE", env);
    const char *path = getenv(name);
    if (!path)
        return ERR_OK;
    if (getenv(env))
        return config_fail(err, cap, "set %s or %s, not both", env, name);
    fileio_buf file;
    int rc = fileio_read(path, CONFIG_FILE_MAX, &file, NULL, 0);
    if (rc == ERR_RANGE)
        rc = config_fail(err, cap, "%s: %s is larger than %d bytes", name, path, CONFIG_FILE_MAX);
    else if (rc != ERR_OK)
        rc = config_fail(err, cap, "%s: cannot read %s", name, path);
    size_t n = file.len;
    while (rc == ERR_OK && n > 0 && strchr(" \t\r\n", file.data[n - 1]))
        file.data[--n] = '\0';
    if (rc == ERR_OK && n == 0)
        rc = config_fail(err, cap, "%s: %s is empty", name, path);
    if (rc == ERR_OK && (setenv(env, file.data, 1) != 0 || unsetenv(name) != 0))
        rc = config_fail(err, cap, "%s: cannot set %s", name, env);
    fileio_fini(&file); /* setenv copied it; leave no second copy */
    return rc;
}

int config_parse(const config_opt *table, int argc, char **argv, int *optind_out, char *err,
                 size_t cap)
{
    if (err && cap)
        err[0] = '\0';
    int rc = config_defaults_env(table, err, cap);
    if (rc != ERR_OK)
        return rc;
    char **pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof *pos);
    if (!pos)
        return ERR_NOMEM;
    int npos = 0;
    rc = config_argv(table, argc, argv, pos, &npos, err, cap);
    if (rc == ERR_OK) {
        /* Flags and their values keep their relative order ahead of the positionals. */
        int w = 1;
        for (int i = 1; i < argc; i++) {
            bool is_pos = false;
            for (int k = 0; k < npos && !is_pos; k++)
                is_pos = pos[k] == argv[i];
            if (!is_pos)
                argv[w++] = argv[i];
        }
        if (optind_out)
            *optind_out = w;
        for (int k = 0; k < npos; k++)
            argv[w++] = pos[k];
    }
    free(pos);
    return rc;
}

static void config_usage_one(FILE *out, const config_opt *o)
{
    char left[96];
    const char *meta = o->type == CONFIG_BOOL       ? ""
                       : o->type == CONFIG_INT      ? " N"
                       : o->type == CONFIG_DURATION ? " DURATION"
                       : o->type == CONFIG_ENUM     ? " CHOICE"
                                                    : " VALUE";
    snprintf(left, sizeof left, "--%s%s", o->flag, meta);
    fprintf(out, "  %-26s %s\n", left, o->help ? o->help : "");
    fprintf(out, "  %-26s", "");
    if (o->env)
        fprintf(out, " env %s;", o->env);
    if (o->flags & CONFIG_SECRET)
        fprintf(out, " default (secret)");
    else if (o->def && *o->def)
        fprintf(out, " default %s", o->def);
    else
        fprintf(out, " no default");
    if (o->type == CONFIG_ENUM && o->choices) {
        fprintf(out, "; one of");
        for (int i = 0; o->choices[i]; i++)
            fprintf(out, "%s%s", i ? ", " : " ", o->choices[i]);
    }
    fputc('\n', out);
}

void config_usage(FILE *out, const char *usage, const config_opt *table)
{
    fprintf(out, "Usage: %s\n", usage);
    if (!table || !table->flag)
        return;
    fprintf(out, "\nOptions (flags override environment variables, which override defaults):\n");
    for (const config_opt *o = table; o->flag; o++)
        config_usage_one(out, o);
    fprintf(out, "  %-26s %s\n", "--help", "show this help and exit");
}
