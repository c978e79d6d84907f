/* fireplan: decides what fires when. It owns the loaded schedule, each entry's next instant and
 * last confirmed instant, and the heap ordering them. It never reads a clock: every call takes
 * "now", so tests drive it with any time line (restarts, outages, clock steps, reloads).
 *
 * Rules, per entry:
 * - An instant is on time when it is published no later than its due instant plus the misfire
 *   grace; it is then fired even if late (a broker outage, a forward clock step): the lateness
 *   is logged, nothing is lost.
 * - An instant is a misfire when it fell while the producer was not running (before `since`,
 *   e.g. across a restart) or when it is older than the grace. The entry's policy decides:
 *   skip (fire none; the next is the first instant after the misfired ones), once (fire the
 *   latest missed instant once) or all (fire the latest misfire_max missed instants, oldest
 *   first, and log how many older ones were dropped). Never a cliff: the entry goes on.
 * - An instant at or before the last confirmed one never fires again (backward clock step,
 *   restart with an older clock).
 * - Reload: an entry whose name and digest are unchanged keeps its next instant and state;
 *   a new or changed entry starts from the reload instant; a removed one is dropped. */
#ifndef SALVO_FIREPLAN_H
#define SALVO_FIREPLAN_H

#include "fireheap.h"
#include "prodstate.h"
#include "schedfile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FIREPLAN_NEVER INT64_MAX /* next_s of an entry with nothing left to fire */
/* Realtime running ahead of (or behind) monotonic by more than this between two observations
 * is a clock step, not drift: NTP slews at most 0.5 ms/s and observations are seconds apart. */
#define FIREPLAN_STEP_MS 250

typedef struct fireplan_entry {
    const sched_entry *e; /* borrowed from the plan's schedfile */
    int64_t next_s;       /* next instant to fire, or FIREPLAN_NEVER */
    int64_t last_s;       /* last confirmed instant, 0 when it never fired */
    int64_t since_ms;     /* the producer has been responsible for this entry since then */
    int64_t replay_end_s; /* instants before this are misfire replays the policy allowed */
} fireplan_entry;

/* One firing: an entry at one due instant. */
typedef struct fireplan_firing {
    uint32_t entry;
    uint32_t gen; /* the plan's generation: entry indexes change meaning at a reload */
    int64_t due_s;
    bool replay; /* a misfire policy fires it, not the clock */
} fireplan_firing;

/* The next batch: every firing whose publish instant is key_ms (due minus lead). Caller-owned,
 * reused across calls (fireplan_batch_fini frees it). */
typedef struct fireplan_batch {
    int64_t key_ms;
    fireplan_firing *f;
    size_t n, cap;
} fireplan_batch;

typedef struct fireplan {
    schedfile *sf; /* owned */
    fireplan_entry *ents;
    size_t n;
    fireheap heap;
    uint32_t *scratch; /* room for n indexes (fireheap_collect) */
    int64_t grace_ms;
    uint32_t gen;                     /* bumped by every reload */
    int64_t obs_real_ms, obs_mono_ms; /* last clock observation, for step detection */
} fireplan;

/* Take ownership of sf and plan every entry from now_ms: an entry with a state record of the
 * same digest resumes after its last instant (so its misfires are found), others start fresh.
 * st may be NULL. ERR_OK or ERR_NOMEM/ERR_RANGE (sf is freed in every case on failure).
 * Logs a notice per resumed entry whose state is ahead of the clock. Not thread-safe. */
int fireplan_init(fireplan *p, schedfile *sf, const prodstate *st, int64_t now_ms,
                  int64_t grace_ms);
void fireplan_fini(fireplan *p);

/* Replace the schedule with sf (taken, freed on failure) at now_ms under the reload rules
 * above and log what was kept, added, changed and removed. On ERR_NOMEM the old plan is kept. */
int fireplan_reload(fireplan *p, schedfile *sf, int64_t now_ms);

/* Settle the misfires of every entry due by now_ms (logging what each policy did), then fill b
 * with the earliest batch. ERR_OK, ERR_NOTFOUND when nothing will ever fire, ERR_NOMEM. */
int fireplan_next(fireplan *p, int64_t now_ms, fireplan_batch *b);
/* True when, at now_ms, a firing of b has become a misfire (it waited past the grace) or b was
 * planned before a reload: drop b and call fireplan_next again. */
bool fireplan_stale(const fireplan *p, const fireplan_batch *b, int64_t now_ms);
/* Record that firing f was confirmed by the broker: it becomes the entry's last instant and
 * the entry moves to its next one. A firing planned before a reload, or that no longer matches
 * the entry's next instant, is ignored. */
void fireplan_commit(fireplan *p, const fireplan_firing *f);
void fireplan_batch_fini(fireplan_batch *b);

/* Compare realtime and monotonic progress since the previous observation. Returns the step in
 * ms (positive forward, negative backward, 0 when within FIREPLAN_STEP_MS) and logs a warning
 * saying what the plan does about it. */
int64_t fireplan_observe(fireplan *p, int64_t real_ms, int64_t mono_ms);

/* Take over another producer's confirmed instants (a watermark read from the broker when this
 * one becomes active): every entry with a record of the same digest that is later than its own
 * last instant resumes after it, even when that moves its next instant back (the firings in
 * between were not confirmed by anyone: they fire late within the misfire grace, or follow the
 * misfire policy when they fell before this producer started). Entries keep their `since`.
 * Returns how many entries moved. Not thread-safe. */
size_t fireplan_adopt(fireplan *p, const prodstate *st);

/* The records to save: one per entry that has fired (names borrowed from the plan). *out is
 * malloc'd (caller frees). ERR_OK or ERR_NOMEM. */
int fireplan_state(const fireplan *p, prodstate_rec **out, size_t *n);

/* Publish instant (ms) of entry i's next firing, INT64_MAX when none. */
int64_t fireplan_key(const fireplan *p, uint32_t i);

#endif
