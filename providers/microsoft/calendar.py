"""Microsoft Graph calendars as a calendar source: calendarView rounds, then delta links per calendar."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import quote, urlencode

from daemon.core.model import Event, EventType, Person, Response, ShowAs, person
from daemon.core.normalize import (
    find_join_urls,
    find_phones,
    html_to_text,
    parse_date,
    parse_instant,
    zone,
    zone_name,
)
from providers.base import (
    Capabilities,
    FetchResult,
    ProviderContext,
    ProviderError,
    TransientError,
    Window,
    decode_cursor,
)
from providers.microsoft.client import (
    MAX_CONCURRENT,
    MAX_PAGES,
    GraphClient,
    GraphError,
    client,
    mapping_of,
    text_of,
    values_of,
)
from providers.microsoft.settings import MicrosoftCalendarSettings

log = logging.getLogger(f"salvage.{__name__}")

PAGE_SIZE = 100
_DELTA_RESET_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "syncstateinvalid", "errorinvalidsyncstatedata"}
)
CURSOR_VERSION = 1


_SHOW_AS = {
    "free": ShowAs.FREE,
    "tentative": ShowAs.TENTATIVE,
    "busy": ShowAs.BUSY,
    "oof": ShowAs.OUT_OF_OFFICE,
    "workingelsewhere": ShowAs.WORKING_ELSEWHERE,
    "unknown": ShowAs.BUSY,
}
_RESPONSE = {
    "none": Response.NEEDS_ACTION,
    "notresponded": Response.NEEDS_ACTION,
    "organizer": Response.ORGANIZER,
    "accepted": Response.ACCEPTED,
    "tentativelyaccepted": Response.TENTATIVE,
    "tentative": Response.TENTATIVE,
    "declined": Response.DECLINED,
}


def _response(value: Any) -> Response:
    status = value.get("response") if isinstance(value, dict) else None
    return _RESPONSE.get(text_of(status).lower(), Response.NEEDS_ACTION)


def _when(value: Any, all_day: bool, what: str) -> datetime | date:
    if not isinstance(value, dict) or not text_of(value.get("dateTime")):
        raise ValueError(f"{what} has no dateTime")
    text = value["dateTime"]
    if all_day:
        return parse_date(text)  # all-day dates are floating: take them as given
    name = text_of(value.get("timeZone")) or "UTC"
    tz = zone(name)
    if tz is None:
        raise ValueError(f"{what} is in an unknown time zone {name!r}")
    return parse_instant(text, tz).astimezone(timezone.utc)


def _people(item: dict[str, Any], self_addresses: frozenset[str]) -> tuple[Person | None, tuple[Person, ...]]:
    organizer: Person | None = None
    org = item.get("organizer")
    address = org.get("emailAddress") if isinstance(org, dict) else None
    if isinstance(address, dict) and "@" in text_of(address.get("address")):
        email = text_of(address.get("address"))
        organizer = person(email, text_of(address.get("name")), Response.ORGANIZER,
                           is_self=bool(item.get("isOrganizer")) or email.lower() in self_addresses)
    attendees: list[Person] = []
    for entry in item.get("attendees") or ():
        if not isinstance(entry, dict):
            continue
        address = entry.get("emailAddress")
        if not isinstance(address, dict) or "@" not in text_of(address.get("address")):
            continue
        email = text_of(address.get("address"))
        kind = text_of(entry.get("type")).lower()
        attendees.append(person(email, text_of(address.get("name")), _response(entry.get("status")),
                                is_self=email.lower() in self_addresses, is_resource=kind == "resource",
                                optional=kind == "optional"))
    return organizer, tuple(attendees)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        value = value.strip()
        if value and value not in out:
            out.append(value)
    return tuple(out)


def event_from_graph(
    item: dict[str, Any],
    *,
    account: str,
    calendar_key: str,
    self_addresses: frozenset[str] = frozenset(),
) -> Event:
    """Normalise one Graph ``event`` resource. Raises ValueError when it cannot be read."""
    event_id = text_of(item.get("id"))
    if not event_id:
        raise ValueError("event has no id")
    all_day = bool(item.get("isAllDay"))
    start = _when(item.get("start"), all_day, "start")
    end = _when(item.get("end"), all_day, "end")
    if end < start:  # type: ignore[operator]
        end = start
    body = mapping_of(item.get("body"))
    content = text_of(body.get("content"))
    description = html_to_text(content) if text_of(body.get("contentType")).lower() == "html" else content
    if not description.strip():
        description = text_of(item.get("bodyPreview"))
    location_names = []
    if isinstance(item.get("location"), dict):
        location_names.append(text_of(item["location"].get("displayName")))
    for loc in item.get("locations") or ():
        if isinstance(loc, dict):
            location_names.append(text_of(loc.get("displayName")))
    location = "; ".join(_unique(location_names))
    meeting = mapping_of(item.get("onlineMeeting"))
    join_urls = _unique([text_of(meeting.get("joinUrl")), text_of(item.get("onlineMeetingUrl")),
                         *find_join_urls(location, description)])
    phone_texts = [text_of(meeting.get("tollNumber")), *(text_of(n) for n in meeting.get("tollFreeNumbers") or ())]
    phone_texts += [text_of(p.get("number")) for p in meeting.get("phones") or () if isinstance(p, dict)]
    phones = _unique([*phone_texts, *find_phones(location, description)])
    show_as = _SHOW_AS.get(text_of(item.get("showAs")).lower(), ShowAs.BUSY)
    organizer, attendees = _people(item, self_addresses)
    if item.get("isOrganizer"):
        self_response = Response.ORGANIZER
    else:
        self_response = _response(item.get("responseStatus"))
    kind = text_of(item.get("type")).lower()
    series_id = text_of(item.get("seriesMasterId")) or None
    recurrence_id: datetime | date | None = None
    ical_uid: str | None = text_of(item.get("iCalUId")) or None
    if kind in ("occurrence", "exception") and series_id:
        original = text_of(item.get("originalStart"))
        moment = parse_instant(original) if original else None
        if all_day:
            if moment is not None:
                local = zone(text_of(item.get("originalStartTimeZone"))) or timezone.utc
                recurrence_id = moment.astimezone(local).date()
            else:
                recurrence_id = start
        else:
            recurrence_id = moment.astimezone(timezone.utc) if moment is not None else start
        ical_uid = None  # Graph's iCalUId differs per occurrence: key occurrences by master + original start
    created = text_of(item.get("createdDateTime"))
    updated = text_of(item.get("lastModifiedDateTime"))
    return Event(
        account=account,
        source_id=f"{calendar_key}/{event_id}",
        title=text_of(item.get("subject")),
        start=start,
        end=end,
        calendar_id=calendar_key,
        timezone=zone_name(text_of(item.get("originalStartTimeZone")) or None),
        description=description,
        location=location,
        organizer=organizer,
        attendees=attendees,
        self_response=self_response,
        show_as=show_as,
        cancelled=bool(item.get("isCancelled")),
        event_type=EventType.OUT_OF_OFFICE if show_as is ShowAs.OUT_OF_OFFICE else EventType.DEFAULT,
        join_urls=join_urls,
        phones=phones,
        ical_uid=ical_uid,
        series_id=series_id,
        recurrence_id=recurrence_id,
        created=parse_instant(created) if created else None,
        updated=parse_instant(updated) if updated else None,
        categories=tuple(c for c in item.get("categories") or () if isinstance(c, str)),
        is_private=text_of(item.get("sensitivity")).lower() in ("private", "confidential"),
        web_link=text_of(item.get("webLink")) or None,
        thread_hints=(("graph_event_id", event_id),),
    )


# ---- the calendar source ----------------------------------------------------------------------


class _Reset(Exception):
    """The service rejected a delta token: start a new round."""


@dataclass
class _Round:
    events: list[Event] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    link: str = ""


def round_range(window: Window) -> tuple[datetime, datetime]:
    """The range a delta round covers: the window, whole UTC days, plus slack ahead.

    The slack lets the window roll forward for a while on the same delta link; a new round
    starts when the window's end passes the round's end.
    """
    start = window.start.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    slack = min(timedelta(days=7), max(timedelta(days=1), (window.end - window.start) / 4))
    end = (window.end + slack).astimezone(timezone.utc)
    end = end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return start, end


def _graph_instant(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphCalendar:
    """Graph calendars as a :class:`CalendarSource`: calendarView/delta rounds per calendar."""

    capabilities = Capabilities(incremental=True)

    def __init__(self, settings: MicrosoftCalendarSettings, client: GraphClient, ctx: ProviderContext) -> None:
        self.account = ctx.account
        self.client = client
        self.user_zone: tzinfo = ctx.zone
        self.self_addresses = ctx.addresses
        calendars = settings.calendars
        self.selection: list[str] | str = calendars if isinstance(calendars, str) else list(calendars) or ["default"]

    def close(self) -> None:
        """Nothing of its own to close: the client belongs to the account's context."""

    # -- public -----------------------------------------------------------------------------------

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        """A full round (complete) or the changes since ``cursor`` (delta)."""
        state = self._parse_cursor(cursor)
        if state is not None and self._can_continue(state, window):
            try:
                return self._delta(state, window)
            except _Reset as exc:
                log.info("%s: %s; starting a new sync round", self.account, exc)
        return self._full(window)

    # -- cursor -----------------------------------------------------------------------------------

    def _signature(self) -> str:
        return json.dumps(self.selection)

    def _parse_cursor(self, cursor: str | None) -> dict[str, Any] | None:
        state = decode_cursor(cursor)
        if state is None or state.get("v") != CURSOR_VERSION:
            return None
        if state.get("base") != self.client.base or state.get("sel") != self._signature():
            return None
        links = state.get("links")
        if not isinstance(links, dict) or not links or not all(isinstance(v, str) and v for v in links.values()):
            return None
        return state

    @staticmethod
    def _can_continue(state: dict[str, Any], window: Window) -> bool:
        try:
            start = datetime.fromisoformat(state["start"])
            end = datetime.fromisoformat(state["end"])
        except (KeyError, TypeError, ValueError):
            return False
        if start.utcoffset() is None or end.utcoffset() is None:
            return False
        return start <= window.start and window.end <= end

    def _cursor(self, start: datetime, end: datetime, links: dict[str, str]) -> str:
        return json.dumps({"v": CURSOR_VERSION, "base": self.client.base, "sel": self._signature(),
                           "start": start.isoformat(), "end": end.isoformat(), "links": links},
                          separators=(",", ":"))

    # -- rounds -----------------------------------------------------------------------------------

    def _calendar_urls(self) -> dict[str, str]:
        if self.selection == "all":
            keys = [str(c["id"]) for c in self.client.pages(self.client.url("/me/calendars"),
                                                            {"$select": "id,name,isDefaultCalendar", "$top": "100"})
                    if c.get("id")]
            if not keys:
                raise ProviderError("Microsoft Graph lists no calendars for this account")
        else:
            keys = list(self.selection)
        urls = {}
        for key in keys:
            if key == "default":
                urls[key] = self.client.url("/me/calendarView/delta")
            else:
                urls[key] = self.client.url(f"/me/calendars/{quote(key, safe='')}/calendarView/delta")
        return urls

    def _full(self, window: Window) -> FetchResult:
        start, end = round_range(window)
        urls = self._calendar_urls()
        query = urlencode({"startDateTime": _graph_instant(start), "endDateTime": _graph_instant(end)})
        rounds = self._each({key: f"{url}?{query}" for key, url in urls.items()}, window, full=True)
        events = [e for r in rounds.values() for e in r.events]
        problems = [p for r in rounds.values() for p in r.problems]
        links = {key: r.link for key, r in rounds.items()}
        return FetchResult(events=tuple(events), complete=True, cursor=self._cursor(start, end, links),
                           problems=tuple(problems))

    def _delta(self, state: dict[str, Any], window: Window) -> FetchResult:
        links: dict[str, str] = state["links"]
        rounds = self._each(links, window, full=False)
        events = tuple(e for r in rounds.values() for e in r.events)
        removed = tuple(dict.fromkeys(x for r in rounds.values() for x in r.removed))
        problems = tuple(p for r in rounds.values() for p in r.problems)
        cursor = self._cursor(datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"]),
                              {key: r.link for key, r in rounds.items()})
        return FetchResult(events=events, removed=removed, complete=False, cursor=cursor, problems=problems,
                           unchanged=not events and not removed and not problems)

    def _each(self, urls: dict[str, str], window: Window, *, full: bool) -> dict[str, _Round]:
        if len(urls) == 1:
            key, url = next(iter(urls.items()))
            return {key: self._round(key, url, window, full=full)}
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT, len(urls))) as pool:
            futures = {key: pool.submit(self._round, key, url, window, full=full) for key, url in urls.items()}
            return {key: future.result() for key, future in futures.items()}

    def _round(self, key: str, url: str, window: Window, *, full: bool) -> _Round:
        """Follow one calendar's pages to its deltaLink, normalising what arrives."""
        result = _Round()
        prefer = (f"odata.maxpagesize={PAGE_SIZE}",)
        for _ in range(MAX_PAGES):
            try:
                page = self.client.get(url, prefer=prefer)
            except GraphError as exc:
                if exc.status == 410 or exc.code.lower() in _DELTA_RESET_CODES:
                    if full:
                        raise TransientError(f"Microsoft Graph reset the sync of calendar {key!r} mid-round") from None
                    raise _Reset(f"calendar {key!r}: delta token rejected ({exc.code or exc.status})") from None
                raise
            for item in values_of(page):
                self._take(item, key, window, result, full=full)
            next_link = page.get("@odata.nextLink")
            delta_link = page.get("@odata.deltaLink")
            if isinstance(delta_link, str) and delta_link:
                result.link = delta_link
                return result
            if not isinstance(next_link, str) or not next_link:
                raise ProviderError(f"Microsoft Graph: calendar {key!r}: a delta page had neither nextLink nor deltaLink")
            url = next_link
        raise ProviderError(f"Microsoft Graph: calendar {key!r}: more than {MAX_PAGES} delta pages")

    def _take(self, item: dict[str, Any], key: str, window: Window, result: _Round, *, full: bool) -> None:
        event_id = text_of(item.get("id"))
        if "@removed" in item:
            if event_id and not full:
                result.removed.append(f"{key}/{event_id}")
            return
        if text_of(item.get("type")).lower() == "seriesmaster":
            return  # calendarView yields occurrences; a master carries no time of its own
        try:
            event = event_from_graph(item, account=self.account, calendar_key=key,
                                     self_addresses=self.self_addresses)
        except (ValueError, TypeError, KeyError) as exc:
            subject = text_of(item.get("subject"))[:60]
            result.problems.append(f"calendar {key!r}: skipped event {event_id or '?'} {subject!r}: {exc}")
            return
        start, end = event.span(self.user_zone)
        if end > window.start and start < window.end:
            result.events.append(event)
        elif not full:
            result.removed.append(event.source_id)  # it moved out of the window


# ---- registry factory -------------------------------------------------------------------------


def open_calendar(settings: MicrosoftCalendarSettings, ctx: ProviderContext) -> GraphCalendar:
    """The Graph calendar source of an account (registered as ``microsoft``)."""
    return GraphCalendar(settings, client(ctx), ctx)
