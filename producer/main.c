/* salvo-producer: the command dispatcher (check and next here; run comes from producer/run.c). */
#include "cli.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "run.h"
#include "schedfile.h"
#include "sign.h"
#include "tzone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG             "salvo-producer"
#define NEXT_COUNT_MAX   1000 /* a screenful is the point; more is a mistake */
#define NEXT_COUNT_DEFLT "5"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
    const char *summary;
} command;

/* The schedule file: a positional FILE wins over --schedule / SALVO_SCHEDULE. Exit code 2 (and a
 * message) when none or more than one is given. */
static int schedule_path(const char *cmd, int argc, char **argv, int first, const char **path)
{
    if (argc - first > 1) {
        fprintf(stderr, PROG " %s: expected one FILE, got %d arguments\n", cmd, argc - first);
        return 2;
    }
    if (argc - first == 1)
        *path = argv[first];
    if (!*path || !**path) {
        fprintf(stderr, PROG " %s: no schedule file (give FILE or set SALVO_SCHEDULE)\n", cmd);
        return 2;
    }
    return 0;
}

/* Parse a subcommand's options; returns -1 to go on, else the exit code to return at once. */
static int parse_opts(const config_opt *opts, const char *usage, int argc, char **argv, int *first)
{
    char err[512];
    int rc = config_parse(opts, argc, argv, first, err, sizeof err);
    if (rc == CONFIG_HELP) {
        config_usage(stdout, usage, opts);
        return 0;
    }
    if (rc != ERR_OK) {
        fprintf(stderr, PROG " %s: %s\n", argv[0], rc == ERR_NOMEM ? err_str(rc) : err);
        return 2;
    }
    return -1;
}

/* Load the file, printing every error; NULL after printing. */
static schedfile *load_or_report(const char *path, int *code)
{
    schedfile *sf = NULL;
    char *errors = NULL;
    int rc = schedfile_load(path, &sf, &errors);
    if (rc != ERR_OK) {
        fputs(errors ? errors : err_str(rc), stderr);
        if (!errors)
            fputc('\n', stderr);
        free(errors);
        /* A bad or missing file is a configuration error; only running out of memory is not. */
        *code = rc == ERR_NOMEM ? 1 : 2;
        return NULL;
    }
    return sf;
}

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    const config_opt opts[] = {
        {"schedule", "SALVO_SCHEDULE", CONFIG_STRING, &path, NULL,
         "schedule file, when FILE is not given", NULL, 0, 0, 0},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0},
    };
    int first = argc;
    int code = parse_opts(opts,
                          PROG " check [FILE] [options]\n\n"
                               "Validate a schedule file: prints \"FILE: N jobs OK\" and exits 0, "
                               "or prints every\nerror as FILE:LINE:COLUMN: MESSAGE and exits 2.",
                          argc, argv, &first);
    if (code >= 0)
        return code;
    code = schedule_path("check", argc, argv, first, &path);
    if (code)
        return code;
    schedfile *sf = load_or_report(path, &code);
    if (!sf)
        return code;
    printf("%s: %zu jobs OK\n", path, sf->n);
    schedfile_free(sf);
    return 0;
}

/* "2026-03-29T03:00:00+02:00": the wall clock of zone tz at t, with its offset. */
static void format_local(const tzone *tz, int64_t t, char *buf, size_t cap)
{
    tzone_civil c;
    tzone_to_civil(tz, t, &c);
    int32_t off = c.utc_offset_s;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, cap, "%04lld-%02u-%02uT%02u:%02u:%02u%c%02d:%02d", (long long)c.year, c.month,
             c.day, c.hour, c.minute, c.second, sign, (int)(off / 3600), (int)(off / 60 % 60));
}

static void print_next(const sched_entry *e, int width, int64_t from_s, int64_t count)
{
    int64_t after = from_s - 1; /* --from is inclusive */
    for (int64_t k = 0; k < count; k++) {
        int64_t t = 0;
        char utc[40], local[48];
        int rc = schedfile_next(e, after, &t);
        if (rc != ERR_OK) {
            if (k == 0)
                printf("%-*s  (%s)\n", width, e->name,
                       rc == ERR_NOTFOUND ? "no firing after --from" : err_str(rc));
            return;
        }
        clock_format_iso(t * CLOCK_NS_PER_SEC, 0, utc, sizeof utc);
        format_local(e->tz, t, local, sizeof local);
        printf("%-*s  %s  %s %s\n", width, e->name, utc, local, e->tz_name);
        after = t;
    }
}

