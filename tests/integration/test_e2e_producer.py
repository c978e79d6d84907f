"""End to end, producer restarts and reloads (issue 5, scenarios 9 and 12): the real producer,
stopped and started again on its state directory, or sent SIGHUP, with workers running every
job it fires to the recording target.

9. Producer stopped for three due seconds and restarted (fresh state directory per case, both
   cases side by side): with misfire `once` exactly one replay, the latest missed second,
   fires; with `skip` none does; every other second fires exactly once, none twice.
12. SIGHUP with a broken schedule file: the reload is refused with the error logged as
   file:line, the old schedule keeps firing every second; a fixed file then reloads, keeps the
   unchanged job's rhythm and adds the new one."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import e2e  # noqa: E402
from e2e import (assert_clean, assert_every_second, check_delivery, fail,  # noqa: E402
                 fired_seconds, http_job, iso, log_text, log_times, producer_fired,
                 sleep_to_fraction, sleep_until, stop_ok, wait_delivered, wait_fired,
                 yaml)

DOWN_S = 3  # the producer is away for this many due seconds (at least)


class S:
    fleet = None


def ids_of(name, dues):
    return [e2e.fid(name, d) for d in dues]


def every_second(name, target, **extra):
    return http_job(name, target.url(f"/{name}/{{{{index}}}}"), {"every": "1s"}, **extra)


def test_restart_misfire_once_and_skip():
    f = S.fleet
    target = f.target()
    workers = [f.worker()]
    cases = {"s9once": "once", "s9skip": "skip"}
    scheds = {n: f.schedule([every_second(n, target, misfire=m)]) for n, m in cases.items()}
    first = {n: f.producer(scheds[n]) for n in cases}
    for n, p in first.items():
        wait_fired(p, lambda b: len(b) >= 2, "two firings before the stop")
    sleep_to_fraction(0.5)
    for p in first.values():
        stop_ok(p)
    stopped = time.time()
    # Start again well clear of a whole second, DOWN_S due seconds later.
    sleep_until(int(stopped) + DOWN_S + 0.4)
    second = {n: f.producer(scheds[n], state=first[n].state_dir) for n in cases}
    since = {n: log_times(p, r"notice producer loaded ")[0] for n, p in second.items()}
    for n, p in second.items():
        wait_fired(p, lambda b, n=n: b and b[-1]["due_s"] >= since[n] + 2, "firings after "
                   "the restart")
    sleep_to_fraction(0.5)
    for p in second.values():
        stop_ok(p)
    for n, policy in cases.items():
        before = fired_seconds(producer_fired(first[n]), n)
        after = producer_fired(second[n])
        assert_every_second(before, n)
        last, missed = before[-1], int(since[n])  # the latest second due before the restart
        if missed - last < 2:
            fail(f"{n}: only {missed - last} seconds missed; the test needs at least two")
        replay = [b["due_s"] for b in after if b["replay"]]
        regular = [b["due_s"] for b in after if not b["replay"]]
        assert_every_second(regular, n)
        want_replay = [missed] if policy == "once" else []
        if replay != want_replay or regular[0] != missed + 1:
            fail(f"{n} (misfire {policy}): after the restart it replayed "
                 f"{[iso(x) for x in replay]} and resumed at {iso(regular[0])}; wanted "
                 f"{[iso(x) for x in want_replay]} and {iso(missed + 1)}")
        log = log_text(second[n])
        if f"misfire {policy}:" not in log:
            fail(f"{n}: the restarted producer did not log its misfire {policy} decision")
        want = before + want_replay + regular
        ids = ids_of(n, want)
        wait_delivered(target, f"/{n}", ids, timeout=30)
        f.wait_settled(timeout=30)
        d = check_delivery(target, f"/{n}", ids, max_dups=0)
        got = sorted(e2e.parse_fid(k)[1] for k, recs in d.by_key.items() if recs)
        if got != want:
            fail(f"{n}: the target saw seconds {[iso(x) for x in got]}, wanted "
                 f"{[iso(x) for x in want]}")
        print(f"  misfire {policy}: {len(before)} before the stop, missed "
              f"{iso(last + 1)}..{iso(missed)}, replayed {[iso(x) for x in want_replay]}, "
              f"{len(regular)} after")
    for w in workers:
        stop_ok(w)
    assert_clean(*first.values(), *second.values(), *workers)
    target.stop()


def broken_schedule(target):
    """The s12 job unchanged plus a job with a bad cron expression; returns (text, line of the
    bad value)."""
    good = yaml({"jobs": [every_second("s12", target)]})
    bad = ('  - name: "s12new"\n'
           '    cron: "61 * * * * *"\n'
           f'    http:\n      url: "{target.url("/s12new/0")}"\n')
    text = f"# broken on purpose\n{good}\n{bad}"
    line = text.splitlines().index('    cron: "61 * * * * *"') + 1
    return text, line


def test_sighup_with_broken_file_keeps_schedule():
    f = S.fleet
    target = f.target()
    workers = [f.worker()]
    path = f.schedule([every_second("s12", target)])
    producer = f.producer(path)
    wait_fired(producer, lambda b: len(b) >= 2, "two firings before the reload")
    text, line = broken_schedule(target)
    with open(path, "w") as fh:
        fh.write(text)
    sleep_to_fraction(0.5)
    t_hup = time.time()
    producer.send_signal(signal.SIGHUP)
    producer.wait_log(r"reload of .* failed", timeout=10)
    where = producer.wait_log(rf"{path}:{line}:\d+: [^\n]*", timeout=5).group(0)
    print(f"  refused: {where}")
    wait_fired(producer, lambda b: b[-1]["due_s"] >= t_hup + 3, "firings after the refusal")
    # Fixed: the unchanged job keeps firing, the added one starts.
    f.schedule([every_second("s12", target), every_second("s12b", target)],
               name=os.path.splitext(os.path.basename(path))[0])
    producer.send_signal(signal.SIGHUP)
    producer.wait_log(r"reloaded .*\(1 unchanged, 0 changed, 1 added, 0 removed\)", timeout=10)
    t_fix = log_times(producer, r"reloaded ")[0]
    wait_fired(producer, lambda b: b[-1]["due_s"] >= t_fix + 3, "firings after the fix")
    sleep_to_fraction(0.5)
    stop_ok(producer)
    fired = producer_fired(producer)
    s12 = fired_seconds(fired, "s12")
    assert_every_second(s12, "s12")
    if not s12[0] < t_hup < s12[-1]:
        fail("s12 did not fire on both sides of the refused reload")
    # Firings of both jobs due together are one batch, logged under s12 with "(+1 more)".
    s12b = sorted(b["due_s"] for b in fired if b["job"] == "s12" and b["more"] == 1)
    if not s12b or s12b[0] < t_fix:
        fail(f"s12b fired at {[iso(x) for x in s12b]}, not after the reload at {t_fix:.3f}")
    assert_every_second(s12b, "s12b")
    for name, dues in (("s12", s12), ("s12b", s12b)):
        ids = ids_of(name, dues)
        wait_delivered(target, f"/{name}", ids, timeout=30)
        f.wait_settled(timeout=30)
        check_delivery(target, f"/{name}", ids, max_dups=0)
    if e2e.deliveries(target, "/s12new", []).requests:
        fail("a job of the refused schedule file ran")
    for w in workers:
        stop_ok(w)
    assert_clean(producer, *workers)
    target.stop()


if __name__ == "__main__":
    e2e.main("e2e-producer", [
        test_restart_misfire_once_and_skip,
        test_sighup_with_broken_file_keeps_schedule,
    ], S)
