"""Integration: /metrics, /healthz and per-job JSON logs of both binaries, checked against what
the recording target saw, plus the dashboard and the README's metric list checked against what
the binaries really export.

One batch of 17 jobs due at one instant T: 10 answered 200, 3 answered 500 then 200 (retried
once), 2 answered 500 twice with retries: 1 (retried, then dead: attempts-exhausted), 2 answered
404 (dead: http-404), the 200s on /ok held 1.5 s so the in-flight gauges are seen at 10; plus, published straight to salvo.jobs, one signed undecodable message
(invalid) and one signed with a key the worker does not have (bad-signature).
Then the broker application is stopped (stop_app): both /healthz turn 503; it is started again:
both turn 200."""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import (Broker, Proc, Target, WorkDir, binary, fail, free_port,  # noqa
                           run, sign_headers, source_dir, wait_until)

PLAN = "/flaky=500,200;/fail=500*;/gone=404*;default=200"
JOBS = {"okjob": ("/ok", 10, 3), "flaky": ("/flaky", 3, 3), "failing": ("/fail", 2, 1),
        "gone": ("/gone", 2, 3)}
FIRST = sum(n for _, n, _ in JOBS.values())   # 17 first attempts
REQUESTS = FIRST + 3 + 2                        # flaky and failing run twice each
OUTCOMES = {"ok": 13, "retry": 5, "dead": 4, "invalid": 1, "bad-signature": 1}
SAMPLE = re.compile(r'^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$')


class S:
    work = broker = target = producer = worker = None
    pport = wport = 0


