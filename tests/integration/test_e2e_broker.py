"""End to end, broker faults (issue 5, scenarios 4, 5, 10 and 13): the real producer and workers
while the private RabbitMQ node is stopped, closes connections, raises a memory alarm or
enforces a short consumer_timeout.

4. stop_app / start_app across due seconds: the producer reconnects and publishes the firings
   that fell due in the outage late, with their lateness in its log; the workers reconnect and
   run them; every second fired, nothing lost.
5. The management API force-closes a worker's connection mid-burst: it reconnects, all jobs are
   done, and no stale ack shows (no 406 PRECONDITION_FAILED / unknown delivery tag).
10. Memory alarm: the producer logs blocked, holds its publishes, resumes when the alarm clears
   with every firing of the blocked seconds delivered; blocked again, a SIGTERM still stops it
   within its drain timeout.
13. A job that outlives its timeout (target holds 20 s, timeout 2 s) is killed at the timeout
   and retried (attempt 2 reaches the target); with consumer_timeout at 5 s the workers'
   channels survive. A control first shows the broker does close a channel that holds a job
   past 5 s, so the check can fail."""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import (assert_clean, assert_every_second, broker_log, broker_log_size,  # noqa: E402
                 check_delivery, fail, fan_ids, fid, fired_seconds, http_job, iso, log_text,
                 log_times, next_second, producer_fired, sleep_to_fraction, sleep_until,
                 stop_ok, wait_delivered, wait_fired, wait_until, worker_finished,
                 worker_started)

FAN = 3           # jobs per firing of the every-second schedules
OUTAGE_S = 1      # broker application stopped this long (stop_app and start_app add ~4 s)
BLOCK_S = 4       # memory alarm held this long
DRAIN_S = 2       # producer --drain-timeout in the alarm scenario
STOP_BOUND_S = DRAIN_S + 3  # SIGTERM while blocked: the drain, then no polite close (the
                            # blocked broker would never answer it; mq_free skips it)
CONSUMER_TIMEOUT_MS = 5000  # far below the 30 min default, so a held delivery shows in seconds
TICK_MS = 1000    # channel_tick_interval: how often the broker checks consumer_timeout
JOB_TIMEOUT_S = 2
HOLD_MS = 15000   # the target's hold in scenario 13: longer than consumer_timeout
TIMED_OUT = "timed out waiting for delivery acknowledgement"


class S:
    fleet = None


def every_second(name, target):
    sched = S.fleet.schedule([http_job(name, target.url(f"/{name}/{{{{index}}}}"),
                                       {"every": "1s"}, fan_out={"count": FAN})])
    return sched


def ids_of(name, dues):
    return [k for d in dues for k in fan_ids(name, d, FAN)]


def test_broker_restart_across_due_seconds():
    f = S.fleet
    target = f.target()
    workers = [f.worker(), f.worker()]
    mark = broker_log_size(f.broker)
    producer = f.producer(every_second("s4", target))
    wait_fired(producer, lambda b: len(b) >= 2, "two firings before the outage")
    sleep_to_fraction(0.3)
    f.broker.ctl("stop_app")
    t_stopped = time.time()
    sleep_until(t_stopped + OUTAGE_S)
    f.broker.ctl("start_app")
    for w in workers:
        w.wait_log(r"consuming salvo\.jobs .*generation 2", timeout=60)
    up = wait_until("the producer reconnecting",
                    lambda: log_times(producer, r"connected to broker")[1:], timeout=60)[0]
    down = log_times(producer, r"broker connection to .* lost")[0]
    print(f"  the producer lost the broker at :{down % 60:06.3f}, reconnected at "
          f":{up % 60:06.3f}")
    wait_fired(producer, lambda b: b[-1]["due_s"] >= up + 2, "firings after the outage",
               timeout=30)
    sleep_to_fraction(0.5)
    stop_ok(producer)
    fired = producer_fired(producer)
    dues = fired_seconds(fired, "s4")
    assert_every_second(dues, "s4")
    outage = [b for b in fired if down < b["due_s"] < up]
    if not outage:
        fail("no firing fell due while the producer was disconnected: the test proved nothing")
    late = [b["lateness_ms"] for b in outage]
    print(f"  {len(outage)} firings due in the outage published {min(late):.0f}-"
          f"{max(late):.0f} ms late")
    for b in outage:
        if b["lateness_ms"] < (up - b["due_s"]) * 1000:
            fail(f"firing {iso(b['due_s'])} logged lateness {b['lateness_ms']} ms, but it "
                 f"could only be published {up - b['due_s']:.3f}s after it was due")
    ids = ids_of("s4", dues)
    wait_delivered(target, "/s4", ids, timeout=60)
    f.wait_settled(timeout=60)
    check_delivery(target, "/s4", ids)
    for w in workers:
        stop_ok(w)
    assert_clean(producer, *workers, broker=f.broker, broker_since=mark)
    target.stop()


