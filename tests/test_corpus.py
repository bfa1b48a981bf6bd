"""The corpus: real-style exports from every producer, read by the ics provider and, as their JSON, by
the Google and Graph normalisers, against instants written down by hand beside each fixture.

Each ``tests/data/corpus/NAME.ics`` has a ``NAME.expected.json`` stating, from the producer's documented
behaviour and the zone rules of the dates involved, when every occurrence starts and ends. The expected
files are never generated from the code. The JSON for Google and Graph is built from those expected
instants and the fixture's text fields, shaped as the Calendar API v3 ``Event`` and Graph ``event``
resources are (``singleEvents=true`` instances; Graph with ``Prefer: outlook.timezone="UTC"``, and once
more in the event's own Windows zone).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from tzlocal.windows_tz import tz_win

from daemon.config import parse_config
from daemon.core.model import Event
from providers import registry
from providers.base import Window
from providers.google.calendar import event_from_google
from providers.ics import IcsSource
from providers.microsoft.calendar import event_from_graph

CORPUS = Path(__file__).parent / "data" / "corpus"
UTC = timezone.utc
WINDOW = Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 30, tzinfo=UTC))
FIXTURES = sorted(p.stem.removesuffix(".expected") for p in CORPUS.glob("*.expected.json"))
# Every producer issue 11 names; each must have at least one fixture.
PRODUCERS = (
    "Outlook desktop", "Outlook on the web", "Exchange", "Google Calendar", "Apple iCloud", "Fastmail",
    "Nextcloud", "Thunderbird", "Zoom", "Microsoft Teams", "Greenhouse", "Lever", "Calendly", "GoodTime",
)
# producer -> path -> [passed, total]; printed at the end of the run by tests/conftest.py.
TALLY: dict[str, dict[str, list[int]]] = {}


@dataclass(frozen=True)
class Expected:
    title: str
    start: datetime | date
    end: datetime | date
    zone: str | None
    windows_zone: str | None
    recurrence_id: datetime | date | None
    raw: dict[str, Any]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load(name: str) -> tuple[dict[str, Any], list[Expected]]:
    spec = json.loads((CORPUS / f"{name}.expected.json").read_text(encoding="utf-8"))
    out: list[Expected] = []
    for raw in spec["events"]:
        if "start_date" in raw:
            start: datetime | date = date.fromisoformat(raw["start_date"])
            end: datetime | date = date.fromisoformat(raw["end_date"])
        else:
            start, end = _instant(raw["start"]), _instant(raw["end"])
        rid: datetime | date | None = None
        if raw.get("recurrence_id"):
            rid = _instant(raw["recurrence_id"])
        elif raw.get("recurrence_id_date"):
            rid = date.fromisoformat(raw["recurrence_id_date"])
        out.append(Expected(raw["title"], start, end, raw.get("zone"), raw.get("windows_zone"), rid, raw))
    return spec, out


def same_zone(actual: str | None, expected: str | None, at: datetime | date) -> bool:
    """Whether two zone names denote the same rules around ``at`` (CLDR says Asia/Calcutta, not Kolkata)."""
    if actual is None or expected is None:
        return actual == expected
    if not isinstance(at, datetime):
        return True
    a, b = ZoneInfo(actual), ZoneInfo(expected)
    return all(at.astimezone(a).utcoffset() == at.astimezone(b).utcoffset() for at in
               (at, at + timedelta(days=91), at + timedelta(days=182), at + timedelta(days=273)))


def check(event: Event, exp: Expected, user_tz: tzinfo, *, zones: bool = True) -> list[str]:
    """What differs between a normalised event and the hand-written expectation."""
    wrong: list[str] = []
    if event.start != exp.start or type(event.start) is not type(exp.start):
        wrong.append(f"start {event.start!r} != {exp.start!r}")
    if event.end != exp.end or type(event.end) is not type(exp.end):
        wrong.append(f"end {event.end!r} != {exp.end!r}")
    if zones and "zone" in exp.raw and not same_zone(event.timezone, exp.zone, exp.start):
        wrong.append(f"zone {event.timezone!r} != {exp.zone!r}")
    if exp.recurrence_id is not None and event.recurrence_id != exp.recurrence_id:
        wrong.append(f"recurrence_id {event.recurrence_id!r} != {exp.recurrence_id!r}")
    if exp.raw.get("join") and not any(u.startswith(exp.raw["join"]) for u in event.join_urls):
        wrong.append(f"join link {exp.raw['join']!r} not in {event.join_urls}")
    if exp.raw.get("phone") and exp.raw["phone"] not in event.phones:
        wrong.append(f"phone {exp.raw['phone']!r} not in {event.phones}")
    if exp.raw.get("local_date") and event.span(user_tz)[0].astimezone(user_tz).date().isoformat() != exp.raw["local_date"]:
        wrong.append(f"local date is not {exp.raw['local_date']}")
    return wrong


def record(spec: dict[str, Any], path: str, passed: int, total: int) -> None:
    counts = TALLY.setdefault(spec["producer"], {}).setdefault(path, [0, 0])
    counts[0] += passed
    counts[1] += total


def compare(events: list[Event], expected: list[Expected], user_tz: tzinfo, **kw: Any) -> tuple[int, list[str]]:
    """Match events to expectations by (title, start); the number right and what was wrong."""
    pool = list(events)
    passed, wrong = 0, []
    for exp in expected:
        match = next((e for e in pool if e.title == exp.title and e.start == exp.start), None)
        if match is None:
            wrong.append(f"{exp.title!r} at {exp.start}: missing")
            continue
        pool.remove(match)
        problems = check(match, exp, user_tz, **kw)
        if problems:
            wrong.append(f"{exp.title!r} at {exp.start}: " + "; ".join(problems))
        else:
            passed += 1
    wrong.extend(f"unexpected {e.title!r} at {e.start}" for e in pool)
    return passed, wrong


# ---- the ics provider ---------------------------------------------------------------------------


def ics_events(name: str, user_timezone: str) -> tuple[list[Event], tuple[str, ...]]:
    text = f"""
