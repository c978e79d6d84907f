/* easycache: the libcurl easy handles one thread keeps for its next transfers, as many as it
 * has recently had in use at once.
 *
 * curl_easy_init and curl_easy_cleanup took 4 % of a worker's CPU in a 100,000-job throughput
 * run (perf, DWARF stacks), because a fixed cache of 128 handles per thread was far too small
 * for a fan-out with thousands in flight. This one keeps every handle returned to it, so a
 * thread reuses as many as it ran at its peak, and gives back, once per period, the handles that
 * stayed unused for that whole period, down to a floor: after a burst the handles are freed
 * within two periods; under steady load no handle is allocated per job. Keeping handles costs
 * no peak memory: each was in use at the peak.
 *
 * Not thread-safe: one per thread. */
#ifndef SALVO_EASYCACHE_H
#define SALVO_EASYCACHE_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* Handles never given back however long they stay unused (a few MB at most). */
#define EASYCACHE_FLOOR 128
/* How long a handle must stay unused before it is freed. */
#define EASYCACHE_PERIOD_NS (10 * 1000000000LL)

typedef struct easycache {
    CURL **v; /* v[0 .. n): kept handles, reset, the most recently returned last */
    size_t n, cap;
    size_t low;            /* the fewest kept at any moment since the period began */
    int64_t period_end_ns; /* monotonic; 0 until the first trim starts a period */
    uint64_t made, reused, freed;
} easycache;

/* An empty cache; nothing is allocated until a handle is returned. */
void easycache_init(easycache *c);
/* Free every kept handle and the table. Safe on a zeroed or finished cache. */
void easycache_fini(easycache *c);
/* A handle ready to be set up: a kept one, or a new one (NULL only if libcurl is out of
 * memory). The caller owns it until it gives it back with easycache_put. */
CURL *easycache_get(easycache *c);
/* Give e back (NULL is ignored): reset and kept, or freed if the table cannot grow. */
void easycache_put(easycache *c, CURL *e);
/* Once a period has passed (now_ns: monotonic), free the handles above EASYCACHE_FLOOR that
 * no caller took during it, and start the next period. Returns the number freed. */
size_t easycache_trim(easycache *c, int64_t now_ns);
/* Handles kept. */
size_t easycache_count(const easycache *c);

#endif
