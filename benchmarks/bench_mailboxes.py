"""Benchmark the CalDAV source and the IMAP draft store against a real Radicale and Dovecot.

CalDAV: a first sync of N events, then idle polls, in requests per calendar and seconds. The floor,
measured in the same run, is one bare ``calendar-query`` REPORT for the same window over httpx (the
least any client must ask the server for), and one bare PROPFIND for an idle poll.

IMAP: an idle pass over D live drafts (what the pipeline asks: one fate check per draft), in IMAP
commands and seconds. The floor is one ``UID FETCH (FLAGS)`` per draft over a bare imapclient
connection. The CalDAV first-sync floor adds the shared iCalendar parser over the same objects.
Usage::

    .venv/bin/python benchmarks/bench_mailboxes.py [--events 5000] [--drafts 20] [--idle 10] [--json]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from imapclient import IMAPClient  # noqa: E402
from servers import dovecot as dovecot_server  # noqa: E402
from servers import radicale as radicale_server  # noqa: E402

from daemon.config import parse_config  # noqa: E402
from providers import registry  # noqa: E402
from providers.base import Address, DraftMessage, Window  # noqa: E402
from providers.caldav import CaldavSource  # noqa: E402
from providers.ics import ParseContext, parse_calendar  # noqa: E402
from providers.imap import ImapDraftStore  # noqa: E402

ME = "alex@example.com"
PASSWORD = "bench-password"
ENV = "SALVAGE_BENCH_PASSWORD"
START = datetime(2026, 11, 23, tzinfo=timezone.utc)
WINDOW = Window(START - timedelta(days=1), START + timedelta(days=30))


def stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def seed_calendar(server: Any, path: str, count: int) -> None:
    """``count`` events over the window, uploaded as one whole-collection PUT (fast to set up)."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Salvage bench//EN"]
    for i in range(count):
        start = START + timedelta(minutes=(i * 37) % (29 * 24 * 60))
        title = f"Meeting {i}" if i % 50 else f"Technical interview {i} - ACME"
        parts += ["BEGIN:VEVENT", f"UID:bench{i:06d}", "DTSTAMP:20261101T000000Z", f"DTSTART:{stamp(start)}",
                  f"DTEND:{stamp(start + timedelta(minutes=30))}", f"SUMMARY:{title}",
                  "ORGANIZER;CN=Organizer:mailto:organizer@example.org",
                  f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ME}",
                  "DESCRIPTION:Agenda: things. Join: https://meet.google.com/abc-defg-hij", "END:VEVENT"]
    parts.append("END:VCALENDAR")
    with server.client(ME) as http:
        resp = http.put(path, content=("\r\n".join(parts) + "\r\n").encode(),
                        headers={"Content-Type": "text/calendar"}, timeout=300)
        assert resp.status_code in (201, 204), resp.text


def bare_report(server: Any, path: str) -> tuple[float, list[bytes]]:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
    <C:time-range start="{stamp(WINDOW.start)}" end="{stamp(WINDOW.end + timedelta(days=7))}"/>
  </C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""
    with server.client(ME) as http:
        began = time.perf_counter()
        resp = http.request("REPORT", path, content=body, headers={"Depth": "1"}, timeout=300)
        assert resp.status_code == 207
        seconds = time.perf_counter() - began
    data = re.findall(r"BEGIN:VCALENDAR.*?END:VCALENDAR", resp.text, flags=re.S)
    return seconds, [html.unescape(d).encode() for d in data]


def parse_floor(objects: list[bytes], span: Window) -> float:
    """The shared iCalendar parser over the same objects, in one batch: what any client of it pays."""
    ctx = ParseContext(account="bench", calendar_id="Calendar", label="bench", user_zone=ZoneInfo("Europe/London"),
                       self_addresses=frozenset({ME}))
    began = time.perf_counter()
    events, _ = parse_calendar(b"\r\n".join(objects), span, ctx)
    assert events
    return time.perf_counter() - began


