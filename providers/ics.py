"""Calendar source for iCalendar data: a local ``.ics`` file or an http(s)/webcal URL.

Not incremental: every changed poll returns the whole window. A poll reports ``unchanged`` when the
file (size, mtime, SHA-256) or the URL (ETag / Last-Modified → 304, or the same body) has not changed
since the cursor *and* the window has not slid past what the last full result covered by more than
:data:`REFRESH_SLACK` (otherwise occurrences of long recurring series entering the window would be
missed). Parsing expands recurrences with ``recurring_ical_events`` within the bounds of
:mod:`providers.recurrence` (a runaway series is skipped with a note, the rest is read); Windows zone names (Outlook)
become IANA zones.

``X-WR-TIMEZONE`` (Google, Apple) is applied here, once, before expansion, and only to floating
times and UTC times: a time carrying a TZID keeps the zone it names, whether its VTIMEZONE has
TZNAME lines or not (Outlook writes none). ``x_wr_timezone`` treats a zone without a name as
floating and would re-label such times, so the property is removed before ``recurring_ical_events``
sees the calendar (it would apply the conversion a second time). A time that cannot be placed with
certainty (a TZID that is neither defined in the file nor a known zone) skips its event with a note.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from daemon.config import ProviderSection
from daemon.core.model import Event, EventType, Person, Response, ShowAs, person
from daemon.core.normalize import find_join_urls, find_phones, html_to_text, zone, zone_name
from providers import recurrence
from providers.base import (
    Capabilities,
    FetchResult,
    Provider,
    ProviderContext,
    ProviderError,
    Role,
    TransientError,
    Window,
    decode_cursor,
)
from providers.ics_window import drop_outside
from providers.retry import RetryPolicy, call_with_retry, parse_retry_after

if TYPE_CHECKING:
    import httpx


@functools.cache
def _ical() -> ModuleType:
    """icalendar, imported when a calendar is first parsed: a pass of 304 answers parses none."""
    import icalendar

    return icalendar

log = logging.getLogger(f"salvage.{__name__}")

# How far the window may slide past the last full result before an unchanged source is re-read.
REFRESH_SLACK = timedelta(hours=1)
ACCEPT = "text/calendar, text/plain;q=0.5, */*;q=0.1"
MAX_BYTES = 50 * 1024 * 1024
BODY_DEADLINE_FACTOR = 4  # a download may take this many times timeout_seconds in all
MAX_PROBLEMS = 50
RETRY = RetryPolicy(attempts=3, base_seconds=1.0, cap_seconds=10.0, max_retry_after=60.0)
# icalendar's property value unions are too wide to type usefully: components are handled as Any.
Component = Any
# Bump when parsing changes what events come out, so cached "unchanged" results are re-read.
PARSER_VERSION = 3
_STASH = "X-SALVAGE-TZID"  # the original DTSTART TZID, kept across the X-WR-TIMEZONE conversion
_TIME_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")


class IcsSettings(ProviderSection):
    """``calendar: {type: ics}``: one iCalendar file or URL."""

    type: Literal["ics"]
    path: Path | None = Field(None, description="A local .ics file.")
    url: str | None = Field(None, description="An http(s) URL (e.g. a secret iCal address).")
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS-intercepting networks.")

    @model_validator(mode="after")
    def _one_source(self) -> IcsSettings:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        if self.url is not None and not re.match(r"(?i)^(https?|webcal)://", self.url):
            raise ValueError("url must start with http://, https:// or webcal://")
        return self


def open_calendar(settings: IcsSettings, context: ProviderContext) -> IcsSource:
    """The calendar source for an account whose calendar is an ``ics`` file or URL."""
    return IcsSource(settings, context)


PROVIDER = Provider(name="ics", calendar=Role(IcsSettings, "providers.ics:open_calendar"))


def redact_url(url: str) -> str:
    """Scheme and host of a URL only: secret iCal addresses carry their token in the path/query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    tail = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def _http_url(url: str) -> str:
    """``webcal://`` is https in disguise."""
    if url.lower().startswith("webcal://"):
        return "https://" + url[len("webcal://") :]
    return url


@dataclass(frozen=True, slots=True)
class _Context:
    account: str
    calendar_id: str
    label: str
    user_zone: tzinfo
    self_addresses: frozenset[str]


ParseContext = _Context  # what parse_calendar needs to know; other sources (caldav) build one too


