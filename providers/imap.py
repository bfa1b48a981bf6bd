"""Draft store over IMAP: APPEND to Drafts with ``\\Draft``, fates found by ``X-Salvage-Key``.

Works with any IMAP server (Fastmail, iCloud, Nextcloud's mail host, Dovecot, Gmail and
Outlook.com with an app password or XOAUTH2). Built on ``imapclient``.

- Folders: the ones marked ``\\Drafts`` and ``\\Sent`` (SPECIAL-USE, RFC 6154) in one LIST, else
  common names in several languages, else the configured names.
- Threads: the invitation is found in INBOX (and Gmail's ``\\All``) by its Message-ID when the
  calendar gave one, else by sender and subject; the draft gets In-Reply-To and References.
- Fates: our UID still in Drafts → untouched (IMAP messages are immutable: an edit is saved as a
  new message, so checking the UID's flags is enough); else a Drafts message with our key (a client
  that re-saved it: its body fingerprint says untouched or edited); else our key or Message-ID in
  Sent → sent; only when every search answered "not there" is a draft deleted. A failed command is
  an error, never a fate.
- Update: append the new draft, then delete the old one, so a crash in between leaves two copies
  with the same key, which the next update or fate check reduces to one (never zero).
- One connection per account, opened on first use and reused across passes (no IDLE). A connection
  the server dropped is reopened once; a command that might have gone through (APPEND) is checked
  by key before it is repeated, so nothing is duplicated.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import SocketTimeout
from pydantic import Field, model_validator

from daemon.config import ProviderSection
from daemon.core.model import Event
from providers.base import (
    AuthError,
    Capabilities,
    DraftFate,
    DraftMessage,
    DraftRef,
    Provider,
    ProviderContext,
    ProviderError,
    Role,
    ThreadInfo,
    TokenSource,
    TransientError,
)
from providers.mime import KEY_HEADER, fingerprint, message_bytes, parse_message, plain_body
from providers.secret import PasswordError, check_password_source, read_password

log = logging.getLogger(f"salvage.{__name__}")

T = TypeVar("T")

# Common names of the Drafts and Sent folders when the server marks none (RFC 6154), in several
# languages, with and without the "INBOX." prefix some servers use.
DRAFTS_NAMES = (
    "Drafts", "Draft", "[Gmail]/Drafts", "[Google Mail]/Drafts", "Entwürfe", "Brouillons", "Borradores",
    "Bozze", "Concepten", "Rascunhos", "Utkast", "Kladder", "Luonnokset", "Szkice", "Koncepty",
    "Черновики", "Piszkozatok", "Taslaklar", "下書き", "草稿",
)
SENT_NAMES = (
    "Sent", "Sent Items", "Sent Messages", "Sent Mail", "[Gmail]/Sent Mail", "[Google Mail]/Sent Mail",
    "Gesendet", "Gesendete Elemente", "Gesendete Objekte", "Envoyés", "Éléments envoyés", "Enviados",
    "Elementos enviados", "Posta inviata", "Inviati", "Verzonden", "Verzonden items", "Skickat",
    "Skickade objekt", "Sendt", "Sendte elementer", "Lähetetyt", "Wysłane", "Odeslané", "Отправленные",
    "Elküldött", "Gönderilmiş", "送信済み", "已发送",
)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_MSGID = re.compile(r"<[^<>\s]+>")
_FETCH_BODY = b"BODY[]"


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ImapSettings(ProviderSection):
    """``drafts: {type: imap}``: the Drafts folder of an IMAP mailbox."""

    type: Literal["imap"]
    host: str = Field(description="The IMAP server, e.g. imap.fastmail.com or imap.gmail.com.")
    port: int | None = Field(None, ge=1, le=65535, description="Default: 993 for tls, 143 for starttls.")
    security: Literal["tls", "starttls", "none"] = Field(
        "tls", description="tls (implicit TLS), starttls, or none (only for a server on this machine)."
    )
    username: str = Field(description="The login name (often your email address).")
    auth: Literal["password", "xoauth2"] = Field(
        "password",
        description="password (a password or app password), or xoauth2: Gmail's IMAP with the account's "
        "google: sign-in (set google.imap_access: true and run `salvage auth`).",
    )
    password_env: str | None = Field(
        None, description="Name of an environment variable holding the password or app password."
    )
    password_file: Path | None = Field(
        None, description="A file (mode 0600) holding the password or app password."
    )
    drafts_folder: str | None = Field(
        None, description="Drafts folder name; default: the one marked \\Drafts (RFC 6154), else a common name."
    )
    sent_folder: str | None = Field(
        None, description="Sent folder name; default: the one marked \\Sent, else a common name."
    )
    ca_bundle: Path | None = Field(None, description="CA bundle for a private CA or TLS-intercepting network.")
    timeout_seconds: float = Field(30.0, gt=0, le=300)

    @model_validator(mode="after")
    def _checks(self) -> ImapSettings:
        check_password_source(self.password_env, self.password_file, self.auth == "password")
        if self.security == "none" and self.host.lower() not in _LOOPBACK:
            raise ValueError("security: none sends your password in the clear; use tls or starttls "
                             "(none is only allowed for a server on this machine)")
        return self

    @property
    def server_port(self) -> int:
        """The port to connect to: the configured one, else the default for ``security``."""
        return self.port or (993 if self.security == "tls" else 143)


def open_drafts(settings: ImapSettings, context: ProviderContext) -> ImapDraftStore:
    """The draft store for an account whose drafts go to an IMAP mailbox."""
    token = xoauth2_tokens(context) if settings.auth == "xoauth2" else None
    return ImapDraftStore(settings, context, token=token)


def xoauth2_tokens(context: ProviderContext) -> TokenSource:
    """Access tokens for XOAUTH2 from the account's Google sign-in, which must include Gmail's IMAP scope."""
    if "google" not in context.connections:
        raise ProviderError(
            f"account {context.account!r}: auth: xoauth2 signs in with the account's google: section "
            "(Gmail), and there is none. For Outlook.com use an app password, or drafts: {type: microsoft}."
        )
    from providers.google.auth import GMAIL_IMAP, GoogleTokenSource
    from providers.google.settings import GoogleSettings

    conn = context.connection("google", GoogleSettings)
    if not conn.imap_access:
        raise ProviderError(f"account {context.account!r}: auth: xoauth2 needs google.imap_access: true "
                            f"(then run `salvage auth {context.account}`)")
    source = GoogleTokenSource(conn, context)

    class _GmailImap:
        """The Google grant's tokens, once it is known to cover IMAP."""

        def token(self, *, force_refresh: bool = False) -> str:
            creds = source.credentials
            granted = set(creds.scopes or ()) | set(getattr(creds, "granted_scopes", None) or ())
            if granted and GMAIL_IMAP not in granted:
                raise AuthError(f"account {context.account!r}: the Google sign-in does not include IMAP access "
                                f"({GMAIL_IMAP}); run `salvage auth {context.account}`")
            return source.token(force_refresh=force_refresh)

    return _GmailImap()


