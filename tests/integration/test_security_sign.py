"""Integration: signed jobs and publisher identity (issue 8, part 1).

One private node, a worker with metrics, a producer and the recording target; every process
holds the harness's test key (salvo_testlib sets SALVO_SIGNING_KEYS). Checks:
  - a job the producer signs, and one salvo-testpub signs, run;
  - forgeries never reach the target and land in salvo.dead with their reason: a job without
    signature, one signed with a key the worker does not know, one whose body was changed after
    signing (pointed at another URL), and one correctly signed but published by another broker
    user (created here with rabbitmqctl) that is not on the worker's allow-list;
  - RabbitMQ itself refuses a user_id that is not the publisher's login;
  - the worker's salvo_worker_rejected_total counts 3 bad signatures and 1 bad publisher;
  - producer and worker without a key and without --allow-unsigned exit 2 and say why; with
    --allow-unsigned the worker starts and warns; keygen writes a 0600 file and never
    overwrites one.
About 25 s."""

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import (Proc, binary, fail, fid, http_job, iso, next_second,  # noqa: E402
                 wait_delivered, wait_until)
from salvo_testlib import free_port  # noqa: E402

MALLORY = "mallory"
MALLORY_PW = "pw-" + secrets.token_hex(8)


class S:
    fleet = None


