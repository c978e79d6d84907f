"""Integration: the fleet over TLS, and what it must never reveal or call.

One private node with a TLS listener and a throw-away CA made by openssl (tests/lib/mkcerts.sh)
for this run. A producer and a worker log in over amqps:// as a user with a password, given
only in a file (SALVO_AMQP_URL_FILE) or the environment, with a signing key in the environment; one job carries an
Authorization header whose token comes from the producer's environment, one points at the
cloud metadata address. Checks: jobs run over TLS; the metadata job is dead-lettered with its
reason and never reaches the network; a worker given a second CA, or facing a certificate for
another name, fails to connect and says why; no log line of producer or worker, and no result
record, holds the password, the key material or the token. HTTPS targets are verified: one
with a certificate from the CA given by --http-ca is called, one from another CA is not."""

import base64
import http.server
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from salvo_testlib import Broker, Proc, Target, WorkDir, binary, fail, run, wait_until  # noqa
from e2e import http_job, yaml  # noqa: E402

MKCERTS = os.path.join(os.path.dirname(Broker.SCRIPT), "mkcerts.sh")
USER = "salvo-sec"
PASSWORD = "pw-" + secrets.token_hex(12)
TOKEN = "tok-" + secrets.token_hex(16)
KEY = secrets.token_bytes(32)
KEY_B64 = base64.b64encode(KEY).decode()
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


class S:
    work = broker = target = certs = other_ca = producer = worker = None
    https_ok = https_bad = None  # HTTPS targets: this run's CA, and the second CA
    amqps = None  # the fleet's URL (password included): handed over in the environment only


def env_fleet(ca):
    return {"SALVO_AMQP_URL": S.amqps, "SALVO_TLS_CA": ca,
            "SALVO_SIGNING_KEYS": f"k1:{KEY_B64}", "SALVO_TEST_TOKEN": TOKEN}


def start_worker(name, ca, extra=()):
    # --results all: the secrecy check greps the records of the successful (authed) jobs too.
    return Proc([binary("salvo-worker"), "run", "--threads", 1, "--log-level", "debug",
                 "--results", "all", *extra],
                os.path.join(S.work.path, f"{name}.log"), env=env_fleet(ca), name=name)