user:
  name: Sam Rivera
  email: sam.rivera@example.com
  timezone: {user_timezone}
accounts:
  - name: corpus
    calendar: {{type: ics, path: {json.dumps(str(CORPUS / (name + '.ics')))}}}
    drafts: {{type: folder, path: drafts}}
"""
    config = parse_config(text, Path("/tmp/salvage-corpus/config.yaml"))
    account = config.accounts[0]
    result = IcsSource(account.calendar, registry.context(account, config)).fetch(WINDOW, None)  # type: ignore[arg-type]
    return list(result.events), result.problems


@pytest.mark.parametrize("name", FIXTURES)
def test_ics_provider_reads_the_corpus(name: str) -> None:
    spec, expected = load(name)
    user_tz = ZoneInfo(spec["user_timezone"])
    events, problems = ics_events(name, spec["user_timezone"])
    passed, wrong = compare(events, expected, user_tz)
    record(spec, "ics", passed, len(expected))
    assert list(problems) == spec.get("problems", [])
    assert wrong == []
    assert Counter(e.title for e in events) == Counter(x.title for x in expected)


# ---- the same events as Google and Graph JSON ---------------------------------------------------


def _vevent(name: str, title: str) -> Any:
    """The fixture's VEVENT for a title (the series master or single event), for its text fields."""
    calendar = icalendar.Calendar.from_ical((CORPUS / f"{name}.ics").read_bytes())
    found = [c for c in calendar.walk("VEVENT") if str(c.get("SUMMARY", "")) == title]
    masters = [c for c in found if c.get("RECURRENCE-ID") is None]
    return (masters or found)[0]


def _address(value: Any) -> tuple[str, str]:
    email = str(value).removeprefix("mailto:").removeprefix("MAILTO:")
    return email, str(value.params.get("CN", ""))


def _people(vevent: Any) -> tuple[tuple[str, str] | None, list[tuple[str, str, str]]]:
    org = _address(vevent["ORGANIZER"]) if vevent.get("ORGANIZER") is not None else None
    raw = vevent.get("ATTENDEE") or []
    attendees = [(*_address(a), str(a.params.get("PARTSTAT", "NEEDS-ACTION"))) for a in
                 (raw if isinstance(raw, list) else [raw])]
    return org, attendees


