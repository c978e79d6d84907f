/* rtprio: SCHED_FIFO around a release burst (rtprio.h says why). */
#include "rtprio.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int rtprio_cur;        /* 0: off */
static _Thread_local bool rtprio_up; /* this thread runs at rtprio_cur */
static atomic_ulong rtprio_raises;   /* times any thread went up */

/* sched_setscheduler(0, ...) acts on the calling thread only (Linux keeps policy per thread). */
static int rtprio_set(int policy, int prio)
{
    struct sched_param p = {.sched_priority = prio};
    return sched_setscheduler(0, policy, &p);
}

bool rtprio_setup(int prio, char *err, size_t cap)
{
    atomic_store(&rtprio_cur, 0);
    if (err && cap)
        err[0] = '\0';
    if (prio <= 0)
        return false;
    if (prio > RTPRIO_MAX)
        prio = RTPRIO_MAX;
    if (rtprio_set(SCHED_FIFO, prio) != 0) {
        if (err && cap)
            snprintf(err, cap,
                     "SCHED_FIFO %d refused: %s (needs CAP_SYS_NICE or RLIMIT_RTPRIO >= %d)", prio,
                     strerror(errno), prio);
        return false;
    }
    rtprio_set(SCHED_OTHER, 0);
    atomic_store(&rtprio_cur, prio);
    return true;
}

int rtprio_level(void)
{
    return atomic_load_explicit(&rtprio_cur, memory_order_relaxed);
}

bool rtprio_raise(void)
{
    if (!rtprio_up) {
        int prio = rtprio_level();
        rtprio_up = prio > 0 && rtprio_set(SCHED_FIFO, prio) == 0;
        if (rtprio_up)
            atomic_fetch_add_explicit(&rtprio_raises, 1, memory_order_relaxed);
    }
    return rtprio_up;
}

unsigned long rtprio_raise_count(void)
{
    return atomic_load_explicit(&rtprio_raises, memory_order_relaxed);
}

void rtprio_lower(void)
{
    if (rtprio_up && rtprio_set(SCHED_OTHER, 0) == 0)
        rtprio_up = false;
}
