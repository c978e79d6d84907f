"""cluster: a 3-node RabbitMQ cluster and network-namespace "hosts" for the multi-host tests
(tests/integration/test_cluster.py). Python 3 standard library plus iproute2; needs root.

  Net(work)          a bridge in the root namespace with an address from a free 10.213.N.0/24,
                     and hosts: one network namespace each, joined to the bridge by a veth pair.
                     Host.argv(...) runs a program inside the host; Host.cut()/restore() take
                     its link down and up. Everything carries this process's pid in its name and
                     is removed on every exit path; leftovers of a crashed run (whose pid is
                     gone) are removed first.
  Cluster(work, ip)  three private nodes (tests/lib/broker.sh, started in parallel, one shared
                     Erlang cookie, AMQP also listening on ip); nodes 2 and 3 join node 1. A
                     user salvo/salvo (guest may only log in from loopback) reaches every node.

Nodes run as the rabbitmq user (broker.sh drops to it when run as root), so the work directory
and every node directory are made traversable by it.
"""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from salvo_testlib import (Broker, Proc, _register, _unregister, binary, fail,  # noqa: E402
                           wait_until)

NS_PREFIX = "salvo-h"  # namespaces: salvo-h<pid>-<name>
BR_PREFIX = "sbr"      # bridge: sbr<pid>; veth root ends: sv<pid>-<n> (15-char limit)
USER, PASSWORD = "salvo", "salvo"