def _join(vevent: Any) -> str:
    return str(vevent.get("X-MICROSOFT-SKYPETEAMSMEETINGURL") or vevent.get("X-GOOGLE-CONFERENCE") or "")


_GOOGLE_STATUS = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
_GRAPH_STATUS = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentativelyAccepted"}


def google_item(name: str, exp: Expected, index: int, user_tz: tzinfo) -> dict[str, Any]:
    """A Calendar API v3 Event resource as events.list(singleEvents=true) returns it."""
    vevent = _vevent(name, exp.title)

    def when(value: datetime | date) -> dict[str, str]:
        if not isinstance(value, datetime):
            return {"date": value.isoformat()}
        if exp.zone:
            return {"dateTime": value.astimezone(ZoneInfo(exp.zone)).isoformat(), "timeZone": exp.zone}
        return {"dateTime": value.astimezone(user_tz).isoformat()}  # in the calendar's zone, no timeZone

    org, attendees = _people(vevent)
    uid = str(vevent["UID"])
    item: dict[str, Any] = {
        "kind": "calendar#event", "etag": f'"{3480000000000000 + index}"', "id": f"corpus{index:03d}",
        "status": "confirmed", "summary": exp.title, "iCalUID": uid,
        "created": "2025-03-01T10:00:00.000Z", "updated": "2025-03-01T10:00:00.000Z",
        "start": when(exp.start), "end": when(exp.end),
        "description": str(vevent.get("DESCRIPTION", "")), "location": str(vevent.get("LOCATION", "")),
    }
    if org is not None:
        item["organizer"] = {"email": org[0], "displayName": org[1]} if org[1] else {"email": org[0]}
    if attendees:
        item["attendees"] = [
            {"email": email, **({"displayName": cn} if cn else {}),
             "responseStatus": _GOOGLE_STATUS.get(partstat, "needsAction"),
             **({"self": True} if email == "sam.rivera@example.com" else {})}
            for email, cn, partstat in attendees
        ]
    if _join(vevent).startswith("https://meet.google.com/"):
        item["hangoutLink"] = _join(vevent)
    if exp.recurrence_id is not None:
        item["recurringEventId"] = f"series{index:03d}"
        item["originalStartTime"] = when(exp.recurrence_id)
    return item


