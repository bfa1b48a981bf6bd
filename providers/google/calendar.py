"""Google: Calendar API v3 in (full sync, then sync tokens), Gmail drafts out (never sent).

Both talk through google-api-python-client with its bundled discovery documents (no discovery fetch),
an ``httplib2`` transport carrying the configured timeout and CA bundle, and the account's saved
credentials (:mod:`providers.google.auth`), refreshed on expiry and written back.

Failures are mapped to :mod:`providers.base` errors: 429, 5xx, rate-limit 403s, timeouts and
connection resets are :class:`TransientError` (retried here with :func:`call_with_retry`, honouring
Retry-After, which the client library's own retry ignores); ``quotaExceeded`` backs the account off
for an hour; a refused refresh is :class:`AuthError`. Only idempotent calls are retried blindly:
``drafts.create`` is retried after a clear rejection (429, rate limit) and, after an ambiguous failure
(timeout, 5xx), only once a search by ``X-Salvage-Key`` has shown that no draft was made.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from email.message import EmailMessage
from email.utils import getaddresses
from functools import cache, partial
from typing import Any

from daemon.config import AccountConfig, Config
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
    DraftFate,
    DraftMessage,
    DraftRef,
    FetchResult,
    ProviderError,
    ThreadInfo,
    TransientError,
    Window,
)
from providers.google.auth import TokenKeeper, can_read_mail, connection
from providers.mime import KEY_HEADER, build_message, fingerprint, parse_message, plain_body
from providers.retry import RetryPolicy, call_with_retry, parse_retry_after

log = logging.getLogger(__name__)

SYNC_MARGIN = timedelta(days=7)  # sync a week past the window so it can roll forward incrementally
PAGE_SIZE = 2500  # the events.list maximum
LIST_TTL_SECONDS = 12 * 3600  # how long a calendarList read for `calendars: all` is trusted
QUOTA_BACKOFF_SECONDS = 3600.0  # quotaExceeded: Google's abuse limit lasts hours; do not hammer
SENT_SKEW = timedelta(minutes=1)
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"}
_SCOPE_REASONS = {"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}

_default_sleep: Callable[[float], None] = time.sleep


class _NotFound(ProviderError):
    """HTTP 404 from Google (a calendar, draft or thread that is not there)."""


class _Gone(ProviderError):
    """HTTP 410: a sync token Google no longer accepts."""


class _Rejected(TransientError):
    """A transient failure where Google certainly did not act (429, rate limit): safe to resend."""


# ---- the shared connection ----------------------------------------------------------------------


def endpoints(api_endpoint: str | None) -> tuple[str | None, str | None]:
    """Calendar and Gmail base URLs for a configured root such as ``https://proxy.example/``.

    The root stands for ``https://www.googleapis.com/`` (which serves both APIs): Calendar lives at
    ``{root}calendar/v3/`` and Gmail's paths start ``{root}gmail/v1/``. A root given with the
    ``calendar/v3/`` suffix is accepted too.
    """
    if not api_endpoint:
        return None, None
    root = api_endpoint.rstrip("/") + "/"
    if root.endswith("/calendar/v3/"):
        root = root[: -len("calendar/v3/")]
    return root + "calendar/v3/", root


@cache
def _http_class() -> type:
    """``httplib2.Http`` that never re-sends a POST by itself.

    httplib2 silently repeats a request, POST included, when a connection breaks before the answer
    (meant for idle keep-alive sockets the server closed). For ``drafts.create`` that could make a
    second draft, so a POST goes out once on a fresh connection, and a break is raised for our own
    retry, which looks for the draft by its key before creating it again.
    """
    import httplib2

    class OncePerPostHttp(httplib2.Http):  # type: ignore[misc]
        def _conn_request(self, conn: Any, request_uri: str, method: str, body: Any, headers: Any) -> Any:
            if method != "POST":
                return super()._conn_request(conn, request_uri, method, body, headers)
            if conn.sock is not None:
                conn.close()  # no stale keep-alive socket: a break now is a real one
            send = conn.request
            sent = False

            def once(*args: Any, **kwargs: Any) -> Any:
                nonlocal sent
                if sent:
                    raise ConnectionAbortedError("the connection broke after the request was sent")
                sent = True
                return send(*args, **kwargs)

            conn.request = once
            try:
                return super()._conn_request(conn, request_uri, method, body, headers)
            finally:
                del conn.request  # back to the class's method

    return OncePerPostHttp


class GoogleSession:
    """One account's authorised HTTP transport, API clients, and error mapping."""

    def __init__(
        self,
        account: AccountConfig,
        *,
        sleep: Callable[[float], None] | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.account = account.name
        self.conn = connection(account)
        for key in ("api_endpoint", "token_uri"):
            value = getattr(self.conn, key)
            if value is not None and not re.match(r"(?i)^https?://[^/\s]+", value):
                raise ProviderError(f"accounts[{account.name}].google.{key} must be an http(s) URL, got {value!r}")
        self.keeper = TokenKeeper(account)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._http: Any = None
        self._services: dict[str, Any] = {}

    def service(self, name: str) -> Any:
        """The ``calendar`` v3 or ``gmail`` v1 client, built from the bundled discovery document."""
        if name not in self._services:
            from google_auth_httplib2 import AuthorizedHttp
            from googleapiclient.discovery import build

            creds = self.keeper.credentials
            if self._http is None:
                ca = str(self.conn.ca_bundle) if self.conn.ca_bundle else None
                raw = _http_class()(timeout=self.conn.timeout_seconds, ca_certs=ca)
                self._http = AuthorizedHttp(creds, http=raw)
            calendar_url, gmail_url = endpoints(self.conn.api_endpoint)
            url = calendar_url if name == "calendar" else gmail_url
            version = "v3" if name == "calendar" else "v1"
            self._services[name] = build(
                name,
                version,
                http=self._http,
                cache_discovery=False,
                static_discovery=True,
                client_options={"api_endpoint": url} if url else None,
            )
        return self._services[name]

    def sleep(self, seconds: float) -> None:
        """Wait between retries (injectable for tests)."""
        (self._sleep if self._sleep is not None else _default_sleep)(seconds)

    def close(self) -> None:
        """Close pooled connections."""
        if self._http is not None:
            try:
                self._http.close()
            except Exception:  # noqa: BLE001 - closing must never fail
                pass
        self._http = None
        self._services.clear()

    def call(self, make: Callable[[], Any], what: str, *, retry: bool = True) -> Any:
        """Execute the request ``make()`` builds; retried with backoff when ``retry`` (idempotent)."""

        def once() -> Any:
            return self.execute(make(), what)

        if not retry:
            return once()
        return call_with_retry(once, self.policy, what=what, sleep=self.sleep)

    def execute(self, request: Any, what: str) -> Any:
        """Send one request and translate every failure into a :mod:`providers.base` error."""
        from google.auth import exceptions as auth_exceptions
        from googleapiclient.errors import HttpError

        try:
            result = request.execute(num_retries=0)
            if isinstance(result, dict):
                return result
            if not result:  # 204 No Content (drafts.delete)
                return {}
            # The client hands back non-JSON bodies as text, e.g. a proxy's HTML page.
            raise ProviderError(f"{what}: unreadable answer (not JSON: {str(result)[:80]!r}); "
                                "check google.api_endpoint")
        except HttpError as exc:
            raise self._http_error(exc, what) from None
        except auth_exceptions.RefreshError as exc:
            detail = _refresh_detail(exc)
            if getattr(exc, "retryable", False):
                raise TransientError(f"{what}: Google's token endpoint failed ({detail})") from None
            self.close()
            raise self.keeper.auth_error(detail) from None
        except auth_exceptions.TransportError as exc:
            raise TransientError(f"{what}: cannot reach Google's token endpoint ({_short(exc)})") from None
        except ssl.SSLCertVerificationError as exc:
            raise ProviderError(f"{what}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                                "set google.ca_bundle if your network intercepts TLS") from None
        except TimeoutError:
            raise TransientError(f"{what}: no answer within {self.conn.timeout_seconds:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{what}: connection failed ({_short(exc)})") from None
        except ValueError as exc:
            raise ProviderError(f"{what}: unreadable answer ({_short(exc)}); check google.api_endpoint") from None
        except Exception as exc:
            if type(exc).__module__.startswith("httplib2"):
                raise TransientError(f"{what}: connection failed ({_short(exc)})") from None
            raise
        finally:
            if self.keeper.save_if_changed():  # a new grant on disk: rebuild the client from it
                self.close()

    def _http_error(self, exc: Any, what: str) -> ProviderError:
        status = int(getattr(exc.resp, "status", 0) or 0)
        message, reasons = _error_body(exc.content)
        retry_after = parse_retry_after(exc.resp.get("retry-after") if hasattr(exc.resp, "get") else None)
        text = f"{what}: HTTP {status}" + (f" {message}" if message else "")
        if reasons & _QUOTA_REASONS:
            return TransientError(f"{text}; backing off", retry_after=max(retry_after or 0.0, QUOTA_BACKOFF_SECONDS))
        if status == 429 or (status == 403 and reasons & _RATE_REASONS):
            return _Rejected(text, retry_after=retry_after)
        if status == 401:
            self.close()
            return self.keeper.auth_error("Google rejected the access token")
        if status == 403 and reasons & _SCOPE_REASONS:
            self.close()
            return self.keeper.auth_error("the saved authorisation lacks a permission this account needs")
        if status == 404:
            return _NotFound(text)
        if status == 410:
            return _Gone(text)
        if status == 408 or status >= 500:
            return TransientError(text, retry_after=retry_after)
        return ProviderError(text)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _refresh_detail(exc: Exception) -> str:
    # args[0] is e.g. "invalid_grant: Token has been expired or revoked."; args[1] (the response) is
    # not shown. Neither carries a token.
    first = exc.args[0] if exc.args else ""
    return str(first)[:200] or type(exc).__name__


def _error_body(content: Any) -> tuple[str, set[str]]:
    """Google's error JSON: ``{"error": {"code", "message", "errors": [{"reason"...}], "status"}}``."""
    try:
        data = json.loads(content.decode("utf-8") if isinstance(content, bytes) else content)
    except (ValueError, TypeError, AttributeError):
        return "", set()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", set()
    reasons: set[str] = set()
    for item in error.get("errors") or ():
        if isinstance(item, dict) and item.get("reason"):
            reasons.add(str(item["reason"]))
    for item in error.get("details") or ():
        if isinstance(item, dict) and item.get("reason"):
            reasons.add(str(item["reason"]))
    return str(error.get("message") or "")[:300], reasons


# ---- calendar -----------------------------------------------------------------------------------


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

    incremental = True

    def __init__(
        self,
        account: AccountConfig,
        *,
        sleep: Callable[[float], None] | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account.name
        wanted = getattr(account.calendar, "calendars", ["primary"])
        self.wanted: list[str] | str = wanted if wanted == "all" else list(dict.fromkeys(wanted))
        self.session = GoogleSession(account, sleep=sleep, policy=policy)
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

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
        now = self._clock()
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
            except _NotFound:
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
            except _Gone:
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


# ---- drafts -------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _headers(message: dict[str, Any]) -> dict[str, str]:
    """``payload.headers`` of a metadata/full message, names lower-cased (first value wins)."""
    out: dict[str, str] = {}
    payload = message.get("payload") or {}
    for h in payload.get("headers") or ():
        if isinstance(h, dict) and h.get("name"):
            out.setdefault(str(h["name"]).lower(), str(h.get("value", "")))
    return out


def _message_headers(message: dict[str, Any]) -> dict[str, str]:
    """Headers of a message answer: ``payload.headers``, or parsed from ``raw`` when that is all there is."""
    headers = _headers(message)
    if not headers and message.get("raw"):
        try:
            parsed = parse_message(_b64decode(str(message["raw"])))
        except ValueError:
            return headers
        for name, value in parsed.items():
            headers.setdefault(name.lower(), str(value))
    return headers


def _calendar_parts(payload: dict[str, Any]) -> Iterator[str]:
    """Inline text/calendar parts of a ``format=full`` message (attachments need another call)."""
    stack = [payload]
    while stack:
        part = stack.pop()
        if not isinstance(part, dict):
            continue
        stack.extend(part.get("parts") or ())
        body = part.get("body") or {}
        if str(part.get("mimeType", "")).lower() == "text/calendar" and body.get("data"):
            try:
                yield _b64decode(str(body["data"])).decode("utf-8", "replace")
            except ValueError:
                continue


def _payload_text(payload: dict[str, Any]) -> str:
    """The first text/plain body of a ``format=full`` payload ('' if none)."""
    stack = [payload]
    while stack:
        part = stack.pop(0)
        if not isinstance(part, dict):
            continue
        data = (part.get("body") or {}).get("data")
        if str(part.get("mimeType", "")).lower() == "text/plain" and data and not part.get("filename"):
            try:
                return _b64decode(str(data)).decode("utf-8", "replace")
            except ValueError:
                return ""
        stack.extend(part.get("parts") or ())
    return ""


def _draft_text(resp: dict[str, Any]) -> str | None:
    """The plain-text body of a ``drafts.get`` answer (``raw`` or ``full``); None when it has neither."""
    inner = resp.get("message") or {}
    if not isinstance(inner, dict):
        return None
    if inner.get("raw"):
        try:
            return plain_body(parse_message(_b64decode(str(inner["raw"]))))
        except ValueError:  # not base64url: try the parsed form instead
            return None
    if isinstance(inner.get("payload"), dict) and (inner["payload"].get("parts") or inner["payload"].get("body")):
        return _payload_text(inner["payload"])
    return None


def _ics_has_uid(text: str, uid: str) -> bool:
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    return any(line.strip() == f"UID:{uid}" for line in unfolded.splitlines())


class GmailDrafts:
    """Drafts in the account's Gmail Drafts folder, tracked by their stable draft id. Never sends."""

    def __init__(
        self,
        account: AccountConfig,
        *,
        sleep: Callable[[float], None] | None = None,
        policy: RetryPolicy | None = None,
        user_addresses: Iterable[str] = (),
    ) -> None:
        self.account = account.name
        self.session = GoogleSession(account, sleep=sleep, policy=policy)
        self.user_addresses = {a.lower() for a in user_addresses}
        self._warned_scope = False

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    @property
    def _gmail(self) -> Any:
        return self.session.service("gmail")

    @property
    def read_mail(self) -> bool:
        """Whether threading and sent-detection may read mail (config and granted scopes allow it)."""
        if not self.session.conn.read_mail:
            return False
        if can_read_mail(self.session.keeper.credentials):
            return True
        if not self._warned_scope:
            log.warning("%s: read_mail is on but the saved Google grant lacks gmail.readonly; drafts stay "
                        "unthreaded until you run `salvage auth %s`", self.account, self.account)
            self._warned_scope = True
        return False

    def _get_draft(self, draft_id: str, fmt: str) -> dict[str, Any]:
        gmail = self._gmail
        return self.session.call(lambda: gmail.users().drafts().get(userId="me", id=draft_id, format=fmt),
                                 "drafts.get")  # type: ignore[no-any-return]

    # -- create / update / delete

    def create(self, draft: DraftMessage) -> DraftRef:
        """Create the draft (threaded when ``draft.thread_id`` is set) and return its ref."""
        message = build_message(draft)
        body: dict[str, Any] = {"message": {"raw": _b64encode(message.as_bytes())}}
        if draft.thread_id:
            body["message"]["threadId"] = draft.thread_id
        try:
            resp = self._create(body, draft.key)
        except _NotFound:
            if not draft.thread_id:
                raise
            log.info("%s: invitation thread %s is gone; creating the draft unthreaded", self.account,
                     draft.thread_id)
            del body["message"]["threadId"]
            resp = self._create(body, draft.key)
        if isinstance(resp, DraftRef):
            return resp
        return self._ref(resp, draft, message, created=datetime.now(timezone.utc))

    def _create(self, body: dict[str, Any], key: str) -> dict[str, Any] | DraftRef:
        gmail = self._gmail
        ambiguous = False

        def attempt() -> dict[str, Any] | DraftRef:
            nonlocal ambiguous
            if ambiguous:  # the last try may have made the draft after all: look before resending
                found = self.find_by_key(key)
                if found is not None:
                    return found
            try:
                return self.session.execute(gmail.users().drafts().create(userId="me", body=body),  # type: ignore[no-any-return]
                                            "drafts.create")
            except _Rejected:
                raise
            except TransientError:
                ambiguous = True
                raise

        return call_with_retry(attempt, self.session.policy, what="drafts.create",
                               sleep=self.session.sleep)

    def _ref(self, resp: dict[str, Any], draft: DraftMessage, message: EmailMessage, *,
             created: datetime) -> DraftRef:
        inner = resp.get("message") or {}
        if not resp.get("id"):
            raise ProviderError("Gmail returned a draft without an id")
        extra = {"gmail_message_id": str(inner.get("id", "")), "draft_message_id": str(message["Message-ID"] or "")}
        if draft.to:
            extra["to"] = draft.to[0].email
        return DraftRef(
            id=str(resp["id"]),
            fingerprint=fingerprint(draft.text),
            thread_id=inner.get("threadId") or draft.thread_id,
            created=created,
            extra=extra,
        )

    def update(self, ref: DraftRef, draft: DraftMessage) -> DraftRef:
        """Replace an untouched draft's message; the draft id stays the same."""
        message = build_message(draft)
        body: dict[str, Any] = {"id": ref.id, "message": {"raw": _b64encode(message.as_bytes())}}
        if draft.thread_id:
            body["message"]["threadId"] = draft.thread_id
        gmail = self._gmail
        try:
            resp = self.session.call(lambda: gmail.users().drafts().update(userId="me", id=ref.id, body=body),
                                     "drafts.update")
        except _NotFound:
            raise ProviderError(f"Gmail draft {ref.id} no longer exists (sent or deleted meanwhile)") from None
        new = self._ref(resp, draft, message, created=ref.created or datetime.now(timezone.utc))
        return DraftRef(new.id, new.fingerprint, new.thread_id, new.created, {**ref.extra, **new.extra})

    def delete(self, ref: DraftRef) -> None:
        """Withdraw a draft (permanently deletes it; a draft already gone is fine)."""
        gmail = self._gmail
        try:
            self.session.call(lambda: gmail.users().drafts().delete(userId="me", id=ref.id), "drafts.delete")
        except _NotFound:
            pass

    # -- lifecycle

    def fate(self, ref: DraftRef) -> DraftFate:
        """One ``drafts.get``: untouched or edited; when it is gone, sent (a SENT message) or deleted."""
        try:
            body = _draft_text(self._get_draft(ref.id, "raw"))
            if body is None:  # the server ignored format=raw and sent no content: ask for the parsed form
                body = _draft_text(self._get_draft(ref.id, "full"))
        except _NotFound:
            return self._gone(ref)
        if body is None:
            raise ProviderError(f"Gmail draft {ref.id} came back without its message")
        return DraftFate.UNTOUCHED if fingerprint(body) == ref.fingerprint else DraftFate.EDITED

    def _gone(self, ref: DraftRef) -> DraftFate:
        """A draft that vanished was sent or discarded; without read_mail it counts as deleted."""
        if not self.read_mail:
            return DraftFate.DELETED
        since_ms = int(((ref.created or datetime.now(timezone.utc)) - SENT_SKEW).timestamp() * 1000)
        gmail = self._gmail
        to = ref.extra.get("to")
        if ref.thread_id:
            try:
                thread = self.session.call(
                    lambda: gmail.users().threads().get(userId="me", id=ref.thread_id, format="metadata",
                                                        metadataHeaders=["To", "Cc"]),
                    "threads.get")
            except _NotFound:  # a sent draft would have left its SENT copy in the thread
                return DraftFate.DELETED
            # Heuristic: a message the user sent in this thread, to our recipient, after we made the
            # draft. (Two of our drafts in one thread to the same person cannot be told apart.)
            for msg in thread.get("messages") or ():
                if "SENT" not in (msg.get("labelIds") or ()) or int(msg.get("internalDate") or 0) < since_ms:
                    continue
                headers = _headers(msg)
                if not to or to.lower() in (headers.get("to", "") + " " + headers.get("cc", "")).lower():
                    return DraftFate.SENT
            return DraftFate.DELETED
        if not to:
            return DraftFate.DELETED
        q = f"in:sent to:{to} after:{since_ms // 1000}"
        resp = self.session.call(lambda: gmail.users().messages().list(userId="me", q=q, maxResults=1),
                                 "messages.list")
        return DraftFate.SENT if resp.get("messages") else DraftFate.DELETED

    def find_by_key(self, key: str) -> DraftRef | None:
        """Crash recovery: the draft whose ``X-Salvage-Key`` header is ``key``, if any."""
        gmail = self._gmail
        page: str | None = None
        while True:
            resp = self.session.call(
                partial(gmail.users().drafts().list, userId="me", maxResults=500, pageToken=page),
                "drafts.list")
            for item in resp.get("drafts") or ():
                draft_id = item.get("id")
                if not draft_id:
                    continue
                try:
                    meta = self._get_draft(draft_id, "metadata")
                except _NotFound:
                    continue
                if _message_headers(meta.get("message") or {}).get(KEY_HEADER.lower(), "").strip() == key:
                    return self._ref_from_existing(draft_id, meta)
            page = resp.get("nextPageToken")
            if not page:
                return None

    def _ref_from_existing(self, draft_id: str, meta: dict[str, Any]) -> DraftRef | None:
        """A ref for a draft found by its key: headers from ``meta``, the body fingerprinted afresh."""
        try:
            resp = self._get_draft(draft_id, "raw")
            body = _draft_text(resp)
            if body is None:
                resp = self._get_draft(draft_id, "full")
                body = _draft_text(resp) or ""
        except _NotFound:
            return None
        inner = resp.get("message") or {}
        if not isinstance(inner, dict):
            inner = {}
        known = meta.get("message") or {}
        headers = _message_headers(known)
        stamp = inner.get("internalDate") or known.get("internalDate")
        created = None
        if stamp and str(stamp).isdigit():
            created = datetime.fromtimestamp(int(stamp) / 1000, timezone.utc)
        extra = {"gmail_message_id": str(inner.get("id") or known.get("id") or ""),
                 "draft_message_id": headers.get("message-id", "").strip()}
        if inner.get("raw") and _draft_text(resp) is not None:
            message = parse_message(_b64decode(str(inner["raw"])))
            extra["draft_message_id"] = str(message["Message-ID"] or "") or extra["draft_message_id"]
            to = message.get("To")
            if to and to.addresses:
                extra["to"] = to.addresses[0].addr_spec
        elif headers.get("to"):
            found = [addr for _, addr in getaddresses([headers["to"]]) if addr]
            if found:
                extra["to"] = found[0]
        return DraftRef(id=draft_id, fingerprint=fingerprint(body), thread_id=inner.get("threadId") or
                        known.get("threadId"), created=created, extra=extra)

    # -- threading

    def find_thread(self, event: Event) -> ThreadInfo | None:
        """The invitation email for ``event`` (from its organizer, with an .ics), to reply under."""
        org = event.organizer
        if org is None or org.is_self or org.email in self.user_addresses or not self.read_mail:
            return None
        terms = ["filename:ics"]
        if event.created is not None:
            terms.append(f"after:{int((event.created - timedelta(days=2)).timestamp())}")
        title = re.sub(r'["\\]', " ", event.title).strip()
        queries = [f"from:{org.email} " + " ".join(terms)]
        if title:
            queries.append(f'"{title}" ' + " ".join(terms))
        # Then without the filters: an invitation whose .ics is inline only, or that came before the
        # event's `created` (an event copied or re-imported later).
        queries.append(f"from:{org.email}")
        tried: set[str] = set()
        gmail = self._gmail
        for q in queries:
            resp = self.session.call(partial(gmail.users().messages().list, userId="me", q=q, maxResults=5),
                                     "messages.list")
            ids = [m["id"] for m in resp.get("messages") or () if m.get("id") and m["id"] not in tried]
            tried.update(ids)
            found = self._pick_invitation(ids, event)
            if found is not None:
                return found
        return None

    def _pick_invitation(self, ids: list[str], event: Event) -> ThreadInfo | None:
        gmail = self._gmail
        metas: list[dict[str, Any]] = []
        for mid in ids:
            try:
                metas.append(self.session.call(
                    partial(gmail.users().messages().get, userId="me", id=mid, format="metadata",
                            metadataHeaders=["Message-ID", "References", "Subject"]),
                    "messages.get"))
            except _NotFound:
                continue
        title = event.title.casefold()
        for meta in metas:  # newest first: the subject names the event → good enough
            if title and title in _headers(meta).get("subject", "").casefold():
                return _thread_info(meta)
        if not event.ical_uid:
            return None
        for meta in metas[:3]:  # confirm by the UID in the invitation's text/calendar part
            try:
                full = self.session.call(
                    partial(gmail.users().messages().get, userId="me", id=meta["id"], format="full"),
                    "messages.get")
            except _NotFound:
                continue
            if any(_ics_has_uid(text, event.ical_uid) for text in _calendar_parts(full.get("payload") or {})):
                return _thread_info(meta)
        return None


def _thread_info(meta: dict[str, Any]) -> ThreadInfo | None:
    headers = _headers(meta)
    message_id = headers.get("message-id", "").strip()
    if not message_id:
        return None
    return ThreadInfo(
        thread_id=meta.get("threadId"),
        message_id=message_id,
        references=tuple(headers.get("references", "").split()),
        subject=headers.get("subject") or None,
    )


# ---- registry factories -------------------------------------------------------------------------


def open_calendar(account: AccountConfig, config: Config) -> GoogleCalendarSource:
    """The Google calendar source of an account (``calendar: {type: google}``)."""
    return GoogleCalendarSource(account)


def open_drafts(account: AccountConfig, config: Config) -> GmailDrafts:
    """The Gmail draft store of an account (``drafts: {type: google}``)."""
    addresses = set(config.user.addresses)
    if account.email:
        addresses.add(account.email.lower())
    return GmailDrafts(account, user_addresses=addresses)


__all__ = [
    "GmailDrafts",
    "GoogleCalendarSource",
    "GoogleSession",
    "endpoints",
    "event_from_google",
    "open_calendar",
    "open_drafts",
]
