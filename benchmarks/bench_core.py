"""Benchmark the pure core: classification + detection, then planning (with slot finding), at 1k–100k events.

Synthetic calendar, deterministic seed: mostly ordinary meetings, some interviews (with and without
links, some set up in another timezone), daily stand-up occurrences of a recurring series, all-day and
out-of-office entries, free/declined/tentative entries, and the overlaps that random times produce.
Titles and descriptions are partly unique (the classifier caches repeated texts within a call, as real
calendars repeat them, so the benchmark must not be all repeats). Density is constant (about 40 events a day), so the calendar grows longer with n and the ratio of time
to n·log2(n) shows the growth. ``--dense`` packs every event into one month instead (clash-heavy).

Time is measured without tracing (best of ``--repeat`` runs); peak memory is measured in a separate
run with ``tracemalloc`` (Python allocations made by the step, the input events excluded). "of it GC"
is the part of the best run spent in CPython's cyclic garbage collector, which rescans the whole heap
(the input events included) a few times as the step allocates. Usage::

    .venv/bin/python benchmarks/bench_core.py [--sizes 1000 10000 100000] [--repeat 3] [--dense] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.config import Config  # noqa: E402
from daemon.core.classify import classify_all  # noqa: E402
from daemon.core.detect import detect  # noqa: E402
from daemon.core.model import Event, EventType, Response, ShowAs, person  # noqa: E402
from daemon.core.plan import plan_result  # noqa: E402
from daemon.engine.gcpause import gc_paused  # noqa: E402

USER_TZ = "Europe/London"
LONDON = ZoneInfo(USER_TZ)
ORIGIN = datetime(2026, 1, 5, tzinfo=LONDON)  # a Monday; the range crosses both DST changes
PER_DAY = 40
ME = person("alex@example.com", "Alex Morgan", Response.ACCEPTED, is_self=True)
COLLEAGUES = [person(f"colleague{i}@example.com", f"Colleague {i}", Response.ACCEPTED) for i in range(20)]
RECRUITERS = [
    ("talent@acme-robotics.example", None),
    ("jordan@globex.example", "America/New_York"),
    ("no-reply@greenhouse.io", None),
    ("recruiting@initech.example", "Asia/Tokyo"),
    ("hr@umbrella.example", "W. Europe Standard Time"),  # a Windows zone name
]
MEETING_TITLES = [
    "Quarterly planning", "1:1 with Chris", "Sprint review", "Design sync", "Lunch", "Dentist",
    "Budget review", "Customer call: Wayne Enterprises", "Team retro", "Gym", "School run",
    "Architecture review", "Hiring committee", "User interview: onboarding flow",
]
INTERVIEW_TITLES = [
    "Technical interview - Acme Robotics", "Phone screen with Globex", "Final round: Initech",
    "Hiring manager chat", "Entretien technique - Umbrella", "Onsite panel", "Vorstellungsgespräch",
]
DESCRIPTION = (
    "Hi Alex,\n\nLooking forward to speaking with you. Agenda: introductions, a walk through your "
    "recent work, questions. Please reply if the time does not suit you.\n\n"
)


def make_config() -> Config:
    """The benchmark user's config (defaults elsewhere)."""
    return Config.model_validate({"user": {"name": "Alex Morgan", "email": "alex@example.com", "timezone": USER_TZ}})


