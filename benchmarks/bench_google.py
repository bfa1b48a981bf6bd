"""Benchmark the Google calendar source over loopback: a first sync of N events, then idle polls.

Runs the real google-api-python-client and google-auth against the test suite's fake Google server
and reports requests and seconds. Usage::

    .venv/bin/python benchmarks/bench_google.py [--events 5000] [--idle 20] [--json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.google_fake import GoogleFake, config_yaml  # noqa: E402

from daemon.config import parse_config  # noqa: E402
from providers.base import Window  # noqa: E402
from providers.google.calendar import GoogleCalendarSource  # noqa: E402

ME = "me@example.com"
START = datetime(2026, 11, 23, tzinfo=timezone.utc)
WINDOW = Window(START - timedelta(days=1), START + timedelta(days=30))


def seed(fake: GoogleFake, count: int) -> None:
    """``count`` realistic events spread over the window, some with guests and conference data."""
    fake.add_calendar(ME, "Me", time_zone="Europe/London", primary=True)
    for i in range(count):
        start = START + timedelta(minutes=(i * 37) % (30 * 24 * 60))
        event = {
            "id": f"bench{i:06d}",
            "summary": f"Meeting {i}" if i % 50 else f"Technical interview {i} - ACME",
            "start": {"dateTime": start.isoformat(), "timeZone": "Europe/London"},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat(), "timeZone": "Europe/London"},
            "organizer": {"email": "organizer@example.org", "displayName": "Organizer"},
            "attendees": [{"email": ME, "self": True, "responseStatus": "accepted"},
                          {"email": "organizer@example.org", "organizer": True, "responseStatus": "accepted"}],
            "description": "<p>Agenda: things.<br>Join: https://meet.google.com/abc-defg-hij</p>",
        }
        if i % 3 == 0:
            event["conferenceData"] = {"entryPoints": [
                {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"},
                {"entryPointType": "phone", "uri": "tel:+1-262-555-0199", "label": "+1 262-555-0199"}]}
        fake.put_event(ME, event)


def measure(fake: GoogleFake, fn: object) -> tuple[int, float, object]:
    fake.reset_counts()
    began = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return fake.count(), time.perf_counter() - began, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--idle", type=int, default=20, help="how many idle polls to time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, GoogleFake() as fake:
        state = Path(tmp)
        fake.add_client()
        fake.token_file(state / "tokens" / "g.google.json", valid_access=True)
        seed(fake, args.events)
        account = parse_config(config_yaml(fake, state)).accounts[0]
        source = GoogleCalendarSource(account)
        first_requests, first_seconds, first = measure(fake, lambda: source.fetch(WINDOW, None))
        cursor = first.cursor  # type: ignore[attr-defined]
        idle_requests: list[int] = []
        idle_seconds: list[float] = []
        for _ in range(args.idle):
            n, seconds, result = measure(fake, lambda c=cursor: source.fetch(WINDOW, c))
            assert result.unchanged  # type: ignore[attr-defined]
            cursor = result.cursor  # type: ignore[attr-defined]
            idle_requests.append(n)
            idle_seconds.append(seconds)
        source.close()
    report = {
        "events": len(first.events),  # type: ignore[attr-defined]
        "first_sync": {"requests": first_requests, "seconds": round(first_seconds, 3)},
        "idle_poll": {"requests": max(idle_requests), "median_seconds": round(statistics.median(idle_seconds), 4)},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"first sync of {report['events']} events: {first_requests} requests, {first_seconds:.2f} s")
        print(f"idle poll (median of {args.idle}): {max(idle_requests)} request(s), "
              f"{statistics.median(idle_seconds) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
