/* runopts: the options of `salvo-producer run`, as one config table (flag, SALVO_* variable,
 * default, help), turned into the settings the producer's modules take. */
#ifndef SALVO_RUNOPTS_H
#define SALVO_RUNOPTS_H

#include "publish.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct runopts {
    const char *schedule; /* borrowed from argv/environ */
    const char *state_dir;
    const char *ha_group; /* NULL or "": high availability off */
    int64_t heartbeat_s;  /* the connection's heartbeat: --lease-heartbeat in a group */
    int64_t lease_heartbeat_ms;
    int64_t lease_renew_ms;
    int64_t misfire_grace_ms;
    int64_t fanout_lead_us; /* autolead: per job of a lead-less fan-out; 0 publishes at T */
    int log_level;          /* log_level */
    int log_format;         /* log_format */
    const char *key_file;   /* signing key file; NULL = SALVO_SIGNING_KEYS */
    bool allow_unsigned;    /* start (and publish unsigned) when no key is configured */
    publish_opts pub;       /* broker URLs, TLS files, timeouts, connection name */
    char conn_name[300];    /* "salvo-producer@<host>:<pid>", pointed to by pub.mq.conn_name */
    /* --metrics-addr: NULL = the default port, "off" = none (httpd_serve) */
    const char *metrics_addr;
} runopts;

/* Fill o from defaults, SALVO_* variables and argv (argv[0] is "run"). Returns -1 to go on, or
 * the exit code to return at once: 0 after printing --help, 2 after printing a usage error.
 * Not thread-safe (reads the environment). */
int runopts_parse(runopts *o, int argc, char **argv);

#endif
