#!/usr/bin/env python3
"""test_definitions: deploy/rabbitmq/ against the code and against a real broker.

Without a broker:
  - definitions.json carries exactly the exchanges, queues and bindings common/topology.c
    declares (printed by salvo-topology-dump), and gen-definitions would write the committed
    file unchanged;
  - the users, tags and permissions are the least-privilege table below, the password hashes are
    RabbitMQ sha256 hashes of the documented example passwords, and every amqp:// URL in
    deploy/ uses a user and password the file accepts.
With a private broker (tests/lib/broker.sh), definitions loaded through POST /api/definitions:
  - rabbitmq.conf parses against the broker's own config schema, with the values salvo needs;
  - the vhost holds exactly the topology the code declares; users and permissions as in the file;
  - the broker accepts the example passwords and refuses wrong ones;
  - the broker enforces each role: the producer can publish jobs and nothing else, the worker can
    take jobs and publish retries, dead letters and results, and neither can declare or delete;
  - the moves that need no user permission work: a retry expires back into salvo.jobs, an expired
    job and a rejected job land in salvo.missed;
  - the real binaries run against the loaded broker with the per-role users.
"""
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import salvo_testlib as tl  # noqa: E402

SRC = tl.source_dir()
DEFS_PATH = os.path.join(SRC, "deploy", "rabbitmq", "definitions.json")
CONF_PATH = os.path.join(SRC, "deploy", "rabbitmq", "rabbitmq.conf")
GEN = os.path.join(SRC, "deploy", "rabbitmq", "gen-definitions")
VHOST = "salvo"

# The least-privilege table (issue 7): (configure, write, read) and tags per role.
EXPECTED_PERMS = {
    "salvo-producer": (r"^salvo\.producer\..+$", r"^salvo\.(jobs|producer(\..+)?)$",
                       r"^salvo\.producer(\..+)?$"),
    "salvo-worker": ("^$", r"^salvo\.(retry|dead|results)$", r"^salvo\.jobs$"),
    "salvo-admin": (".*", ".*", ".*"),
}
EXPECTED_TAGS = {"salvo-producer": [], "salvo-worker": [], "salvo-admin": ["administrator"]}
# The example passwords docs/operations.md documents (and tells users to change).
EXAMPLE_PASSWORDS = {"salvo-producer": "producer-change-me", "salvo-worker": "worker-change-me",
                     "salvo-admin": "admin-change-me"}

CTX = {}  # the broker and the loaded file, shared by the broker tests


# ---- helpers ---------------------------------------------------------------------------------

def load_defs():
    with open(DEFS_PATH, encoding="utf-8") as f:
        return json.load(f)