class IcsSource:
    """A :class:`~providers.base.CalendarSource` over one iCalendar file or URL."""

    capabilities = Capabilities(incremental=False)

    def __init__(
        self,
        settings: IcsSettings,
        context: ProviderContext,
        *,
        retry: RetryPolicy = RETRY,
    ) -> None:
        calendar = settings
        self._calendar = calendar
        self._sleep = context.sleep
        self._clock = context.clock
        self._context = context
        self._retry = retry
        self._client: httpx.Client | None = None
        addresses = set(context.addresses)
        if calendar.url is not None:
            self._url: str | None = _http_url(calendar.url)
            label = redact_url(self._url)
            source = self._url
        else:
            self._url = None
            assert calendar.path is not None
            label = str(calendar.path)
            source = str(calendar.path)
        self.label = label
        self._ctx = _Context(
            account=context.account,
            calendar_id=label,
            label=label,
            user_zone=context.zone,
            self_addresses=frozenset(addresses),
        )
        settings_key = [PARSER_VERSION, source, context.account, str(context.zone), sorted(addresses)]
        self._settings = hashlib.sha256(json.dumps(settings_key).encode()).hexdigest()[:16]

    # ---- CalendarSource -------------------------------------------------------------------------

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        """The events of ``window``; ``unchanged`` when the source is as it was at ``cursor``."""
        prev = self._load_cursor(cursor)
        covered = prev is not None and _covers(prev, window)
        state: dict[str, Any] = {"v": 1, "settings": self._settings}
        data = self._read_file(state) if self._url is None else self._download(prev if covered else None, state)
        if data is None:  # 304 Not Modified
            assert prev is not None
            kept = {**prev, **{k: v for k, v in state.items() if v}}
            return FetchResult(unchanged=True, cursor=json.dumps(kept), problems=tuple(prev.get("problems", ())))
        state["sha256"] = hashlib.sha256(data).hexdigest()
        if covered and prev is not None and prev.get("sha256") == state["sha256"]:
            kept = {**prev, **state}
            return FetchResult(unchanged=True, cursor=json.dumps(kept), problems=tuple(prev.get("problems", ())))
        events, problems = parse_calendar(data, window, self._ctx)
        state["window"] = [window.start.isoformat(), window.end.isoformat()]
        state["problems"] = problems
        log.debug("%s: %d event(s) in the window, %d problem(s)", self.label, len(events), len(problems))
        return FetchResult(
            events=tuple(events), complete=True, cursor=json.dumps(state), problems=tuple(problems)
        )

    def close(self) -> None:
        """Let go of the HTTP client (it is shared: its pool closes it)."""
        self._client = None

    # ---- cursor ---------------------------------------------------------------------------------

    def _load_cursor(self, cursor: str | None) -> dict[str, Any] | None:
        prev = decode_cursor(cursor)
        if prev is None or prev.get("settings") != self._settings:
            return None
        return prev

    # ---- files ----------------------------------------------------------------------------------

    def _read_file(self, state: dict[str, Any]) -> bytes:
        path = self._calendar.path
        assert path is not None
        try:
            stat = path.stat()
            if not path.is_file():
                raise ProviderError(f"calendar file {path} is not a regular file")
            if stat.st_size > MAX_BYTES:
                raise ProviderError(f"calendar file {path} is too large ({stat.st_size} bytes)")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ProviderError(f"calendar file {path} does not exist") from None
        except PermissionError:
            raise ProviderError(f"calendar file {path} cannot be read: permission denied") from None
        except OSError as exc:
            raise ProviderError(f"calendar file {path} cannot be read: {exc.strerror or exc}") from None
        state["size"] = stat.st_size
        state["mtime_ns"] = stat.st_mtime_ns
        return data

    # ---- URLs -----------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = self._context.http_client(self._calendar.ca_bundle)
        return self._client

    def _download(self, prev: dict[str, Any] | None, state: dict[str, Any]) -> bytes | None:
        """GET the URL (conditionally when ``prev`` allows); None means 304 Not Modified."""
        assert self._url is not None
        headers = {"Accept": ACCEPT}
        if prev is not None:
            if prev.get("etag"):
                headers["If-None-Match"] = str(prev["etag"])
            if prev.get("last_modified"):
                headers["If-Modified-Since"] = str(prev["last_modified"])
        conditional = "If-None-Match" in headers or "If-Modified-Since" in headers
        import httpx  # here, not at import: a config of local files never loads it

        client = self._http()
        label = self.label

        def attempt() -> bytes | None:
            try:
                with client.stream("GET", self._url or "", headers=headers,
                                   timeout=self._calendar.timeout_seconds) as resp:
                    status = resp.status_code
                    if status == 304 and conditional:
                        state["etag"] = resp.headers.get("ETag") or (prev or {}).get("etag")
                        state["last_modified"] = resp.headers.get("Last-Modified") or (prev or {}).get(
                            "last_modified"
                        )
                        return None
                    _check_status(status, label, resp.headers.get("Retry-After"), self._clock())
                    chunks: list[bytes] = []
                    size = 0
                    # The timeout bounds each read; a server that trickles a byte at a time would
                    # never trip it, so the whole body has a deadline of its own.
                    limit = BODY_DEADLINE_FACTOR * self._calendar.timeout_seconds
                    deadline = time.monotonic() + limit
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > MAX_BYTES:
                            raise ProviderError(f"{label}: the calendar is larger than {MAX_BYTES} bytes")
                        if time.monotonic() > deadline:
                            raise TransientError(f"{label}: the calendar was not sent within {limit:g}s "
                                                 f"({size} bytes so far)")
                        chunks.append(chunk)
                    state["etag"] = resp.headers.get("ETag")
                    state["last_modified"] = resp.headers.get("Last-Modified")
                    return b"".join(chunks)
            except httpx.TimeoutException:
                raise TransientError(
                    f"{label}: no answer within {self._calendar.timeout_seconds:g}s"
                ) from None
            except httpx.TooManyRedirects:
                raise ProviderError(f"{label}: too many redirects") from None
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise ProviderError(f"{label}: unusable URL ({_scrub(str(exc), self._url)})") from None
            except httpx.ConnectError as exc:
                text = _scrub(str(exc), self._url)
                if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                    raise ProviderError(
                        f"{label}: the server's TLS certificate is not trusted ({text}); "
                        "set ca_bundle if your network intercepts TLS"
                    ) from None
                raise TransientError(f"{label}: cannot connect ({text})") from None
            except httpx.TransportError as exc:
                text = _scrub(str(exc), self._url) or type(exc).__name__
                raise TransientError(f"{label}: connection failed ({text})") from None

        return call_with_retry(attempt, self._retry, what=f"GET {label}", sleep=self._sleep)