def testpub(amqp, *args, check=True):
    """salvo-testpub against amqp with the test key from the environment; returns its ids."""
    r = subprocess.run([binary("salvo-testpub"), "--amqp-url", amqp, *args],
                       capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        fail(f"salvo-testpub {args} failed ({r.returncode}): {r.stderr}")
    return r


def dead_by_id(ids, timeout=30.0):
    """Wait until salvo.dead holds a message for every id; returns {message_id: reason}."""
    def find():
        got = {m["properties"].get("message_id"):
               (m["properties"].get("headers") or {}).get("x-salvo-reason", "")
               for m in S.fleet.queue_messages("salvo.dead")}
        return got if all(i in got for i in ids) else None
    return wait_until(f"dead letters for {ids}", find, timeout=timeout, interval=0.5)


def rejected(port):
    """salvo_worker_rejected_total by reason, from the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^salvo_worker_rejected_total\{reason="([^"]+)"\} (\S+)$', text, re.M)}


def test_forgeries_never_run():
    f = S.fleet
    b = f.broker
    b.ctl("add_user", MALLORY, MALLORY_PW)
    b.ctl("set_permissions", "-p", "/", MALLORY, ".*", ".*", ".*")
    mallory_url = b.amqp_url.replace("guest:guest@", f"{MALLORY}:{MALLORY_PW}@")
    target = f.target()
    port = free_port()
    worker = f.worker(extra=["--metrics-addr", f"127.0.0.1:{port}"])
    T = next_second(3)
    producer = f.producer(f.schedule([http_job("signed", target.url("/signed/{{index}}"),
                                               {"at": iso(T)})]))
    due = T * 1000
    pub = ["--due-at-ms", str(due)]
    legit = testpub(b.amqp_url, *pub, "--url", target.url("/legit"), "--schedule", "legit")
    forged = {
        "unsigned": ("bad-signature: missing", b.amqp_url, ["--unsigned"]),
        "unknownkey": ("bad-signature: unknown key 'evil'", b.amqp_url, ["--forge-key", "evil"]),
        # Signed for a harmless URL, then redirected to another one.
        "tampered": ("bad-signature: mismatch", b.amqp_url,
                     ["--url", target.url("/legit"), "--tamper-url",
                      target.url("/forged/tampered")]),
        "mallory": (f"bad-publisher: user_id '{MALLORY}' is not allowed", mallory_url, []),
    }
    for name, (_, url, extra) in forged.items():
        # A later --url wins: "tampered" signs /legit but sends /forged/tampered.
        testpub(url, *pub, "--url", target.url(f"/forged/{name}"), "--schedule", name, *extra)
    # The broker refuses a user_id other than the login: mallory cannot pass for guest.
    r = testpub(mallory_url, *pub, "--url", target.url("/forged/impersonated"), "--schedule",
                "impersonated", "--user-id", "guest", check=False)
    if r.returncode == 0:
        fail("RabbitMQ accepted a publish whose user_id is not the publisher's login")
    print(f"  impersonation refused by the broker: {r.stderr.strip()[:120]}")

    reasons = dead_by_id([fid(n, T) for n in forged])
    for name, (want, _, _) in forged.items():
        got = reasons[fid(name, T)]
        print(f"  {name}: {got}")
        if got != want:
            fail(f"forged job {name}: dead-letter reason {got!r}, wanted {want!r}")
    wait_delivered(target, "/signed", [fid("signed", T)], timeout=T - time.time() + 20)
    if legit.stdout.split() != [fid("legit", T)]:
        fail(f"salvo-testpub printed {legit.stdout!r}")
    wait_until("the job salvo-testpub signed at the target",
               lambda: [r for r in target.records() if r["path"] == "/legit"], timeout=20)
    f.wait_settled(timeout=20)
    reached = sorted(r["path"] for r in target.records() if r["path"].startswith("/forged"))
    if reached:
        fail(f"forged jobs reached the target: {reached}")
    counts = rejected(port)
    if counts != {"bad-signature": 3.0, "bad-publisher": 1.0}:
        fail(f"salvo_worker_rejected_total is {counts}, wanted 3 bad-signature, 1 bad-publisher")
    if not worker.alive():
        fail("the worker died")
    e2e.stop_ok(producer)
    e2e.stop_ok(worker)
    e2e.assert_clean(producer, worker)  # no 406, no sanitizer report


def test_no_key_refuses_to_start():
    f = S.fleet
    nokey = {"SALVO_SIGNING_KEYS": None, "SALVO_SIGNING_KEY_FILE": None}
    sched = f.schedule([http_job("never", "http://127.0.0.1:9/", {"every": "1s"})])
    state = f.work.sub("state-nokey")
    for name, argv in (("worker-nokey", [binary("salvo-worker"), "run", "--amqp-url",
                                         f.broker.amqp_url]),
                       ("producer-nokey", [binary("salvo-producer"), "run", sched,
                                           "--amqp-url", f.broker.amqp_url, "--state-dir",
                                           state])):
        p = Proc(argv, os.path.join(f.work.path, f"{name}.log"), env=nokey, name=name)
        rc = p.wait(timeout=15)
        log = p.log()
        print(f"  {name}: exit {rc}: {log.strip().splitlines()[-1] if log.strip() else ''}")
        if rc != 2:
            fail(f"{name} without a key exited {rc}, wanted 2")
        if "no signing key" not in log or "--allow-unsigned" not in log:
            fail(f"{name} did not say why it refused to start:\n{log}")
    # keygen: a 0600 file, the secret never printed, an existing file never overwritten.
    key = os.path.join(f.work.sub("keys"), "signing.key")
    printed = ""
    for attempt, want in ((1, 0), (2, 2)):
        r = subprocess.run([binary("salvo-producer"), "keygen", key, "--key-id", "kg"],
                           capture_output=True, text=True, timeout=10)
        printed += r.stdout + r.stderr
        if r.returncode != want:
            fail(f"keygen #{attempt} exited {r.returncode}, wanted {want}: {r.stderr}")
        if attempt == 1:
            content = open(key).read()
    secret = content.strip().split(":", 1)[1]
    if os.stat(key).st_mode & 0o777 != 0o600 or not content.startswith("kg:"):
        fail(f"keygen wrote mode {os.stat(key).st_mode & 0o777:o}, content prefix {content[:3]!r}")
    if open(key).read() != content or secret in printed:
        fail("keygen overwrote the key file or printed the secret")
    # Explicitly unsigned, the worker starts, and says so.
    w = Proc([binary("salvo-worker"), "run", "--amqp-url", f.broker.amqp_url, "--allow-unsigned"],
             os.path.join(f.work.path, "worker-unsigned.log"), env=nokey, name="worker-unsigned")
    f.live.append(w)
    w.wait_log(r"consuming salvo\.jobs", timeout=30)
    if "jobs are NOT signed or verified (--allow-unsigned)" not in w.log():
        fail(f"the unsigned worker did not warn:\n{w.log()}")
    e2e.stop_ok(w)


if __name__ == "__main__":
    e2e.main("security-sign", [test_forgeries_never_run, test_no_key_refuses_to_start], S)