def synthetic(n: int, seed: int = 20261124, per_day: int = PER_DAY) -> list[Event]:
    """``n`` events, about ``per_day`` a day from :data:`ORIGIN`, in a fixed realistic mix."""
    rnd = random.Random(seed)
    days = max(1, n // per_day)
    events: list[Event] = []
    series = 0
    while len(events) < n:
        i = len(events)
        day = rnd.randrange(days)
        roll = rnd.random()
        if roll < 0.12:  # a stand-up occurrence of a recurring series
            start = datetime.combine(ORIGIN.date() + timedelta(days=day), datetime.min.time(), LONDON)
            start = start.replace(hour=9, minute=30)
            series = (series + 1) % 3
            events.append(
                Event(
                    account="work", source_id=f"standup{series}_{day}", title="Daily stand-up",
                    start=start, end=start + timedelta(minutes=15), series_id=f"standup{series}",
                    ical_uid=f"standup{series}@example.com", recurrence_id=start,
                    organizer=COLLEAGUES[0], attendees=(ME, *COLLEAGUES[:6]),
                    join_urls=("https://meet.google.com/abc-defg-hij",),
                )
            )
            continue
        if roll < 0.15:  # all-day: out of office, a busy day, or a free reminder
            first = ORIGIN.date() + timedelta(days=day)
            kind = rnd.random()
            if kind < 0.3:
                events.append(_all_day(i, "Out of office", first, rnd.choice((1, 2, 5)),
                                       event_type=EventType.OUT_OF_OFFICE, show_as=ShowAs.OUT_OF_OFFICE))
            elif kind < 0.5:
                events.append(_all_day(i, "Conference", first, 1))
            else:
                events.append(_all_day(i, "Mum's birthday", first, 1, show_as=ShowAs.FREE))
            continue
        minute = rnd.randrange(7 * 60, 21 * 60, 15) if rnd.random() > 0.02 else rnd.randrange(22 * 60, 24 * 60, 15)
        start = datetime.combine(ORIGIN.date() + timedelta(days=day), datetime.min.time(), LONDON)
        start = start.replace(hour=minute // 60, minute=minute % 60)
        length = timedelta(minutes=rnd.choice((15, 30, 30, 45, 60, 60, 60, 90, 120)))
        end = (start.astimezone(timezone.utc) + length).astimezone(LONDON)  # may cross midnight
        if roll < 0.23:  # an interview
            email, tz = rnd.choice(RECRUITERS)
            organizer = person(email, "Recruiter", Response.ACCEPTED)
            linked = rnd.random() < 0.8
            events.append(
                Event(
                    account="work", source_id=f"iv{i}", title=rnd.choice(INTERVIEW_TITLES), start=start, end=end,
                    timezone=tz, organizer=organizer, attendees=(organizer, ME),
                    description=f"{DESCRIPTION}Role: engineer (req {i})\n"
                    + (f"Join: https://acme.zoom.us/j/{i * 7919 % 10**9:09d}\n" if linked else ""),
                    location=rnd.choice(("", "Zoom", "1 Main Street, London")) if not linked else "",
                    join_urls=("https://acme.zoom.us/j/123456789",) if linked else (),
                    ical_uid=f"iv{i}@bench.example",
                    created=start - timedelta(days=rnd.randrange(1, 20), minutes=i % 1000),
                )
            )
            continue
        change: dict[str, Any] = {}
        status = rnd.random()
        if status < 0.08:
            change["show_as"] = ShowAs.FREE
        elif status < 0.12:
            change["self_response"] = Response.DECLINED
        elif status < 0.18:
            change["show_as"] = ShowAs.TENTATIVE
        elif status < 0.19:
            change["cancelled"] = True
        events.append(
            Event(
                account="work", source_id=f"m{i}", start=start, end=end,
                title=rnd.choice(MEETING_TITLES) + (f" #{i}" if rnd.random() < 0.3 else ""),  # unique titles too
                organizer=rnd.choice(COLLEAGUES), attendees=(ME, *rnd.sample(COLLEAGUES, 3)),
                description=f"{DESCRIPTION}Meeting ID: {i * 7919 % 10**9:09d}" if rnd.random() < 0.5 else "",
                location=rnd.choice(("", "", "Room 4.12", "Teams")), ical_uid=f"m{i}@example.com", **change,
            )
        )
    return events


def _all_day(i: int, title: str, first: date, days: int, **fields: Any) -> Event:
    return Event(account="work", source_id=f"ad{i}", title=title, start=first, end=first + timedelta(days=days),
                 ical_uid=f"ad{i}@example.com", **fields)


def _timed(step: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time of ``repeat`` runs, and the time CPython's cyclic GC took within that run."""
    best, best_gc = math.inf, 0.0
    spent = [0.0, 0.0]  # GC seconds this run, start of the current collection

    def watch(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]

    gc.callbacks.append(watch)
    try:
        for _ in range(repeat):
            gc.collect()
            spent[0] = 0.0
            began = time.perf_counter()
            step()
            took = time.perf_counter() - began
            if took < best:
                best, best_gc = took, spent[0]
    finally:
        gc.callbacks.remove(watch)
    return best, best_gc


def _peak(step: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(n: int, repeat: int, dense: bool) -> list[dict[str, Any]]:
    """Rows for one size: classify+detect, then planning (slot search included)."""
    config = make_config()
    events = synthetic(n, per_day=max(PER_DAY, n // 30) if dense else PER_DAY)
    days = max(1, n // (max(PER_DAY, n // 30) if dense else PER_DAY))
    now = ORIGIN + timedelta(days=days // 10, hours=9)  # a tenth of the calendar is already past
    labels = classify_all(events, config)
    risks = detect(events, labels, config, now)
    result = plan_result(events, labels, risks, config, now)

    def core() -> object:
        with gc_paused():  # as the engine runs it
            found = classify_all(events, config)
            return detect(events, found, config, now)

    def planning() -> object:
        with gc_paused():
            return plan_result(events, labels, risks, config, now)

    facts = {
        "interviews": sum(1 for c in labels.values() if c.is_interview),
        "risks": len(risks),
        "actions": len(result.actions),
    }
    rows = []
    for name, step in (("classify+detect", core), ("plan+slots", planning)):
        seconds, in_gc = _timed(step, repeat)
        rows.append(
            {
                "step": name,
                "n": n,
                "seconds": seconds,
                "gc_seconds": in_gc,
                "events_per_s": n / seconds,
                "peak_mib": _peak(step) / 2**20,
                "ns_per_nlogn": seconds / (n * math.log2(n)) * 1e9,
                **facts,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dense", action="store_true", help="pack all events into one month (clash-heavy)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [row for n in args.sizes for row in measure(n, args.repeat, args.dense)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    layout = "dense: all events in ~30 days" if args.dense else f"constant density: ~{PER_DAY} events/day"
    print(f"Salvage core benchmark ({layout}; time: best of {args.repeat}; memory: tracemalloc peak)")
    print(f"{'step':<16}{'n':>8}{'seconds':>10}{'of it GC':>10}{'events/s':>12}{'peak MiB':>10}{'ns/(n·log2 n)':>15}"
          f"{'interviews':>12}{'risks':>8}{'actions':>9}")
    for r in rows:
        print(f"{r['step']:<16}{r['n']:>8}{r['seconds']:>10.3f}{r['gc_seconds']:>10.3f}{r['events_per_s']:>12,.0f}{r['peak_mib']:>10.1f}"
              f"{r['ns_per_nlogn']:>15.1f}{r['interviews']:>12}{r['risks']:>8}{r['actions']:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
