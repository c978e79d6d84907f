/* salvo-topology-dump: prints the exchanges, queues and bindings the binaries declare (common/
 * topology.c) as RabbitMQ definitions JSON, so gen-definitions and the definitions test compare
 * deploy/rabbitmq/definitions.json against the code instead of against a copy of it. */
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Usage: salvo-topology-dump [VHOST]   (default vhost "salvo"). Exit 0, 1 on out of memory,
 * 2 on a usage error. */
int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (argv[1][0] == '\0' || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: salvo-topology-dump [VHOST]\n");
        return 2;
    }
    char *json = topology_definitions_json(argc == 2 ? argv[1] : "salvo");
    if (!json) {
        fprintf(stderr, "salvo-topology-dump: out of memory\n");
        return 1;
    }
    int rc = puts(json) == EOF ? 1 : 0;
    free(json);
    return rc;
}
