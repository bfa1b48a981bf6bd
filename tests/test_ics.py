"""The ics calendar provider: real exports from Google, Outlook and Apple, files and a loopback server."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.config import Config, parse_config
from daemon.core.model import Event, EventType, Response, ShowAs
from providers import registry
from providers.base import CalendarSource, DraftStore, FetchResult, ProviderError, TransientError, Window
from providers.folder import FolderDrafts
from providers.ics import REFRESH_SLACK, IcsSource, redact_url

DATA = Path(__file__).parent / "data"
UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MARCH = Window(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 30, tzinfo=UTC))

GOOGLE_SERIES = "7kukuqrfedlm2f9t0vr42q2tqs@google.com"


def make_config(calendar: str, tz: str = "Europe/Berlin", extra_account: str = "") -> Config:
    text = f"""
user:
  name: Sam Rivera
  email: sam.rivera@example.com
  timezone: {tz}
  aliases: [sam@rivera.example]
accounts:
  - name: main
    calendar: {calendar}
    drafts: {{type: folder, path: drafts}}
{extra_account}
"""
    return parse_config(text, Path("/tmp/salvage-test/config.yaml"))


def source_for(path: Path, tz: str = "Europe/Berlin", **kw: Any) -> IcsSource:
    config = make_config(json.dumps({"type": "ics", "path": str(path)}), tz)
    sleep = kw.pop("sleep", None)
    ctx = registry.context(config.accounts[0], config, sleep=sleep)
    return IcsSource(config.accounts[0].calendar, ctx, **kw)  # type: ignore[arg-type]


def fetch(name: str, tz: str = "Europe/Berlin", window: Window = MARCH) -> FetchResult:
    return source_for(DATA / name, tz).fetch(window, None)


def by_title(result: FetchResult, title: str) -> list[Event]:
    found = [e for e in result.events if e.title == title]
    assert found, f"no event titled {title!r} in {[e.title for e in result.events]}"
    return found


def one(result: FetchResult, title: str) -> Event:
    found = by_title(result, title)
    assert len(found) == 1
    return found[0]


# ---- Google export ------------------------------------------------------------------------------


def test_google_weekly_series_exdate_and_moved_override() -> None:
    result = fetch("google_export.ics")
    assert result.complete and not result.unchanged and result.problems == ()
    series = sorted((e for e in result.events if e.ical_uid == GOOGLE_SERIES), key=lambda e: e.occurrence_key)
    starts = [e.start.astimezone(UTC) for e in series]  # type: ignore[union-attr]
    assert datetime(2025, 3, 17, 9, tzinfo=UTC) not in starts  # EXDATE
    keys = [e.occurrence_key for e in series]
    assert len(keys) == len(set(keys)) == 7  # Mar 10, 24 (moved), 31, Apr 7, 14, 21, 28; no Mar 17
    moved = [e for e in series if e.title.startswith("Mentoring call (moved")]
    assert len(moved) == 1
    m = moved[0]
    # The occurrence moved to Tuesday keeps the identity of its original Monday slot.
    assert m.start == datetime(2025, 3, 25, 14, 30, tzinfo=BERLIN)
    assert m.recurrence_id == datetime(2025, 3, 24, 10, tzinfo=BERLIN)
    assert m.occurrence_key == f"{GOOGLE_SERIES}@20250324T090000Z"
    assert m.source_id == f"{GOOGLE_SERIES}@20250324T090000Z"
    assert m.series_id == GOOGLE_SERIES and m.ical_uid == GOOGLE_SERIES
    assert m.updated == datetime(2025, 3, 19, 17, tzinfo=UTC)
    # DST in Berlin on 30 March: 10:00 local is 09:00Z before and 08:00Z after.
    assert datetime(2025, 3, 10, 9, tzinfo=UTC) in starts
    assert datetime(2025, 3, 31, 8, tzinfo=UTC) in starts
    first = next(e for e in series if e.start == datetime(2025, 3, 10, 10, tzinfo=BERLIN))
    assert first.timezone == "Europe/Berlin"
    assert first.self_response is Response.ORGANIZER
    assert first.organizer is not None and first.organizer.is_self


def test_google_occurrence_keys_are_stable_across_polls() -> None:
    first = {e.source_id: e.occurrence_key for e in fetch("google_export.ics").events}
    again = {e.source_id: e.occurrence_key for e in fetch("google_export.ics").events}
    assert first == again
    # A narrower window yields the same keys for the occurrences it still holds.
    narrow = fetch("google_export.ics", window=Window(datetime(2025, 3, 24, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)))
    for event in narrow.events:
        assert first[event.source_id] == event.occurrence_key


def test_google_interview_people_links_and_times() -> None:
    event = one(fetch("google_export.ics"), "Acme Corp - Technical interview (Backend Engineer)")
    assert event.start == datetime(2025, 3, 26, 13, tzinfo=UTC)
    assert event.end - event.start == timedelta(minutes=45)  # type: ignore[operator]
    assert event.timezone is None  # exported in UTC: the creation zone is not known
    assert event.recurrence_id is None and event.series_id is None
    assert event.source_id == event.ical_uid == "4fj2l0c1mmh0t6dd1k8t5e3v9a@google.com"
    assert event.organizer is not None
    assert (event.organizer.email, event.organizer.name) == ("priya.natarajan@acme-corp.example", "Priya Natarajan")
    people = {a.email: a for a in event.attendees}
    me = people["sam.rivera@example.com"]
    assert me.is_self and me.response is Response.TENTATIVE and me.name == ""
    assert event.self_response is Response.TENTATIVE
    assert people["jordan.lee@acme-corp.example"].optional
    assert people["jordan.lee@acme-corp.example"].response is Response.NEEDS_ACTION
    room = people["c_1889d2e4f0a@resource.calendar.google.com"]
    assert room.is_resource and not room.is_self
    assert event.join_urls[0] == "https://meet.google.com/abc-defg-hij"
    assert "+1 414-555-0134" in event.phones
    assert "Join with Google Meet" in event.description and "<br>" not in event.description
    assert event.created == datetime(2025, 3, 18, 9, 12, tzinfo=UTC)
    assert event.show_as is ShowAs.BUSY and event.event_type is EventType.DEFAULT


def test_google_floating_time_uses_x_wr_timezone_not_the_user_zone() -> None:
    event = one(fetch("google_export.ics", tz="America/New_York"), "Floating reminder: prepare portfolio")
    assert event.start == datetime(2025, 3, 27, 9, tzinfo=BERLIN)
    assert event.start.utcoffset() is not None  # type: ignore[union-attr]


def test_google_declined_cancelled_transparent_and_out_of_office() -> None:
    result = fetch("google_export.ics")
    declined = one(result, "Globex - Recruiter call")
    assert declined.self_response is Response.DECLINED and not declined.blocks_time
    cancelled = one(result, "Initech - Onsite (cancelled)")
    assert cancelled.cancelled and not cancelled.blocks_time
    trip = one(result, "Weekend in Hamburg")
    assert trip.all_day and (trip.start, trip.end) == (date(2025, 3, 29), date(2025, 3, 31))
    assert trip.show_as is ShowAs.FREE and not trip.blocks_time
    assert trip.is_private and trip.categories == ("Personal", "Travel")
    ooo = one(result, "Out of office")
    assert ooo.event_type is EventType.OUT_OF_OFFICE and ooo.blocks_time


# ---- Outlook export -----------------------------------------------------------------------------


def test_outlook_windows_zone_with_vtimezone_becomes_iana() -> None:
    result = fetch("outlook_export.ics")
    interview = one(result, "Interview: Backend Engineer - Contoso")
    assert interview.start == datetime(2025, 3, 27, 9, 30, tzinfo=UTC)
    assert isinstance(interview.start, datetime) and interview.start.tzinfo == BERLIN
    assert interview.timezone == "Europe/Berlin"
    assert interview.show_as is ShowAs.TENTATIVE  # X-MICROSOFT-CDO-BUSYSTATUS beats TRANSP:OPAQUE
    assert interview.self_response is Response.NEEDS_ACTION  # no PARTSTAT: RFC default
    assert interview.join_urls[0].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert "+49 69 3807 8903" in interview.phones
    assert interview.description.startswith("Hi Sam,\n\nLooking forward")
    people = {a.email: a for a in interview.attendees}
    assert people["lena.fischer@contoso.example"].optional
    # A weekly series in a Windows zone follows Berlin's DST change.
    one_on_one = by_title(result, "1:1 Petra / Sam")
    assert [e.start.astimezone(UTC) for e in one_on_one[:2]] == [  # type: ignore[union-attr]
        datetime(2025, 3, 27, 8, tzinfo=UTC),
        datetime(2025, 4, 3, 7, tzinfo=UTC),
    ]
    assert len(one_on_one) == 5  # UNTIL 24 April
    assert len({e.occurrence_key for e in one_on_one}) == 5


def test_outlook_windows_zone_without_vtimezone_and_html_description() -> None:
    event = one(fetch("outlook_export.ics"), "Initech hiring manager screen")
    assert event.start == datetime(2025, 3, 28, 15, tzinfo=UTC)  # 08:00 PDT
    assert event.timezone == "America/Los_Angeles"
    assert event.description == "Hi Sam,\nPlease join via Zoom (https://initech.zoom.us/j/98765432100?pwd=abc).\nPhone: +1 669 900 6833"
    assert event.join_urls == ("https://initech.zoom.us/j/98765432100?pwd=abc",)
    assert event.phones == ("+1 669 900 6833",)


def test_outlook_windows_zone_without_tzname_in_a_file_with_x_wr_timezone() -> None:
    # Outlook publishes "Pacific Standard Time" with a VTIMEZONE but no TZNAME lines; the file's
    # X-WR-TIMEZONE (New York) must not re-label the 10:00 Pacific time: 18 March is PDT (UTC-7).
    result = fetch("outlook_x_wr_timezone.ics", tz="America/New_York")
    event = one(result, "Interview: Staff Engineer - Initech")
    assert event.start == datetime(2025, 3, 18, 17, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 18, 18, tzinfo=UTC)
    assert event.timezone == "America/Los_Angeles"
    assert result.problems == ()


def test_x_wr_timezone_takes_utc_and_floating_times_once_and_leaves_tzid_times_alone(tmp_path: Path) -> None:
    path = tmp_path / "google.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        "X-WR-TIMEZONE:Europe/Berlin\r\n"
        # A weekly series written in UTC repeats at 10:00 Berlin wall time across the 30 March change.
        "BEGIN:VEVENT\r\nUID:utc-series\r\nDTSTART:20250324T090000Z\r\nDTEND:20250324T093000Z\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=2\r\nSUMMARY:Weekly UTC\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:floating\r\nDTSTART:20250326T140000\r\nDTEND:20250326T150000\r\n"
        "SUMMARY:Floating\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:tokyo\r\nDTSTART;TZID=Asia/Tokyo:20250326T090000\r\n"
        "DTEND;TZID=Asia/Tokyo:20250326T100000\r\nSUMMARY:Tokyo\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    result = source_for(path, tz="America/New_York").fetch(MARCH, None)
    assert result.problems == ()
    weekly = by_title(result, "Weekly UTC")
    assert [e.start for e in weekly] == [datetime(2025, 3, 24, 10, tzinfo=BERLIN), datetime(2025, 3, 31, 10, tzinfo=BERLIN)]
    assert one(result, "Floating").start == datetime(2025, 3, 26, 13, tzinfo=UTC)
    assert one(result, "Tokyo").start == datetime(2025, 3, 26, 0, tzinfo=UTC)


def test_floating_time_under_an_unknown_x_wr_timezone_is_skipped_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "odd.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nX-WR-TIMEZONE:Mars/Olympus\r\n"
        "BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20250326T140000\r\nDTEND:20250326T150000\r\nSUMMARY:Floating\r\n"
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:u\r\nDTSTART:20250326T140000Z\r\nDTEND:20250326T150000Z\r\n"
        "SUMMARY:UTC\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    result = source_for(path).fetch(MARCH, None)
    assert [e.title for e in result.events] == ["UTC"]
    assert any("'f'" in p and "floating time 2025-03-26 14:00" in p for p in result.problems)


def test_outlook_oof_private_and_working_elsewhere() -> None:
    result = fetch("outlook_export.ics")
    vacation = one(result, "Vacation")
    assert (vacation.start, vacation.end) == (date(2025, 3, 31), date(2025, 4, 3))
    assert vacation.show_as is ShowAs.OUT_OF_OFFICE and vacation.event_type is EventType.OUT_OF_OFFICE
    assert vacation.blocks_time
    doctor = one(result, "Doctor")
    assert doctor.is_private and doctor.location == "Praxis Dr. Braun"
    elsewhere = one(result, "Working from the Munich office")
    assert elsewhere.show_as is ShowAs.WORKING_ELSEWHERE and not elsewhere.blocks_time


# ---- Apple export -------------------------------------------------------------------------------


def test_apple_attendees_url_and_duration() -> None:
    event = one(fetch("apple_export.ics", tz="America/New_York"), "Globex final round")
    assert event.start == datetime(2025, 3, 10, 19, tzinfo=UTC)
    assert event.end == datetime(2025, 3, 10, 19, 45, tzinfo=UTC)  # DURATION:PT45M
    assert event.timezone == "America/New_York"
    people = {a.email: a for a in event.attendees}
    # Apple writes the user as urn:uuid with the address in EMAIL=; it is one of the user's aliases.
    assert people["sam@rivera.example"].is_self
    assert event.self_response is Response.ACCEPTED
    assert people["boardroom@globex.example"].is_resource
    assert event.organizer is not None and event.organizer.email == "dana.smith@globex.example"
    assert "https://zoom.us/j/5551234567" in event.join_urls
    assert event.phones == ("212-555-0187",)
    assert event.location == "Globex HQ, 500 Fifth Avenue, New York"
    assert event.show_as is ShowAs.TENTATIVE  # STATUS:TENTATIVE


def test_apple_all_day_defaults_and_duration_days() -> None:
    result = fetch("apple_export.ics", tz="America/New_York")
    birthday = one(result, "Mum's birthday")
    assert (birthday.start, birthday.end) == (date(2025, 3, 11), date(2025, 3, 12))  # no DTEND: one day
    conference = one(result, "Conference")
    assert (conference.start, conference.end) == (date(2025, 3, 12), date(2025, 3, 14))  # DURATION:P2D
    assert conference.show_as is ShowAs.BUSY


def test_event_crossing_midnight_and_the_new_york_dst_change() -> None:
    result = fetch("apple_export.ics", tz="America/New_York")
    flight = one(result, "Red-eye home")
    assert flight.start == datetime(2025, 3, 9, 3, 30, tzinfo=UTC)  # 22:30 EST
    assert flight.end == datetime(2025, 3, 9, 10, 15, tzinfo=UTC)  # 06:15 EDT, after the change
    block = by_title(result, "Daily job-search block")
    assert [e.start.astimezone(UTC).hour for e in block] == [14, 14, 13, 13, 13]  # type: ignore[union-attr]
    assert [e.start.hour for e in block] == [9] * 5  # type: ignore[union-attr]
    assert len({e.occurrence_key for e in block}) == 5


def test_floating_time_without_x_wr_timezone_uses_the_user_zone() -> None:
    ny = one(fetch("apple_export.ics", tz="America/New_York"), "Floating: gym")
    berlin = one(fetch("apple_export.ics", tz="Europe/Berlin"), "Floating: gym")
    assert ny.start == datetime(2025, 3, 11, 18, tzinfo=NEW_YORK)
    assert berlin.start == datetime(2025, 3, 11, 18, tzinfo=BERLIN)
    assert ny.timezone is None


def test_window_filter_and_all_day_events_in_the_user_zone() -> None:
    window = Window(datetime(2025, 3, 11, 23, 30, tzinfo=UTC), datetime(2025, 3, 12, 1, tzinfo=UTC))
    in_ny = {e.title for e in fetch("apple_export.ics", tz="America/New_York", window=window).events}
    in_berlin = {e.title for e in fetch("apple_export.ics", tz="Europe/Berlin", window=window).events}
    # 11 March all day ends at 04:00Z on the 12th in New York, at 23:00Z on the 11th in Berlin.
    assert "Mum's birthday" in in_ny and "Mum's birthday" not in in_berlin
    assert "Conference" in in_berlin  # 12 March starts at 23:00Z on the 11th in Berlin
    assert "Floating: gym" not in in_ny and "Globex final round" not in in_ny


# ---- broken input -------------------------------------------------------------------------------


def test_malformed_events_are_skipped_with_a_note_and_the_rest_loads() -> None:
    result = fetch("malformed.ics", tz="UTC")
    titles = {e.title for e in result.events}
    assert titles == {"Good event before", "Good event after", "No UID but fine"}
    text = "\n".join(result.problems)
    for uid in ("bad-month@example.com", "no-start@example.com", "feb-30@example.com",
                "bad-rrule@example.com", "backwards@example.com"):
        assert uid in text
    assert "Impossible month" in text
    no_uid = one(result, "No UID but fine")
    assert no_uid.source_id == one(fetch("malformed.ics", tz="UTC"), "No UID but fine").source_id


@pytest.mark.parametrize(
    "content",
    [(DATA / "not_calendar.ics").read_bytes(), b"", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Sam\r\nEND:VCARD\r\n"],
    ids=["html", "empty", "vcard"],
)
def test_a_file_that_is_not_icalendar_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "calendar.ics"
    path.write_bytes(content)
    with pytest.raises(ProviderError, match="is not an iCalendar file"):
        source_for(path).fetch(MARCH, None)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="does not exist"):
        source_for(tmp_path / "nope.ics").fetch(MARCH, None)


def test_this_and_future_override_keeps_distinct_keys(tmp_path: Path) -> None:
    path = tmp_path / "taf.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n"
        "BEGIN:VEVENT\r\nUID:s1\r\nDTSTART;TZID=Europe/Berlin:20250303T100000\r\n"
        "DTEND;TZID=Europe/Berlin:20250303T110000\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:s1\r\nRECURRENCE-ID;RANGE=THISANDFUTURE;TZID=Europe/Berlin:20250317T100000\r\n"
        "DTSTART;TZID=Europe/Berlin:20250317T150000\r\nDTEND;TZID=Europe/Berlin:20250317T160000\r\n"
        "SUMMARY:Weekly PM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    events = source_for(path).fetch(MARCH, None).events
    assert [e.start.hour for e in events] == [10, 10, 15, 15, 15, 15]  # type: ignore[union-attr]
    assert [e.occurrence_key for e in events] == [
        "s1@20250303T090000Z", "s1@20250310T090000Z", "s1@20250317T090000Z",
        "s1@20250324T090000Z", "s1@20250331T080000Z", "s1@20250407T080000Z",
    ]


def test_unknown_and_custom_zones_orphan_override_and_cancelled_instance(tmp_path: Path) -> None:
    path = tmp_path / "odd.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
        "TZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:custom\r\nDTSTART;TZID=Customized Time Zone:20250306T100000\r\n"
        "DTEND;TZID=Customized Time Zone:20250306T110000\r\nSUMMARY:Custom zone\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:bogus\r\nDTSTART;TZID=Mars Standard Time:20250306T100000\r\n"
        "DTEND;TZID=Mars Standard Time:20250306T110000\r\nSUMMARY:Unknown zone\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:orphan\r\nRECURRENCE-ID:20250310T100000Z\r\nDTSTART:20250311T100000Z\r\n"
        "DTEND:20250311T110000Z\r\nSUMMARY:Single instance invite\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:daily\r\nDTSTART:20250303T100000Z\r\nDTEND:20250303T110000Z\r\n"
        "RRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:Daily\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:daily\r\nRECURRENCE-ID:20250304T100000Z\r\nDTSTART:20250304T100000Z\r\n"
        "DTEND:20250304T110000Z\r\nSTATUS:CANCELLED\r\nSUMMARY:Daily\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    result = source_for(path).fetch(MARCH, None)
    custom = one(result, "Custom zone")
    assert custom.start == datetime(2025, 3, 6, 4, 30, tzinfo=UTC) and custom.timezone is None
    # A zone neither defined in the file nor known cannot be placed: the event is skipped, said once.
    assert not [e for e in result.events if e.title == "Unknown zone"]
    assert [p for p in result.problems if "Mars Standard Time" in p] == [
        "skipped event 'bogus' ('Unknown zone'): its time zone 'Mars Standard Time' is neither defined "
        "in the file nor a known zone, so 2025-03-06 10:00 cannot be placed without guessing"
    ]
    orphan = one(result, "Single instance invite")
    assert orphan.occurrence_key == "orphan@20250310T100000Z"
    assert orphan.start == datetime(2025, 3, 11, 10, tzinfo=UTC)
    daily = by_title(result, "Daily")
    assert [e.cancelled for e in daily] == [False, True, False]
    assert daily[1].occurrence_key == "daily@20250304T100000Z"


# ---- file cursor --------------------------------------------------------------------------------


def test_file_cursor_unchanged_touched_changed_and_window_slide(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    shutil.copy(DATA / "malformed.ics", path)
    source = source_for(path, tz="UTC")
    first = source.fetch(MARCH, None)
    assert first.complete and not first.unchanged and first.events and first.cursor
    state = json.loads(first.cursor)
    assert {"size", "mtime_ns", "sha256"} <= state.keys()

    second = source.fetch(MARCH, first.cursor)
    assert second.unchanged and second.events == ()
    assert second.problems == first.problems  # still reported while the file stays broken

    os.utime(path, ns=(state["mtime_ns"] + 5_000_000_000,) * 2)  # touched, same bytes
    assert source.fetch(MARCH, second.cursor).unchanged

    path.write_bytes(path.read_bytes().replace(b"Good event after", b"Good event later"))
    third = source.fetch(MARCH, second.cursor)
    assert not third.unchanged and "Good event later" in {e.title for e in third.events}

    slid = Window(MARCH.start + timedelta(days=1), MARCH.end + timedelta(days=1))
    assert not source.fetch(slid, third.cursor).unchanged  # new days entered the window
    small = Window(MARCH.start + timedelta(minutes=5), MARCH.end + REFRESH_SLACK / 2)
    assert source.fetch(small, third.cursor).unchanged
    assert not source.fetch(MARCH, "not json").unchanged


def test_cursor_of_another_config_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "cal.ics"
    shutil.copy(DATA / "apple_export.ics", path)
    cursor = source_for(path, tz="America/New_York").fetch(MARCH, None).cursor
    # Floating times depend on the user's zone: a new zone must re-read the file.
    again = source_for(path, tz="Europe/Berlin").fetch(MARCH, cursor)
    assert not again.unchanged


# ---- URLs over a loopback server ----------------------------------------------------------------


@dataclass
class Served:
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # one-off responses first
    requests: list[dict[str, str]] = field(default_factory=list)
    delay: float = 0.0


class Handler(BaseHTTPRequestHandler):
    served: Served

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        served = self.server.served  # type: ignore[attr-defined]
        served.requests.append({"path": self.path, **{k: v for k, v in self.headers.items()}})
        if served.delay:
            threading.Event().wait(served.delay)
        if served.script:
            status, headers = served.script.pop(0)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/private/secret-token-abc/basic.ics")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self.path.startswith("/private/secret-token-abc/"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (served.etag and inm == served.etag) or (not served.etag and served.last_modified and ims == served.last_modified):
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        if served.etag:
            self.send_header("ETag", served.etag)
        if served.last_modified:
            self.send_header("Last-Modified", served.last_modified)
        self.send_header("Content-Length", str(len(served.body)))
        self.end_headers()
        self.wfile.write(served.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the test output
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or reject the certificate on purpose


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.served = Served()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.served  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def url_source(url: str, sleeps: list[float] | None = None, **calendar: Any) -> IcsSource:
    config = make_config(json.dumps({"type": "ics", "url": url, **calendar}))
    record = sleeps if sleeps is not None else []
    ctx = registry.context(config.accounts[0], config, sleep=record.append)
    return IcsSource(config.accounts[0].calendar, ctx)  # type: ignore[arg-type]


SECRET = "/private/secret-token-abc/basic.ics"


def test_url_etag_304_and_change(server: tuple[str, Served]) -> None:
    base, served = server
    served.body = (DATA / "google_export.ics").read_bytes()
    served.etag = '"v1"'
    source = url_source(base + SECRET)
    try:
        first = source.fetch(MARCH, None)
        assert first.complete and not first.unchanged and len(first.events) > 5
        assert "If-None-Match" not in served.requests[-1]

        second = source.fetch(MARCH, first.cursor)
        assert second.unchanged and second.events == ()
        assert served.requests[-1]["If-None-Match"] == '"v1"'

        served.body = served.body.replace(b"SUMMARY:Out of office", b"SUMMARY:Dentist")
        served.etag = '"v2"'
        third = source.fetch(MARCH, second.cursor)
        assert not third.unchanged and "Dentist" in {e.title for e in third.events}
        assert third.events[0].calendar_id == redact_url(base + SECRET)
        assert source.fetch(MARCH, third.cursor).unchanged
    finally:
        source.close()


def test_url_last_modified_and_same_body_without_validators(server: tuple[str, Served]) -> None:
    base, served = server
    served.body = (DATA / "apple_export.ics").read_bytes()
    served.last_modified = "Wed, 05 Mar 2025 10:00:00 GMT"
    source = url_source(base + SECRET)
    try:
        first = source.fetch(MARCH, None)
        second = source.fetch(MARCH, first.cursor)
        assert second.unchanged
        assert served.requests[-1]["If-Modified-Since"] == "Wed, 05 Mar 2025 10:00:00 GMT"
        served.last_modified = None  # a server without validators: the body's hash decides
        third = source.fetch(MARCH, second.cursor)
        assert third.unchanged and "If-Modified-Since" in served.requests[-1]
        fourth = source.fetch(MARCH, third.cursor)
        assert fourth.unchanged and "If-Modified-Since" not in served.requests[-1]
    finally:
        source.close()


def test_url_503_with_retry_after_then_success(server: tuple[str, Served]) -> None:
    base, served = server
    served.body = (DATA / "outlook_export.ics").read_bytes()
    served.script = [(503, {"Retry-After": "2"}), (429, {"Retry-After": "1"})]
    sleeps: list[float] = []
    source = url_source(base + SECRET, sleeps)
    try:
        result = source.fetch(MARCH, None)
    finally:
        source.close()
    assert result.complete and result.events
    assert sleeps == [2.0, 1.0]
    assert len(served.requests) == 3


def test_url_keeps_failing_is_a_transient_error(server: tuple[str, Served]) -> None:
    base, served = server
    served.script = [(500, {})] * 5
    source = url_source(base + SECRET)
    try:
        with pytest.raises(TransientError) as info:
            source.fetch(MARCH, None)
    finally:
        source.close()
    assert "HTTP 500" in str(info.value) and "secret-token" not in str(info.value)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_url_client_errors_are_plain_and_keep_the_secret(server: tuple[str, Served], status: int) -> None:
    base, served = server
    served.script = [(status, {})]
    source = url_source(base + SECRET + "?token=hunter2")
    try:
        with pytest.raises(ProviderError) as info:
            source.fetch(MARCH, None)
    finally:
        source.close()
    message = str(info.value)
    assert not isinstance(info.value, TransientError)
    assert f"HTTP {status}" in message and "127.0.0.1" in message
    assert "secret-token" not in message and "hunter2" not in message
    assert len(served.requests) == 1  # not retried


def test_url_404_from_the_server(server: tuple[str, Served]) -> None:
    base, _served = server
    source = url_source(base + "/private/wrong-token/basic.ics")
    try:
        with pytest.raises(ProviderError, match="not found") as info:
            source.fetch(MARCH, None)
    finally:
        source.close()
    assert "wrong-token" not in str(info.value)


def test_url_redirect_is_followed_and_html_is_not_a_calendar(server: tuple[str, Served]) -> None:
    base, served = server
    served.body = (DATA / "malformed.ics").read_bytes()
    source = url_source(base + "/redirect")
    try:
        assert source.fetch(MARCH, None).events
        served.body = (DATA / "not_calendar.ics").read_bytes()
        with pytest.raises(ProviderError, match="is not an iCalendar file") as info:
            source.fetch(MARCH, None)
        assert "secret-token" not in str(info.value)
    finally:
        source.close()


def test_url_timeout_and_refused_connection_are_transient(server: tuple[str, Served]) -> None:
    base, served = server
    served.body = (DATA / "malformed.ics").read_bytes()
    served.delay = 0.6
    sleeps: list[float] = []
    source = url_source(base + SECRET, sleeps, timeout_seconds=0.2)
    try:
        with pytest.raises(TransientError, match="no answer"):
            source.fetch(MARCH, None)
    finally:
        source.close()
    assert len(sleeps) == 2  # three tries in all
    # A port nobody listens on.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = url_source(f"http://127.0.0.1:{port}/private/x.ics")
    try:
        with pytest.raises(TransientError, match="cannot connect"):
            refused.fetch(MARCH, None)
    finally:
        refused.close()


def test_webcal_url_over_tls_with_a_ca_bundle(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.served = Served(body=(DATA / "apple_export.ics").read_bytes())  # type: ignore[attr-defined]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    port = httpd.server_address[1]
    good = url_source(f"webcal://localhost:{port}{SECRET}", ca_bundle=str(bundle))
    untrusted = url_source(f"webcal://localhost:{port}{SECRET}")
    try:
        assert good.fetch(MARCH, None).events
        with pytest.raises(ProviderError, match="ca_bundle"):
            untrusted.fetch(MARCH, None)
    finally:
        good.close()
        untrusted.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_redact_url() -> None:
    assert redact_url("https://calendar.google.com/calendar/ical/x%40gmail.com/private-abc/basic.ics") == (
        "https://calendar.google.com/…"
    )
    assert redact_url("https://user:pw@example.com:8443/") == "https://example.com:8443"


# ---- registry -----------------------------------------------------------------------------------


def test_registry_opens_both_providers(tmp_path: Path) -> None:
    config = parse_config(
        f"""