def ip(*args, check=True):
    """Run `ip ARGS`; returns stdout, fails with the error when check and it exits non-zero."""
    r = subprocess.run(["ip", *map(str, args)], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        fail(f"ip {' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale():
    """Delete namespaces and links of earlier runs whose owning process is gone."""
    for line in ip("netns", "list").splitlines():
        m = re.match(rf"{NS_PREFIX}(\d+)-\S+", line)
        if m and not _pid_alive(int(m.group(1))):
            ip("netns", "del", m.group(0), check=False)
    for line in ip("-o", "link", "show").splitlines():
        m = re.match(rf"\d+: ((?:{BR_PREFIX}|sv)(\d+)(?:-\d+)?)[@:]", line)
        if m and not _pid_alive(int(m.group(2))):
            ip("link", "del", m.group(1), check=False)


def _free_subnet():
    """A third octet N such that no interface holds an address in 10.213.N.0/24."""
    used = set(re.findall(r"inet 10\.213\.(\d+)\.", ip("-4", "-o", "addr", "show")))
    start = os.getpid() % 200 + 20
    for k in range(250):
        n = (start + k) % 250 + 1
        if str(n) not in used:
            return n
    fail("no free 10.213.N.0/24 subnet for the test bridge")


class Host:
    """One network namespace joined to the bridge: name, ns, veth (root end), addr."""

    def __init__(self, net, name, index):
        self.name, self.net = name, net
        self.ns = f"{NS_PREFIX}{os.getpid()}-{name}"
        self.veth = f"sv{os.getpid()}-{index}"
        self.addr = f"{net.prefix}.{10 + index}"
        peer = f"sp{os.getpid()}-{index}"
        ip("netns", "add", self.ns)
        ip("link", "add", self.veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", self.ns)
        ip("-n", self.ns, "link", "set", peer, "name", "eth0")
        ip("-n", self.ns, "addr", "add", f"{self.addr}/24", "dev", "eth0")
        ip("-n", self.ns, "link", "set", "eth0", "up")
        ip("-n", self.ns, "link", "set", "lo", "up")
        ip("link", "set", self.veth, "master", net.bridge, "up")

    def argv(self, *args):
        """argv that runs args inside this host (ip netns exec execs it: same pid)."""
        return ["ip", "netns", "exec", self.ns, *map(str, args)]

    def cut(self):
        """Take the host's link down: its packets go nowhere, nobody is told."""
        ip("link", "set", self.veth, "down")

    def restore(self):
        ip("link", "set", self.veth, "up")

    def _cleanup(self):
        ip("netns", "del", self.ns, check=False)  # takes both veth ends with it
        ip("link", "del", self.veth, check=False)


class Net:
    """The test's private network: bridge sbr<pid> at 10.213.N.1/24 and its hosts."""

    def __init__(self):
        clean_stale()
        self.prefix = f"10.213.{_free_subnet()}"
        self.gateway = f"{self.prefix}.1"
        self.bridge = f"{BR_PREFIX}{os.getpid()}"
        self.hosts = []
        _register(self)
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def host(self, name):
        h = Host(self, name, len(self.hosts) + 1)
        self.hosts.append(h)
        return h

    def _cleanup(self):
        for h in self.hosts:
            h._cleanup()
        ip("link", "del", self.bridge, check=False)

    def close(self):
        self._cleanup()
        _unregister(self)


# ---- ports -----------------------------------------------------------------------------------

def _pick_ports(n):
    """n distinct ports in 20000-32767 (below the ephemeral range, as broker.sh picks them),
    each free on every address right now."""
    ports = set()
    while len(ports) < n:
        p = 20000 + secrets.randbelow(12768)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", p))
            except OSError:
                continue
        ports.add(p)
    return list(ports)


# ---- the cluster -----------------------------------------------------------------------------

class Cluster:
    """Three private nodes clustered with node 1. nodes[i] is a salvo_testlib.Broker; urls[i]
    the node's AMQP URL on listen_ip as user salvo; t_start / t_join the measured seconds."""

    def __init__(self, work, listen_ip, size=3):
        self.work, self.listen_ip = work, listen_ip
        cookie = secrets.token_hex(16)
        ports = _pick_ports(3 * size)
        self.nodes = [None] * size

        def start(i):
            a, m, d = ports[3 * i:3 * i + 3]
            self.nodes[i] = Broker(work.path, name=f"node-{i + 1}", extra_args=[
                "--nodename", f"salvo-c{i + 1}-{os.getpid()}", "--amqp-port", a,
                "--mgmt-port", m, "--dist-port", d, "--listen", listen_ip, "--cookie", cookie])
        t0 = time.monotonic()
        self._parallel([lambda i=i: start(i) for i in range(size)])
        self.t_start = time.monotonic() - t0
        t0 = time.monotonic()
        # The stops (most of the time) overlap; the joins do not. Two nodes joining at once
        # failed in CI: the second's mnesia start waited on the first, itself still starting
        # ({node_not_running, ...} then a badmatch in rabbit:start). RabbitMQ documents joins
        # as one node at a time.
        self._parallel([lambda n=n: self.stop_app(n) for n in self.nodes[1:]])
        for n in self.nodes[1:]:
            self.join(n)
        self.wait_running(size)
        self.t_join = time.monotonic() - t0
        self.nodes[0].mgmt_put(f"/api/users/{USER}", {"password": PASSWORD,
                                                      "tags": "administrator"})
        self.nodes[0].mgmt_put(f"/api/permissions/%2F/{USER}",
                               {"configure": ".*", "write": ".*", "read": ".*"})
        self.urls = [f"amqp://{USER}:{PASSWORD}@{listen_ip}:{n.amqp_port}/" for n in self.nodes]

    @staticmethod
    def _parallel(fns):
        """Run each fn in its own thread; fail with every error once all have finished."""
        errors = []

        def guard(fn):
            try:
                fn()
            except Exception as e:
                errors.append(str(e))
        threads = [threading.Thread(target=guard, args=(fn,)) for fn in fns]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            fail("; ".join(errors))

    @staticmethod
    def stop_app(node):
        """Stop the rabbit application on node (its VM stays up), ~5 s."""
        out = node.ctl("eval", "rabbit:stop().", timeout=120)
        if out.strip() != "ok":
            fail(f"{node.nodename} did not stop: {out}")

    def join(self, node):
        """join_cluster node 1 and start the app on a stopped node, in one CLI call (each
        rabbitmqctl run starts an Erlang VM: ~2 s here)."""
        out = node.ctl("eval", f"ok = rabbit_mnesia:join_cluster("
                       f"'{self.nodes[0].nodename}', disc), rabbit:start().", timeout=120)
        if out.strip() != "ok":
            fail(f"{node.nodename} did not join {self.nodes[0].nodename}: {out}")

    def url_list(self, first=0):
        """Every node's URL, comma-separated, starting with node `first` (0-based)."""
        k = len(self.urls)
        return ",".join(self.urls[(first + i) % k] for i in range(k))

    def node_of(self, text):
        """The node index whose AMQP port appears in text as :PORT (e.g. an endpoint)."""
        for i, n in enumerate(self.nodes):
            if re.search(rf":{n.amqp_port}\b", text):
                return i
        return None

    def by_name(self, nodename):
        return next(i for i, n in enumerate(self.nodes) if n.nodename == nodename)

    def ask(self, avoid=()):
        """A node that is up, other than those in avoid, to run commands against."""
        for i, n in enumerate(self.nodes):
            if i not in avoid and n.ctl("eval", "ok.", check=False).strip() == "ok":
                return n
        fail("no cluster node answers")

    def status(self, via=None):
        """cluster_status as a dict (running_nodes, disk_nodes, ...), asked of node via."""
        node = via or self.ask()
        return json.loads(node.ctl("cluster_status", "--formatter", "json"))

    def wait_running(self, count, via=None, timeout=60.0):
        """Wait until cluster_status lists count running nodes; returns their names."""
        def check():
            st = self.status(via)
            run = st.get("running_nodes", [])
            return run if len(run) == count else None
        return wait_until(f"{count} running cluster nodes", check, timeout=timeout, interval=0.5)

    def quorum_status(self, queue, via=None):
        """rabbitmq-queues quorum_status: one dict per member (Node Name, Raft State, ...)."""
        node = via or self.ask()
        r = node._script("queues", node.dir, "quorum_status", queue, "--formatter", "json")
        if r.returncode != 0:
            fail(f"quorum_status {queue}: {r.stdout}{r.stderr}")
        return json.loads(r.stdout)

    def leader(self, queue, via=None):
        """(leader node index, member node names) of a quorum queue, from rabbitmqctl."""
        node = via or self.ask()
        out = node.ctl("list_queues", "-q", "--formatter", "json", "name", "leader", "members")
        for q in json.loads(out):
            if q["name"] == queue:
                return self.by_name(q["leader"]), q["members"]
        fail(f"no queue {queue} in list_queues: {out}")


    def move_leader(self, queue, idx):
        """Make node idx lead the quorum queue (Raft leadership transfer); waits for it."""
        cur, _ = self.leader(queue)
        if cur == idx:
            return
        ra = f"'%2F_{queue}'"
        out = self.nodes[idx].ctl("eval", f"ra:transfer_leadership({{{ra}, "
                                  f"'{self.nodes[cur].nodename}'}}, {{{ra}, "
                                  f"'{self.nodes[idx].nodename}'}}).")
        if out.strip() not in ("ok", "already_leader"):
            fail(f"leadership transfer of {queue} to node-{idx + 1}: {out}")
        wait_until(f"node-{idx + 1} leading {queue}", lambda: self.leader(queue)[0] == idx,
                   timeout=30, interval=0.5)


class NsTarget:
    """The recording target (salvo_testlib.Target's records) bound to the bridge address, so
    hosts reach it over their links; the same stats()/records() interface as Target."""

    def __init__(self, work, addr, delay_ms=0):
        self.record_path = os.path.join(work.path, "target.jsonl")
        self.addr = addr
        self.proc = Proc([binary("tests/target/salvo-target"), "--bind", addr, "--port", 0,
                          "--record", self.record_path, "--delay-ms", delay_ms],
                         os.path.join(work.path, "target.log"), name="salvo-target")
        self.port = int(self.proc.wait_log(r"listening (\d+)", timeout=10).group(1))

    def url(self, path):
        return f"http://{self.addr}:{self.port}{path}"

    def stats(self):
        with urllib.request.urlopen(self.url("/__stats"), timeout=10) as r:
            return json.loads(r.read())

    def records(self):
        if not os.path.exists(self.record_path):
            return []
        with open(self.record_path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        return [json.loads(x) for x in lines if x]