def topology_dump():
    """What the binaries declare, from the code (deploy/rabbitmq/topology-dump.c)."""
    tool = os.path.join(tl.build_dir(), "deploy", "rabbitmq", "salvo-topology-dump")
    if not os.access(tool, os.X_OK):
        tl.fail(f"{tool} is not built: the root CMakeLists.txt needs "
                "add_subdirectory(deploy/rabbitmq), then build the salvo-topology-dump target")
    out = subprocess.run([tool, VHOST], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def canon(args):
    return json.dumps(args or {}, sort_keys=True)


def topo_sets(defs, vhost=VHOST):
    """The topology of a definitions document as comparable sets (order-free)."""
    ex = {(e["name"], e["type"], e["durable"], e["auto_delete"], e["internal"],
           canon(e["arguments"])) for e in defs["exchanges"] if e["vhost"] == vhost}
    qs = {(q["name"], q["durable"], q["auto_delete"], canon(q["arguments"]))
          for q in defs["queues"] if q["vhost"] == vhost}
    bs = {(b["source"], b["destination"], b["destination_type"], b["routing_key"],
           canon(b["arguments"])) for b in defs["bindings"] if b["vhost"] == vhost}
    return {"exchanges": ex, "queues": qs, "bindings": bs}


def assert_same_topology(got, want, what):
    problems = []
    for kind in ("exchanges", "queues", "bindings"):
        for item in sorted(want[kind] - got[kind]):
            problems.append(f"{kind}: missing from {what}: {item}")
        for item in sorted(got[kind] - want[kind]):
            problems.append(f"{kind}: only in {what}: {item}")
    if problems:
        tl.fail("topology differs from common/topology.c:\n  " + "\n  ".join(problems))


def hash_matches(stored, password):
    """rabbit_password_hashing_sha256: base64(salt4 + sha256(salt4 + utf8 password))."""
    raw = base64.b64decode(stored)
    return len(raw) == 36 and hashlib.sha256(raw[:4] + password.encode()).digest() == raw[4:]


def api(method, path, body=None, user="salvo-admin", password=None):
    """Management API call as any user; returns (status, parsed JSON or None)."""
    b = CTX["broker"]
    password = password or EXAMPLE_PASSWORDS[user]
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{b.mgmt_port}{path}", data=data,
                                 method=method, headers={"Authorization": f"Basic {auth}",
                                                         "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw.strip() else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def q(name):
    return urllib.parse.quote(name, safe="")


def publish(user, exchange, key, payload, props=None):
    """Publish as user; (status, routed or the refusal)."""
    st, r = api("POST", f"/api/exchanges/{VHOST}/{q(exchange)}/publish",
                {"properties": props or {}, "routing_key": key, "payload": payload,
                 "payload_encoding": "string"}, user=user)
    return st, (r.get("routed") if st == 200 and isinstance(r, dict) else r)


def get(user, queue, ackmode="ack_requeue_false", count=1):
    """basic.get through the API as user; (status, list of messages or the refusal)."""
    return api("POST", f"/api/queues/{VHOST}/{q(queue)}/get",
               {"count": count, "ackmode": ackmode, "encoding": "auto"}, user=user)


def expect_refused(what, st, r):
    text = json.dumps(r)
    if st < 400 or ("ACCESS_REFUSED" not in text and "refused" not in text):
        tl.fail(f"{what}: expected the broker to refuse it, got {st} {r!r}")


def expect_ok(what, st, r):
    if st >= 400:
        tl.fail(f"{what}: refused ({st} {r!r})")


def queue_ready(name):
    st, info = api("GET", f"/api/queues/{VHOST}/{q(name)}")
    return info.get("messages_ready", 0) if st == 200 else 0


def wait_message(user, queue, payload, timeout=20.0):
    """Wait until queue holds a message, take it as user, check its payload; returns it."""
    tl.wait_until(f"a message in {queue}", lambda: queue_ready(queue) > 0, timeout=timeout,
                  interval=0.25)
    st, msgs = get(user, queue)
    expect_ok(f"{user} get {queue}", st, msgs)
    if not msgs or msgs[0]["payload"] != payload:
        tl.fail(f"{queue}: expected the message {payload!r}, got {msgs!r}")
    return msgs[0]


# ---- without a broker ------------------------------------------------------------------------

def test_file_topology_is_the_codes():
    assert_same_topology(topo_sets(load_defs()), topo_sets(topology_dump()), "definitions.json")


def test_generator_reproduces_file():
    tool = os.path.join(tl.build_dir(), "deploy", "rabbitmq", "salvo-topology-dump")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PASSWORD")}
    r = subprocess.run([GEN, "--dump", tool, "--check"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tl.fail(f"gen-definitions --check exit {r.returncode}: definitions.json is stale; run "
                f"deploy/rabbitmq/gen-definitions --build-dir BUILD\n{r.stdout}{r.stderr}")


def test_users_and_permissions_in_file():
    d = load_defs()
    users = {u["name"]: u for u in d["users"]}
    if set(users) != set(EXPECTED_PERMS):
        tl.fail(f"users {sorted(users)} != {sorted(EXPECTED_PERMS)}")
    for name, u in users.items():
        if u["hashing_algorithm"] != "rabbit_password_hashing_sha256":
            tl.fail(f"{name}: hashing_algorithm {u['hashing_algorithm']}")
        if not hash_matches(u["password_hash"], EXAMPLE_PASSWORDS[name]):
            tl.fail(f"{name}: password_hash is not the hash of the documented example password")
        if hash_matches(u["password_hash"], EXAMPLE_PASSWORDS[name] + "x"):
            tl.fail(f"{name}: hash check accepts a wrong password")
        if sorted(u["tags"]) != EXPECTED_TAGS[name]:
            tl.fail(f"{name}: tags {u['tags']} != {EXPECTED_TAGS[name]}")
    perms = {(p["user"], p["vhost"]): (p["configure"], p["write"], p["read"])
             for p in d["permissions"]}
    want = {(n, VHOST): p for n, p in EXPECTED_PERMS.items()}
    if perms != want:
        tl.fail(f"permissions {perms} != {want}")
    if [v["name"] for v in d["vhosts"]] != [VHOST]:
        tl.fail(f"vhosts {d['vhosts']}")


def test_deploy_urls_use_the_file_credentials():
    users = {u["name"]: u["password_hash"] for u in load_defs()["users"]}
    found = 0
    for rel in ("deploy/docker-compose.yml", "deploy/k8s/secret.example.yaml"):
        with open(os.path.join(SRC, rel), encoding="utf-8") as f:
            text = f.read()
        for user, pw, vhost in re.findall(r"amqps?://([^:@/\s]+):([^@\s]+)@[^/\s]+/(\w+)", text):
            found += 1
            if user not in users or not hash_matches(users[user], pw) or vhost != VHOST:
                tl.fail(f"{rel}: amqp URL for {user} (vhost {vhost}) would not log in")
    if found < 3:
        tl.fail(f"expected the producer and worker URLs in deploy/, found {found}")
    with open(os.path.join(SRC, "docs", "operations.md"), encoding="utf-8") as f:
        doc = f.read()
    for user, pw in EXAMPLE_PASSWORDS.items():
        if pw not in doc:
            tl.fail(f"docs/operations.md does not document {user}'s example password")


# ---- with the broker -------------------------------------------------------------------------

def conf_eval(conf_path):
    """Map a rabbitmq.conf through the running node's cuttlefish schemas (what the node does at
    boot); returns rabbitmqctl's printout: {ok, RabbitSettings, MgmtSettings} or the error."""
    expr = (
        'Dirs = [code:priv_dir(A) || A <- [rabbit, rabbitmq_management, '
        'rabbitmq_management_agent]], '
        'Schemas = lists:append([filelib:wildcard(filename:join([D, "schema", "*.schema"])) '
        '|| D <- Dirs]), '
        'Conf = cuttlefish_conf:files(["%s"]), '
        'case cuttlefish_generator:map(cuttlefish_schema:files(Schemas), Conf) of '
        '{error, _, _} = E -> E; '
        'Cfg -> {ok, [KV || {K, _} = KV <- proplists:get_value(rabbit, Cfg), K =/= log], '
        'proplists:get_value(rabbitmq_management, Cfg)} end.' % conf_path)
    return CTX["broker"].ctl("eval", expr, check=False)


def test_conf_parses_with_salvo_values():
    wd = CTX["workdir"]
    conf_dir = wd.sub("conf")
    defs = os.path.join(conf_dir, "definitions.json")
    with open(DEFS_PATH, "rb") as src, open(defs, "wb") as dst:
        dst.write(src.read())
    with open(CONF_PATH, encoding="utf-8") as f:
        text = f.read()
    if not re.search(r"^load_definitions = /etc/rabbitmq/definitions\.json$", text, re.M):
        tl.fail("rabbitmq.conf: load_definitions must name /etc/rabbitmq/definitions.json")
    conf = os.path.join(conf_dir, "salvo.conf")
    with open(conf, "w", encoding="utf-8") as f:  # the node checks the file exists
        f.write(text.replace("/etc/rabbitmq/definitions.json", defs))
    for p in (defs, conf):
        os.chmod(p, 0o644)
    out = conf_eval(conf)
    if not out.startswith("{ok,"):
        tl.fail(f"rabbitmq.conf does not parse against RabbitMQ's schema:\n{out}")
    want = {"max_message_size": r"524288", "consumer_timeout": r"1800000",
            "load_definitions": re.escape(f'"{defs}"'), "queue_leader_locator": r'<<"balanced">>'}
    for key, val in want.items():
        if not re.search(r"\{%s,%s\}" % (key, val), out):
            tl.fail(f"rabbitmq.conf: {key} is not {val}:\n{out}")
    size = int(re.search(r"\{max_message_size,(\d+)\}", out).group(1))
    if not 256 * 1024 < size < 128 * 1024 * 1024:
        tl.fail(f"max_message_size {size}: must exceed salvo's 256 KiB body cap, below default")
    with open(conf, "a", encoding="utf-8") as f:  # the check itself must be able to fail
        f.write("max_mesage_size = 5\n")
    if conf_eval(conf).startswith("{ok,"):
        tl.fail("the schema check accepted a misspelt key: it proves nothing")


def test_load_definitions():
    b = CTX["broker"]
    b.mgmt_post("/api/definitions", CTX["defs"])
    got = topo_sets(b.mgmt_get("/api/definitions"))
    assert_same_topology(got, topo_sets(topology_dump()), "the broker")


def test_users_and_permissions_on_broker():
    b = CTX["broker"]
    for name, (conf, write, read) in EXPECTED_PERMS.items():
        u = b.mgmt_get(f"/api/users/{q(name)}")
        if sorted(u["tags"]) != EXPECTED_TAGS[name]:
            tl.fail(f"{name}: tags on the broker {u['tags']}")
        p = b.mgmt_get(f"/api/permissions/{VHOST}/{q(name)}")
        if (p["configure"], p["write"], p["read"]) != (conf, write, read):
            tl.fail(f"{name}: permissions on the broker {p}")
        out = b.ctl("authenticate_user", name, EXAMPLE_PASSWORDS[name], check=False)
        if "Success" not in out:
            tl.fail(f"{name}: the broker refuses the example password: {out}")
    bad = b.ctl("authenticate_user", "salvo-worker", "producer-change-me", check=False)
    if "Success" in bad:
        tl.fail("the broker accepts another role's password for salvo-worker")


def grant_api_login(name):
    """The management API turns away users without a tag before it looks at permissions, so
    the role users get the `management` tag for this test only; the permissions tested are the
    file's, enforced by the broker on the API's internal AMQP channel."""
    u = CTX["broker"].mgmt_get(f"/api/users/{q(name)}")
    CTX["broker"].mgmt_put(f"/api/users/{q(name)}",
                           {"password_hash": u["password_hash"], "tags": "management",
                            "hashing_algorithm": u["hashing_algorithm"]})


def test_producer_can_only_publish_jobs():
    grant_api_login("salvo-producer")
    grant_api_login("salvo-worker")
    st, routed = publish("salvo-producer", "salvo.jobs", "job", "job-1")
    if (st, routed) != (200, True):
        tl.fail(f"producer publish to salvo.jobs: {st} {routed!r}")
    for ex, key in (("salvo.retry", "r1"), ("salvo.dead", "dead"), ("salvo.results", ""),
                    ("amq.default", "salvo.jobs")):
        expect_refused(f"producer publish to {ex}", *publish("salvo-producer", ex, key, "x"))
    expect_refused("producer get salvo.jobs", *get("salvo-producer", "salvo.jobs",
                                                    "ack_requeue_true"))
    expect_refused("producer declare a queue", *api("PUT", f"/api/queues/{VHOST}/mine",
                                                    {"durable": True}, user="salvo-producer"))
    wait_message("salvo-worker", "salvo.jobs", "job-1")


def test_worker_takes_jobs_and_publishes_outcomes():
    for ex, key, dest in (("salvo.dead", "dead", "salvo.dead"),
                          ("salvo.dead", "missed", "salvo.missed"),
                          ("salvo.results", "", "salvo.results")):
        st, routed = publish("salvo-worker", ex, key, f"to-{dest}")
        if (st, routed) != (200, True):
            tl.fail(f"worker publish to {ex} '{key}': {st} {routed!r}")
        wait_message("salvo-admin", dest, f"to-{dest}")
    expect_refused("worker publish to salvo.jobs", *publish("salvo-worker", "salvo.jobs", "job",
                                                            "forged"))
    for queue in ("salvo.dead", "salvo.retry.1", "salvo.results"):
        expect_refused(f"worker get {queue}", *get("salvo-worker", queue, "ack_requeue_true"))
    expect_refused("worker delete salvo.jobs",
                   *api("DELETE", f"/api/queues/{VHOST}/salvo.jobs", user="salvo-worker"))
    expect_refused("worker declare a queue", *api("PUT", f"/api/queues/{VHOST}/mine",
                                                  {"durable": True}, user="salvo-worker"))


def test_retry_expires_back_into_jobs():
    st, routed = publish("salvo-worker", "salvo.retry", "r1", "retry-1")
    if (st, routed) != (200, True):
        tl.fail(f"worker publish to salvo.retry r1: {st} {routed!r}")
    m = wait_message("salvo-worker", "salvo.jobs", "retry-1")
    deaths = m["properties"].get("headers", {}).get("x-death", [])
    if not any(x.get("queue") == "salvo.retry.1" and x.get("reason") == "expired" for x in deaths):
        tl.fail(f"the retry came back without an x-death from salvo.retry.1: {deaths}")


def test_broker_dead_letters_land_in_missed():
    """Everything the broker itself dead-letters from salvo.jobs lands in salvo.missed, with
    x-death saying why (workers dead-letter the other failures into salvo.dead themselves)."""
    st, routed = publish("salvo-producer", "salvo.jobs", "job", "late-1", {"expiration": "1"})
    if (st, routed) != (200, True):
        tl.fail(f"producer publish with expiration: {st} {routed!r}")
    m = wait_message("salvo-admin", "salvo.missed", "late-1")
    if m["properties"].get("headers", {}).get("x-first-death-reason") != "expired":
        tl.fail(f"salvo.missed message without x-first-death-reason expired: {m['properties']}")
    publish("salvo-producer", "salvo.jobs", "job", "poison-1")
    tl.wait_until("poison-1 in salvo.jobs", lambda: queue_ready("salvo.jobs") > 0, timeout=20)
    st, msgs = get("salvo-worker", "salvo.jobs", "reject_requeue_false")
    if st != 200 or not msgs or msgs[0]["payload"] != "poison-1":
        tl.fail(f"worker reject of poison-1: {st} {msgs!r}")
    m = wait_message("salvo-admin", "salvo.missed", "poison-1")
    if m["properties"].get("headers", {}).get("x-first-death-reason") != "rejected":
        tl.fail(f"rejected job without x-first-death-reason rejected: {m['properties']}")
    if queue_ready("salvo.dead") != 0:
        tl.fail("a broker dead letter reached salvo.dead; only workers publish there")


# ---- the real binaries with the per-role users ------------------------------------------------

def amqp_url(user):
    return f"amqp://{user}:{EXAMPLE_PASSWORDS[user]}@127.0.0.1:{CTX['broker'].amqp_port}/{VHOST}"


def signing_key():
    """The run's signing key in the format both binaries read ("keyid:base64secret"), 0600."""
    path = os.path.join(CTX["workdir"].sub("keys"), "signing.key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("k1:" + base64.b64encode(os.urandom(32)).decode() + "\n")
    return path


def wait_or_fail(what, check, procs, timeout=30.0):
    """wait_until, with the tail of each process's log in the failure."""
    try:
        return tl.wait_until(what, check, timeout=timeout, interval=0.5)
    except AssertionError as e:
        logs = "".join(f"\n--- {p.name} log:\n{p.log()[-3000:]}" for p in procs)
        tl.fail(f"{e}{logs}")


def role_env(user, key):
    return {"SALVO_AMQP_URL": amqp_url(user), "SALVO_SIGNING_KEY_FILE": key,
            "SALVO_SIGNING_KEYS": None, "SALVO_LOG_LEVEL": "info", "SALVO_THREADS": "2"}


def consumers_of_jobs(user):
    """Consumers on salvo.jobs whose connection logged in as user."""
    st, cons = api("GET", f"/api/consumers/{VHOST}")
    if st != 200:
        tl.fail(f"GET /api/consumers: {st} {cons!r}")
    return [c for c in cons if c["queue"]["name"] == "salvo.jobs"
            and c["channel_details"].get("user") == user]


def start_worker(wd, user, key, name):
    # The producer and the admin (testpub below) publish as their own broker users: the AMQP
    # user_id a worker checks against its allow-list.
    env = {**role_env(user, key), "SALVO_ALLOWED_PUBLISHERS": "salvo-producer,salvo-admin"}
    return tl.Proc([tl.binary("salvo-worker"), "run"], os.path.join(wd.path, f"{name}.log"),
                   env=env, name=name)


def test_binaries_run_with_role_users():
    wd = CTX["workdir"]
    key = signing_key()
    with tl.Target(wd.path) as target:
        sched = os.path.join(wd.path, "schedule.yaml")
        with open(sched, "w", encoding="utf-8") as f:
            f.write("jobs:\n  - name: defs-tick\n    every: 1s\n    http:\n"
                    f"      url: {target.url('/defs-tick')}\n")
        with start_worker(wd, "salvo-worker", key, "worker") as worker:
            wait_or_fail("the worker (as salvo-worker) consuming salvo.jobs",
                         lambda: consumers_of_jobs("salvo-worker"), [worker])
            producer = tl.Proc([tl.binary("salvo-producer"), "run", sched],
                               os.path.join(wd.path, "producer.log"),
                               env={**role_env("salvo-producer", key),
                                    "SALVO_STATE_DIR": wd.sub("state"),
                                    "SALVO_HA_GROUP": "defs"}, name="producer")
            with producer:
                # In a group (issue 9) it also declares its lease and watermark as salvo-producer.
                producer.wait_log(r"became active: holding lease salvo\.producer\.lease\.defs",
                                  timeout=30)
                wait_or_fail("3 ticks at the target", lambda: sum(
                    r["path"] == "/defs-tick" for r in target.records()) >= 3,
                    [producer, worker])
                if producer.stop() != 0:
                    tl.fail(f"producer exit {producer.returncode}:\n{producer.log()[-2000:]}")
            # The topology declared in full, as the code has it (admin may configure): a queue
            # argument that differed from the file would be refused here with 406.
            pub = subprocess.run([tl.binary("salvo-testpub"), "--amqp-url",
                                  amqp_url("salvo-admin"), "--count", "1",
                                  "--url", target.url("/defs-admin")],
                                 capture_output=True, text=True, timeout=60,
                                 env={**{k: v for k, v in os.environ.items()
                                         if k != "SALVO_SIGNING_KEYS"},
                                      "SALVO_SIGNING_KEY_FILE": key})
            if pub.returncode != 0:
                tl.fail(f"full declare as salvo-admin failed ({pub.returncode}):\n{pub.stderr}")
            wait_or_fail("the admin-published job at the target", lambda: any(
                r["path"] == "/defs-admin" for r in target.records()), [worker])
            if worker.stop() != 0:
                tl.fail(f"worker exit {worker.returncode}:\n{worker.log()[-2000:]}")


def test_worker_with_producer_password_cannot_consume():
    wd = CTX["workdir"]
    with start_worker(wd, "salvo-producer", signing_key(), "worker-as-producer") as w:
        w.wait_log(r"ACCESS_REFUSED", timeout=30)
        # Several reconnect rounds, each one refused; management stats lag about a second.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            if consumers_of_jobs("salvo-producer"):
                tl.fail("a worker logged in as salvo-producer consumes salvo.jobs")
            time.sleep(0.5)


# ---- main ------------------------------------------------------------------------------------

STATIC = [test_file_topology_is_the_codes, test_generator_reproduces_file,
          test_users_and_permissions_in_file, test_deploy_urls_use_the_file_credentials]
BROKER = [test_conf_parses_with_salvo_values, test_load_definitions,
          test_users_and_permissions_on_broker, test_producer_can_only_publish_jobs,
          test_worker_takes_jobs_and_publishes_outcomes, test_retry_expires_back_into_jobs,
          test_broker_dead_letters_land_in_missed, test_binaries_run_with_role_users,
          test_worker_with_producer_password_cannot_consume]


def main():
    with tl.WorkDir("definitions") as wd, tl.Broker(wd.path) as broker:
        CTX.update(workdir=wd, broker=broker, defs=load_defs())
        tl.run(STATIC + BROKER)


if __name__ == "__main__":
    main()
