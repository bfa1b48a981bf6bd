"""Google Calendar API v3 as a calendar source: a full sync, then sync tokens per calendar."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import partial
from typing import Any

from daemon.core.model import Event, EventType, Person, Response, ShowAs, person, utc_now
from daemon.core.normalize import (
    find_join_urls,
    find_phones,
    html_to_text,
    parse_date,
    parse_instant,
    zone,
    zone_name,
)
from providers.base import Capabilities, FetchResult, ProviderContext, ProviderError, Window
from providers.google.client import Gone, GoogleSession, NotFound, session
from providers.google.settings import GoogleCalendarSettings

log = logging.getLogger(f"salvage.{__name__}")

SYNC_MARGIN = timedelta(days=7)  # sync a week past the window so it can roll forward incrementally
PAGE_SIZE = 2500  # the events.list maximum
LIST_TTL_SECONDS = 12 * 3600  # how long a calendarList read for `calendars: all` is trusted


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _CalendarState:
    token: str | None
    min: datetime
    max: datetime
    masters: set[str] = field(default_factory=set)


@dataclass
class _Cursor:
    calendars: dict[str, _CalendarState] = field(default_factory=dict)
    listed: list[str] | None = None  # ids from calendarList (calendars: all)
    listed_at: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("v") != 1:
                return cls()
            calendars = {
                cid: _CalendarState(
                    token=c.get("token"),
                    min=datetime.fromisoformat(c["min"]),
                    max=datetime.fromisoformat(c["max"]),
                    masters=set(c.get("masters") or ()),
                )
                for cid, c in data.get("calendars", {}).items()
            }
            listed = data.get("listed")
            return cls(calendars, list(listed) if listed is not None else None, float(data.get("listed_at", 0)))
        except (ValueError, TypeError, KeyError, AttributeError):
            log.info("unreadable Google calendar cursor; doing a full sync")
            return cls()

    def dump(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "calendars": {
                    cid: {"token": c.token, "min": c.min.isoformat(), "max": c.max.isoformat(),
                          "masters": sorted(c.masters)}
                    for cid, c in self.calendars.items()
                },
                "listed": self.listed,
                "listed_at": self.listed_at,
            },
            separators=(",", ":"),
        )


class _NeedFullSync(Exception):
    """A delta cannot be applied on its own (a recurring series vanished, or a 410)."""


class GoogleCalendarSource:
    """Events of the configured Google calendars: a full sync first, then sync-token deltas."""

    capabilities = Capabilities(incremental=True)

    def __init__(
        self,
        settings: GoogleCalendarSettings,
        session: GoogleSession,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.account = session.account
        wanted = settings.calendars
        self.wanted: list[str] | str = wanted if wanted == "all" else list(dict.fromkeys(wanted))
        self.session = session
        self._clock = clock

    def close(self) -> None:
        """Nothing of its own to close: the session belongs to the account's context."""

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        """A full sync of the window (plus a margin), or the changes since ``cursor``."""
        state = _Cursor.parse(cursor)
        ids = self._calendar_ids(state)
        can_delta = bool(state.calendars) and set(ids) == set(state.calendars) and all(
            c.token and c.min <= window.start and window.end <= c.max for c in state.calendars.values()
        )
        if can_delta:
            try:
                return self._delta(ids, window, state)
            except _NeedFullSync as why:
                log.info("%s: %s; doing a full sync", self.account, why)
        return self._full(ids, window, state)

    # -- calendars to read

    def _calendar_ids(self, state: _Cursor) -> list[str]:
        if self.wanted != "all":
            return list(self.wanted)
        now = self._clock().timestamp()
        if state.listed is not None and now - state.listed_at < LIST_TTL_SECONDS:
            return state.listed
        svc = self.session.service("calendar")
        ids: list[str] = []
        primary: list[str] = []
        page: str | None = None
        while True:
            resp = self.session.call(
                partial(svc.calendarList().list, maxResults=250, pageToken=page), "calendarList.list"
            )
            for entry in resp.get("items") or ():
                if not isinstance(entry, dict) or not entry.get("id"):
                    continue
                if entry.get("deleted") or entry.get("hidden") or entry.get("accessRole") == "freeBusyReader":
                    continue  # free/busy-only calendars have no details and would look like clashes
                (primary if entry.get("primary") else ids).append(str(entry["id"]))
            page = resp.get("nextPageToken")
            if not page:
                break
        state.listed, state.listed_at = primary + ids, now
        return state.listed

    # -- paging

    def _pages(self, calendar_id: str, what: str, **params: Any) -> Iterator[dict[str, Any]]:
        svc = self.session.service("calendar")
        page: str | None = None
        while True:
            try:
                resp = self.session.call(
                    partial(svc.events().list, calendarId=calendar_id, pageToken=page, **params), what
                )
            except NotFound:
                raise ProviderError(
                    f"Google calendar {calendar_id!r} was not found or is not shared with account "
                    f"{self.account!r}; check accounts[{self.account}].calendar.calendars"
                ) from None
            yield resp
            next_page = resp.get("nextPageToken")
            if not next_page:
                return
            if next_page == page:
                raise ProviderError(f"{what}: Google repeated page token; giving up this poll")
            page = next_page

    def _full(self, ids: list[str], window: Window, old: _Cursor) -> FetchResult:
        lo, hi = window.start, window.end + SYNC_MARGIN
        events: list[Event] = []
        problems: list[str] = []
        cursor = _Cursor(listed=old.listed, listed_at=old.listed_at)
        for cid in ids:
            token: str | None = None
            masters: set[str] = set()
            for resp in self._pages(cid, f"events.list {cid}", timeMin=_rfc3339(lo), timeMax=_rfc3339(hi),
                                    singleEvents=True, maxResults=PAGE_SIZE):
                cal_tz = zone(resp.get("timeZone"), timezone.utc) or timezone.utc
                for item in resp.get("items") or ():
                    if not isinstance(item, dict) or item.get("status") == "cancelled":
                        continue
                    if item.get("recurringEventId"):
                        masters.add(str(item["recurringEventId"]))
                    event = self._map(item, cid, cal_tz, problems)
                    if event is not None and _overlaps(event, lo, hi, cal_tz):
                        events.append(event)
                token = resp.get("nextSyncToken") or token
            cursor.calendars[cid] = _CalendarState(token, lo, hi, masters)
        return FetchResult(events=tuple(events), complete=True, cursor=cursor.dump(), problems=tuple(problems))

    def _delta(self, ids: list[str], window: Window, state: _Cursor) -> FetchResult:
        events: list[Event] = []
        removed: list[str] = []
        problems: list[str] = []
        seen = 0
        for cid in ids:
            cal = state.calendars[cid]
            token = cal.token
            try:
                # Only the parameters allowed alongside syncToken, identical to the full sync's.
                for resp in self._pages(cid, f"events.list {cid} (sync)", syncToken=cal.token,
                                        singleEvents=True, maxResults=PAGE_SIZE):
                    cal_tz = zone(resp.get("timeZone"), timezone.utc) or timezone.utc
                    for item in resp.get("items") or ():
                        if not isinstance(item, dict) or not item.get("id"):
                            continue
                        seen += 1
                        sid = f"{cid}/{item['id']}"
                        if item.get("status") == "cancelled":
                            if item["id"] in cal.masters:
                                raise _NeedFullSync(f"recurring series {item['id']} on {cid} was deleted")
                            removed.append(sid)
                            continue
                        if item.get("recurringEventId"):
                            cal.masters.add(str(item["recurringEventId"]))
                        event = self._map(item, cid, cal_tz, problems)
                        if event is not None and _overlaps(event, cal.min, cal.max, cal_tz):
                            events.append(event)
                        else:  # moved out of the synced range (or unreadable now): forget it
                            removed.append(sid)
                    token = resp.get("nextSyncToken") or token
            except Gone:
                raise _NeedFullSync(f"Google expired the sync token of calendar {cid}") from None
            cal.token = token
        if not seen:
            return FetchResult(complete=False, unchanged=True, cursor=state.dump())
        return FetchResult(events=tuple(events), removed=tuple(removed), complete=False, cursor=state.dump(),
                           problems=tuple(problems))

    def _map(self, item: dict[str, Any], calendar_id: str, cal_tz: tzinfo, problems: list[str]) -> Event | None:
        try:
            return event_from_google(item, account=self.account, calendar_id=calendar_id, calendar_tz=cal_tz)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            ident = item.get("id", "?") if isinstance(item, dict) else "?"
            problems.append(f"event {ident} on Google calendar {calendar_id} skipped: {exc}")
            return None


