"""stages: where a job's start lateness goes, measured with perf uprobes (tests/bench/run
--stages). Needs root and perf; the probes are added at the start and removed at the end.

Probed functions (entry only, no arguments; a uprobe costs a few microseconds per hit):
  producer mq_publish      each job's basic.publish
  worker   task_new        the I/O thread has a delivery in hand (copied out of rabbitmq-c)
  worker   httpcall_start  the executor hands the request to libcurl
  worker   httpcall_stage_move  a staged request goes into its corked connection (precise)
  worker   httpcall_release     a held request is let go (uncorked) at its instant
The target's two stamps close the path: "arrival" (the kernel's receive stamp of the request
line) and "read" (when the target's thread was told of it). Times are taken on CLOCK_MONOTONIC
by perf and moved to the realtime clock with an offset read next to the recording.
"""

import os
import subprocess
import time

GROUP = "salvo_bench"
PROBES = [("producer", "salvo-producer", "mq_publish", "publish"),
          ("worker", "salvo-worker", "task_new", "receive"),
          ("worker", "salvo-worker", "httpcall_start", "start"),
          ("worker", "salvo-worker", "httpcall_stage_move", "move"),
          ("worker", "salvo-worker", "httpcall_release", "release")]
STAGES = ["publish", "receive", "start", "move", "release"]


def _perf(*args, check=True):
    r = subprocess.run(["perf", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"perf {' '.join(args[:3])} failed: {r.stderr.strip()[-400:]}")
    return r


class Stages:
    """Adds the probes for the binaries in build_dir; record() wraps one run."""

    def __init__(self, build_dir):
        self.build = build_dir
        self.remove()
        for _, binary, func, stage in PROBES:
            _perf("probe", "-q", "-x", os.path.join(build_dir, binary),
                  "--add", f"{GROUP}:{stage}={func}")

    def remove(self):
        _perf("probe", "-q", "-d", f"{GROUP}:*", check=False)

    def start(self, path):
        """Start recording every probe hit system-wide into path."""
        self.path = path
        self.offset = time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)
        self.proc = subprocess.Popen(["perf", "record", "-q", "-a", "-k", "mono", "-o", path,
                                      "-e", f"{GROUP}:*"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf needs a moment before it sees hits

    def stop(self, pids):
        """Stop recording; returns {stage: ascending realtime ns list} for hits by pids."""
        self.proc.send_signal(2)
        self.proc.wait()
        out = _perf("script", "-i", self.path, "-F", "pid,time,event").stdout
        hits = {s: [] for s in STAGES}
        want = {str(p) for p in pids}
        for line in out.splitlines():
            f = line.split()
            if len(f) < 3 or f[0] not in want:
                continue
            stage = f[-1].rstrip(":").split(":")[-1]
            if stage in hits:
                hits[stage].append(int((float(f[1].rstrip(":")) + self.offset) * 1e9))
        for v in hits.values():
            v.sort()
        if not any(hits.values()):
            print(f"  stages: perf recorded no probe hit in {self.path} (stale probes? "
                  f"see `perf probe -l`)", flush=True)
        return hits
