"""e2e: the fleet helpers of the end-to-end fault scenarios (tests/integration/test_e2e_*.py).

Built on salvo_testlib (which it does not change): a Fleet is one private broker plus the
producers, workers and recording targets a scenario starts against it; schedules are written
as YAML from Python data; firing ids, producer and worker log lines are parsed here; and
check_delivery() holds the two promises every scenario asserts:

  zero jobs lost   every expected firing id reached the target at least once (its records are
                   keyed by the Idempotency-Key header);
  same-key dups    every request a scenario's path received carries an expected key that matches
                   the request itself (the fan-out index in the path and X-Salvo-Scheduled-At),
                   so a job run twice is only ever the same firing run again; runs of an
                   attempt already seen (redeliveries) are counted and printed as duplicates,
                   apart from retries (later attempts), and bounded where a scenario promises
                   "once".
"""

import calendar
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from salvo_testlib import (Broker, HarnessError, Proc, Target, WorkDir, binary,  # noqa: E402,F401
                           fail, run, wait_until)

# Log lines that mean a broken promise wherever they appear: a stale or double ack closes the
# channel with 406 PRECONDITION_FAILED ("unknown delivery tag"), and the sanitizers abort.
BAD_LOG = ("PRECONDITION_FAILED", "unknown delivery tag", "closed by broker: 406",
           "AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")


# ---- time and firing ids ---------------------------------------------------------------------

def id_stamp(due_s):
    """The instant as it appears in a firing id: 20261125T161829Z."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(due_s))


def iso(due_s):
    """The instant as a schedule's `at:` value: 2026-11-25T16:18:29Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due_s))


def fid(name, due_s, index=0):
    """The deterministic firing id: "<schedule>@<YYYYMMDDTHHMMSSZ>#<index>"."""
    return f"{name}@{id_stamp(due_s)}#{index}"


_FID = re.compile(r"^([A-Za-z0-9._-]+)@(\d{8}T\d{6}Z)#(\d+)$")


def parse_fid(key):
    """(schedule, due_s, index) of a firing id, or None when key is not one."""
    m = _FID.match(key or "")
    if not m:
        return None
    due = calendar.timegm(time.strptime(m.group(2), "%Y%m%dT%H%M%SZ"))
    return m.group(1), due, int(m.group(3))


def fan_ids(name, due_s, count):
    """The ids of one firing of a fan-out of count."""
    return [fid(name, due_s, i) for i in range(count)]


def next_second(ahead):
    """The first whole second at least `ahead` seconds from now."""
    return int(time.time() + ahead) + 1


def sleep_until(t):
    """Sleep until the realtime instant t (seconds, float)."""
    while True:
        left = t - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


def sleep_to_fraction(frac):
    """Sleep until the current second's fractional part is frac (e.g. 0.4): used to act well
    clear of the whole seconds jobs fire on."""
    now = time.time()
    t = int(now) + frac
    sleep_until(t if t > now else t + 1)


# ---- schedule files --------------------------------------------------------------------------

def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def yaml(obj, indent=0):
    """Block YAML for dicts and lists of dicts; lists of scalars in flow style; strings always
    double-quoted (so '{{index}}' and '*/5' stay strings)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict)):
                out.append(f"{pad}{k}:\n{yaml(v, indent + 2)}")
            elif isinstance(v, list):
                out.append(f"{pad}{k}: [{', '.join(_scalar(x) for x in v)}]")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}")
        return "\n".join(out)
    for item in obj:  # a list of dicts
        body = yaml(item, indent + 2)
        out.append(f"{pad}- {body[indent + 2:]}")
    return "\n".join(out)


def http_job(name, url, when, **extra):
    """A schedule entry: when is {"at": ...}, {"every": ...} or {"cron": ...}; extra keys
    (fan_out, retries, misfire, lead, max_lateness, http_timeout) are added as given."""
    job = {"name": name, **when}
    http = {"url": url}
    if "http_timeout" in extra:
        http["timeout"] = extra.pop("http_timeout")
    job.update(extra)
    job["http"] = http
    return job


# ---- log parsing -----------------------------------------------------------------------------

def log_text(proc):
    """The whole log of a Proc, also after it was stopped (Proc.log() needs its file open)."""
    with open(proc.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def log_times(proc, pattern):
    """Realtime seconds of every log line of proc matching the regex pattern."""
    rx = re.compile(pattern)
    return [line_time(line) for line in log_text(proc).splitlines() if rx.search(line)]


def line_time(line):
    """Realtime seconds (float) of a salvo log line's leading ISO-8601 timestamp."""
    stamp = line[:23]
    base = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return base + int(stamp[20:23]) / 1000.0


