/* autolead: at-second mode's automatic lead for large fan-outs. A quorum queue hands out a
 * message only once it is committed, at a few tens of thousands of job messages a second on a
 * small machine, so a fan-out of thousands published at its second reaches the workers hundreds
 * of ms late whatever the producer and workers do. An entry without a lead whose fan-out is
 * large is therefore published early by per_job_us for each job (at most SCHED_LEAD_MAX_MS),
 * exactly like precise mode: every message still carries its due second, and workers hold each
 * job until that instant, so nothing starts before it. */
#ifndef SALVO_AUTOLEAD_H
#define SALVO_AUTOLEAD_H

#include "schedfile.h"

#include <stdint.h>

/* Below this the lead is not worth it: the broker absorbs such a batch within a few ms. */
#define AUTOLEAD_MIN_MS 20
/* Added to a lead that is worth it: the per-job term covers the broker's burst, this the
 * workers' admission after it. A job delivered under 20 ms before its instant is not
 * pre-connected (the worker's RUN_PRECONNECT_MIN_MS) and starts only at the instant: with
 * 30 ms for 100 jobs most were (p99 4.3-16.6 ms in a run of three); with 80 ms, 1.4-3.3 ms. */
#define AUTOLEAD_ADMIT_MS 50

/* The lead an entry without one gets for a fan-out of count jobs: count * per_job_us plus
 * AUTOLEAD_ADMIT_MS, capped at SCHED_LEAD_MAX_MS, or 0 when count * per_job_us is under
 * AUTOLEAD_MIN_MS or per_job_us is 0. Pure. */
int64_t autolead_ms(uint32_t count, int64_t per_job_us);

/* Give every entry of sf whose lead is 0 its automatic lead (logged once per entry that gets
 * one). Entries with a lead of their own keep it. Call right after loading, before the plan
 * sees the file: the entries' digests (reload identity) are not changed. Not thread-safe. */
void autolead_apply(schedfile *sf, int64_t per_job_us);

#endif
