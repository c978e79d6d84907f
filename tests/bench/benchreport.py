"""benchreport: the benchmark's arithmetic and output (tests/bench/run does the running).

Percentiles, per-run summaries from the target's records, the CSV files, the markdown table and
the gnuplot lateness plots. Python 3 standard library only, plus the gnuplot binary for plots.
"""

import csv
import json
import math
import os
import subprocess

# Quantiles kept per run in cdf.csv: 0.5 % steps (p99 and p99.5 among them) draw the curve and
# keep the file small enough to commit (18 runs: ~100 KB) instead of one line per job.
CDF_STEPS = 200


def quantile(sorted_vals, q):
    """Nearest-rank quantile of an ascending list (q in 0..1); None for an empty list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[k]


def read_records(path, prefix):
    """The target's JSONL records whose Idempotency-Key starts with prefix, in arrival order.
    A last line without its newline is still being written and is left out."""
    out = []
    with open(path, "rb") as f:
        for line in f.read().split(b"\n")[:-1]:
            if prefix.encode() not in line:
                continue
            r = json.loads(line)
            if (r.get("idem") or "").startswith(prefix):
                out.append(r)
    return out


# The target records two stamps per request (tests/target/tgt_record.h). The headline is
# "arrival": the kernel's receive stamp of the request line (rx_ns), the issue's "moment the
# request line arrives". "read" (t_ns) is when the target's thread was told of the bytes, which
# adds the target's own scheduling delay on the shared cores; it is reported beside it.
STAMPS = {"arrival": "rx_ns", "read": "t_ns"}


def arrivals(records, due_ns, stamp="t_ns"):
    """From one run's records: (first-request lateness in ms per job by `stamp` ("t_ns" or
    "rx_ns"), ascending, jobs whose record lacks that stamp left out; distinct jobs; duplicate
    requests; attempts > 1)."""
    first = {}
    dups = retried = 0
    for r in records:
        if r["idem"] in first:
            dups += 1
        else:
            first[r["idem"]] = r.get(stamp)
        if isinstance(r.get("attempt"), int) and r["attempt"] > 1:
            retried += 1
    lat = sorted((t - due_ns) / 1e6 for t in first.values() if t is not None)
    return lat, len(first), dups, retried


def spread(sorted_vals):
    """p50/p90/p99/max of an ascending list (None when empty)."""
    return {"p50": quantile(sorted_vals, 0.50), "p90": quantile(sorted_vals, 0.90),
            "p99": quantile(sorted_vals, 0.99), "max": sorted_vals[-1] if sorted_vals else None}


def cdf_rows(run, lat, stamp="arrival"):
    """CDF_STEPS + 1 rows (mode, n, run, q, lateness_ms, stamp) sampling the run's
    distribution by one stamp ("arrival" or "read")."""
    return [(run["mode"], run["n"], run["run"], i / CDF_STEPS, quantile(lat, i / CDF_STEPS),
             stamp) for i in range(CDF_STEPS + 1)] if lat else []


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# p50_ms .. max_ms are by arrival (kernel stamp), read_* by the target's read stamp.
RUN_FIELDS = ["run", "mode", "lead_s", "n", "received", "lost", "duplicates", "retried",
              "p50_ms", "p90_ms", "p99_ms", "max_ms", "read_p50_ms", "read_p90_ms",
              "read_p99_ms", "read_max_ms", "no_rx_stamp", "worker_start_p99_ms", "publish_ms",
              "confirm_ms", "rss_mb_w1", "rss_mb_w2", "cpu_s_w1", "cpu_s_w2", "jobs_w1",
              "jobs_w2", "producer_cpu_s", "broker_cpu_s", "target_cpu_s", "floor_ms", "target_floor_p99_ms",
              "target_floor_read_p99_ms",
              "time_wait", "rx_drops", "others_cores", "steal_cores", "due_utc"]
STAGE_FIELDS = ["run", "mode", "n", "stage", "hits", "first_ms", "p50_ms", "p90_ms", "p99_ms",
                "last_ms"]
STAGE_LABELS = {"publish": "producer publishes", "receive": "worker has the delivery",
                "start": "worker starts the request",
                "move": "worker moves the staged request into its connection",
                "release": "worker releases (uncorks) the held request",
                "arrival": "request line arrives (kernel stamp)",
                "read": "target's thread reads it"}


def csv_value(v):
    """Floats rounded for the CSV files (3 decimals: µs for ms values)."""
    return round(v, 3) if isinstance(v, float) else v


def stage_rows(runs):
    rows = []
    for r in runs:
        for k, v in r.get("stages", {}).items():
            rows.append([r["run"], r["mode"], r["n"], k, v["n"]] +
                        [csv_value(v[x]) for x in ("first", "p50", "p90", "p99", "max")])
    return rows


def stage_table(runs):
    """Markdown: for the first traced run of each (mode, N), each stage's first/p50/p99/last
    in ms after T (stages.csv has every run)."""
    out = ["| mode | N | stage | hits | first | p50 | p99 | last |",
           "|---|---:|---|---:|---:|---:|---:|---:|"]
    seen = set()
    for r in runs:
        if (r["mode"], r["n"]) in seen or "stages" not in r:
            continue
        seen.add((r["mode"], r["n"]))
        for k, v in r["stages"].items():
            out.append(f"| {r['mode']} | {r['n']:,} | {STAGE_LABELS.get(k, k)} | {v['n']:,} "
                       f"| {fmt(v['first'])} | {fmt(v['p50'])} | {fmt(v['p99'])} "
                       f"| {fmt(v['max'])} |")
    return "\n".join(out) + "\n"


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def target_of(mode, n, targets):
    """The issue's p99 target for a cell, or None."""
    return targets.get((mode, n))