def scrape(port):
    """({(name, labels text): value}, {family: type}) of one /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        if r.status != 200:
            fail(f"/metrics on {port} answered {r.status}")
        text = r.read().decode()
    vals, types = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            types[m.group(1)] = m.group(2)
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            vals[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return vals, types


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def json_log(proc):
    """Every line of a --log-format json log, parsed (a line that is not JSON fails)."""
    out = []
    for line in proc.log().splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            fail(f"{proc.name}: not a JSON line: {line!r}")
    return out


def events(proc, word):
    return [e for e in json_log(proc) if e["msg"].startswith(word + " ")]


def worker_outcomes():
    vals, _ = scrape(S.wport)
    return {k: int(vals.get(("salvo_worker_jobs_total", f'{{outcome="{k}"}}'), -1))
            for k in OUTCOMES}


def test_end_to_end_counts():
    due = int(time.time() * 1000)
    for mid, body, secret in (("garbage", b"\xc1 not msgpack", None),
                              ("forged", b"\x80", b"k" * 32)):
        hdrs = sign_headers(mid, due, body, **({"secret": secret} if secret else {}))
        if not S.broker.publish_raw("salvo.jobs", "job", body, {"message_id": mid}, hdrs):
            fail(f"{mid} was not routed")
    # /ok replies are held 1.5 s: the in-flight and running gauges must show those 10 jobs.
    vals = wait_until("10 jobs in flight", lambda: (lambda v: v if v.get(
        ("salvo_worker_running", ""), 0) >= 10 else None)(scrape(S.wport)[0]), timeout=20,
        interval=0.05)
    if vals[("salvo_worker_inflight", "")] < 10:
        fail(f"running {vals[('salvo_worker_running', '')]} but in flight "
             f"{vals[('salvo_worker_inflight', '')]}")
    S.target.wait_count(REQUESTS, timeout=30)
    wait_until("every outcome settled", lambda: worker_outcomes() == OUTCOMES, timeout=20)
    time.sleep(0.5)  # anything extra would show now
    st = S.target.stats()
    if st["requests"] != REQUESTS:
        fail(f"the target saw {st['requests']} requests, expected {REQUESTS}")
    w, wt = scrape(S.wport)

    def wv(name, labels=""):
        return w.get((name, labels), -1)
    checks = [
        ("jobs started = requests received", wv("salvo_worker_jobs_started_total"), REQUESTS),
        ("lateness _count = first attempts", wv("salvo_worker_start_lateness_seconds_count"),
         FIRST),
        ("lateness +Inf bucket", wv("salvo_worker_start_lateness_seconds_bucket", '{le="+Inf"}'),
         FIRST),
        ("duration _count = requests", wv("salvo_worker_job_duration_seconds_count"), REQUESTS),
        ("deliveries", wv("salvo_worker_deliveries_total"), REQUESTS + 2),
        ("rejected bad-signature", wv("salvo_worker_rejected_total", '{reason="bad-signature"}'),
         1),
        ("dead bad-signature",
         wv("salvo_worker_dead_letters_total", '{reason="bad-signature"}'), 1),
        ("retries r1", wv("salvo_worker_retries_total", '{level="r1"}'), 5),
        ("dead http-404", wv("salvo_worker_dead_letters_total", '{reason="http-404"}'), 2),
        ("dead attempts-exhausted",
         wv("salvo_worker_dead_letters_total", '{reason="attempts-exhausted"}'), 2),
        ("in flight now", wv("salvo_worker_inflight"), 0),
        ("running now", wv("salvo_worker_running"), 0),
        ("connected", wv("salvo_worker_connected"), 1),
    ]
    dl = sum(v for (n, _), v in w.items() if n == "salvo_worker_dead_letters_total")
    checks.append(("dead letters = dead + invalid + bad-signature", dl, 6))
    for what, got, want in checks:
        if got != want:
            fail(f"worker {what}: {got}, expected {want}")
    if abs(wv("salvo_worker_clock_skew_seconds")) > 3:
        fail(f"worker clock skew {wv('salvo_worker_clock_skew_seconds')} s on one host")
    p, _ = scrape(S.pport)
    fired = [e for e in json_log(S.producer) if e["msg"].startswith("fired ")]
    fired_jobs = sum(e["jobs"] for e in fired)
    for name, (_, n, _) in JOBS.items():
        for fam in ("published", "confirmed"):
            got = p.get((f"salvo_producer_jobs_{fam}_total", f'{{schedule="{name}"}}'), -1)
            if got != n:
                fail(f"producer jobs_{fam}_total{{schedule={name}}} = {got}, expected {n}")
    for what, got, want in (("fired jobs in the log", fired_jobs, FIRST),
                            ("confirmed in the log", sum(e["confirmed"] for e in fired), FIRST),
                            ("batches", p[("salvo_producer_batches_total", "")], len(fired)),
                            ("lateness _count", p[("salvo_producer_publish_lateness_seconds_count",
                                                   "")], len(fired)),
                            ("schedules", p[("salvo_producer_schedules", "")], len(JOBS)),
                            ("connected", p[("salvo_producer_connected", "")], 1)):
        if got != want:
            fail(f"producer {what}: {got}, expected {want}")
    S.types = dict(wt)
    S.types.update(scrape(S.pport)[1])
    print(f"  target {REQUESTS} requests = worker started; lateness count {FIRST}; "
          f"producer published = confirmed = {fired_jobs}", flush=True)


def test_json_job_events():
    """One JSON line per job event, with firing id, schedule, attempt, lateness and status."""
    pub = events(S.producer, "published")
    if len(pub) != FIRST or any(e["status"] != "confirmed" or e["attempt"] != 1 or
                                "lateness_ms" not in e or e["schedule"] not in JOBS or
                                not e["job"].startswith(e["schedule"] + "@") for e in pub):
        fail(f"producer published events: {len(pub)}, e.g. {pub[:2]}")
    started, finished = events(S.worker, "started"), events(S.worker, "finished")
    retried, dead = events(S.worker, "retried"), events(S.worker, "dead-lettered")
    for what, evs, n, keys in (
            ("started", started, REQUESTS, ("schedule", "attempt", "attempt_max", "lateness_ms")),
            ("finished", finished, REQUESTS, ("schedule", "attempt", "outcome", "status",
                                              "lateness_ms", "duration_ms")),
            ("retried", retried, 5, ("schedule", "attempt", "status", "lateness_ms")),
            ("dead-lettered", dead, 6, ("attempt", "reason"))):
        if len(evs) != n:
            fail(f"{len(evs)} worker {what} events, expected {n}: {evs[:3]}")
        for e in evs:
            if "job" not in e or any(k not in e for k in keys):
                fail(f"worker {what} event lacks one of job, {keys}: {e}")
    ids = {e["job"] for e in started}
    if len(ids) != FIRST or {e["job"] for e in pub} != ids:
        fail("the worker's started firing ids differ from the producer's published ones")
    statuses = sorted(e["status"] for e in dead if e.get("schedule") in JOBS)
    if statuses != [404, 404, 500, 500]:
        fail(f"dead-lettered statuses {statuses}")


def test_dashboard_queries_exported_metrics():
    """Every salvo_* series the dashboard queries is exported; every rabbitmq_* one is a name
    the broker's own rabbitmq_prometheus plugin serves."""
    path = os.path.join(source_dir(), "deploy", "grafana", "salvo-dashboard.json")
    with open(path) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    if len(exprs) < 6:
        fail(f"the dashboard has only {len(exprs)} queries")
    names = set(re.findall(r"\b((?:salvo|rabbitmq)_[a-z0-9_]+)", " ".join(exprs)))
    fams = set(S.types)
    for n in sorted(names):
        if not n.startswith("salvo_"):
            continue
        base = re.sub(r"_(bucket|count|sum)$", "", n)
        if n not in fams and not (base in fams and S.types[base] == "histogram"):
            fail(f"the dashboard queries {n}, which no salvo binary exports")
    rmq = sorted(n for n in names if n.startswith("rabbitmq_"))
    if not rmq:
        fail("the dashboard shows no queue depth from rabbitmq_prometheus")
    text = ""
    for q in ("/metrics", "/metrics/detailed?family=queue_coarse_metrics"):
        with urllib.request.urlopen(f"http://127.0.0.1:{S.broker.env['PROM_PORT']}{q}",
                                    timeout=10) as r:
            text += r.read().decode()
    for n in rmq:
        if not re.search(rf"^{n}[{{ ]", text, re.M):
            fail(f"the dashboard queries {n}, which rabbitmq_prometheus does not serve")


