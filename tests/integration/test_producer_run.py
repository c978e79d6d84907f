"""Integration: salvo-producer run against a private RabbitMQ node.

One node for the whole file; each test purges salvo.jobs first. Checks what lands in the queue
(ids, headers, expiration, timestamps, bodies) for a 1,000-job fan-out due on a whole second and
when it was confirmed, precise mode (lead), a broken schedule at start and on SIGHUP (the old
schedule keeps firing, the errors carry file:line:col), misfire once/skip/all across a restart,
and the connection's name in the management API."""

import datetime
import math
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import Broker, Proc, WorkDir, binary, fail, run, wait_until  # noqa

# "fired" log line of one batch (producer/run.c run_log_batch).
FIRED = re.compile(r"(?m)^(\S+) info\s+producer fired job=(\S+)(?: \(\+(\d+) more\))? "
                   r"due=(\S+) jobs=(\d+) confirmed=(\d+) lateness_ms=(-?[\d.]+) "
                   r"publish_ms=([\d.]+) confirm_ms=([\d.]+)")
# Issue 3: a 1,000-job fan-out due at T is published within 50 ms of its publish instant. The
# producer controls the publishing (wake-up, writes); the broker's confirm of 1,000 persistent
# quorum-queue messages takes 30-160 ms on the 2-core CI machine, so that part gets a sanity
# bound, printed each run. Without a lead of its own, a fan-out of 1,000 gets the automatic lead
# (producer/autolead.h, default 300 us a job plus 50 ms for the workers' admission): published
# at T - 350 ms, held by workers until T.
PUBLISH_MS = 50
CONFIRM_MS = 1000
AUTOLEAD_1000_MS = 350


