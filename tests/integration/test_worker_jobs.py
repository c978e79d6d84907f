"""Integration: salvo-worker against a private RabbitMQ node and the recording target.

One node, one worker (--threads 2), jobs published by tests/tools/salvo-testpub. Checks that
each job's context reaches its own request only, that 100 two-second jobs run concurrently,
retries (500 then 200), dead letters (always 500 after the last attempt, 404 at once, poison
bodies with the decoder's reason) with their headers, and the result records."""

import json
import re
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import (Broker, Proc, Target, WorkDir, binary, fail, run,  # noqa
                           stop_worker_clean, wait_until)

PLAN = "/flaky=500,200;/always500=500*;/gone=404*;default=200"


class S:
    """State shared by the tests below, which run in order against one node and one worker."""
    work = None
    broker = None
    target = None
    slow = None
    worker = None


def publish(*args, count=1):
    """Run salvo-testpub; returns the firing ids it printed."""
    argv = [binary("salvo-testpub"), "--amqp-url", S.broker.amqp_url, "--count", count, *args]
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"salvo-testpub failed ({r.returncode}): {r.stderr}")
    return r.stdout.split()


def records_for(target, ids):
    """The target's records whose Idempotency-Key is one of ids."""
    want = set(ids)
    return [r for r in target.records() if r.get("idem") in want]


def wait_records(target, ids, n, timeout=30.0):
    return wait_until(f"{n} requests for {len(ids)} jobs",
                      lambda: (lambda rs: rs if len(rs) >= n else None)(records_for(target, ids)),
                      timeout=timeout)


def jobs_queue_settled(timeout=30.0):
    """Wait until salvo.jobs holds nothing ready or unacked (stats lag about a second)."""
    S.broker.wait_queue("salvo.jobs", lambda i: i and i.get("messages", 1) == 0 and
                        i.get("messages_unacknowledged", 1) == 0, timeout=timeout)


def dead_letters(queue="salvo.dead"):
    """Every message in a dead-letter queue (requeued, so repeated calls see them again)."""
    info = S.broker.queue_info(queue)
    n = info.get("messages", 0) if info else 0
    return S.broker.get_messages(queue, count=max(n, 1) + 10) if n else []


def dead_for(job_id, timeout=30.0):
    """The dead letter whose x-salvo-job is job_id."""
    def find():
        for m in dead_letters():
            if m["properties"].get("headers", {}).get("x-salvo-job") == job_id:
                return m
        return None
    return wait_until(f"a dead letter for {job_id}", find, timeout=timeout, interval=0.5)


def test_context_reaches_its_own_request_only():
    ids = publish("--url", S.target.url("/ctx/{{context.n}}"), "--method", "POST",
                  "--body", '{"n":{{context.n}},"who":"{{context.who}}"}', "--ctx", "who=ann",
                  "--schedule", "ctx", count=50)
    recs = wait_records(S.target, ids, 50)
    for r in recs:
        n = int(r["idem"].rsplit("#", 1)[1])
        if r["path"] != f"/ctx/{n}":
            fail(f"job {r['idem']} reached {r['path']}: another job's context")
        if json.loads(r["body"]) != {"n": n, "who": "ann"}:
            fail(f"job {r['idem']} sent body {r['body']!r}")
        if r["attempt"] != 1 or not r["sched_at"]:
            fail(f"job {r['idem']}: X-Salvo-Attempt {r['attempt']}, scheduled {r['sched_at']}")
    if sorted(r["idem"] for r in recs) != sorted(ids):
        fail("some jobs did not reach the target exactly once")
    jobs_queue_settled()


def test_hundred_two_second_jobs_run_together():
    t0 = time.monotonic()
    ids = publish("--url", S.slow.url("/slow/{{context.n}}"), "--schedule", "slow", count=100)
    recs = wait_records(S.slow, ids, 100, timeout=30)
    spread = (max(r["t_ns"] for r in recs) - min(r["t_ns"] for r in recs)) / 1e9
    wait_until("100 finished jobs in the worker log",
               lambda: len(re.findall(r"finished schedule=slow attempt=1/4 outcome=ok",
                                      S.worker.log())) >= 100, timeout=30, interval=0.05)
    took = time.monotonic() - t0
    print(f"  100 jobs of 2 s: requests spread over {spread:.2f}s, all acked after {took:.1f}s")
    if spread > 1.0:
        fail(f"requests spread over {spread:.2f}s: jobs did not start together")
    if not 2.0 <= took <= 5.0:
        fail(f"100 two-second jobs took {took:.1f}s with --threads 2: not concurrent")
    jobs_queue_settled(timeout=30)