def latency_table(runs, targets):
    """Markdown table of the latency runs, one row per run: lateness by arrival (the headline)
    and by read."""
    head = ("| mode | N | received | lost | dup | arrival p50 ms | arrival p90 ms "
            "| arrival p99 ms | arrival max ms | p99 target | read p50 ms | read p99 ms "
            "| read max ms | worker RSS MB (w1/w2) | worker CPU s (w1+w2) "
            "| publish / confirm ms | others (cores) | steal (cores) | TIME_WAIT | rx drops |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:"
            "|---:|---:|---:|---:|\n")
    rows = []
    for r in runs:
        t = target_of(r["mode"], r["n"], targets)
        ok = (r["p99_ms"] is not None and r["lost"] == 0 and r["duplicates"] == 0 and
              t is not None and r["p99_ms"] <= t)
        verdict = "-" if t is None else f"≤ {t}: {'met' if ok else 'MISSED'}"
        rows.append(
            f"| {r['mode']} | {r['n']:,} | {r['received']:,} | {r['lost']} | {r['duplicates']} "
            f"| {fmt(r['p50_ms'])} | {fmt(r['p90_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'])} "
            f"| {verdict} | {fmt(r['read_p50_ms'])} | {fmt(r['read_p99_ms'])} "
            f"| {fmt(r['read_max_ms'])} | {fmt(r['rss_mb_w1'], 0)} / {fmt(r['rss_mb_w2'], 0)} "
            f"| {fmt(r['cpu_s_w1'] + r['cpu_s_w2'], 2)} "
            f"| {fmt(r['publish_ms'])} / {fmt(r['confirm_ms'])} | {fmt(r['others_cores'], 2)} "
            f"| {fmt(r.get('steal_cores'), 2)} | {r['time_wait']:,} | {r.get('rx_drops', '-')} |")
    return head + "\n".join(rows) + "\n"


