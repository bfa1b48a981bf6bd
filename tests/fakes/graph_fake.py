"""A loopback HTTPS fake of Microsoft Graph v1.0 and the Microsoft identity platform, for tests.

Speaks the real wire format: OIDC discovery, device-code and refresh-token grants (JWT id_token,
base64url client_info), calendarView/delta rounds (``@odata.nextLink`` / ``@odata.deltaLink`` /
``@removed``, 410 and syncStateNotFound), messages, createReply, PATCH, DELETE and mail folders,
with Graph's JSON error bodies. TLS comes from a throwaway trustme CA (``ca_path``), because msal
only accepts https authorities.

It is strict where Graph's documentation is: delta links must be replayed verbatim, ``$select``
is refused on delta, custom headers must start with ``x-``, ``internetMessageHeaders`` cannot be
PATCHed. Things Graph tolerates but Salvage must not do (a request without the Prefer headers, any
``/send``) are answered and recorded in :attr:`GraphFake.violations`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import trustme
from tzlocal.windows_tz import win_tz

UTC = timezone.utc
DEFAULT_CALENDAR = "AAMkAGI2calendar-default"
FOLDERS = {
    "inbox": "AQMkAGI2folder-inbox",
    "drafts": "AQMkAGI2folder-drafts",
    "sentitems": "AQMkAGI2folder-sentitems",
    "deleteditems": "AQMkAGI2folder-deleteditems",
}
FOLDER_NAMES = {"inbox": "Inbox", "drafts": "Drafts", "sentitems": "Sent Items", "deleteditems": "Deleted Items"}
PATCHABLE = {
    "subject", "body", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "categories", "importance",
    "isRead", "flag", "singleValueExtendedProperties", "multiValueExtendedProperties", "internetMessageId",
    "isDeliveryReceiptRequested", "isReadReceiptRequested", "inferenceClassification", "from", "sender",
}
DELTA_FORBIDDEN = ("$select", "$expand", "$filter", "$orderby", "$search", "$top", "$skip")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def graph_datetime(value: datetime) -> str:
    """Graph's dateTime text: no offset, seven fractional digits."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0"


def _zone(name: str) -> Any:
    if name in ("UTC", "Etc/UTC"):
        return UTC
    return ZoneInfo(win_tz.get(name, name))


def _parse_view_instant(text: str) -> datetime:
    value = text.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Fault:
    """An injected failure for requests whose path contains ``path`` (and method matches)."""

    path: str
    status: int = 0  # 0: answer normally (after the delays)
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    times: int = 1
    delay: float = 0.0  # seconds before handling
    delay_after: float = 0.0  # seconds after handling, before answering (the answer is lost to a timeout)


@dataclass
class Recorded:
    method: str
    path: str
    target: str
    prefer: str
    status: int = 0


@dataclass
class _Session:
    """Server-side state behind a $skiptoken or $deltatoken."""

    calendar: str
    start: datetime
    end: datetime
    path: str
    pending: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0
    known: set[str] = field(default_factory=set)
    link: str = ""
    expired: str | None = None


