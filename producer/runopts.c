/* runopts: `salvo-producer run` options: one table row per setting, parsed by config.c. */
#include "runopts.h"

#include "config.h"
#include "err.h"
#include "lease.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RUNOPTS_USAGE                                                                              \
    "salvo-producer run [FILE] [options]\n\n"                                                      \
    "Publish every job of the schedule file to RabbitMQ at its instant, confirmed.\n"              \
    "SIGHUP reloads the file (a broken file keeps the running schedule); SIGTERM or SIGINT\n"      \
    "finishes confirming in-flight jobs, saves the state and exits 0."

static const char *const runopts_levels[] = {"err", "warn", "notice", "info", "debug", NULL};
static const char *const runopts_formats[] = {"text", "json", NULL};

/* Durations are bounded where a wrong order of magnitude would break the producer: a
 * heartbeat must stay far below RabbitMQ's 60 s default, a grace of a day would replay
 * yesterday's firings as "late". */
static int runopts_table(runopts *o, int argc, char **argv, int *first, char *err, size_t cap)
{
    mq_opts *m = &o->pub.mq;
    int64_t connect_ms = 0;
    const config_opt t[] = {
        {"schedule", "SALVO_SCHEDULE", CONFIG_STRING, &o->schedule, NULL,
         "schedule file (YAML), when FILE is not given", NULL, 0, 0, 0},
        {"amqp-url", "SALVO_AMQP_URL", CONFIG_STRING, &m->urls,
         "amqp://guest:guest@127.0.0.1:5672/",
         "broker URLs, comma-separated, tried in order (amqp:// or amqps://)", NULL, 0, 0,
         CONFIG_SECRET},
        {"state-dir", "SALVO_STATE_DIR", CONFIG_STRING, &o->state_dir, "./salvo-state",
         "directory of the last-fired state (one producer per directory)", NULL, 0, 0, 0},
        {"ha-group", "SALVO_HA_GROUP", CONFIG_STRING, &o->ha_group, NULL,
         "high availability: producers of one group on one vhost elect one active publisher "
         "(letters, digits, . _ -)",
         NULL, 0, 0, 0},
        {"lease-heartbeat", "SALVO_LEASE_HEARTBEAT", CONFIG_DURATION, &o->lease_heartbeat_ms, "1s",
         "with --ha-group, the AMQP heartbeat instead of --heartbeat: a frozen or cut-off active "
         "producer is replaced 2 to 3 of these later",
         NULL, 1000, 30000, 0},
        {"lease-renew", "SALVO_LEASE_RENEW", CONFIG_DURATION, &o->lease_renew_ms, "60s",
         "with --ha-group, how often the active producer swaps in a fresh lease token; keep it "
         "well under the broker's consumer_timeout (30 min by default)",
         NULL, 1000, 600000, 0},
        {"heartbeat", "SALVO_HEARTBEAT", CONFIG_DURATION, &o->heartbeat_s, "10s",
         "AMQP heartbeat interval", NULL, 1000, 60000, 0},
        {"misfire-grace", "SALVO_MISFIRE_GRACE", CONFIG_DURATION, &o->misfire_grace_ms, "60s",
         "a firing published later than this is a misfire (its policy applies)", NULL, 0, 3600000,
         0},
        {"fanout-lead-us", "SALVO_FANOUT_LEAD_US", CONFIG_INT, &o->fanout_lead_us, "300",
         "an entry without a lead publishes a fan-out this many us per job early, plus 50 ms "
         "for the workers (when the per-job part is 20 ms or more; at most 5 s; workers still "
         "start every job at its instant); 0: publish at the instant",
         NULL, 0, 5000, 0},
        {"confirm-timeout", "SALVO_CONFIRM_TIMEOUT", CONFIG_DURATION, &o->pub.confirm_timeout_ms,
         "15s", "reconnect when the broker confirms nothing for this long (unless blocked)", NULL,
         1000, 600000, 0},
        {"drain-timeout", "SALVO_DRAIN_TIMEOUT", CONFIG_DURATION, &o->pub.drain_timeout_ms, "10s",
         "on SIGTERM, how long to keep confirming in-flight jobs", NULL, 0, 600000, 0},
        {"connect-timeout", "SALVO_CONNECT_TIMEOUT", CONFIG_DURATION, &connect_ms, "5s",
         "TCP connect + TLS + login, per URL", NULL, 100, 120000, 0},
        {"tls-ca", "SALVO_TLS_CA", CONFIG_STRING, &m->tls_ca, NULL,
         "CA file for amqps:// (default: system store)", NULL, 0, 0, 0},
        {"tls-cert", "SALVO_TLS_CERT", CONFIG_STRING, &m->tls_cert, NULL,
         "client certificate (PEM) for amqps://", NULL, 0, 0, 0},
        {"tls-key", "SALVO_TLS_KEY", CONFIG_STRING, &m->tls_key, NULL,
         "client key (PEM) for amqps://", NULL, 0, 0, 0},
        {"signing-key-file", "SALVO_SIGNING_KEY_FILE", CONFIG_STRING, &o->key_file, NULL,
         "file of the keys that sign jobs (salvo-producer keygen); or set SALVO_SIGNING_KEYS", NULL,
         0, 0, 0},
        {"allow-unsigned", "SALVO_ALLOW_UNSIGNED", CONFIG_BOOL, &o->allow_unsigned, "false",
         "start without a signing key and publish unsigned jobs", NULL, 0, 0, 0},
        {"metrics-addr", "SALVO_METRICS_ADDR", CONFIG_STRING, &o->metrics_addr, NULL,
         "serve /metrics and /healthz on HOST:PORT (default 127.0.0.1:9470; off: none)", NULL, 0, 0,
         0},
        {"log-level", "SALVO_LOG_LEVEL", CONFIG_ENUM, &o->log_level, "info", "log level",
         runopts_levels, 0, 0, 0},
        {"log-format", "SALVO_LOG_FORMAT", CONFIG_ENUM, &o->log_format, "text", "log format",
         runopts_formats, 0, 0, 0},
        {NULL, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0},
    };
    int rc = config_parse(t, argc, argv, first, err, cap);
    if (rc == CONFIG_HELP)
        config_usage(stdout, RUNOPTS_USAGE, t);
    m->connect_timeout_ms = (int)connect_ms;
    return rc;
}

