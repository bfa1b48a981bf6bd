"""Outlook drafts through Graph messages as a draft store. Never sends."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from daemon.core.model import Event
from daemon.core.normalize import html_to_text, parse_instant
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
from providers.microsoft.client import GraphClient, GraphError, client, text_of, values_of
from providers.microsoft.settings import MicrosoftDraftsSettings
from providers.mime import KEY_HEADER, clean_header, fingerprint, graph_recipients, verify_graph_message

log = logging.getLogger(f"salvage.{__name__}")

TEXT_BODY = 'outlook.body-content-type="text"'
# X-Salvage-Key as a named property in the PS_INTERNET_HEADERS namespace: readable (and filterable)
# through Graph even where internetMessageHeaders is not returned, and sent as a header.
KEY_PROPERTY = "String {00020386-0000-0000-C000-000000000046} Name " + KEY_HEADER


def _message(draft: DraftMessage, *, headers: bool, key_property: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "subject": clean_header(draft.subject, 250),
        "body": {"contentType": "html", "content": draft.html} if draft.html else {"contentType": "text",
                                                                                   "content": draft.text},
        "toRecipients": graph_recipients(draft.to),
    }
    if draft.cc:
        message["ccRecipients"] = graph_recipients(draft.cc, "cc")
    if headers:
        message["internetMessageHeaders"] = [{"name": KEY_HEADER, "value": draft.key}]
    if key_property:
        message["singleValueExtendedProperties"] = [{"id": KEY_PROPERTY, "value": draft.key}]
    verify_graph_message(message, draft)  # what leaves the process is what was meant, or nothing
    return message


def _body_text(message: dict[str, Any]) -> str | None:
    body = message.get("body")
    if not isinstance(body, dict):
        return None
    content = text_of(body.get("content"))
    if text_of(body.get("contentType")).lower() == "html":
        return html_to_text(content)
    return content


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _subject_key(text: str) -> str:
    return " ".join(text.casefold().split())


class GraphDrafts:
    """Outlook drafts through Graph messages, as a :class:`DraftStore`. Never sends."""

    capabilities = Capabilities(threads_replies=True, detects_edits=True, detects_sent=True, reads_invitations=True)

    def __init__(self, client: GraphClient, ctx: ProviderContext) -> None:
        self.account = ctx.account
        self.client = client
        self.self_addresses = ctx.addresses

    def close(self) -> None:
        """Nothing of its own to close: the client belongs to the account's context."""

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
                    log.info("%s: draft %s was created despite an error; using it", self.account, draft.key[:8])
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
                         self.account, exc.code or exc.status)
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
        message_id = text_of(message.get("id"))
        if not message_id:
            raise ProviderError("Microsoft Graph created a reply draft without an id")
        try:
            self.client.patch(self._message_url(message_id),
                              {"singleValueExtendedProperties": [{"id": KEY_PROPERTY, "value": draft.key}]})
        except GraphError as exc:
            # The draft exists and we hold its id: keep it rather than make a second one.
            log.warning("%s: could not tag reply draft %s with its key (%s)", self.account,
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
        message_id = text_of(message.get("id"))
        if not message_id:
            raise ProviderError("Microsoft Graph created a draft without an id")
        stored = self._stored_fingerprint(message_id, message)
        created = text_of(message.get("createdDateTime"))
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
        if body is not None and text_of(body.get("contentType")).lower() == "text":
            return fingerprint(text_of(body.get("content")))
        current = self.client.get(self._message_url(message_id), {"$select": "body"}, prefer=(TEXT_BODY,))
        return fingerprint(_body_text(current) or "")

    # -- track ------------------------------------------------------------------------------------

    def fate(self, ref: DraftRef) -> DraftFate:
        """Still a draft (untouched or edited), sent (isDraft false), or deleted (Deleted Items / 404)."""
        try:
            message = self.client.get(self._message_url(ref.id), {"$select": "id,isDraft,parentFolderId,body"},
                                      prefer=(TEXT_BODY,))
        except GraphError as exc:
            if exc.status == 404 and exc.code == "ErrorItemNotFound":
                return DraftFate.DELETED  # the mailbox itself said so: positive evidence
            if exc.status == 404:
                raise ProviderError(f"draft {ref.id[:16]}…: HTTP 404 {exc.code or ''} is not Outlook saying the "
                                    "draft is gone (check microsoft.api_endpoint)") from None
            raise
        if message.get("isDraft") is False:
            return DraftFate.SENT
        folder = text_of(message.get("parentFolderId"))
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
                message_id = text_of(item.get("id"))
                current = self.client.get(self._message_url(message_id), {"$select": "id,body"}, prefer=(TEXT_BODY,))
                stored = fingerprint(_body_text(current) or "")
                created = text_of(item.get("createdDateTime"))
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
        for item in values_of(page):
            if item.get("isDraft") or title not in _subject_key(text_of(item.get("subject"))):
                continue
            odata_type = text_of(item.get("@odata.type")).lower()
            rank = 2 if odata_type.endswith("eventmessagerequest") else 1 if "eventmessage" in odata_type else 0
            score = (rank, text_of(item.get("receivedDateTime")))
            if best is None or score > best:
                best, chosen = score, item
        if chosen is None or not text_of(chosen.get("id")):
            return None
        return ThreadInfo(thread_id=text_of(chosen.get("id")), message_id=text_of(chosen.get("internetMessageId")) or None,
                          references=(), subject=text_of(chosen.get("subject")) or None)


    def read_invitation(self, event: Event) -> InvitationEmail | None:
        """The invitation email's subject and text, found as :meth:`find_thread` finds it; None if not."""
        thread = self.find_thread(event)
        if thread is None or not thread.thread_id:
            return None
        try:
            item = self.client.get(self._message_url(thread.thread_id),
                                   {"$select": "subject,body,receivedDateTime"},
                                   prefer=('outlook.body-content-type="text"',))
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        raw_body = item.get("body")
        body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
        content = text_of(body.get("content"))
        if text_of(body.get("contentType")).lower() == "html":  # the Prefer header was not honoured
            content = html_to_text(content)
        received = text_of(item.get("receivedDateTime"))
        return InvitationEmail(subject=text_of(item.get("subject")) or thread.subject or "", text=content,
                               received=parse_instant(received) if received else None)


def _folder_extra(extra: dict[str, str], message: dict[str, Any]) -> dict[str, str]:
    """``extra`` plus the folder the draft was made in, when Graph said."""
    folder = text_of(message.get("parentFolderId"))
    return {**extra, "folder": folder} if folder else extra


def _carries_key(item: dict[str, Any], key: str) -> bool:
    for header in item.get("internetMessageHeaders") or ():
        if isinstance(header, dict) and text_of(header.get("name")).lower() == KEY_HEADER.lower() and (
            text_of(header.get("value")).strip() == key
        ):
            return True
    for prop in item.get("singleValueExtendedProperties") or ():
        if isinstance(prop, dict) and text_of(prop.get("id")).lower() == KEY_PROPERTY.lower() and (
            text_of(prop.get("value")).strip() == key
        ):
            return True
    return False


# ---- registry factory -------------------------------------------------------------------------


def open_drafts(settings: MicrosoftDraftsSettings, ctx: ProviderContext) -> GraphDrafts:
    """The Outlook draft store of an account (registered as ``microsoft``)."""
    return GraphDrafts(client(ctx), ctx)
