"""Integration: a follow-up the broker nacks is published again with backoff, never in a loop.

One node, one worker. A policy (max-length 0, overflow reject-publish) makes a retry queue, then
salvo.dead, refuse every publish, so the broker nacks the worker's follow-up (a quorum queue
takes one message past the limit, so a filler goes in first; the retry test uses level 3, whose
30 s TTL keeps the filler there for the whole test). While it refuses:
the worker asks again a handful of times in 3 s (salvo_worker_followup_nacks_total, not
thousands), logs a few lines, keeps the original unacked, and does not run the call again. Once
the policy is cleared the follow-up lands (the retry runs, the dead letter appears) and the
original is acked."""

import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import (Broker, Proc, Target, WorkDir, binary, fail, run,  # noqa
                           stop_worker_clean, wait_until)

PLAN = "/flaky=500*;/gone=404*;default=200"
POLICY = "salvo-test-refuse"
WINDOW_S = 3.0
# RESEND_FIRST_MS doubling: republished at 50, 150, 350, 750, 1550 ms, so 5 nacks after the
# first within 3 s, give or take one for where the window falls. A hot loop makes thousands.
MAX_REPUBLISH_IN_WINDOW = 10


class S:
    work = broker = target = worker = None
    mport = 0


def publish(*args):
    argv = [binary("salvo-testpub"), "--amqp-url", S.broker.amqp_url, *args]
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"salvo-testpub failed ({r.returncode}): {r.stderr}")
    return r.stdout.split()


