#!/usr/bin/env python3
"""Follow the demo target's request records and show jobs firing: one line per second in which
requests arrived (count, start lateness against the scheduled second, a sample path), so the
local quick start shows at a glance that every due job started on the second."""
import calendar
import json
import os
import sys
import time


def lateness_ms(rec):
    """Arrival minus the scheduled instant the worker sent (X-Salvo-Scheduled-At)."""
    sched = rec.get("sched_at") or ""
    try:
        # "2026-11-25T11:30:00Z" or with fractions; seconds resolution is what schedules use
        base, _, frac = sched.rstrip("Z").partition(".")
        secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
        due_ns = secs * 1_000_000_000 + int((frac + "000000000")[:9])
        return (rec["t_ns"] - due_ns) / 1e6
    except (ValueError, KeyError):
        return None


def flush(group):
    if not group:
        return
    lat = sorted(x for x in (lateness_ms(r) for r in group) if x is not None)
    first = group[0]
    when = time.strftime("%H:%M:%S", time.gmtime(first["t_ns"] / 1e9))
    stats = ""
    if lat:
        p50 = lat[len(lat) // 2]
        stats = f"start lateness p50 {p50:6.1f} ms  max {lat[-1]:6.1f} ms"
    paths = sorted({r.get("path", "").split("?")[0] for r in group})
    print(f"{when}Z  {len(group):5d} job(s)  {stats}  {', '.join(paths)[:60]}", flush=True)


def main():
    path = sys.argv[1]
    while not os.path.exists(path):
        time.sleep(0.2)
    group, key = [], None
    with open(path, encoding="utf-8") as f:
        while True:
            line = f.readline()
            if not line:
                flush(group)
                group, key = [], None
                time.sleep(0.3)
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            sec = (rec.get("sched_at") or "", rec["t_ns"] // 1_000_000_000)
            if key is not None and sec != key:
                flush(group)
                group = []
            key = sec
            group.append(rec)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
