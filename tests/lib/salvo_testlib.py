"""salvo_testlib: the harness every integration test, the benchmark and the quick start share.

Python 3 standard library only. Pieces:
  Broker(tmpdir)   a private RabbitMQ node (tests/lib/broker.sh) plus management-API helpers
  Target(tmpdir)   the recording HTTP target (SALVO_BUILD_DIR/tests/target/salvo-target)
  Proc(argv, log)  any binary with its output in a log file, signals, wait, log text
  WorkDir(name)    a temporary directory kept (and printed) when the test fails
  run(tests)       a tiny runner: prints each result and "N passed, M failed", exits non-zero
  free_port(), fail(msg), binary(rel), build_dir(), source_dir()
  TEST_KEYS, sign_headers(...)  every child gets the test signing key (SALVO_SIGNING_KEYS, set in
                   os.environ at import unless a key is configured already), so producer,
                   workers and salvo-testpub sign and verify as in production

Nothing skips: a missing broker, binary or build directory raises HarnessError, so the test
fails loudly. Every process started here is stopped on every exit path: context managers,
an atexit hook, SIGTERM/SIGHUP turned into SystemExit, and for brokers a detached watcher that
kills the node if this process dies without cleaning up (e.g. SIGKILL on a ctest timeout).
"""

import atexit
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["HarnessError", "fail", "source_dir", "build_dir", "binary", "free_port",
           "Proc", "Target", "Broker", "WorkDir", "run", "wait_until", "TEST_KEYS",
           "sign_headers"]

# ---- job signing ---------------------------------------------------------------------------
# A fixed key for tests only (never use it anywhere else). Setting it in os.environ at import
# gives it to every child process: Proc and subprocess both inherit the environment.
TEST_KEY_ID = "test-k1"
TEST_KEY_SECRET = bytes(range(1, 33))
TEST_KEYS = f"{TEST_KEY_ID}:{base64.b64encode(TEST_KEY_SECRET).decode()}"
if not os.environ.get("SALVO_SIGNING_KEY_FILE") and not os.environ.get("SALVO_SIGNING_KEYS"):
    os.environ["SALVO_SIGNING_KEYS"] = TEST_KEYS


def sign_headers(message_id, due_ms, body, key_id=TEST_KEY_ID, secret=TEST_KEY_SECRET):
    """The headers a signed job carries: x-salvo-due-ms, x-salvo-kid and x-salvo-sig, the
    HMAC-SHA256 of the canonical string of common/sign.h (written again here, independently,
    so a test also checks the C side against this reading of the format)."""
    canon = f"salvo-v1\n{key_id}\n{message_id}\n{int(due_ms)}\n".encode() + bytes(body)
    sig = hmac.new(secret, canon, hashlib.sha256).hexdigest()
    return {"x-salvo-due-ms": int(due_ms), "x-salvo-kid": key_id, "x-salvo-sig": sig}


class HarnessError(AssertionError):
    """A test precondition or expectation failed; the message says which and why."""


def fail(msg):
    """Raise HarnessError(msg): the one way tests and the harness report a failure."""
    raise HarnessError(msg)


def source_dir():
    """The repository root: SALVO_SOURCE_DIR, else two levels above this file."""
    env = os.environ.get("SALVO_SOURCE_DIR")
    return env or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    """SALVO_BUILD_DIR (set by ctest); fails when unset or missing."""
    d = os.environ.get("SALVO_BUILD_DIR")
    if not d:
        fail("SALVO_BUILD_DIR is not set: run through ctest, or export it to your build tree")
    if not os.path.isdir(d):
        fail(f"SALVO_BUILD_DIR={d} is not a directory")
    return d


def binary(rel):
    """Absolute path of a built program, e.g. binary("tests/target/salvo-target")."""
    path = os.path.join(build_dir(), rel)
    if not os.access(path, os.X_OK):
        fail(f"{path} is missing or not executable: build it first (cmake --build {build_dir()})")
    return path


