"""Benchmark the Microsoft Graph calendar source over loopback HTTPS: a first sync, then idle polls.

Runs real msal (device-code sign-in, silent tokens) and the real httpx client against the test
suite's fake Graph and reports requests and seconds. Usage::

    .venv/bin/python benchmarks/bench_microsoft.py [--events 5000] [--idle 20] [--changes 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.graph_fake import GraphFake, config_text, sign_in  # noqa: E402

from daemon.config import parse_config  # noqa: E402
from providers import registry  # noqa: E402
from providers.base import Window  # noqa: E402
from providers.microsoft.calendar import GraphCalendar  # noqa: E402
from providers.microsoft.client import GraphClient  # noqa: E402

START = datetime(2026, 11, 23, tzinfo=timezone.utc)
WINDOW = Window(START - timedelta(days=1), START + timedelta(days=30))
RECRUITER = ("Rita Recruiter", "rita@acme.example")


def seed(fake: GraphFake, count: int) -> list[str]:
    """``count`` realistic events over the window: attendees, Teams links, some all-day, some odd zones."""
    ids = []
    for i in range(count):
        start = START + timedelta(minutes=(i * 37) % (30 * 24 * 60))
        fields: dict[str, Any] = {}
        if i % 3 == 0:
            fields["onlineMeeting"] = {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/{i}",
                                       "tollNumber": "+1 206-555-0199"}
            fields["isOnlineMeeting"] = True
        if i % 97 == 0:
            day = start.date()
            ids.append(fake.add_event(f"Day off {i}", day, day + timedelta(days=1), showAs="oof", **fields))
            continue
        ids.append(fake.add_event(
            f"Meeting {i}" if i % 50 else f"Technical interview {i} - ACME",
            start, start + timedelta(minutes=30),
            organizer=RECRUITER if i % 2 else None,
            attendees=[("Alex Morgan", fake.user_email, "required", "accepted"), ("Sam", "sam@acme.example", "optional")],
            body="Agenda: things. Join: https://teams.microsoft.com/l/meetup-join/abc",
            original_zone=("Pacific Standard Time", "W. Europe Standard Time", "tzone://Microsoft/Custom")[i % 3],
            **fields,
        ))
    return ids


def run(events: int, idle_polls: int, changes: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, GraphFake() as fake:
        state = Path(tmp)
        text = config_text(fake, state)
        sign_in(fake, text)
        ids = seed(fake, events)
        config = parse_config(text)
        account = config.accounts[0]
        ctx = registry.context(account, config)
        client = GraphClient(account.connection("microsoft"), ctx)  # type: ignore[arg-type]
        source = GraphCalendar(account.calendar, client, ctx)  # type: ignore[arg-type]
        try:
            fake.reset_counts()
            t0 = time.perf_counter()
            first = source.fetch(WINDOW, None)
            first_seconds = time.perf_counter() - t0
            first_requests = fake.count()
            assert first.complete and len(first.events) == events, (len(first.events), first.problems)

            idle_times: list[float] = []
            idle_requests: list[int] = []
            cursor = first.cursor
            for _ in range(idle_polls):
                fake.reset_counts()
                t0 = time.perf_counter()
                result = source.fetch(WINDOW, cursor)
                idle_times.append(time.perf_counter() - t0)
                idle_requests.append(fake.count())
                assert result.unchanged
                cursor = result.cursor

            for event_id in ids[:changes]:
                fake.update_event(event_id, subject="Moved")
            fake.reset_counts()
            t0 = time.perf_counter()
            delta = source.fetch(WINDOW, cursor)
            delta_seconds = time.perf_counter() - t0
            assert len(delta.events) + len(delta.removed) == changes
            return {
                "events": events,
                "first_sync": {"requests": first_requests, "seconds": round(first_seconds, 3),
                               "events_per_second": round(events / first_seconds)},
                "idle_poll": {"requests_each": max(idle_requests) if idle_requests else 0,
                              "median_seconds": round(statistics.median(idle_times), 4) if idle_times else None,
                              "polls": idle_polls},
                "delta": {"changes": changes, "requests": fake.count(), "seconds": round(delta_seconds, 4)},
                "max_concurrent_requests": fake.max_active,
            }
        finally:
            client.close()


def main() -> int:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--idle", type=int, default=20, help="idle polls to time")
    parser.add_argument("--changes", type=int, default=50, help="events changed before the delta poll")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.events, args.idle, min(args.changes, args.events))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    first, idle, delta = result["first_sync"], result["idle_poll"], result["delta"]
    print(f"Microsoft Graph over loopback HTTPS, {result['events']} events")
    print(f"  first sync : {first['requests']} requests, {first['seconds']} s "  # type: ignore[index]
          f"({first['events_per_second']} events/s)")  # type: ignore[index]
    print(f"  idle poll  : {idle['requests_each']} request(s), median {idle['median_seconds']} s "  # type: ignore[index]
          f"over {idle['polls']} polls")  # type: ignore[index]
    print(f"  delta      : {delta['changes']} changes, {delta['requests']} request(s), {delta['seconds']} s")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
