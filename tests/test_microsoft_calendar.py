"""The Graph calendar source against a loopback HTTPS fake Graph, through real msal and httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fakes.graph_fake import DEFAULT_CALENDAR, GraphFake, config_text, open_client, open_context, sign_in

from daemon.config import Config, ConfigError, parse_config
from daemon.core.model import EventType, Response, ShowAs
from providers.base import AuthError, FixedToken, ProviderError, TransientError, Window
from providers.microsoft.calendar import GraphCalendar, event_from_graph, round_range
from providers.microsoft.client import GraphClient
from providers.retry import RetryPolicy

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=1), NOW + timedelta(days=30))
RECRUITER = ("Rita Recruiter", "rita@acme.example")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GraphFake, Path]]:
    fake = GraphFake()
    state = tmp_path_factory.mktemp("ms-calendar")
    sign_in(fake, config_text(fake, state))
    yield fake, state
    fake.close()


@pytest.fixture
def fake(server: tuple[GraphFake, Path]) -> Iterator[GraphFake]:
    graph = server[0]
    graph.reset()
    yield graph
    assert graph.violations == []


class Harness:
    """Builds calendar sources on the shared fake; records the retry sleeps instead of sleeping."""

    def __init__(self, fake: GraphFake, state: Path) -> None:
        self.fake = fake
        self.state = state
        self.sleeps: list[float] = []
        self.clients: list[GraphClient] = []

    def config(self, **kwargs: Any) -> Config:
        return parse_config(config_text(self.fake, self.state, **kwargs))

    def source(self, **kwargs: Any) -> GraphCalendar:
        config = self.config(**kwargs)
        account = config.accounts[0]
        client = open_client(config, retry=RetryPolicy(attempts=3, base_seconds=0.01), sleep=self.sleeps.append)
        self.clients.append(client)
        return GraphCalendar(account.calendar, client, open_context(config))  # type: ignore[arg-type]

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def harness(server: tuple[GraphFake, Path], fake: GraphFake) -> Iterator[Harness]:
    h = Harness(fake, server[1])
    yield h
    h.close()


def at(days: float, hours: float = 0) -> datetime:
    return NOW + timedelta(days=days, hours=hours)


def deltas(fake: GraphFake) -> int:
    return fake.count("GET", "calendarView/delta")


def initial_rounds(fake: GraphFake) -> int:
    return fake.count("GET", "startDateTime=")


# ---- rounds, deltas, idle polls -----------------------------------------------------------------


def test_first_round_follows_pages_and_an_idle_poll_costs_one_request(harness: Harness, fake: GraphFake) -> None:
    for i in range(250):
        fake.add_event(f"Event {i}", at(i % 25, 1), at(i % 25, 2), organizer=RECRUITER)
    source = harness.source()
    first = source.fetch(WINDOW, None)
    assert first.complete and not first.removed and not first.problems
    assert len(first.events) == 250
    assert len({e.source_id for e in first.events}) == 250
    assert deltas(fake) == 3  # 100 + 100 + 50 with Prefer: odata.maxpagesize=100
    assert all("odata.maxpagesize=100" in r.prefer for r in fake.requests if "calendarView" in r.path)

    fake.reset_counts()
    idle = source.fetch(WINDOW, first.cursor)
    assert (idle.complete, idle.unchanged, idle.events, idle.removed) == (False, True, (), ())
    assert fake.count() == 1 and deltas(fake) == 1 and initial_rounds(fake) == 0
    assert json.loads(idle.cursor or "")["links"] != json.loads(first.cursor or "")["links"]


def test_delta_brings_changes_removals_and_moves_out_of_the_window(harness: Harness, fake: GraphFake) -> None:
    keep = fake.add_event("Phone screen", at(2), at(2, 1), organizer=RECRUITER)
    gone = fake.add_event("Coffee", at(3), at(3, 1))
    later = fake.add_event("Dentist", at(4), at(4, 1))
    far = fake.add_event("Gym", at(5), at(5, 1))
    source = harness.source()
    first = source.fetch(WINDOW, None)
    assert len(first.events) == 4

    fake.update_event(keep, subject="Phone screen (moved)", start=at(2, 3), end=at(2, 4))
    fake.delete_event(gone)
    fake.update_event(later, start=at(32), end=at(32, 1))  # past the window, inside the round's slack
    fake.update_event(far, start=at(90), end=at(90, 1))  # out of the round: Graph reports it removed
    new = fake.add_event("Final round", at(6), at(6, 1), organizer=RECRUITER)
    delta = source.fetch(WINDOW, first.cursor)

    assert not delta.complete and not delta.unchanged
    assert {e.title for e in delta.events} == {"Phone screen (moved)", "Final round"}
    moved = next(e for e in delta.events if e.title.startswith("Phone"))
    assert moved.start == at(2, 3)
    assert set(delta.removed) == {f"default/{gone}", f"default/{later}", f"default/{far}"}
    assert f"default/{new}" in {e.source_id for e in delta.events}
    assert initial_rounds(fake) == 1


@pytest.mark.parametrize("mode", ["410", "syncStateNotFound"])
def test_a_rejected_delta_token_starts_a_new_full_round(harness: Harness, fake: GraphFake, mode: str) -> None:
    a = fake.add_event("Interview", at(1), at(1, 1), organizer=RECRUITER)
    fake.add_event("Lunch", at(1, 3), at(1, 4))
    source = harness.source()
    first = source.fetch(WINDOW, None)
    fake.expire_delta_tokens(mode)
    fake.update_event(a, subject="Interview (updated)")
    result = source.fetch(WINDOW, first.cursor)
    assert result.complete
    assert sorted(e.title for e in result.events) == ["Interview (updated)", "Lunch"]
    assert initial_rounds(fake) == 2
    again = source.fetch(WINDOW, result.cursor)
    assert again.unchanged and not again.complete


def test_the_window_rolls_forward_on_the_same_delta_link_then_starts_a_new_round(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    source = harness.source()
    first = source.fetch(WINDOW, None)
    start, end = round_range(WINDOW)
    assert start <= WINDOW.start and end >= WINDOW.end + timedelta(days=7)

    tomorrow = Window(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    rolled = source.fetch(tomorrow, first.cursor)
    assert not rolled.complete and initial_rounds(fake) == 1

    fake.add_event("Far ahead", at(38), at(38, 1))
    later = Window(WINDOW.start + timedelta(days=9), WINDOW.end + timedelta(days=9))
    fresh = source.fetch(later, rolled.cursor)
    assert fresh.complete and initial_rounds(fake) == 2
    assert "Far ahead" in {e.title for e in fresh.events}
    assert "Interview" not in {e.title for e in fresh.events}  # ended before the new window


def test_a_cursor_from_elsewhere_or_garbage_means_a_full_round(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    source = harness.source()
    for cursor in ("not json", '{"v": 99}', json.dumps({"v": 1, "base": "https://elsewhere/v1.0"})):
        assert source.fetch(WINDOW, cursor).complete
    first = source.fetch(WINDOW, None)
    other = harness.source(calendars="all")  # the selection changed: the old links do not apply
    assert other.fetch(WINDOW, first.cursor).complete


# ---- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reported", ["UTC", "Pacific Standard Time", "W. Europe Standard Time", "Asia/Kolkata", "Tokyo Standard Time",
                 "America/St_Johns"]
)
def test_events_come_out_right_whatever_zone_graph_reports(harness: Harness, fake: GraphFake, reported: str) -> None:
    fake.report_zone = reported  # Graph ignoring our Prefer: outlook.timezone="UTC"
    instant = datetime(2026, 11, 25, 23, 30, 15, 123456, tzinfo=UTC)
    fake.add_event("Late call", instant, instant + timedelta(minutes=45), original_zone="Tokyo Standard Time")
    fake.add_event("Offsite", date(2026, 11, 26), date(2026, 11, 28), isAllDay=True, original_zone="tzone://Microsoft/Custom")
    events = {e.title: e for e in harness.source().fetch(WINDOW, None).events}
    call, offsite = events["Late call"], events["Offsite"]
    assert call.start == instant and call.end == instant + timedelta(minutes=45)
    assert isinstance(call.start, datetime) and call.start.utcoffset() == timedelta(0)
    assert call.timezone == "Asia/Tokyo"
    assert (offsite.start, offsite.end, offsite.all_day) == (date(2026, 11, 26), date(2026, 11, 28), True)
    assert offsite.timezone is None


def test_dst_edges_in_a_windows_zone(harness: Harness, fake: GraphFake) -> None:
    fake.report_zone = "Pacific Standard Time"
    # 2026-11-01 01:30 happens twice in Los Angeles; Graph's text cannot say which, the earlier wins.
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    spring = datetime(2027, 3, 14, 10, 0, tzinfo=UTC)  # after the March jump
    fake.add_event("Ambiguous hour", first, first + timedelta(minutes=20))
    fake.add_event("Spring", spring, spring + timedelta(hours=1))
    wide = Window(datetime(2026, 10, 31, tzinfo=UTC), datetime(2027, 3, 20, tzinfo=UTC))
    events = {e.title: e for e in harness.source().fetch(wide, None).events}
    assert events["Ambiguous hour"].start == first.astimezone(UTC)
    assert events["Spring"].start == spring


# ---- resilience -------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    source = harness.source()
    first = source.fetch(WINDOW, None)
    fake.throttle("deltatoken", retry_after=7)
    fake.add_event("Second", at(2), at(2, 1))
    result = source.fetch(WINDOW, first.cursor)
    assert [e.title for e in result.events] == ["Second"]
    assert harness.sleeps == [7.0]


def test_503_and_other_5xx_back_off_with_jitter(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    fake.unavailable("calendarView/delta")
    fake.add_fault("calendarView/delta", 502, body={"error": {"code": "BadGateway", "message": "bad gateway"}})
    result = harness.source().fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["Interview"]
    assert len(harness.sleeps) == 2 and all(0 <= s <= 0.02 for s in harness.sleeps)


def test_a_timeout_is_retried(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    fake.add_fault("calendarView/delta", delay=0.8)
    source = harness.source(timeout_seconds=0.3)
    result = source.fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["Interview"]
    assert len(harness.sleeps) == 1


def test_persistent_failure_is_a_transient_error(harness: Harness, fake: GraphFake) -> None:
    fake.unavailable("calendarView/delta", times=10, retry_after=2)
    with pytest.raises(TransientError) as caught:
        harness.source().fetch(WINDOW, None)
    assert caught.value.retry_after == 2
    assert harness.sleeps == [2.0, 2.0]


def test_an_expired_access_token_is_refreshed_silently(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    source = harness.source()
    source.fetch(WINDOW, None)
    refreshes = fake.refreshes
    fake.expire_access_tokens()
    assert [e.title for e in source.fetch(WINDOW, None).events] == ["Interview"]
    assert fake.refreshes == refreshes + 1


def test_a_failed_refresh_needs_salvage_auth_and_recovers_after_it(
    harness: Harness, fake: GraphFake, server: tuple[GraphFake, Path]
) -> None:
    fake.add_event("Interview", at(1), at(1, 1))
    source = harness.source()
    first = source.fetch(WINDOW, None)
    fake.fail_refresh = True
    fake.expire_access_tokens()
    with pytest.raises(AuthError, match="salvage auth work"):
        source.fetch(WINDOW, first.cursor)
    fake.fail_refresh = False
    sign_in(fake, config_text(fake, server[1]))  # `salvage auth work`, as another process would
    fake.add_event("Second", at(2), at(2, 1))
    result = source.fetch(WINDOW, first.cursor)  # the same long-lived source picks up the new tokens
    assert [e.title for e in result.events] == ["Second"]


# ---- several calendars ------------------------------------------------------------------------


def test_all_calendars_are_synced_concurrently_but_never_more_than_four_at_once(harness: Harness, fake: GraphFake) -> None:
    ids = [DEFAULT_CALENDAR] + [fake.add_calendar(f"Calendar {i}") for i in range(6)]
    for n, cal in enumerate(ids):
        for i in range(3):
            fake.add_event(f"c{n} e{i}", at(i + 1), at(i + 1, 1), calendar=cal)
    fake.hold = 0.05
    source = harness.source(calendars="all")
    first = source.fetch(WINDOW, None)
    assert len(first.events) == 21 and len({e.source_id for e in first.events}) == 21
    assert {e.calendar_id for e in first.events} == set(ids)
    assert 2 <= fake.max_active <= 4
    fake.reset_counts()
    idle = source.fetch(WINDOW, first.cursor)
    assert idle.unchanged and fake.count() == len(ids) == deltas(fake)
    assert fake.count("GET", "/me/calendars?") == 0
    assert fake.max_active <= 4


def test_a_named_calendar_uses_its_own_calendar_view(harness: Harness, fake: GraphFake) -> None:
    other = fake.add_calendar("Job hunt")
    fake.add_event("Interview", at(1), at(1, 1), calendar=other)
    fake.add_event("Not this one", at(1), at(1, 1))
    result = harness.source(calendars=[other]).fetch(WINDOW, None)
    assert [(e.title, e.source_id.split("/")[0]) for e in result.events] == [("Interview", other)]
    assert fake.count("GET", f"/me/calendars/{other}/calendarView/delta") == 1


def test_a_malformed_event_affects_only_itself(harness: Harness, fake: GraphFake) -> None:
    fake.add_event("Good", at(1), at(1, 1))
    fake.add_event("Broken", at(2), at(2, 1), start_json={"dateTime": "next tuesday", "timeZone": "UTC"})
    fake.add_event("Nowhere", at(3), at(3, 1), start_json={"dateTime": "2026-11-27T10:00:00", "timeZone": "Mars/Olympus"})
    result = harness.source().fetch(WINDOW, None)
    assert [e.title for e in result.events] == ["Good"]
    assert len(result.problems) == 2
    assert any("Broken" in p for p in result.problems) and any("Mars/Olympus" in p for p in result.problems)


def test_a_link_to_another_host_is_refused(harness: Harness, fake: GraphFake) -> None:
    source = harness.source()
    with pytest.raises(ProviderError, match="another host"):
        source.fetch(WINDOW, json.dumps({"v": 1, "base": source.client.base, "sel": json.dumps(["default"]),
                                         "start": WINDOW.start.isoformat(), "end": (WINDOW.end + timedelta(days=8)).isoformat(),
                                         "links": {"default": "https://evil.example/v1.0/me/calendarView/delta?$deltatoken=x"}}))
    assert fake.count() == 0


def test_missing_client_id_is_a_clear_error(tmp_path: Path) -> None:
    text = json.dumps({
        "user": {"name": "A", "email": "a@example.com", "timezone": "UTC"},
        "accounts": [{"name": "w", "calendar": {"type": "microsoft"}, "drafts": {"type": "microsoft"},
                      "microsoft": {"token_cache": str(tmp_path / "t.json")}}],
    })
    with pytest.raises(ConfigError, match="client_id is not set.*register"):
        parse_config(text)  # `salvage config validate` says so, not first the run


# ---- mapping Graph's event JSON ---------------------------------------------------------------


def graph_event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "AAMkAGI2=",
        "subject": "Technical interview",
        "bodyPreview": "Join us",
        "body": {"contentType": "html", "content": "<html><body><p>Join <a href=\"https://zoom.us/j/123\">here</a>"
                 "</p><p>Or call +1 415 555 0100</p></body></html>"},
        "start": {"dateTime": "2026-11-25T14:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-25T15:00:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "Pacific Standard Time",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": False,
        "showAs": "busy",
        "type": "singleInstance",
        "iCalUId": "040000008200E00074C5B7101A82E008000000",
        "responseStatus": {"response": "accepted", "time": "2026-11-20T10:00:00Z"},
        "organizer": {"emailAddress": {"name": "Rita", "address": "Rita@Acme.example"}},
        "attendees": [
            {"type": "required", "status": {"response": "accepted"}, "emailAddress": {"name": "Alex", "address": "alex@example.com"}},
            {"type": "optional", "status": {"response": "tentativelyAccepted"}, "emailAddress": {"name": "Sam", "address": "sam@acme.example"}},
            {"type": "resource", "status": {"response": "accepted"}, "emailAddress": {"name": "Room 1", "address": "room1@acme.example"}},
            {"type": "required", "status": {"response": "none"}, "emailAddress": {"name": "No address"}},
        ],
        "location": {"displayName": "Teams Meeting"},
        "locations": [{"displayName": "Teams Meeting"}, {"displayName": "HQ, 1 Main St"}],
        "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/abc", "tollNumber": "+1 206-555-0199",
                          "phones": [{"number": "+44 20 7946 0000", "type": "home"}]},
        "sensitivity": "private",
        "categories": ["Job search"],
        "createdDateTime": "2026-11-20T09:59:59.1234567Z",
        "lastModifiedDateTime": "2026-11-21T10:00:00.7654321Z",
        "webLink": "https://outlook.office365.com/owa/?itemid=AAMkAGI2%3D",
    }
    base.update(overrides)
    return base


SELF = frozenset({"alex@example.com"})


def test_event_fields_are_mapped() -> None:
    event = event_from_graph(graph_event(), account="work", calendar_key="default", self_addresses=SELF)
    assert event.source_id == "default/AAMkAGI2=" and event.calendar_id == "default"
    assert event.start == datetime(2026, 11, 25, 14, tzinfo=UTC) and event.end == datetime(2026, 11, 25, 15, tzinfo=UTC)
    assert event.timezone == "America/Los_Angeles"
    assert event.self_response is Response.ACCEPTED and event.show_as is ShowAs.BUSY
    assert event.organizer is not None and event.organizer.email == "rita@acme.example"
    assert not event.organizer.is_self
    by_mail = {p.email: p for p in event.attendees}
    assert set(by_mail) == {"alex@example.com", "sam@acme.example", "room1@acme.example"}
    assert by_mail["alex@example.com"].is_self and by_mail["sam@acme.example"].optional
    assert by_mail["sam@acme.example"].response is Response.TENTATIVE and by_mail["room1@acme.example"].is_resource
    assert event.join_urls[0] == "https://teams.microsoft.com/l/meetup-join/abc"
    assert "https://zoom.us/j/123" in event.join_urls
    assert event.phones[:2] == ("+1 206-555-0199", "+44 20 7946 0000") and "+1 415 555 0100" in event.phones
    assert event.location == "Teams Meeting; HQ, 1 Main St"
    assert "Join here (https://zoom.us/j/123)" in event.description
    assert event.is_private and event.categories == ("Job search",)
    assert event.created == datetime(2026, 11, 20, 9, 59, 59, 123456, tzinfo=UTC)
    assert event.updated is not None and event.updated.microsecond == 765432
    assert event.ical_uid == "040000008200E00074C5B7101A82E008000000" and event.recurrence_id is None
    assert event.web_link and not event.cancelled and event.event_type is EventType.DEFAULT


@pytest.mark.parametrize(
    ("response", "is_organizer", "expected"),
    [("none", False, Response.NEEDS_ACTION), ("notResponded", False, Response.NEEDS_ACTION),
     ("TentativelyAccepted", False, Response.TENTATIVE), ("declined", False, Response.DECLINED),
     ("organizer", False, Response.ORGANIZER), ("none", True, Response.ORGANIZER)],
)
def test_response_status(response: str, is_organizer: bool, expected: Response) -> None:
    item = graph_event(responseStatus={"response": response}, isOrganizer=is_organizer)
    assert event_from_graph(item, account="w", calendar_key="c").self_response is expected


@pytest.mark.parametrize(
    ("show_as", "expected", "kind"),
    [("free", ShowAs.FREE, EventType.DEFAULT), ("tentative", ShowAs.TENTATIVE, EventType.DEFAULT),
     ("oof", ShowAs.OUT_OF_OFFICE, EventType.OUT_OF_OFFICE),
     ("workingElsewhere", ShowAs.WORKING_ELSEWHERE, EventType.DEFAULT), ("unknown", ShowAs.BUSY, EventType.DEFAULT)],
)
def test_show_as(show_as: str, expected: ShowAs, kind: EventType) -> None:
    event = event_from_graph(graph_event(showAs=show_as), account="w", calendar_key="c")
    assert (event.show_as, event.event_type) == (expected, kind)


def test_occurrences_keep_their_key_when_moved_and_singles_use_the_ical_uid() -> None:
    def occurrence(start: str, uid: str) -> dict[str, Any]:
        return graph_event(id=f"occ-{start}", type="exception", seriesMasterId="MASTER=", iCalUId=uid,
                           originalStart="2026-12-01T14:00:00Z",
                           start={"dateTime": start, "timeZone": "UTC"}, end={"dateTime": start, "timeZone": "UTC"})

    before = event_from_graph(occurrence("2026-12-01T14:00:00.0000000", "uid-a"), account="w", calendar_key="c")
    after = event_from_graph(occurrence("2026-12-02T09:00:00.0000000", "uid-b"), account="w", calendar_key="c")
    assert before.occurrence_key == after.occurrence_key == "MASTER=@20261201T140000Z"
    assert before.series_id == "MASTER=" and before.ical_uid is None
    single = event_from_graph(graph_event(), account="w", calendar_key="c")
    assert single.occurrence_key == "040000008200E00074C5B7101A82E008000000"


def test_all_day_dates_are_taken_as_given_in_any_reported_zone() -> None:
    item = graph_event(isAllDay=True, start={"dateTime": "2026-12-24T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
                       end={"dateTime": "2026-12-26T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
                       originalStartTimeZone="tzone://Microsoft/Custom", showAs="oof")
    event = event_from_graph(item, account="w", calendar_key="c")
    assert (event.start, event.end, event.timezone) == (date(2026, 12, 24), date(2026, 12, 26), None)
    assert event.event_type is EventType.OUT_OF_OFFICE and event.blocks_time


@pytest.mark.parametrize(
    ("zone_text", "expected_utc_hour"),
    [("Pacific Standard Time", 22), ("W. Europe Standard Time", 13), ("India Standard Time", 8),
     ("Europe/London", 14), ("UTC", 14)],
)
def test_timed_events_in_windows_and_iana_zones(zone_text: str, expected_utc_hour: int) -> None:
    item = graph_event(start={"dateTime": "2026-11-25T14:00:00.0000000", "timeZone": zone_text},
                       end={"dateTime": "2026-11-25T15:30:00.0000000", "timeZone": zone_text})
    event = event_from_graph(item, account="w", calendar_key="c")
    assert isinstance(event.start, datetime) and event.start.astimezone(UTC).hour == expected_utc_hour
    assert (event.end - event.start) == timedelta(minutes=90)  # type: ignore[operator]


@pytest.mark.parametrize(
    "broken",
    [{"start": None}, {"start": {"timeZone": "UTC"}}, {"id": ""},
     {"end": {"dateTime": "2026-11-25T15:00:00", "timeZone": "Nowhere Standard Time"}}],
)
def test_unreadable_events_raise_value_error(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        event_from_graph(graph_event(**broken), account="w", calendar_key="c")


def test_original_zone_names() -> None:
    names: dict[str, str | None] = {
        "Pacific Standard Time": "America/Los_Angeles",
        "tzone://Microsoft/Custom": None,
        "India Standard Time": "Asia/Calcutta",
        "Europe/Berlin": "Europe/Berlin",
        "Customized Time Zone": None,
    }
    for name, expected in names.items():
        event = event_from_graph(graph_event(originalStartTimeZone=name), account="w", calendar_key="c")
        assert event.timezone == expected
        if expected:
            ZoneInfo(expected)



def test_empty_pages_sparse_and_unknown_fields_are_tolerated(harness: Harness, fake: GraphFake) -> None:
    """An empty page with only a nextLink, a minimal event, unknown fields, @removed in a first round."""
    fake.add_event("Interview", at(1), at(1, 1), organizer=RECRUITER)
    start, end = round_range(WINDOW)
    initial = (f"{fake.url}/v1.0/me/calendarView/delta?startDateTime={start:%Y-%m-%dT%H:%M:%SZ}"
               f"&endDateTime={end:%Y-%m-%dT%H:%M:%SZ}")
    bare = {"id": "AAMkbare=", "start": {"dateTime": "2026-11-26T10:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-26T11:00:00.0000000"}, "futureField": {"nested": [1, 2]}}
    fake.add_fault("startDateTime=", 200, body={"value": [], "@odata.nextLink": initial + "&page=2"})
    fake.add_fault("&page=2", 200, body={"@odata.context": "x", "value": [bare, {"id": "gone", "@removed": {}}],
                                         "@odata.nextLink": initial + "&page=3"})
    source = harness.source()
    first = source.fetch(WINDOW, None)
    assert first.complete and not first.problems and not first.removed
    events = {e.title: e for e in first.events}
    assert set(events) == {"Interview", ""}
    minimal = events[""]
    assert minimal.start == datetime(2026, 11, 26, 10, tzinfo=UTC) and minimal.end == datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert minimal.organizer is None and minimal.attendees == () and minimal.show_as is ShowAs.BUSY
    assert deltas(fake) == 3
    again = source.fetch(WINDOW, first.cursor)
    assert again.unchanged


def test_any_token_source_will_do_and_a_refused_fixed_token_asks_for_salvage_auth(harness: Harness,
                                                                                  fake: GraphFake) -> None:
    """The Graph client takes its tokens from the one TokenSource protocol; FixedToken stands in for msal."""
    config = harness.config()
    ctx = open_context(config)
    value = "fixed-" + "x" * 20
    fake.access_tokens[value] = time.time() + 3600  # the fake's identity service handed it out
    tokens = FixedToken(value)
    client = GraphClient(config.accounts[0].connection("microsoft"), ctx, tokens=tokens)  # type: ignore[arg-type]
    harness.clients.append(client)
    fake.add_event("Technical interview", at(2), at(2, 1))
    source = GraphCalendar(config.accounts[0].calendar, client, ctx)  # type: ignore[arg-type]
    assert [e.title for e in source.fetch(WINDOW, None).events] == ["Technical interview"]
    fake.expire_access_tokens()
    with pytest.raises(AuthError, match="fixed access token was refused"):
        source.fetch(WINDOW, None)
    assert tokens.refused == 1  # one 401, one request for a fresh token, no retry loop
