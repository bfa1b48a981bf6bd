"""Scale: what many accounts, a big calendar and start-up cost, each as a ratio against its floor.

Every number is measured in this run, beside a floor measured in the same run on the same machine:

* ``startup`` — ``salvage --help`` against ``python -c pass`` (median wall time of ``--repeat`` runs).
* ``once`` — ``salvage run --once`` over N ics-over-HTTP + folder accounts served from loopback: a
  first pass, a pass where every answer is 304 (the drafts the first pass made are news to the
  plan), and one more such pass where nothing at all has changed. The floor is a bare script in its own
  interpreter making the same requests with one httpx client (and, for the first pass, parsing the
  same files with icalendar).
* ``check`` — ``salvage check --format json`` on one big .ics file against a bare script that parses
  the same file with icalendar. The output's SHA-256 is printed so two builds can be compared.
* ``service`` — the real ``salvage run`` with N accounts for ``--service-seconds``: CPU share of one
  core and RSS when nothing changes, how many polls each account got against its schedule, the
  ceiling (accounts at 100 % of one core) extrapolated linearly from the measured CPU per poll, the
  start-up (until every account was polled once), and one polling cycle of every account against one
  unchanged ``run --once`` over the same accounts (when ``once`` ran too).

CPU is user + system time of the measured process (``os.wait4`` for one-shot commands, /proc for the
service). Linux only. Usage::

    .venv/bin/python benchmarks/bench_scale.py [--accounts 1000] [--events 50000] [--only once check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_idle import (  # noqa: E402
    QuietHandler,
    calendar_ics,
    cpu_seconds,
    memory_kb,
    salvage_command,
    serve_calendars,
    wait_until_polled,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
SECTIONS = ("startup", "once", "check", "service")


@dataclass
class Run:
    """One child process: wall and CPU seconds, peak RSS, exit status, what it printed."""

    wall: float
    cpu: float
    max_rss_mb: float
    status: int
    stdout: bytes

    def row(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 3), "cpu_s": round(self.cpu, 3), "max_rss_mb": round(self.max_rss_mb, 1)}


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> Run:
    """Run ``argv`` to the end and account for exactly that child (``wait4``, not RUSAGE_CHILDREN)."""
    out = cwd / ".stdout"
    with out.open("wb") as sink:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, out.read_bytes())


def ratio(value: float, floor: float) -> float:
    return round(value / floor, 2) if floor > 0 else float("inf")


# ---- floors: the same work without Salvage --------------------------------------------------------

FLOOR_REQUESTS = """
import sys, httpx, icalendar
urls, parse = sys.argv[2:], sys.argv[1] == "parse"
with httpx.Client() as client:
    for url in urls:
        if parse:
            icalendar.Calendar.from_ical(client.get(url).content)
        else:
            assert client.get(url, headers={"If-Modified-Since": "Sun, 01 Jan 2034 00:00:00 GMT"}).status_code == 304