def _check_status(status: int, label: str, retry_after: str | None, now: datetime) -> None:
    """Raise the right error for a non-2xx HTTP status."""
    if 200 <= status < 300:
        return
    if status == 429 or 500 <= status < 600:
        raise TransientError(f"{label}: HTTP {status} from the server", parse_retry_after(retry_after, now))
    if status in (401, 403):
        raise ProviderError(
            f"{label}: access denied (HTTP {status}); the calendar address may have been reset "
            "or needs a fresh secret link"
        )
    if status in (404, 410):
        raise ProviderError(
            f"{label}: calendar not found (HTTP {status}); check the url (secret addresses change when reset)"
        )
    raise ProviderError(f"{label}: unexpected HTTP {status}")


def _scrub(text: str, url: str | None) -> str:
    """Remove the URL (and its secret path) from an error text."""
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    for secret in (parts.path, parts.query):
        if secret and secret != "/":
            text = text.replace(secret, "/…")
    return text[:300]


def _covers(prev: dict[str, Any], window: Window) -> bool:
    """Whether the last full result's window still covers ``window`` (within the slack)."""
    try:
        start, end = (datetime.fromisoformat(v) for v in prev["window"])
    except (KeyError, TypeError, ValueError):
        return False
    if start.utcoffset() is None or end.utcoffset() is None:
        return False
    return window.start >= start and window.end <= end + REFRESH_SLACK


# ---- parsing ----------------------------------------------------------------------------------


def parse_calendar(data: bytes, window: Window, ctx: _Context, *, whole: bool = False) -> tuple[list[Event], list[str]]:
    """Events of iCalendar ``data`` overlapping ``window``, and notes about what was skipped.

    One-off events that certainly miss the window are dropped before parsing (see
    :mod:`providers.ics_window`); ``whole`` parses everything, for comparison.
    """
    if not whole:
        data, dropped = drop_outside(data, window)
        if dropped:
            log.debug("%s: %d one-off event(s) outside the window not parsed", ctx.label, dropped)
    calendars = _load(data, ctx.label)
    events: list[Event] = []
    problems: list[str] = []
    for calendar in calendars:
        events.extend(_calendar_events(calendar, window, ctx, problems))
    seen: set[str] = set()
    unique: list[Event] = []
    for event in sorted(events, key=lambda e: (e.span(ctx.user_zone)[0], e.source_id)):
        if event.source_id not in seen:
            seen.add(event.source_id)
            unique.append(event)
    deduped = list(dict.fromkeys(problems))
    if len(deduped) > MAX_PROBLEMS:
        deduped = [*deduped[:MAX_PROBLEMS], f"… and {len(deduped) - MAX_PROBLEMS} more problem(s)"]
    return unique, deduped


