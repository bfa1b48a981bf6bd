"""Benchmark the ics source on pathological calendars: a 50 MB file and each runaway recurrence rule.

Each measurement runs in a fresh child process; the figure reported is its peak resident size
(Linux ``VmHWM``, reset after the imports) above its resident size after its imports. For every file two
things are measured:

- **floor**: the bare ``icalendar.Calendar.from_ical`` parse of the file (what any reader pays);
- **salvage**: ``IcsSource.fetch`` over a 31-day window (parse, bounded expansion, normalisation).

The ratio salvage/floor is the price of Salvage's own work on top of the parse. For the runaway rules
the unbounded expansion (``recurring_ical_events`` alone, as before the bounds) is also run, with a
time limit (default 20 s), to show what the bounds prevent. Usage::

    .venv/bin/python benchmarks/bench_pathological.py [--megabytes 50] [--unbounded-seconds 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import random
import resource
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")  # the events' wall clock (written with TZID)
WINDOW_START = datetime(2026, 11, 30, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=31)

RUNAWAY = {
    "FREQ=SECONDLY (no end)": "DTSTART:20261201T090000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY\r\n",
    "FREQ=MINUTELY (no end)": "DTSTART:20261201T090000Z\r\nDURATION:PT1M\r\nRRULE:FREQ=MINUTELY\r\n",
    "FREQ=MINUTELY since 2001": "DTSTART:20010101T090000Z\r\nDURATION:PT1M\r\nRRULE:FREQ=MINUTELY\r\n",
    "INTERVAL=0": "DTSTART:20261201T090000Z\r\nDURATION:PT30M\r\nRRULE:FREQ=DAILY;INTERVAL=0\r\n",
    "COUNT=1000000 (secondly)": "DTSTART:20261201T090000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY;COUNT=1000000\r\n",
    "BYHOUR x BYMINUTE x BYSECOND": (
        "DTSTART:20261201T090000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=DAILY;BYHOUR="
        + ",".join(map(str, range(24))) + ";BYMINUTE=" + ",".join(map(str, range(60)))
        + ";BYSECOND=" + ",".join(map(str, range(60))) + "\r\n"
    ),
}


def _event(uid: str, start: datetime, minutes: int, title: str, body: str, rule: str = "") -> str:
    end = start + timedelta(minutes=minutes)
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID=Europe/London:{start:%Y%m%dT%H%M%S}\r\nDTEND;TZID=Europe/London:{end:%Y%m%dT%H%M%S}\r\n"
        f"SUMMARY:{title}\r\nDESCRIPTION:{body}\r\nLOCATION:Room {uid[-3:]}\r\n"
        f"ORGANIZER;CN=Organizer {uid[-4:]}:mailto:org{uid[-4:]}@example.com\r\n"
        f"ATTENDEE;CN=Sam;PARTSTAT=ACCEPTED:mailto:sam@example.com\r\n"
        f"ATTENDEE;CN=Guest;PARTSTAT=NEEDS-ACTION:mailto:guest{uid[-3:]}@example.com\r\n"
        f"{rule}END:VEVENT\r\n"
    )


VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/London\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\n"
    "TZNAME:BST\r\nDTSTART:19700329T010000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nTZNAME:GMT\r\nDTSTART:19701025T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def big_calendar(megabytes: float, seed: int = 7) -> bytes:
    """Just under ``megabytes`` MiB of calendar: ten years of meetings, 1 in 50 a weekly or daily series."""
    rng = random.Random(seed)
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//salvage bench//EN\r\n" + VTIMEZONE
    parts = [head]
    size = len(head)
    target = int(megabytes * 1024 * 1024)
    origin = datetime(2018, 1, 1, 8, tzinfo=LONDON)
    i = 0
    while size < target:
        start = origin + timedelta(days=rng.randrange(3650), minutes=15 * rng.randrange(40))
        rule = ""
        if i % 50 == 0:
            rule = rng.choice(["RRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\n", "RRULE:FREQ=DAILY;COUNT=400\r\n",
                               "RRULE:FREQ=WEEKLY;INTERVAL=2\r\n"])
        title = rng.choice(["Design sync", "1:1", "Interview: backend engineer", "Planning", "Lunch"])
        body = "Agenda: " + " ".join(rng.choice(["notes", "review", "budget", "roadmap", "demo"]) for _ in range(30))
        text = _event(f"bench-{i:08d}", start, rng.choice([30, 45, 60]), title, body, rule)
        if size + len(text) + 64 > target:
            break
        parts.append(text)
        size += len(text)
        i += 1
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts).encode()


def runaway_calendar(rule: str) -> bytes:
    normal = "".join(_event(f"ok-{i:04d}", datetime(2026, 12, 1 + i, 10, tzinfo=LONDON), 60, "Interview: platform", "x")
                     for i in range(20))
    bad = f"BEGIN:VEVENT\r\nUID:runaway\r\nSUMMARY:Runaway\r\n{rule}END:VEVENT\r\n"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//salvage bench//EN\r\n" + VTIMEZONE + normal + bad
            + "END:VCALENDAR\r\n").encode()


# ---- child processes ------------------------------------------------------------------------------


def _child(kind: str, path: str, out: Any) -> None:
    import icalendar
    import recurring_ical_events

    from daemon.config import parse_config
    from providers import registry
    from providers.base import Window

    base = _reset_peak()
    began = time.perf_counter()
    detail: dict[str, Any] = {}
    if kind == "floor":
        icalendar.Calendar.from_ical(Path(path).read_bytes())
    elif kind == "unbounded":
        cal = icalendar.Calendar.from_ical(Path(path).read_bytes())
        found = recurring_ical_events.of(cal).between(date(2026, 11, 28), date(2027, 1, 2))
        detail["occurrences"] = len(found)
    else:
        config = parse_config(
            "user: {name: Sam, email: sam@example.com, timezone: Europe/London}\n"
            f"accounts:\n  - name: main\n    calendar: {json.dumps({'type': 'ics', 'path': path})}\n"
            "    drafts: {type: folder, path: drafts}\n",
            Path(path).parent / "config.yaml",
        )
        result = registry.open_calendar(config.accounts[0], registry.context(config.accounts[0], config)).fetch(Window(WINDOW_START, WINDOW_END), None)
        detail["events"] = len(result.events)
        detail["problems"] = len(result.problems)
    seconds = time.perf_counter() - began
    peak = _peak_kb()
    out.put({"seconds": seconds, "peak_mb": (peak - base) / 1024, "rss_mb": peak / 1024, **detail})


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> int:
    """Reset the peak resident size (Linux: VmHWM, via clear_refs) and return the current size in kB.

    ``ru_maxrss`` cannot be used: a spawned child inherits its parent's peak across fork and exec.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return _status_kb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kb() -> int:
    try:
        return _status_kb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(kind: str, path: Path, limit: float | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh process; ``None`` values when it outlived ``limit`` seconds."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, str(path), out))
    began = time.perf_counter()
    proc.start()
    try:
        while True:
            try:
                return out.get(timeout=0.5)  # type: ignore[no-any-return]
            except queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the {kind} measurement of {path.name} died") from None
                if limit is not None and time.perf_counter() - began > limit:
                    return {"seconds": None, "peak_mb": None, "timed_out_after": round(time.perf_counter() - began, 1)}
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50.0)
    parser.add_argument("--unbounded-seconds", type=float, default=20.0,
                        help="time limit of each unbounded expansion (0: skip them)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files: list[tuple[str, Path, bool]] = []
        big = Path(tmp) / "big.ics"
        big.write_bytes(big_calendar(args.megabytes))
        files.append((f"{big.stat().st_size / 1024 / 1024:.0f} MB calendar", big, False))
        for index, (name, rule) in enumerate(RUNAWAY.items()):
            path = Path(tmp) / f"runaway{index}.ics"
            path.write_bytes(runaway_calendar(rule))
            files.append((name, path, True))
        for name, path, runaway in files:
            floor = measure("floor", path)
            salvage = measure("salvage", path)
            row: dict[str, Any] = {"case": name, "bytes": path.stat().st_size, "floor": floor, "salvage": salvage,
                                   "time_ratio": salvage["seconds"] / max(floor["seconds"], 1e-9),
                                   "memory_ratio": salvage["peak_mb"] / max(floor["peak_mb"], 0.1)}
            if runaway and args.unbounded_seconds > 0:
                row["unbounded"] = measure("unbounded", path, args.unbounded_seconds)
            rows.append(row)
            if not args.json:
                _print_row(row)
    if args.json:
        print(json.dumps(rows, indent=2))


def _print_row(row: dict[str, Any]) -> None:
    f, s = row["floor"], row["salvage"]
    line = (f"{row['case']:<30} floor {f['seconds']:7.2f} s {f['peak_mb']:7.1f} MB | salvage {s['seconds']:7.2f} s "
            f"{s['peak_mb']:7.1f} MB ({s.get('events', 0)} events, {s.get('problems', 0)} notes) | "
            f"x{row['time_ratio']:.1f} time, x{row['memory_ratio']:.1f} memory")
    unbounded = row.get("unbounded")
    if unbounded is not None:
        if unbounded["seconds"] is None:
            line += f" | unbounded: not done after {unbounded['timed_out_after']} s"
        else:
            line += (f" | unbounded: {unbounded['seconds']:.2f} s {unbounded['peak_mb']:.1f} MB "
                     f"({unbounded['occurrences']} occurrences)")
    print(line, flush=True)


if __name__ == "__main__":
    main()
