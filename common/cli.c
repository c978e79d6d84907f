/* cli: the shared command-line preamble (contract in cli.h). */
#include "cli.h"

#include "config.h"

#include <string.h>

int cli_preamble(int argc, char **argv, const char *prog, void (*usage)(FILE *out))
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", prog, SALVO_VERSION);
        return 0;
    }
    return CLI_CONTINUE;
}