_STARTED = re.compile(r"job=(\S+) started schedule=\S+ attempt=(\d+)/")
_FINISHED = re.compile(r"job=(\S+) finished schedule=\S+ attempt=(\d+)/\d+ outcome=(\S+) "
                       r"status=(-?\d+) .*?duration_ms=(\d+)")
_FIRED = re.compile(r"fired job=(\S+)(?: \(\+(\d+) more\))? due=(\S+) jobs=(\d+) confirmed=(\d+) "
                    r"lateness_ms=(-?[\d.]+) .*?published=(\d+) reconnects=(\d+)(.*)$")


def worker_started(proc):
    """[(firing id, attempt)] of every job the worker started, in log order."""
    return [(m.group(1), int(m.group(2))) for m in _STARTED.finditer(log_text(proc))]


def worker_finished(proc):
    """[dict(id, attempt, outcome, status, duration_ms, t)] of every finished attempt."""
    out = []
    for line in log_text(proc).splitlines():
        m = _FINISHED.search(line)
        if m:
            out.append({"id": m.group(1), "attempt": int(m.group(2)), "outcome": m.group(3),
                        "status": int(m.group(4)), "duration_ms": int(m.group(5)),
                        "t": line_time(line)})
    return out


def producer_fired(proc):
    """[dict(job, more, due_s, jobs, confirmed, lateness_ms, reconnects, replay, t)] of every
    batch the producer logged as fired (job is the batch's first schedule name, in file order;
    more counts the batch's other firings)."""
    out = []
    for line in log_text(proc).splitlines():
        m = _FIRED.search(line)
        if m:
            due = calendar.timegm(time.strptime(m.group(3), "%Y-%m-%dT%H:%M:%SZ"))
            out.append({"job": m.group(1), "more": int(m.group(2) or 0), "due_s": due,
                        "jobs": int(m.group(4)), "confirmed": int(m.group(5)),
                        "lateness_ms": float(m.group(6)), "reconnects": int(m.group(8)),
                        "replay": "misfire-replay" in m.group(9), "t": line_time(line)})
    return out


def wait_fired(producer, check, what, timeout=30.0):
    """Wait until check(producer_fired(producer)) is true; returns the fired list."""
    return wait_until(f"{producer.name}: {what}",
                      lambda: (lambda f: f if check(f) else None)(producer_fired(producer)),
                      timeout=timeout, interval=0.1)


def fired_seconds(fired, job):
    """The due seconds of one schedule's fired batches, failing when one fired twice."""
    dues = [b["due_s"] for b in fired if b["job"] == job]
    if len(set(dues)) != len(dues):
        twice = sorted({d for d in dues if dues.count(d) > 1})
        fail(f"{job} fired {[iso(d) for d in twice]} more than once")
    return sorted(dues)


def assert_every_second(dues, job):
    """An `every: 1s` schedule fired every second from its first to its last firing: a gap is
    a firing the producer lost."""
    gaps = sorted(set(range(dues[0], dues[-1] + 1)) - set(dues))
    if gaps:
        fail(f"{job} never fired {[iso(g) for g in gaps][:5]} (between {iso(dues[0])} and "
             f"{iso(dues[-1])})")


def assert_clean(*procs, broker=None, broker_since=0, extra=()):
    """Fail when a process log (or the broker's node log from offset broker_since, see
    broker_log_size) shows a stale ack, a channel error or a sanitizer report."""
    texts = [(p.name, log_text(p)) for p in procs]
    if broker is not None:
        texts.append(("broker", broker_log(broker)[broker_since:]))
    for name, text in texts:
        for bad in BAD_LOG + tuple(extra):
            if bad in text:
                at = text.index(bad)
                fail(f"{name} log mentions {bad!r}: ...{text[max(0, at - 300):at + 200]}...")


def broker_log(broker):
    """The node's own log (rabbit@...log under its private log directory)."""
    path = os.path.join(broker.dir, "node", "log", f"{broker.nodename}.log")
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        fail(f"cannot read the broker log {path}: {e}")


def broker_log_size(broker):
    """Where the broker log ends now: pass it as broker_since to look only at what follows."""
    return len(broker_log(broker))


# ---- delivery: nothing lost, duplicates only with the same key -------------------------------

class Delivery:
    """What the target saw of a scenario: by_key {id: [records]}, lost ids, dups {id: extra
    runs of an attempt already seen (a redelivery run again)}, retries (later attempts)."""

    def __init__(self, by_key, lost, requests):
        self.by_key, self.lost, self.requests = by_key, lost, requests
        self.dups, self.retries = {}, 0
        for k, recs in by_key.items():
            attempts = [r.get("attempt") for r in recs]
            extra = len(attempts) - len(set(attempts))
            if extra:
                self.dups[k] = extra
            self.retries += len(set(attempts)) - 1 if attempts else 0

    def first(self, key):
        return self.by_key[key][0]


