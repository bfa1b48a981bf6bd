"""Calendar source for CalDAV servers (Fastmail, iCloud, Nextcloud, Radicale…), on the ``caldav`` library.

- Discovery: the configured URL's principal (``current-user-principal``), else the server's
  ``/.well-known/caldav``, then the principal's calendar home; a URL that is itself a calendar is
  used as the only calendar. Calendars are chosen by display name (or URL), or ``all``.
- First sync of a calendar: one ``calendar-query`` REPORT with a time range (the window plus
  :data:`LOOKAHEAD`, so the window can slide a week before the server is asked again), and the
  calendar's ``sync-token`` / ``getctag`` from one PROPFIND.
- Later polls: a ``sync-collection`` REPORT (RFC 6578) with the saved token, then one
  ``calendar-multiget`` for what changed. A server without sync tokens is asked for its ``getctag``
  (unchanged → nothing more) and then the ETags, compared with the saved ones. An expired token
  means that calendar is read again in full.
- Each object is parsed and its recurrence expanded by :func:`providers.ics.parse_calendar`, the
  same code path (and bounds) as the ``ics`` source. The cursor keeps, per calendar, the token and
  the occurrence ids of each object, so a change or a deletion becomes a delta.
- The password comes from an environment variable or a 0600 file (:mod:`providers.secret`), TLS is
  always verified (``ca_bundle`` for a private CA).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit

from caldav.davclient import DAVClient
from caldav.elements import dav
from caldav.elements.base import ValuedBaseElement
from caldav.elements.cdav import CalendarData
from caldav.lib import error
from caldav.lib.http_sync import requests as http
from caldav.lib.url import URL
from pydantic import Field, model_validator

from daemon.config import ProviderSection
from daemon.core.model import Event
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
from providers.ics import PARSER_VERSION, ParseContext, parse_calendar
from providers.secret import PasswordError, check_password_source, read_password

log = logging.getLogger(f"salvage.{__name__}")

LOOKAHEAD = timedelta(days=7)
CALENDAR_TYPE = "{urn:ietf:params:xml:ns:caldav}calendar"
CURSOR_VERSION = 1


class GetCTag(ValuedBaseElement):
    """The calendar's change tag (a calendarserver.org extension most servers have)."""

    tag = "{http://calendarserver.org/ns/}getctag"