def _load(data: bytes, label: str) -> list[Any]:
    text = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        found = _ical().Calendar.from_ical(text, multiple=True)
    except Exception as exc:  # noqa: BLE001 - icalendar raises ValueError and friends on garbage
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ProviderError(f"{label} is not an iCalendar file: {reason}") from None
    if not found:
        raise ProviderError(f"{label} is not an iCalendar file: no BEGIN:VCALENDAR found")
    others = sorted({c.name for c in found if c.name != "VCALENDAR"})
    if others:
        raise ProviderError(f"{label} is not an iCalendar file: it holds {', '.join(others)}, not VCALENDAR")
    return [c for c in found if isinstance(c, _ical().Calendar)]


def _describe(component: Component) -> str:
    uid = _text(component.get("UID")) or "(no UID)"
    summary = _text(component.get("SUMMARY"))
    return f"event {uid!r}" + (f" ({summary!r})" if summary else "")


_ESSENTIAL = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


def _validate(component: Component) -> str | None:
    """Why a VEVENT cannot be used, or None when it can."""
    for name, message in getattr(component, "errors", None) or ():
        if str(name).upper() in _ESSENTIAL:
            return f"unreadable {name}: {message}"
    if component.get("DTSTART") is None:
        return "no DTSTART"
    try:
        start = component["DTSTART"].dt
        end = component["DTEND"].dt if component.get("DTEND") is not None else None
        duration = component["DURATION"].dt if component.get("DURATION") is not None else None
        rid = component["RECURRENCE-ID"].dt if component.get("RECURRENCE-ID") is not None else None
    except Exception as exc:  # noqa: BLE001 - broken property values raise library errors
        return f"unreadable date: {exc}"
    if not isinstance(start, date):
        return f"DTSTART is not a date or date-time: {start!r}"
    if end is not None and not isinstance(end, date):
        return f"DTEND is not a date or date-time: {end!r}"
    if duration is not None and not isinstance(duration, timedelta):
        return f"DURATION is not a duration: {duration!r}"
    if rid is not None and not isinstance(rid, date):
        return f"RECURRENCE-ID is not a date or date-time: {rid!r}"
    if end is not None and isinstance(end, datetime) == isinstance(start, datetime):
        try:
            if _comparable(end) < _comparable(start):
                return "DTEND is before DTSTART"
        except TypeError:
            pass
    return None


def _comparable(value: date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)


def _calendar_events(
    calendar: Component, window: Window, ctx: _Context, problems: list[str]
) -> Iterator[Event]:
    x_wr = _text(calendar.get("X-WR-TIMEZONE")).strip()
    x_wr_zone = zone(x_wr) if x_wr else None
    if x_wr and x_wr_zone is None:
        problems.append(f"X-WR-TIMEZONE {x_wr!r} is not a known timezone; events with floating times are skipped")
    if "X-WR-TIMEZONE" in calendar:
        del calendar["X-WR-TIMEZONE"]  # applied below, once; recurring_ical_events must not apply it again
    floating = x_wr_zone or ctx.user_zone
    own_zones = _own_zones(calendar, problems)
    cancel_all = _text(calendar.get("METHOD")).upper() == "CANCEL"

    kept: list[Component] = []
    for component in calendar.subcomponents:
        if component.name != "VEVENT":
            kept.append(component)
            continue
        reason = _validate(component)
        if reason is not None:
            problems.append(f"skipped {_describe(component)}: {reason}")
            continue
        if component.get("UID") is None:
            # Stable across polls, so the occurrence key does not change.
            seed = f"{_text(component.get('SUMMARY'))}\x1f{component['DTSTART'].to_ical().decode()}"
            component["UID"] = "salvage-" + hashlib.sha256(seed.encode()).hexdigest()[:20]
        tzid = component["DTSTART"].params.get("TZID")
        unplaced = _place_times(component, own_zones, x_wr_zone, bool(x_wr))
        if unplaced is not None:
            problems.append(f"skipped {_describe(component)}: {unplaced}")
            continue
        if tzid:
            component[_STASH] = str(tzid)
        kept.append(component)
    calendar.subcomponents = kept

    recurring: set[str] = set()
    moved: dict[tuple[str, str], datetime | date] = {}  # RANGE=THISANDFUTURE overrides' new starts
    for component in calendar.walk("VEVENT"):
        if any(component.get(p) is not None for p in ("RRULE", "RDATE", "RECURRENCE-ID")):
            recurring.add(_text(component.get("UID")))
        rid_prop = component.get("RECURRENCE-ID")
        if rid_prop is not None and _text(rid_prop.params.get("RANGE")).upper() == "THISANDFUTURE":
            rid, start = rid_prop.dt, component["DTSTART"].dt
            key = (_text(component.get("UID")), _rid_text(_instant(rid, floating) if isinstance(rid, datetime) else rid))
            moved[key] = _instant(start, floating) if isinstance(start, datetime) else start

    # Query a little wider than the window: all-day and floating times are placed in a zone later.
    q_start = (window.start - timedelta(days=2)).date()
    q_end = (window.end + timedelta(days=2)).date()
    for occurrence in _occurrences(calendar, q_start, q_end, problems):
        try:
            event = _to_event(occurrence, ctx, floating, recurring, moved, cancel_all)
        except Exception as exc:  # noqa: BLE001 - a malformed event affects only itself
            problems.append(f"skipped {_describe(occurrence)}: {exc}")
            continue
        if _overlaps(event, window, ctx.user_zone):
            yield event


