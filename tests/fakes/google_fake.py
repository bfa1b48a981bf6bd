"""A loopback fake of Google Calendar v3, Gmail v1 and Google's OAuth endpoints, for tests.

It follows the discovery documents bundled with google-api-python-client: method paths, HTTP
verbs, query parameters (unknown, mistyped, out-of-range or repeated-when-not-repeatable ones are
rejected with 400), per-method OAuth scopes (403 ``insufficientPermissions``), Google's error JSON,
``nextPageToken``/``nextSyncToken`` only on the last page, 410 ``fullSyncRequired``, 400 when
``syncToken`` is combined with a forbidden parameter, base64url ``raw`` messages, and
``payload.headers`` in ``metadata`` format. The OAuth side has an authorization endpoint (the
"browser" step: it redirects to the app's loopback redirect URI with a code), and a token endpoint
(authorization code with PKCE S256, refresh tokens, ``invalid_grant``).

State is in memory and seeded by the test; every request is recorded (see :meth:`GoogleFake.count`),
and faults can be queued per route: an HTTP error with an optional Retry-After, a connection reset
(TCP RST, nothing processed), or a delay before the (already processed) answer is written, to provoke
client timeouts. Standard library only.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import googleapiclient

_DOCS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
ALL_SCOPES = (CALENDAR_READONLY, GMAIL_COMPOSE, GMAIL_READONLY)
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)
# Parameters that cannot be sent with syncToken (calendar.v3.json, events.list syncToken description).
_SYNC_FORBIDDEN = ("iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin",
                   "timeMax", "updatedMin")
_PAGING = {"pageToken", "syncToken"}


class ApiError(Exception):
    """An error answer: status, Google's error JSON, extra headers."""

    def __init__(self, code: int, message: str, reason: str, *, domain: str = "global",
                 headers: dict[str, str] | None = None, status: str | bool | None = None,
                 details: list[Any] | None = None) -> None:
        super().__init__(message)
        error: dict[str, Any] = {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
        }
        if status is not False:
            error["status"] = status or _STATUS.get(code, "UNKNOWN")
        if details:
            error["details"] = details
        self.code = code
        self.body = json.dumps({"error": error}).encode()
        self.headers = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}


