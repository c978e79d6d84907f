"""Integration: salvo-producer through broker faults, against a private RabbitMQ node.

- The broker application stops across due seconds (stop_app, start_app): the producer
  reconnects and publishes every firing that fell due meanwhile, late, with the lateness in its
  log; none is lost, none is duplicated.
- A memory alarm blocks publishing: the producer holds its batch, keeps the connection alive,
  and finishes when the alarm clears; nothing is lost.
- SIGTERM while blocked: the producer does not hang; it stops after --drain-timeout."""

import datetime
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import Broker, Proc, WorkDir, binary, fail, run, wait_until  # noqa

FIRED = re.compile(r"(?m)^\S+ info\s+producer fired job=(\S+)(?: \(\+\d+ more\))? due=(\S+) "
                   r"jobs=(\d+) confirmed=(\d+) lateness_ms=(-?[\d.]+) .* reconnects=(\d+)")
FAN = 20


class S:
    work = None
    broker = None
    n = 0


def parse_iso(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


def fired(log):
    return [{"job": m.group(1), "due": parse_iso(m.group(2)), "jobs": int(m.group(3)),
             "confirmed": int(m.group(4)), "lateness_ms": float(m.group(5)),
             "reconnects": int(m.group(6))} for m in FIRED.finditer(log)]


def read_log(p):
    with open(p.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def producer(*args):
    S.n += 1
    sched = os.path.join(S.work.path, f"faults-{S.n}.yaml")
    with open(sched, "w") as f:
        f.write(f"jobs:\n  - name: tick\n    every: 2s\n    fan_out: {{count: {FAN}}}\n"
                f"    http: {{url: \"http://127.0.0.1:9/t/{{{{item}}}}\"}}\n")
    argv = [binary("salvo-producer"), "run", sched, "--amqp-url", S.broker.amqp_url,
            "--state-dir", S.work.sub(f"state-{S.n}"), "--heartbeat", "2s", *args]
    p = Proc(argv, os.path.join(S.work.path, f"producer-{S.n}.log"), name=f"producer-{S.n}")
    p.wait_log(r"connected to broker", timeout=30)
    return p


def queue_dues():
    """Take every message out of salvo.jobs; returns {due: [message ids]}."""
    out = {}
    while True:
        got = S.broker.get_messages("salvo.jobs", count=2000, requeue=False)
        if not got:
            return out
        for m in got:
            due = parse_iso(m["properties"]["headers"]["x-salvo-due"])
            out.setdefault(due, []).append(m["properties"]["message_id"])


def check_nothing_lost(log):
    """Every instant from the first firing to the last is in the queue exactly FAN times."""
    dues = sorted(f["due"] for f in fired(log))
    if not dues:
        fail(f"nothing fired:\n{log}")
    got = queue_dues()
    want = list(range(dues[0], dues[-1] + 1, 2))
    if sorted(got) != want:
        fail(f"queue holds instants {sorted(got)}, expected every 2 s {want}")
    for due, ids in got.items():
        if len(ids) != FAN or len(set(ids)) != FAN:
            fail(f"instant {due}: {len(ids)} messages ({len(set(ids))} distinct), expected {FAN}")


def purge():
    S.broker.mgmt_delete("/api/queues/%2F/salvo.jobs/contents", expect=(200, 204, 404))


def test_broker_stop_app_across_due_seconds():
    purge()
    p = producer()
    p.wait_log(r"fired job=tick", timeout=15)
    S.broker.ctl("stop_app")
    p.wait_log(r"broker connection to .* lost", timeout=15)
    time.sleep(5)  # at least two due instants pass with no broker
    S.broker.ctl("start_app")
    p.wait_log(r"fired job=tick .* reconnects=[1-9]", timeout=60)
    n = len(fired(p.log()))
    wait_until("two more firings after the reconnect", lambda: len(fired(p.log())) >= n + 2,
               timeout=20)
    rc = p.stop(signal.SIGTERM, timeout=20)
    log = read_log(p)
    if rc != 0:
        fail(f"producer exited {rc}:\n{log[-2000:]}")
    late = [f for f in fired(log) if f["lateness_ms"] > 1000]
    if len(late) < 2:
        fail(f"the firings due during the outage should be logged late:\n{log[-3000:]}")
    check_nothing_lost(log)


def test_memory_alarm_blocks_then_resumes():
    purge()
    p = producer()
    p.wait_log(r"fired job=tick", timeout=15)
    S.broker.ctl("set_vm_memory_high_watermark", "0.000001")
    try:
        p.wait_log(r"broker blocked publishing", timeout=15)
        time.sleep(3)
        if "fired job=tick" in p.log().split("broker blocked publishing", 1)[1]:
            fail("a batch was confirmed while the broker was blocked")
    finally:
        S.broker.ctl("set_vm_memory_high_watermark", "0.4")
    p.wait_log(r"broker unblocked publishing", timeout=20)
    n = len(fired(p.log()))
    wait_until("two more firings after the alarm", lambda: len(fired(p.log())) >= n + 2,
               timeout=20)
    rc = p.stop(signal.SIGTERM, timeout=20)
    log = read_log(p)
    if rc != 0:
        fail(f"producer exited {rc}:\n{log[-2000:]}")
    if re.search(r"broker connection to .* lost", log):
        fail(f"the connection must survive the alarm (heartbeats serviced):\n{log[-3000:]}")
    check_nothing_lost(log)


def test_sigterm_while_blocked_does_not_hang():
    purge()
    p = producer("--drain-timeout", "2s")
    p.wait_log(r"fired job=tick", timeout=15)
    S.broker.ctl("set_vm_memory_high_watermark", "0.000001")
    try:
        p.wait_log(r"broker blocked publishing", timeout=15)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=15)
        took = time.monotonic() - t0
    finally:
        S.broker.ctl("set_vm_memory_high_watermark", "0.4")
    log = read_log(p)
    if took > 5:
        fail(f"SIGTERM while blocked took {took:.1f}s (drain timeout 2s)")
    if rc != 1 or "not confirmed before the stop" not in log:
        fail(f"a stop with unconfirmed jobs must say so and exit 1, got {rc}:\n{log[-2000:]}")


def main():
    with WorkDir("producer-faults") as work:
        S.work = work
        with Broker(work.path) as broker:
            S.broker = broker
            run([test_broker_stop_app_across_due_seconds,
                 test_memory_alarm_blocks_then_resumes,
                 test_sigterm_while_blocked_does_not_hang])


if __name__ == "__main__":
    main()