class HttpsTarget:
    """A minimal HTTPS server on 127.0.0.1 with the given certificate; counts the requests that
    got through the handshake."""

    def __init__(self, certdir):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client refusing our certificate is what some tests want

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certdir, "server_certificate.pem"),
                            os.path.join(certdir, "server_key.pem"))
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_fleet_runs_over_tls():
    due = int(time.time()) + 4
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    authed = http_job("authed", S.target.url("/authed"), {"every": "1s"})
    authed["http"]["headers"] = {"Authorization": "Bearer ${SALVO_TEST_TOKEN}"}
    meta = http_job("metadata", METADATA_URL, {"at": iso})
    ok = http_job("https-ok", f"https://localhost:{S.https_ok.port}/ok", {"every": "1s"})
    bad = http_job("https-bad", f"https://localhost:{S.https_bad.port}/bad", {"at": iso})
    path = os.path.join(S.work.path, "schedule.yaml")
    with open(path, "w") as f:
        f.write(yaml({"jobs": [authed, meta, ok, bad]}) + "\n")
    # The producer reads the URL from a file (as from a Docker or Kubernetes secret).
    url_file = os.path.join(S.work.path, "amqp-url")
    with open(os.open(url_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(S.amqps + "\n")
    S.producer = Proc([binary("salvo-producer"), "run", path, "--log-level", "debug",
                       "--state-dir", S.work.sub("state")],
                      os.path.join(S.work.path, "producer.log"),
                      env={**env_fleet(os.path.join(S.certs, "ca_certificate.pem")),
                           "SALVO_AMQP_URL": None, "SALVO_AMQP_URL_FILE": url_file},
                      name="producer")
    S.worker = start_worker("worker", os.path.join(S.certs, "ca_certificate.pem"),
                            ["--http-ca", os.path.join(S.certs, "ca_certificate.pem")])
    S.producer.wait_log(r"connected to broker amqps://", timeout=30)
    S.worker.wait_log(r"consuming salvo\.jobs", timeout=30)
    recs = wait_until("3 authed requests", lambda: (lambda r: r if len(r) >= 3 else None)(
        [r for r in S.target.records() if r.get("path") == "/authed"]), timeout=30)
    # The target saw the token: the header was sent, so its absence elsewhere means something.
    if TOKEN not in json.dumps(recs):
        fail(f"the target never saw the Authorization token: {recs[0]}")
    conns = [c for c in S.broker.connections() if c.get("user") == USER]
    if len(conns) < 2 or not all(c.get("ssl") for c in conns):
        fail(f"producer and worker are not both on TLS connections: {conns}")
    print(f"  {len(recs)} jobs ran over TLS ({conns[0].get('ssl_protocol')})")


def result_of(id_prefix):
    """The first result record in salvo.results whose firing id starts with id_prefix, or None."""
    for m in S.broker.get_messages("salvo.results", count=200):
        r = json.loads(m["body"])
        if r.get("id", "").startswith(id_prefix):
            return r
    return None


def test_metadata_target_dead_lettered():
    def dead():
        for m in S.broker.get_messages("salvo.dead", count=50):
            h = m.get("properties", {}).get("headers", {})
            if (m.get("properties", {}).get("message_id") or "").startswith("metadata@"):
                return h
        return None
    h = wait_until("the metadata job in salvo.dead", dead, timeout=30)
    reason = h.get("x-salvo-reason", "")
    want = "request-invalid: target refused: address 169.254.169.254 is link-local"
    if not reason.startswith(want):
        fail(f"dead-letter reason {reason!r}, want {want!r}...")
    log = S.worker.log()
    # The worker's only key is this run's k1 and it dead-letters unsigned jobs, so jobs that ran
    # were signed with it: the secrecy check below covers a key really in use.
    if "bad-signature" in log or os.environ.get("SALVO_ALLOW_UNSIGNED"):
        fail("jobs were not verified with this run's key")
    # Refused while the request was built: no transfer ever started, so no packet went out.
    r = wait_until("the metadata job's result record", lambda: result_of("metadata@"), timeout=20)
    if r.get("outcome") != "dead" or r.get("started") is not None:
        fail(f"the metadata job started or did not die: {r}")
    print(f"  dead-lettered: {reason}")


def test_https_targets_verified():
    """--http-ca: the target with a certificate from that CA is called; one from another CA is
    refused in the handshake (no request gets through) and the attempt says why."""
    wait_until("2 requests to the HTTPS target", lambda: len(S.https_ok.hits) >= 2, timeout=20)
    r = wait_until("a result for the job to the wrong-CA target", lambda: result_of("https-bad@"),
                   timeout=20)
    if r.get("outcome") not in ("retry", "dead") or "certificate" not in r.get("error", ""):
        fail(f"the wrong-CA HTTPS target was not refused for its certificate: {r}")
    if S.https_bad.hits:
        fail(f"a request got through to the wrong-CA target: {S.https_bad.hits}")
    print(f"  {len(S.https_ok.hits)} calls to the --http-ca target; wrong CA: {r['error']}")


def test_wrong_ca_refused():
    # The URL with its password on argv this once: the worker must warn, and still never print it.
    w = Proc([binary("salvo-worker"), "run", "--threads", 1, "--amqp-url", S.amqps],
             os.path.join(S.work.path, "worker-wrong-ca.log"),
             env={**env_fleet(os.path.join(S.other_ca, "ca_certificate.pem")),
                  "SALVO_AMQP_URL": None}, name="worker-wrong-ca")
    try:
        m = w.wait_log(r"broker connection failed \(([^\n]*)\)", timeout=20)
        w.wait_log(r"carries a password on the command line", timeout=5)
        time.sleep(1.0)
        log = w.log()
    finally:
        w.stop()
    if "consuming" in log:
        fail(f"a worker with the wrong CA consumed:\n{log}")
    if "certificate" not in m.group(1).lower() and "ssl" not in m.group(1).lower():
        fail(f"the failure does not say it is the certificate: {m.group(0)}")
    if PASSWORD in log:
        fail("the wrong-CA worker printed the password")
    print(f"  refused: {m.group(0)}")


def test_tls_options_checked_at_start():
    """A missing CA file, or a client certificate without its key, is a configuration error
    (exit 2, the option named) rather than a connection that fails forever."""
    ca = os.path.join(S.certs, "ca_certificate.pem")
    cert = os.path.join(S.certs, "client_certificate.pem")
    cases = [(["salvo-worker", "run"], {"SALVO_TLS_CA": "/nonexistent/ca.pem"}, "--tls-ca"),
             (["salvo-worker", "run"], {"SALVO_TLS_CA": ca, "SALVO_TLS_CERT": cert}, "--tls-key"),
             (["salvo-producer", "run", "x.yaml"], {"SALVO_TLS_CA": ca, "SALVO_TLS_KEY": cert},
              "--tls-cert")]
    for argv, env, want in cases:
        full = {**os.environ, **env_fleet(ca), **env}
        r = subprocess.run([binary(argv[0]), *argv[1:]], env=full, capture_output=True,
                           text=True, timeout=20)
        if r.returncode != 2 or want not in r.stderr:
            fail(f"{argv[0]} with {env}: exit {r.returncode}, stderr {r.stderr!r}")
    print(f"  {len(cases)} bad TLS settings refused at start")


def serve_tls(ctx, sock, stop):
    """Accept TLS handshakes until stop is set (the client is expected to abort them)."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(8)
        except (ssl.SSLError, OSError):
            pass


def test_hostname_mismatch_refused():
    # A certificate from the right CA, for another name, served on 127.0.0.1.
    d = S.certs
    key, csr, crt = (os.path.join(S.work.path, n) for n in ("other.key", "other.csr", "other.crt"))
    ext = os.path.join(S.work.path, "other.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:broker.other.invalid\nextendedKeyUsage=serverAuth\n")
    for argv in (["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
                  "/CN=broker.other.invalid", "-keyout", key, "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", f"{d}/ca_certificate.pem",
                  "-CAkey", f"{d}/ca_key.pem", "-CAcreateserial", "-days", "2", "-extfile", ext,
                  "-out", crt]):
        subprocess.run(argv, check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    stop = threading.Event()
    t = threading.Thread(target=serve_tls, args=(ctx, sock, stop), daemon=True)
    t.start()
    w = Proc([binary("salvo-worker"), "run", "--threads", 1],
             os.path.join(S.work.path, "worker-wrong-name.log"),
             env={**env_fleet(os.path.join(d, "ca_certificate.pem")),
                  "SALVO_AMQP_URL": f"amqps://{USER}:{PASSWORD}@localhost:{port}/"},
             name="worker-wrong-name")
    try:
        m = w.wait_log(r"broker connection failed \(([^\n]*)\)", timeout=20)
    finally:
        w.stop()
        stop.set()
        t.join(5)
        sock.close()
    if "hostname" not in m.group(1).lower() and "certificate" not in m.group(1).lower():
        fail(f"the failure does not say it is the name: {m.group(0)}")
    print(f"  refused: {m.group(0)}")


def test_no_secret_in_logs_or_results():
    S.producer.stop()
    S.worker.stop()
    secrets_ = {"password": PASSWORD, "token": TOKEN, "key (base64)": KEY_B64,
                "key (hex)": KEY.hex()}
    texts = {}
    for name in ("producer", "worker", "worker-wrong-ca", "worker-wrong-name"):
        with open(os.path.join(S.work.path, f"{name}.log"), "rb") as f:
            texts[f"{name}.log"] = f.read().decode("utf-8", "replace")
    results = S.broker.get_messages("salvo.results", count=200)
    if len(results) < 3:
        fail(f"only {len(results)} result records to check")
    texts["salvo.results"] = "\n".join(m["body"].decode("utf-8", "replace") +
                                       json.dumps(m.get("properties", {})) for m in results)
    lines = sum(t.count("\n") for t in texts.values())
    for where, text in texts.items():
        for what, value in secrets_.items():
            if value in text:
                line = next(ln for ln in text.splitlines() if value in ln)
                fail(f"{where} holds the {what}: {line[:300]}")
    # The URL is logged, with the password masked.
    if f"{USER}:***@" not in texts["worker-wrong-ca.log"]:
        fail("the redacted URL does not appear in the connection failure")
    print(f"  {lines} log lines and {len(results)} result records hold no secret")


def main():
    with WorkDir("security-tls") as work:
        S.work = work
        S.certs, S.other_ca = work.sub("certs"), work.sub("other-ca")
        for d in (S.certs, S.other_ca):
            subprocess.run(["bash", MKCERTS, d], check=True, capture_output=True)
        with Broker(work.path, extra_args=["--tls", S.certs]) as broker, \
                Target(work.path) as target:
            S.broker, S.target = broker, target
            S.https_ok, S.https_bad = HttpsTarget(S.certs), HttpsTarget(S.other_ca)
            broker.ctl("add_user", USER, PASSWORD)
            broker.ctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*")
            S.amqps = f"amqps://{USER}:{PASSWORD}@localhost:{broker.env['TLS_PORT']}/"
            try:
                return run([test_fleet_runs_over_tls, test_metadata_target_dead_lettered,
                            test_https_targets_verified, test_tls_options_checked_at_start,
                            test_wrong_ca_refused, test_hostname_mismatch_refused,
                            test_no_secret_in_logs_or_results])
            finally:
                for p in (S.producer, S.worker):
                    if p and p.alive():
                        p.stop()
                S.https_ok.stop()
                S.https_bad.stop()


if __name__ == "__main__":
    sys.exit(main())
