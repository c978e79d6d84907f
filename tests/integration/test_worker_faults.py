"""Integration: salvo-worker under stops and broker faults, against a private RabbitMQ node.

SIGTERM drains jobs in flight (each runs once and is acked, exit 0); a grace shorter than the
jobs leaves them unacked for another worker, which runs them again with the same Idempotency-Key;
a connection force-closed by the management API while jobs run: the worker reconnects, never
acks an old delivery tag (no 406), and the redelivered copies are acked without calling the
target a second time."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import Broker, Proc, Target, WorkDir, binary, fail, run, wait_until  # noqa

DELAYS = "/d2=2000;/d3=3000;/d6=6000"


class S:
    work = None
    broker = None
    target = None
    n = 0


def publish(path, schedule, count):
    argv = [binary("salvo-testpub"), "--amqp-url", S.broker.amqp_url, "--count", str(count),
            "--url", S.target.url(path), "--schedule", schedule]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"salvo-testpub failed ({r.returncode}): {r.stderr}")
    return r.stdout.split()


def start_worker(*extra):
    S.n += 1
    w = Proc([binary("salvo-worker"), "run", "--amqp-url", S.broker.amqp_url, "--threads", "2",
              *extra], os.path.join(S.work.path, f"worker-{S.n}.log"), name=f"worker-{S.n}")
    w.wait_log(r"consuming salvo\.jobs", timeout=30)
    return w


def log_of(w):
    with open(w.log_path, errors="replace") as f:
        return f.read()


def by_key(ids):
    """{firing id: [records]} at the target for these ids."""
    out = {i: [] for i in ids}
    for r in S.target.records():
        if r.get("idem") in out:
            out[r["idem"]].append(r)
    return out


def wait_arrivals(ids, per_id=1, timeout=30):
    wait_until(f"{len(ids)} jobs at the target",
               lambda: all(len(v) >= per_id for v in by_key(ids).values()), timeout=timeout)


def settled(timeout=30):
    S.broker.wait_queue("salvo.jobs", lambda i: i and i.get("messages", 1) == 0 and
                        i.get("messages_unacknowledged", 1) == 0, timeout=timeout)


def clean_log(w):
    log = log_of(w)
    for bad in ("PRECONDITION_FAILED", "closed by broker: 406", "runtime error",
                "AddressSanitizer", "ThreadSanitizer"):
        if bad in log:
            fail(f"{w.name} log mentions {bad}")
    return log


def test_sigterm_drains_jobs_in_flight():
    w = start_worker()
    ids = publish("/d3", "drain", 20)
    wait_arrivals(ids)
    t0 = time.monotonic()
    rc = w.stop(timeout=20)
    took = time.monotonic() - t0
    if rc != 0:
        fail(f"worker exited {rc} on SIGTERM")
    if not 1.5 <= took <= 10:
        fail(f"SIGTERM took {took:.1f}s; jobs in flight had about 3 s left")
    log = clean_log(w)
    if not re.search(r"stopped: received 20, acked 20,", log):
        fail("the worker did not ack all 20 drained jobs:\n" + log[-1500:])
    settled()
    w2 = start_worker()  # would run anything left unacked
    time.sleep(2)
    w2.stop()
    for k, recs in by_key(ids).items():
        if len(recs) != 1:
            fail(f"{k} reached the target {len(recs)} times")


def test_short_grace_leaves_jobs_for_redelivery():
    w = start_worker("--grace", "1s")
    ids = publish("/d6", "grace", 5)
    wait_arrivals(ids)
    t0 = time.monotonic()
    rc = w.stop(timeout=20)
    took = time.monotonic() - t0
    if rc != 0 or took > 4:
        fail(f"worker exited {rc} after {took:.1f}s with --grace 1s")
    if "unsettled; the broker redelivers them" not in clean_log(w):
        fail("the worker did not say it left jobs unsettled")
    w2 = start_worker()
    wait_arrivals(ids, per_id=2, timeout=30)
    settled(timeout=30)
    w2.stop()
    for k, recs in by_key(ids).items():
        if [r["idem"] for r in recs] != [k, k] or recs[1]["seen"] != 2:
            fail(f"{k}: the redelivered run did not carry the same key: {recs}")


def worker_connection(w):
    want = f"salvo-worker@"
    for c in S.broker.connections():
        name = (c.get("client_properties") or {}).get("connection_name", "")
        if name.startswith(want) and name.endswith(f":{w.pid}"):
            return c["name"]
    return None


def test_forced_close_reconnects_without_rerunning():
    w = start_worker()
    conn = wait_until("the worker's connection in the management API",
                      lambda: worker_connection(w), timeout=30, interval=0.5)
    ids = publish("/d2", "forced", 30)
    wait_arrivals(ids)
    S.broker.close_connection(conn, reason="test: force close")
    w.wait_log(r"consuming salvo\.jobs .*generation 2", timeout=30)
    wait_until("30 redelivered copies acked as duplicates",
               lambda: len(re.findall(r"job=forced@\S+ duplicate", log_of(w))) >= 30,
               timeout=30, interval=0.2)
    settled(timeout=30)
    log = clean_log(w)
    stale = len(re.findall(r"not acked: delivered on an older connection", log))
    dups = len(re.findall(r"job=forced@\S+ duplicate", log))
    w.stop()
    print(f"  {stale} stale outcomes, {dups} copies acked as duplicates")
    if stale != 30 or dups != 30:
        fail(f"{stale} stale outcomes and {dups} duplicates, wanted 30 of each")
    for k, recs in by_key(ids).items():
        if len(recs) != 1:
            fail(f"{k} reached the target {len(recs)} times")


def main():
    with WorkDir("worker-faults") as work:
        S.work = work
        with Broker(work.path) as broker, Target(work.path, path_delay=DELAYS) as target:
            S.broker, S.target = broker, target
            run([test_sigterm_drains_jobs_in_flight,
                 test_short_grace_leaves_jobs_for_redelivery,
                 test_forced_close_reconnects_without_rerunning])


if __name__ == "__main__":
    main()