user: {{name: Sam Rivera, email: sam.rivera@example.com, timezone: Europe/Berlin}}
accounts:
  - name: main
    calendar: {{type: ics, path: {DATA / "google_export.ics"}}}
    drafts: {{type: folder, path: {tmp_path / "drafts"}}}
  - name: web
    calendar: {{type: ics, url: "webcal://calendar.example.com/secret/basic.ics"}}
    drafts: {{type: folder, path: drafts}}
""",
        tmp_path / "config.yaml",
    )
    ctx = registry.context(config.accounts[0], config)
    source = registry.open_calendar(config.accounts[0], ctx)
    store = registry.open_drafts(config.accounts[0], ctx)
    assert isinstance(source, CalendarSource) and source.capabilities.incremental is False
    assert isinstance(store, DraftStore)
    assert source.fetch(MARCH, None).events[0].account == "main"
    web = registry.open_calendar(config.accounts[1], registry.context(config.accounts[1], config))
    assert isinstance(web, CalendarSource)
    other = registry.open_drafts(config.accounts[1], registry.context(config.accounts[1], config))
    assert isinstance(other, FolderDrafts) and other.path == tmp_path / "drafts"


def test_two_files_with_the_same_custom_tzid_keep_their_own_rules(tmp_path: Path) -> None:
    # Exchange names every custom zone "Customized Time Zone"; icalendar caches zones by TZID.
    def calendar(offset: str) -> str:
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:Microsoft Exchange Server 2010\r\n"
            "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
            f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
            "BEGIN:VEVENT\r\nUID:c\r\nDTSTART;TZID=Customized Time Zone:20250306T100000\r\n"
            "DTEND;TZID=Customized Time Zone:20250306T110000\r\nSUMMARY:Custom\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )

    first, second = tmp_path / "a.ics", tmp_path / "b.ics"
    first.write_text(calendar("+0900"))
    second.write_text(calendar("-0300"))
    assert one(source_for(first).fetch(MARCH, None), "Custom").start == datetime(2025, 3, 6, 1, tzinfo=UTC)
    assert one(source_for(second).fetch(MARCH, None), "Custom").start == datetime(2025, 3, 6, 13, tzinfo=UTC)


def test_a_windows_name_in_x_wr_timezone_is_mapped_before_floating_times_take_it(tmp_path: Path) -> None:
    path = tmp_path / "windows.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nX-WR-TIMEZONE:Pacific Standard Time\r\n"
        "BEGIN:VEVENT\r\nUID:f\r\nDTSTART:20250318T100000\r\nDTEND:20250318T110000\r\nSUMMARY:Floating\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    result = source_for(path).fetch(MARCH, None)
    assert result.problems == ()
    assert one(result, "Floating").start == datetime(2025, 3, 18, 17, tzinfo=UTC)  # 10:00 PDT