class S:
    work = None
    broker = None
    n = 0


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def compact(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_iso(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def producer(sched, state=None, *args):
    """Start salvo-producer run on sched with its own state dir; returns the Proc."""
    S.n += 1
    state = state or S.work.sub(f"state-{S.n}")
    argv = [binary("salvo-producer"), "run", sched, "--amqp-url", S.broker.amqp_url,
            "--state-dir", state, "--heartbeat", "2s", *args]
    p = Proc(argv, os.path.join(S.work.path, f"producer-{S.n}.log"), name=f"producer-{S.n}")
    p.wait_log(r"connected to broker", timeout=30)
    return p


def stop(p):
    rc = p.stop(signal.SIGTERM, timeout=20)
    with open(p.log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    if rc != 0:
        fail(f"{p.name} exited {rc} on SIGTERM; log tail:\n{log[-2000:]}")
    return log


def fired(log):
    """Every fired line as a dict."""
    out = []
    for m in FIRED.finditer(log):
        out.append({"job": m.group(2), "more": int(m.group(3) or 0), "due": parse_iso(m.group(4)),
                    "jobs": int(m.group(5)), "confirmed": int(m.group(6)),
                    "lateness_ms": float(m.group(7)), "publish_ms": float(m.group(8)),
                    "confirm_ms": float(m.group(9))})
    return out


def drain_queue(queue="salvo.jobs"):
    """Take every message out of queue (not requeued)."""
    msgs = []
    while True:
        got = S.broker.get_messages(queue, count=2000, requeue=False)
        if not got:
            return msgs
        msgs += got


def purge():
    S.broker.mgmt_delete("/api/queues/%2F/salvo.jobs/contents", expect=(200, 204, 404))


def next_second(ahead):
    """A whole second at least `ahead` seconds from now."""
    return math.ceil(time.time() + ahead)


def test_broken_schedule_refuses_to_start():
    sched = os.path.join(S.work.path, "broken.yaml")
    write(sched, "jobs:\n  - name: a\n    every: 5s\n    http: {url: ftp://x}\n"
                 "  - name: b\n    cron: \"* * 25 * * *\"\n    http: {url: http://x/}\n")
    p = Proc([binary("salvo-producer"), "run", sched, "--amqp-url", S.broker.amqp_url,
              "--state-dir", S.work.sub("state-broken")],
             os.path.join(S.work.path, "broken.log"), name="producer-broken")
    rc = p.wait(timeout=20)
    log = p.log()
    if rc != 2:
        fail(f"a broken schedule must exit 2, got {rc}:\n{log}")
    for want in (r"broken\.yaml:4:\d+: .*url", r"broken\.yaml:6:\d+: .*hour"):
        if not re.search(want, log):
            fail(f"missing error /{want}/ in:\n{log}")


def test_fanout_1000_on_the_second():
    purge()
    t = next_second(5)
    sched = os.path.join(S.work.path, "fanout.yaml")
    write(sched, f"""jobs:
  - name: burst
    at: "{iso(t)}"
    fan_out: {{count: 1000}}
    http: {{url: "http://127.0.0.1:9/x?i={{{{item}}}}"}}
    max_lateness: 30s
  - name: early
    at: "{iso(t)}"
    lead: 2s
    fan_out: {{count: 10}}
    http: {{url: "http://127.0.0.1:9/early/{{{{index}}}}"}}
    max_lateness: 30s
  - name: small
    at: "{iso(t)}"
    fan_out: {{count: 10}}
    http: {{url: "http://127.0.0.1:9/small/{{{{index}}}}"}}
    max_lateness: 30s
""")
    p = producer(sched)
    p.wait_log(r"fired job=small", timeout=30)  # the last of the three batches (at T)
    log = stop(p)
    lines = {f["job"]: f for f in fired(log)}
    burst, early, small = lines.get("burst"), lines.get("early"), lines.get("small")
    if not burst or not early or not small:
        fail(f"expected fired lines for burst, early and small:\n{log}")
    if f"job burst: fan-out of 1000 published {AUTOLEAD_1000_MS} ms before" not in log:
        fail(f"burst should get an automatic lead of {AUTOLEAD_1000_MS} ms:\n{log}")
    if burst["due"] != t or burst["jobs"] != 1000 or burst["confirmed"] != 1000:
        fail(f"burst fired wrong: {burst}")
    published = burst["lateness_ms"] + burst["publish_ms"]
    confirmed = burst["lateness_ms"] + burst["confirm_ms"]
    print(f"1000 jobs (automatic lead {AUTOLEAD_1000_MS} ms): publishing began "
          f"{burst['lateness_ms']:.1f} ms after T-{AUTOLEAD_1000_MS}ms, all written "
          f"{published:.1f} ms after it, all confirmed {confirmed:.1f} ms after it "
          f"({confirmed - AUTOLEAD_1000_MS:.1f} ms after T)", flush=True)
    if published > PUBLISH_MS:
        fail(f"1000 jobs published {published:.1f} ms after T (> {PUBLISH_MS} ms): {burst}")
    if confirmed > CONFIRM_MS:
        fail(f"1000 jobs confirmed {confirmed:.1f} ms after T (> {CONFIRM_MS} ms): {burst}")
    # The issue's own bound: every job of the fan-out is in the queue (confirmed by the broker)
    # within 50 ms of T. With the automatic lead that is T - 350 ms + the confirm time.
    in_queue = confirmed - AUTOLEAD_1000_MS
    if in_queue > PUBLISH_MS:
        fail(f"1000 jobs in the queue {in_queue:.1f} ms after T (> {PUBLISH_MS} ms): {burst}")
    # Precise mode: published lead (2 s) before T; its key is T - 2 s.
    if early["due"] != t or abs(early["lateness_ms"]) > PUBLISH_MS:
        fail(f"early (lead 2s) should be published at T-2s: {early}")
    # A small fan-out without a lead is published at T itself.
    if small["due"] != t or abs(small["lateness_ms"]) > PUBLISH_MS:
        fail(f"small (no lead) should be published at T: {small}")

    msgs = drain_queue()
    if len(msgs) != 1020:
        fail(f"expected 1020 messages in salvo.jobs, found {len(msgs)}")
    check_messages([m for m in msgs if m["properties"]["headers"]["x-salvo-job"] == "burst"],
                   "burst", t, 1000, t - 1, 30000 + AUTOLEAD_1000_MS, "http://127.0.0.1:9/x?i={}")
    check_messages([m for m in msgs if m["properties"]["headers"]["x-salvo-job"] == "small"],
                   "small", t, 10, t, 30000, "http://127.0.0.1:9/small/{}")
    check_messages([m for m in msgs if m["properties"]["headers"]["x-salvo-job"] == "early"],
                   "early", t, 10, t - 2, 32000, "http://127.0.0.1:9/early/{}")


def check_messages(msgs, job, t, n, publish_s, expiration_ms, url):
    """Every property and header the producer sets, for each of the n jobs of one firing."""
    if len(msgs) != n:
        fail(f"{job}: {len(msgs)} messages, expected {n}")
    ids = set()
    for m in msgs:
        pr = m["properties"]
        h = pr.get("headers", {})
        mid = pr.get("message_id", "")
        mm = re.fullmatch(re.escape(f"{job}@{compact(t)}#") + r"(\d+)", mid)
        if not mm:
            fail(f"{job}: message_id {mid!r} is not {job}@{compact(t)}#<index>")
        ids.add(int(mm.group(1)))
        if h.get("x-salvo-due") != iso(t) or h.get("x-salvo-attempt") != 1:
            fail(f"{mid}: headers {h}")
        if pr.get("content_type") != "application/msgpack" or pr.get("delivery_mode") != 2:
            fail(f"{mid}: properties {pr}")
        if pr.get("timestamp") != publish_s:
            fail(f"{mid}: timestamp {pr.get('timestamp')}, expected {publish_s}")
        exp = int(pr.get("expiration", "-1"))
        if not expiration_ms - 1000 < exp <= expiration_ms:
            fail(f"{mid}: expiration {exp}, expected about {expiration_ms}")
        if url.format(mm.group(1)).encode() not in m["body"]:
            fail(f"{mid}: body lacks its own URL {url.format(mm.group(1))}: {m['body'][:200]!r}")
    if ids != set(range(n)):
        fail(f"{job}: fan-out indexes are not exactly 0..{n - 1}")


def test_connection_name_and_topology():
    sched = os.path.join(S.work.path, "idle.yaml")
    write(sched, "jobs:\n  - name: yearly\n    cron: \"0 0 0 1 1 *\"\n"
                 "    http: {url: http://127.0.0.1:9/}\n")
    p = producer(sched)
    want = f"salvo-producer@{socket.gethostname()}:{p.pid}"

    def named():
        return [c for c in S.broker.connections()
                if c.get("client_properties", {}).get("connection_name") == want]
    wait_until(f"connection {want} in the management API", named, timeout=20, interval=0.5)
    info = S.broker.queue_info("salvo.jobs")
    if not info or info.get("type") != "quorum":
        fail(f"salvo.jobs should be a quorum queue: {info}")
    stop(p)


def test_sighup_broken_file_keeps_old_schedule():
    purge()
    sched = os.path.join(S.work.path, "reload.yaml")
    good = "jobs:\n  - name: tick\n    every: 1s\n    http: {url: http://127.0.0.1:9/t}\n"
    write(sched, good)
    p = producer(sched)
    wait_until("2 firings", lambda: len(fired(p.log())) >= 2, timeout=15)
    write(sched, "jobs:\n  - name: tick\n    every: 1s\n    http: {url: http://127.0.0.1:9/t}\n"
                 "  - name: bad\n    every: 1x\n    http: {url: http://127.0.0.1:9/b}\n")
    p.send_signal(signal.SIGHUP)
    p.wait_log(r"reload of .*reload\.yaml failed", timeout=10)
    p.wait_log(r"err\s+producer \S*reload\.yaml:6:\d+: ", timeout=5)
    after = len(fired(p.log()))
    wait_until("the old schedule firing after the failed reload",
               lambda: len(fired(p.log())) >= after + 2, timeout=15)
    write(sched, good + "  - name: added\n    every: 1s\n    http: {url: http://127.0.0.1:9/a}\n")
    p.send_signal(signal.SIGHUP)
    p.wait_log(r"reloaded \S*reload\.yaml: 2 jobs \(1 unchanged, 0 changed, 1 added, 0 removed\)",
               timeout=10)
    wait_until("the added job firing",
               lambda: any(f["more"] == 1 and f["jobs"] == 2 for f in fired(p.log())),
               timeout=15)
    log = stop(p)
    dues = [f["due"] for f in fired(log)]
    if len(dues) != len(set(dues)) or any(b - a != 1 for a, b in zip(dues, dues[1:])):
        fail(f"tick must fire every second, without gap or repeat, across both reloads: {dues}")
    msgs = drain_queue()
    ticks = sorted(parse_iso(m["properties"]["headers"]["x-salvo-due"]) for m in msgs
                   if m["properties"]["headers"]["x-salvo-job"] == "tick")
    if ticks != dues:
        fail(f"queue holds tick firings {ticks}, the log says {dues}")


def test_misfire_once_skip_all_across_restart():
    purge()
    sched = os.path.join(S.work.path, "misfire.yaml")
    write(sched, """jobs:
  - name: skip
    every: 2s
    misfire: skip
    http: {url: http://127.0.0.1:9/s}
  - name: once
    every: 2s
    misfire: once
    http: {url: http://127.0.0.1:9/o}
  - name: all
    every: 2s
    misfire: all
    misfire_max: 2
    http: {url: http://127.0.0.1:9/a}
""")
    state = S.work.sub("state-misfire")
    a = producer(sched, state)
    a.wait_log(r"fired job=skip \(\+2 more\)", timeout=15)
    a_log = stop(a)
    last_a = max(f["due"] for f in fired(a_log))
    # Restart 0.3 s past an odd second (instants are even), at least 3 instants later.
    restart = math.floor(time.time()) + 7
    restart += 1 if restart % 2 == 0 else 0
    time.sleep(max(0.0, restart + 0.3 - time.time()))
    b = producer(sched, state)
    b.wait_log(r"misfire all: ", timeout=10)
    wait_until("a firing on the clock after the restart",
               lambda: any(f["due"] > restart for f in fired(b.log())), timeout=15)
    b_log = stop(b)
    missed = list(range(last_a + 2, restart, 2))
    if len(missed) < 3:
        fail(f"the restart gap should miss at least 3 instants: {missed}")
    on_clock = sorted({f["due"] for f in fired(b_log) if f["due"] > restart})
    got = {}
    for m in drain_queue():
        h = m["properties"]["headers"]
        got.setdefault(h["x-salvo-job"], []).append(parse_iso(h["x-salvo-due"]))
    a_dues = sorted({f["due"] for f in fired(a_log)})
    want = {"skip": a_dues + on_clock, "once": a_dues + [missed[-1]] + on_clock,
            "all": a_dues + missed[-2:] + on_clock}
    for job, dues in want.items():
        if sorted(got.get(job, [])) != sorted(dues):
            fail(f"{job}: queue holds dues {sorted(got.get(job, []))}, expected {sorted(dues)}"
                 f" (missed {missed}); producer log:\n{b_log[-3000:]}")
    for word in ("misfire skip", "misfire once", "misfire all"):
        if word not in b_log:
            fail(f"the restarted producer did not log '{word}':\n{b_log}")


def main():
    with WorkDir("producer-run") as work:
        S.work = work
        with Broker(work.path) as broker:
            S.broker = broker
            run([test_broken_schedule_refuses_to_start,
                 test_connection_name_and_topology,
                 test_fanout_1000_on_the_second,
                 test_sighup_broken_file_keeps_old_schedule,
                 test_misfire_once_skip_all_across_restart])


if __name__ == "__main__":
    main()