def _record_matches(rec, key, prefix):
    """Does the request itself (path index, scheduled-at header) belong to firing key?"""
    name, due, index = parse_fid(key)
    want_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(due))
    return rec["path"] == f"{prefix}/{index}" and rec.get("sched_at") == want_at


def deliveries(target, prefix, expected, allowed=()):
    """Delivery of the expected ids among the target's requests under path prefix (jobs of a
    scenario use url prefix + "/{{index}}"). Fails on a request whose key is not expected (nor
    in allowed: firings that may or may not have run) or does not match the request: a job run
    again under another key."""
    want = set(expected)
    by_key = {k: [] for k in want | set(allowed)}
    n = 0
    target.stats()  # flushes the target's record buffer
    for rec in target.records():
        if not rec["path"].startswith(prefix + "/"):
            continue
        n += 1
        key = rec.get("idem")
        if key not in by_key:
            fail(f"{rec['path']} was called with Idempotency-Key {key!r}, which is no firing "
                 f"of this scenario")
        if not _record_matches(rec, key, prefix):
            fail(f"request {rec['path']} scheduled {rec.get('sched_at')} carried key {key}: "
                 f"a job ran under another job's key")
        by_key[key].append(rec)
    lost = sorted(k for k in want if not by_key[k])
    return Delivery(by_key, lost, n)


def wait_delivered(target, prefix, expected, timeout=60.0, allowed=()):
    """Wait until every expected id reached the target; fails naming the lost ones."""
    deadline = time.monotonic() + timeout
    while True:
        d = deliveries(target, prefix, expected, allowed)
        if not d.lost:
            return d
        if time.monotonic() >= deadline:
            fail(f"{len(d.lost)} of {len(set(expected))} jobs never reached the target within "
                 f"{timeout:.0f}s (lost), e.g. {d.lost[:5]}")
        time.sleep(0.2)


def check_delivery(target, prefix, expected, max_dups=None, settle=0.0, allowed=()):
    """The promise of every scenario, after an optional settle time for late duplicates:
    returns the Delivery; prints the duplicate count; fails on a lost job, a foreign key or
    more than max_dups duplicates (None: any number). allowed: see deliveries()."""
    if settle:
        time.sleep(settle)
    d = deliveries(target, prefix, expected, allowed)
    if d.lost:
        fail(f"{len(d.lost)} of {len(set(expected))} jobs lost, e.g. {d.lost[:5]}")
    extra = sum(d.dups.values())
    shown = ", ".join(f"{k} +{n}" for k, n in sorted(d.dups.items())[:5])
    print(f"  {len(set(expected))} jobs, {d.requests} requests, {d.retries} retries; "
          f"{extra} duplicate runs (same key, same attempt) of {len(d.dups)} jobs"
          f"{': ' + shown if shown else ''}")
    if max_dups is not None and extra > max_dups:
        fail(f"{extra} extra runs (duplicates) where at most {max_dups} may happen: {shown}")
    return d


# ---- the fleet -------------------------------------------------------------------------------

