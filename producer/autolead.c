/* autolead: the automatic lead of large at-second fan-outs, set on freshly loaded entries. */
#include "autolead.h"

#include "log.h"

int64_t autolead_ms(uint32_t count, int64_t per_job_us)
{
    if (per_job_us <= 0)
        return 0;
    int64_t ms = (int64_t)count * per_job_us / 1000;
    if (ms < AUTOLEAD_MIN_MS)
        return 0;
    ms += AUTOLEAD_ADMIT_MS;
    return ms > SCHED_LEAD_MAX_MS ? SCHED_LEAD_MAX_MS : ms;
}

void autolead_apply(schedfile *sf, int64_t per_job_us)
{
    for (size_t i = 0; i < sf->n; i++) {
        sched_entry *e = &sf->entries[i];
        int64_t ms = e->lead_ms == 0 ? autolead_ms(e->fan_count, per_job_us) : 0;
        if (ms == 0)
            continue;
        e->lead_ms = ms;
        log_info("job %s: fan-out of %u published %lld ms before each instant (automatic lead; "
                 "workers hold every job until its instant)",
                 e->name, e->fan_count, (long long)ms);
    }
}
