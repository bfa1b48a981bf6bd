"""Microsoft Graph provider: calendars through calendarView/delta, drafts through Outlook messages.

One :class:`GraphClient` (one ``httpx.Client``) per account is shared by the calendar source and the
draft store. Every request carries ``Prefer: outlook.timezone="UTC"`` and ``IdType="ImmutableId"``;
at most four requests run at once (Outlook's per-mailbox limit). Salvage never calls ``/send``.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import httpx

from daemon import __version__
from daemon.config import AccountConfig, Config, MicrosoftConnection
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
    Address,
    AuthError,
    DraftFate,
    DraftMessage,
    DraftRef,
    FetchResult,
    ProviderError,
    ThreadInfo,
    TransientError,
    Window,
    decode_cursor,
)
from providers.microsoft.auth import TokenSource, connection
from providers.mime import KEY_HEADER, clean_header, fingerprint
from providers.retry import RetryPolicy, call_with_retry, parse_retry_after

log = logging.getLogger("salvage.microsoft")

MAX_CONCURRENT = 4  # Outlook allows four concurrent requests per app and mailbox
PAGE_SIZE = 100
MAX_PAGES = 5000
BASE_PREFER = ('outlook.timezone="UTC"', 'IdType="ImmutableId"')
TEXT_BODY = 'outlook.body-content-type="text"'
# X-Salvage-Key as a named property in the PS_INTERNET_HEADERS namespace: readable (and filterable)
# through Graph even where internetMessageHeaders is not returned, and sent as a header.
KEY_PROPERTY = "String {00020386-0000-0000-C000-000000000046} Name " + KEY_HEADER
_DELTA_RESET_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "syncstateinvalid", "errorinvalidsyncstatedata"}
)
CURSOR_VERSION = 1
_QUERY_SAFE = "$,()'/:=@"


class GraphError(ProviderError):
    """A Graph error response that is neither an auth nor a transient failure."""

    def __init__(self, message: str, status: int, code: str = "", location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.location = location


# ---- the HTTP client --------------------------------------------------------------------------


class GraphClient:
    """Authenticated Graph requests with Prefer headers, a concurrency cap and error mapping."""

    def __init__(
        self,
        account: AccountConfig,
        conn: MicrosoftConnection | None = None,
        *,
        tokens: TokenSource | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self.conn = conn or connection(account)
        self.tokens = tokens or TokenSource(account, self.conn)
        root = self.conn.graph_url.rstrip("/")
        parsed = urlparse(root)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise ProviderError(f"account {account.name!r}: microsoft.graph_url {self.conn.graph_url!r} is not a URL")
        self.base = f"{root}/v1.0"
        self.origin = f"{parsed.scheme}://{parsed.netloc}".lower()
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.conn.timeout_seconds),
            verify=_tls_context(account, self.conn.ca_bundle),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": f"salvage/{__version__}"},
        )
        self._lock = threading.Lock()
        self.request_count = 0
        self._folders: dict[str, str] = {}
        self.refs = 0

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self._http.close()

    # -- one attempt ------------------------------------------------------------------------------

    def attempt(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        prefer: Iterable[str] = (),
    ) -> httpx.Response:
        """Send one request; map failures to AuthError / TransientError / GraphError."""
        self._check_url(url)
        if params:
            url = url + ("&" if "?" in url else "?") + urlencode(params, quote_via=quote, safe=_QUERY_SAFE)
        what = f"{method} {_short(url)}"
        response: httpx.Response | None = None
        for retry_auth in (False, True):
            token = self.tokens.token(force_refresh=retry_auth)
            headers = {"Authorization": f"Bearer {token}", "Prefer": ", ".join((*BASE_PREFER, *prefer))}
            try:
                with self._slots:
                    with self._lock:
                        self.request_count += 1
                    response = self._http.request(method, url, json=body, headers=headers)
            except httpx.TimeoutException:
                raise TransientError(f"Microsoft Graph: {what} timed out") from None
            except httpx.TransportError as exc:
                raise TransientError(f"Microsoft Graph: {what} failed: {type(exc).__name__}: {exc}") from None
            if response.status_code != 401 or retry_auth:
                break
            log.info("%s: Graph said 401; refreshing the access token", self.account.name)
            self.tokens.invalidate()
        assert response is not None
        return self._check(response, what)

    def _check_url(self, url: str) -> None:
        # A next/delta link pointing elsewhere must never receive our bearer token.
        parsed = urlparse(url)
        if f"{parsed.scheme}://{parsed.netloc}".lower() != self.origin:
            raise ProviderError(f"Microsoft Graph returned a link to another host ({parsed.netloc}); refusing it")

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        code, message = _error_of(response)
        detail = f"{code}: {message}" if message else code or f"HTTP {status}"
        if status == 401:
            raise AuthError(f"account {self.account.name!r}: Microsoft Graph rejected the token ({detail}); "
                            f"run `salvage auth {self.account.name}`")
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(f"Microsoft Graph: {what}: HTTP {status} ({detail})", retry_after=retry_after)
        if status >= 500 or status == 408:
            raise TransientError(f"Microsoft Graph: {what}: HTTP {status} ({detail})")
        raise GraphError(f"Microsoft Graph: {what}: HTTP {status} ({detail})", status, code,
                         response.headers.get("Location"))

    # -- retried verbs ----------------------------------------------------------------------------

    def get(self, url: str, params: dict[str, str] | None = None, *, prefer: Iterable[str] = ()) -> dict[str, Any]:
        """GET with retries; returns the JSON object."""
        prefs = tuple(prefer)
        response = call_with_retry(lambda: self.attempt("GET", url, params=params, prefer=prefs),
                                   self.retry, what=f"GET {_short(url)}", sleep=self.sleep)
        return _json_object(response)

    def patch(self, url: str, body: dict[str, Any], *, prefer: Iterable[str] = ()) -> dict[str, Any]:
        """PATCH with retries (a whole-property replacement is idempotent)."""
        prefs = tuple(prefer)
        response = call_with_retry(lambda: self.attempt("PATCH", url, body=body, prefer=prefs),
                                   self.retry, what=f"PATCH {_short(url)}", sleep=self.sleep)
        return _json_object(response) if response.content else {}

    def delete(self, url: str) -> None:
        """DELETE with retries."""
        call_with_retry(lambda: self.attempt("DELETE", url), self.retry, what=f"DELETE {_short(url)}",
                        sleep=self.sleep)

    def post(self, url: str, body: Any = None, *, prefer: Iterable[str] = ()) -> dict[str, Any]:
        """POST once (creating calls are not blindly retried)."""
        return _json_object(self.attempt("POST", url, body=body, prefer=tuple(prefer)))

    def pages(self, url: str, params: dict[str, str] | None = None, *, prefer: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """Items of a collection, following ``@odata.nextLink``."""
        page = self.get(url, params, prefer=prefer)
        for _ in range(MAX_PAGES):
            yield from _values(page)
            next_link = page.get("@odata.nextLink")
            if not next_link:
                return
            page = self.get(str(next_link), prefer=prefer)
        raise ProviderError(f"Microsoft Graph: {_short(url)} returned more than {MAX_PAGES} pages")

    def folder_id(self, well_known: str) -> str:
        """The id of a well-known mail folder (e.g. deleteditems), cached."""
        if well_known not in self._folders:
            data = self.get(self.url(f"/me/mailFolders/{well_known}"), {"$select": "id"})
            self._folders[well_known] = str(data.get("id", ""))
        return self._folders[well_known]


def _tls_context(account: AccountConfig, ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """Trust only ``ca_bundle`` when set (a proxy's or a test CA), else the usual roots."""
    if ca_bundle is None:
        return True
    try:
        if ca_bundle.is_dir():
            return ssl.create_default_context(capath=str(ca_bundle))
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ProviderError(f"account {account.name!r}: microsoft.ca_bundle {ca_bundle}: {exc}") from None


def _short(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path.split("/v1.0", 1)[-1] or parsed.path


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "", ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    if isinstance(error, str):
        return error, str(data.get("error_description") or "")[:300]
    return "", ""


def _json_object(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(f"Microsoft Graph returned something that is not JSON (HTTP {response.status_code})") from None
    if not isinstance(data, dict):
        raise ProviderError("Microsoft Graph returned JSON that is not an object")
    return data


def _values(page: dict[str, Any]) -> list[dict[str, Any]]:
    values = page.get("value", [])
    if not isinstance(values, list):
        raise ProviderError("Microsoft Graph returned a collection whose 'value' is not a list")
    return [v for v in values if isinstance(v, dict)]


# One client per account, shared by its calendar source and draft store.
_shared: dict[tuple[str, str], GraphClient] = {}
_shared_lock = threading.Lock()


def _acquire(account: AccountConfig) -> GraphClient:
    conn = connection(account)
    key = (account.name, conn.model_dump_json())
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            client = _shared[key] = GraphClient(account, conn)
        client.refs += 1
        return client


def _release(client: GraphClient) -> None:
    with _shared_lock:
        client.refs -= 1
        if client.refs > 0:
            return
        for key, value in list(_shared.items()):
            if value is client:
                del _shared[key]
    client.close()


# ---- events -----------------------------------------------------------------------------------

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


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _response(value: Any) -> Response:
    status = value.get("response") if isinstance(value, dict) else None
    return _RESPONSE.get(_text(status).lower(), Response.NEEDS_ACTION)


def _when(value: Any, all_day: bool, what: str) -> datetime | date:
    if not isinstance(value, dict) or not _text(value.get("dateTime")):
        raise ValueError(f"{what} has no dateTime")
    text = value["dateTime"]
    if all_day:
        return parse_date(text)  # all-day dates are floating: take them as given
    name = _text(value.get("timeZone")) or "UTC"
    tz = zone(name)
    if tz is None:
        raise ValueError(f"{what} is in an unknown time zone {name!r}")
    return parse_instant(text, tz).astimezone(timezone.utc)


def _people(item: dict[str, Any], self_addresses: frozenset[str]) -> tuple[Person | None, tuple[Person, ...]]:
    organizer: Person | None = None
    org = item.get("organizer")
    address = org.get("emailAddress") if isinstance(org, dict) else None
    if isinstance(address, dict) and "@" in _text(address.get("address")):
        email = _text(address.get("address"))
        organizer = person(email, _text(address.get("name")), Response.ORGANIZER,
                           is_self=bool(item.get("isOrganizer")) or email.lower() in self_addresses)
    attendees: list[Person] = []
    for entry in item.get("attendees") or ():
        if not isinstance(entry, dict):
            continue
        address = entry.get("emailAddress")
        if not isinstance(address, dict) or "@" not in _text(address.get("address")):
            continue
        email = _text(address.get("address"))
        kind = _text(entry.get("type")).lower()
        attendees.append(person(email, _text(address.get("name")), _response(entry.get("status")),
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
    event_id = _text(item.get("id"))
    if not event_id:
        raise ValueError("event has no id")
    all_day = bool(item.get("isAllDay"))
    start = _when(item.get("start"), all_day, "start")
    end = _when(item.get("end"), all_day, "end")
    if end < start:  # type: ignore[operator]
        end = start
    body = _mapping(item.get("body"))
    content = _text(body.get("content"))
    description = html_to_text(content) if _text(body.get("contentType")).lower() == "html" else content
    if not description.strip():
        description = _text(item.get("bodyPreview"))
    location_names = []
    if isinstance(item.get("location"), dict):
        location_names.append(_text(item["location"].get("displayName")))
    for loc in item.get("locations") or ():
        if isinstance(loc, dict):
            location_names.append(_text(loc.get("displayName")))
    location = "; ".join(_unique(location_names))
    meeting = _mapping(item.get("onlineMeeting"))
    join_urls = _unique([_text(meeting.get("joinUrl")), _text(item.get("onlineMeetingUrl")),
                         *find_join_urls(location, description)])
    phone_texts = [_text(meeting.get("tollNumber")), *(_text(n) for n in meeting.get("tollFreeNumbers") or ())]
    phone_texts += [_text(p.get("number")) for p in meeting.get("phones") or () if isinstance(p, dict)]
    phones = _unique([*phone_texts, *find_phones(location, description)])
    show_as = _SHOW_AS.get(_text(item.get("showAs")).lower(), ShowAs.BUSY)
    organizer, attendees = _people(item, self_addresses)
    if item.get("isOrganizer"):
        self_response = Response.ORGANIZER
    else:
        self_response = _response(item.get("responseStatus"))
    kind = _text(item.get("type")).lower()
    series_id = _text(item.get("seriesMasterId")) or None
    recurrence_id: datetime | date | None = None
    ical_uid: str | None = _text(item.get("iCalUId")) or None
    if kind in ("occurrence", "exception") and series_id:
        original = _text(item.get("originalStart"))
        moment = parse_instant(original) if original else None
        if all_day:
            if moment is not None:
                local = zone(_text(item.get("originalStartTimeZone"))) or timezone.utc
                recurrence_id = moment.astimezone(local).date()
            else:
                recurrence_id = start
        else:
            recurrence_id = moment.astimezone(timezone.utc) if moment is not None else start
        ical_uid = None  # Graph's iCalUId differs per occurrence: key occurrences by master + original start
    created = _text(item.get("createdDateTime"))
    updated = _text(item.get("lastModifiedDateTime"))
    return Event(
        account=account,
        source_id=f"{calendar_key}/{event_id}",
        title=_text(item.get("subject")),
        start=start,
        end=end,
        calendar_id=calendar_key,
        timezone=zone_name(_text(item.get("originalStartTimeZone")) or None),
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
        is_private=_text(item.get("sensitivity")).lower() in ("private", "confidential"),
        web_link=_text(item.get("webLink")) or None,
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

    incremental = True

    def __init__(self, account: AccountConfig, config: Config, client: GraphClient, *, shared: bool = False) -> None:
        self.account = account
        self.client = client
        self.user_zone: tzinfo = config.user.zone
        addresses = set(config.user.addresses)
        if account.email:
            addresses.add(account.email.lower())
        self.self_addresses = frozenset(addresses)
        calendars = getattr(account.calendar, "calendars", ["default"])
        self.selection: list[str] | str = calendars if isinstance(calendars, str) else list(calendars) or ["default"]
        self._shared = shared

    def close(self) -> None:
        if self._shared:
            self._shared = False
            _release(self.client)

    # -- public -----------------------------------------------------------------------------------

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        """A full round (complete) or the changes since ``cursor`` (delta)."""
        state = self._parse_cursor(cursor)
        if state is not None and self._can_continue(state, window):
            try:
                return self._delta(state, window)
            except _Reset as exc:
                log.info("%s: %s; starting a new sync round", self.account.name, exc)
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
            for item in _values(page):
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
        event_id = _text(item.get("id"))
        if "@removed" in item:
            if event_id and not full:
                result.removed.append(f"{key}/{event_id}")
            return
        if _text(item.get("type")).lower() == "seriesmaster":
            return  # calendarView yields occurrences; a master carries no time of its own
        try:
            event = event_from_graph(item, account=self.account.name, calendar_key=key,
                                     self_addresses=self.self_addresses)
        except (ValueError, TypeError, KeyError) as exc:
            subject = _text(item.get("subject"))[:60]
            result.problems.append(f"calendar {key!r}: skipped event {event_id or '?'} {subject!r}: {exc}")
            return
        start, end = event.span(self.user_zone)
        if end > window.start and start < window.end:
            result.events.append(event)
        elif not full:
            result.removed.append(event.source_id)  # it moved out of the window


# ---- drafts -----------------------------------------------------------------------------------


def _recipients(addresses: Iterable[Address]) -> list[dict[str, Any]]:
    out = []
    for a in addresses:
        entry: dict[str, Any] = {"address": a.email}
        if a.name:
            entry["name"] = clean_header(a.name, 100)
        out.append({"emailAddress": entry})
    return out


def _message(draft: DraftMessage, *, headers: bool, key_property: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "subject": clean_header(draft.subject, 250),
        "body": {"contentType": "html", "content": draft.html} if draft.html else {"contentType": "text",
                                                                                   "content": draft.text},
        "toRecipients": _recipients(draft.to),
    }
    if draft.cc:
        message["ccRecipients"] = _recipients(draft.cc)
    if headers:
        message["internetMessageHeaders"] = [{"name": KEY_HEADER, "value": draft.key}]
    if key_property:
        message["singleValueExtendedProperties"] = [{"id": KEY_PROPERTY, "value": draft.key}]
    return message


def _body_text(message: dict[str, Any]) -> str | None:
    body = message.get("body")
    if not isinstance(body, dict):
        return None
    content = _text(body.get("content"))
    if _text(body.get("contentType")).lower() == "html":
        return html_to_text(content)
    return content


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _subject_key(text: str) -> str:
    return " ".join(text.casefold().split())


class GraphDrafts:
    """Outlook drafts through Graph messages, as a :class:`DraftStore`. Never sends."""

    def __init__(self, account: AccountConfig, config: Config, client: GraphClient, *, shared: bool = False) -> None:
        self.account = account
        self.client = client
        addresses = set(config.user.addresses)
        if account.email:
            addresses.add(account.email.lower())
        self.self_addresses = frozenset(addresses)
        self._shared = shared

    def close(self) -> None:
        if self._shared:
            self._shared = False
            _release(self.client)

    def _message_url(self, message_id: str) -> str:
        return self.client.url(f"/me/messages/{quote(message_id, safe='')}")

    # -- create -----------------------------------------------------------------------------------

    def create(self, draft: DraftMessage) -> DraftRef:
        """A new draft: a reply to the invitation when ``draft.thread_id`` names it, else a new message."""
        attempt = 1
        while True:
            try:
                return self._create_once(draft)
            except TransientError as exc:
                # The draft may exist although the answer was lost: look for its key before trying again.
                if attempt >= self.client.retry.attempts or (
                    exc.retry_after is not None and exc.retry_after > self.client.retry.max_retry_after
                ):
                    raise
                self.client.sleep(self.client.retry.delay(attempt, exc.retry_after))
                found = self.find_by_key(draft.key)
                if found is not None:
                    log.info("%s: draft %s was created despite an error; using it", self.account.name, draft.key[:8])
                    return DraftRef(found.id, fingerprint(draft.text), draft.thread_id, found.created, found.extra)
                attempt += 1

    def _create_once(self, draft: DraftMessage) -> DraftRef:
        message: dict[str, Any] | None = None
        kind = "new"
        if draft.thread_id:
            try:
                message = self._create_reply(draft)
                kind = "reply"
            except GraphError as exc:
                if exc.status not in (400, 403, 404):
                    raise
                log.info("%s: cannot reply to the invitation (%s); creating a new message",
                         self.account.name, exc.code or exc.status)
        if message is None:
            message = self._post_variants(self.client.url("/me/messages"), [
                {**_message(draft, headers=True, key_property=True)},
                {**_message(draft, headers=True, key_property=False)},
            ])
        return self._ref(message, draft, kind)

    def _create_reply(self, draft: DraftMessage) -> dict[str, Any]:
        assert draft.thread_id
        url = self._message_url(draft.thread_id) + "/createReply"
        try:
            return self._post_variants(url, [
                {"message": _message(draft, headers=True, key_property=True)},
                {"message": _message(draft, headers=True, key_property=False)},
                {"message": _message(draft, headers=False, key_property=True)},
            ])
        except GraphError as exc:
            if exc.status != 400:
                raise
        # Last resort: a bare reply, then the key as an extended property (PATCH allows those).
        bare = {"message": _message(draft, headers=False, key_property=False)}
        message = self.client.post(url, bare, prefer=(TEXT_BODY,))
        message_id = _text(message.get("id"))
        if not message_id:
            raise ProviderError("Microsoft Graph created a reply draft without an id")
        try:
            self.client.patch(self._message_url(message_id),
                              {"singleValueExtendedProperties": [{"id": KEY_PROPERTY, "value": draft.key}]})
        except GraphError as exc:
            # The draft exists and we hold its id: keep it rather than make a second one.
            log.warning("%s: could not tag reply draft %s with its key (%s)", self.account.name,
                        draft.key[:8], exc.code or exc.status)
        return message

    def _post_variants(self, url: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        """POST the first body Graph accepts; a 400 created nothing, so the next variant is safe."""
        last: GraphError | None = None
        for body in bodies:
            try:
                return self.client.post(url, body, prefer=(TEXT_BODY,))
            except GraphError as exc:
                if exc.status != 400:
                    raise
                last = exc
        assert last is not None
        raise last

    def _ref(self, message: dict[str, Any], draft: DraftMessage, kind: str) -> DraftRef:
        message_id = _text(message.get("id"))
        if not message_id:
            raise ProviderError("Microsoft Graph created a draft without an id")
        stored = self._stored_fingerprint(message_id, message)
        created = _text(message.get("createdDateTime"))
        return DraftRef(
            id=message_id,
            fingerprint=fingerprint(draft.text),
            thread_id=draft.thread_id,
            created=parse_instant(created) if created else None,
            extra=_folder_extra({"stored": stored, "kind": kind}, message),
        )

    def _stored_fingerprint(self, message_id: str, message: dict[str, Any]) -> str:
        """Fingerprint of the body as Outlook stored it (a reply may quote the invitation)."""
        body = message.get("body") if isinstance(message.get("body"), dict) else None
        if body is not None and _text(body.get("contentType")).lower() == "text":
            return fingerprint(_text(body.get("content")))
        current = self.client.get(self._message_url(message_id), {"$select": "body"}, prefer=(TEXT_BODY,))
        return fingerprint(_body_text(current) or "")

    # -- track ------------------------------------------------------------------------------------

    def fate(self, ref: DraftRef) -> DraftFate:
        """Still a draft (untouched or edited), sent (isDraft false), or deleted (Deleted Items / 404)."""
        try:
            message = self.client.get(self._message_url(ref.id), {"$select": "id,isDraft,parentFolderId,body"},
                                      prefer=(TEXT_BODY,))
        except GraphError as exc:
            if exc.status == 404:
                return DraftFate.DELETED
            raise
        if message.get("isDraft") is False:
            return DraftFate.SENT
        folder = _text(message.get("parentFolderId"))
        # Still in the folder it was created in (Drafts): no need to resolve Deleted Items' id.
        if folder and folder != ref.extra.get("folder") and folder == self.client.folder_id("deleteditems"):
            return DraftFate.DELETED
        text = _body_text(message)
        if text is None:
            return DraftFate.UNTOUCHED
        current = fingerprint(text)
        return DraftFate.UNTOUCHED if current in (ref.fingerprint, ref.extra.get("stored")) else DraftFate.EDITED

    def update(self, ref: DraftRef, draft: DraftMessage) -> DraftRef:
        """Replace subject, body and recipients of an untouched draft."""
        message = _message(draft, headers=False, key_property=False)
        try:
            updated = self.client.patch(self._message_url(ref.id), message, prefer=(TEXT_BODY,))
        except GraphError as exc:
            if exc.status == 404:
                raise ProviderError(f"draft {ref.id[:16]}… no longer exists in Outlook") from None
            raise
        stored = self._stored_fingerprint(ref.id, updated)
        return DraftRef(ref.id, fingerprint(draft.text), ref.thread_id, ref.created, {**ref.extra, "stored": stored})

    def delete(self, ref: DraftRef) -> None:
        """Withdraw a draft; one already gone is fine."""
        try:
            self.client.delete(self._message_url(ref.id))
        except GraphError as exc:
            if exc.status == 404 or (exc.status == 403 and exc.code == "ErrorCannotDeleteObject"):
                return
            raise

    def find_by_key(self, key: str) -> DraftRef | None:
        """The draft in the Drafts folder whose X-Salvage-Key is ``key`` (crash recovery)."""
        url = self.client.url("/me/mailFolders/drafts/messages")
        select = "id,subject,createdDateTime,conversationId,parentFolderId,internetMessageHeaders"
        params = {"$select": select, "$top": "50",
                  "$expand": f"singleValueExtendedProperties($filter=id eq {_odata_string(KEY_PROPERTY)})"}
        try:
            items = list(self.client.pages(url, params))
        except GraphError as exc:
            if exc.status != 400:
                raise
            items = list(self.client.pages(url, {"$select": select, "$top": "50"}))
        for item in items:
            if _carries_key(item, key):
                message_id = _text(item.get("id"))
                current = self.client.get(self._message_url(message_id), {"$select": "id,body"}, prefer=(TEXT_BODY,))
                stored = fingerprint(_body_text(current) or "")
                created = _text(item.get("createdDateTime"))
                return DraftRef(message_id, stored, None, parse_instant(created) if created else None,
                                _folder_extra({"stored": stored}, item))
        return None

    def find_thread(self, event: Event) -> ThreadInfo | None:
        """The invitation message from the organizer for this event, to reply to; None if not found."""
        organizer = event.organizer
        title = _subject_key(event.title)
        if organizer is None or organizer.is_self or organizer.email in self.self_addresses or not title:
            return None
        params = {"$filter": f"from/emailAddress/address eq {_odata_string(organizer.email)}",
                  "$select": "id,subject,internetMessageId,conversationId,receivedDateTime,from,isDraft",
                  "$top": "50"}
        page = self.client.get(self.client.url("/me/messages"), params)
        best: tuple[int, str] | None = None
        chosen: dict[str, Any] | None = None
        for item in _values(page):
            if item.get("isDraft") or title not in _subject_key(_text(item.get("subject"))):
                continue
            odata_type = _text(item.get("@odata.type")).lower()
            rank = 2 if odata_type.endswith("eventmessagerequest") else 1 if "eventmessage" in odata_type else 0
            score = (rank, _text(item.get("receivedDateTime")))
            if best is None or score > best:
                best, chosen = score, item
        if chosen is None or not _text(chosen.get("id")):
            return None
        return ThreadInfo(thread_id=_text(chosen.get("id")), message_id=_text(chosen.get("internetMessageId")) or None,
                          references=(), subject=_text(chosen.get("subject")) or None)


def _folder_extra(extra: dict[str, str], message: dict[str, Any]) -> dict[str, str]:
    """``extra`` plus the folder the draft was made in, when Graph said."""
    folder = _text(message.get("parentFolderId"))
    return {**extra, "folder": folder} if folder else extra


def _carries_key(item: dict[str, Any], key: str) -> bool:
    for header in item.get("internetMessageHeaders") or ():
        if isinstance(header, dict) and _text(header.get("name")).lower() == KEY_HEADER.lower() and (
            _text(header.get("value")).strip() == key
        ):
            return True
    for prop in item.get("singleValueExtendedProperties") or ():
        if isinstance(prop, dict) and _text(prop.get("id")).lower() == KEY_PROPERTY.lower() and (
            _text(prop.get("value")).strip() == key
        ):
            return True
    return False


# ---- registry factories -----------------------------------------------------------------------


def open_calendar(account: AccountConfig, config: Config, *, client: GraphClient | None = None) -> GraphCalendar:
    """The Graph calendar source of an account (registered as ``microsoft``)."""
    if client is not None:
        return GraphCalendar(account, config, client)
    return GraphCalendar(account, config, _acquire(account), shared=True)


def open_drafts(account: AccountConfig, config: Config, *, client: GraphClient | None = None) -> GraphDrafts:
    """The Outlook draft store of an account (registered as ``microsoft``)."""
    if client is not None:
        return GraphDrafts(account, config, client)
    return GraphDrafts(account, config, _acquire(account), shared=True)