class CaldavSettings(ProviderSection):
    """``calendar: {type: caldav}``: the calendars of one CalDAV account."""

    type: Literal["caldav"]
    url: str = Field(
        description="The CalDAV server (e.g. https://caldav.fastmail.com/), a principal URL or one "
        "calendar's URL; discovery follows the principal (or /.well-known/caldav) to the calendar home."
    )
    username: str = Field(description="The login name (often your email address).")
    password_env: str | None = Field(
        None, description="Name of an environment variable holding the password or app password."
    )
    password_file: Path | None = Field(None, description="A file (mode 0600) holding the password or app password.")
    calendars: list[str] | Literal["all"] = Field(
        "all", description="Calendar names (display names) or URLs to read, or 'all'."
    )
    ca_bundle: Path | None = Field(None, description="CA bundle for a private CA or TLS-intercepting network.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _checks(self) -> CaldavSettings:
        if not re.match(r"(?i)^https?://[^/\s]+", self.url):
            raise ValueError("url must start with https:// (or http:// for a server on this machine)")
        check_password_source(self.password_env, self.password_file, True)
        if isinstance(self.calendars, list) and not self.calendars:
            raise ValueError("calendars must name at least one calendar, or be 'all'")
        return self


def open_calendar(settings: CaldavSettings, context: ProviderContext) -> CaldavSource:
    """The calendar source for an account whose calendar is a CalDAV server."""
    return CaldavSource(settings, context)


PROVIDER = Provider(name="caldav", calendar=Role(CaldavSettings, "providers.caldav:open_calendar"))


class _CountingClient(DAVClient):
    """A DAVClient that counts its HTTP requests (shown by the benchmark and the tests)."""

    requests = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return super().request(*args, **kwargs)


@dataclass
class _Cal:
    url: str
    name: str
    handle: Any  # caldav.Calendar
    tag: str  # short, stable prefix of this calendar's source ids


class CaldavSource:
    """A :class:`~providers.base.CalendarSource` over the chosen calendars of one CalDAV account."""

    capabilities = Capabilities(incremental=True)
    use_sync_collection = True  # False: behave as with a server that has none (tests, benchmark)

    def __init__(self, settings: CaldavSettings, context: ProviderContext) -> None:
        self.settings = settings
        self.account = context.account
        host = urlsplit(settings.url).hostname or "?"
        self.label = f"CalDAV {settings.username} at {host}"
        addresses = set(context.addresses)
        self._addresses = frozenset(addresses)
        self._zone = context.zone
        self._user_agent = context.http.user_agent
        self._client: _CountingClient | None = None
        self._calendars: list[_Cal] | None = None
        chosen = settings.calendars if isinstance(settings.calendars, str) else sorted(settings.calendars)
        key = [CURSOR_VERSION, PARSER_VERSION, settings.url, settings.username, chosen, context.account,
               str(context.zone), sorted(addresses)]
        self._settings = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]

    @property
    def requests(self) -> int:
        """HTTP requests made so far."""
        return self._client.requests if self._client is not None else 0

    # ---- CalendarSource -------------------------------------------------------------------------

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        """The window's events: in full the first time, then the changes since ``cursor``."""
        try:
            return self._fetch(window, cursor)
        except error.AuthorizationError as exc:
            self._forget()
            where = (f"environment variable {self.settings.password_env}" if self.settings.password_env
                     else f"file {self.settings.password_file}")
            raise PasswordError(f"{self.label}: access refused (HTTP {exc.status or 401}); check the username and the "
                            f"password or app password in {where}") from None
        except error.RateLimitError as exc:
            raise TransientError(f"{self.label}: the server asks to slow down (HTTP {exc.status or 429})",
                                 exc.retry_after_seconds) from None
        except error.DAVError as exc:
            self._forget()
            status = exc.status or 0
            text = f"{self.label}: {type(exc).__name__} (HTTP {status or '?'}): {_short(exc.reason)}"
            if status >= 500:
                raise TransientError(text) from None
            raise ProviderError(text) from None
        except http.exceptions.SSLError as exc:
            self._forget()
            raise ProviderError(f"{self.label}: TLS failed ({_short(str(exc))}); if the server uses a private "
                                "CA, set ca_bundle") from None
        except (http.exceptions.RequestException, OSError) as exc:
            self._forget()
            raise TransientError(f"{self.label}: cannot reach the server ({type(exc).__name__})") from None

    def close(self) -> None:
        """Close the HTTP session."""
        self._forget()

    # ---- one poll -------------------------------------------------------------------------------

    def _fetch(self, window: Window, cursor: str | None) -> FetchResult:
        prev = decode_cursor(cursor)
        if prev is not None and prev.get("settings") != self._settings:
            prev = None
        calendars = self._discover()
        q_start = window.start
        known: dict[str, Any] = prev.get("cals", {}) if prev else {}
        try:
            p_start, p_end = (datetime.fromisoformat(v) for v in prev["range"]) if prev else (None, None)
        except (KeyError, TypeError, ValueError):
            p_start, p_end = None, None
        if prev is None or p_start is None or p_end is None or window.start < p_start:
            return self._full(calendars, Window(q_start, window.end + LOOKAHEAD))

        span_end = p_end
        events: list[Event] = []
        removed: list[str] = []
        problems: list[str] = []
        cals: dict[str, Any] = {}
        for cal in calendars:
            entry = known.get(cal.url)
            if entry is None:  # newly chosen or newly created calendar
                entry, found = self._read_full(cal, Window(q_start, span_end), problems)
                events.extend(found)
            else:
                entry = self._read_changes(cal, entry, Window(q_start, span_end), events, removed, problems)
            cals[cal.url] = entry
        for url, entry in known.items():
            if url not in cals:  # a calendar no longer chosen, or deleted on the server
                removed.extend(sid for ids in entry.get("ids", {}).values() for sid in ids)
        if window.end > span_end:  # the window slid past what was read: read the new stretch
            new_end = window.end + LOOKAHEAD
            for cal in calendars:
                self._read_stretch(cal, cals[cal.url], span_end, Window(q_start, new_end), events, removed,
                                   problems)
            span_end = new_end
        state = {"v": CURSOR_VERSION, "settings": self._settings,
                 "range": [p_start.isoformat(), span_end.isoformat()], "cals": cals}
        if not events and not removed:
            return FetchResult(unchanged=True, cursor=json.dumps(state), problems=tuple(problems))
        live = {e.source_id for e in events}
        return FetchResult(events=tuple(events), removed=tuple(sorted(set(removed) - live)), complete=False,
                           cursor=json.dumps(state), problems=tuple(problems))

    def _full(self, calendars: list[_Cal], span: Window) -> FetchResult:
        events: list[Event] = []
        problems: list[str] = []
        cals: dict[str, Any] = {}
        for cal in calendars:
            cals[cal.url], found = self._read_full(cal, span, problems)
            events.extend(found)
        state = {"v": CURSOR_VERSION, "settings": self._settings,
                 "range": [span.start.isoformat(), span.end.isoformat()], "cals": cals}
        log.debug("%s: %d event(s) from %d calendar(s)", self.label, len(events), len(calendars))
        return FetchResult(events=tuple(events), complete=True, cursor=json.dumps(state), problems=tuple(problems))

    # ---- per calendar ---------------------------------------------------------------------------

    def _read_full(self, cal: _Cal, span: Window, problems: list[str]) -> tuple[dict[str, Any], list[Event]]:
        """Token/ctag, then the objects overlapping ``span`` (server-side time range)."""
        props = cal.handle.get_properties([dav.SyncToken(), GetCTag()])
        token = props.get(dav.SyncToken.tag) or None
        ctag = props.get(GetCTag.tag) or None
        objects = self._query_range(cal, span.start, span.end)
        entry: dict[str, Any] = {"name": cal.name, "token": token, "ctag": ctag, "ids": {}}
        events = self._parse_objects(cal, objects, span, entry, problems)
        if not self.use_sync_collection:
            token = None
        if token is None:  # no sync-collection: remember ETags for the fallback comparison
            entry["etags"] = self._etags(cal)
        return entry, events

    def _read_changes(self, cal: _Cal, entry: dict[str, Any], span: Window, events: list[Event],
                      removed: list[str], problems: list[str]) -> dict[str, Any]:
        """What changed in one calendar since its saved token (or ctag and ETags)."""
        changed: list[str] = []
        gone: list[str] = []
        if entry.get("token"):
            try:
                result = cal.handle.get_objects_by_sync_token(entry["token"], load_objects=False,
                                                              disable_fallback=True)
            except (error.ReportError, error.AuthorizationError) as exc:
                if isinstance(exc, error.AuthorizationError) and dav.ValidSyncToken.tag not in exc.preconditions:
                    raise
                log.info("%s: sync token of %s no longer valid; reading it again", self.label, cal.name)
                return self._reread(cal, entry, span, events, removed, problems)
            deleted = {u for u in result.deleted_urls}
            for obj in result:
                (gone if obj.url.canonical() in deleted else changed).append(self._rel(cal, obj.url))
            entry = {**entry, "token": result.sync_token or entry["token"]}
        else:
            ctag = cal.handle.get_properties([GetCTag()]).get(GetCTag.tag) or None
            if ctag is not None and ctag == entry.get("ctag"):
                return entry
            etags = self._etags(cal)
            old = entry.get("etags", {})
            changed = [h for h, tag in etags.items() if old.get(h) != tag]
            gone = [h for h in old if h not in etags]
            entry = {**entry, "ctag": ctag, "etags": etags}
        ids = dict(entry.get("ids", {}))
        for href in gone:
            removed.extend(ids.pop(href, []))
        entry["ids"] = ids
        if changed:
            objects = [(self._rel(cal, o.url), o.data) for o in cal.handle.multiget([self._abs(cal, h) for h in changed])]
            fetched = {href for href, _data in objects}
            for href in changed:
                if href not in fetched:  # deleted between the two requests
                    removed.extend(ids.pop(href, []))
            old_ids = {h: ids.get(h, []) for h in fetched}
            found = self._parse_objects(cal, objects, span, entry, problems)
            events.extend(found)
            live = {e.source_id for e in found}
            removed.extend(sid for sids in old_ids.values() for sid in sids if sid not in live)
        return entry

    def _reread(self, cal: _Cal, entry: dict[str, Any], span: Window, events: list[Event], removed: list[str],
                problems: list[str]) -> dict[str, Any]:
        old = [sid for sids in entry.get("ids", {}).values() for sid in sids]
        fresh, found = self._read_full(cal, span, problems)
        events.extend(found)
        live = {e.source_id for e in found}
        removed.extend(sid for sid in old if sid not in live)
        return fresh

    def _read_stretch(self, cal: _Cal, entry: dict[str, Any], since: datetime, span: Window, events: list[Event],
                      removed: list[str], problems: list[str]) -> None:
        """Objects with occurrences in (``since``, ``span.end``]: parsed again over the whole span."""
        objects = self._query_range(cal, since, span.end)
        ids = entry.get("ids", {})
        old = {href: list(ids.get(href, [])) for href, _data in objects}
        found = self._parse_objects(cal, objects, span, entry, problems)
        events.extend(found)
        live = {e.source_id for e in found}
        removed.extend(sid for sids in old.values() for sid in sids if sid not in live)

    def _query_range(self, cal: _Cal, start: datetime, end: datetime) -> list[tuple[str, str]]:
        """(href, iCalendar text) of the VEVENT objects with an occurrence in [start, end): one REPORT.

        The time range is the server's to apply (RFC 4791 9.9, recurrences included); the data is
        parsed once, by :func:`providers.ics.parse_calendar`.
        """
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{_utc(start)}" end="{_utc(end)}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
        )
        client = self._connect()
        response = client.report(cal.url, body, depth=1)
        if response.status >= 400:
            raise error.ReportError(cal.url, f"HTTP {response.status}", status=response.status)
        found: list[tuple[str, str]] = []
        for href, props in response.expand_simple_props([CalendarData()]).items():
            data = props.get(CalendarData.tag)
            if data:
                found.append((self._rel(cal, href), str(data)))
        return found

    def _parse_objects(self, cal: _Cal, objects: list[tuple[str, Any]], span: Window, entry: dict[str, Any],
                       problems: list[str]) -> list[Event]:
        """Events of the objects (recurrence expanded over ``span``); ``entry['ids']`` updated."""
        ctx = ParseContext(account=self.account, calendar_id=cal.name, label=f"{cal.name} ({self.label})",
                           user_zone=self._zone, self_addresses=self._addresses)
        ids: dict[str, list[str]] = entry.setdefault("ids", {})
        out: list[Event] = []
        for href, data in objects:
            if not data:
                continue
            raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            try:
                found, notes = parse_calendar(raw, span, ctx)
            except ProviderError as exc:
                problems.append(f"{cal.name}: skipped {href}: {exc}")
                ids.pop(href, None)
                continue
            problems.extend(f"{cal.name}: {note}" for note in notes)
            events = [replace(e, source_id=f"{cal.tag}/{e.source_id}") for e in found]
            ids[href] = sorted({e.source_id for e in events})
            out.extend(events)
        return out

    def _etags(self, cal: _Cal) -> dict[str, str]:
        response = cal.handle._query_properties([dav.GetEtag()], depth=1)
        tags: dict[str, str] = {}
        for url, props in response.expand_simple_props([dav.GetEtag()]).items():
            tag = props.get(dav.GetEtag.tag) if isinstance(props, dict) else None
            href = self._rel(cal, url)
            if tag and href:
                tags[href] = str(tag)
        return tags

    @staticmethod
    def _rel(cal: _Cal, url: Any) -> str:
        """An object's href relative to its calendar (shorter cursors)."""
        text = unquote(urlsplit(str(url)).path)
        base = unquote(urlsplit(cal.url).path)
        return text[len(base):] if text.startswith(base) else text

    @staticmethod
    def _abs(cal: _Cal, href: str) -> Any:
        return URL.objectify(urljoin(cal.url, quote(href)))

    # ---- discovery ------------------------------------------------------------------------------

    def _connect(self) -> _CountingClient:
        if self._client is None:
            s = self.settings
            password = read_password(self.account, s.password_env, s.password_file)
            self._client = _CountingClient(
                url=s.url, username=s.username, password=password, timeout=int(s.timeout_seconds),
                ssl_verify_cert=str(s.ca_bundle) if s.ca_bundle else True, enable_rfc6764=False,
                headers={"User-Agent": self._user_agent},
            )
        return self._client

    def _discover(self) -> list[_Cal]:
        if self._calendars is not None:
            return self._calendars
        client = self._connect()
        given = client.calendar(url=self.settings.url)
        kinds = given.get_properties([dav.ResourceType()]).get(dav.ResourceType.tag) or []
        if CALENDAR_TYPE in kinds:  # the URL is one calendar's own address: that calendar only
            handles: list[Any] = [given]
        else:
            found_handles = self._principal_calendars(client)
            if found_handles is None:
                raise ProviderError(f"{self.label}: no CalDAV calendars found at {self.settings.url} "
                                    "(neither a principal nor /.well-known/caldav answered)")
            handles = found_handles
        found: list[_Cal] = []
        for handle in handles:
            url = str(handle.url)
            name = handle.get_display_name() if hasattr(handle, "get_display_name") else handle.name
            name = str(name or urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or url)
            found.append(_Cal(url=url, name=name, handle=handle, tag=hashlib.sha1(url.encode()).hexdigest()[:8]))
        wanted = self.settings.calendars
        if wanted != "all":
            chosen = [c for c in found if c.name in wanted or c.url in wanted or c.url.rstrip("/") in wanted]
            missing = [w for w in wanted if not any(w in (c.name, c.url, c.url.rstrip("/")) for c in chosen)]
            if missing:
                names = ", ".join(sorted(c.name for c in found)) or "none"
                raise ProviderError(f"{self.label}: no calendar named {', '.join(map(repr, missing))} "
                                    f"(calendars: {names})")
            found = chosen
        if not found:
            raise ProviderError(f"{self.label}: the account has no calendars")
        self._calendars = found
        return found

    def _principal_calendars(self, client: _CountingClient) -> list[Any] | None:
        for url in (self.settings.url, urljoin(self.settings.url, "/.well-known/caldav")):
            try:
                if url != self.settings.url:
                    client.url = URL.objectify(url)
                    client._principal = None
                principal = client.principal()
                return list(principal.calendars())
            except error.AuthorizationError:
                raise
            except (error.DAVError, KeyError, ValueError, AttributeError) as exc:
                log.debug("%s: no principal at %s (%s)", self.label, url, exc)
        client.url = URL.objectify(self.settings.url)
        return None

    def _forget(self) -> None:
        client, self._client = self._client, None
        self._calendars = None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing must not fail the pass
                pass


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _short(text: object) -> str:
    return str(text).splitlines()[0][:200] if str(text) else "no details"


__all__ = ["PROVIDER", "CaldavSettings", "CaldavSource", "open_calendar"]