class _Unplaceable(Exception):
    """A date-time whose instant is not known for certain."""


def _own_zones(calendar: Component, problems: list[str]) -> dict[str, tzinfo]:
    """This file's own VTIMEZONEs for TZIDs that are not IANA names (Windows names, custom zones).

    icalendar caches a VTIMEZONE by TZID for the whole process, first definition wins: two Exchange
    files each with their own "Customized Time Zone" would otherwise share the first one's rules.
    """
    out: dict[str, tzinfo] = {}
    for component in calendar.subcomponents:
        if component.name != "VTIMEZONE" or component.get("TZID") is None:
            continue
        tzid = _text(component.get("TZID")).strip()
        if zone_name(tzid) == tzid:  # an IANA name: icalendar uses the tz database, as we do
            continue
        try:
            out[tzid] = component.to_tz(lookup_tzid=False)
        except Exception as exc:  # noqa: BLE001 - a broken VTIMEZONE: its events fall back below
            problems.append(f"VTIMEZONE {tzid!r} cannot be read: {str(exc)[:120]}")
    return out


def _place_times(
    component: Component, own_zones: dict[str, tzinfo], x_wr_zone: tzinfo | None, has_x_wr: bool
) -> str | None:
    """Give a VEVENT's date-times the zone they certainly have; why they cannot have one, or None.

    A TZID keeps its zone: this file's VTIMEZONE for it, else the IANA/Windows zone it names. Only
    floating and UTC times take the calendar's X-WR-TIMEZONE; without one, floating times stay
    floating (RFC 5545: local time wherever the user is) and UTC stays UTC.
    """
    try:
        for name in _TIME_PROPS:
            for prop in _as_list(component.get(name)):
                values = prop.dts if hasattr(prop, "dts") else [prop]
                for value in values:
                    tzid = _text(value.params.get("TZID") or prop.params.get("TZID")).strip()
                    moment = value.dt
                    own = own_zones.get(tzid)
                    if isinstance(moment, tuple):  # RDATE;VALUE=PERIOD: (start, end or duration)
                        value.dt = tuple(_placed(m, tzid, own, x_wr_zone, has_x_wr) for m in moment)
                    else:
                        value.dt = _placed(moment, tzid, own, x_wr_zone, has_x_wr)
    except _Unplaceable as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - an odd value affects only its own event
        return f"unreadable date-time: {str(exc)[:120] or type(exc).__name__}"
    return None


def _placed(moment: Any, tzid: str, own: tzinfo | None, x_wr_zone: tzinfo | None, has_x_wr: bool) -> Any:
    if not isinstance(moment, datetime):
        return moment
    if tzid and own is not None:
        return moment.replace(tzinfo=own)  # the wall time as written, in this file's definition
    if tzid:
        if moment.tzinfo is not None:
            return moment  # never re-labelled by X-WR-TIMEZONE, named zone or not
        known = zone(tzid)  # e.g. "/mozilla.org/20050126_1/Europe/Berlin" with no VTIMEZONE
        if known is None:
            raise _Unplaceable(
                f"its time zone {tzid!r} is neither defined in the file nor a known zone, "
                f"so {moment:%Y-%m-%d %H:%M} cannot be placed without guessing"
            )
        return moment.replace(tzinfo=known)
    if moment.tzinfo is None:  # floating
        if x_wr_zone is not None:
            return moment.replace(tzinfo=x_wr_zone)
        if has_x_wr:
            raise _Unplaceable(
                f"its floating time {moment:%Y-%m-%d %H:%M} belongs to the calendar's X-WR-TIMEZONE, "
                "which is not a known zone"
            )
        return moment
    if x_wr_zone is not None:  # UTC ("Z"), as Google writes times in a calendar declaring its zone
        return moment.astimezone(x_wr_zone)
    return moment