"""

FLOOR_PARSE = """
import sys, icalendar
icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read())
"""


# ---- sections -------------------------------------------------------------------------------------


def startup(repeat: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    bare = [measure([sys.executable, "-c", "pass"], env, work).wall for _ in range(repeat)]
    helped = [measure([*salvage_command(), "--help"], env, work).wall for _ in range(repeat)]
    floor, value = statistics.median(bare), statistics.median(helped)
    return {"python_pass_s": round(floor, 3), "salvage_help_s": round(value, 3),
            "above_floor_s": round(value - floor, 3), "ratio": ratio(value, floor)}


def once(accounts: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    calendars = work / "calendars"
    calendars.mkdir()
    for i in range(accounts):
        (calendars / f"cal{i}.ics").write_text(calendar_ics(i, NOW), encoding="utf-8")
    server = serve_calendars(calendars)
    try:
        port = server.server_address[1]
        config = write_config(work, port, accounts, 5.0)
        command = [*salvage_command(), "run", "--once", "--config", str(config), "--now", NOW.isoformat()]
        first = measure(command, env, work)
        requests_first = QuietHandler.requests
        unchanged = measure(command, env, work)
        requests_unchanged = QuietHandler.requests - requests_first
        settled = measure(command, env, work)  # nothing changed since the last pass, drafts included
        urls = [f"http://127.0.0.1:{port}/cal{i}.ics" for i in range(accounts)]
        floor_first = measure([sys.executable, "-c", FLOOR_REQUESTS, "parse", *urls], env, work)
        floor_unchanged = measure([sys.executable, "-c", FLOOR_REQUESTS, "304", *urls], env, work)
    finally:
        server.shutdown()
        server.server_close()
    drafts = sum(1 for _ in (work / "drafts").rglob("*.eml")) if (work / "drafts").exists() else 0
    return {
        "accounts": accounts,
        "status": [first.status, unchanged.status],
        "requests": [requests_first, requests_unchanged],
        "drafts": drafts,
        "first": first.row(), "first_floor": floor_first.row(),
        "first_ratio_cpu": ratio(first.cpu, floor_first.cpu),
        "unchanged": unchanged.row(), "unchanged_floor": floor_unchanged.row(),
        "unchanged_ratio_cpu": ratio(unchanged.cpu, floor_unchanged.cpu),
        "unchanged_ratio_wall": ratio(unchanged.wall, floor_unchanged.wall),
        "settled": settled.row(), "settled_floor": floor_unchanged.row(),
        "settled_ratio_cpu": ratio(settled.cpu, floor_unchanged.cpu),
    }


def big_calendar(path: Path, events: int) -> None:
    """``events`` one-off events over four years (three past, one ahead) plus a few weekly series:
    a long-lived calendar, most of it history outside the window."""
    first = NOW - timedelta(days=3 * 365)
    span = 4 * 365 * 24 * 3600
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Salvage bench//big//EN"]
    for i in range(events):
        start = first + timedelta(seconds=(i * 7919 * 600) % span)
        start = start.replace(minute=(start.minute // 15) * 15, second=0)
        interview = i % 97 == 0
        summary = f"Technical interview - Company{i}" if interview else f"Meeting {i}"
        lines += ["BEGIN:VEVENT", f"UID:big-{i}@bench.example", "DTSTAMP:20240101T000000Z",
                  f"DTSTART:{start:%Y%m%dT%H%M%SZ}", f"DTEND:{start + timedelta(minutes=45):%Y%m%dT%H%M%SZ}",
                  f"SUMMARY:{summary}", f"ORGANIZER;CN=Someone:mailto:person{i % 50}@company{i % 13}.example",
                  "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alex.morgan@example.com",
                  "DESCRIPTION:Agenda and notes for the meeting\\, with a link https://zoom.us/j/1234567",
                  "END:VEVENT"]
    for j in range(20):
        start = first + timedelta(days=j, hours=9)
        lines += ["BEGIN:VEVENT", f"UID:weekly-{j}@bench.example", "DTSTAMP:20240101T000000Z",
                  f"DTSTART:{start:%Y%m%dT%H%M%SZ}", f"DTEND:{start + timedelta(minutes=30):%Y%m%dT%H%M%SZ}",
                  "RRULE:FREQ=WEEKLY", f"SUMMARY:Weekly {j}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def check(events: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    path = work / "big.ics"
    big_calendar(path, events)
    config = work / "check.yaml"
    config.write_text(
        "user: {name: Alex Morgan, email: alex.morgan@example.com, timezone: Europe/London}\n"
        f"accounts:\n  - name: big\n    calendar: {{type: ics, path: '{path}'}}\n"
        f"    drafts: {{type: folder, path: '{work / 'drafts-check'}'}}\n"
        f"state: {{path: '{work / 'check.sqlite3'}'}}\n", encoding="utf-8")
    result = measure([*salvage_command(), "check", "--format", "json", "--config", str(config),
                      "--now", NOW.isoformat()], env, work)
    floor = measure([sys.executable, "-c", FLOOR_PARSE, str(path)], env, work)
    same, whole_s, skipping_s = window_identity(config, path)
    try:
        interviews = len(json.loads(result.stdout)["interviews"])
    except (ValueError, KeyError):
        interviews = -1
    return {"events": events, "file_mb": round(path.stat().st_size / 2**20, 1), "status": result.status,
            "interviews": interviews, "sha256": hashlib.sha256(result.stdout).hexdigest()[:16],
            "check": result.row(), "floor_parse": floor.row(), "ratio_cpu": ratio(result.cpu, floor.cpu),
            "window_skip_identical": same, "read_whole_cpu_s": round(whole_s, 3),
            "read_skipping_cpu_s": round(skipping_s, 3)}


def window_identity(config_path: Path, path: Path) -> tuple[bool, float, float]:
    """Read the file through the ics provider twice, parsing it whole and with the outside-window
    pass, in this process: whether the events and problems are identical, and each read's CPU time."""
    from daemon.config import load_config
    from providers import ics_window, registry
    from providers.base import Window
    from providers.ics import IcsSource

    config = load_config(config_path)
    window = Window(NOW - timedelta(days=config.window.past_days), NOW + timedelta(days=config.window.future_days))
    results, cpu = [], []
    for min_bytes in (1 << 40, ics_window.MIN_BYTES):
        saved, ics_window.MIN_BYTES = ics_window.MIN_BYTES, min_bytes
        try:
            began = time.process_time()
            account = config.accounts[0]
            found = IcsSource(account.calendar, registry.context(account, config)).fetch(window, None)  # type: ignore[arg-type]
            cpu.append(time.process_time() - began)
        finally:
            ics_window.MIN_BYTES = saved
        results.append((found.events, found.problems))
    return results[0] == results[1], cpu[0], cpu[1]


