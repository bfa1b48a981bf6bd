"""Google Calendar source against the loopback fake, through the real google-api-python-client."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.google_fake import GMAIL_COMPOSE, GoogleFake, config_yaml, open_source

from daemon.config import AccountConfig, ConfigError, parse_config
from daemon.core.model import EventType, Response, ShowAs
from providers import registry
from providers.base import AuthError, CalendarSource, ProviderError, TransientError, Window
from providers.google.calendar import SYNC_MARGIN, GoogleCalendarSource, event_from_google
from providers.google.client import endpoints
from providers.retry import RetryPolicy

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 12, 23, tzinfo=UTC))
ME = "me@example.com"


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake() as server:
        server.add_client()
        server.add_calendar(ME, "Me", time_zone="Europe/Berlin", primary=True)
        yield server
        assert server.count("drafts.send") == server.count("messages.send") == 0


def account(fake: GoogleFake, tmp_path: Path, **kw: Any) -> AccountConfig:
    config = parse_config(config_yaml(fake, tmp_path, **kw))
    return config.accounts[0]


def token(fake: GoogleFake, tmp_path: Path, **kw: Any) -> Path:
    return fake.token_file(tmp_path / "tokens" / "g.google.json", **kw)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def source(fake: GoogleFake, tmp_path: Path, sleeps: Sleeps | None = None, **kw: Any) -> GoogleCalendarSource:
    return open_source(parse_config(config_yaml(fake, tmp_path, **kw)), sleep=sleeps if sleeps is not None else Sleeps())


def timed(summary: str, begins: str, ends: str, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "start": {"dateTime": begins}, "end": {"dateTime": ends}, **extra}


def by_title(result: Any) -> dict[str, Any]:
    return {e.title: e for e in result.events}


def test_registry_opens_the_google_source(fake: GoogleFake, tmp_path: Path) -> None:
    config = parse_config(config_yaml(fake, tmp_path))
    src = registry.open_calendar(config.accounts[0], registry.context(config.accounts[0], config))
    assert isinstance(src, CalendarSource) and src.capabilities.incremental


def test_first_sync_maps_every_field(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed(
        "Technical interview — ACME", "2026-11-25T09:00:00-05:00", "2026-11-25T10:00:00-05:00",
        id="evt1", iCalUID="uid-1@acme.example",
        start={"dateTime": "2026-11-25T15:00:00+01:00", "timeZone": "America/New_York"},
        end={"dateTime": "2026-11-25T16:00:00+01:00", "timeZone": "America/New_York"},
        description='<p>Join <a href="https://acme.zoom.us/j/123">here</a><br>or call +1 415 555 0100</p>',
        location="Room 4", visibility="private",
        organizer={"email": "Recruiter@Acme.example", "displayName": "Rita Recruiter"},
        attendees=[
            {"email": ME, "self": True, "responseStatus": "tentative"},
            {"email": "recruiter@acme.example", "organizer": True, "responseStatus": "accepted"},
            {"email": "panel@acme.example", "optional": True, "responseStatus": "needsAction"},
            {"email": "room-4@resource.calendar.google.com", "resource": True, "responseStatus": "accepted"},
        ],
        hangoutLink="https://meet.google.com/abc-defg-hij",
        conferenceData={"conferenceId": "abc-defg-hij", "entryPoints": [
            {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij", "label": "meet.google.com/abc"},
            {"entryPointType": "phone", "uri": "tel:+1-262-555-0199", "label": "+1 262-555-0199", "pin": "123"},
            {"entryPointType": "more", "uri": "https://tel.meet/abc-defg-hij?pin=1"},
        ]},
    ))
    fake.put_event(ME, {"summary": "Holiday", "start": {"date": "2026-12-01"}, "end": {"date": "2026-12-03"},
                        "eventType": "outOfOffice", "organizer": {"email": ME, "self": True}})
    fake.put_event(ME, timed("Deep work", "2026-11-26T09:00:00Z", "2026-11-26T11:00:00Z", eventType="focusTime"))
    fake.put_event(ME, {"summary": "Home", "start": {"date": "2026-11-27"}, "end": {"date": "2026-11-28"},
                        "eventType": "workingLocation", "transparency": "transparent"})
    fake.put_event(ME, timed("Lunch", "2026-11-26T12:00:00Z", "2026-11-26T13:00:00Z", transparency="transparent"))
    fake.put_event(ME, timed("Declined sync", "2026-11-26T14:00:00Z", "2026-11-26T15:00:00Z",
                             organizer={"email": "boss@example.com"},
                             attendees=[{"email": ME, "self": True, "responseStatus": "declined"}]))
    fake.put_event(ME, timed("Standup", "2026-11-30T09:00:00+01:00", "2026-11-30T09:15:00+01:00",
                             id="series1_20261130T080000Z", recurringEventId="series1",
                             originalStartTime={"dateTime": "2026-11-30T09:00:00+01:00", "timeZone": "Europe/Berlin"},
                             start={"dateTime": "2026-11-30T10:00:00+01:00", "timeZone": "Europe/Berlin"},
                             end={"dateTime": "2026-11-30T10:15:00+01:00", "timeZone": "Europe/Berlin"},
                             iCalUID="series1@google.com"))  # this instance was moved by an hour
    fake.put_event(ME, timed("Out of range", "2027-03-01T09:00:00Z", "2027-03-01T10:00:00Z"))

    result = source(fake, tmp_path).fetch(WINDOW, None)

    assert result.complete and not result.problems
    events = by_title(result)
    assert set(events) == {"Technical interview — ACME", "Holiday", "Deep work", "Home", "Lunch", "Declined sync",
                           "Standup"}
    iv = events["Technical interview — ACME"]
    assert iv.source_id == "primary/evt1" and iv.calendar_id == "primary"
    assert iv.start == datetime(2026, 11, 25, 14, 0, tzinfo=UTC) and iv.timezone == "America/New_York"
    assert iv.start.tzinfo == ZoneInfo("America/New_York") and iv.start.hour == 9
    assert iv.ical_uid == "uid-1@acme.example" and iv.series_id is None and iv.recurrence_id is None
    assert iv.organizer is not None and iv.organizer.email == "recruiter@acme.example"
    assert iv.organizer.name == "Rita Recruiter" and not iv.organizer.is_self
    assert iv.self_response is Response.TENTATIVE and iv.show_as is ShowAs.TENTATIVE
    people = {p.email: p for p in iv.attendees}
    assert people[ME].is_self and people["panel@acme.example"].optional
    assert people["room-4@resource.calendar.google.com"].is_resource
    assert iv.join_urls[0] == "https://meet.google.com/abc-defg-hij" and "https://acme.zoom.us/j/123" in iv.join_urls
    assert "https://tel.meet/abc-defg-hij?pin=1" not in iv.join_urls
    assert iv.phones[0] == "+1 262-555-0199" and "+1 415 555 0100" in iv.phones
    assert "here (https://acme.zoom.us/j/123)" in iv.description and "<" not in iv.description
    assert iv.location == "Room 4" and iv.is_private
    assert iv.web_link and iv.created is not None and iv.updated is not None and iv.updated.tzinfo is not None

    holiday = events["Holiday"]
    assert holiday.all_day and holiday.start == date(2026, 12, 1) and holiday.end == date(2026, 12, 3)
    assert holiday.event_type is EventType.OUT_OF_OFFICE and holiday.show_as is ShowAs.OUT_OF_OFFICE
    assert holiday.self_response is Response.ORGANIZER and holiday.blocks_time
    assert events["Deep work"].event_type is EventType.FOCUS_TIME and events["Deep work"].blocks_time
    assert events["Home"].event_type is EventType.WORKING_LOCATION and not events["Home"].blocks_time
    assert events["Lunch"].show_as is ShowAs.FREE and not events["Lunch"].blocks_time
    assert events["Lunch"].self_response is Response.ACCEPTED  # the user's own entry without guests
    assert events["Declined sync"].self_response is Response.DECLINED and not events["Declined sync"].blocks_time
    standup = events["Standup"]
    assert standup.series_id == "series1" and standup.recurrence_id == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert standup.occurrence_key == "series1@google.com@20261130T080000Z"
    # The request followed the documented full-sync shape.
    (req,) = [r for r in fake.requests if r.route == "events.list"]
    assert req.path == "/calendar/v3/calendars/primary/events"
    assert req.query["singleEvents"] == ["true"] and req.query["maxResults"] == ["2500"]
    assert req.query["timeMin"] == ["2026-11-23T00:00:00Z"]
    assert req.query["timeMax"] == [(WINDOW.end + SYNC_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")]


def test_paging_then_one_request_per_idle_poll(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.page_limit = 2
    for day in range(1, 8):
        fake.put_event(ME, timed(f"E{day}", f"2026-12-{day:02d}T09:00:00Z", f"2026-12-{day:02d}T10:00:00Z"))
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    assert len(first.events) == 7 and first.complete
    assert fake.count("events.list") == 4  # pages of 2; the sync token only on the last one
    fake.reset_counts()

    idle = src.fetch(WINDOW, first.cursor)

    assert idle.unchanged and not idle.events and not idle.complete
    assert [r.route for r in fake.requests] == ["events.list"]
    query = fake.requests[0].query
    assert set(query) == {"syncToken", "singleEvents", "maxResults", "alt"}
    assert idle.cursor != first.cursor  # the new token is kept


def test_delta_applies_changes_cancellations_and_moves(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("Keep", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", id="keep"))
    fake.put_event(ME, timed("Change", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z", id="chg"))
    fake.put_event(ME, timed("Delete", "2026-12-03T09:00:00Z", "2026-12-03T10:00:00Z", id="del"))
    fake.put_event(ME, timed("Moves away", "2026-12-04T09:00:00Z", "2026-12-04T10:00:00Z", id="away"))
    fake.put_event(ME, timed("Standup", "2026-12-07T09:00:00Z", "2026-12-07T09:15:00Z", id="s_1",
                             recurringEventId="s", originalStartTime={"dateTime": "2026-12-07T09:00:00Z"}))
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    fake.put_event(ME, timed("Changed", "2026-12-02T11:00:00Z", "2026-12-02T12:00:00Z", id="chg"))
    fake.cancel_event(ME, "del")
    fake.cancel_event(ME, "s_1")  # one instance of a live series cancelled
    fake.put_event(ME, timed("Moves away", "2027-06-04T09:00:00Z", "2027-06-04T10:00:00Z", id="away"))
    fake.put_event(ME, timed("New", "2026-12-05T09:00:00Z", "2026-12-05T10:00:00Z", id="new"))

    delta = src.fetch(WINDOW, first.cursor)

    assert not delta.complete and not delta.unchanged
    assert {e.title for e in delta.events} == {"Changed", "New"}
    assert set(delta.removed) == {"primary/del", "primary/s_1", "primary/away"}
    assert by_title(delta)["Changed"].start == datetime(2026, 12, 2, 11, tzinfo=UTC)


def test_deleted_series_forces_a_full_sync(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("Solo", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    for day in (7, 14):
        fake.put_event(ME, timed("Weekly", f"2026-12-{day:02d}T09:00:00Z", f"2026-12-{day:02d}T09:30:00Z",
                                 id=f"wk_{day}", recurringEventId="wk",
                                 originalStartTime={"dateTime": f"2026-12-{day:02d}T09:00:00Z"}))
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    assert len(first.events) == 3
    fake.delete_series(ME, "wk")

    after = src.fetch(WINDOW, first.cursor)

    assert after.complete and [e.title for e in after.events] == ["Solo"]


def test_expired_sync_token_410_means_full_sync(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    fake.expire_sync_tokens()
    fake.put_event(ME, timed("B", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"))
    fake.reset_counts()

    again = src.fetch(WINDOW, first.cursor)

    assert again.complete and {e.title for e in again.events} == {"A", "B"}
    assert fake.count("events.list", status=410) == 1 and fake.count("events.list", status=200) == 1
    assert "timeMin" in fake.requests[-1].query and "syncToken" not in fake.requests[-1].query
    # and the fresh token works incrementally again
    fake.reset_counts()
    assert src.fetch(WINDOW, again.cursor).unchanged and fake.count() == 1


def test_window_rolling_past_the_synced_range_resyncs(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("Late", "2026-12-27T09:00:00Z", "2026-12-27T10:00:00Z"))
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    assert [e.title for e in first.events] == ["Late"]  # inside the margin beyond the window: kept
    three_days = Window(WINDOW.start + timedelta(days=3), WINDOW.end + timedelta(days=3))
    assert not src.fetch(three_days, first.cursor).complete
    ten_days = Window(WINDOW.start + timedelta(days=10), WINDOW.end + timedelta(days=10))
    rolled = src.fetch(ten_days, first.cursor)
    assert rolled.complete
    assert json.loads(rolled.cursor or "")["calendars"]["primary"]["max"].startswith("2027-01-09")


def test_unreadable_cursor_falls_back_to_full_sync(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    assert source(fake, tmp_path).fetch(WINDOW, "{not json").complete


def test_all_calendars_reads_the_list_once(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.add_calendar("team@group.calendar.google.com", "Team", access_role="reader")
    fake.add_calendar("hidden@group.calendar.google.com", "Hidden", hidden=True)
    fake.add_calendar("colleague@example.com", "Colleague", access_role="freeBusyReader")
    fake.put_event(ME, timed("Mine", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", id="same"))
    fake.put_event("team@group.calendar.google.com",
                   timed("Team", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z", id="same"))
    src = source(fake, tmp_path, calendars="all")
    first = src.fetch(WINDOW, None)
    assert {e.source_id for e in first.events} == {f"{ME}/same", "team@group.calendar.google.com/same"}
    assert fake.count("calendarList.list") == 1
    fake.reset_counts()
    idle = src.fetch(WINDOW, first.cursor)
    assert idle.unchanged and fake.routes_called() == ["events.list", "events.list"]


def test_unknown_calendar_is_a_plain_error(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    with pytest.raises(ProviderError, match="'nope@example.com' was not found") as info:
        source(fake, tmp_path, calendars="[primary, nope@example.com]").fetch(WINDOW, None)
    assert not isinstance(info.value, TransientError)


def test_a_malformed_event_affects_only_itself(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("Good", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    fake.put_event(ME, {"id": "bad", "summary": "Bad", "start": {"dateTime": "2026-12-01T09:00:00Z"},
                        "end": {"date": "2026-12-02"}})
    fake.put_event(ME, {"id": "worse", "summary": "Worse", "start": {"dateTime": "not a time"},
                        "end": {"dateTime": "2026-12-01T10:00:00Z"}})
    result = source(fake, tmp_path).fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["Good"]
    assert len(result.problems) == 2 and any("bad" in p for p in result.problems)


def test_event_mapping_without_offsets_uses_the_zone() -> None:
    item = {"id": "x", "summary": "Call", "start": {"dateTime": "2026-03-29T02:30:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-29T04:00:00", "timeZone": "Europe/Berlin"}}
    event = event_from_google(item, account="g", calendar_id="c")
    assert event.start.utcoffset() is not None and event.timezone == "Europe/Berlin"  # type: ignore[union-attr]
    no_zone = {"id": "y", "start": {"dateTime": "2026-07-01T09:00:00"}, "end": {"dateTime": "2026-07-01T10:00:00"}}
    event = event_from_google(no_zone, account="g", calendar_id="c", calendar_tz=BERLIN)
    assert event.start == datetime(2026, 7, 1, 7, tzinfo=UTC) and event.title == "(no title)"
    with pytest.raises(ValueError, match="end is before start"):
        event_from_google({"id": "z", "start": {"date": "2026-07-02"}, "end": {"date": "2026-07-01"}},
                          account="g", calendar_id="c")


def test_endpoints_accept_a_root_or_the_calendar_base() -> None:
    assert endpoints(None) == (None, None)
    assert endpoints("https://proxy.example/google") == ("https://proxy.example/google/calendar/v3/",
                                                         "https://proxy.example/google/")
    assert endpoints("http://127.0.0.1:9/calendar/v3/") == ("http://127.0.0.1:9/calendar/v3/", "http://127.0.0.1:9/")


# ---- resilience -----------------------------------------------------------------------------------


def test_429_burst_honours_retry_after(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    fake.fail("events.list", 429, retry_after="7", times=3)
    sleeps = Sleeps()
    result = source(fake, tmp_path, sleeps).fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["A"]
    assert sleeps == [7.0, 7.0, 7.0] and fake.count("events.list") == 4


def test_500_and_rate_limit_403_are_retried_with_backoff(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    fake.fail("events.list", 500)
    fake.fail("events.list", 403, reason="userRateLimitExceeded")
    sleeps = Sleeps()
    assert len(source(fake, tmp_path, sleeps).fetch(WINDOW, None).events) == 1
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1 and 0 <= sleeps[1] <= 2


def test_quota_exceeded_backs_off_for_long_without_hammering(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.fail("events.list", 403, reason="quotaExceeded", message="Calendar usage limits exceeded.", times=5)
    sleeps = Sleeps()
    with pytest.raises(TransientError) as info:
        source(fake, tmp_path, sleeps).fetch(WINDOW, None)
    assert info.value.retry_after is not None and info.value.retry_after >= 3600
    assert sleeps == [] and fake.count("events.list") == 1


def test_persistent_5xx_gives_up_as_transient(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.fail("events.list", 503, times=10)
    src = open_source(parse_config(config_yaml(fake, tmp_path)), sleep=Sleeps(), policy=RetryPolicy(attempts=3))
    with pytest.raises(TransientError, match="HTTP 503"):
        src.fetch(WINDOW, None)
    assert fake.count("events.list") == 3


def test_a_timeout_is_retried(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    fake.delay("events.list", 1.0)
    sleeps = Sleeps()
    result = source(fake, tmp_path, sleeps, timeout=0.3).fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["A"] and len(sleeps) == 1


def test_a_connection_reset_is_retried(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path, valid_access=True)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    fake.reset("events.list", times=2)
    sleeps = Sleeps()
    result = source(fake, tmp_path, sleeps).fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["A"]
    # httplib2 itself re-sends a GET once when a connection breaks; our retry (with a sleep) does the rest.
    assert len(sleeps) <= 1 and fake.count("events.list", status=200) == 1


def test_a_non_json_answer_and_a_bad_endpoint_are_plain_errors(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.fail("events.list", 200, body=b"<html>Proxy login required</html>")
    with pytest.raises(ProviderError, match="unreadable answer") as info:
        source(fake, tmp_path).fetch(WINDOW, None)
    assert not isinstance(info.value, TransientError)
    text = config_yaml(fake, tmp_path).replace(fake.api_endpoint, "proxy.example:8080/")
    with pytest.raises(ConfigError, match=r"google.api_endpoint .*must be an http\(s\) URL"):
        parse_config(text)  # caught by `salvage config validate`, not first at run time


def test_bad_request_is_not_retried(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path)
    fake.fail("events.list", 400, message="Bad Request")
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as info:
        source(fake, tmp_path, sleeps).fetch(WINDOW, None)
    assert not isinstance(info.value, TransientError) and sleeps == []


# ---- credentials ----------------------------------------------------------------------------------


def test_expired_token_is_refreshed_at_the_configured_endpoint_and_saved(
    fake: GoogleFake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = token(fake, tmp_path)  # no access token: google-auth treats it as expired
    before = json.loads(path.read_text())
    assert before["token_uri"] == "https://oauth2.googleapis.com/token"  # the file's own value is ignored
    src = source(fake, tmp_path)
    src.fetch(WINDOW, None)
    assert fake.count("token") == 1
    saved = json.loads(path.read_text())
    assert saved["token"] in fake.access_tokens and saved["refresh_token"] == before["refresh_token"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert saved["token"] not in caplog.text and saved["refresh_token"] not in caplog.text  # secrets never logged
    fake.reset_counts()
    source(fake, tmp_path).fetch(WINDOW, None)  # a new process: the saved token is still valid
    assert fake.count("token") == 0


def test_a_token_file_replaced_by_salvage_auth_is_not_overwritten(fake: GoogleFake, tmp_path: Path) -> None:
    path = token(fake, tmp_path)
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    token(fake, tmp_path, valid_access=True)  # `salvage auth` ran meanwhile: a new grant on disk
    replaced = json.loads(path.read_text())
    for info in fake.access_tokens.values():  # the old access token runs out; the old grant still works
        if info is not fake.access_tokens[replaced["token"]]:
            info["expires"] = 0
    src.fetch(WINDOW, first.cursor)
    assert json.loads(path.read_text()) == replaced
    fake.reset_counts()
    src.fetch(WINDOW, first.cursor)
    assert fake.count("token") == 0  # now running on the new grant's access token
    assert any(r.route == "events.list" for r in fake.requests)


def test_rejected_access_token_is_refreshed_once(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path, valid_access=True)
    fake.access_tokens.clear()  # Google forgot it early (e.g. password change)
    source(fake, tmp_path).fetch(WINDOW, None)
    assert fake.routes_called() == ["events.list", "token", "events.list"]


def test_invalid_grant_needs_salvage_auth(fake: GoogleFake, tmp_path: Path, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    caplog.set_level(logging.DEBUG)
    path = token(fake, tmp_path)
    secret = json.loads(path.read_text())["refresh_token"]
    fake.revoke_all()
    src = source(fake, tmp_path)
    with pytest.raises(AuthError, match=r"invalid_grant.*salvage auth g"):
        src.fetch(WINDOW, None)
    assert secret not in caplog.text
    # After `salvage auth` wrote a new token, the same object recovers without a restart.
    token(fake, tmp_path)
    assert src.fetch(WINDOW, None).complete


def test_missing_token_file_says_how_to_authorise(fake: GoogleFake, tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="salvage auth g"):
        source(fake, tmp_path).fetch(WINDOW, None)
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "g.google.json").write_text('{"client_id": "x"}')
    with pytest.raises(AuthError, match="incomplete"):
        source(fake, tmp_path).fetch(WINDOW, None)


def test_token_without_calendar_scope_is_an_auth_error(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path, scopes=[GMAIL_COMPOSE])
    with pytest.raises(AuthError, match="lacks a permission"):
        source(fake, tmp_path).fetch(WINDOW, None)


def test_tls_with_a_private_ca_bundle(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with GoogleFake(tls_ca=ca) as server:
        server.add_client()
        server.add_calendar(ME, primary=True)
        server.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        server.token_file(tmp_path / "tokens" / "g.google.json")
        assert server.url.startswith("https://")
        result = source(server, tmp_path, ca_bundle=bundle).fetch(WINDOW, None)
        assert [e.title for e in result.events] == ["A"] and server.count("token") == 1
        with pytest.raises(ProviderError, match="not trusted") as info:
            source(server, tmp_path).fetch(WINDOW, None)  # no ca_bundle: the private CA is unknown
        assert not isinstance(info.value, TransientError)


# ---- answers shaped differently from our fake's (another server, or Google on another day) --------


def test_sparse_answers_are_read_as_documented(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path, valid_access=True)
    minimal = {"id": "m1", "start": {"dateTime": "2026-12-01T09:00:00Z"}, "end": {"dateTime": "2026-12-01T10:00:00Z"},
               "created": "0000-12-29T00:00:00.000Z", "someNewField": {"x": [1]}}
    # A first page with no items and no timeZone; the sync token only on the last page.
    fake.fail("events.list", 200, body=json.dumps({"kind": "calendar#events", "nextPageToken": "p2"}).encode())
    fake.fail("events.list", 200, body=json.dumps({"items": [minimal], "nextSyncToken": "s1"}).encode())
    src = source(fake, tmp_path)

    first = src.fetch(WINDOW, None)

    (event,) = first.events
    assert event.source_id == "primary/m1" and event.title == "(no title)" and event.created is None
    assert event.self_response is Response.ACCEPTED and not first.problems
    full, second = (r.query for r in fake.requests)
    assert "pageToken" not in full and second["pageToken"] == ["p2"]
    assert {k: v for k, v in second.items() if k != "pageToken"} == full  # same query on every page

    # A delta holding only the id of a deleted event, then an empty delta without `items`.
    fake.fail("events.list", 200, body=json.dumps({"items": [{"id": "m1", "status": "cancelled"}],
                                                   "nextSyncToken": "s2"}).encode())
    fake.fail("events.list", 200, body=json.dumps({"nextSyncToken": "s3"}).encode())
    delta = src.fetch(WINDOW, first.cursor)
    idle = src.fetch(WINDOW, delta.cursor)

    assert delta.removed == ("primary/m1",) and not delta.events and not delta.complete
    assert idle.unchanged
    syncs = [r.query for r in fake.requests[2:]]
    assert [q["syncToken"] for q in syncs] == [["s1"], ["s2"]]
    forbidden = {"timeMin", "timeMax", "orderBy", "q", "iCalUID", "updatedMin", "showDeleted",
                 "privateExtendedProperty", "sharedExtendedProperty"}
    assert all(not forbidden & set(q) and q["singleEvents"] == ["true"] for q in syncs)


@pytest.mark.parametrize("body", [
    b'{"error": {"code": 410, "message": "Gone"}}',  # no errors[] / reason
    b'{"error": {"code": 410, "message": "Sync token is no longer valid, a full sync is required.", '
    b'"errors": [{"domain": "calendar", "reason": "fullSyncRequired", "message": "Sync token is no longer '
    b'valid, a full sync is required."}], "status": "GONE"}}',
    b"<html>410 Gone</html>",
])
def test_any_410_on_a_sync_token_means_full_sync(fake: GoogleFake, tmp_path: Path, body: bytes) -> None:
    token(fake, tmp_path, valid_access=True)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    src = source(fake, tmp_path)
    first = src.fetch(WINDOW, None)
    fake.fail("events.list", 410, body=body)
    again = src.fetch(WINDOW, first.cursor)
    assert again.complete and [e.title for e in again.events] == ["A"]
    assert "syncToken" in fake.requests[-2].query and "timeMin" in fake.requests[-1].query


def test_an_html_404_for_a_calendar_is_a_plain_error(fake: GoogleFake, tmp_path: Path) -> None:
    token(fake, tmp_path, valid_access=True)
    fake.fail("events.list", 404, body=b"<html>Not Found</html>")  # a proxy's page: not Google saying "no such calendar"
    with pytest.raises(ProviderError, match="not an answer from Google's API") as info:
        source(fake, tmp_path).fetch(WINDOW, None)
    assert not isinstance(info.value, TransientError)


def test_token_uri_falls_back_to_the_files_own_when_not_configured(fake: GoogleFake, tmp_path: Path) -> None:
    path = token(fake, tmp_path)
    info = json.loads(path.read_text())
    info["token_uri"] = fake.token_uri
    path.write_text(json.dumps(info))
    text = config_yaml(fake, tmp_path).replace(f"      token_uri: {fake.token_uri}\n", "")
    src = open_source(parse_config(text), sleep=Sleeps())
    assert src.fetch(WINDOW, None).complete and fake.count("token") == 1
