"""End to end, fault-free fleet (issue 5, scenarios 1 and 11): the real producer and workers
against a private RabbitMQ node and the recording target.

1. A 100-job fan-out due at one whole second T (precise mode, lead 2s): every job reaches the
   target exactly once, each arriving in [T, T + 100 ms].
11. Three workers with bounded capacity (--max-inflight 100) and a 900-job burst whose target
   holds each reply 300 ms: every job runs once and each worker runs at least 20% of them."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import (check_delivery, fail, fan_ids, http_job, iso, next_second, stop_ok,  # noqa: E402
                 wait_delivered, worker_started)

FANOUT = 100
ON_TIME_MS = 100     # the promise: every job of the fan-out starts within this of T
BURST = 900
BURST_HOLD_MS = 300  # long enough that a worker's capacity, not its speed, limits what it takes
BURST_INFLIGHT = 100  # per worker: 3 x 100 < 900, so the burst must be shared
MIN_SHARE = 0.20


class S:
    fleet = None


def test_fanout_starts_on_the_second():
    f = S.fleet
    target = f.target()
    workers = [f.worker(), f.worker()]
    # The producer needs ~1 s to start under ASan, and publishes lead = 2 s before T.
    T = next_second(5)
    sched = f.schedule([http_job("s1", target.url("/s1/{{index}}"), {"at": iso(T)},
                                 fan_out={"count": FANOUT}, lead="2s")])
    producer = f.producer(sched)
    ids = fan_ids("s1", T, FANOUT)
    wait_delivered(target, "/s1", ids, timeout=T - time.time() + 20)
    d = check_delivery(target, "/s1", ids, max_dups=0, settle=1.0)
    late = sorted((d.first(k)["t_ns"] - T * 10**9) / 1e6 for k in ids)
    print(f"  arrival vs T: min {late[0]:.1f} ms, median {late[len(late) // 2]:.1f} ms, "
          f"max {late[-1]:.1f} ms")
    if late[0] < 0:
        fail(f"a job reached the target {-late[0]:.1f} ms before its instant")
    if late[-1] > ON_TIME_MS:
        slow = sum(1 for x in late if x > ON_TIME_MS)
        fail(f"{slow} of {FANOUT} jobs arrived more than {ON_TIME_MS} ms after T "
             f"(max {late[-1]:.1f} ms)")
    stop_ok(producer)
    for w in workers:
        stop_ok(w)
    target.stop()


def test_burst_spreads_across_three_workers():
    f = S.fleet
    target = f.target(delay_ms=BURST_HOLD_MS)
    workers = [f.worker(["--max-inflight", BURST_INFLIGHT]) for _ in range(3)]
    T = next_second(3)
    sched = f.schedule([http_job("s11", target.url("/s11/{{index}}"), {"at": iso(T)},
                                 fan_out={"count": BURST})])
    producer = f.producer(sched)
    ids = fan_ids("s11", T, BURST)
    wait_delivered(target, "/s11", ids, timeout=60)
    f.wait_settled(timeout=30)
    check_delivery(target, "/s11", ids, max_dups=0)
    want = set(ids)
    shares = [sum(1 for k, a in worker_started(w) if k in want and a == 1) for w in workers]
    print(f"  jobs run per worker: {shares} ({', '.join(f'{s / BURST:.0%}' for s in shares)})")
    if sum(shares) != BURST:
        fail(f"the workers logged {sum(shares)} starts for {BURST} jobs")
    for w, n in zip(workers, shares):
        if n < MIN_SHARE * BURST:
            fail(f"{w.name} ran {n} of {BURST} jobs ({n / BURST:.0%} < {MIN_SHARE:.0%}): the "
                 f"burst did not spread")
    stop_ok(producer)
    for w in workers:
        stop_ok(w)
    target.stop()


if __name__ == "__main__":
    e2e.main("e2e-fanout", [
        test_fanout_starts_on_the_second,
        test_burst_spreads_across_three_workers,
    ], S)