def _overlaps(event: Event, lo: datetime, hi: datetime, tz: tzinfo) -> bool:
    start, end = event.span(tz)
    return end > lo and start < hi


# ---- event mapping ------------------------------------------------------------------------------

_RESPONSES = {
    "needsAction": Response.NEEDS_ACTION,
    "accepted": Response.ACCEPTED,
    "tentative": Response.TENTATIVE,
    "declined": Response.DECLINED,
}
_TYPES = {
    "outOfOffice": EventType.OUT_OF_OFFICE,
    "focusTime": EventType.FOCUS_TIME,
    "workingLocation": EventType.WORKING_LOCATION,
    "birthday": EventType.BIRTHDAY,
}


def _when(value: Any, what: str, event_tz: tzinfo | None, calendar_tz: tzinfo) -> datetime | date:
    """An EventDateTime: ``dateTime`` (offset, or local time in its ``timeZone``) or an all-day ``date``."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} is missing")
    if value.get("dateTime"):
        tz = zone(value.get("timeZone")) or event_tz
        instant = parse_instant(str(value["dateTime"]), tz or calendar_tz)
        return instant.astimezone(tz) if tz is not None else instant
    if value.get("date"):
        return parse_date(str(value["date"]))
    raise ValueError(f"{what} has neither dateTime nor date")


def _stamp(value: Any) -> datetime | None:
    """A read-only timestamp (``created``/``updated``); None when absent or odd (e.g. year 0000)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def event_from_google(
    item: dict[str, Any], *, account: str, calendar_id: str, calendar_tz: tzinfo = timezone.utc
) -> Event:
    """Normalise one Calendar API ``Event`` resource (raises ValueError when it is unusable)."""
    event_id = item.get("id")
    if not event_id:
        raise ValueError("no id")
    start_info, end_info = item.get("start"), item.get("end")
    own_zone = zone_name((start_info or {}).get("timeZone") or (end_info or {}).get("timeZone"))
    event_tz = zone(own_zone) if own_zone else None
    start = _when(start_info, "start", event_tz, calendar_tz)
    end = _when(end_info, "end", event_tz, calendar_tz)
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise ValueError("start and end mix a date and a dateTime")
    if end < start:  # type: ignore[operator]
        raise ValueError("end is before start")

    organizer = None
    org = item.get("organizer")
    if isinstance(org, dict) and org.get("email"):
        organizer = person(str(org["email"]), org.get("displayName"), Response.ORGANIZER,
                           is_self=bool(org.get("self")))
    attendees: list[Person] = []
    self_status: Response | None = None
    for a in item.get("attendees") or ():
        if not isinstance(a, dict) or not a.get("email"):
            continue
        response = _RESPONSES.get(str(a.get("responseStatus")), Response.NEEDS_ACTION)
        attendees.append(person(str(a["email"]), a.get("displayName"), response, is_self=bool(a.get("self")),
                                is_resource=bool(a.get("resource")), optional=bool(a.get("optional"))))
        if a.get("self"):
            self_status = response
    if organizer is not None and organizer.is_self:
        self_response = Response.ORGANIZER
    elif self_status is not None:
        self_response = self_status
    else:
        self_response = Response.ACCEPTED  # the user's own entry, or a calendar without guests

    event_type = _TYPES.get(str(item.get("eventType")), EventType.DEFAULT)
    if event_type is EventType.OUT_OF_OFFICE:
        show_as = ShowAs.OUT_OF_OFFICE
    elif item.get("transparency") == "transparent":
        show_as = ShowAs.FREE
    elif self_response is Response.TENTATIVE or item.get("status") == "tentative":
        show_as = ShowAs.TENTATIVE
    else:
        show_as = ShowAs.BUSY

    description = html_to_text(_text(item.get("description")))
    location = _text(item.get("location"))
    join: list[str] = []
    phones: list[str] = []
    if isinstance(item.get("hangoutLink"), str):
        join.append(item["hangoutLink"])
    conference = item.get("conferenceData")
    for entry in (conference.get("entryPoints") or ()) if isinstance(conference, dict) else ():
        if not isinstance(entry, dict):
            continue
        uri = _text(entry.get("uri"))
        kind = entry.get("entryPointType")
        if kind == "video" and uri:
            join.append(uri)
        elif kind == "phone":
            number = _text(entry.get("label")) or re.sub(r"(?i)^tel:", "", uri)
            if number:
                phones.append(number)
    join.extend(find_join_urls(location, description))
    phones.extend(find_phones(location, description))

    recurrence_id: datetime | date | None = None
    if item.get("originalStartTime"):
        recurrence_id = _when(item["originalStartTime"], "originalStartTime", event_tz, calendar_tz)
    created = _stamp(item.get("created"))
    updated = _stamp(item.get("updated"))

    return Event(
        account=account,
        source_id=f"{calendar_id}/{event_id}",
        title=_text(item.get("summary")) or "(no title)",
        start=start,
        end=end,
        calendar_id=calendar_id,
        timezone=own_zone,
        description=description,
        location=location,
        organizer=organizer,
        attendees=tuple(attendees),
        self_response=self_response,
        show_as=show_as,
        cancelled=item.get("status") == "cancelled",
        event_type=event_type,
        join_urls=tuple(dict.fromkeys(join)),
        phones=tuple(dict.fromkeys(phones)),
        ical_uid=item.get("iCalUID") or None,
        series_id=item.get("recurringEventId") or None,
        recurrence_id=recurrence_id,
        created=created,
        updated=updated,
        is_private=item.get("visibility") in ("private", "confidential"),
        web_link=item.get("htmlLink") or None,
    )


# ---- registry factory ---------------------------------------------------------------------------


def open_calendar(settings: GoogleCalendarSettings, ctx: ProviderContext) -> GoogleCalendarSource:
    """The Google calendar source of an account (``calendar: {type: google}``)."""
    return GoogleCalendarSource(settings, session(ctx), clock=ctx.clock)