def _occurrences(
    calendar: Component, q_start: date, q_end: date, problems: list[str]
) -> Iterable[Component]:
    """Expanded occurrences, bounded (see :mod:`providers.recurrence`); a bad series affects only itself."""
    return recurrence.expand(calendar, q_start, q_end, problems, describe=_describe)


def _overlaps(event: Event, window: Window, user_zone: tzinfo) -> bool:
    start, end = event.span(user_zone)
    if end == start:
        return window.start <= start < window.end
    return end > window.start and start < window.end


# ---- one occurrence → Event -------------------------------------------------------------------


def _to_event(
    component: Component,
    ctx: _Context,
    floating: tzinfo,
    recurring: set[str],
    moved: dict[tuple[str, str], datetime | date],
    cancel_all: bool,
) -> Event:
    uid = _text(component.get("UID"))
    raw_start = component["DTSTART"].dt
    raw_end = component["DTEND"].dt if component.get("DTEND") is not None else None
    start, end = _times(raw_start, raw_end, component, floating)

    recurrence_id: datetime | date | None = None
    source_id = uid
    if uid in recurring:
        rid_prop = component.get("RECURRENCE-ID")
        rid = rid_prop.dt if rid_prop is not None else raw_start
        recurrence_id = _instant(rid, floating) if isinstance(rid, datetime) else rid
        new_start = moved.get((uid, _rid_text(recurrence_id)))
        if new_start is not None and new_start != start:
            # A later occurrence of a RANGE=THISANDFUTURE change carries the change's RECURRENCE-ID;
            # its own slot in the original series is its start shifted back by the change.
            recurrence_id = _shift_back(start, new_start, recurrence_id)
        source_id = f"{uid}@{_rid_text(recurrence_id)}"

    tzid = _text(component.get(_STASH))
    event_zone = zone_name(tzid) if tzid else None
    if event_zone is None and tzid and isinstance(start, datetime) and isinstance(start.tzinfo, ZoneInfo):
        event_zone = start.tzinfo.key

    title = _text(component.get("SUMMARY")).strip()
    location = _text(component.get("LOCATION")).strip()
    description, alt_text = _description(component)
    organizer, attendees, self_response = _people(component, ctx.self_addresses)
    show_as, event_type = _busy(component, title)
    status = _text(component.get("STATUS")).upper()
    cls = _text(component.get("CLASS")).upper()

    explicit, tel = _conference(component)
    join_urls = tuple(dict.fromkeys([*explicit, *find_join_urls(location, description, alt_text)]))
    phones = tuple(dict.fromkeys([*tel, *find_phones(location, description)]))
    url = _text(component.get("URL")).strip()

    return Event(
        account=ctx.account,
        source_id=source_id,
        title=title,
        start=start,
        end=end,
        calendar_id=ctx.calendar_id,
        timezone=event_zone,
        description=description,
        location=location,
        organizer=organizer,
        attendees=attendees,
        self_response=self_response,
        show_as=show_as,
        cancelled=status == "CANCELLED" or cancel_all,
        event_type=event_type,
        join_urls=join_urls,
        phones=phones,
        ical_uid=uid,
        series_id=uid if recurrence_id is not None else None,
        recurrence_id=recurrence_id,
        created=_stamp(component, "CREATED"),
        updated=_stamp(component, "LAST-MODIFIED"),
        categories=_categories(component),
        is_private=cls in ("PRIVATE", "CONFIDENTIAL"),
        web_link=url if re.match(r"(?i)^https?://", url) else None,
    )


def _times(
    start: date, end: date | None, component: Component, floating: tzinfo
) -> tuple[datetime, datetime] | tuple[date, date]:
    """Aware start/end for timed events, dates for all-day ones (end exclusive, at least a day)."""
    if not isinstance(start, datetime):
        if end is None:
            end_day = start + timedelta(days=1)
        elif isinstance(end, datetime):  # DATE start with a timed DURATION: cover the days touched
            end_day = end.date() + (timedelta(days=1) if end.time() != datetime.min.time() else timedelta(0))
        else:
            end_day = end
        if end_day <= start:
            end_day = start + timedelta(days=1)
        return start, end_day
    a_start = _instant(start, floating)
    if end is None:
        a_end = a_start
    elif isinstance(end, datetime):
        a_end = _instant(end, floating)
    else:
        a_end = datetime.combine(end, datetime.min.time(), tzinfo=a_start.tzinfo)
    if a_end < a_start:
        a_end = a_start
    return a_start, a_end


def _wall(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, datetime.min.time())