def test_forced_close_no_stale_ack():
    f = S.fleet
    target = f.target(delay_ms=1000)
    victim, other = f.worker(), f.worker()
    conn = wait_until("the worker's connection in the management API",
                      lambda: f.connection_of(victim), timeout=30, interval=0.5)
    mark = broker_log_size(f.broker)
    T = next_second(3)
    sched = f.schedule([http_job("s5", target.url("/s5/{{index}}"), {"at": iso(T)},
                                 fan_out={"count": 200})])
    producer = f.producer(sched)
    ids = fan_ids("s5", T, 200)
    want = set(ids)
    wait_until(f"{victim.name} running jobs",
               lambda: sum(1 for k, _ in worker_started(victim) if k in want) >= 20,
               timeout=T - time.time() + 20, interval=0.05)
    f.broker.close_connection(conn, reason="e2e: force close")
    victim.wait_log(r"consuming salvo\.jobs .*generation 2", timeout=30)
    wait_delivered(target, "/s5", ids, timeout=60)
    f.wait_settled(timeout=60)
    check_delivery(target, "/s5", ids)
    stale = len(re.findall(r"delivered on an older connection", log_text(victim)))
    print(f"  {victim.name} reconnected; {stale} outcomes of the closed connection not acked")
    if stale == 0:
        fail("no job of the closed connection finished afterwards: no stale ack was risked, "
             "the test proved nothing")
    for p in (producer, victim, other):
        stop_ok(p)
    assert_clean(victim, other, producer, broker=f.broker, broker_since=mark)
    target.stop()


def test_memory_alarm_blocks_and_resumes():
    try:
        memory_alarm_scenario()
    finally:
        alarm(False)  # a failure must not leave the next scenario blocked


def memory_alarm_scenario():
    f = S.fleet
    target = f.target()
    workers = [f.worker(), f.worker()]
    mark = broker_log_size(f.broker)
    producer = f.producer(every_second("s10", target), extra=["--drain-timeout", f"{DRAIN_S}s"])
    wait_fired(producer, lambda b: len(b) >= 2, "two firings before the alarm")
    sleep_to_fraction(0.3)
    t_block = time.time()
    alarm(True)
    producer.wait_log(r"broker blocked publishing", timeout=15)
    sleep_until(t_block + BLOCK_S)
    t_free = time.time()
    alarm(False)
    producer.wait_log(r"broker unblocked publishing", timeout=15)
    fired = wait_fired(producer, lambda b: b[-1]["due_s"] >= t_free + 2,
                       "firings after the alarm", timeout=30)
    dues = fired_seconds(fired, "s10")
    assert_every_second(dues, "s10")
    held = [b for b in fired if t_block < b["due_s"] < t_free]
    if not held:
        fail("no firing fell due during the alarm: the test proved nothing")
    print(f"  {len(held)} firings due while blocked published "
          f"{min(b['lateness_ms'] for b in held):.0f}-{max(b['lateness_ms'] for b in held):.0f}"
          f" ms late")
    ids = ids_of("s10", dues)
    wait_delivered(target, "/s10", ids, timeout=60)
    # Blocked again, the producer must still answer SIGTERM within its drain timeout, though
    # the blocked broker reads nothing more from it.
    sleep_to_fraction(0.3)
    alarm(True)
    wait_until("the second block", lambda: log_text(producer).count("broker blocked publishing")
               >= 2, timeout=15)
    time.sleep(1.5)  # a firing falls due while blocked
    t0 = time.monotonic()
    producer.send_signal(signal.SIGTERM)
    rc = producer.wait(timeout=STOP_BOUND_S)
    took = time.monotonic() - t0
    alarm(False)
    print(f"  blocked producer stopped by SIGTERM in {took:.1f}s, exit {rc}")
    if rc not in (0, 1):
        fail(f"the blocked producer exited {rc} on SIGTERM:\n{log_text(producer)[-1500:]}")
    if "not confirmed before the stop: not recorded as fired" not in log_text(producer):
        fail("the producer did not say which firings it could not confirm")
    # Every firing the producer confirmed, up to its stop, ran; the one it could not confirm
    # while blocked may or may not have reached the queue.
    fired = producer_fired(producer)
    dues = fired_seconds([b for b in fired if b["confirmed"] == b["jobs"]], "s10")
    assert_every_second(dues, "s10")
    unsure = [b["due_s"] for b in fired if b["confirmed"] < b["jobs"]]
    ids = ids_of("s10", dues)
    wait_delivered(target, "/s10", ids, timeout=30, allowed=ids_of("s10", unsure))
    f.wait_settled(timeout=60)
    check_delivery(target, "/s10", ids, allowed=ids_of("s10", unsure))
    for w in workers:
        stop_ok(w)
    assert_clean(producer, *workers, broker=f.broker, broker_since=mark)
    target.stop()