def test_500_then_200_is_retried_and_succeeds():
    ids = publish("--url", S.target.url("/flaky"), "--schedule", "flaky", "--attempts", 3)
    recs = wait_records(S.target, ids, 2, timeout=20)
    statuses = [(r["attempt"], r["status"]) for r in recs]
    if statuses != [(1, 500), (2, 200)]:
        fail(f"attempts and statuses {statuses}, wanted [(1, 500), (2, 200)]")
    gap = (recs[1]["t_ns"] - recs[0]["t_ns"]) / 1e9
    if not 0.5 <= gap <= 4.0:
        fail(f"retry came {gap:.2f}s after the failure; level r1 waits about a second")
    jobs_queue_settled()
    S.worker.wait_log("job=" + re.escape(ids[0]) + r" retried .*next_attempt=2")


def test_always_500_is_dead_after_max_attempts():
    ids = publish("--url", S.target.url("/always500"), "--schedule", "a500", "--attempts", 3)
    m = dead_for(ids[0], timeout=30)
    h = m["properties"]["headers"]
    if h.get("x-salvo-reason") != "attempts-exhausted" or h.get("x-salvo-status") != 500 \
            or h.get("x-salvo-attempt") != 3:
        fail(f"dead-letter headers {h}")
    attempts = [r["attempt"] for r in records_for(S.target, ids)]
    if attempts != [1, 2, 3]:
        fail(f"target saw attempts {attempts}, wanted [1, 2, 3]")


def test_404_is_dead_at_once():
    ids = publish("--url", S.target.url("/gone"), "--schedule", "gone")
    m = dead_for(ids[0], timeout=15)
    h = m["properties"]["headers"]
    if h.get("x-salvo-reason") != "http-404" or h.get("x-salvo-attempt") != 1:
        fail(f"dead-letter headers {h}")
    if len(records_for(S.target, ids)) != 1:
        fail("a 404 was retried")


POISON = {
    "huge-array": (b"\xdd\x08\x00\x00\x00", "malformed:"),
    "not-msgpack": (b"\xc1\xc1garbage", "malformed:"),
    "wrong-types": (b"\x82\xa1v\x01\xa2id\x05", "bad-schema:"),
    "oversized": (b"\xc4" + b"x" * (300 * 1024), "too-large:"),
}


def test_poison_messages_are_dead_and_worker_keeps_serving():
    before = len(dead_letters())
    for name, (body, _) in POISON.items():
        if not S.broker.publish_raw("salvo.jobs", "job", body, properties={"message_id": name}):
            fail(f"poison {name} was not routed")
    want = before + len(POISON)
    msgs = wait_until(f"{want} dead letters", lambda: (lambda d: d if len(d) >= want else None)(
        dead_letters()), timeout=30, interval=0.5)
    reasons = {m["properties"].get("message_id"): m["properties"]["headers"]["x-salvo-reason"]
               for m in msgs}
    for name, (body, prefix) in POISON.items():
        if not reasons.get(name, "").startswith(prefix):
            fail(f"poison {name}: reason {reasons.get(name)!r}, wanted {prefix}...")
    for m in msgs:
        if m["properties"].get("message_id") == "huge-array" and m["body"] != POISON[
                "huge-array"][0]:
            fail("the dead letter does not carry the original body")
    ids = publish("--url", S.target.url("/after-poison"), "--schedule", "after")
    wait_records(S.target, ids, 1)
    if not S.worker.alive():
        fail("the worker died on poison messages")