PROVIDER = Provider(name="imap", drafts=Role(ImapSettings, "providers.imap:open_drafts"))


class ImapDraftStore:
    """A :class:`~providers.base.DraftStore` over one IMAP account.

    ``token``, when given, logs in with XOAUTH2 and that access token instead of the password.
    """

    capabilities = Capabilities(threads_replies=True, detects_edits=True, detects_sent=True)

    def __init__(
        self,
        settings: ImapSettings,
        context: ProviderContext,
        *,
        token: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        self.account = context.account
        now = context.clock
        self.label = f"IMAP {settings.username} at {settings.host}"
        self._token = token
        self._now = now
        self._client: IMAPClient | None = None
        self._selected: tuple[str, bool] | None = None  # (folder, readonly)
        self._uidvalidity: dict[str, int] = {}
        self._drafts: str | None = None
        self._sent: str | None = None
        self._search_folders: list[str] = []
        self._uidplus = False
        self.commands = 0  # IMAP commands sent on this store (for the benchmark)

    # ---- DraftStore -----------------------------------------------------------------------------

    def create(self, draft: DraftMessage) -> DraftRef:
        """APPEND the draft to Drafts with ``\\Draft``; a lost answer is checked by key, never re-sent blindly."""
        when = self._now()
        raw = message_bytes(draft, date=when)  # exactly the bytes that were read back and checked
        msgid = _header(raw, "Message-ID")

        def append(client: IMAPClient, retrying: bool) -> int | None:
            folder = self._drafts_folder(client)
            if retrying:
                found = self._search_key(client, folder, draft.key)
                if found:
                    return max(found)
            self.commands += 1
            response = client.append(folder, raw, flags=(b"\\Draft", b"\\Seen"), msg_time=when)
            return self._appended_uid(client, folder, response, draft.key)

        uid = self._run("APPEND to Drafts", append)
        folder = self._drafts or ""
        return self._ref(uid, folder, draft.key, fingerprint(draft.text), when, msgid)

    def fate(self, ref: DraftRef) -> DraftFate:
        """Untouched or edited (still in Drafts), sent (in Sent), or deleted (positively in neither)."""
        key = ref.extra.get("key", "")

        def look(client: IMAPClient, retrying: bool) -> DraftFate:
            drafts = self._drafts_folder(client)
            own = self._own_uid(client, drafts, ref)
            if own is not None and self._alive(client, own):
                # IMAP messages never change: an edit saves a new message, so our UID still there
                # (same UIDVALIDITY) holds exactly what the ref's fingerprint was taken of.
                return DraftFate.UNTOUCHED
            body: str | None = None
            if key:
                found = self._search_key(client, drafts, key)
                if found:
                    body = self._fetch_body(client, max(found))
            if body is not None:
                return DraftFate.UNTOUCHED if fingerprint(body) == ref.fingerprint else DraftFate.EDITED
            sent = self._sent_folder(client)
            if sent is not None and (key or ref.extra.get("msgid")):
                if self._search_key(client, sent, key, ref.extra.get("msgid"), readonly=True, deleted_too=True):
                    return DraftFate.SENT
            return DraftFate.DELETED

        return self._run("checking a draft", look)

    def update(self, ref: DraftRef, draft: DraftMessage) -> DraftRef:
        """Append the new content, then delete every older copy carrying the same key."""
        when = self._now()
        new_print = fingerprint(draft.text)
        raw = message_bytes(draft, date=when)  # exactly the bytes that were read back and checked
        msgid = _header(raw, "Message-ID")
        key = draft.key

        def replace(client: IMAPClient, retrying: bool) -> int:
            folder = self._drafts_folder(client)
            uids = set(self._search_key(client, folder, key))
            own = self._own_uid(client, folder, ref)
            if own is not None and self._fetch_raw(client, own) is not None:
                uids.add(own)
            if not uids:  # the user threw it away (or sent it): never bring it back
                raise ProviderError(f"{self.label}: the draft is no longer in {folder}; not re-creating it")
            keep: int | None = None
            for uid in sorted(uids, reverse=True):  # a copy appended before a crash: keep it
                if uid != own and self._fetch_body_print(client, uid) == new_print:
                    keep = uid
                    break
            if keep is None:
                self.commands += 1
                response = client.append(folder, raw, flags=(b"\\Draft", b"\\Seen"), msg_time=when)
                keep = self._appended_uid(client, folder, response, key, exclude=uids)
                if keep is None:
                    raise ProviderError(f"{self.label}: the updated draft was appended but cannot be found")
            self._expunge(client, folder, [u for u in uids if u != keep])
            return keep

        uid = self._run("updating a draft", replace)
        return self._ref(uid, self._drafts or "", key, new_print, when, msgid, ref)

    def delete(self, ref: DraftRef) -> None:
        """Delete the draft (and any copy with its key) from Drafts; already gone is fine."""
        key = ref.extra.get("key", "")

        def remove(client: IMAPClient, retrying: bool) -> None:
            folder = self._drafts_folder(client)
            uids = set(self._search_key(client, folder, key)) if key else set()
            own = self._own_uid(client, folder, ref)
            if own is not None:
                uids.add(own)
            self._expunge(client, folder, sorted(uids))

        self._run("deleting a draft", remove)

    def find_by_key(self, key: str) -> DraftRef | None:
        """The newest Drafts message carrying ``X-Salvage-Key: key``; None if positively none."""

        def find(client: IMAPClient, retrying: bool) -> DraftRef | None:
            folder = self._drafts_folder(client)
            found = self._search_key(client, folder, key)
            if not found:
                return None
            uid = max(found)
            raw = self._fetch_raw(client, uid)
            if raw is None:
                return None
            created: datetime | None = None
            date = _header(raw, "Date")
            if date:
                try:
                    created = parsedate_to_datetime(date)
                except (TypeError, ValueError):
                    created = None
                if created is not None and created.utcoffset() is None:
                    created = None
            body = plain_body(parse_message(raw))
            return self._ref(uid, folder, key, fingerprint(body), created, _header(raw, "Message-ID"))

        return self._run("looking for a draft", find)

    def find_thread(self, event: Event) -> ThreadInfo | None:
        """The invitation email for ``event`` (by Message-ID, else sender + subject); None if not found."""
        organizer = event.organizer
        if organizer is None or organizer.is_self or not organizer.email:
            return None
        hints = dict(event.thread_hints)
        message_id = next((hints[k] for k in ("message_id", "internetMessageId", "rfc822msgid") if hints.get(k)), None)
        title = _search_text(event.title)

        def look(client: IMAPClient, retrying: bool) -> ThreadInfo | None:
            self._folders(client)
            for folder in self._search_folders:
                uids: list[int] = []
                if message_id:
                    uids = self._search(client, folder, ["HEADER", "Message-ID", message_id], readonly=True)
                if not uids and title:
                    uids = self._search(client, folder, ["FROM", organizer.email, "SUBJECT", title], readonly=True)
                if uids:
                    return self._thread_info(client, max(uids))
            return None

        return self._run("looking for the invitation", look)

    def close(self) -> None:
        """Log out and close the connection."""
        client, self._client = self._client, None
        self._selected = None
        if client is not None:
            try:
                client.logout()
            except Exception:  # noqa: BLE001 - a dead connection is closed either way
                try:
                    client.shutdown()
                except Exception:  # noqa: BLE001
                    pass

    # ---- connection -----------------------------------------------------------------------------

    def _run(self, what: str, step: Callable[[IMAPClient, bool], T]) -> T:
        """Run ``step`` on the connection; a dropped connection is reopened and the step run once more."""
        for attempt in (1, 2):
            client = self._connect()
            try:
                return step(client, attempt > 1)
            except (IMAPClientAbortError, OSError, EOFError) as exc:
                self._drop()
                if attempt == 2:
                    raise TransientError(f"{self.label}: connection lost while {what} ({_reason(exc)})") from None
                log.info("%s: connection lost while %s (%s); reconnecting", self.label, what, _reason(exc))
            except IMAPClientError as exc:
                raise ProviderError(f"{self.label}: {what} failed: {_reason(exc)}") from None
        raise AssertionError("unreachable")

    def _connect(self) -> IMAPClient:
        if self._client is not None:
            return self._client
        s = self.settings
        context: ssl.SSLContext | None = None
        if s.security != "none":
            try:
                context = ssl.create_default_context(cafile=str(s.ca_bundle) if s.ca_bundle else None)
            except (OSError, ssl.SSLError) as exc:
                raise ProviderError(f"ca_bundle {s.ca_bundle} cannot be used: {exc}") from None
        timeout = SocketTimeout(connect=s.timeout_seconds, read=s.timeout_seconds)
        client: IMAPClient | None = None
        try:
            client = IMAPClient(s.host, port=s.server_port, ssl=s.security == "tls", ssl_context=context,
                                timeout=timeout)
            if s.security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise ProviderError(f"{self.label}: the server does not offer STARTTLS; use security: tls")
                client.starttls(context)
            self._login(client)
            self._uidplus = client.has_capability("UIDPLUS")
        except ssl.SSLCertVerificationError as exc:
            _shutdown(client)
            raise ProviderError(f"{self.label}: the server's TLS certificate is not trusted "
                                f"({exc.verify_message}); set ca_bundle for a private CA") from None
        except ssl.SSLError as exc:
            _shutdown(client)
            raise ProviderError(f"{self.label}: TLS failed ({exc.reason or exc})") from None
        except TimeoutError:
            _shutdown(client)
            raise TransientError(f"{self.label}: no answer within {s.timeout_seconds:g}s") from None
        except (OSError, IMAPClientAbortError, EOFError) as exc:
            _shutdown(client)
            raise TransientError(f"{self.label}: cannot connect ({_reason(exc)})") from None
        except IMAPClientError as exc:
            _shutdown(client)
            raise ProviderError(f"{self.label}: {_reason(exc)}") from None
        except ProviderError:
            _shutdown(client)
            raise
        self._client = client
        self.commands += 3  # greeting/CAPABILITY, (STARTTLS), LOGIN
        return client

    def _login(self, client: IMAPClient) -> None:
        s = self.settings
        try:
            if self._token is not None:
                try:
                    client.oauth2_login(s.username, self._token.token())
                except LoginError:  # an access token that just expired or was revoked: one fresh try
                    client.oauth2_login(s.username, self._token.token(force_refresh=True))
            else:
                client.login(s.username, read_password(self.account, s.password_env, s.password_file))
        except LoginError as exc:
            how = "token" if self._token is not None else "password or app password"
            hint = f"run `salvage auth {self.account}`" if self._token is not None else \
                "check the username and the " + ("environment variable " + s.password_env if s.password_env
                                                 else f"file {s.password_file}")
            message = (f"{self.label}: login refused ({_reason(exc)}); the {how} is wrong or "
                       f"revoked: {hint}")
            raise (AuthError(message) if self._token is not None else PasswordError(message)) from None

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._selected = None
        _shutdown(client)

    # ---- folders --------------------------------------------------------------------------------

    def _folders(self, client: IMAPClient) -> None:
        if self._drafts is not None:
            return
        self.commands += 1
        listing = client.list_folders()
        names = [name for _flags, _sep, name in listing]
        flagged: dict[bytes, str] = {}
        for flags, _sep, name in listing:
            for flag in flags:
                flagged.setdefault(flag.lower(), name)
        by_lower = {n.casefold(): n for n in names}

        def pick(configured: str | None, flag: bytes, common: Iterable[str]) -> str | None:
            if configured:
                if configured.casefold() not in by_lower:
                    raise ProviderError(f"{self.label}: there is no folder named {configured!r}")
                return by_lower[configured.casefold()]
            if flag in flagged:
                return flagged[flag]
            for candidate in common:
                for prefix in ("", "INBOX.", "INBOX/"):
                    found = by_lower.get((prefix + candidate).casefold())
                    if found:
                        return found
            return None

        drafts = pick(self.settings.drafts_folder, b"\\drafts", DRAFTS_NAMES)
        if drafts is None:
            raise ProviderError(f"{self.label}: no Drafts folder (none marked \\Drafts, none with a common name); "
                                "set drafts_folder")
        self._sent = pick(self.settings.sent_folder, b"\\sent", SENT_NAMES)
        inbox = by_lower.get("inbox", "INBOX")
        everything = flagged.get(b"\\all")
        self._search_folders = [inbox, *([everything] if everything else [])]
        self._drafts = drafts

    def _drafts_folder(self, client: IMAPClient) -> str:
        self._folders(client)
        assert self._drafts is not None
        return self._drafts

    def _sent_folder(self, client: IMAPClient) -> str | None:
        self._folders(client)
        return self._sent

    def _select(self, client: IMAPClient, folder: str, readonly: bool = False) -> None:
        """Select ``folder`` (kept selected; a selected folder's view is synced by each command)."""
        if self._selected == (folder, readonly) or (self._selected == (folder, False) and readonly):
            return
        self.commands += 1
        info = client.select_folder(folder, readonly=readonly)
        self._selected = (folder, readonly)
        validity = info.get(b"UIDVALIDITY")
        if validity is not None:
            self._uidvalidity[folder] = int(validity)

    # ---- messages -------------------------------------------------------------------------------

    def _search(self, client: IMAPClient, folder: str, criteria: list[Any], *, readonly: bool = False,
                deleted_too: bool = False) -> list[int]:
        self._select(client, folder, readonly)
        full = criteria if deleted_too else ["UNDELETED", *criteria]
        charset = "UTF-8" if any(isinstance(c, str) and not c.isascii() for c in full) else None
        self.commands += 1
        return [int(u) for u in client.search(full, charset=charset)]

    def _search_key(self, client: IMAPClient, folder: str, key: str, msgid: str | None = None, *,
                    readonly: bool = False, deleted_too: bool = False) -> list[int]:
        """UIDs of messages whose X-Salvage-Key is exactly ``key`` (or Message-ID is ``msgid``).

        IMAP's HEADER search matches substrings, so hits are confirmed against the header values.
        """
        criteria: list[Any] = []
        if key and msgid:
            criteria = ["OR", "HEADER", KEY_HEADER, key, "HEADER", "Message-ID", msgid]
        elif key:
            criteria = ["HEADER", KEY_HEADER, key]
        elif msgid:
            criteria = ["HEADER", "Message-ID", msgid]
        else:
            return []
        hits = self._search(client, folder, criteria, readonly=readonly, deleted_too=deleted_too)
        if not hits:
            return []
        self.commands += 1
        part = b"BODY[HEADER.FIELDS (X-SALVAGE-KEY MESSAGE-ID)]"
        fetched = client.fetch(hits, ["BODY.PEEK[HEADER.FIELDS (X-SALVAGE-KEY MESSAGE-ID)]"])
        exact: list[int] = []
        for uid, data in fetched.items():
            raw = data.get(part)
            if not isinstance(raw, bytes):
                continue
            if (key and _header(raw, KEY_HEADER) == key) or (msgid and _header(raw, "Message-ID") == msgid):
                exact.append(int(uid))
        return sorted(exact)

    def _own_uid(self, client: IMAPClient, folder: str, ref: DraftRef) -> int | None:
        """The ref's UID when it is still valid in ``folder`` (same UIDVALIDITY), else None."""
        if ref.extra.get("folder", folder) != folder or not ref.id.isdigit():
            return None
        self._select(client, folder)
        validity = ref.extra.get("uidvalidity")
        if validity and str(self._uidvalidity.get(folder)) != validity:
            return None
        return int(ref.id)

    def _alive(self, client: IMAPClient, uid: int) -> bool:
        """Whether the UID is in the selected folder and not flagged \\Deleted (one small FETCH)."""
        self.commands += 1
        data = client.fetch([uid], ["FLAGS"]).get(uid)
        return bool(data) and b"\\Deleted" not in data.get(b"FLAGS", ())

    def _fetch_raw(self, client: IMAPClient, uid: int) -> bytes | None:
        """The message's bytes, or None when the UID is gone or flagged \\Deleted."""
        self.commands += 1
        data = client.fetch([uid], ["FLAGS", "BODY.PEEK[]"]).get(uid)
        if not data or b"\\Deleted" in data.get(b"FLAGS", ()):
            return None
        raw = data.get(_FETCH_BODY)
        return raw if isinstance(raw, bytes) else None

    def _fetch_body(self, client: IMAPClient, uid: int) -> str | None:
        raw = self._fetch_raw(client, uid)
        if raw is None:
            return None
        try:
            return plain_body(parse_message(raw))
        except Exception:  # noqa: BLE001 - whatever the user did to it, it is theirs now
            return "\x00unreadable"

    def _fetch_body_print(self, client: IMAPClient, uid: int) -> str | None:
        body = self._fetch_body(client, uid)
        return None if body is None else fingerprint(body)

    def _appended_uid(self, client: IMAPClient, folder: str, response: bytes, key: str,
                      exclude: Iterable[int] = ()) -> int | None:
        match = _APPENDUID.search(response or b"")
        if match:
            self._uidvalidity.setdefault(folder, int(match.group(1)))
            return int(match.group(2))
        skip = set(exclude)  # no UIDPLUS: the newest message with our key that was not there before
        found = [u for u in self._search_key(client, folder, key) if u not in skip]
        return max(found) if found else None

    def _expunge(self, client: IMAPClient, folder: str, uids: list[int]) -> None:
        if not uids:
            return
        self._select(client, folder)
        self.commands += 1
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if self._uidplus:
            self.commands += 1
            client.uid_expunge(uids)
        # Without UIDPLUS a plain EXPUNGE would also remove what the user flagged; \Deleted is enough.

    def _thread_info(self, client: IMAPClient, uid: int) -> ThreadInfo | None:
        self.commands += 1
        part = b"BODY[HEADER.FIELDS (MESSAGE-ID REFERENCES SUBJECT)]"
        data = client.fetch([uid], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID REFERENCES SUBJECT)]"]).get(uid)
        raw = data.get(part) if data else None
        if not isinstance(raw, bytes):
            return None
        msg = parse_message(raw)
        message_id = _first_msgid(str(msg.get("Message-ID", "")))
        if message_id is None:
            return None
        references = tuple(_MSGID.findall(str(msg.get("References", ""))))
        subject = str(msg.get("Subject", "")).strip() or None
        return ThreadInfo(message_id=message_id, references=references, subject=subject)

    def _ref(self, uid: int | None, folder: str, key: str, print_: str, created: datetime | None,
             msgid: str | None, base: DraftRef | None = None) -> DraftRef:
        if uid is None:
            raise ProviderError(f"{self.label}: the draft was appended but the server gave no UID for it")
        extra = dict(base.extra) if base is not None else {}
        extra.update({"key": key, "folder": folder})
        validity = self._uidvalidity.get(folder)
        if validity is not None:
            extra["uidvalidity"] = str(validity)
        if msgid:
            extra["msgid"] = msgid
        return DraftRef(id=str(uid), fingerprint=print_, thread_id=base.thread_id if base else None,
                        created=created if base is None else base.created, extra=extra)


def _header(raw: bytes, name: str) -> str | None:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    match = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":[ \t]*(.*(?:\n[ \t].*)*)", head)
    return match.group(1).decode("utf-8", "replace").replace("\n", "").strip() if match else None


def _first_msgid(value: str) -> str | None:
    found = _MSGID.search(value)
    return found.group(0) if found else None


def _search_text(title: str) -> str:
    """A subject substring to search for: the title, without characters IMAP quoting trips on."""
    text = re.sub(r"[\"\\\r\n]+", " ", title).strip()
    return text[:80]


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, bytes):
        text = exc.decode("utf-8", "replace")
    return (text or type(exc).__name__)[:200]


def _shutdown(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - closing a broken socket may fail
        pass


__all__ = ["DRAFTS_NAMES", "SENT_NAMES", "ImapDraftStore", "open_drafts"]