def alarm(on):
    """Raise (a watermark no node can stay under) or clear the broker's memory alarm."""
    S.fleet.broker.ctl("set_vm_memory_high_watermark", "0.000001" if on else "0.4")


def dead_letter(job_id, timeout=30.0):
    def find():
        for m in S.fleet.queue_messages("salvo.dead"):
            if (m["properties"].get("headers") or {}).get("x-salvo-job") == job_id:
                return m
        return None
    return wait_until(f"a dead letter for {job_id}", find, timeout=timeout, interval=0.5)


def hold_job(name, target, timeout_s, retries):
    T = next_second(2)
    sched = S.fleet.schedule([http_job(name, target.url(f"/{name}/{{{{index}}}}"),
                                       {"at": iso(T)}, retries=retries,
                                       http_timeout=f"{timeout_s}s")])
    return S.fleet.producer(sched), T, fid(name, T)


def consumer_timeout_control(target):
    """A worker whose job holds its delivery past consumer_timeout loses its channel."""
    f = S.fleet
    mark = broker_log_size(f.broker)
    w = f.worker(["--threads", 1])
    producer, T, key = hold_job("s13control", target, 60, 0)
    wait_until("the broker closing the channel that held a job past consumer_timeout",
               lambda: TIMED_OUT in broker_log(f.broker)[mark:], timeout=40, interval=0.5)
    w.stop(signal.SIGKILL)
    stop_ok(producer)
    f.broker.wait_queue("salvo.jobs", lambda i: i and i.get("messages_unacknowledged", 1) == 0)
    f.purge("salvo.jobs")
    f.wait_settled(timeout=30)
    print(f"  control: a job held {HOLD_MS / 1000:.0f}s lost its channel to consumer_timeout")


def test_job_timeout_keeps_clear_of_consumer_timeout():
    f = S.fleet
    f.broker.ctl("eval", f"application:set_env(rabbit, consumer_timeout, {CONSUMER_TIMEOUT_MS}),"
                 f" application:set_env(rabbit, channel_tick_interval, {TICK_MS}).")
    target = f.target(delay_ms=HOLD_MS)
    consumer_timeout_control(target)
    mark = broker_log_size(f.broker)
    workers = [f.worker(), f.worker()]
    conns = [wait_until("worker connections", lambda w=w: f.connection_of(w), timeout=30)
             for w in workers]
    producer, T, key = hold_job("s13", target, JOB_TIMEOUT_S, 1)
    m = dead_letter(key, timeout=T - time.time() + 30)
    h = m["properties"]["headers"]
    if h.get("x-salvo-reason") != "attempts-exhausted" or h.get("x-salvo-attempt") != 2:
        fail(f"dead letter headers {h}, wanted attempts-exhausted after attempt 2")
    d = check_delivery(target, "/s13", [key])
    attempts = [r["attempt"] for r in d.by_key[key]]
    if attempts != [1, 2]:
        fail(f"the target saw attempts {attempts}, wanted [1, 2]")
    runs = sorted((x for w in workers for x in worker_finished(w) if x["id"] == key),
                  key=lambda x: x["attempt"])
    if [(x["attempt"], x["outcome"]) for x in runs] != [(1, "retry"), (2, "dead")]:
        fail(f"the workers logged {runs} for {key}, wanted attempt 1 retried, 2 dead")
    print("  attempts: " + ", ".join(f"{x['attempt']} {x['outcome']} after "
                                     f"{x['duration_ms']} ms" for x in runs))
    for x in runs:
        if not JOB_TIMEOUT_S * 1000 - 100 <= x["duration_ms"] <= JOB_TIMEOUT_S * 1000 + 1500:
            fail(f"attempt {x['attempt']} ended after {x['duration_ms']} ms, not at the "
                 f"{JOB_TIMEOUT_S}s timeout")
    # Past consumer_timeout (and two ticks) from the first delivery, the channels still stand.
    sleep_until(T + (CONSUMER_TIMEOUT_MS + 2 * TICK_MS) / 1000 + 1)
    if TIMED_OUT in broker_log(f.broker)[mark:]:
        fail("the broker closed a worker channel for consumer_timeout")
    now = [f.connection_of(w) for w in workers]
    if now != conns:
        fail(f"worker connections changed from {conns} to {now}")
    for w in workers:
        if re.search(r"generation 2", log_text(w)):
            fail(f"{w.name} reconnected")
    for p in (producer, *workers):
        stop_ok(p)
    assert_clean(producer, *workers, broker=f.broker, broker_since=mark)
    target.stop()


if __name__ == "__main__":
    e2e.main("e2e-broker", [
        test_broker_restart_across_due_seconds,
        test_forced_close_no_stale_ack,
        test_memory_alarm_blocks_and_resumes,
        test_job_timeout_keeps_clear_of_consumer_timeout,
    ], S)