def free_port():
    """A TCP port free on 127.0.0.1 right now (the kernel's choice; racy by nature)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_worker_clean(worker, bad):
    """SIGTERM a salvo-worker Proc; fail unless it exits 0, logs its final counters, and its log
    holds none of the strings in bad."""
    rc = worker.stop()
    if rc != 0:
        fail(f"worker exited {rc} on SIGTERM")
    with open(worker.log_path, errors="replace") as f:
        log = f.read()
    if "stopped: received" not in log:
        fail("the worker did not log its final counters")
    for b in bad:
        if b in log:
            fail(f"worker log mentions {b}")


def wait_until(what, check, timeout=30.0, interval=0.1):
    """Call check() until it returns a truthy value and return that; fail after timeout
    seconds with `what` and the last value in the message."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# ---- cleanup on every exit path --------------------------------------------------------------

_live = []  # objects with a _cleanup() method, in start order


def _register(obj):
    _live.append(obj)


def _unregister(obj):
    if obj in _live:
        _live.remove(obj)


def _cleanup_all():
    while _live:
        obj = _live.pop()
        try:
            obj._cleanup()
        except Exception as e:  # keep cleaning the rest
            print(f"salvo_testlib: cleanup of {obj!r} failed: {e}", file=sys.stderr)


def _exit_on_signal(signum, _frame):
    # SystemExit unwinds the with-blocks (their __exit__ stops processes), then atexit runs.
    raise SystemExit(128 + signum)


atexit.register(_cleanup_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_sig) in (signal.SIG_DFL, None):
        signal.signal(_sig, _exit_on_signal)


class WorkDir:
    """A fresh directory under the system temp dir, traversable by other users (the broker runs
    as the rabbitmq user when tests run as root). Removed on success; kept and printed when the
    with-block raises, or always when SALVO_KEEP_TMP=1, so logs can be read after a failure."""

    def __init__(self, name="test"):
        self.path = tempfile.mkdtemp(prefix=f"salvo-{name}-")
        os.chmod(self.path, 0o755)

    def sub(self, name):
        """Path of a new subdirectory (created, mode 0755)."""
        p = os.path.join(self.path, name)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, 0o755)
        return p

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        ok = exc_type is None or (exc_type is SystemExit and exc.code in (0, None))
        if not ok or os.environ.get("SALVO_KEEP_TMP") == "1":
            print(f"salvo_testlib: kept {self.path} for inspection", file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


# ---- processes -------------------------------------------------------------------------------

_SETPRIV = shutil.which("setpriv")

class Proc:
    """A child process whose stdout and stderr go to one log file.

    env is merged over os.environ (a value of None removes a variable). The child gets its own
    session so a terminal Ctrl-C reaches only this harness, which then stops it in order."""

    def __init__(self, argv, log_path, env=None, cwd=None, name=None):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        self.log_path = log_path
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        self._log = open(log_path, "ab")
        # setpriv --pdeathsig: the kernel kills the child if this process dies without cleaning
        # up (SIGKILL, e.g. a ctest timeout); it then execs argv unchanged.
        argv = ["setpriv", "--pdeathsig", "KILL", "--", *self.argv] if _SETPRIV else self.argv
        try:
            self.p = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                                      start_new_session=True)
        except OSError as e:
            self._log.close()
            fail(f"cannot start {self.argv[0]}: {e}")
        _register(self)

    @property
    def pid(self):
        return self.p.pid

    @property
    def returncode(self):
        return self.p.poll()

    def alive(self):
        return self.p.poll() is None

    def send_signal(self, sig):
        """Send a signal (ignored when the process already exited)."""
        if self.alive():
            self.p.send_signal(sig)

    def wait(self, timeout=30.0):
        """Wait for exit and return the exit status; fails on timeout (process left running)."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"{self.name} (pid {self.pid}) still running after {timeout:.1f}s;"
                 f" log tail:\n{self.log()[-2000:]}")

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send sig and wait; SIGKILL after timeout. Returns the exit status."""
        self.send_signal(sig)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self._close()
        return rc

    def log(self):
        """The log text so far (undecodable bytes replaced)."""
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=30.0):
        """Wait until the log matches the regex pattern; returns the re.Match. Fails on timeout
        or when the process exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if not self.alive():
                fail(f"{self.name} exited ({self.returncode}) before logging /{pattern}/;"
                     f" log tail:\n{self.log()[-2000:]}")
            if time.monotonic() >= deadline:
                fail(f"{self.name} did not log /{pattern}/ within {timeout:.1f}s;"
                     f" log tail:\n{self.log()[-2000:]}")
            time.sleep(0.05)

    def _close(self):
        _unregister(self)
        if not self._log.closed:
            self._log.close()

    def _cleanup(self):
        if self.alive():
            self.stop(signal.SIGKILL, timeout=5)
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.stop()
        self._close()
        return False

    def __repr__(self):
        return f"Proc({self.name}, pid {self.p.pid})"


def _http(method, url, body=None, headers=None, timeout=10.0):
    """One HTTP request; returns (status, headers, body bytes). Error statuses are returned,
    not raised; connection errors raise."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers or {}), e.read()


