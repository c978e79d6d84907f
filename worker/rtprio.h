/* rtprio: real-time priority for the moments a held burst goes out.
 *
 * At a due second an executor releases every request it held (uncork after uncork, hundreds in
 * a row). At normal priority the threads those sends wake (on loopback the target's; on any host
 * other processes') preempt the sender between two sends, and the last request leaves as late
 * as if the sender did their work too: on the 2-core bench machine, 1,000 requests written by a
 * bare client from 2 threads arrived within 11-16 ms at normal priority, 6-8 ms at SCHED_FIFO.
 * So the executor sleeps raised when its next wake-up is the instant, and the release walk runs
 * raised; everything else runs at normal priority. The walk is bounded by the held requests (at
 * most --max-inflight uncorks) and does nothing that blocks; the kernel's RT throttling
 * (sched_rt_runtime_us, 95 % by default) leaves the rest of each second to other tasks anyway.
 *
 * Setting SCHED_FIFO needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least the priority (systemd
 * LimitRTPRIO= with RestrictRealtime=no, docker --ulimit rtprio=N). Without it the worker says
 * so once and releases at normal priority. */
#ifndef SALVO_RTPRIO_H
#define SALVO_RTPRIO_H

#include <stdbool.h>
#include <stddef.h>

#define RTPRIO_MAX 99 /* SCHED_FIFO's highest on Linux */

/* Choose the release priority (1..RTPRIO_MAX, 0 = off) for every thread, before any thread
 * starts. Tries it on the calling thread and goes back to normal priority: returns true when it
 * took (then rtprio_raise raises), false when it is off or not permitted (then rtprio_raise does
 * nothing; err says why, for a log line, when it was refused). Not thread-safe. */
bool rtprio_setup(int prio, char *err, size_t cap);
/* The priority rtprio_setup chose (0 when off). Thread-safe after setup. */
int rtprio_level(void);
/* Raise the calling thread to the release priority unless it already is; returns whether it is
 * raised now. Thread-safe (the state is the calling thread's). */
bool rtprio_raise(void);
/* Back to normal priority (SCHED_OTHER, the thread's nice value untouched) if raised. */
void rtprio_lower(void);
/* How many times any thread was raised since the process started: tests check with it that only
 * held work raises. Thread-safe. */
unsigned long rtprio_raise_count(void);

#endif
