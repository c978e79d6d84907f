#!/usr/bin/env python3
"""test_quickstart: the README's first command as a user runs it (reusing the test build):
deploy/local/up must bring up a private broker, the demo target, the producer with
deploy/examples/schedule.yaml and two workers; the 100-store demo fan-out must reach the target
with every store once on one second; and when it stops, nothing it started may be left running."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import salvo_testlib as tl  # noqa: E402


def main():
    src = os.environ.get("SALVO_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    build = tl.build_dir()
    t0 = time.time()
    # Without the harness's test key: up must make and hand out its own.
    env = {k: v for k, v in os.environ.items()
           if k not in ("SALVO_SIGNING_KEYS", "SALVO_SIGNING_KEY_FILE")}
    p = subprocess.run([os.path.join(src, "deploy/local/up"), "--build-dir", build,
                        "--duration", "40"], capture_output=True, text=True, timeout=180,
                       env=env)
    out = p.stdout + p.stderr
    print(out)
    failures = []
    if p.returncode != 0:
        failures.append(f"up exited {p.returncode}")
    m = re.search(r"records in (\S+requests\.jsonl)", out)
    if not m:
        tl.fail("up did not say where the target records are")
    recs = [json.loads(line) for line in open(m.group(1), encoding="utf-8") if line.strip()]
    demo = [r for r in recs if r["path"].startswith("/process/demo")]
    by_second = {}
    for r in demo:
        by_second.setdefault(r["sched_at"], []).append(r)
    full = {s: rs for s, rs in by_second.items() if len(rs) >= 100}
    if not full:
        failures.append(f"no complete 100-job demo fan-out reached the target: {len(demo)} requests")
    for sched, rs in full.items():
        stores = sorted(int(re.search(r"store=(\d+)", r["target"]).group(1)) for r in rs)
        if stores != list(range(100)):
            failures.append(f"fan-out {sched}: stores are not 0..99 exactly once")
        keys = {r["idem"] for r in rs}
        if len(keys) != 100:
            failures.append(f"fan-out {sched}: {len(keys)} distinct Idempotency-Keys, not 100")
    key = os.path.join(os.path.dirname(m.group(1)), "signing.key")
    if not os.path.exists(key) or os.stat(key).st_mode & 0o777 != 0o600:
        failures.append("up did not generate a 0600 signing key in its run directory")
    if "management UI   http://127.0.0.1:" not in out:
        failures.append("up did not print where the management UI is")
    if not re.search(r"\b100 job\(s\)|\b10[01] job\(s\)", out):
        failures.append("the live view never showed a 100-job second")
    # Nothing left running: no salvo process and no beam node of that run directory.
    run_dir = os.path.dirname(m.group(1))
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    # The broker node's command line names its run directory; the fleet's binaries and the
    # target are the only processes started from this build tree while this test runs.
    left = [l for l in ps.splitlines()
            if run_dir in l or os.path.join(build, "salvo-") in l
            or os.path.join(build, "tests/target/salvo-target") in l]
    if left:
        failures.append(f"processes left running: {left}")
    for f in failures:
        print("FAIL", f)
    print(f"quick start ran {time.time() - t0:.0f}s, {len(demo)} demo requests, "
          f"{len(full)} full fan-out(s)")
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