def bare_propfind(server: Any, path: str, repeat: int) -> float:
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/></D:prop></D:propfind>')
    times = []
    with server.client(ME) as http:
        for _ in range(repeat):
            began = time.perf_counter()
            resp = http.request("PROPFIND", path, content=body, headers={"Depth": "0"})
            assert resp.status_code == 207
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def bench_caldav(events: int, idle: int, tmp: Path) -> dict[str, Any]:
    server = radicale_server.make_server()
    server.add_user(ME, PASSWORD)
    server.start()
    try:
        path = server.make_calendar(ME, "calendar", "Calendar")
        seed_calendar(server, path, events)
        config = parse_config(f"""
user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}
accounts:
  - name: bench
    calendar: {{type: caldav, url: "{server.url}", username: {ME}, password_env: {ENV}}}
    drafts: {{type: folder, path: {tmp / 'drafts'}}}
""")
        (report_a, objects), (report_b, _) = bare_report(server, path), bare_report(server, path)
        floor_report = min(report_a, report_b)  # the second one is warm, as ours is
        floor_parse = parse_floor(objects, Window(WINDOW.start, WINDOW.end + timedelta(days=7)))
        floor_first = floor_report + floor_parse
        account = config.accounts[0]
        source = CaldavSource(account.calendar, registry.context(account, config))  # type: ignore[arg-type]
        first_seconds, first = timed(lambda: source.fetch(WINDOW, None))
        first_requests = source.requests
        assert len(first.events) >= events * 0.99, len(first.events)
        idle_times = []
        cursor = first.cursor
        before = source.requests
        for _ in range(idle):
            seconds, result = timed(lambda c=cursor: source.fetch(WINDOW, c))  # type: ignore[misc]
            assert result.unchanged
            cursor = result.cursor
            idle_times.append(seconds)
        idle_requests = (source.requests - before) / idle
        floor_idle = bare_propfind(server, path, idle)
        source.close()
        return {
            "events": len(first.events), "first_requests": first_requests, "first_seconds": first_seconds,
            "floor_report_seconds": floor_report, "floor_parse_seconds": floor_parse,
            "floor_first_seconds": floor_first, "first_ratio": first_seconds / floor_first,
            "idle_requests_per_calendar": idle_requests, "idle_seconds": statistics.median(idle_times),
            "floor_idle_seconds": floor_idle, "idle_ratio": statistics.median(idle_times) / floor_idle,
        }
    finally:
        radicale_server.remove(server)


def bench_imap(count: int, idle: int, tmp: Path) -> dict[str, Any]:
    server = dovecot_server.make_server()
    server.add_user(ME, PASSWORD)
    server.start()
    try:
        (tmp / "none.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
        config = parse_config(f"""
user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}
accounts:
  - name: bench
    calendar: {{type: ics, path: {tmp / 'none.ics'}}}
    drafts: {{type: imap, host: 127.0.0.1, port: {server.port}, security: none, username: {ME},
              password_env: {ENV}}}
""")
        account = config.accounts[0]
        store = ImapDraftStore(account.drafts, registry.context(account, config))  # type: ignore[arg-type]
        refs = [store.create(DraftMessage(key=f"{i:032x}", sender=Address(ME, "Alex"),
                                          to=(Address("rita@acme.example", "Rita"),), subject=f"Draft {i}",
                                          text=f"Dear Rita,\n\nDraft number {i}.\n\nAlex\n"))
                for i in range(count)]
        store.fate(refs[0])  # connected, folders listed, Drafts selected: what a long-running service has
        pass_times = []
        before = store.commands
        for _ in range(idle):
            seconds, _ = timed(lambda: [store.fate(r) for r in refs])
            pass_times.append(seconds)
        commands = (store.commands - before) / idle
        bare = IMAPClient("127.0.0.1", port=server.port, ssl=False)
        bare.login(ME, PASSWORD)
        bare.select_folder("Drafts")
        uids = [int(r.id) for r in refs]
        floor_times = []
        for _ in range(idle):
            seconds, _ = timed(lambda: [bare.fetch([u], ["FLAGS"]) for u in uids])
            floor_times.append(seconds)
        bare.logout()
        store.close()
        median = statistics.median(pass_times)
        floor = statistics.median(floor_times)
        return {"drafts": count, "commands_per_pass": commands, "commands_per_draft": commands / count,
                "pass_seconds": median, "floor_seconds": floor, "ratio": median / floor}
    finally:
        dovecot_server.remove(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--drafts", type=int, default=20)
    parser.add_argument("--idle", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ[ENV] = PASSWORD
    with tempfile.TemporaryDirectory() as tmp:
        caldav = bench_caldav(args.events, args.idle, Path(tmp))
        imap = None
        if dovecot_server.unavailable_reason() is None:
            imap = bench_imap(args.drafts, args.idle, Path(tmp))
    if args.json:
        print(json.dumps({"caldav": caldav, "imap": imap}, indent=2))
        return 0
    c = caldav
    print(f"CalDAV first sync: {c['events']} events, {c['first_requests']} requests, {c['first_seconds']:.2f} s "
          f"(floor {c['floor_first_seconds']:.2f} s = bare REPORT {c['floor_report_seconds']:.2f} s + shared parser "
          f"{c['floor_parse_seconds']:.2f} s; ratio {c['first_ratio']:.2f})")
    print(f"CalDAV idle poll:  {c['idle_requests_per_calendar']:.0f} request per calendar, "
          f"{c['idle_seconds'] * 1000:.1f} ms (bare PROPFIND {c['floor_idle_seconds'] * 1000:.1f} ms; "
          f"ratio {c['idle_ratio']:.1f})")
    if imap is None:
        print("IMAP: skipped (Dovecot is not installed)")
    else:
        print(f"IMAP idle pass:    {imap['drafts']} drafts, {imap['commands_per_pass']:.0f} commands "
              f"({imap['commands_per_draft']:.1f} per draft), {imap['pass_seconds'] * 1000:.1f} ms "
              f"(bare UID FETCH FLAGS per draft {imap['floor_seconds'] * 1000:.1f} ms; ratio {imap['ratio']:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
