/* config: the option layer both binaries share. Each option is one table row naming its long
 * flag, its SALVO_* environment variable, its type, where the value goes, its default and its
 * help text; a value comes from the default, then the environment, then the command line. */
#ifndef SALVO_CONFIG_H
#define SALVO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef SALVO_VERSION
#define SALVO_VERSION "0.1.0" /* keep in step with project(VERSION) in CMakeLists.txt */
#endif

#define CONFIG_HELP 1 /* config_parse's "--help was asked for" result (not an error) */

typedef enum config_type {
    CONFIG_STRING = 1, /* ptr is const char **: borrowed from argv, environ or the default */
    CONFIG_INT,        /* ptr is int64_t * */
    CONFIG_DURATION,   /* ptr is int64_t *, milliseconds; text as in config_parse_duration */
    CONFIG_BOOL,       /* ptr is bool *; --flag, --no-flag, --flag=false; env 1/0/true/false */
    CONFIG_ENUM,       /* ptr is int *: index into choices */
} config_type;

enum {
    CONFIG_SECRET = 1 << 0, /* value never echoed: not in --help, not in error messages */
};

/* One option. A table is an array ended by a row whose flag is NULL. */
typedef struct config_opt {
    const char *flag; /* long flag without "--", e.g. "amqp-url" */
    const char *env;  /* environment variable ("SALVO_AMQP_URL"), or NULL for none */
    config_type type;
    void *ptr;
    const char *def;            /* default as text, parsed like any value; NULL leaves *ptr */
    const char *help;           /* one line */
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated names */
    int64_t min, max;           /* CONFIG_INT / CONFIG_DURATION bounds; both 0 = unbounded */
    int flags;                  /* CONFIG_SECRET */
} config_opt;

/* Fill every option of table: defaults first, then the environment, then argv (flags win).
 * Flags are "--name value" or "--name=value"; "--" ends them. argv[0] is skipped; the other
 * arguments that are not flags are moved, in order, to the end of argv (a "--" stays with the
 * flags) and *optind_out is the index of the first of them (argc when none). Returns ERR_OK,
 * CONFIG_HELP when --help or -h was given (the caller prints config_usage and exits 0), or
 * ERR_INVAL with a one-line message in err naming the flag or variable (the caller prints it and
 * exits 2). Secret values are never copied into err. Not thread-safe (reads the environment); call
 * from main. */
int config_parse(const config_opt *table, int argc, char **argv, int *optind_out, char *err,
                 size_t cap);

/* Secrets from a file (Docker and Kubernetes secrets are files): when the variable env "_FILE"
 * (e.g. SALVO_AMQP_URL_FILE) names a file, its content, trailing white space cut, becomes the
 * value of env, and env "_FILE" is unset; config_parse then reads env as usual, and a flag still
 * wins. ERR_OK (also when env "_FILE" is not set), or ERR_INVAL with err naming the variable when
 * both are set, the file cannot be read, is empty or is larger than 64 KiB. The value is never
 * copied into err. Not thread-safe (edits the environment): call from main before config_parse. */
int config_env_from_file(const char *env, char *err, size_t cap);

/* Print "Usage: <usage>" and one entry per option: flag, help, env variable and default
 * (secrets show "(secret)" in place of the default). */
void config_usage(FILE *out, const char *usage, const config_opt *table);

/* Parse a duration: "250ms", "30s", "5m", "1h", "1h30m" (units ms, s, m, h, d, combined from
 * largest to smallest), or a plain integer meaning seconds. ERR_OK, or ERR_PARSE (also for
 * overflow and empty text). Thread-safe. */
int config_parse_duration(const char *s, int64_t *ms);

/* Levenshtein edit distance between two NUL-terminated strings, used to suggest the nearest
 * valid name for a misspelt flag or key. Thread-safe; strings longer than 64 bytes compare as
 * far apart. */
size_t config_distance(const char *a, const char *b);

#endif
