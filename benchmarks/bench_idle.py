"""Idle cost of the real `salvage run`: resident memory and CPU with N accounts polled over loopback.

Serves N .ics calendars from a loopback ``http.server`` in this process, writes a config with N
ics-over-HTTP + folder-drafts accounts polled every ``--poll-minutes`` (default 2), starts the real
``salvage run``, waits until every account has been polled once, then samples the process's
``VmRSS``/``VmHWM`` (``/proc/PID/status``) and CPU time (``utime + stime`` of ``/proc/PID/stat``)
for ``--seconds`` (default 300). Finally it sends SIGTERM and checks the service exits 0. Linux
only. Usage::

    .venv/bin/python benchmarks/bench_idle.py [--seconds 300] [--accounts 10] [--poll-minutes 2] [--json]

Goal: under 80 MB RSS and well under 1 % of one core.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc
GOAL_RSS_MB = 80.0
GOAL_CPU_PERCENT = 1.0


# ---- calendars ------------------------------------------------------------------------------------


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_ics(index: int, now: datetime) -> str:
    """A realistic calendar: a weekly team meeting, a dozen one-off meetings and four interviews, the
    first of which clashes with a dentist appointment (so the service has a live draft to watch)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    company = f"Company{index}"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:-//Salvage bench//cal {index}//EN", "CALSCALE:GREGORIAN"]

    def event(uid: str, start: datetime, minutes: int, summary: str, organizer: str, extra: list[str]) -> None:
        lines.extend([
            "BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{_stamp(now - timedelta(days=3))}",
            f"DTSTART:{_stamp(start)}", f"DTEND:{_stamp(start + timedelta(minutes=minutes))}",
            f"SUMMARY:{summary}", f"ORGANIZER;CN=Organizer:mailto:{organizer}",
            "ATTENDEE;CN=Alex Morgan;PARTSTAT=ACCEPTED:mailto:alex.morgan@example.com",
            f"ATTENDEE;CN=Organizer;PARTSTAT=ACCEPTED:mailto:{organizer}",
            *extra, "END:VEVENT",
        ])

    event(f"weekly-{index}@work.example", day + timedelta(hours=9, minutes=15), 15, "Team sync",
          "lead@work.example", ["RRULE:FREQ=WEEKLY;BYDAY=MO,TH", "LOCATION:Room 2"])
    for i in range(12):
        start = day + timedelta(days=i, hours=10 + (i % 5))
        event(f"meeting-{index}-{i}@work.example", start, 45, f"Project meeting {i}", "lead@work.example",
              ["LOCATION:https://teams.microsoft.com/l/meetup-join/19%3ameeting_bench"])
    # 40 interviews over 20 days, two a day after the meetings: no two calendars' interviews meet
    slots = [index * 4 + i for i in range(4)]
    starts = [day + timedelta(days=s // 2, hours=15, minutes=0 if s % 2 == 0 else 75) for s in slots]
    for i, start in enumerate(starts):
        event(f"interview-{index}-{i}@{company.lower()}.example", start, 60,
              f"Technical interview - {company} round {i + 1}", f"recruiter@{company.lower()}.example",
              ["DESCRIPTION:Interview with the engineering team.\\nJoin: https://zoom.us/j/123456789",
               f"LOCATION:https://zoom.us/j/12345678{i}"])
    # a dentist appointment on top of the first interview: one reschedule draft per calendar
    event(f"dentist-{index}@me.example", starts[0] + timedelta(minutes=15), 30, "Dentist",
          "alex.morgan@example.com", [])
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the calendar folder; counts requests instead of logging them."""

    requests = 0
    lock = threading.Lock()
    times: dict[str, list[float]] = {}  # path -> when it was asked for (time.monotonic)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        with QuietHandler.lock:
            QuietHandler.requests += 1
            QuietHandler.times.setdefault(self.path, []).append(time.monotonic())


def serve_calendars(folder: Path) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, name="ics-server", daemon=True).start()
    return server


def write_config(work: Path, port: int, accounts: int, poll_minutes: float) -> Path:
    lines = [
        "user:", "  name: Alex Morgan", "  email: alex.morgan@example.com", "  timezone: Europe/London",
        "accounts:",
    ]
    for i in range(accounts):
        lines += [
            f"  - name: cal{i}",
            f"    calendar: {{type: ics, url: 'http://127.0.0.1:{port}/cal{i}.ics'}}",
            f"    drafts: {{type: folder, path: drafts/cal{i}}}",
            f"    poll_minutes: {poll_minutes}",
        ]
    lines += ["state:", "  path: state/state.sqlite3", ""]
    path = work / "config.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ---- /proc sampling -------------------------------------------------------------------------------


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def salvage_command() -> list[str]:
    script = Path(sys.executable).with_name("salvage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "daemon.cli"]


def wait_until_polled(health: Path, accounts: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Seconds until the health file shows every account polled once."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"salvage run exited early with status {proc.returncode}")
        try:
            data = json.loads(health.read_text())
            polled = [a for a in data.get("accounts", []) if a.get("last_poll")]
            if len(polled) >= accounts:
                return time.monotonic() - began
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise SystemExit(f"not every account was polled within {timeout:.0f}s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="salvage-bench-idle-"))
    server = None
    proc = None
    try:
        calendars = work / "calendars"
        calendars.mkdir()
        now = datetime.now(UTC)
        for i in range(args.accounts):
            (calendars / f"cal{i}.ics").write_text(calendar_ics(i, now), encoding="utf-8")
        server = serve_calendars(calendars)
        config = write_config(work, server.server_address[1], args.accounts, args.poll_minutes)
        env = {**os.environ, "SALVAGE_STATE_DIR": str(work / "state"), "SALVAGE_CONFIG_DIR": str(work),
               "PYTHONPATH": str(ROOT)}
        log = (work / "salvage.log").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen([*salvage_command(), "run", "--config", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=work)
        ready = wait_until_polled(work / "state" / "health.json", args.accounts, proc, timeout=120)
        time.sleep(args.settle)  # let the start-up work (imports, first passes, drafts) finish
        cpu_before = cpu_seconds(proc.pid)
        startup_cpu = cpu_before
        requests_before = QuietHandler.requests
        t0 = time.monotonic()
        rss: list[int] = []
        hwm = 0
        while time.monotonic() - t0 < args.seconds:
            if proc.poll() is not None:
                raise SystemExit(f"salvage run died during the measurement (status {proc.returncode})")
            current, hwm = memory_kb(proc.pid)
            rss.append(current)
            time.sleep(min(args.sample_every, max(0.0, args.seconds - (time.monotonic() - t0))))
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(proc.pid) - cpu_before
        current, hwm = memory_kb(proc.pid)
        rss.append(current)
        requests = QuietHandler.requests - requests_before
        drafts = sum(1 for _ in (work / "drafts").rglob("*.eml")) if (work / "drafts").exists() else 0

        stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        stop_seconds = time.monotonic() - stop
        log.close()
        errors = [line for line in (work / "salvage.log").read_text(errors="replace").splitlines()
                  if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
        return {
            "accounts": args.accounts,
            "poll_minutes": args.poll_minutes,
            "seconds": round(elapsed, 1),
            "startup_seconds": round(ready, 1),
            "startup_cpu_seconds": round(startup_cpu, 2),
            "rss_mb": {"min": round(min(rss) / 1024, 1), "mean": round(statistics.fmean(rss) / 1024, 1),
                       "max": round(max(rss) / 1024, 1)},
            "peak_rss_mb": round(hwm / 1024, 1),
            "cpu_seconds": round(cpu, 3),
            "cpu_percent": round(100 * cpu / elapsed, 3),
            "http_requests": requests,
            "polls_per_account": round(requests / max(1, args.accounts), 1),
            "drafts": drafts,
            "exit_code": code,
            "stop_seconds": round(stop_seconds, 2),
            "errors_logged": errors[:5],
            "wall_seconds": round(time.monotonic() - started, 1),
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if server is not None:
            server.shutdown()
            server.server_close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="measurement window (default 300)")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--poll-minutes", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the first polls")
    parser.add_argument("--sample-every", type=float, default=1.0, help="seconds between RSS samples")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (config, state, log)")
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        parser.error("needs Linux /proc")
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        r = result
        print(f"salvage run, {r['accounts']} ics-over-HTTP + folder accounts, poll every {r['poll_minutes']} min")
        print(f"  start-up: every account polled after {r['startup_seconds']} s "
              f"({r['startup_cpu_seconds']} s CPU), {r['drafts']} drafts written")
        print(f"  measured over {r['seconds']} s: {r['http_requests']} calendar downloads "
              f"({r['polls_per_account']} polls per account)")
        print(f"  RSS: {r['rss_mb']['mean']} MB mean ({r['rss_mb']['min']}–{r['rss_mb']['max']}), "
              f"peak (VmHWM) {r['peak_rss_mb']} MB   [goal < {GOAL_RSS_MB:.0f} MB]")
        print(f"  CPU: {r['cpu_seconds']} s = {r['cpu_percent']} % of one core   [goal well under "
              f"{GOAL_CPU_PERCENT:.0f} %]")
        print(f"  SIGTERM: exit status {r['exit_code']} after {r['stop_seconds']} s")
        for line in r["errors_logged"]:
            print(f"  logged: {line}")
    ok = (result["exit_code"] == 0 and result["rss_mb"]["max"] < GOAL_RSS_MB
          and result["cpu_percent"] < GOAL_CPU_PERCENT)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
