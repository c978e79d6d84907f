/* run: the `salvo-producer run` command, the scheduler's main loop. */
#ifndef SALVO_RUN_H
#define SALVO_RUN_H

/* Run the producer until SIGTERM/SIGINT: load and validate the schedule, connect, declare the
 * topology, then publish every job at its instant, confirmed. argv[0] is "run"; options come
 * from flags and SALVO_* variables (--help lists them). Returns the process exit code: 0 after
 * a clean stop, 1 on a runtime failure (in-flight jobs left unconfirmed at stop, out of
 * memory), 2 on a usage or configuration error (bad option, broken schedule file, state
 * directory unusable or in use). Blocks SIGHUP/SIGTERM/SIGINT in the calling thread; call from
 * main before any other thread starts. */
int producer_run(int argc, char **argv);

#endif
