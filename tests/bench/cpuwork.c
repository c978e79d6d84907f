/* cpuwork: the per-job CPU work of two steps, isolated so that valgrind --tool=callgrind can
 * count its instructions on a busy machine where wall-clock figures mean little:
 *   cpuwork decode SCHEDULE [REPEAT]   jobwire_decode of every message of one firing of the
 *                                      schedule's first entry (built as rawrate builds them)
 *   cpuwork start SCHEDULE             precise mode's start: every job of that firing
 *                                      pre-connected and corked, then all started on one
 *                                      httpcall multi (as an executor does 180 ms before T),
 *                                      then released; the URL must point at a listening target
 * Count only the measured phase with
 *   valgrind --tool=callgrind --toggle-collect=cpuwork_phase_decode (or _start) cpuwork ...
 * Prints the job count and the phase's wall time. */
#include "clock.h"
#include "err.h"
#include "httpcall.h"
#include "job.h"
#include "jobwire.h"
#include "rawmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Transfers started between two drives of libcurl, as executor.c's EXECUTOR_SLICE. */
#define CPUWORK_SLICE 64
/* Time for the pre-connections' handshakes before the start phase. */
#define CPUWORK_CONNECT_US 300000

/* Not static, never inlined: callgrind's --toggle-collect names it. */
size_t cpuwork_phase_decode(const rawmsg_set *s, int repeat);
void cpuwork_phase_start(httpcall_multi *m, httpcall **c, size_t n);

__attribute__((noinline)) size_t cpuwork_phase_decode(const rawmsg_set *s, int repeat)
{
    size_t ok = 0;
    char reason[256];
    for (int r = 0; r < repeat; r++) {
        for (size_t i = 0; i < s->n; i++) {
            job j;
            job_init(&j);
            if (jobwire_decode(s->m[i].body, s->m[i].len, &j, reason, sizeof reason) == ERR_OK)
                ok++;
            job_fini(&j);
        }
    }
    return ok;
}

__attribute__((noinline)) void cpuwork_phase_start(httpcall_multi *m, httpcall **c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        httpcall_start(m, c[i]);
        if (i % CPUWORK_SLICE == CPUWORK_SLICE - 1)
            httpcall_multi_perform(m);
    }
    httpcall_multi_perform(m);
}

static int cpuwork_decode(const rawmsg_set *s, int repeat)
{
    int64_t t0 = clock_mono_ns();
    size_t ok = cpuwork_phase_decode(s, repeat);
    int64_t t1 = clock_mono_ns();
    printf("decoded %zu of %zu messages (%zu bytes each on average) in %.1f ms\n", ok,
           s->n * (size_t)repeat, s->n ? s->bytes / s->n : 0, (double)(t1 - t0) / 1e6);
    return ok == s->n * (size_t)repeat ? 0 : 1;
}

/* Decode, build and pre-connect (corked) every job; false on the first failure. */
static bool cpuwork_prepare(const rawmsg_set *s, job *jobs, httpcall **c)
{
    char reason[256];
    for (size_t i = 0; i < s->n; i++) {
        job_init(&jobs[i]);
        if (jobwire_decode(s->m[i].body, s->m[i].len, &jobs[i], reason, sizeof reason) ||
            httpcall_new(&jobs[i], 4096, &c[i], reason, sizeof reason)) {
            fprintf(stderr, "cpuwork: job %zu: %s\n", i, reason);
            return false;
        }
        if (httpcall_preconnect(c[i], jobs[i].http.url, true, 0) != HTTPCALL_HOLD_CORK) {
            fprintf(stderr, "cpuwork: job %zu: not held (numeric http:// URL needed)\n", i);
            return false;
        }
    }
    return true;
}

static int cpuwork_start(const rawmsg_set *s)
{
    httpcall_limits lim = {6000, 6000, 6000 / 2 + 16}; /* as pool.c for --max-inflight 6000 */
    httpcall_multi *m = NULL;
    job *jobs = calloc(s->n, sizeof *jobs);
    httpcall **c = calloc(s->n, sizeof *c);
    int rc = 1;
    if (!jobs || !c || httpcall_multi_new(&lim, &m) != ERR_OK || !cpuwork_prepare(s, jobs, c))
        goto fail;
    usleep(CPUWORK_CONNECT_US);
    int64_t t0 = clock_mono_ns();
    cpuwork_phase_start(m, c, s->n);
    int64_t t1 = clock_mono_ns();
    for (size_t i = 0; i < s->n; i++)
        httpcall_release(c[i]);
    int64_t t2 = clock_mono_ns();
    printf("started %zu held transfers in %.1f ms (%.1f us each); released them in %.1f ms\n", s->n,
           (double)(t1 - t0) / 1e6, (double)(t1 - t0) / 1e3 / (double)s->n,
           (double)(t2 - t1) / 1e6);
    rc = 0;
fail:
    for (size_t i = 0; c && jobs && i < s->n; i++) {
        httpcall_free(c[i]);
        job_fini(&jobs[i]);
    }
    httpcall_multi_free(m);
    free(c);
    free(jobs);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "decode") != 0 && strcmp(argv[1], "start") != 0)) {
        fputs("usage: cpuwork decode SCHEDULE [REPEAT] | cpuwork start SCHEDULE\n", stderr);
        return 2;
    }
    rawmsg_set s;
    memset(&s, 0, sizeof s);
    char err[256];
    if (rawmsg_build(argv[2], NULL, 0, &s, err, sizeof err) != ERR_OK) {
        fprintf(stderr, "cpuwork: %s\n", err);
        return 2;
    }
    int rc;
    if (strcmp(argv[1], "decode") == 0) {
        rc = cpuwork_decode(&s, argc > 3 ? atoi(argv[3]) : 1);
    } else {
        httpcall_global_init();
        httpcall_thread_init();
        rc = cpuwork_start(&s);
        httpcall_thread_fini();
        httpcall_global_fini();
    }
    rawmsg_fini(&s);
    return rc;
}
