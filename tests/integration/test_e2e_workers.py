"""End to end, worker faults (issue 5, scenarios 2, 3 and 6): the real producer fires a burst at
three real workers, and one of them is killed, stopped or frozen while its jobs are in flight
(the target holds every reply 1 s so they are).

2. kill -9 mid-burst: every job completes; the jobs the killed worker had started run again on
   the others, with the same Idempotency-Key (those are the only duplicates).
3. SIGTERM mid-burst: the worker drains its jobs in flight, acks them and exits 0; nothing is
   lost and nothing runs twice.
6. SIGSTOP past two heartbeats (--heartbeat 2), then SIGCONT: the broker drops the frozen
   connection, its unacked jobs are redelivered to the other workers, and the thawed worker
   reconnects (generation 2), never acks a stale delivery tag, and runs jobs again."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import (assert_clean, check_delivery, fail, fan_ids, http_job, iso, log_text,  # noqa: E402
                 next_second, stop_ok, wait_delivered, wait_until, worker_finished,
                 worker_started)

HOLD_MS = 1000  # every reply: jobs stay in flight long enough to be hit by the fault
HEARTBEAT_S = 2
FROZEN_S = 8    # > 2 heartbeats of 2 s: the broker gives up on the frozen connection


class S:
    fleet = None


def burst(name, target, count, ahead=3):
    """Start a producer firing `count` jobs of schedule `name` at the next second `ahead` s
    away; returns (producer, T, ids)."""
    T = next_second(ahead)
    sched = S.fleet.schedule([http_job(name, target.url(f"/{name}/{{{{index}}}}"),
                                       {"at": iso(T)}, fan_out={"count": count})])
    return S.fleet.producer(sched), T, fan_ids(name, T, count)


def started_by(w, ids):
    want = set(ids)
    return {k for k, _ in worker_started(w) if k in want}


def wait_started(w, ids, n, timeout=20):
    return wait_until(f"{w.name} running {n} jobs", lambda: len(started_by(w, ids)) >= n,
                      timeout=timeout, interval=0.05)


def test_kill_9_mid_burst_loses_nothing():
    f = S.fleet
    target = f.target(delay_ms=HOLD_MS)
    victim, *others = [f.worker() for _ in range(3)]
    producer, T, ids = burst("s2", target, 500)
    wait_started(victim, ids, 50, timeout=T - time.time() + 20)
    victim.stop(signal.SIGKILL)
    ran = started_by(victim, ids)
    print(f"  killed {victim.name} with {len(ran)} jobs started")
    wait_delivered(target, "/s2", ids, timeout=30)
    f.wait_settled(timeout=60)
    d = check_delivery(target, "/s2", ids)
    if not d.dups:
        fail("no job ran twice: the kill did not hit jobs in flight, the test proved nothing")
    if not set(d.dups) <= ran:
        fail(f"jobs ran twice that the killed worker never started: "
             f"{sorted(set(d.dups) - ran)[:5]}")
    rerun = set().union(*(started_by(w, ids) for w in others))
    missing = sorted(ran - rerun)
    if missing:
        fail(f"{len(missing)} jobs started by the killed worker were not redelivered to the "
             f"others, e.g. {missing[:5]}")
    stop_ok(producer)
    for w in others:
        stop_ok(w)
    assert_clean(*others, producer, broker=f.broker)
    target.stop()


def test_sigterm_mid_burst_drains():
    f = S.fleet
    target = f.target(delay_ms=HOLD_MS)
    victim, *others = [f.worker() for _ in range(3)]
    producer, T, ids = burst("s3", target, 300)
    wait_started(victim, ids, 30, timeout=T - time.time() + 20)
    took = stop_ok(victim, timeout=20)
    ran = started_by(victim, ids)
    log = log_text(victim)
    m = re.search(r"stopped: received (\d+), acked (\d+),", log)
    print(f"  {victim.name} drained {len(ran)} jobs in {took:.1f}s: {m and m.group(0)}")
    if not m or int(m.group(2)) < len(ran):
        fail(f"{victim.name} acked fewer jobs than it ran ({len(ran)}):\n{log[-1500:]}")
    if took < HOLD_MS / 1000 * 0.5:
        fail(f"{victim.name} exited after {took:.2f}s: it cannot have waited for its jobs")
    wait_delivered(target, "/s3", ids, timeout=60)
    f.wait_settled(timeout=60)
    check_delivery(target, "/s3", ids, max_dups=0, settle=1.0)
    stop_ok(producer)
    for w in others:
        stop_ok(w)
    assert_clean(victim, *others, producer, broker=f.broker)
    target.stop()


def test_sigstop_past_heartbeats_redelivers_and_recovers():
    f = S.fleet
    target = f.target(delay_ms=HOLD_MS)
    frozen = f.worker(["--heartbeat", HEARTBEAT_S, "--max-inflight", 200])
    others = [f.worker(["--max-inflight", 200]) for _ in range(2)]
    producer, T, ids = burst("s6", target, 300)
    wait_started(frozen, ids, 30, timeout=T - time.time() + 20)
    frozen.send_signal(signal.SIGSTOP)
    stuck = started_by(frozen, ids) - {x["id"] for x in worker_finished(frozen)}
    print(f"  froze {frozen.name} with {len(stuck)} jobs in flight for {FROZEN_S}s")
    if not stuck:
        fail(f"{frozen.name} had no job in flight when frozen: the test proved nothing")
    time.sleep(FROZEN_S)
    rerun = set().union(*(started_by(w, ids) for w in others))
    frozen.send_signal(signal.SIGCONT)
    if not stuck <= rerun:
        fail(f"{len(stuck - rerun)} jobs of the frozen worker were not redelivered to the others "
             f"within {FROZEN_S}s, e.g. {sorted(stuck - rerun)[:5]}")
    frozen.wait_log(r"consuming salvo\.jobs .*generation 2", timeout=30)
    wait_delivered(target, "/s6", ids, timeout=60)
    # Carries on: a second burst after the reconnect reaches the thawed worker too.
    producer2, T2, ids2 = burst("s6b", target, 90)
    wait_delivered(target, "/s6b", ids2, timeout=T2 - time.time() + 30)
    f.wait_settled(timeout=60)
    d = check_delivery(target, "/s6", ids)
    if not set(d.dups) <= started_by(frozen, ids):
        fail(f"jobs ran twice that the frozen worker never started: "
             f"{sorted(set(d.dups) - started_by(frozen, ids))[:5]}")
    check_delivery(target, "/s6b", ids2, max_dups=0)
    after = started_by(frozen, ids2)
    print(f"  after the reconnect {frozen.name} ran {len(after)} of {len(ids2)} new jobs")
    if not after:
        fail(f"{frozen.name} reconnected but ran none of the {len(ids2)} later jobs")
    for p in (producer, producer2, frozen, *others):
        stop_ok(p)
    assert_clean(frozen, *others, producer, producer2, broker=f.broker)
    target.stop()


if __name__ == "__main__":
    e2e.main("e2e-workers", [
        test_kill_9_mid_burst_loses_nothing,
        test_sigterm_mid_burst_drains,
        test_sigstop_past_heartbeats_redelivers_and_recovers,
    ], S)
