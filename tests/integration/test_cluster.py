"""Beyond one machine (issue 11): a 3-node RabbitMQ cluster, and the producer and two workers on
three "hosts" (network namespaces joined by veth links to a bridge the test creates), every
process given the three node URLs. One cluster and one fleet for the whole file, never
restarted between scenarios; requests reach the recording target over the links.

1. A 1,000-job fan-out (published at T); at T + 0.5 s the node leading salvo.jobs is stopped
   (stop_app), while the workers hold 600 jobs and 400 wait in the queue: every
   job reaches the target, the clients that were on that node fail over (their logs), and the
   lateness of the jobs caught in the failover is printed.
2. The node comes back (start_app): it rejoins as a quorum member, and the same 1,000-job
   burst without a fault (the lateness baseline) is fully delivered by the same processes.
3. The same with kill -9 of the Erlang VM of the leader at T + 50 ms, the leadership moved first
   to the producer's node so the producer fails over mid-batch; the node is restarted and
   rejoins (scenario 4's fan-outs then run on the full cluster).
4. One worker host's link goes down for longer than two heartbeats (--heartbeat 2): the jobs it
   held are run by the other host; once the link is back it reconnects and consumes again.

Zero jobs lost everywhere; a job run twice is only ever the same firing under the same
Idempotency-Key (e2e.check_delivery), and the duplicates are counted."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402
from e2e import (check_delivery, fail, fan_ids, http_job, iso, log_text, next_second,  # noqa: E402
                 sleep_until, wait_delivered, worker_finished, worker_started, yaml)
from salvo_testlib import Proc, WorkDir, binary, run, wait_until  # noqa: E402

BURST = 1000
HOLD_MS = 1000      # the target holds each reply: the burst is still being worked at T + 0.5
PREFETCH = 300      # per worker: 2 x 300 < 1,000, so most jobs wait in the queue at the fault
HEARTBEAT_S = 2     # workers: a dead link is noticed in 2 heartbeats
CUT_S = 3 * HEARTBEAT_S + 2
QUEUE = "salvo.jobs"


class S:
    work = net = cl = target = producer = None
    workers = []
    schedule = None


# ---- the fleet -------------------------------------------------------------------------------

def write_schedule(jobs):
    """Replace the producer's schedule and make it reload (SIGHUP): the fleet never restarts."""
    with open(S.schedule, "w") as f:
        f.write(yaml({"jobs": jobs}) + "\n")
    if S.producer:
        mark = log_text(S.producer).count("loaded ") + log_text(S.producer).count("reload")
        S.producer.send_signal(signal.SIGHUP)
        wait_until("the producer reloaded", lambda: log_text(S.producer).count("loaded ")
                   + log_text(S.producer).count("reload") > mark, timeout=10)


def start_fleet():
    S.net = cluster.Net()
    hosts = [S.net.host(n) for n in ("w1", "w2", "prod")]
    S.cl = cluster.Cluster(S.work, S.net.gateway)
    print(f"  cluster of 3 up in {S.cl.t_start:.1f} s, joined in {S.cl.t_join:.1f} s; "
          f"bridge {S.net.gateway}, hosts {[h.addr for h in hosts]}")
    S.target = cluster.NsTarget(S.work, S.net.gateway, delay_ms=HOLD_MS)
    for i, h in enumerate(hosts[:2]):  # worker i starts its URL list at node i
        w = Proc(h.argv(binary("salvo-worker"), "run", "--amqp-url", S.cl.url_list(i),
                        "--threads", 2, "--max-inflight", PREFETCH, "--heartbeat", HEARTBEAT_S,
                        "--metrics-addr", f"{h.addr}:9471"),
                 os.path.join(S.work.path, f"worker-{i + 1}.log"), name=f"worker-{i + 1}")
        w.host = h
        w.wait_log(r"consuming salvo\.jobs", timeout=60)  # worker 1 declares: node 1 leads
        S.workers.append(w)
    S.schedule = os.path.join(S.work.path, "schedule.yaml")
    write_schedule([http_job("idle", S.target.url("/idle"), {"at": iso(time.time() + 86400)})])
    S.producer = Proc(hosts[2].argv(binary("salvo-producer"), "run", S.schedule, "--amqp-url",
                                    S.cl.url_list(2), "--state-dir", S.work.sub("state"),
                                    "--fanout-lead-us", 0),  # publish at T, not before
                      os.path.join(S.work.path, "producer.log"), name="producer")
    S.producer.wait_log(r"connected to broker", timeout=60)
    members = S.cl.quorum_status(QUEUE)
    if len(members) != 3 or {m["Node Name"] for m in members} != {n.nodename for n in S.cl.nodes}:
        fail(f"{QUEUE} is not replicated on the three nodes: {members}")


def on_node(proc, since):
    """Node indexes proc connected to after log offset since (worker and producer lines)."""
    text = log_text(proc)[since:]
    return [S.cl.node_of(m.group(1)) for m in
            re.finditer(r"(?:consuming salvo\.jobs from|connected to broker) (\S+)", text)]


def clients():
    return S.workers + [S.producer]