class Fleet:
    """One private broker and the salvo processes and targets a test file runs against it.

    Every process is a salvo_testlib Proc (stopped on every exit path). Workers and producers
    are numbered in start order; their logs are WORKDIR/worker-N.log and producer-N.log."""

    def __init__(self, work, broker_args=()):
        self.work = work
        self.broker = Broker(work.path, extra_args=broker_args)
        self.n = 0
        self.live = []  # processes and targets of the running scenario

    def scenario(self, fn):
        """Wrap a test function so that whatever it started is stopped when it returns or
        fails: a failed scenario must not leave workers consuming the next one's jobs."""
        def wrapped():
            try:
                fn()
            finally:
                while self.live:
                    obj = self.live.pop()
                    proc = obj.proc if isinstance(obj, Target) else obj
                    if proc.alive():
                        proc.send_signal(signal.SIGCONT)
                        proc.stop(signal.SIGKILL, timeout=5)
        wrapped.__name__ = fn.__name__
        return wrapped

    def _next(self, kind):
        self.n += 1
        return f"{kind}-{self.n}"

    def target(self, **kw):
        """A recording target (salvo_testlib.Target keywords: delay_ms, status_plan, ...)."""
        t = Target(self.work.path, **kw)
        self.live.append(t)
        return t

    def schedule(self, jobs, defaults=None, name=None):
        """Write a schedule file from entries (see http_job); returns its path."""
        doc = {}
        if defaults:
            doc["defaults"] = defaults
        doc["jobs"] = jobs
        path = os.path.join(self.work.path, f"{name or self._next('schedule')}.yaml")
        with open(path, "w") as f:
            f.write(f"# written by {os.path.basename(sys.argv[0])}\n{yaml(doc)}\n")
        return path

    def producer(self, schedule, state=None, extra=(), wait=True):
        """salvo-producer run SCHEDULE against the broker; state is its --state-dir (a fresh
        one by default). Waits for its broker connection unless wait is False."""
        name = self._next("producer")
        state = state or self.work.sub(f"state-{name}")
        p = Proc([binary("salvo-producer"), "run", schedule, "--amqp-url", self.broker.amqp_url,
                  "--state-dir", state, *extra], os.path.join(self.work.path, f"{name}.log"),
                 name=name)
        p.state_dir = state
        self.live.append(p)
        if wait:
            p.wait_log(r"connected to broker", timeout=30)
        return p

    def worker(self, extra=(), threads=2, wait=True):
        """salvo-worker run with --threads; waits until it consumes unless wait is False."""
        name = self._next("worker")
        w = Proc([binary("salvo-worker"), "run", "--amqp-url", self.broker.amqp_url,
                  "--threads", threads, *extra], os.path.join(self.work.path, f"{name}.log"),
                 name=name)
        self.live.append(w)
        if wait:
            w.wait_log(r"consuming salvo\.jobs", timeout=30)
        return w

    def connection_of(self, proc, kind="salvo-worker"):
        """The management name of proc's broker connection (named kind@host:pid), or None."""
        for c in self.broker.connections():
            name = (c.get("client_properties") or {}).get("connection_name", "")
            if name.startswith(kind + "@") and name.endswith(f":{proc.pid}"):
                return c["name"]
        return None

    def queue_counts(self, queue="salvo.jobs"):
        """(ready, unacked) of a queue right now, asked of the queue itself through rabbitmqctl:
        the management API's figures can be a second old, and a stale 0/0 read just after a
        burst would pass for "settled" while its jobs still run."""
        out = self.broker.ctl("list_queues", "-q", "--no-table-headers", "name",
                              "messages_ready", "messages_unacknowledged")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == queue:
                return int(parts[1]), int(parts[2])
        fail(f"rabbitmqctl list_queues does not show {queue}:\n{out}")

    def wait_settled(self, timeout=60.0, queue="salvo.jobs"):
        """Wait until the queue holds nothing ready and nothing unacked: every job delivered
        so far was acked (call it once the jobs were published)."""
        last = []

        def settled():
            last[:] = [self.queue_counts(queue)]
            return last[0] == (0, 0)
        try:
            wait_until(f"{queue} settled", settled, timeout=timeout, interval=0.5)
        except HarnessError:
            fail(f"{queue} did not settle within {timeout:.0f}s: {last[0][0]} ready, "
                 f"{last[0][1]} unacked")

    def purge(self, queue):
        """Drop every ready message of a queue (management API)."""
        self.broker.mgmt_delete(f"/api/queues/%2F/{self.broker.q(queue)}/contents")

    def queue_messages(self, queue):
        """Every message of a queue, requeued (a get counts as a delivery)."""
        info = self.broker.queue_info(queue)
        n = info.get("messages", 0) if info else 0
        return self.broker.get_messages(queue, count=n + 20) if n else []


def stop_ok(proc, timeout=30.0, sig=signal.SIGTERM):
    """Stop proc with sig and fail unless it exits 0 within timeout (it is killed then)."""
    t0 = time.monotonic()
    rc = proc.stop(sig, timeout=timeout)
    took = time.monotonic() - t0
    if rc != 0:
        fail(f"{proc.name} exited {rc} after {took:.1f}s on signal {sig}; log tail:\n"
             f"{log_text(proc)[-2000:]}")
    return took



def main(name, tests, state, broker_args=()):
    """Run a test file's scenarios in order against one fleet (one broker), set as
    state.fleet: each scenario is wrapped by Fleet.scenario; command-line arguments pick
    scenarios by substring (a quick rerun by hand). Prints "N passed, M failed" and exits
    non-zero on a failure."""
    picked = [t for t in tests if not sys.argv[1:] or any(a in t.__name__ for a in sys.argv[1:])]
    if not picked:
        fail(f"no scenario matches {sys.argv[1:]}")
    with WorkDir(name) as work:
        state.fleet = Fleet(work, broker_args)
        with state.fleet.broker:
            run([state.fleet.scenario(t) for t in picked])