def _shift_back(start: datetime | date, new_start: datetime | date, rid: datetime | date) -> datetime | date:
    """The original slot of an occurrence moved along with a THISANDFUTURE override."""
    shift = _wall(new_start) - _wall(rid)  # wall-clock shift, as the series repeats in wall time
    if isinstance(start, datetime):
        return start - shift  # aware arithmetic keeps the wall clock in the event's zone
    return start - timedelta(days=shift.days)


def _instant(value: datetime, floating: tzinfo) -> datetime:
    """An aware datetime in a ``zoneinfo`` zone (or UTC) for whatever tzinfo icalendar produced."""
    tz = value.tzinfo
    if tz is None or value.utcoffset() is None:
        return value.replace(tzinfo=floating)
    if isinstance(tz, ZoneInfo) or tz is timezone.utc:
        return value
    # dateutil zones built from a VTIMEZONE (Outlook's Windows names) or other providers: the
    # VTIMEZONE gives the instant; the name, when it maps to IANA, gives the zone to show it in.
    name = getattr(tz, "_tzid", None) or getattr(tz, "key", None) or getattr(tz, "zone", None) or value.tzname()
    iana = zone_name(str(name)) if name else None
    if iana == "UTC" or iana is None:
        return value.astimezone(timezone.utc)
    return value.astimezone(ZoneInfo(iana))


def _rid_text(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _text(value: Any) -> str:
    """A property value as text ('' when absent); the first one when the property repeats."""
    if value is None:
        return ""
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, _ical().prop.vUnknown):  # X- properties come raw, still TEXT-escaped
        return _unescape(str(value))
    return str(value)


_ESCAPE = re.compile(r"\\([\\;,nN])")


def _unescape(text: str) -> str:
    """Undo RFC 5545 TEXT escaping (``\\,`` ``\\;`` ``\\n`` ``\\\\``)."""
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


_HTML_HINT = re.compile(r"<\s*(br|p|div|a\s|span|b|i|u|ul|ol|li|html|body|strong|em)\b[^>]*>", re.IGNORECASE)


def _description(component: Component) -> tuple[str, str]:
    """Plain description (HTML turned to text) and the text of X-ALT-DESC, if any."""
    plain = _text(component.get("DESCRIPTION")).strip()
    if plain and _HTML_HINT.search(plain):  # Google stores HTML descriptions and exports them as is
        plain = html_to_text(plain)
    alt = ""
    alt_prop = component.get("X-ALT-DESC")
    if alt_prop is not None:
        raw = _text(alt_prop)
        fmt = str(getattr(alt_prop, "params", {}).get("FMTTYPE", "text/html")).lower()
        alt = html_to_text(raw) if "html" in fmt else raw.strip()
    return (plain or alt), alt


_PARTSTAT = {
    "ACCEPTED": Response.ACCEPTED,
    "DECLINED": Response.DECLINED,
    "TENTATIVE": Response.TENTATIVE,
    "NEEDS-ACTION": Response.NEEDS_ACTION,
    "DELEGATED": Response.DECLINED,  # passed on to someone else: the user will not be there
}


def _address(value: Any) -> str | None:
    """The email address of an ORGANIZER/ATTENDEE (mailto: value or EMAIL parameter)."""
    params = getattr(value, "params", {}) or {}
    raw = _text(value).strip()
    if raw.lower().startswith("mailto:"):
        raw = unquote(raw[7:]).strip()
    elif params.get("EMAIL"):
        raw = _text(params.get("EMAIL")).strip()
    if params.get("EMAIL") and "@" not in raw:
        raw = _text(params.get("EMAIL")).strip()
    if raw.lower().startswith("mailto:"):
        raw = raw[7:]
    # Anything with an '@' is kept as written: the planner checks it strictly and refuses to write
    # to it (with a warning) rather than let a malformed organizer fall back to other attendees.
    return raw.lower() if "@" in raw else None