class OAuthError(Exception):
    """An OAuth token-endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.body = json.dumps({"error": error, "error_description": description}).encode()


# ---- discovery-driven routing and parameter checks ---------------------------------------------


def _load(name: str) -> dict[str, Any]:
    return json.loads((_DOCS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _methods(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack = [doc]
    while stack:
        node = stack.pop()
        for method in (node.get("methods") or {}).values():
            found[method["id"]] = method
        stack.extend((node.get("resources") or {}).values())
    return found


@dataclass(frozen=True)
class Route:
    name: str  # short name used for counting and faults, e.g. "events.list"
    http_method: str
    regex: re.Pattern[str]
    spec: dict[str, Any]
    global_params: frozenset[str]


def _routes() -> list[Route]:
    cal, gmail = _load("calendar.v3.json"), _load("gmail.v1.json")
    wanted = {
        "calendar.calendarList.list": "calendarList.list",
        "calendar.events.list": "events.list",
        "gmail.users.drafts.send": "drafts.send",
        "gmail.users.drafts.create": "drafts.create",
        "gmail.users.drafts.list": "drafts.list",
        "gmail.users.drafts.get": "drafts.get",
        "gmail.users.drafts.update": "drafts.update",
        "gmail.users.drafts.delete": "drafts.delete",
        "gmail.users.messages.send": "messages.send",
        "gmail.users.messages.list": "messages.list",
        "gmail.users.messages.get": "messages.get",
        "gmail.users.threads.get": "threads.get",
    }
    routes = []
    for doc in (cal, gmail):
        prefix = "/" + doc["servicePath"]
        table = _methods(doc)
        for method_id, short in wanted.items():
            spec = table.get(method_id)
            if spec is None:
                continue
            pattern = re.sub(r"\{\+?(\w+)\}", r"(?P<\1>[^/]+)", re.escape(prefix + spec["path"]).replace(r"\{", "{")
                             .replace(r"\}", "}"))
            routes.append(Route(short, spec["httpMethod"], re.compile(f"^{pattern}$"), spec,
                                frozenset(doc.get("parameters", {}))))
    # literal paths (drafts/send) before templated ones (drafts/{id})
    routes.sort(key=lambda r: r.regex.pattern.count("(?P"))
    return routes


def _check_params(route: Route, query: dict[str, list[str]]) -> dict[str, Any]:
    """Validate query parameters against the discovery document; return typed values."""
    spec = route.spec.get("parameters", {})
    values: dict[str, Any] = {}
    for name, raw in query.items():
        if name in route.global_params:
            continue
        p = spec.get(name)
        if p is None or p.get("location") != "query":
            raise ApiError(400, f"Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query "
                                "parameter. Field '" + name + "' could not be found in request message.",
                           "badRequest")
        if len(raw) > 1 and not p.get("repeated"):
            raise ApiError(400, f"Invalid value for parameter {name}: given more than once", "invalidParameter")
        typed = [_typed(name, p, v) for v in raw]
        values[name] = typed if p.get("repeated") else typed[0]
    return values


def _typed(name: str, p: dict[str, Any], value: str) -> Any:
    kind = p.get("type")
    if kind == "boolean":
        if value not in ("true", "false"):
            raise ApiError(400, f"Invalid value '{value}' for boolean parameter {name}", "invalidBoolean")
        return value == "true"
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            raise ApiError(400, f"Invalid value '{value}'. Values must match the following regular expression: "
                                "'-?\\d+'", "invalidParameter")
        number = int(value)
        if "minimum" in p and number < int(p["minimum"]):
            raise ApiError(400, f"Invalid value '{value}'. Values must be within the range: "
                                f"[{p['minimum']}, {p.get('maximum', '2147483647')}]", "invalidParameter")
        if "maximum" in p and number > int(p["maximum"]):
            raise ApiError(400, f"Invalid value '{value}' for {name}", "invalidParameter")
        return number
    if "enum" in p and value not in p["enum"]:
        raise ApiError(400, f"Invalid value at '{name}' ({value})", "invalidParameter")
    return value


# ---- data ---------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FakeCalendar:
    id: str
    summary: str
    time_zone: str = "UTC"
    primary: bool = False
    access_role: str = "owner"
    hidden: bool = False
    deleted: bool = False
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)  # event id -> change number


@dataclass
class FakeMessage:
    id: str
    thread_id: str
    labels: list[str]
    raw: bytes
    internal_date: int
    history_id: int

    @property
    def parsed(self) -> Message:
        return BytesParser(policy=policy.default).parsebytes(self.raw)


@dataclass
class Recorded:
    method: str
    route: str
    path: str
    query: dict[str, list[str]]
    status: int = 0
    body: bytes = b""


@dataclass
class Fault:
    route: str  # a route name, "token", "authorize", or "*"
    times: int
    status: int = 0
    reason: str = ""
    message: str = ""
    retry_after: str | None = None
    delay: float = 0.0
    reset: bool = False  # drop the connection (TCP RST) instead of answering
    body: bytes | None = None  # answer with this body (and ``status``) instead of an error JSON


def _normal_subject(subject: str) -> str:
    text = subject or ""
    while True:
        new = re.sub(r"^\s*(re|fw|fwd|aw|sv)\s*:\s*", "", text, flags=re.IGNORECASE)
        if new == text:
            break
        text = new
    return re.sub(r"\s+", " ", text).strip().casefold()


def _b64url_decode(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_\-]*={0,2}", text):
        raise ApiError(400, f"Invalid value for ByteString: {what} must be base64url", "invalidArgument")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise ApiError(400, f"Invalid value for ByteString: {what}", "invalidArgument") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


class GoogleFake:
    """The fake server. Use as a context manager; seed with the ``add_*``/``put_*`` helpers."""

    def __init__(self, *, tls_ca: Any = None, page_limit: int | None = None) -> None:
        self.lock = threading.RLock()
        self.routes = _routes()
        self.calendars: dict[str, FakeCalendar] = {}
        self.change = 0
        self.sync_tokens: dict[str, dict[str, Any]] = {}
        self.page_snapshots: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, FakeMessage] = {}
        self.drafts: dict[str, str] = {}  # draft id -> message id
        self.history = 1000
        self.clients: dict[str, str] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.consent_scopes: set[str] | None = None  # what the "user" ticks; None = everything asked
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.page_limit = page_limit  # force short pages (Google may return fewer than maxResults)
        self.access_token_lifetime = 3599
        self._tls_ca = tls_ca
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> GoogleFake:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        if self._tls_ca is not None:
            cert = self._tls_ca.issue_cert("127.0.0.1", "localhost")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GoogleFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        scheme = "https" if self._tls_ca is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_endpoint(self) -> str:
        return self.url + "/"

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    @property
    def auth_uri(self) -> str:
        return self.url + "/o/oauth2/auth"

    # -- observation

    def count(self, route: str | None = None, *, status: int | None = None) -> int:
        """How many requests reached ``route`` (all routes when None), optionally with a status."""
        with self.lock:
            return sum(1 for r in self.requests
                       if (route is None or r.route == route) and (status is None or r.status == status))

    def routes_called(self) -> list[str]:
        with self.lock:
            return [r.route for r in self.requests]

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- faults

    def fail(self, route: str, status: int, *, reason: str = "", message: str = "", retry_after: str | None = None,
             times: int = 1, body: bytes | None = None) -> None:
        """Answer the next ``times`` requests to ``route`` with an error (or ``body``), unprocessed."""
        with self.lock:
            self.faults.append(Fault(route, times, status=status, reason=reason, message=message,
                                     retry_after=retry_after, body=body))

    def reset(self, route: str, *, times: int = 1) -> None:
        """Reset the connection (TCP RST, no answer) for the next ``times`` requests to ``route``, unprocessed."""
        with self.lock:
            self.faults.append(Fault(route, times, reset=True))

    def delay(self, route: str, seconds: float, *, times: int = 1) -> None:
        """Process the next ``times`` requests to ``route`` normally but answer only after ``seconds``."""
        with self.lock:
            self.faults.append(Fault(route, times, delay=seconds))

    def _take_fault(self, route: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.route in (route, "*"):
                    fault.times -= 1
                    return fault
            return None

    # -- OAuth seeding

    def add_client(self, client_id: str = "salvage-test.apps.googleusercontent.com",
                   secret: str = "test-client-secret") -> tuple[str, str]:
        with self.lock:
            self.clients[client_id] = secret
        return client_id, secret

    def client_secrets(self, path: Path, client_id: str | None = None) -> Path:
        """Write a Desktop-app client file like the one Google Cloud's console downloads."""
        if client_id is None:
            client_id, secret = next(iter(self.clients.items())) if self.clients else self.add_client()
        else:
            secret = self.clients[client_id]
        path.write_text(json.dumps({"installed": {
            "client_id": client_id,
            "project_id": "salvage-test",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": secret,
            "redirect_uris": ["http://localhost"],
        }}), encoding="utf-8")
        return path

    def issue_refresh_token(self, scopes: Iterable[str] = ALL_SCOPES, client_id: str | None = None) -> str:
        with self.lock:
            if client_id is None:
                client_id = next(iter(self.clients)) if self.clients else self.add_client()[0]
            token = "1//rt-" + secrets.token_urlsafe(24)
            self.refresh_tokens[token] = {"client_id": client_id, "scopes": list(scopes), "revoked": False}
            return token

    def issue_access_token(self, scopes: Iterable[str] = ALL_SCOPES, lifetime: int | None = None) -> str:
        with self.lock:
            token = "ya29.at-" + secrets.token_urlsafe(24)
            expires = time.time() + (lifetime if lifetime is not None else self.access_token_lifetime)
            self.access_tokens[token] = {"scopes": set(scopes), "expires": expires}
            return token

    def token_file(self, path: Path, *, scopes: Iterable[str] = ALL_SCOPES, valid_access: bool = False) -> Path:
        """Write an authorized-user JSON (as `salvage auth` saves it) with a fresh refresh token."""
        scopes = list(scopes)
        client_id, secret = next(iter(self.clients.items())) if self.clients else self.add_client()
        info: dict[str, Any] = {
            "refresh_token": self.issue_refresh_token(scopes, client_id),
            "token_uri": "https://oauth2.googleapis.com/token",
            "client_id": client_id,
            "client_secret": secret,
            "scopes": scopes,
        }
        if valid_access:
            info["token"] = self.issue_access_token(scopes)
            info["expiry"] = (datetime.now(timezone.utc) + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    def revoke_all(self) -> None:
        """The user removed the app's access: every refresh and access token stops working."""
        with self.lock:
            for info in self.refresh_tokens.values():
                info["revoked"] = True
            self.access_tokens.clear()

    # -- calendar seeding

    def add_calendar(self, calendar_id: str, summary: str = "", *, time_zone: str = "UTC", primary: bool = False,
                     access_role: str = "owner", hidden: bool = False) -> FakeCalendar:
        with self.lock:
            cal = FakeCalendar(calendar_id, summary or calendar_id, time_zone, primary, access_role, hidden)
            self.calendars[calendar_id] = cal
            return cal

    def _calendar(self, calendar_id: str) -> FakeCalendar:
        if calendar_id == "primary":
            for cal in self.calendars.values():
                if cal.primary:
                    return cal
        found = self.calendars.get(calendar_id)
        if found is None or found.deleted:
            raise ApiError(404, "Not Found", "notFound")
        return found

    def put_event(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace an event (an instance when it has ``recurringEventId``)."""
        with self.lock:
            cal = self._calendar(calendar_id)
            item = copy.deepcopy(event)
            item.setdefault("id", secrets.token_hex(13))
            now = datetime.now(timezone.utc)
            old = cal.events.get(item["id"])
            item.setdefault("status", "confirmed")
            item.setdefault("iCalUID", (item.get("recurringEventId") or item["id"]) + "@google.com")
            item.setdefault("created", old["created"] if old and "created" in old else _iso(now))
            item["updated"] = _iso(now)
            item.setdefault("htmlLink", f"https://www.google.com/calendar/event?eid={item['id']}")
            item.setdefault("sequence", 0)
            item["kind"] = "calendar#event"
            self.change += 1
            item["etag"] = f'"{self.change}"'
            cal.events[item["id"]] = item
            cal.seq[item["id"]] = self.change
            return item

    def cancel_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event / cancel an instance; sync deltas then report it ``cancelled``."""
        with self.lock:
            cal = self._calendar(calendar_id)
            old = cal.events[event_id]
            keep: dict[str, Any] = {k: old[k] for k in ("id", "recurringEventId", "originalStartTime", "iCalUID")
                                    if k in old}
            self.change += 1
            cal.events[event_id] = {"kind": "calendar#event", "etag": f'"{self.change}"', "status": "cancelled",
                                    **keep}
            cal.seq[event_id] = self.change

    def delete_series(self, calendar_id: str, master_id: str) -> None:
        """Delete a whole series the way a delta may show it: one cancelled master, instances gone."""
        with self.lock:
            cal = self._calendar(calendar_id)
            for eid in [e for e, item in cal.events.items() if item.get("recurringEventId") == master_id]:
                del cal.events[eid]
                del cal.seq[eid]
            self.change += 1
            cal.events[master_id] = {"kind": "calendar#event", "etag": f'"{self.change}"', "id": master_id,
                                     "status": "cancelled"}
            cal.seq[master_id] = self.change

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far now answers 410 (e.g. ACL change, age)."""
        with self.lock:
            for info in self.sync_tokens.values():
                info["expired"] = True

    # -- mail seeding

    def _next_id(self) -> str:
        return secrets.token_hex(8)

    def add_message(self, raw: bytes, *, labels: Iterable[str] = ("INBOX",), thread_id: str | None = None,
                    internal_date: int | None = None) -> FakeMessage:
        with self.lock:
            mid = self._next_id()
            self.history += 1
            msg = FakeMessage(mid, thread_id or mid, list(labels), raw,
                              internal_date if internal_date is not None else _now_ms(), self.history)
            self.messages[mid] = msg
            return msg

    def add_invitation(self, *, organizer: str, to: str, subject: str, uid: str, when: str = "",
                       message_id: str | None = None, internal_date: int | None = None,
                       text: str | None = None, html: str | None = None) -> FakeMessage:
        """An invitation email as calendars send them: text, an inline text/calendar part, invite.ics."""
        ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
               f"UID:{uid}\r\nSUMMARY:{subject}\r\n{when}END:VEVENT\r\nEND:VCALENDAR\r\n")
        msg = EmailMessage()
        msg["From"] = organizer
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = message_id or make_msgid(domain="calendar.example")
        if html is not None:  # an HTML-only invitation body
            msg.set_content(html, subtype="html")
        else:
            msg.set_content(text if text is not None else f"You have been invited to {subject}.")
        msg.add_alternative(ics, subtype="calendar", params={"method": "REQUEST"})
        msg.add_attachment(ics.encode(), maintype="application", subtype="ics", filename="invite.ics")
        return self.add_message(msg.as_bytes(), internal_date=internal_date)

    def draft_message(self, draft_id: str) -> FakeMessage:
        with self.lock:
            return self.messages[self.drafts[draft_id]]

    def user_send(self, draft_id: str) -> FakeMessage:
        """The user pressed Send: the draft goes, a new SENT message with a new id appears in its thread."""
        with self.lock:
            old = self.messages.pop(self.drafts.pop(draft_id))
            return self.add_message(old.raw, labels=("SENT",), thread_id=old.thread_id)

    def user_discard(self, draft_id: str) -> None:
        """The user discarded the draft."""
        with self.lock:
            self.messages.pop(self.drafts.pop(draft_id))  # a thread disappears with its last message

    def user_edit(self, draft_id: str, new_text: str) -> None:
        """The user edited the body in a mail client (which rewrites the message: new message id)."""
        with self.lock:
            old = self.messages.pop(self.drafts[draft_id])
            parsed = old.parsed
            msg = EmailMessage()
            for name in ("From", "To", "Subject", "In-Reply-To", "References"):
                if parsed[name]:
                    msg[name] = str(parsed[name])
            msg.set_content(new_text)
            new = self.add_message(msg.as_bytes(), labels=("DRAFT",), thread_id=old.thread_id)
            self.drafts[draft_id] = new.id

    # -- request handling

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes, float]:
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        route, match = self._route(method, split.path)
        record = Recorded(method, route.name if route else _oauth_route(split.path), split.path, query, body=body)
        with self.lock:
            self.requests.append(record)
        fault = self._take_fault(record.route)
        delay = fault.delay if fault is not None else 0.0
        if fault is not None and fault.reset:
            return 0, {}, b"", 0.0  # status 0: the handler resets the connection
        try:
            if fault is not None and fault.body is not None:
                record.status = fault.status
                return fault.status, {"Content-Type": "text/html"}, fault.body, delay
            if fault is not None and fault.status:
                raise self._fault_error(fault, record.route)
            if record.route == "token":
                status, out_headers, out = self._token(method, headers, body)
            elif record.route == "authorize":
                status, out_headers, out = self._authorize(query)
            elif route is None or match is None:
                status, out_headers, out = 404, {"Content-Type": "text/html"}, b"<html>404 Not Found</html>"
            else:
                scopes = self._authenticate(headers)
                allowed = set(route.spec.get("scopes") or ())
                if not scopes & allowed:
                    raise ApiError(403, "Request had insufficient authentication scopes.", "insufficientPermissions",
                                   details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                             "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                                             "domain": "googleapis.com"}])
                params = _check_params(route, query)
                path_params = {k: unquote(v) for k, v in match.groupdict().items()}
                with self.lock:
                    result = getattr(self, "_api_" + route.name.replace(".", "_"))(path_params, params, body,
                                                                                   scopes)
                if result is None:
                    status, out_headers, out = 204, {}, b""
                else:
                    status, out_headers = 200, {"Content-Type": "application/json; charset=UTF-8"}
                    out = json.dumps(result).encode()
        except ApiError as exc:
            status, out_headers, out = exc.code, exc.headers, exc.body
        except OAuthError as exc:
            status, out_headers, out = exc.code, {"Content-Type": "application/json; charset=utf-8"}, exc.body
        record.status = status
        return status, out_headers, out, delay

    def _route(self, method: str, path: str) -> tuple[Route | None, re.Match[str] | None]:
        for route in self.routes:
            m = route.regex.match(path)
            if m and route.http_method == method:
                return route, m
        return None, None

    def _fault_error(self, fault: Fault, route: str) -> Exception:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if route == "token":
            return OAuthError(fault.status, fault.reason or "internal_failure", fault.message or "Backend error")
        defaults = {429: ("rateLimitExceeded", "Rate Limit Exceeded"), 500: ("backendError", "Backend Error"),
                    503: ("backendError", "Service unavailable"), 410: ("fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required."),
                    403: ("rateLimitExceeded", "Rate Limit Exceeded")}
        reason, message = defaults.get(fault.status, ("backendError", "Error"))
        domain = "usageLimits" if (fault.reason or reason) in ("rateLimitExceeded", "userRateLimitExceeded",
                                                                 "quotaExceeded") else "global"
        return ApiError(fault.status, fault.message or message, fault.reason or reason, domain=domain,
                        headers=headers)

    def _authenticate(self, headers: Any) -> set[str]:
        value = headers.get("Authorization", "")
        token = value[7:] if value.startswith("Bearer ") else ""
        with self.lock:
            info = self.access_tokens.get(token)
            if info is None or info["expires"] < time.time():
                raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                    "token, login cookie or other valid authentication credential.", "authError",
                               headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
            return set(info["scopes"])

    # -- OAuth endpoints

    def _authorize(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        q = {k: v[0] for k, v in query.items()}
        client_id = q.get("client_id", "")
        if client_id not in self.clients:
            return 400, {"Content-Type": "text/plain"}, b"Error 401: invalid_client"
        redirect = q.get("redirect_uri", "")
        if not re.fullmatch(r"http://(localhost|127\.0\.0\.1|\[::1\]):\d+/?", redirect):
            return 400, {"Content-Type": "text/plain"}, b"Error 400: redirect_uri_mismatch"
        if q.get("response_type") != "code":
            return 400, {"Content-Type": "text/plain"}, b"Error 400: unsupported_response_type"
        asked = q.get("scope", "").split()
        if not asked:
            return 400, {"Content-Type": "text/plain"}, b"Error 400: invalid_request (Missing required parameter: scope)"
        if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
            return 400, {"Content-Type": "text/plain"}, b"Error 400: invalid_request (code_challenge_method)"
        granted = [s for s in asked if self.consent_scopes is None or s in self.consent_scopes]
        code = "4/0A" + secrets.token_urlsafe(30)
        with self.lock:
            self.codes[code] = {"client_id": client_id, "redirect_uri": redirect, "scopes": granted,
                                "challenge": q.get("code_challenge"), "offline": q.get("access_type") == "offline"}
        params = {"state": q.get("state", ""), "code": code, "scope": " ".join(granted)}
        return 302, {"Location": f"{redirect}?{urlencode(params)}"}, b""

    def _token(self, method: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if method != "POST":
            raise OAuthError(405, "invalid_request", "Method not allowed")
        if "application/x-www-form-urlencoded" not in headers.get("Content-Type", ""):
            raise OAuthError(400, "invalid_request", "Invalid content type")
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        with self.lock:
            if not client_id or self.clients.get(client_id) != secret:
                raise OAuthError(401, "invalid_client", "Unauthorized")
            grant = form.get("grant_type")
            if grant == "authorization_code":
                code = self.codes.pop(form.get("code", ""), None)
                if code is None or code["client_id"] != client_id:
                    raise OAuthError(400, "invalid_grant", "Malformed auth code.")
                if form.get("redirect_uri") != code["redirect_uri"]:
                    raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
                if code["challenge"]:
                    verifier = form.get("code_verifier", "")
                    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                    if digest.decode() != code["challenge"]:
                        raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
                scopes = code["scopes"]
                out = {"access_token": self.issue_access_token(scopes), "expires_in": self.access_token_lifetime,
                       "scope": " ".join(scopes), "token_type": "Bearer"}
                if code["offline"]:
                    out["refresh_token"] = self.issue_refresh_token(scopes, client_id)
                return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(out).encode()
            if grant == "refresh_token":
                info = self.refresh_tokens.get(form.get("refresh_token", ""))
                if info is None or info["revoked"] or info["client_id"] != client_id:
                    raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
                scopes = info["scopes"]
                if form.get("scope"):
                    asked = form["scope"].split()
                    if not set(asked) <= set(scopes):
                        raise OAuthError(400, "invalid_scope", "Some requested scopes were invalid.")
                    scopes = asked
                out = {"access_token": self.issue_access_token(scopes), "expires_in": self.access_token_lifetime,
                       "scope": " ".join(scopes), "token_type": "Bearer"}
                return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(out).encode()
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    # -- Calendar

    def _api_calendarList_list(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        entries = []
        for cal in self.calendars.values():
            if cal.deleted and not p.get("showDeleted"):
                continue
            if cal.hidden and not p.get("showHidden"):
                continue
            entry: dict[str, Any] = {"kind": "calendar#calendarListEntry", "etag": '"1"', "id": cal.id, "summary": cal.summary,
                     "timeZone": cal.time_zone, "accessRole": cal.access_role, "defaultReminders": []}
            if cal.primary:
                entry["primary"] = True
                entry["selected"] = True
            if cal.hidden:
                entry["hidden"] = True
            entries.append(entry)
        return self._page(entries, p, "items", limit=min(p.get("maxResults", 100), 250),
                          extra={"kind": "calendar#calendarList", "etag": '"list"'}, sync_token="cl-sync")

    def _api_events_list(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        cal = self._calendar(path["calendarId"])
        limit = min(p.get("maxResults", 250), 2500)
        if self.page_limit:
            limit = min(limit, self.page_limit)
        # What a sync token remembers: the parameters that must stay identical in incremental syncs.
        filters = {k: v for k, v in p.items() if k not in _PAGING and k != "maxResults" and k not in _SYNC_FORBIDDEN}
        if p.get("pageToken"):
            snap = self.page_snapshots.get(p["pageToken"])
            if snap is None or snap["calendar"] != cal.id:
                raise ApiError(400, "Invalid page token value.", "invalid")
            return self._events_page(cal, snap["items"], snap["offset"], limit, snap["sync_seq"], snap["params"])
        if p.get("orderBy") == "startTime" and not p.get("singleEvents"):
            raise ApiError(400, "The requested ordering is not available for the particular query.", "badRequest")
        if "syncToken" in p:
            bad = [k for k in _SYNC_FORBIDDEN if k in p]
            if bad or p.get("showDeleted") is False:
                raise ApiError(400, "Invalid parameters: syncToken cannot be used together with "
                               + ", ".join(bad or ["showDeleted=false"]) + ".", "invalid")
            info = self.sync_tokens.get(p["syncToken"])
            if info is None or info["expired"] or info["calendar"] != cal.id:
                raise ApiError(410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired",
                               status=False)
            if info["params"] != filters:
                raise ApiError(400, "The parameters of an incremental sync must match the initial full sync "
                                    f"(expected {info['params']}, got {filters}).", "invalid")
            since = info["seq"]
            ids = sorted((e for e, s in cal.seq.items() if s > since), key=lambda e: cal.seq[e])
            items = [copy.deepcopy(cal.events[e]) for e in ids]
            items = [i for i in items if self._matches_kind(i, p)]
        else:
            lo = self._time_param(p, "timeMin")
            hi = self._time_param(p, "timeMax")
            if lo is not None and hi is not None and lo >= hi:
                raise ApiError(400, "The specified time range is empty.", "timeRangeEmpty")
            items = []
            for eid in sorted(cal.events, key=lambda e: cal.seq[e]):
                item = cal.events[eid]
                if item.get("status") == "cancelled" and not p.get("showDeleted"):
                    continue
                if not self._matches_kind(item, p):
                    continue
                if item.get("status") != "cancelled" and not self._in_range(item, lo, hi, cal):
                    continue
                items.append(copy.deepcopy(item))
            if p.get("orderBy") == "startTime":
                items.sort(key=lambda i: self._start(i, cal))
        return self._events_page(cal, items, 0, limit, self.change, filters)

    def _matches_kind(self, item: dict[str, Any], p: dict[str, Any]) -> bool:
        single = p.get("singleEvents", False)
        if single and item.get("recurrence"):
            return False  # masters are omitted when expanding
        if not single and item.get("recurringEventId") and item.get("status") != "cancelled":
            return False  # (simplified) unexpanded listing shows masters, not instances
        types = p.get("eventTypes")
        return not types or item.get("eventType", "default") in types

    def _events_page(self, cal: FakeCalendar, items: list[dict[str, Any]], offset: int, limit: int, sync_seq: int,
                     params: dict[str, Any]) -> dict[str, Any]:
        page = items[offset: offset + limit]
        out: dict[str, Any] = {
            "kind": "calendar#events", "etag": f'"{sync_seq}"', "summary": cal.summary, "description": "",
            "updated": _iso(datetime.now(timezone.utc)), "timeZone": cal.time_zone, "accessRole": cal.access_role,
            "defaultReminders": [], "items": page,
        }
        if offset + limit < len(items):
            token = "pt-" + secrets.token_urlsafe(12)
            self.page_snapshots[token] = {"calendar": cal.id, "items": items, "offset": offset + limit,
                                          "sync_seq": sync_seq, "params": params}
            out["nextPageToken"] = token
        else:
            token = "st-" + secrets.token_urlsafe(12)
            self.sync_tokens[token] = {"calendar": cal.id, "seq": sync_seq, "params": params, "expired": False}
            out["nextSyncToken"] = token
        return out

    def _time_param(self, p: dict[str, Any], name: str) -> datetime | None:
        value = p.get(name)
        if value is None:
            return None
        if not _RFC3339.match(value):
            raise ApiError(400, "Bad Request", "badRequest")
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))

    def _bound(self, when: dict[str, Any], cal: FakeCalendar) -> datetime:
        if "dateTime" in when:
            value = datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00"))
            if value.utcoffset() is None:
                value = value.replace(tzinfo=ZoneInfo(when.get("timeZone") or cal.time_zone))
            return value
        day = date.fromisoformat(when["date"])
        return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(cal.time_zone))

    def _start(self, item: dict[str, Any], cal: FakeCalendar) -> datetime:
        return self._bound(item["start"], cal)

    def _in_range(self, item: dict[str, Any], lo: datetime | None, hi: datetime | None, cal: FakeCalendar) -> bool:
        try:
            start, end = self._bound(item["start"], cal), self._bound(item["end"], cal)
        except (KeyError, ValueError, TypeError):
            return True  # malformed seeds are served as they are, for the client to cope with
        return (lo is None or end > lo) and (hi is None or start < hi)

    def _page(self, items: list[Any], p: dict[str, Any], key: str, *, limit: int, extra: dict[str, Any],
              sync_token: str | None = None) -> dict[str, Any]:
        offset = 0
        if p.get("pageToken"):
            try:
                offset = int(p["pageToken"].removeprefix("off-"))
            except ValueError:
                raise ApiError(400, "Invalid page token value.", "invalid") from None
        out = dict(extra)
        page = items[offset: offset + limit]
        if page or key == "items":
            out[key] = page
        if offset + limit < len(items):
            out["nextPageToken"] = f"off-{offset + limit}"
        elif sync_token:
            out["nextSyncToken"] = sync_token
        return out

    # -- Gmail

    def _user(self, path: dict[str, str]) -> None:
        if path.get("userId") not in ("me", "me@example.com"):
            raise ApiError(403, "Delegation denied for me@example.com", "forbidden")

    def _json_body(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Invalid JSON payload received.", "parseError")
        return data

    def _store_draft_message(self, body: dict[str, Any]) -> FakeMessage:
        message = body.get("message")
        if not isinstance(message, dict) or not message.get("raw"):
            raise ApiError(400, "Missing draft message", "invalidArgument")
        raw = _b64url_decode(message["raw"], "message.raw")
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        if not parsed.keys():
            raise ApiError(400, "Invalid raw message: no headers", "invalidArgument")
        thread_id = None
        wanted = message.get("threadId")
        if wanted:
            thread = [m for m in self.messages.values() if m.thread_id == wanted]
            if not thread:
                raise ApiError(404, "Requested entity was not found.", "notFound")
            # Gmail keeps the message in the thread only when the references and subject agree.
            ids = {str(m.parsed["Message-ID"] or "").strip() for m in thread}
            refs = set(str(parsed["References"] or "").split()) | {str(parsed["In-Reply-To"] or "").strip()}
            subjects = {_normal_subject(str(m.parsed["Subject"] or "")) for m in thread}
            if ids & refs and _normal_subject(str(parsed["Subject"] or "")) in subjects:
                thread_id = wanted
        self.history += 1
        mid = self._next_id()
        msg = FakeMessage(mid, thread_id or mid, ["DRAFT"], raw, _now_ms(), self.history)
        self.messages[mid] = msg
        return msg

    def _draft_json(self, draft_id: str, fmt: str = "minimal") -> dict[str, Any]:
        return {"id": draft_id, "message": self._message_json(self.messages[self.drafts[draft_id]], fmt)}

    def _message_json(self, msg: FakeMessage, fmt: str, headers: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": msg.id, "threadId": msg.thread_id, "labelIds": list(msg.labels)}
        if fmt == "ref":
            return {"id": msg.id, "threadId": msg.thread_id}
        parsed = msg.parsed
        body_text = ""
        part = parsed.get_body(preferencelist=("plain",)) if isinstance(parsed, EmailMessage) else None
        if part is not None:
            body_text = str(part.get_content())
        out.update({"snippet": body_text[:100].replace("\n", " "), "sizeEstimate": len(msg.raw),
                    "historyId": str(msg.history_id), "internalDate": str(msg.internal_date)})
        if fmt == "raw":
            out["raw"] = _b64url(msg.raw)
        elif fmt == "metadata":
            wanted = {h.lower() for h in headers} if headers else None
            out["payload"] = {"partId": "", "mimeType": parsed.get_content_type(), "filename": "",
                              "headers": [{"name": k, "value": str(v)} for k, v in parsed.items()
                                          if wanted is None or k.lower() in wanted]}
        elif fmt == "full":
            out["payload"] = _payload(parsed, "")
        return out

    def _api_drafts_create(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        msg = self._store_draft_message(self._json_body(body))
        draft_id = "r" + str(secrets.randbelow(10**18))
        self.drafts[draft_id] = msg.id
        return {"id": draft_id, "message": {"id": msg.id, "threadId": msg.thread_id, "labelIds": ["DRAFT"]}}

    def _missing_draft(self, draft_id: str) -> None:
        if draft_id not in self.drafts:
            raise ApiError(404, "Requested entity was not found.", "notFound")

    def _api_drafts_get(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        self._missing_draft(path["id"])
        return self._draft_json(path["id"], p.get("format", "full"))

    def _api_drafts_update(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        self._missing_draft(path["id"])
        data = self._json_body(body)
        if data.get("id") not in (None, path["id"]):
            raise ApiError(400, "Draft id in the body does not match the path", "invalidArgument")
        msg = self._store_draft_message(data)
        self.messages.pop(self.drafts[path["id"]], None)
        self.drafts[path["id"]] = msg.id
        return {"id": path["id"], "message": {"id": msg.id, "threadId": msg.thread_id, "labelIds": ["DRAFT"]}}

    def _api_drafts_delete(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        self._missing_draft(path["id"])
        self.messages.pop(self.drafts.pop(path["id"]), None)
        return None

    def _api_drafts_list(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        ids = sorted(self.drafts, key=lambda d: -self.messages[self.drafts[d]].history_id)
        if p.get("q"):
            ids = [d for d in ids if _search(self.messages[self.drafts[d]], p["q"])]
        items = [{"id": d, "message": self._message_json(self.messages[self.drafts[d]], "ref")} for d in ids]
        return self._page(items, p, "drafts", limit=min(p.get("maxResults", 100), 500),
                          extra={"resultSizeEstimate": len(items)})

    def _api_drafts_send(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        raise ApiError(400, "This fake records but refuses sending; Salvage must never send.", "failedPrecondition")

    def _api_messages_send(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        raise ApiError(400, "This fake records but refuses sending; Salvage must never send.", "failedPrecondition")

    def _api_messages_list(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        found = sorted(self.messages.values(), key=lambda m: (-m.internal_date, -m.history_id))
        if not p.get("includeSpamTrash"):
            found = [m for m in found if not {"SPAM", "TRASH"} & set(m.labels)]
        for label in p.get("labelIds") or ():
            found = [m for m in found if label in m.labels]
        if p.get("q"):
            found = [m for m in found if _search(m, p["q"])]
        items = [self._message_json(m, "ref") for m in found]
        return self._page(items, p, "messages", limit=min(p.get("maxResults", 100), 500),
                          extra={"resultSizeEstimate": len(items)})

    def _api_messages_get(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        msg = self.messages.get(path["id"])
        if msg is None:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        return self._message_json(msg, p.get("format", "full"), p.get("metadataHeaders"))

    def _api_threads_get(self, path: dict[str, str], p: dict[str, Any], body: bytes, scopes: set[str]) -> Any:
        self._user(path)
        msgs = sorted((m for m in self.messages.values() if m.thread_id == path["id"]), key=lambda m: m.history_id)
        if not msgs:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        fmt = p.get("format", "full")
        return {"id": path["id"], "historyId": str(msgs[-1].history_id),
                "messages": [self._message_json(m, fmt, p.get("metadataHeaders")) for m in msgs]}


def _oauth_route(path: str) -> str:
    if path.rstrip("/") == "/token":
        return "token"
    if path.startswith("/o/oauth2/auth"):
        return "authorize"
    return "unknown"


def _payload(part: Message, part_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"partId": part_id, "mimeType": part.get_content_type(),
                           "filename": part.get_filename() or "",
                           "headers": [{"name": k, "value": str(v)} for k, v in part.items()]}
    if part.is_multipart():
        out["body"] = {"size": 0}
        out["parts"] = [_payload(sub, f"{part_id}.{i}".lstrip(".")) for i, sub in
                        enumerate(part.get_payload())]  # type: ignore[union-attr]
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            out["body"] = {"attachmentId": "att-" + hashlib.sha1(data).hexdigest(), "size": len(data)}
        else:
            out["body"] = {"size": len(data), "data": _b64url(data)}
    return out


_TOKEN = re.compile(r'(-?)(?:(\w+):)?("[^"]*"|\S+)')


def _search(msg: FakeMessage, q: str) -> bool:
    """A subset of Gmail search: from: to: subject: filename: has:attachment in: is: after: before:
    newer_than: rfc822msgid: and quoted or bare words (subject and body text); ``-`` negates."""
    parsed = msg.parsed
    text_parts = []
    filenames = []
    for part in parsed.walk():
        name = part.get_filename()
        if name:
            filenames.append(name.lower())
        elif part.get_content_maintype() == "text" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            text_parts.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else "")
    subject = str(parsed["Subject"] or "")
    haystack = (subject + "\n" + "\n".join(text_parts)).casefold()

    def addrs(*names: str) -> list[str]:
        values = [str(parsed[n]) for n in names if parsed[n]]
        return [a.lower() for _, a in getaddresses(values)] + [v.lower() for v in values]

    def date_value(value: str) -> float:
        if re.fullmatch(r"\d+", value):
            return float(value)
        y, m, d = (int(x) for x in re.split(r"[/-]", value))
        return datetime(y, m, d, tzinfo=timezone.utc).timestamp()

    for neg, op, arg in _TOKEN.findall(q):
        arg_text = arg.strip('"').casefold()
        op = op.lower()
        seconds = msg.internal_date / 1000
        if op == "from":
            ok = any(arg_text in a for a in addrs("From"))
        elif op == "to":
            ok = any(arg_text in a for a in addrs("To", "Cc"))
        elif op == "subject":
            ok = arg_text in subject.casefold()
        elif op == "filename":
            ok = any(f == arg_text or f.endswith("." + arg_text) for f in filenames)
        elif op == "has":
            ok = arg_text == "attachment" and bool(filenames)
        elif op in ("in", "is", "label"):
            ok = {"sent": "SENT", "drafts": "DRAFT", "draft": "DRAFT", "inbox": "INBOX",
                  "unread": "UNREAD"}.get(arg_text, arg_text.upper()) in msg.labels
        elif op == "after":
            ok = seconds > date_value(arg_text)
        elif op == "before":
            ok = seconds < date_value(arg_text)
        elif op == "newer_than":
            m = re.fullmatch(r"(\d+)([dmy])", arg_text)
            span = int(m.group(1)) * {"d": 86400, "m": 2592000, "y": 31536000}[m.group(2)] if m else 0
            ok = seconds > time.time() - span
        elif op == "rfc822msgid":
            ok = str(parsed["Message-ID"] or "").strip("<> ").casefold() == arg_text.strip("<> ")
        else:
            ok = (f"{op}:" if op else "") + arg_text in haystack
        if ok == bool(neg):
            return False
    return True


# ---- HTTP plumbing ------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: GoogleFake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    wbufsize = -1  # headers and body leave in one write (no Nagle / delayed-ACK stalls)
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, out, delay = self.server.fake.handle(self.command, self.path, self.headers, body)
        if status == 0:
            # SO_LINGER 0: close() sends a TCP RST, as a crashed proxy or load balancer would.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if out:
                self.wfile.write(out)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


def quote_id(value: str) -> str:
    """Percent-encode an id for a URL path (as the client library does)."""
    return quote(value, safe="")


# ---- test helpers -------------------------------------------------------------------------------


def config_yaml(fake: GoogleFake, state: Path, *, name: str = "g", calendars: str = "[primary]",
                read_mail: bool = True, timeout: float = 5, ca_bundle: Path | None = None,
                client_secrets: Path | None = None, email: str = "me@example.com", extra: str = "") -> str:
    """A Salvage config with one google+google account pointed at ``fake``; token in ``state``."""
    lines = [
        f"user: {{name: Alex Morgan, email: {email}, timezone: Europe/London}}",
        f"state: {{path: {state / 'state.sqlite3'}}}",
        "accounts:",
        f"  - name: {name}",
        f"    calendar: {{type: google, calendars: {calendars}}}",
        "    drafts: {type: google}",
        "    google:",
        f"      api_endpoint: {fake.api_endpoint}",
        f"      token_uri: {fake.token_uri}",
        f"      auth_uri: {fake.auth_uri}",
        f"      token_file: {state / 'tokens' / (name + '.google.json')}",
        f"      read_mail: {'true' if read_mail else 'false'}",
        f"      timeout_seconds: {timeout}",
    ]
    if ca_bundle is not None:
        lines.append(f"      ca_bundle: {ca_bundle}")
    if client_secrets is not None:
        lines.append(f"      client_secrets: {client_secrets}")
    return "\n".join(lines) + "\n" + extra


def open_session(config: Any, *, sleep: Any = None, policy: Any = None, account: int = 0) -> Any:
    """The GoogleSession of ``config.accounts[account]``, with an injected sleep and retry policy."""
    from providers import registry
    from providers.google.client import GoogleSession
    from providers.google.settings import GoogleSettings

    acct = config.accounts[account]
    ctx = registry.context(acct, config, sleep=sleep if sleep is not None else (lambda seconds: None))
    return GoogleSession(ctx.connection("google", GoogleSettings), ctx, policy=policy)


def open_source(config: Any, *, sleep: Any = None, policy: Any = None) -> Any:
    """A GoogleCalendarSource for the first account of ``config`` (sleep and policy injected)."""
    from providers.google.calendar import GoogleCalendarSource

    return GoogleCalendarSource(config.accounts[0].calendar, open_session(config, sleep=sleep, policy=policy))


def open_gmail(config: Any, *, sleep: Any = None, policy: Any = None, user_addresses: Any = ()) -> Any:
    """GmailDrafts for the first account of ``config`` (sleep and policy injected)."""
    from providers.google.gmail import GmailDrafts

    return GmailDrafts(open_session(config, sleep=sleep, policy=policy), user_addresses=user_addresses)