static int cmd_next(int argc, char **argv)
{
    const char *path = NULL, *from = NULL;
    int64_t count = 0, from_ns = clock_real_ns();
    const config_opt opts[] = {
        {"schedule", "SALVO_SCHEDULE", CONFIG_STRING, &path, NULL,
         "schedule file, when FILE is not given", NULL, 0, 0, 0},
        {"count", NULL, CONFIG_INT, &count, NEXT_COUNT_DEFLT, "fire instants to print per job",
         NULL, 1, NEXT_COUNT_MAX, 0},
        {"from", NULL, CONFIG_STRING, &from, NULL,
         "first instant considered (ISO-8601); default: now", NULL, 0, 0, 0},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0},
    };
    int first = argc;
    int code = parse_opts(opts,
                          PROG " next [FILE] [--count N] [--from TIME]\n\n"
                               "For each job, print its next fire instants at or after TIME: "
                               "name, UTC instant,\nthe job's wall clock with its offset, zone.",
                          argc, argv, &first);
    if (code >= 0)
        return code;
    if (from && clock_parse_iso(from, &from_ns) != ERR_OK) {
        fprintf(stderr, PROG " next: --from: bad time '%s' (expected e.g. 2026-03-29T00:00:00Z)\n",
                from);
        return 2;
    }
    code = schedule_path("next", argc, argv, first, &path);
    schedfile *sf = code ? NULL : load_or_report(path, &code);
    if (!sf)
        return code;
    int width = 0;
    for (size_t i = 0; i < sf->n; i++) {
        int w = (int)strlen(sf->entries[i].name);
        width = w > width ? w : width;
    }
    /* Round up: an instant strictly inside a second is past that second's firing. */
    int64_t from_s = from_ns / CLOCK_NS_PER_SEC + (from_ns % CLOCK_NS_PER_SEC > 0);
    for (size_t i = 0; i < sf->n; i++)
        print_next(&sf->entries[i], width, from_s, count);
    schedfile_free(sf);
    return 0;
}

/* keygen PATH: the secret goes straight into a new 0600 file, never to stdout or a log. */
static int cmd_keygen(int argc, char **argv)
{
    const char *kid = NULL;
    const config_opt opts[] = {
        {"key-id", NULL, CONFIG_STRING, &kid, NULL,
         "id of the new key, 1-64 of A-Z a-z 0-9 . _ - (default: k-<8 random hex digits>)", NULL, 0,
         0, 0},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0},
    };
    int first = argc;
    int code = parse_opts(opts,
                          PROG " keygen PATH [--key-id ID]\n\n"
                               "Write a new signing key (32 random bytes) to PATH as one line "
                               "\"keyid:base64\",\nmode 0600; an existing file is never "
                               "overwritten. Give the file to the producer and every\nworker "
                               "with --signing-key-file or SALVO_SIGNING_KEY_FILE.",
                          argc, argv, &first);
    if (code >= 0)
        return code;
    if (argc - first != 1) {
        fprintf(stderr, PROG " keygen: expected one PATH, got %d arguments\n", argc - first);
        return 2;
    }
    char err[512];
    int rc = sign_keygen(argv[first], kid, err, sizeof err);
    if (rc != ERR_OK) {
        fprintf(stderr, PROG " keygen: %s\n", err);
        return rc == ERR_IO ? 1 : 2;
    }
    printf("%s: new signing key written (mode 0600)\n", argv[first]);
    return 0;
}

static const command commands[] = {
    {"check", cmd_check, "validate a schedule file, reporting every error with line:column"},
    {"next", cmd_next, "print each job's next fire instants in UTC and in its time zone"},
    {"run", producer_run, "publish every due job to RabbitMQ at its instant, confirmed"},
    {"keygen", cmd_keygen, "write a new job-signing key file (mode 0600)"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "Usage: " PROG " <command> [options]\n       " PROG " --help | --version\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun '" PROG " <command> --help' for the options of a command.\n");
}

static int unknown_command(const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* more than two edits away is not a typo */
    for (size_t i = 0; i < NCOMMANDS; i++) {
        size_t d = config_distance(name, commands[i].name);
        if (d < best_d) {
            best_d = d;
            best = commands[i].name;
        }
    }
    if (best)
        fprintf(stderr, PROG ": unknown command '%s' (did you mean '%s'?)\n", name, best);
    else
        fprintf(stderr, PROG ": unknown command '%s' (see " PROG " --help)\n", name);
    return 2;
}

int main(int argc, char **argv)
{
    int code = cli_preamble(argc, argv, PROG, usage);
    if (code != CLI_CONTINUE)
        return code;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    return unknown_command(argv[1]);
}