/* Settings derived from the parsed table. */
static void runopts_finish(runopts *o)
{
    /* In a group the connection is the lease: its heartbeat bounds the takeover time. */
    if (o->ha_group && *o->ha_group)
        o->heartbeat_s = o->lease_heartbeat_ms;
    o->heartbeat_s /= 1000;
    o->pub.mq.heartbeat_s = (int)o->heartbeat_s;
    o->pub.mq.rpc_timeout_ms = 10000; /* every RPC bounded: a blocked broker cannot hang us */
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(o->conn_name, sizeof o->conn_name, "salvo-producer@%s:%d", host, (int)getpid());
    o->pub.mq.conn_name = o->conn_name;
}

int runopts_parse(runopts *o, int argc, char **argv)
{
    char err[512] = "";
    int first = argc;
    memset(o, 0, sizeof *o);
    /* The broker password may come in a file (a Docker or Kubernetes secret). */
    int rc = config_env_from_file("SALVO_AMQP_URL", err, sizeof err);
    if (rc == ERR_OK)
        rc = runopts_table(o, argc, argv, &first, err, sizeof err);
    if (rc == CONFIG_HELP)
        return 0;
    if (rc == ERR_OK && argc - first > 1) {
        snprintf(err, sizeof err, "expected one FILE, got %d arguments", argc - first);
        rc = ERR_INVAL;
    }
    if (rc == ERR_OK && argc - first == 1)
        o->schedule = argv[first];
    if (rc == ERR_OK && o->ha_group && *o->ha_group && lease_check_group(o->ha_group) != ERR_OK) {
        snprintf(err, sizeof err, "--ha-group: 1 to %d letters, digits, '.', '_' or '-'",
                 LEASE_GROUP_MAX);
        rc = ERR_INVAL;
    }
    if (rc == ERR_OK)
        rc = mq_opts_check(&o->pub.mq, err, sizeof err);
    if (rc == ERR_OK && (!o->schedule || !*o->schedule)) {
        snprintf(err, sizeof err, "no schedule file (give FILE, --schedule or SALVO_SCHEDULE)");
        rc = ERR_INVAL;
    }
    if (rc != ERR_OK) {
        fprintf(stderr, "salvo-producer run: %s\n", rc == ERR_NOMEM ? err_str(rc) : err);
        return 2;
    }
    runopts_finish(o);
    return -1;
}
