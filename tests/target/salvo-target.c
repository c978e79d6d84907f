/* salvo-target: the recording HTTP/1.1 target that integration tests and the benchmark point
 * jobs at. It stamps every request's arrival, answers from a status plan, and writes one JSON
 * line per request (see tgt_record.h for the format). */
#include "err.h"
#include "log.h"
#include "tgt_server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void salvo_target_usage(FILE *to)
{
    fputs("usage: salvo-target [--port P] [--bind ADDR] [--record FILE] [--delay-ms N]\n"
          "                    [--status-plan SPEC] [--path-delay SPEC] [--threads N]\n"
          "                    [--log-level L]\n"
          "  --port P            listen port; 0 (default) picks one. Prints \"listening P\".\n"
          "  --bind ADDR         IPv4 address to listen on (default 127.0.0.1)\n"
          "  --record FILE       append one JSON line per request (default: record nothing)\n"
          "  --delay-ms N        hold every reply N ms (default 0)\n"
          "  --status-plan SPEC  e.g. '/flaky=500,200;/always500=500*;/gone=404*;default=200':\n"
          "                      statuses per path in order per Idempotency-Key; '*' repeats\n"
          "                      the last; past the list, and on other paths, the default\n"
          "  --path-delay SPEC   e.g. '/slow=5000;/fast=0': per-path hold in ms\n"
          "  --threads N         serving threads (default 1, at most 64), each accepting and\n"
          "                      stamping its share of the connections (SO_REUSEPORT): a burst\n"
          "                      is read on several cores instead of one\n"
          "  GET /__stats answers counts as JSON and is not recorded.\n"
          "  SIGTERM/SIGINT: flush the records and exit 0.\n",
          to);
}

/* Parse a non-negative integer option no larger than max; exits 2 on a bad value. */
static long long salvo_target_num(const char *opt, const char *v, long long max)
{
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || n < 0 || n > max) {
        fprintf(stderr, "salvo-target: %s: '%s' is not a number in 0-%lld\n", opt, v, max);
        exit(2);
    }
    return n;
}

/* Apply one parsed option; exits 0 for --help and 2 for a bad value or an unknown option. */
static void salvo_target_apply(int c, tgt_config *cfg, log_level *level)
{
    switch (c) {
    case 'p':
        cfg->port = (int)salvo_target_num("--port", optarg, 65535);
        break;
    case 'b':
        cfg->bind = optarg;
        break;
    case 'r':
        cfg->record_path = optarg;
        break;
    case 'd':
        cfg->delay_ms = salvo_target_num("--delay-ms", optarg, 3600 * 1000);
        break;
    case 's':
        cfg->status_plan = optarg;
        break;
    case 'D':
        cfg->path_delay = optarg;
        break;
    case 't':
        cfg->threads = (int)salvo_target_num("--threads", optarg, 64);
        break;
    case 'l':
        if (log_level_parse(optarg, level) == ERR_OK)
            break;
        fprintf(stderr, "salvo-target: --log-level: '%s' is not a level\n", optarg);
        exit(2);
    case 'h':
        salvo_target_usage(stdout);
        exit(0);
    default:
        salvo_target_usage(stderr);
        exit(2);
    }
}

static void salvo_target_options(int argc, char **argv, tgt_config *cfg, log_level *level)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"record", required_argument, NULL, 'r'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"status-plan", required_argument, NULL, 's'},
        {"path-delay", required_argument, NULL, 'D'},
        {"threads", required_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    for (;;) {
        int c = getopt_long(argc, argv, "h", opts, NULL);
        if (c == -1)
            break;
        salvo_target_apply(c, cfg, level);
    }
    if (optind < argc) {
        salvo_target_usage(stderr);
        exit(2);
    }
}

/* 10,000+ concurrent connections need more than the usual 1024 descriptors: use the hard limit
 * (20,000 on the test machines). */
static void salvo_target_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("could not raise the descriptor limit to %llu", (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
    tgt_config cfg = {.bind = "127.0.0.1"};
    log_level level = LOG_NOTICE;
    salvo_target_options(argc, argv, &cfg, &level);
    log_init(level, LOG_TEXT, "target");
    salvo_target_raise_nofile();
    int rc = tgt_server_run(&cfg);
    return rc == ERR_OK ? 0 : rc == ERR_INVAL ? 2 : 1;
}