class GraphFake:
    """The fake services plus helpers to seed data, play the user and inject faults."""

    def __init__(
        self,
        *,
        tenant: str = "fake-tenant",
        user_email: str = "alex@example.com",
        user_name: str = "Alex Morgan",
        client_id: str = "11111111-2222-3333-4444-555555555555",
    ) -> None:
        self.tenant = tenant
        self.user_email = user_email
        self.user_name = user_name
        self.client_id = client_id
        self._dir = tempfile.TemporaryDirectory(prefix="graph-fake-")
        self.ca = trustme.CA()
        self.ca_path = Path(self._dir.name) / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(self._ctx)
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        # identity
        self.pending_polls = 2  # authorization_pending answers before a device code is approved
        self.fail_refresh = False
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.device_codes: dict[str, int] = {}
        self.device_scopes: dict[str, list[str]] = {}
        self.token_lifetime = 3600
        self.scopes_requested: list[str] = []
        self.refreshes = 0
        # calendars
        self.calendars: dict[str, dict[str, Any]] = {DEFAULT_CALENDAR: {"name": "Calendar", "isDefaultCalendar": True}}
        self.events: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.sessions: dict[str, _Session] = {}
        self.default_page_size = 10
        self.report_zone: str | None = None  # answer in this zone whatever Prefer says
        # mail
        self.messages: dict[str, dict[str, Any]] = {}
        self.reply_accepts_headers = True
        self.reply_accepts_properties = True
        self.quote_replies = True
        self.deleted_delete_status = 404  # or 403 (ErrorCannotDeleteObject), as seen with immutable ids
        # bookkeeping
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.active = 0
        self.max_active = 0
        self.hold = 0.0  # seconds every Graph request takes (to observe concurrency)
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.authority = f"{self.url}/{tenant}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    # ---- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._dir.cleanup()

    def __enter__(self) -> GraphFake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        """Forget data, faults and counts (tokens stay valid), for a server shared between tests."""
        deadline = time.time() + 5
        while self.active and time.time() < deadline:  # let a request a client gave up on finish
            time.sleep(0.01)
        with self.lock:
            self.calendars = {DEFAULT_CALENDAR: {"name": "Calendar", "isDefaultCalendar": True}}
            self.events.clear()
            self.sessions.clear()
            self.messages.clear()
            self.faults.clear()
            self.requests.clear()
            self.violations.clear()
            self.version = 0
            self.max_active = 0
            self.fail_refresh = False
            self.report_zone = None
            self.reply_accepts_headers = True
            self.reply_accepts_properties = True
            self.quote_replies = True
            self.deleted_delete_status = 404
            self.hold = 0.0
            self.default_page_size = 10
            self.pending_polls = 2
            self.token_lifetime = 3600

    def microsoft_section(self, token_cache: Path, **extra: Any) -> dict[str, Any]:
        """A config ``microsoft:`` section pointing at this fake."""
        section = {
            "client_id": self.client_id,
            "authority": self.authority,
            "graph_url": self.url,
            "ca_bundle": str(self.ca_path),
            "token_cache": str(token_cache),
            "timeout_seconds": 5,
        }
        section.update(extra)
        return section

    def new_id(self, prefix: str) -> str:
        return f"AAMkAGI2{prefix}{next(self._ids):06d}" + secrets.token_urlsafe(6).replace("-", "A").replace("_", "B")

    # ---- bookkeeping helpers --------------------------------------------------------------------

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Graph requests (optionally of one method / path fragment) seen so far."""
        with self.lock:
            return sum(1 for r in self.requests if r.path.startswith("/v1.0")
                       and (method is None or r.method == method) and contains in r.target)

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.max_active = 0

    def add_fault(self, path: str, status: int = 0, **kwargs: Any) -> Fault:
        fault = Fault(path=path, status=status, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def throttle(self, path: str, retry_after: int = 1, times: int = 1, method: str | None = None) -> Fault:
        """429 with Retry-After, in Graph's error shape."""
        body = {"error": {"code": "TooManyRequests", "message": "Application is over its MailboxConcurrency limit.",
                          "innerError": self._inner()}}
        return self.add_fault(path, 429, headers={"Retry-After": str(retry_after)}, body=body, times=times,
                              method=method)

    def unavailable(self, path: str, times: int = 1, retry_after: int | None = None, method: str | None = None) -> Fault:
        body = {"error": {"code": "ServiceNotAvailable", "message": "Service Unavailable",
                          "innerError": self._inner()}}
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return self.add_fault(path, 503, headers=headers, body=body, times=times, method=method)

    def expire_delta_tokens(self, mode: str = "410") -> None:
        """Make every issued delta/skip token fail: ``410`` (with Location) or ``syncStateNotFound``."""
        with self.lock:
            for session in self.sessions.values():
                session.expired = mode

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens:
                self.access_tokens[token] = 0.0

    @staticmethod
    def _inner() -> dict[str, str]:
        return {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": secrets.token_hex(16), "client-request-id": secrets.token_hex(16)}

    # ---- calendar seeding -----------------------------------------------------------------------

    def add_calendar(self, name: str) -> str:
        cal_id = self.new_id("calendar")
        with self.lock:
            self.calendars[cal_id] = {"name": name, "isDefaultCalendar": False}
        return cal_id

    def add_event(
        self,
        subject: str,
        start: datetime | date,
        end: datetime | date,
        *,
        calendar: str = DEFAULT_CALENDAR,
        organizer: tuple[str, str] | None = None,
        attendees: list[tuple[str, ...]] | None = None,
        original_zone: str = "Pacific Standard Time",
        body: str = "",
        **fields: Any,
    ) -> str:
        """Seed an event; ``start``/``end`` aware datetimes, or dates for an all-day event."""
        event_id = fields.pop("id", None) or self.new_id("event")
        all_day = not isinstance(start, datetime)
        organizer = organizer or (self.user_name, self.user_email)
        is_organizer = organizer[1].lower() == self.user_email.lower()
        now = datetime.now(UTC)
        data: dict[str, Any] = {
            "@odata.etag": f'W/"{secrets.token_urlsafe(12)}"',
            "id": event_id,
            "createdDateTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "lastModifiedDateTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
            "changeKey": secrets.token_urlsafe(12),
            "categories": [],
            "transactionId": None,
            "originalStartTimeZone": original_zone,
            "originalEndTimeZone": original_zone,
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper(),
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "hasAttachments": False,
            "subject": subject,
            "bodyPreview": body[:255],
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": all_day,
            "isCancelled": False,
            "isOrganizer": is_organizer,
            "responseRequested": True,
            "seriesMasterId": None,
            "showAs": "busy",
            "type": "singleInstance",
            "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": False,
            "onlineMeetingProvider": "unknown",
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "responseStatus": {"response": "organizer" if is_organizer else "none", "time": "0001-01-01T00:00:00Z"},
            "body": {"contentType": "html", "content": f"<html><body><p>{body}</p></body></html>" if body else ""},
            "location": {"displayName": "", "locationType": "default", "uniqueIdType": "unknown",
                         "address": {}, "coordinates": {}},
            "locations": [],
            "recurrence": None,
            "attendees": [
                {"type": a[2], "status": {"response": a[3] if len(a) > 3 else "none", "time": "0001-01-01T00:00:00Z"},
                 "emailAddress": {"name": a[0], "address": a[1]}}
                for a in attendees or []
            ],
            "organizer": {"emailAddress": {"name": organizer[0], "address": organizer[1]}},
            "onlineMeeting": None,
        }
        data.update(fields)
        with self.lock:
            self.version += 1
            self.events[event_id] = {"calendar": calendar, "start": start, "end": end, "all_day": all_day,
                                     "data": data, "version": self.version, "deleted": False}
        return event_id

    def update_event(self, event_id: str, **changes: Any) -> None:
        """Change an event (``start``/``end`` as Python values, other keys as Graph JSON)."""
        with self.lock:
            record = self.events[event_id]
            for key in ("start", "end", "calendar"):
                if key in changes:
                    record[key] = changes.pop(key)
            record["data"].update(changes)
            record["data"]["lastModifiedDateTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
            self.version += 1
            record["version"] = self.version

    def delete_event(self, event_id: str) -> None:
        with self.lock:
            record = self.events[event_id]
            self.version += 1
            record["version"] = self.version
            record["deleted"] = True

    # ---- mail seeding and playing the user ------------------------------------------------------

    def add_invitation(self, subject: str, organizer: tuple[str, str], *,
                       odata_type: str = "#microsoft.graph.eventMessageRequest", received: datetime | None = None,
                       html: str | None = None) -> str:
        """An invitation email in the Inbox, from ``organizer`` (name, address)."""
        message_id = self.new_id("message")
        when = (received or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.messages[message_id] = {
                "@odata.type": odata_type,
                "id": message_id,
                "folder": "inbox",
                "subject": subject,
                "body": {"contentType": "html",
                         "content": html or f"<html><body><p>Invitation: {subject}</p></body></html>"},
                "from": {"emailAddress": {"name": organizer[0], "address": organizer[1]}},
                "sender": {"emailAddress": {"name": organizer[0], "address": organizer[1]}},
                "toRecipients": [{"emailAddress": {"name": self.user_name, "address": self.user_email}}],
                "ccRecipients": [],
                "internetMessageId": f"<{secrets.token_hex(8)}@mail.example.com>",
                "conversationId": "AAQkAGI2conv" + secrets.token_hex(8),
                "isDraft": False,
                "createdDateTime": when,
                "receivedDateTime": when,
                "internetMessageHeaders": [{"name": "Message-ID", "value": "<x@mail.example.com>"}],
                "props": {},
            }
        return message_id

    def drafts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages.values() if m["folder"] == "drafts"]

    def draft_key(self, message: dict[str, Any]) -> str | None:
        for header in message.get("internetMessageHeaders") or []:
            if header["name"].lower() == "x-salvage-key":
                return str(header["value"])
        for prop_id, value in message.get("props", {}).items():
            if prop_id.lower().endswith("name x-salvage-key"):
                return str(value)
        return None

    def user_edits(self, message_id: str, text: str) -> None:
        with self.lock:
            self.messages[message_id]["body"] = {"contentType": "html", "content": f"<html><body><p>{text}</p></body></html>"}

    def user_sends(self, message_id: str) -> None:
        """Send a draft the way Outlook does: same immutable id, now in Sent Items, not a draft."""
        with self.lock:
            message = self.messages[message_id]
            message.update(folder="sentitems", isDraft=False, sentDateTime=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def user_deletes(self, message_id: str, *, hard: bool = False) -> None:
        with self.lock:
            if hard:
                del self.messages[message_id]
            else:
                self.messages[message_id]["folder"] = "deleteditems"

    # ---- request handling -----------------------------------------------------------------------

    def handle(self, req: _Handler) -> None:
        split = urlsplit(req.path)
        path = split.path
        record = Recorded(req.command, path, req.path, ", ".join(req.headers.get_all("Prefer") or []))
        with self.lock:
            self.requests.append(record)
            fault = next((f for f in self.faults if f.times > 0 and f.path in req.path
                          and (f.method is None or f.method == req.command)), None)
            if fault is not None:
                fault.times -= 1
        graph = path.startswith("/v1.0/")
        if graph:
            with self.lock:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
        done = False
        try:
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if graph and self.hold:
                time.sleep(self.hold)
            if fault is not None and fault.status:
                status, payload, headers = fault.status, fault.body, fault.headers
            else:
                status, payload, headers = self._route(req, split)
                if fault is not None and fault.delay_after:
                    time.sleep(fault.delay_after)
        finally:
            # A request stops counting as in flight once its answer is ready: the client may send
            # its next request as soon as it has read this one.
            if graph:
                with self.lock:
                    self.active -= 1
            done = True
        if done:
            req.respond(status, payload, headers)
            record.status = req.sent_status

    def _route(self, req: _Handler, split: Any) -> tuple[int, Any, dict[str, str]]:
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        prefix = f"/{self.tenant}"
        if path.startswith(prefix + "/"):
            return self._identity(req, path[len(prefix):])
        if not path.startswith("/v1.0/"):
            return 404, {"error": {"code": "NotFound", "message": f"no route {path}"}}, {}
        auth = req.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            valid = self.access_tokens.get(token, 0) > time.time()
        if not valid:
            return 401, {"error": {"code": "InvalidAuthenticationToken",
                                   "message": "Access token has expired or is not yet valid.",
                                   "innerError": self._inner()}}, {"WWW-Authenticate": 'Bearer realm=""'}
        prefer = " ".join(req.headers.get_all("Prefer") or [])
        if 'outlook.timezone="UTC"' not in prefer or 'IdType="ImmutableId"' not in prefer:
            self.violations.append(f"{req.command} {path}: missing Prefer headers ({prefer!r})")
        if path.endswith(("/send", "/sendMail")):
            self.violations.append(f"{req.command} {path}: Salvage must never send mail")
            return 403, {"error": {"code": "ErrorAccessDenied", "message": "Access is denied. Check credentials and try again."}}, {}
        return self._graph(req, path[len("/v1.0"):], query, prefer)

    # ---- identity -------------------------------------------------------------------------------

    def _identity(self, req: _Handler, path: str) -> tuple[int, Any, dict[str, str]]:
        base = f"{self.url}/{self.tenant}"
        if path == "/v2.0/.well-known/openid-configuration" and req.command == "GET":
            return 200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.url}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "preferred_username", "oid", "tid"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }, {}
        if req.command != "POST":
            return 404, {"error": "not_found"}, {}
        form = {k: v[-1] for k, v in parse_qs(req.body().decode(), keep_blank_values=True).items()}
        if form.get("client_id") != self.client_id:
            return 400, self._oauth_error("unauthorized_client", "AADSTS700016: Application with identifier "
                                          f"'{form.get('client_id')}' was not found in the directory."), {}
        if path == "/oauth2/v2.0/devicecode":
            scopes = form.get("scope", "").split()
            with self.lock:
                self.scopes_requested.extend(scopes)
            code = secrets.token_urlsafe(24)
            user_code = secrets.token_hex(4).upper()
            with self.lock:
                self.device_codes[code] = self.pending_polls
                self.device_scopes[code] = [s for s in scopes if s not in ("openid", "profile", "offline_access")]
            return 200, {
                "user_code": user_code,
                "device_code": code,
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": 900,
                "interval": 0,
                "message": f"To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
                           f"and enter the code {user_code} to authenticate.",
            }, {}
        if path == "/oauth2/v2.0/token":
            return self._token(form)
        return 404, {"error": "not_found"}, {}

    @staticmethod
    def _oauth_error(code: str, description: str) -> dict[str, Any]:
        return {"error": code, "error_description": f"{description}\r\nTrace ID: {secrets.token_hex(8)}\r\n"
                f"Correlation ID: {secrets.token_hex(8)}\r\nTimestamp: 2026-11-24 09:00:00Z",
                "error_codes": [int(re.search(r"AADSTS(\d+)", description).group(1))]  # type: ignore[union-attr]
                if "AADSTS" in description else [], "timestamp": "2026-11-24 09:00:00Z"}

    def _token(self, form: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        grant = form.get("grant_type", "")
        scopes = [s for s in form.get("scope", "").split() if s not in ("openid", "profile", "offline_access")]
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            with self.lock:
                left = self.device_codes.get(form.get("device_code", ""))
                if left is None:
                    return 400, self._oauth_error("expired_token", "AADSTS70020: The provided value for the input "
                                                  "parameter 'device_code' is not valid."), {}
                if left > 0:
                    self.device_codes[form["device_code"]] = left - 1
                    return 400, self._oauth_error("authorization_pending", "AADSTS70016: OAuth 2.0 device flow "
                                                  "error. Authorization is pending. Continue polling."), {}
                del self.device_codes[form["device_code"]]
                granted = self.device_scopes.pop(form["device_code"], scopes)
            return 200, self._issue(granted), {}
        if grant == "refresh_token":
            with self.lock:
                self.refreshes += 1
                known = form.get("refresh_token") in self.refresh_tokens
                if self.fail_refresh or not known:
                    return 400, self._oauth_error("invalid_grant", "AADSTS700082: The refresh token has expired "
                                                  "due to inactivity."), {}
                self.refresh_tokens.discard(form["refresh_token"])
            return 200, self._issue(scopes), {}
        return 400, self._oauth_error("unsupported_grant_type", f"AADSTS70003: grant type {grant!r}"), {}

    def _issue(self, scopes: list[str]) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(48)
        with self.lock:
            self.access_tokens[access] = time.time() + self.token_lifetime
            self.refresh_tokens.add(refresh)
        now = int(time.time())
        claims = {"aud": self.client_id, "iss": f"{self.url}/{self.tenant}/v2.0", "iat": now, "nbf": now,
                  "exp": now + 3600, "name": self.user_name, "oid": "00000000-0000-0000-aaaa-000000000001",
                  "preferred_username": self.user_email, "sub": "fake-subject", "tid": "fake-tenant-id", "ver": "2.0"}
        id_token = ".".join([_b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "fake"}).encode()),
                             _b64url(json.dumps(claims).encode()), _b64url(b"signature")])
        client_info = _b64url(json.dumps({"uid": claims["oid"], "utid": claims["tid"]}).encode())
        return {"token_type": "Bearer", "scope": " ".join(scopes), "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime, "access_token": access, "refresh_token": refresh,
                "id_token": id_token, "client_info": client_info}

    # ---- Graph ----------------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> tuple[int, Any, dict[str, str]]:
        return status, {"error": {"code": code, "message": message, "innerError": self._inner()}}, {}

    def _graph(self, req: _Handler, path: str, query: dict[str, str], prefer: str) -> tuple[int, Any, dict[str, str]]:
        method = req.command
        m = re.fullmatch(r"/me/(?:calendarView|calendarview)/delta", path) or re.fullmatch(
            r"/me/calendars/([^/]+)/(?:calendarView|calendarview)/delta", path)
        if m and method == "GET":
            calendar = unquote(m.group(1)) if m.groups() and m.group(1) else DEFAULT_CALENDAR
            return self._delta(req, calendar, path, query, prefer)
        if path == "/me/calendars" and method == "GET":
            values = [{"id": cid, "name": c["name"], "isDefaultCalendar": c["isDefaultCalendar"],
                       "canEdit": True, "owner": {"name": self.user_name, "address": self.user_email}}
                      for cid, c in self.calendars.items()]
            return 200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/calendars",
                         "value": self._select(values, query)}, {}
        m = re.fullmatch(r"/me/mailFolders/([^/]+)", path)
        if m and method == "GET":
            folder = self._folder(unquote(m.group(1)))
            if folder is None:
                return self._error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
            return 200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/mailFolders/$entity",
                         "id": FOLDERS[folder], "displayName": FOLDER_NAMES[folder], "parentFolderId": "AQMkroot",
                         "childFolderCount": 0, "unreadItemCount": 0,
                         "totalItemCount": sum(1 for x in self.messages.values() if x["folder"] == folder)}, {}
        m = re.fullmatch(r"/me/mailFolders/([^/]+)/messages", path)
        if m:
            folder = self._folder(unquote(m.group(1)))
            if folder is None:
                return self._error(404, "ErrorInvalidIdMalformed", "Id is malformed.")
            if method == "GET":
                return self._list_messages(query, prefer, folder)
            if method == "POST":
                return self._create_message(req, prefer, folder)
        if path == "/me/messages":
            if method == "GET":
                return self._list_messages(query, prefer, None)
            if method == "POST":
                return self._create_message(req, prefer, "drafts")
        m = re.fullmatch(r"/me/messages/([^/]+)(/createReply)?", path)
        if m:
            message_id = unquote(m.group(1))
            if m.group(2):
                if method == "POST":
                    return self._create_reply(req, message_id, prefer)
            elif method == "GET":
                return self._get_message(message_id, query, prefer)
            elif method == "PATCH":
                return self._patch_message(req, message_id, prefer)
            elif method == "DELETE":
                return self._delete_message(message_id)
        return self._error(400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'.")

    # -- calendar delta ---------------------------------------------------------------------------

    def _delta(self, req: _Handler, calendar: str, path: str, query: dict[str, str], prefer: str) -> tuple[int, Any, dict[str, str]]:
        if calendar not in self.calendars:
            return self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        size = self.default_page_size
        m = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        if m:
            size = max(1, int(m.group(1)))
        token = query.get("$skiptoken") or query.get("$deltatoken")
        if token is not None:
            with self.lock:
                session = self.sessions.get(token)
            if session is None:
                return self._error(400, "syncStateNotFound", "The sync state is not found or has expired.")
            if req.path != session.link:
                self.violations.append(f"delta link not replayed verbatim: {req.path!r} != {session.link!r}")
                return self._error(400, "BadRequest", "Delta and skip tokens must be used with the URL they came in.")
            if session.expired == "410":
                fresh = (f"{self.url}/v1.0{session.path}?startDateTime={session.start.strftime('%Y-%m-%dT%H:%M:%SZ')}"
                         f"&endDateTime={session.end.strftime('%Y-%m-%dT%H:%M:%SZ')}")
                status, body, _ = self._error(410, "resyncRequired", "Resync required. Replace any local items "
                                              "with the server's version and restart the sync.")
                return status, body, {"Location": fresh}
            if session.expired:
                return self._error(400, "syncStateNotFound", "The sync state generation is not found.")
            if "$deltatoken" in query:
                with self.lock:
                    pending = self._changes(session, prefer)
                    session = _Session(session.calendar, session.start, session.end, session.path, pending,
                                       self.version, set(session.known))
            return self._page(session, size)
        bad = [k for k in query if k in DELTA_FORBIDDEN]
        if bad:
            self.violations.append(f"delta request with {bad}")
            return self._error(400, "ErrorInvalidUrlQuery", f"The following parameters are not supported with "
                               f"change tracking over the 'CalendarView' resource: '{', '.join(bad)}'.")
        try:
            start = _parse_view_instant(query["startDateTime"])
            end = _parse_view_instant(query["endDateTime"])
        except (KeyError, ValueError):
            return self._error(400, "ErrorInvalidParameter", "This request requires a time window specified by the "
                               "query string parameters StartDateTime and EndDateTime.")
        with self.lock:
            pending = [self._render(r, prefer) for r in sorted(self.events.values(), key=self._sort)
                       if r["calendar"] == calendar and not r["deleted"] and self._overlaps(r, start, end)]
            session = _Session(calendar, start, end, path, pending, self.version,
                               {p["id"] for p in pending})
        return self._page(session, size, prefer)

    def _changes(self, old: _Session, prefer: str) -> list[dict[str, Any]]:
        """What changed in a calendar view since the session's version (caller holds the lock)."""
        out: list[dict[str, Any]] = []
        for record in sorted(self.events.values(), key=self._sort):
            if record["calendar"] != old.calendar and record["data"]["id"] not in old.known:
                continue
            if record["version"] <= old.version:
                continue
            event_id = record["data"]["id"]
            if not record["deleted"] and record["calendar"] == old.calendar and self._overlaps(record, old.start, old.end):
                out.append(self._render(record, prefer))
                old.known.add(event_id)
            else:
                # Graph reports removals, and changes outside the range, as "deleted".
                out.append({"@odata.type": "#microsoft.graph.event", "id": event_id, "@removed": {"reason": "deleted"}})
                old.known.discard(event_id)
        return out

    def _page(self, session: _Session, size: int, prefer: str | None = None) -> tuple[int, Any, dict[str, str]]:
        page, rest = session.pending[:size], session.pending[size:]
        body: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
                                "value": page}
        token = _b64url(secrets.token_bytes(24)) + "~" + secrets.token_hex(4)
        nxt = _Session(session.calendar, session.start, session.end, session.path, rest, session.version,
                       session.known)
        if rest:
            link = f"{self.url}/v1.0{session.path}?$skiptoken={token}"
            body["@odata.nextLink"] = link
        else:
            link = f"{self.url}/v1.0{session.path}?$deltatoken={token}"
            body["@odata.deltaLink"] = link
        nxt.link = link[len(self.url):]
        with self.lock:
            self.sessions[token] = nxt
        headers = {"Preference-Applied": 'outlook.timezone="UTC"'}
        return 200, body, headers

    @staticmethod
    def _sort(record: dict[str, Any]) -> tuple[str, str]:
        return (str(record["start"]), record["data"]["id"])

    @staticmethod
    def _instant(value: datetime | date) -> datetime:
        if isinstance(value, datetime):
            return value
        return datetime(value.year, value.month, value.day, tzinfo=UTC)

    def _overlaps(self, record: dict[str, Any], start: datetime, end: datetime) -> bool:
        return self._instant(record["end"]) > start and self._instant(record["start"]) < end

    def _render(self, record: dict[str, Any], prefer: str) -> dict[str, Any]:
        m = re.search(r'outlook\.timezone="([^"]+)"', prefer)
        zone_name = self.report_zone or (m.group(1) if m else "UTC")
        tz = _zone(zone_name)
        data = json.loads(json.dumps(record["data"]))
        for key in ("start", "end"):
            value = record[key]
            if record["all_day"]:
                data[key] = {"dateTime": f"{value.isoformat()}T00:00:00.0000000", "timeZone": zone_name}
            else:
                data[key] = {"dateTime": graph_datetime(value.astimezone(tz)), "timeZone": zone_name}
        for key in ("start", "end"):
            if f"{key}_json" in data:  # a test's deliberately odd wire value
                data[key] = data.pop(f"{key}_json")
        data["@odata.type"] = "#microsoft.graph.event"
        return data

    # -- messages ---------------------------------------------------------------------------------

    @staticmethod
    def _folder(name: str) -> str | None:
        lowered = name.lower()
        if lowered in FOLDERS:
            return lowered
        for key, value in FOLDERS.items():
            if value == name:
                return key
        return None

    def _view(self, message: dict[str, Any], query: dict[str, str], prefer: str) -> dict[str, Any]:
        data = {k: v for k, v in message.items() if k not in ("folder", "props")}
        data["parentFolderId"] = FOLDERS[message["folder"]]
        data["bodyPreview"] = re.sub(r"<[^>]+>", "", data["body"]["content"])[:255]
        if 'outlook.body-content-type="text"' in prefer and data["body"]["contentType"] == "html":
            text = re.sub(r"<br\s*/?>|</p>", "\n", data["body"]["content"])
            data["body"] = {"contentType": "text", "content": re.sub(r"<[^>]+>", "", text).strip() + "\r\n"}
        elif 'outlook.body-content-type="html"' in prefer and data["body"]["contentType"] == "text":
            data["body"] = {"contentType": "html", "content": self._html(data["body"]["content"])}
        expand = query.get("$expand", "")
        m = re.fullmatch(r"singleValueExtendedProperties\(\$filter=id eq '(.+)'\)", expand)
        if expand and not m:
            raise _BadQuery(f"$expand {expand!r} is not supported by this fake")
        selected = query.get("$select")
        if selected:
            keep = {s.strip() for s in selected.split(",")} | {"id", "@odata.type", "@odata.etag"}
            data = {k: v for k, v in data.items() if k in keep}
        if m:
            wanted = m.group(1).replace("''", "'")
            data["singleValueExtendedProperties"] = [
                {"id": pid, "value": value} for pid, value in message["props"].items() if pid.lower() == wanted.lower()
            ]
        if data.get("@odata.type") == "#microsoft.graph.message":
            data.pop("@odata.type")  # Graph names the type only for derived types in a collection
        return data

    @staticmethod
    def _html(text: str) -> str:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return "<html><head></head><body><div>" + escaped.replace("\n", "<br>") + "</div></body></html>"

    def _list_messages(self, query: dict[str, str], prefer: str, folder: str | None) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            items = [m for m in self.messages.values() if folder is None or m["folder"] == folder]
        flt = query.get("$filter")
        if flt:
            m = re.fullmatch(r"from/emailAddress/address eq '((?:[^']|'')*)'", flt)
            if not m:
                return self._error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
            wanted = m.group(1).replace("''", "'").lower()
            items = [x for x in items if x["from"]["emailAddress"]["address"].lower() == wanted]
        items.sort(key=lambda x: x.get("receivedDateTime") or x["createdDateTime"], reverse=True)
        try:
            top = int(query.get("$top", "10"))
            skip = int(query.get("$skip", "0"))
        except ValueError:
            return self._error(400, "BadRequest", "Invalid $top or $skip")
        try:
            values = [self._view(x, query, prefer) for x in items[skip:skip + top]]
        except _BadQuery as exc:
            return self._error(400, "BadRequest", str(exc))
        body: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/messages",
                                "value": values}
        if skip + top < len(items):
            rest = {k: v for k, v in query.items() if k != "$skip"}
            rest["$skip"] = str(skip + top)
            path = f"/v1.0/me/mailFolders/{folder}/messages" if folder else "/v1.0/me/messages"
            body["@odata.nextLink"] = f"{self.url}{path}?" + "&".join(f"{k}={v}" for k, v in rest.items()).replace(" ", "%20")
        return 200, body, {}

    def _get_message(self, message_id: str, query: dict[str, str], prefer: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            message = self.messages.get(message_id)
        if message is None:
            return self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        try:
            return 200, self._view(message, query, prefer), {}
        except _BadQuery as exc:
            return self._error(400, "BadRequest", str(exc))

    def _validate(self, message: dict[str, Any]) -> str | None:
        for header in message.get("internetMessageHeaders") or []:
            name = str(header.get("name", ""))
            if not name.lower().startswith("x-"):
                return f"The internet message header name '{name}' should start with 'x-' or 'X-'."
        body = message.get("body")
        if body is not None and str(body.get("contentType", "")).lower() not in ("text", "html"):
            return "Invalid body contentType"
        for prop in message.get("singleValueExtendedProperties") or []:
            if not re.match(r"^(String|Integer|Boolean|SystemTime) \{[0-9A-Fa-f-]{36}\} (Name|Id) \S+$", str(prop.get("id", ""))):
                return f"Invalid extended property id {prop.get('id')!r}"
        return None

    def _new_message(self, message: dict[str, Any], folder: str) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = message.get("body") or {"contentType": "text", "content": ""}
        return {
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"{secrets.token_urlsafe(12)}"',
            "id": self.new_id("draft"),
            "folder": folder,
            "subject": message.get("subject", ""),
            "body": {"contentType": str(body.get("contentType", "text")).lower(), "content": body.get("content", "")},
            "from": {"emailAddress": {"name": self.user_name, "address": self.user_email}},
            "sender": {"emailAddress": {"name": self.user_name, "address": self.user_email}},
            "toRecipients": message.get("toRecipients", []),
            "ccRecipients": message.get("ccRecipients", []),
            "internetMessageId": f"<{secrets.token_hex(10)}@fake.outlook.com>",
            "conversationId": "AAQkAGI2conv" + secrets.token_hex(8),
            "isDraft": True,
            "createdDateTime": now,
            "receivedDateTime": now,
            "internetMessageHeaders": message.get("internetMessageHeaders") or None,
            "props": {p["id"]: p["value"] for p in message.get("singleValueExtendedProperties") or []},
        }

    def _create_message(self, req: _Handler, prefer: str, folder: str) -> tuple[int, Any, dict[str, str]]:
        try:
            message = json.loads(req.body() or b"{}")
        except ValueError:
            return self._error(400, "BadRequest", "Unable to read JSON request payload.")
        problem = self._validate(message)
        if problem:
            return self._error(400, "InvalidInternetMessageHeader" if "header" in problem else "BadRequest", problem)
        stored = self._new_message(message, folder)
        with self.lock:
            self.messages[stored["id"]] = stored
        view = self._view(stored, {}, prefer)
        view["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users('me')/messages/$entity"
        return 201, view, {}

    def _create_reply(self, req: _Handler, message_id: str, prefer: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            original = self.messages.get(message_id)
        if original is None:
            return self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        try:
            payload = json.loads(req.body() or b"{}")
        except ValueError:
            return self._error(400, "BadRequest", "Unable to read JSON request payload.")
        message = payload.get("message") or {}
        if payload.get("comment") and message.get("body"):
            return self._error(400, "ErrorInvalidArgument", "Specify either a comment or the message body, not both.")
        if message.get("internetMessageHeaders") and not self.reply_accepts_headers:
            return self._error(400, "ErrorInvalidProperty", "internetMessageHeaders cannot be set on createReply.")
        if message.get("singleValueExtendedProperties") and not self.reply_accepts_properties:
            return self._error(400, "ErrorInvalidProperty", "singleValueExtendedProperties cannot be set on createReply.")
        problem = self._validate(message)
        if problem:
            return self._error(400, "BadRequest", problem)
        text = (message.get("body") or {}).get("content") or payload.get("comment") or ""
        content_type = str((message.get("body") or {}).get("contentType", "text")).lower()
        if self.quote_replies:
            quote = re.sub(r"<[^>]+>", "", original["body"]["content"])
            sender = original["from"]["emailAddress"]
            tail = f"\n\n________________________________\nFrom: {sender['name']} <{sender['address']}>\n" \
                   f"Subject: {original['subject']}\n\n{quote}"
            text = text + (self._html(tail) if content_type == "html" else tail)
        reply = self._new_message({
            "subject": message.get("subject") or f"RE: {original['subject']}",
            "body": {"contentType": content_type, "content": text},
            "toRecipients": message.get("toRecipients") or [{"emailAddress": original["from"]["emailAddress"]}],
            "ccRecipients": message.get("ccRecipients") or [],
            "internetMessageHeaders": message.get("internetMessageHeaders"),
            "singleValueExtendedProperties": message.get("singleValueExtendedProperties"),
        }, "drafts")
        reply["conversationId"] = original["conversationId"]
        reply["inReplyTo"] = original["internetMessageId"]
        with self.lock:
            self.messages[reply["id"]] = reply
        view = self._view(reply, {}, prefer)
        view.pop("inReplyTo", None)
        return 201, view, {}

    def _patch_message(self, req: _Handler, message_id: str, prefer: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            message = self.messages.get(message_id)
        if message is None:
            return self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        try:
            changes = json.loads(req.body() or b"{}")
        except ValueError:
            return self._error(400, "BadRequest", "Unable to read JSON request payload.")
        unknown = set(changes) - PATCHABLE
        if unknown:
            return self._error(400, "ErrorInvalidPropertyUpdateSentMessage" if not message["isDraft"] else "BadRequest",
                               f"Property {sorted(unknown)[0]} is not updatable.")
        if not message["isDraft"] and {"body", "subject"} & set(changes):
            return self._error(400, "ErrorInvalidPropertyUpdateSentMessage", "Update operation is invalid for property of a sent message.")
        problem = self._validate(changes)
        if problem:
            return self._error(400, "BadRequest", problem)
        with self.lock:
            for key, value in changes.items():
                if key == "singleValueExtendedProperties":
                    message["props"].update({p["id"]: p["value"] for p in value})
                elif key == "body":
                    message["body"] = {"contentType": str(value.get("contentType", "text")).lower(),
                                       "content": value.get("content", "")}
                else:
                    message[key] = value
        return 200, self._view(message, {}, prefer), {}

    def _delete_message(self, message_id: str) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            message = self.messages.pop(message_id, None)
        if message is None:
            if self.deleted_delete_status == 403:
                return self._error(403, "ErrorCannotDeleteObject", "The specified object cannot be deleted.")
            return self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return 204, None, {}

    def _select(self, values: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        selected = query.get("$select")
        if not selected:
            return values
        keep = {s.strip() for s in selected.split(",")} | {"id"}
        return [{k: v for k, v in item.items() if k in keep} for item in values]


class _BadQuery(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: GraphFake) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the connection's own thread, so a slow client never blocks accept().
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls
            tls = self.fake._ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected in these tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    sent_status = 0
    _body: bytes | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def body(self) -> bytes:
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def respond(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        self.body()  # drain the request so the connection can be reused
        data = b"" if payload is None else json.dumps(payload).encode()
        self.sent_status = status
        try:
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", secrets.token_hex(16))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _dispatch(self) -> None:
        self._body = None
        self.server.fake.handle(self)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch


def config_text(fake: GraphFake, state_dir: Path, *, calendars: Any = None, name: str = "work",
                timezone_name: str = "Europe/London", **microsoft: Any) -> str:
    """A Salvage config (YAML) with one account on this fake, state and tokens under ``state_dir``."""
    calendar: dict[str, Any] = {"type": "microsoft"}
    if calendars is not None:
        calendar["calendars"] = calendars
    data = {
        "user": {"name": fake.user_name, "email": fake.user_email, "timezone": timezone_name},
        "state": {"path": str(state_dir / "state.sqlite3")},
        "accounts": [{
            "name": name,
            "calendar": calendar,
            "drafts": {"type": "microsoft"},
            "microsoft": fake.microsoft_section(state_dir / f"{name}.msal.json", **microsoft),
        }],
    }
    return json.dumps(data, indent=2)  # JSON is YAML


def sign_in(fake: GraphFake, config_yaml: str, name: str = "work") -> list[str]:
    """Run Salvage's real device-code sign-in against the fake; returns what it printed."""
    from daemon.config import parse_config
    from providers import registry
    from providers.microsoft.auth import authenticate

    config = parse_config(config_yaml)
    lines: list[str] = []
    account = config.account(name)
    authenticate(registry.context(account, config), no_browser=True, out=lines.append)
    return lines


def open_context(config: Any, *, sleep: Any = None, account: int = 0) -> Any:
    """The provider context of ``config.accounts[account]`` (sleep injected)."""
    from providers import registry

    return registry.context(config.accounts[account], config, sleep=sleep if sleep is not None else (lambda s: None))


def open_client(config: Any, *, retry: Any = None, sleep: Any = None, account: int = 0) -> Any:
    """A GraphClient for ``config.accounts[account]`` with an injected retry policy and sleep."""
    from providers.microsoft.client import GraphClient
    from providers.microsoft.settings import MicrosoftSettings

    ctx = open_context(config, sleep=sleep, account=account)
    return GraphClient(ctx.connection("microsoft", MicrosoftSettings), ctx, retry=retry)