def _graph_time(value: datetime | date, tz: tzinfo, name: str) -> dict[str, str]:
    if not isinstance(value, datetime):
        return {"dateTime": f"{value.isoformat()}T00:00:00.0000000", "timeZone": name}
    return {"dateTime": value.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": name}


def graph_item(name: str, exp: Expected, index: int, *, own_zone: bool) -> dict[str, Any]:
    """A Graph event as calendarView returns it: start/end in UTC (our Prefer header) or in its own zone."""
    vevent = _vevent(name, exp.title)
    windows = exp.windows_zone or (tz_win.get(exp.zone) if exp.zone else None)
    original = windows or ("Customized Time Zone" if "zone" in exp.raw and exp.zone is None else "UTC")
    if own_zone and windows and exp.zone:
        tz: tzinfo = ZoneInfo(exp.zone)
        label = windows
    else:
        tz, label = UTC, "UTC"
    org, attendees = _people(vevent)
    description = str(vevent.get("DESCRIPTION", ""))
    item: dict[str, Any] = {
        "@odata.etag": f'W/"corpus{index}"', "id": f"AAMkAGcorpus{index:03d}=",
        "createdDateTime": "2025-03-01T10:00:00.0000000Z", "lastModifiedDateTime": "2025-03-01T10:00:00.0000000Z",
        "iCalUId": str(vevent["UID"]), "subject": exp.title, "bodyPreview": description[:255],
        "isAllDay": not isinstance(exp.start, datetime), "isCancelled": False, "isOrganizer": False,
        "showAs": "busy", "type": "singleInstance", "sensitivity": "normal",
        "originalStartTimeZone": original, "originalEndTimeZone": original,
        "responseStatus": {"response": "notResponded", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "text", "content": description},
        "start": _graph_time(exp.start, tz, label), "end": _graph_time(exp.end, tz, label),
        "location": {"displayName": str(vevent.get("LOCATION", "")), "locationType": "default"},
        "locations": [], "categories": [], "onlineMeeting": None,
        "attendees": [
            {"type": "required", "status": {"response": _GRAPH_STATUS.get(partstat, "none"),
                                            "time": "0001-01-01T00:00:00Z"},
             "emailAddress": {"name": cn or email, "address": email}}
            for email, cn, partstat in attendees
        ],
    }
    if org is not None:
        item["organizer"] = {"emailAddress": {"name": org[1] or org[0], "address": org[0]}}
    if _join(vevent).startswith("https://teams.microsoft.com/"):
        item["onlineMeeting"] = {"joinUrl": _join(vevent)}
        item["isOnlineMeeting"], item["onlineMeetingProvider"] = True, "teamsForBusiness"
    if exp.recurrence_id is not None:
        moved = exp.recurrence_id != exp.start
        item["type"] = "exception" if moved else "occurrence"
        item["seriesMasterId"] = f"AAMkAGseries{index:03d}="
        if isinstance(exp.recurrence_id, datetime):
            item["originalStart"] = exp.recurrence_id.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return item


@pytest.mark.parametrize("name", FIXTURES)
def test_google_normaliser_reads_the_corpus(name: str) -> None:
    spec, expected = load(name)
    user_tz = ZoneInfo(spec["user_timezone"])
    events = [event_from_google(google_item(name, exp, i, user_tz), account="corpus", calendar_id="primary",
                                calendar_tz=user_tz) for i, exp in enumerate(expected)]
    passed, wrong = compare(events, expected, user_tz)
    record(spec, "google", passed, len(expected))
    assert wrong == []


@pytest.mark.parametrize("own_zone", [False, True], ids=["prefer-utc", "own-zone"])
@pytest.mark.parametrize("name", FIXTURES)
def test_graph_normaliser_reads_the_corpus(name: str, own_zone: bool) -> None:
    spec, expected = load(name)
    user_tz = ZoneInfo(spec["user_timezone"])
    events = [event_from_graph(graph_item(name, exp, i, own_zone=own_zone), account="corpus",
                               calendar_key="calendar", self_addresses=frozenset({"sam.rivera@example.com"}))
              for i, exp in enumerate(expected)]
    # Graph keeps the zone it was created in only for producers that write one (originalStartTimeZone).
    passed, wrong = compare(events, expected, user_tz, zones=bool(spec.get("graph_zone", True)))
    record(spec, "graph-own-zone" if own_zone else "graph", passed, len(expected))
    assert wrong == []


def test_the_corpus_covers_every_producer_and_case() -> None:
    specs = [load(name)[0] for name in FIXTURES]
    assert set(PRODUCERS) <= {s["producer"] for s in specs}
    kinds = {(s["producer"], s["kind"].split(" ")[0]) for s in specs}
    for producer in ("Outlook desktop", "Outlook on the web"):
        assert {(producer, "published"), (producer, "invitation")} <= kinds
    methods = {name: b"METHOD:REQUEST" in (CORPUS / f"{name}.ics").read_bytes() for name in FIXTURES}
    assert methods["outlook_desktop_invitation"] and methods["outlook_web_invitation"]
    events = [e for name in FIXTURES for e in load(name)[1]]
    assert any(e.recurrence_id is not None and e.recurrence_id != e.start for e in events)  # moved occurrence
    assert any(not isinstance(e.start, datetime) and (e.end - e.start).days > 1 for e in events)  # type: ignore[operator]
    assert any(e.raw.get("floating") for e in events)
    assert any(isinstance(e.start, datetime) and isinstance(e.end, datetime)
               and e.start.astimezone(ZoneInfo(e.zone or "UTC")).date()
               != e.end.astimezone(ZoneInfo(e.zone or "UTC")).date() for e in events)  # spans midnight