def test_result_records():
    ids = publish("--url", S.target.url("/result"), "--schedule", "result")
    wait_records(S.target, ids, 1)

    def find():
        info = S.broker.queue_info("salvo.results")
        n = info.get("messages", 0) if info else 0
        for m in S.broker.get_messages("salvo.results", count=n + 10) if n else []:
            rec = json.loads(m["body"])
            if rec.get("id") == ids[0]:
                return rec
        return None
    rec = wait_until("the result record", find, timeout=15, interval=0.5)
    for key in ("scheduled", "started", "finished", "lateness_ms", "duration_ms", "worker"):
        if rec.get(key) is None:
            fail(f"result record lacks {key}: {rec}")
    if rec["outcome"] != "ok" or rec["status"] != 200 or rec["attempt"] != 1:
        fail(f"result record {rec}")


def result_for(job_id, timeout=15):
    """The result record of job_id from salvo.results (records are requeued when read)."""
    def find():
        info = S.broker.queue_info("salvo.results")
        n = info.get("messages", 0) if info else 0
        for m in S.broker.get_messages("salvo.results", count=n + 10) if n else []:
            rec = json.loads(m["body"])
            if rec.get("id") == job_id:
                return rec
        return None
    return wait_until(f"the result record of {job_id}", find, timeout=timeout, interval=0.5)


def test_commands_run_only_when_allowed():
    ok = publish("--cmd", "/bin/echo", "--cmd", "hello {{context.who}}", "--ctx", "who=ann",
                 "--schedule", "cmd-ok")
    rec = result_for(ok[0])
    if rec["outcome"] != "ok" or rec["status"] != 0 or rec["response"] != "hello ann\n":
        fail(f"allowed command: result {rec}")
    denied = publish("--cmd", "/bin/ls", "--cmd", "/", "--schedule", "cmd-denied")
    h = dead_for(denied[0])["properties"]["headers"]
    if h.get("x-salvo-reason") != "command-not-allowed":
        fail(f"a command off the allow-list: dead-letter headers {h}")


def test_metrics_and_health():
    port = int(S.worker.wait_log(r"metrics and health on port (\d+)").group(1))
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
        if r.status != 200 or r.read().strip() != b"ok":
            fail("/healthz is not ok while the worker consumes")
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    vals = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^(salvo_worker_\w+(?:\{[^}]*\})?) (\S+)$', text, re.M)}
    for key, least in (('salvo_worker_jobs_total{outcome="ok"}', 150),
                       ('salvo_worker_jobs_total{outcome="dead"}', 3),
                       ('salvo_worker_jobs_total{outcome="invalid"}', len(POISON)),
                       ('salvo_worker_jobs_total{outcome="retry"}', 3),
                       ('salvo_worker_start_lateness_seconds_count', 150),
                       ("salvo_worker_connected", 1)):
        if vals.get(key, -1) < least:
            fail(f"{key} = {vals.get(key)}, expected at least {least}:\n{text[:1500]}")


def test_worker_stops_cleanly():
    # A stale ack would close the channel with 406 PRECONDITION_FAILED.
    stop_worker_clean(S.worker, ("PRECONDITION_FAILED", "closed by broker", "runtime error",
                                 "AddressSanitizer", "ThreadSanitizer"))


def main():
    with WorkDir("worker-jobs") as work:
        S.work = work
        with Broker(work.path) as broker, Target(work.path, status_plan=PLAN) as target, \
                Target(work.path, delay_ms=2000) as slow:
            S.broker, S.target, S.slow = broker, target, slow
            S.worker = Proc([binary("salvo-worker"), "run", "--amqp-url", broker.amqp_url,
                             "--threads", "2", "--max-inflight", "500", "--results", "all",
                             "--allow-command", "/bin/echo,/usr/bin/env",
                             "--metrics-addr", "127.0.0.1:0"],
                            os.path.join(work.path, "worker.log"), name="salvo-worker")
            S.worker.wait_log(r"consuming salvo\.jobs", timeout=30)
            run([test_context_reaches_its_own_request_only,
                 test_hundred_two_second_jobs_run_together,
                 test_500_then_200_is_retried_and_succeeds,
                 test_always_500_is_dead_after_max_attempts,
                 test_404_is_dead_at_once,
                 test_poison_messages_are_dead_and_worker_keeps_serving,
                 test_result_records,
                 test_commands_run_only_when_allowed,
                 test_metrics_and_health,
                 test_worker_stops_cleanly])


if __name__ == "__main__":
    main()
