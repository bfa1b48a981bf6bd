"""Gmail drafts as a draft store (never sent), threaded under the invitation when mail may be read.

Only idempotent calls are retried blindly: ``drafts.create`` is retried after a clear rejection (429,
rate limit) and, after an ambiguous failure (timeout, 5xx), only once a search by ``X-Salvage-Key``
has shown that no draft was made.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import getaddresses
from functools import partial
from typing import Any

from daemon.core.model import Event, utc_now
from daemon.core.normalize import html_to_text
from providers.base import (
    Capabilities,
    DraftFate,
    DraftMessage,
    DraftRef,
    InvitationEmail,
    ProviderContext,
    ProviderError,
    ThreadInfo,
    TransientError,
)
from providers.google.auth import can_read_mail
from providers.google.client import GoogleSession, NotFound, Rejected, session
from providers.google.settings import GoogleDraftsSettings
from providers.mime import KEY_HEADER, checked_message, fingerprint, parse_message, plain_body
from providers.retry import call_with_retry

log = logging.getLogger(f"salvage.{__name__}")

SENT_SKEW = timedelta(minutes=1)


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


def _part_text(payload: dict[str, Any], mime_type: str) -> str:
    """The body of the first ``mime_type`` part of a ``format=full`` payload ('' if none, or unreadable)."""
    stack = [payload]
    while stack:
        part = stack.pop(0)
        if not isinstance(part, dict):
            continue
        data = (part.get("body") or {}).get("data")
        if str(part.get("mimeType", "")).lower() == mime_type and data and not part.get("filename"):
            try:
                return _b64decode(str(data)).decode("utf-8", "replace")
            except ValueError:
                return ""
        stack.extend(part.get("parts") or ())
    return ""


def _payload_text(payload: dict[str, Any]) -> str:
    """The first text/plain body of a ``format=full`` payload ('' if none)."""
    return _part_text(payload, "text/plain")


def _invitation_text(payload: dict[str, Any]) -> str:
    """The readable body of an invitation: its text/plain part, else its text/html part as text."""
    plain = _payload_text(payload)
    if plain:
        return plain
    html = _part_text(payload, "text/html")
    return html_to_text(html) if html else ""


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
        session: GoogleSession,
        *,
        user_addresses: Iterable[str] = (),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.account = session.account
        self.session = session
        self.user_addresses = {a.lower() for a in user_addresses}
        self._clock = clock
        self._warned_scope = False
        # Threading and telling sent from deleted both read mail, which the config may not allow.
        reads = session.conn.read_mail
        self.capabilities = Capabilities(threads_replies=reads, detects_edits=True, detects_sent=reads,
                                         reads_invitations=reads)

    def close(self) -> None:
        """Nothing of its own to close: the session belongs to the account's context."""

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
        message, raw = checked_message(draft)
        body: dict[str, Any] = {"message": {"raw": _b64encode(raw)}}
        if draft.thread_id:
            body["message"]["threadId"] = draft.thread_id
        try:
            resp = self._create(body, draft.key)
        except NotFound:
            if not draft.thread_id:
                raise
            log.info("%s: invitation thread %s is gone; creating the draft unthreaded", self.account,
                     draft.thread_id)
            del body["message"]["threadId"]
            resp = self._create(body, draft.key)
        if isinstance(resp, DraftRef):
            return resp
        return self._ref(resp, draft, message, created=self._clock())

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
            except Rejected:
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
        message, raw = checked_message(draft)
        body: dict[str, Any] = {"id": ref.id, "message": {"raw": _b64encode(raw)}}
        if draft.thread_id:
            body["message"]["threadId"] = draft.thread_id
        gmail = self._gmail
        try:
            resp = self.session.call(lambda: gmail.users().drafts().update(userId="me", id=ref.id, body=body),
                                     "drafts.update")
        except NotFound:
            raise ProviderError(f"Gmail draft {ref.id} no longer exists (sent or deleted meanwhile)") from None
        new = self._ref(resp, draft, message, created=ref.created or self._clock())
        return DraftRef(new.id, new.fingerprint, new.thread_id, new.created, {**ref.extra, **new.extra})

    def delete(self, ref: DraftRef) -> None:
        """Withdraw a draft (permanently deletes it; a draft already gone is fine)."""
        gmail = self._gmail
        try:
            self.session.call(lambda: gmail.users().drafts().delete(userId="me", id=ref.id), "drafts.delete")
        except NotFound:
            pass

    # -- lifecycle

    def fate(self, ref: DraftRef) -> DraftFate:
        """One ``drafts.get``: untouched or edited; when it is gone, sent (a SENT message) or deleted."""
        try:
            body = _draft_text(self._get_draft(ref.id, "raw"))
            if body is None:  # the server ignored format=raw and sent no content: ask for the parsed form
                body = _draft_text(self._get_draft(ref.id, "full"))
        except NotFound:
            return self._gone(ref)
        if body is None:
            raise ProviderError(f"Gmail draft {ref.id} came back without its message")
        return DraftFate.UNTOUCHED if fingerprint(body) == ref.fingerprint else DraftFate.EDITED

    def _gone(self, ref: DraftRef) -> DraftFate:
        """A draft that vanished was sent or discarded; without read_mail it counts as deleted."""
        if not self.read_mail:
            return DraftFate.DELETED
        since_ms = int(((ref.created or self._clock()) - SENT_SKEW).timestamp() * 1000)
        gmail = self._gmail
        to = ref.extra.get("to")
        if ref.thread_id:
            try:
                thread = self.session.call(
                    lambda: gmail.users().threads().get(userId="me", id=ref.thread_id, format="metadata",
                                                        metadataHeaders=["To", "Cc"]),
                    "threads.get")
            except NotFound:  # a sent draft would have left its SENT copy in the thread
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
                except NotFound:
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
        except NotFound:
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

    def read_invitation(self, event: Event) -> InvitationEmail | None:
        """The invitation email's subject and text, found as :meth:`find_thread` finds it; None if not."""
        thread = self.find_thread(event)
        if thread is None or not thread.mail_id:
            return None
        gmail = self._gmail
        try:
            full = self.session.call(
                partial(gmail.users().messages().get, userId="me", id=thread.mail_id, format="full"),
                "messages.get")
        except NotFound:
            return None
        payload = full.get("payload") or {}
        received = None
        if str(full.get("internalDate", "")).isdigit():
            received = datetime.fromtimestamp(int(full["internalDate"]) / 1000, tz=timezone.utc)
        return InvitationEmail(subject=thread.subject or "", text=_invitation_text(payload), received=received)

    def _pick_invitation(self, ids: list[str], event: Event) -> ThreadInfo | None:
        gmail = self._gmail
        metas: list[dict[str, Any]] = []
        for mid in ids:
            try:
                metas.append(self.session.call(
                    partial(gmail.users().messages().get, userId="me", id=mid, format="metadata",
                            metadataHeaders=["Message-ID", "References", "Subject"]),
                    "messages.get"))
            except NotFound:
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
            except NotFound:
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
        mail_id=meta.get("id") or None,
    )


# ---- registry factory ---------------------------------------------------------------------------


def open_drafts(settings: GoogleDraftsSettings, ctx: ProviderContext) -> GmailDrafts:
    """The Gmail draft store of an account (``drafts: {type: google}``)."""
    return GmailDrafts(session(ctx), user_addresses=ctx.addresses, clock=ctx.clock)