def counter(name):
    with urllib.request.urlopen(f"http://127.0.0.1:{S.mport}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search("^" + name + r" (\S+)$", text, re.M)
    if not m:
        fail(f"{name} missing from /metrics")
    return float(m.group(1))


def followup_nacks():
    return counter("salvo_worker_followup_nacks_total")


def records_for(ids):
    return [r for r in S.target.records() if r.get("idem") in set(ids)]


def refuse(queue):
    if not S.broker.publish_raw("", queue, b"filler", sign=False):
        fail(f"the filler did not reach {queue}")
    S.broker.ctl("set_policy", POLICY, "^" + re.escape(queue) + "$",
                 '{"max-length":0,"overflow":"reject-publish"}', "--apply-to", "queues")
    S.broker.wait_queue(queue, lambda i: i and i.get("policy") == POLICY, timeout=15)


def allow(queue):
    S.broker.ctl("clear_policy", POLICY)
    S.broker.wait_queue(queue, lambda i: i and not i.get("policy"), timeout=15)


def message_in(queue, job):
    """The message of queue whose firing id (message_id or x-salvo-job) is job."""
    def find():
        for m in S.broker.get_messages(queue, count=20):
            p = m["properties"]
            if p.get("message_id") == job or p.get("headers", {}).get("x-salvo-job") == job:
                return m
        return None
    return wait_until(f"{job} in {queue}", find, timeout=10, interval=0.5)


def held_while_refused(job, queue, attempt):
    """The first nack is logged; then, for WINDOW_S, the republish rate stays bounded, the log
    quiet, the original unacked and the call not run again, while other jobs still settle."""
    S.worker.wait_log("job=" + re.escape(job) + r" follow-up nacked by the broker queue=" +
                      re.escape(queue) + f" attempt={attempt} nacks=1;", timeout=20)
    n0, t0 = followup_nacks(), time.monotonic()
    time.sleep(WINDOW_S)
    n1, took = followup_nacks(), time.monotonic() - t0
    again = n1 - n0
    lines = re.findall(r"job=" + re.escape(job) + r" follow-up (?:nacked|still nacked)",
                       S.worker.log())
    print(f"  {queue}: {again:.0f} republishes nacked in {took:.1f}s, {len(lines)} log lines")
    if not 1 <= again <= MAX_REPUBLISH_IN_WINDOW:
        fail(f"{again:.0f} nacked republishes in {took:.1f}s: wanted 1..{MAX_REPUBLISH_IN_WINDOW}")
    if not 2 <= len(lines) <= 5:
        fail(f"{len(lines)} nack log lines for {job} (first + powers of two expected)")
    other = publish("--url", S.target.url("/ok"), "--schedule", "other-" + queue.split(".")[1],
                    "--count", 3)
    wait_until("3 other jobs run", lambda: len(records_for(other)) == 3 or None, timeout=10)
    S.broker.wait_queue("salvo.jobs", lambda i: i and i.get("messages_unacknowledged") == 1 and
                        i.get("messages_ready") == 0, timeout=10)
    if len(records_for([job])) != 1:
        fail(f"the target saw {len(records_for([job]))} calls for {job} while its follow-up "
             "was refused; wanted 1")


def jobs_settled():
    S.broker.wait_queue("salvo.jobs", lambda i: i and i.get("messages", 1) == 0 and
                        i.get("messages_unacknowledged", 1) == 0, timeout=20)


def test_refused_retry_waits_then_lands():
    refuse("salvo.retry.3")
    ids = publish("--url", S.target.url("/flaky"), "--schedule", "nackr", "--attempt", 3,
                  "--attempts", 5)
    held_while_refused(ids[0], "salvo.retry.3", attempt=3)
    allow("salvo.retry.3")
    S.worker.wait_log("job=" + re.escape(ids[0]) + r" follow-up confirmed after nacks "
                      r"queue=salvo\.retry\.3 attempt=3 nacks=\d+", timeout=15)
    # RabbitMQ 3.10 keeps nacking on the channel that saw the refusal, policy gone or not: the
    # follow-up only got through because the worker replaced that channel.
    log = S.worker.log()
    swaps = re.findall(r"publish channel \d kept nacking follow-ups; replaced by channel \d", log)
    if not swaps:
        fail("the follow-up landed without the publish channel being replaced")
    if counter("salvo_worker_publish_channel_replaced_total") != len(swaps):
        fail(f"salvo_worker_publish_channel_replaced_total is not the {len(swaps)} logged")
    print(f"  publish channel replaced {len(swaps)} times")
    S.worker.wait_log("job=" + re.escape(ids[0]) + r" retried .*next_attempt=4 level=r3")
    message_in("salvo.retry.3", ids[0])
    jobs_settled()
    # Its retry would run in 30 s: drop it and the filler rather than wait.
    S.broker.mgmt_delete("/api/queues/%2F/salvo.retry.3/contents")


def test_refused_dead_letter_waits_then_lands():
    refuse("salvo.dead")
    ids = publish("--url", S.target.url("/gone"), "--schedule", "nackd")
    held_while_refused(ids[0], "salvo.dead", attempt=1)
    allow("salvo.dead")
    S.worker.wait_log("job=" + re.escape(ids[0]) + r" follow-up confirmed after nacks "
                      r"queue=salvo\.dead attempt=1", timeout=15)
    m = message_in("salvo.dead", ids[0])
    if m["properties"]["headers"].get("x-salvo-reason") != "http-404":
        fail(f"dead-letter headers {m['properties']['headers']}")
    jobs_settled()
    if len(records_for(ids)) != 1:
        fail(f"the target saw {len(records_for(ids))} calls for a job that 404s; wanted 1")


def test_worker_stops_cleanly():
    """Its publish channel replaced twice over, the worker still stops cleanly: no channel was
    closed on it by the broker (a confirm or ack on the wrong channel would do that)."""
    stop_worker_clean(S.worker, ("PRECONDITION_FAILED", "closed by broker", "connection lost",
                                 "runtime error", "AddressSanitizer", "ThreadSanitizer"))


def main():
    with WorkDir("worker-nack-backoff") as work:
        S.work = work
        with Broker(work.path) as broker, Target(work.path, status_plan=PLAN) as target:
            S.broker, S.target = broker, target
            S.worker = Proc([binary("salvo-worker"), "run", "--amqp-url", broker.amqp_url,
                             "--threads", "2", "--log-level", "info",
                             "--metrics-addr", "127.0.0.1:0"],
                            os.path.join(work.path, "worker.log"), name="salvo-worker")
            S.worker.wait_log(r"consuming salvo\.jobs", timeout=30)
            S.mport = int(S.worker.wait_log(r"metrics and health on port (\d+)").group(1))
            run([test_refused_retry_waits_then_lands,
                 test_refused_dead_letter_waits_then_lands,
                 test_worker_stops_cleanly])


if __name__ == "__main__":
    main()
