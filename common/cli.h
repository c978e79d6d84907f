/* cli: the command-line preamble every salvo binary shares: usage on no command, --help and
 * --version, answered the same way before a binary dispatches its own commands. */
#ifndef SALVO_CLI_H
#define SALVO_CLI_H

#include <stdio.h>

#define CLI_CONTINUE (-1) /* not a preamble argument: the caller dispatches argv[1] */

/* Answer argv[1] when it is no command at all: none given (usage to stderr, exit code 2),
 * --help or -h (usage to stdout, 0), --version ("<prog> <SALVO_VERSION>" on stdout, 0).
 * Returns that exit code, or CLI_CONTINUE for anything else. usage (borrowed) prints the
 * binary's own text to the stream it is given. Call from main only (writes stdio). */
int cli_preamble(int argc, char **argv, const char *prog, void (*usage)(FILE *out));

#endif