def fanout(name, count, lead=4):
    """Schedule a fan-out of count jobs at a whole second; returns (T, ids)."""
    T = next_second(lead)
    write_schedule([http_job(name, S.target.url(f"/{name}/{{{{index}}}}"), {"at": iso(T)},
                             fan_out={"count": count})])
    return T, fan_ids(name, T, count)


def lose_leader(name, how, at, lead_on=None):
    """A burst, and the node leading the job queue taken down in the middle of it, at T + at
    seconds (how: "stop_app" or "kill"); lead_on first moves the leadership to that node.
    Returns the node index."""
    if lead_on is not None:
        S.cl.move_leader(QUEUE, lead_on)
    leader, _ = S.cl.leader(QUEUE)
    node = S.cl.nodes[leader]
    marks = [len(log_text(p)) for p in clients()]
    before = [on_node(p, 0)[-1] for p in clients()]
    T, ids = fanout(name, BURST)
    sleep_until(T + at)
    t_fault = time.time()
    if how == "kill":
        pids = node.beam_pids()
        if not pids:
            fail(f"no beam process for {node.nodename}")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        stopper = None
    else:  # stop_app takes ~5 s; the clients see their connections closed at its start
        stopper = subprocess.Popen(["bash", node.SCRIPT, "ctl", node.dir, "stop_app"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    d = wait_delivered(S.target, f"/{name}", ids, timeout=90)
    if stopper and stopper.wait(timeout=60) != 0:
        fail(f"stop_app of {node.nodename} failed")
    new_leader, _ = S.cl.leader(QUEUE, via=S.cl.ask(avoid=(leader,)))
    if new_leader == leader:
        fail(f"{node.nodename} still leads {QUEUE} after {how}")
    print(f"  leader node-{leader + 1} lost by {how} at T+{t_fault - T:.2f}s; new leader "
          f"node-{new_leader + 1}")
    check_failover(leader, before, marks)
    report_lateness(d, ids, T, t_fault)
    check_delivery(S.target, f"/{name}", ids)
    return leader


def check_failover(lost, before, marks):
    """Every client that was on the lost node logged the loss and reconnected to another."""
    moved = 0
    for p, was, mark in zip(clients(), before, marks):
        if was != lost:
            continue
        text = log_text(p)[mark:]
        if not re.search(r"broker connection to \S+ lost", text):
            fail(f"{p.name} was on node-{lost + 1} but logged no lost connection:\n{text[-1500:]}")
        now = wait_until(f"{p.name} reconnected", lambda: on_node(p, mark), timeout=60)
        if lost in now:
            fail(f"{p.name} reconnected to the lost node-{lost + 1}")
        print(f"  {p.name}: node-{lost + 1} -> node-{now[-1] + 1}")
        if p in S.workers:
            check_metrics(p, lost, now[-1])
        moved += 1
    if moved == 0:
        fail(f"no client was connected to the lost node-{lost + 1}: nothing failed over")


def check_metrics(w, lost, now):
    """The worker's /metrics says which node it consumes from (1) and which it left (0)."""
    with urllib.request.urlopen(f"http://{w.host.addr}:9471/metrics", timeout=10) as r:
        text = r.read().decode()
    nodes = {S.cl.node_of(m.group(1)): float(m.group(2)) for m in re.finditer(
        r'^salvo_worker_broker_connected\{broker="([^"]+)"\} (\S+)$', text, re.M)}
    if nodes.get(now) != 1 or nodes.get(lost) != 0:
        fail(f"{w.name} /metrics: broker_connected by node {nodes}, want node-{now + 1} = 1 "
             f"and node-{lost + 1} = 0")


def report_lateness(d, ids, T, t_fault):
    """Print the start lateness (first arrival - T) of the jobs that first reached the target
    after the fault: the ones the failover delayed."""
    late = sorted((d.first(k)["t_ns"] / 1e9 - T) * 1000 for k in ids)
    caught = [x for x in late if x / 1000 + T >= t_fault]
    after = [x - (t_fault - T) * 1000 for x in caught]
    print(f"  start lateness of all {len(ids)}: p50 {late[len(late) // 2]:.0f} ms, max "
          f"{late[-1]:.0f} ms; {len(caught)} started after the fault: " +
          (f"lateness p50 {caught[len(caught) // 2]:.0f} ms, max {caught[-1]:.0f} ms "
           f"(fault to start: p50 {after[len(after) // 2]:.0f} ms, max {after[-1]:.0f} ms)"
           if caught else "none"))


def carry_on(name, count=200):
    """A fan-out fully delivered by the processes started at the beginning; returns (T, ids,
    delivery)."""
    for p in clients():
        if not p.alive():
            fail(f"{p.name} exited ({p.returncode}):\n{log_text(p)[-1500:]}")
    T, ids = fanout(name, count)
    d = wait_delivered(S.target, f"/{name}", ids, timeout=60)
    check_delivery(S.target, f"/{name}", ids)
    return T, ids, d


def wait_member(idx, caught_up=True):
    """The node is running in the cluster and a quorum member of the job queue again: caught
    up (follower or leader), or with caught_up=False in any Raft state."""
    S.cl.wait_running(3)
    node = S.cl.nodes[idx].nodename
    states = ("follower", "leader") if caught_up else None

    def member():
        st = {m["Node Name"]: m["Raft State"] for m in S.cl.quorum_status(QUEUE)}
        return st if node in st and (states is None or st[node] in states) else None
    st = wait_until(f"{node} back in {QUEUE}'s quorum", member, timeout=60, interval=1)
    print(f"  node-{idx + 1} rejoined: {st}")


# ---- scenarios -------------------------------------------------------------------------------

def test_stop_app_of_the_leader_mid_burst():
    S.lost = lose_leader("a", "stop_app", 0.5, lead_on=on_node(S.workers[0], 0)[-1])


def test_node_returns_and_fleet_carries_on():
    S.cl.nodes[S.lost].ctl("start_app", timeout=120)
    wait_member(S.lost)
    # The same burst without a fault: the baseline for the lateness printed for scenarios 1
    # and 3 (with PREFETCH x 2 < BURST, the last jobs wait HOLD_MS for capacity anyway).
    T, ids, d = carry_on("b", BURST)
    late = sorted((d.first(k)["t_ns"] / 1e9 - T) * 1000 for k in ids)
    tail = late[2 * PREFETCH:]
    print(f"  no fault, same burst: p50 {late[len(late) // 2]:.0f} ms, max {late[-1]:.0f} ms; "
          f"the {len(tail)} that waited for capacity: p50 {tail[len(tail) // 2]:.0f} ms, max "
          f"{tail[-1]:.0f} ms")


def test_kill_9_of_the_leader_mid_burst():
    # The producer's node leads this time and dies while the producer still publishes the
    # burst (at T + 50 ms), so the producer fails over mid-batch: on RabbitMQ 3.10 a channel
    # opened before the new leader is elected is nacked until the client reconnects.
    mark = len(log_text(S.producer))
    lost = lose_leader("c", "kill", 0.05, lead_on=on_node(S.producer, 0)[-1])
    nacks = log_text(S.producer)[mark:].count("broker nacked publish")
    print(f"  the producer was nacked {nacks} times after the failover")
    S.cl.nodes[lost].start()
    # The next scenario's fan-outs run with it back in the cluster. Caught up is not waited
    # for: after a kill -9 of the leader, RabbitMQ 3.10.8's Ra once left the returning member in
    # await_condition ("term mismatch ... asking leader to resend", every 30 s) until the
    # leadership next changed, 80 s later. The queue has its quorum of two meanwhile, and
    # test_node_returns_and_fleet_carries_on checks a member's full return after stop_app.
    wait_member(lost, caught_up=False)


def test_worker_link_cut_longer_than_two_heartbeats():
    w1, w2 = S.workers
    mark = len(log_text(w1))
    T, ids = fanout("d", 200)
    wait_until("worker-1 running jobs of the burst",
               lambda: any(k.startswith("d@") for k, _ in worker_started(w1)), timeout=30)
    time.sleep(0.3)
    done = {f["id"] for f in worker_finished(w1)}
    held = {k for k, _ in worker_started(w1) if k.startswith("d@") and k not in done}
    w1.host.cut()
    time.sleep(CUT_S)
    w1.host.restore()
    wait_delivered(S.target, "/d", ids, timeout=60)
    check_delivery(S.target, "/d", ids)
    redone = held & {k for k, _ in worker_started(w2)}
    print(f"  worker-1 held {len(held)} jobs when its link went down for {CUT_S} s; "
          f"{len(redone)} were run again by worker-2")
    if held != redone:
        fail(f"{len(held - redone)} jobs worker-1 held were not redelivered to worker-2, e.g. "
             f"{sorted(held - redone)[:3]}")
    w1.wait_log(r"broker connection to \S+ lost", timeout=30)
    wait_until("worker-1 consuming again", lambda: on_node(w1, mark), timeout=60)
    _, ids2, _ = carry_on("e", 100)
    mine = set(ids2) & {k for k, _ in worker_started(w1)}
    print(f"  after the link returned worker-1 ran {len(mine)} of {len(ids2)} new jobs")
    if not mine:
        fail("worker-1 reconnected but ran none of the next fan-out")


def teardown():
    """Stop everything before the work directory goes: processes, nodes, then the network."""
    for p in [S.producer, *S.workers, S.target and S.target.proc]:
        if p and p.alive():
            p.stop(signal.SIGKILL, timeout=5)
    for n in (S.cl.nodes if S.cl else []):
        if n:
            n.stop()
    if S.net:
        S.net.close()


def main():
    t0 = time.monotonic()
    with WorkDir("cluster") as work:
        S.work = work
        try:
            start_fleet()
            run([test_stop_app_of_the_leader_mid_burst, test_node_returns_and_fleet_carries_on,
                 test_kill_9_of_the_leader_mid_burst,
                 test_worker_link_cut_longer_than_two_heartbeats])
        finally:
            teardown()
            print(f"  test_cluster total {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