def median_of(vals):
    """Lower median of the values that are not None (None when there are none)."""
    v = sorted(x for x in vals if x is not None)
    return v[(len(v) - 1) // 2] if v else None


def summary_table(runs, targets):
    """Markdown: one row per (mode, N) over its repeats: median p50/p99 by arrival (the
    headline, judged against the target), the p99 range, the worst max, median p99 by read,
    totals of lost and duplicated jobs, and both HTTP floors."""
    cells = {}
    for r in runs:
        cells.setdefault((r["mode"], r["n"]), []).append(r)
    out = ["| mode | N | runs | jobs received / sent | lost | dup | arrival p50 ms (median) "
           "| arrival p99 ms (median) | arrival p99 range | worst arrival max ms | p99 target "
           "| read p99 ms (median) | broker floor ms | HTTP floor p99 ms (arrival / read) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for (mode, n), rs in cells.items():
        p99 = sorted(r["p99_ms"] for r in rs if r["p99_ms"] is not None) or [None]
        mid = median_of(r["p99_ms"] for r in rs)
        lost = sum(r["lost"] for r in rs)
        dup = sum(r["duplicates"] for r in rs)
        t = targets.get((mode, n))
        met = mid is not None and mid <= t and not lost and not dup if t else False
        verdict = "-" if t is None else f"≤ {t}: {'met' if met else 'MISSED'}"
        out.append(f"| {mode} | {n:,} | {len(rs)} | {sum(r['received'] for r in rs):,} / "
                   f"{n * len(rs):,} | {lost} | {dup} | {fmt(median_of(r['p50_ms'] for r in rs))} "
                   f"| {fmt(mid)} | {fmt(p99[0])} - {fmt(p99[-1])} "
                   f"| {fmt(max((r['max_ms'] for r in rs if r['max_ms'] is not None), default=None))} "
                   f"| {verdict} | {fmt(median_of(r['read_p99_ms'] for r in rs))} "
                   f"| {fmt(rs[0].get('floor_ms') if rs[0]['lead_s'] == 0 else None, 0)} "
                   f"| {fmt(rs[0].get('target_floor_p99_ms'))} / "
                   f"{fmt(rs[0].get('target_floor_read_p99_ms'))} |")
    return "\n".join(out) + "\n"


def throughput_table(tp):
    """Markdown table of the throughput run and the raw reference."""
    raw = " / ".join(f"{x['msgs_s']:,.0f}" for x in tp["raw"])
    return (
        "| jobs | received | lost | dup | seconds | salvo jobs/s | raw msgs/s (before / after) "
        "| ratio | worker CPU s (w1+w2) | producer CPU s |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {tp['n']:,} | {tp['received']:,} | {tp['lost']} | {tp['duplicates']} "
        f"| {tp['seconds']:.1f} | {tp['jobs_s']:,.0f} | {raw} | {tp['ratio']:.2f} "
        f"| {tp['cpu_s_w1'] + tp['cpu_s_w2']:.1f} | {tp['producer_cpu_s']:.1f} |\n")


GNUPLOT = """set terminal pngcairo size 900,560 font ",11"
set output '{png}'
set datafile separator ','
set title "Start lateness, {title} (request line at the target - due second)"
set xlabel 'lateness (ms, log scale)'
set ylabel 'fraction of jobs started'
set logscale x
set xrange [{xmin}:*]
set yrange [0:1]
set grid xtics ytics mxtics
set key bottom right
plot {plots}
"""


def plot_mode(cdf_csv, png, mode, title, cells):
    """Draw one PNG: the lateness CDF of each (n, run) in cells, all of `mode`, from cdf.csv:
    by arrival (kernel stamp, solid) and by read (target's thread, dashed). Lateness under
    0.1 ms is drawn at 0.1 (log axis). Returns True when gnuplot succeeded."""
    plots = []
    for n, run in cells:
        for stamp, dash in (("arrival", 1), ("read", 2)):
            # Columns: mode, n, run, q, lateness_ms, stamp; other rows become NaN (not drawn).
            # Files from before the stamp column hold read stamps only: column 6 is empty.
            match = f"(strcol(6) eq '{stamp}' || (strcol(6) eq '' && '{stamp}' eq 'read'))"
            plots.append(f"'{cdf_csv}' using ((strcol(1) eq '{mode}' && $3 == {run} && {match}) "
                         f"? ($5 < 0.1 ? 0.1 : $5) : NaN):4 with lines lw 2 dt {dash} "
                         f"lc {len(plots) // 2 + 1} title 'N = {n:,}, {stamp}'")
    script = GNUPLOT.format(png=png, title=title, xmin=0.1, plots=", \\\n     ".join(plots))
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print(f"gnuplot failed for {png}:\n{r.stderr}")
        return False
    return os.path.exists(png)


def cpu_table(tp):
    """Markdown: CPU microseconds per job (salvo) and per message (rawrate, before and after),
    by component. On two cores throughput is bounded by this sum."""
    n = tp["n"]
    salvo_clients = (tp["producer_cpu_s"] + tp["cpu_s_w1"] + tp["cpu_s_w2"]) / n * 1e6
    salvo_broker = tp["broker_cpu_s"] / n * 1e6
    salvo_target = tp["target_cpu_s"] / n * 1e6
    rows = ["| CPU µs per job | broker | producer + workers (salvo) / rawrate (raw) | target "
            "| total |", "|---|---:|---:|---:|---:|",
            f"| salvo | {salvo_broker:.0f} | {salvo_clients:.0f} | {salvo_target:.0f} "
            f"| {salvo_broker + salvo_clients + salvo_target:.0f} |"]
    for label, r in zip(("raw (before)", "raw (after)"), tp["raw"]):
        b = r["broker_cpu_s"] / r["messages"] * 1e6
        c = r["client_cpu_s"] / r["messages"] * 1e6
        rows.append(f"| {label} | {b:.0f} | {c:.0f} | - | {b + c:.0f} |")
    return "\n".join(rows) + "\n"