def service(accounts: int, poll_minutes: float, seconds: float, env: dict[str, str], work: Path) -> dict[str, Any]:
    calendars = work / "svc-calendars"
    calendars.mkdir()
    now = datetime.now(UTC)
    for i in range(accounts):
        (calendars / f"cal{i}.ics").write_text(calendar_ics(i, now), encoding="utf-8")
    QuietHandler.times = {}  # the `once` section asked for the same paths
    server = serve_calendars(calendars)
    home = work / "svc"
    home.mkdir()
    svc_env = {**env, "SALVAGE_STATE_DIR": str(home / "state"), "SALVAGE_CONFIG_DIR": str(home)}
    proc = None
    try:
        config = write_config(home, server.server_address[1], accounts, poll_minutes)
        with (home / "salvage.log").open("wb") as log:
            proc = subprocess.Popen([*salvage_command(), "run", "--config", str(config)], stdout=log,
                                    stderr=subprocess.STDOUT, env=svc_env, cwd=home)
            ready = wait_until_polled(home / "state" / "health.json", accounts, proc, timeout=1800)
            startup_cpu = cpu_seconds(proc.pid)
            time.sleep(5)
            cpu0, requests0, t0 = cpu_seconds(proc.pid), QuietHandler.requests, time.monotonic()
            rss = []
            while time.monotonic() - t0 < seconds:
                if proc.poll() is not None:
                    raise SystemExit(f"salvage run died during the measurement (status {proc.returncode})")
                rss.append(memory_kb(proc.pid)[0])
                time.sleep(1.0)
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            requests = QuietHandler.requests - requests0
            hwm = memory_kb(proc.pid)[1]
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        server.shutdown()
        server.server_close()
    expected = accounts * elapsed / (poll_minutes * 60)
    # Every account's polls from start-up to the end: the longest gap between two polls of one account
    # says whether each was polled on schedule (its interval, give or take the jitter).
    gaps = [b - a for times in QuietHandler.times.values() for a, b in zip(times, times[1:], strict=False)]
    twice = sum(1 for times in QuietHandler.times.values() if len(times) >= 2)
    share = cpu / elapsed
    per_poll = cpu / requests if requests else float("inf")
    return {
        "accounts": accounts, "poll_minutes": poll_minutes, "seconds": round(elapsed, 1),
        "startup_s": round(ready, 1), "startup_cpu_s": round(startup_cpu, 1), "cpu_percent": round(100 * share, 2),
        "rss_mb_mean": round(statistics.fmean(rss) / 1024, 1), "peak_rss_mb": round(hwm / 1024, 1),
        "polls": requests, "polls_expected": round(expected, 1),
        "on_schedule": round(requests / expected, 2) if expected else None,
        "accounts_polled_twice": twice, "longest_gap_s": round(max(gaps), 1) if gaps else None,
        "cpu_ms_per_poll": round(1000 * per_poll, 2),
        "cycle_cpu_s": round(per_poll * accounts, 2) if requests else None,  # one poll of every account
        "ceiling_accounts": {f"{m} min": int(m * 60 / per_poll) if requests else 0 for m in (2, 5, 15)},
        "exit_code": code,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--poll-minutes", type=float, default=5.0)
    parser.add_argument("--service-seconds", type=float, default=330.0, help="at least one poll interval")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        parser.error("needs Linux /proc")
    work = Path(tempfile.mkdtemp(prefix="salvage-bench-scale-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SALVAGE_STATE_DIR": str(work / "state"),
           "SALVAGE_CONFIG_DIR": str(work), "NO_COLOR": "1"}
    # A user's Python keeps compiled modules; with PYTHONDONTWRITEBYTECODE set here, every run would
    # compile Salvage's modules again (a few tenths of a second) and the floor, all site-packages, not.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    results: dict[str, Any] = {}
    try:
        if "startup" in args.only:
            results["startup"] = startup(args.repeat, env, work)
        if "once" in args.only:
            results["once"] = once(args.accounts, env, work)
        if "check" in args.only:
            results["check"] = check(args.events, env, work)
        if "service" in args.only:
            results["service"] = service(args.accounts, args.poll_minutes, args.service_seconds, env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"Salvage scale benchmark ({os.cpu_count()} cores)")
    if "startup" in results:
        r = results["startup"]
        print(f"  startup: salvage --help {r['salvage_help_s']} s vs python -c pass {r['python_pass_s']} s: "
              f"+{r['above_floor_s']} s ({r['ratio']}x)")
    if "once" in results:
        r = results["once"]
        print(f"  run --once, {r['accounts']} ics-URL accounts (exit {r['status']}, {r['drafts']} drafts, "
              f"requests {r['requests']}):")
        for name in ("first", "unchanged", "settled"):
            s, f = r[name], r[f"{name}_floor"]
            print(f"    {name:>9}: {s['wall_s']} s wall, {s['cpu_s']} s CPU, {s['max_rss_mb']} MiB | floor "
                  f"{f['wall_s']} s, {f['cpu_s']} s CPU, {f['max_rss_mb']} MiB | CPU {r[f'{name}_ratio_cpu']}x")
    if "check" in results:
        r = results["check"]
        c, f = r["check"], r["floor_parse"]
        print(f"  check, {r['events']} events ({r['file_mb']} MB, exit {r['status']}, {r['interviews']} interviews,"
              f" output {r['sha256']}): {c['cpu_s']} s CPU, {c['max_rss_mb']} MiB | bare parse {f['cpu_s']} s,"
              f" {f['max_rss_mb']} MiB | {r['ratio_cpu']}x")
        print(f"    ics read in-process: whole file {r['read_whole_cpu_s']} s CPU, skipping one-off events outside"
              f" the window {r['read_skipping_cpu_s']} s; identical events and problems: {r['window_skip_identical']}")
    if "service" in results:
        r = results["service"]
        print(f"  service, {r['accounts']} accounts every {r['poll_minutes']} min, {r['seconds']} s: "
              f"{r['cpu_percent']} % of a core, RSS {r['rss_mb_mean']} MiB (peak {r['peak_rss_mb']}), "
              f"{r['polls']} polls of {r['polls_expected']} due ({r['on_schedule']}), {r['cpu_ms_per_poll']} ms CPU"
              f"/poll, ceiling {r['ceiling_accounts']}, exit {r['exit_code']}")
        print(f"    start-up until every account was polled once: {r['startup_s']} s, {r['startup_cpu_s']} s CPU;"
              f" {r['accounts_polled_twice']} accounts polled again, the longest gap between two polls of one"
              f" account {r['longest_gap_s']} s (interval {60 * r['poll_minutes']:g} s, jitter up to 30 s)")
        if "once" in results and r["cycle_cpu_s"] is not None and r["accounts"] == results["once"]["accounts"]:
            once_cpu = results["once"]["unchanged"]["cpu_s"]
            print(f"    one polling cycle of every account: {r['cycle_cpu_s']} s CPU = "
                  f"{ratio(r['cycle_cpu_s'], once_cpu)}x one unchanged run --once over the same accounts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