def test_readme_lists_exactly_the_metrics():
    with open(os.path.join(source_dir(), "README.md")) as f:
        readme = f.read()
    sec = readme.split("### Metrics", 1)[-1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`((?:salvo)_[a-z0-9_]+)", sec))
    if listed != set(S.types):
        fail(f"README metric list differs from /metrics: missing {set(S.types) - listed}, "
             f"extra {listed - set(S.types)}")


def test_health_follows_the_broker():
    for port in (S.pport, S.wport):
        if health(port) != 200:
            fail(f"/healthz on {port} is {health(port)} while connected")
    S.broker.ctl("stop_app")  # the node stays up: a restart costs ~3 s, not a cold boot
    t0 = time.monotonic()
    wait_until("both /healthz unhealthy", lambda: health(S.pport) == health(S.wport) == 503,
               timeout=5)
    print(f"  503 on both {time.monotonic() - t0:.1f}s after stop_app", flush=True)
    S.broker.ctl("start_app")
    t0 = time.monotonic()
    wait_until("both /healthz healthy again", lambda: health(S.pport) == health(S.wport) == 200,
               timeout=40)
    print(f"  200 on both {time.monotonic() - t0:.1f}s after start_app", flush=True)
    for port, name in ((S.pport, "salvo_producer_reconnects_total"),
                       (S.wport, "salvo_worker_reconnects_total")):
        if scrape(port)[0].get((name, ""), 0) < 1:
            fail(f"{name} did not count the reconnect")


def schedule(path, t):
    due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    with open(path, "w") as f:
        f.write("jobs:\n")
        for name, (url, n, retries) in JOBS.items():
            f.write(f"  - name: {name}\n    at: {due}\n    retries: {retries}\n"
                    f"    fan_out: {{count: {n}}}\n"
                    f"    http: {{url: \"{S.target.url(url)}?i={{{{item}}}}\"}}\n")


def main():
    with WorkDir("observability") as work:
        S.work = work
        with Broker(work.path, extra_args=["--plugins", "rabbitmq_prometheus"]
                    ) as broker, Target(work.path, status_plan=PLAN,
                                                    path_delay="/ok=1500") as target:
            S.broker, S.target = broker, target
            S.pport, S.wport = free_port(), free_port()
            S.worker = Proc([binary("salvo-worker"), "run", "--amqp-url", broker.amqp_url,
                             "--threads", "2", "--metrics-addr", f"127.0.0.1:{S.wport}",
                             "--log-format", "json"],
                            os.path.join(work.path, "worker.log"), name="salvo-worker")
            sched = os.path.join(work.path, "obs.yaml")
            schedule(sched, int(time.time()) + 4)
            S.producer = Proc([binary("salvo-producer"), "run", sched, "--amqp-url",
                               broker.amqp_url, "--state-dir", work.sub("state"),
                               "--heartbeat", "2s", "--metrics-addr", f"127.0.0.1:{S.pport}",
                               "--log-format", "json"],
                              os.path.join(work.path, "producer.log"), name="salvo-producer")
            S.worker.wait_log(r"consuming salvo\.jobs", timeout=30)
            S.producer.wait_log(r"connected to broker", timeout=30)
            run([test_end_to_end_counts,
                 test_json_job_events,
                 test_dashboard_queries_exported_metrics,
                 test_readme_lists_exactly_the_metrics,
                 test_health_follows_the_broker])


if __name__ == "__main__":
    main()