def _name(params: Any, email: str) -> str:
    """The CN, unless it only repeats the address (Google writes CN=address when there is no name)."""
    name = _text(params.get("CN")).strip()
    return "" if name.lower() == email else name


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _people(
    component: Component, self_addresses: frozenset[str]
) -> tuple[Person | None, tuple[Person, ...], Response]:
    raw_attendees = _as_list(component.get("ATTENDEE"))
    attendees: list[Person] = []
    for value in raw_attendees:
        email = _address(value)
        if email is None:
            continue
        params = getattr(value, "params", {}) or {}
        cutype = _text(params.get("CUTYPE")).upper()
        role = _text(params.get("ROLE")).upper()
        attendees.append(
            person(
                email,
                _name(params, email),
                _PARTSTAT.get(_text(params.get("PARTSTAT")).upper(), Response.NEEDS_ACTION),
                is_self=email in self_addresses,
                is_resource=cutype in ("ROOM", "RESOURCE") or email.endswith("@resource.calendar.google.com"),
                optional=role in ("OPT-PARTICIPANT", "NON-PARTICIPANT"),
            )
        )
    organizer: Person | None = None
    org_value = component.get("ORGANIZER")
    if isinstance(org_value, list):
        org_value = org_value[0] if org_value else None
    if org_value is not None:
        email = _address(org_value)
        if email is not None:
            params = getattr(org_value, "params", {}) or {}
            as_attendee = next((a for a in attendees if a.email == email), None)
            organizer = person(
                email,
                _name(params, email) or (as_attendee.name if as_attendee else ""),
                as_attendee.response if as_attendee else Response.ACCEPTED,
                is_self=email in self_addresses,
            )
    if organizer is not None and organizer.is_self:
        response = Response.ORGANIZER
    else:
        mine = [a.response for a in attendees if a.is_self]
        answered = [r for r in mine if r is not Response.NEEDS_ACTION]
        response = (answered or mine or [Response.ACCEPTED])[0]
    return organizer, tuple(attendees), response


_BUSY = {
    "FREE": ShowAs.FREE,
    "TENTATIVE": ShowAs.TENTATIVE,
    "BUSY": ShowAs.BUSY,
    "OOF": ShowAs.OUT_OF_OFFICE,
    "WORKINGELSEWHERE": ShowAs.WORKING_ELSEWHERE,
}
_OOO_TITLE = re.compile(r"^\s*(out of (the )?office|out-of-office|ooo)\s*$", re.IGNORECASE)


def _busy(component: Component, title: str) -> tuple[ShowAs, EventType]:
    """Busy/free from X-MICROSOFT-CDO-BUSYSTATUS, TRANSP and STATUS; out-of-office recognised."""
    cdo = _text(component.get("X-MICROSOFT-CDO-BUSYSTATUS") or component.get("X-MICROSOFT-CDO-INTENDEDSTATUS"))
    show = _BUSY.get(cdo.strip().upper())
    if show is None:
        if _text(component.get("TRANSP")).strip().upper() == "TRANSPARENT":
            show = ShowAs.FREE
        elif _text(component.get("STATUS")).strip().upper() == "TENTATIVE":
            show = ShowAs.TENTATIVE
        else:
            show = ShowAs.BUSY
    kind = EventType.OUT_OF_OFFICE if show is ShowAs.OUT_OF_OFFICE else EventType.DEFAULT
    google_type = _text(component.get("X-GOOGLE-EVENT-TYPE") or component.get("X-GOOGLE-EVENTTYPE"))
    if re.sub(r"[^a-z]", "", google_type.lower()) == "outofoffice" or (
        _OOO_TITLE.match(title) and show is not ShowAs.FREE
    ):
        kind = EventType.OUT_OF_OFFICE
        if show is ShowAs.BUSY:
            show = ShowAs.OUT_OF_OFFICE
    return show, kind


_CONFERENCE_PROPS = (
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK",
    "CONFERENCE",
    "URL",
)


def _conference(component: Component) -> tuple[list[str], list[str]]:
    """Meeting links and phone numbers from conference properties (RFC 7986, Google, Teams, URL)."""
    urls: list[str] = []
    phones: list[str] = []
    for name in _CONFERENCE_PROPS:
        for value in _as_list(component.get(name)):
            text = _text(value).strip()
            if re.match(r"(?i)^https?://\S+$", text):
                urls.append(text)
            elif text.lower().startswith("tel:"):
                number = unquote(text[4:]).split(";")[0].strip()
                if number:
                    phones.append(number)
    return urls, phones


def _stamp(component: Component, name: str) -> datetime | None:
    try:
        value = component.get(name)
        moment = value.dt if value is not None else None
    except Exception:  # noqa: BLE001 - a broken timestamp is not worth losing the event
        return None
    if not isinstance(moment, datetime):
        return None
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=timezone.utc)  # RFC 5545: these are always UTC
    return moment.astimezone(timezone.utc)


def _categories(component: Component) -> tuple[str, ...]:
    out: list[str] = []
    for value in _as_list(component.get("CATEGORIES")):
        cats = getattr(value, "cats", None)
        items = cats if cats is not None else _text(value).split(",")
        for item in items:
            text = _text(item).strip()
            if text and text not in out:
                out.append(text)
    return tuple(out)


__all__ = ["PROVIDER", "IcsSettings", "IcsSource", "ParseContext", "open_calendar", "parse_calendar", "redact_url"]
