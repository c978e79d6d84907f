"""End to end, job outcomes (issue 5, scenarios 7 and 8): what the producer fires meets a target
that fails, and the job queue receives poison; read back from salvo.dead through the management
API.

7. Target answers 500 then 200: retried once with the same key, succeeds, not dead-lettered.
   Always 500: tried `retries + 1` times, then dead-lettered with x-salvo-reason
   attempts-exhausted and the last status. 404: dead-lettered at once (reason http-404).
8. Poison published straight to salvo.jobs (not msgpack, a declared array of 2^31 - 1
   elements, a 300 KiB body, a map with wrong types): each is dead-lettered with its reason and
   its original body; a job the producer fires after them still runs and the workers live."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import (assert_clean, check_delivery, fail, fid, http_job, iso,  # noqa: E402
                 next_second, stop_ok, wait_delivered, wait_until, worker_finished)

PLAN = "/s7flaky/0=500,200;/s7always/0=500*;/s7gone/0=404*;default=200"
ALWAYS_RETRIES = 2  # 3 attempts; the retry ladder waits 1 s, then 5 s

POISON = {
    "p-not-msgpack": (b"\xc1\xc1garbage", "malformed:"),
    "p-huge-array": (b"\xdd\x7f\xff\xff\xff", "malformed:"),
    "p-oversized": (b"\xc4" + b"x" * (300 * 1024), "too-large:"),
    "p-wrong-types": (b"\x82\xa1v\x01\xa2id\x05", "bad-schema:"),
}


class S:
    fleet = None


def dead_key(m):
    """What identifies a dead letter: its x-salvo-job header, else its message_id (poison has
    no decodable job)."""
    props = m["properties"]
    return (props.get("headers") or {}).get("x-salvo-job") or props.get("message_id")


def dead_letters(keys, timeout):
    """Wait until salvo.dead holds a message for every key; returns {key: message}."""
    def find():
        got = {dead_key(m): m for m in S.fleet.queue_messages("salvo.dead")}
        return got if all(k in got for k in keys) else None
    got = wait_until(f"dead letters for {sorted(keys)}", find, timeout=timeout, interval=0.5)
    return {k: got[k] for k in keys}


def test_statuses_retry_and_dead_letter():
    f = S.fleet
    target = f.target(status_plan=PLAN)
    workers = [f.worker(), f.worker()]
    T = next_second(3)
    jobs = [http_job("s7flaky", target.url("/s7flaky/{{index}}"), {"at": iso(T)}, retries=3),
            http_job("s7always", target.url("/s7always/{{index}}"), {"at": iso(T)},
                     retries=ALWAYS_RETRIES),
            http_job("s7gone", target.url("/s7gone/{{index}}"), {"at": iso(T)}, retries=3)]
    producer = f.producer(f.schedule(jobs))
    flaky, always, gone = (fid(n, T) for n in ("s7flaky", "s7always", "s7gone"))
    dead = dead_letters({always, gone}, timeout=T - time.time() + 30)
    h = dead[always]["properties"]["headers"]
    if (h.get("x-salvo-reason"), h.get("x-salvo-status"), h.get("x-salvo-attempt")) != \
            ("attempts-exhausted", 500, ALWAYS_RETRIES + 1):
        fail(f"always-500 dead letter headers {h}")
    h = dead[gone]["properties"]["headers"]
    if (h.get("x-salvo-reason"), h.get("x-salvo-status"), h.get("x-salvo-attempt")) != \
            ("http-404", 404, 1):
        fail(f"404 dead letter headers {h}")
    print(f"  dead: {always} {dead[always]['properties']['headers']['x-salvo-reason']}, "
          f"{gone} {dead[gone]['properties']['headers']['x-salvo-reason']}")
    ids = [flaky, always, gone]
    for prefix, key in zip(("/s7flaky", "/s7always", "/s7gone"), ids):
        wait_delivered(target, prefix, [key], timeout=10)
    f.wait_settled(timeout=30)
    seen = {}
    for prefix, key in zip(("/s7flaky", "/s7always", "/s7gone"), ids):
        d = check_delivery(target, prefix, [key], max_dups=0)
        seen[key] = [(r["attempt"], r["status"]) for r in d.by_key[key]]
    want = {flaky: [(1, 500), (2, 200)],
            always: [(a, 500) for a in range(1, ALWAYS_RETRIES + 2)],
            gone: [(1, 404)]}
    if seen != want:
        fail(f"attempts and statuses at the target {seen}, wanted {want}")
    if any(dead_key(m) == flaky for m in f.queue_messages("salvo.dead")):
        fail("the job that succeeded on retry was dead-lettered too")
    outcomes = sorted((x["attempt"], x["outcome"]) for w in workers for x in worker_finished(w)
                      if x["id"] == flaky)
    if outcomes != [(1, "retry"), (2, "ok")]:
        fail(f"the workers logged {outcomes} for {flaky}")
    for p in (producer, *workers):
        stop_ok(p)
    assert_clean(producer, *workers, broker=f.broker)
    target.stop()


def test_poison_is_dead_lettered_and_service_goes_on():
    f = S.fleet
    target = f.target()
    workers = [f.worker(), f.worker()]
    for name, (body, _) in POISON.items():
        if not f.broker.publish_raw("salvo.jobs", "job", body, properties={"message_id": name,
                                                                          "delivery_mode": 2}):
            fail(f"poison {name} was not routed to salvo.jobs")
    T = next_second(2)  # the normal job is published after every poison message
    producer = f.producer(f.schedule([http_job("s8", target.url("/s8/{{index}}"),
                                               {"at": iso(T)})]))
    dead = dead_letters(set(POISON), timeout=30)
    for name, (body, prefix) in POISON.items():
        m = dead[name]
        reason = (m["properties"].get("headers") or {}).get("x-salvo-reason", "")
        print(f"  {name}: {reason}")
        if not reason.startswith(prefix):
            fail(f"poison {name}: reason {reason!r}, wanted {prefix}...")
        if m["body"] != body:
            fail(f"poison {name}: the dead letter does not carry the original body")
    ids = [fid("s8", T)]
    wait_delivered(target, "/s8", ids, timeout=T - time.time() + 20)
    f.wait_settled(timeout=30)
    check_delivery(target, "/s8", ids, max_dups=0)
    for w in workers:
        if not w.alive():
            fail(f"{w.name} died on poison (exit {w.returncode})")
    for p in (producer, *workers):
        stop_ok(p)
    assert_clean(producer, *workers, broker=f.broker)
    target.stop()


if __name__ == "__main__":
    e2e.main("e2e-outcomes", [
        test_statuses_retry_and_dead_letter,
        test_poison_is_dead_lettered_and_service_goes_on,
    ], S)