# ---- the recording target --------------------------------------------------------------------

class Target:
    """The recording HTTP target on 127.0.0.1 (see tests/target/tgt_record.h for the records).

    status_plan / path_delay use salvo-target's syntax, e.g. "/flaky=500,200;default=200".
    threads > 1 serves on that many threads (salvo-target --threads)."""

    _count = 0

    def __init__(self, tmpdir, delay_ms=0, status_plan=None, path_delay=None, port=0, threads=1):
        Target._count += 1
        n = Target._count
        self.record_path = os.path.join(tmpdir, f"target-{n}.jsonl")
        argv = [binary("tests/target/salvo-target"), "--port", port, "--record",
                self.record_path, "--delay-ms", delay_ms]
        if status_plan:
            argv += ["--status-plan", status_plan]
        if path_delay:
            argv += ["--path-delay", path_delay]
        if threads > 1:
            argv += ["--threads", threads]
        self.proc = Proc(argv, os.path.join(tmpdir, f"target-{n}.log"), name=f"salvo-target-{n}")
        self.port = int(self.proc.wait_log(r"listening (\d+)", timeout=10).group(1))
        _register(self)

    def url(self, path="/"):
        """http://127.0.0.1:PORT/path"""
        return f"http://127.0.0.1:{self.port}{path if path.startswith('/') else '/' + path}"

    def stats(self):
        """GET /__stats as a dict (also flushes the record file)."""
        status, _, body = _http("GET", self.url("/__stats"))
        if status != 200:
            fail(f"target /__stats answered {status}")
        return json.loads(body)

    def records(self):
        """Every complete record line so far, as dicts, in arrival order."""
        if not os.path.exists(self.record_path):
            return []
        with open(self.record_path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")[:-1]  # a last line without "\n" is still being written
        return [json.loads(line) for line in lines if line]

    def wait_count(self, n, timeout=30.0):
        """Wait until the target has answered at least n requests; returns records()."""
        wait_until(f"{n} requests at the target", lambda: self.stats()["requests"] >= n,
                   timeout=timeout)
        return self.records()

    def stop(self):
        """SIGTERM; the target must flush and exit 0."""
        rc = self.proc.stop(signal.SIGTERM, timeout=10)
        _unregister(self)
        if rc != 0:
            fail(f"salvo-target exited {rc}; log:\n{self.proc.log()[-2000:]}")

    def _cleanup(self):
        self.proc._cleanup()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if self.proc.alive():
            if exc_type is None:
                self.stop()
            else:
                self.proc.stop()
        _unregister(self)
        return False

    def __repr__(self):
        return f"Target(port {self.port})"


# ---- the private broker ----------------------------------------------------------------------

class Broker:
    """A private RabbitMQ node under tmpdir/NAME via tests/lib/broker.sh; vhost "/", guest/guest.

    start() runs on construction. Attributes: amqp_url, amqp_port, mgmt_port, dist_port,
    nodename, dir, env (broker.env as a dict), start_seconds. extra_args go to `broker.sh start`
    (e.g. ["--tls", certdir]). Stop: graceful (rabbitmqctl stop) or, by default in __exit__,
    a kill of the node's process group, which is much faster and fine for throwaway data."""

    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "broker.sh")

    def __init__(self, tmpdir, name="broker", extra_args=(), graceful_stop=False):
        self.dir = os.path.join(tmpdir, name)
        self.extra_args = [str(a) for a in extra_args]
        self.graceful_stop = graceful_stop
        self.env = {}
        os.chmod(tmpdir, os.stat(tmpdir).st_mode | 0o755)
        self.start()

    def _script(self, *args, timeout=120.0):
        try:
            return subprocess.run(["bash", self.SCRIPT, *args], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as e:
            fail(f"broker.sh {' '.join(args[:2])} timed out after {timeout}s:\n{e.stderr}")

    def start(self):
        """Start (or restart, same ports) the node; fails with broker.sh's output on error."""
        t0 = time.monotonic()
        _register(self)
        r = self._script("start", self.dir, "--owner-pid", str(os.getpid()), *self.extra_args)
        if r.returncode != 0:
            fail(f"the RabbitMQ node did not start (broker.sh exit {r.returncode}):\n"
                 f"{r.stdout}{r.stderr}")
        self.start_seconds = time.monotonic() - t0
        with open(os.path.join(self.dir, "broker.env")) as f:
            self.env = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        self.nodename = self.env["NODENAME"]
        self.amqp_port = int(self.env["AMQP_PORT"])
        self.mgmt_port = int(self.env["MGMT_PORT"])
        self.dist_port = int(self.env["DIST_PORT"])
        self.amqp_url = self.env["AMQP_URL"]
        self.mgmt_url = self.env["MGMT_URL"]
        return self

    def stop(self, graceful=None):
        """Stop the node: graceful (rabbitmqctl stop, then kill) or kill. Data stays."""
        graceful = self.graceful_stop if graceful is None else graceful
        r = self._script("stop", self.dir, *([] if graceful else ["--kill"]))
        _unregister(self)
        if r.returncode != 0:
            fail(f"broker.sh stop failed:\n{r.stdout}{r.stderr}")

    def restart(self):
        """Graceful stop, then start with the same name, ports and data."""
        self.stop(graceful=True)
        return self.start()

    def beam_pids(self):
        """PIDs of beam processes of this node still alive (found by the node's private HOME)."""
        marker = f"-home {self.dir}/node/home".encode()
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ")
            except OSError:
                continue
            if b"beam" in cmd.split(b" ")[0] and marker in cmd:
                pids.append(int(pid))
        return pids

    # -- rabbitmqctl

    def ctl(self, *args, timeout=60.0, check=True):
        """Run rabbitmqctl against this node; returns stdout (fails on a non-zero exit)."""
        r = self._script("ctl", self.dir, *[str(a) for a in args], timeout=timeout)
        if check and r.returncode != 0:
            fail(f"rabbitmqctl {' '.join(map(str, args))} exited {r.returncode}:\n"
                 f"{r.stdout}{r.stderr}")
        return r.stdout

    # -- management API

    def mgmt(self, method, path, body=None, headers=None, expect=(200, 201, 204), timeout=10.0):
        """Call the management API (path like "/api/queues/%2F/q") as guest; returns the parsed
        JSON (None for an empty body). Fails when the status is not in expect."""
        auth = base64.b64encode(b"guest:guest").decode()
        hdrs = {"Authorization": f"Basic {auth}", **(headers or {})}
        url = f"http://127.0.0.1:{self.mgmt_port}{path}"
        status, _, data = _http(method, url, body, hdrs, timeout)
        if status not in expect:
            fail(f"management API {method} {path} answered {status}: {data[:500]!r}")
        return json.loads(data) if data.strip() else None

    def mgmt_get(self, path, **kw):
        return self.mgmt("GET", path, **kw)

    def mgmt_put(self, path, body, **kw):
        return self.mgmt("PUT", path, body, **kw)

    def mgmt_post(self, path, body, **kw):
        return self.mgmt("POST", path, body, **kw)

    def mgmt_delete(self, path, **kw):
        return self.mgmt("DELETE", path, **kw)

    @staticmethod
    def q(name):
        """URL-encode one path segment (vhost "/" is %2F)."""
        return urllib.parse.quote(name, safe="")

    def declare_queue(self, name, durable=True, arguments=None):
        """PUT a queue in vhost "/" (e.g. arguments={"x-queue-type": "quorum"})."""
        self.mgmt_put(f"/api/queues/%2F/{self.q(name)}",
                      {"durable": durable, "auto_delete": False, "arguments": arguments or {}})

    def queue_info(self, name):
        """The queue's management record, or None when it does not exist."""
        info = self.mgmt_get(f"/api/queues/%2F/{self.q(name)}", expect=(200, 404))
        return None if info is None or "error" in info else info

    def wait_queue(self, name, predicate, timeout=30.0):
        """Poll queue_info(name) until predicate(info) is true (info is None while the queue is
        missing); returns the info. Stats refresh every second (broker.sh --stats-ms)."""
        return wait_until(f"queue {name} condition",
                          lambda: (lambda i: i if predicate(i) else None)(self.queue_info(name)),
                          timeout=timeout, interval=0.25)

    def connections(self):
        """Open client connections (management records)."""
        return self.mgmt_get("/api/connections")

    def close_connection(self, name, reason="closed by test"):
        """Force-close a client connection by its management name (X-Reason is sent along)."""
        self.mgmt_delete(f"/api/connections/{self.q(name)}", headers={"X-Reason": reason})

    def publish_raw(self, exchange, routing_key, body, properties=None, headers=None,
                    sign=True, due_ms=0):
        """Publish body bytes through the management API; returns True when routed.
        exchange "" is the default exchange. Unless sign is False, the message is published as
        a job from an allowed publisher: user_id guest (the management login) and the test
        key's signature over message_id, due_ms and body, so a worker gets past its trust gate
        and the bytes reach its decoder."""
        props = dict(properties or {})
        if sign:
            props.setdefault("user_id", "guest")
            headers = {**sign_headers(props.get("message_id", ""), due_ms, body),
                       **(headers or {})}
        if headers is not None:
            props["headers"] = headers
        ex = self.q(exchange or "amq.default")
        r = self.mgmt_post(f"/api/exchanges/%2F/{ex}/publish",
                           {"properties": props, "routing_key": routing_key,
                            "payload": base64.b64encode(body).decode(),
                            "payload_encoding": "base64"})
        return bool(r and r.get("routed"))

    def get_messages(self, queue, count=1, requeue=True):
        """Fetch up to count messages (requeued by default; note a get counts as a delivery).
        Each dict gains "body": the payload as bytes."""
        msgs = self.mgmt_post(f"/api/queues/%2F/{self.q(queue)}/get",
                              {"count": count, "encoding": "base64",
                               "ackmode": "ack_requeue_true" if requeue
                               else "ack_requeue_false"})
        for m in msgs:
            if m.get("payload_encoding") == "base64":
                m["body"] = base64.b64decode(m["payload"])
            else:
                m["body"] = m["payload"].encode()
        return msgs

    def _cleanup(self):
        self._script("stop", self.dir, "--kill", timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self in _live:
            self.stop()
        return False

    def __repr__(self):
        return f"Broker({self.env.get('NODENAME', self.dir)})"


# ---- a minimal runner ------------------------------------------------------------------------

def run(tests):
    """Run each test function in order, print PASS/FAIL with timing and a traceback for each
    failure, then "N passed, M failed"; exit 0 only when all passed. KeyboardInterrupt stops the
    run (cleanup still happens)."""
    passed, failed = 0, 0
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
        except KeyboardInterrupt:
            print(f"INTERRUPTED {t.__name__}", flush=True)
            failed += 1
            break
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
            traceback.print_exc()
        else:
            passed += 1
            print(f"PASS {t.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(0 if failed == 0 else 1)
