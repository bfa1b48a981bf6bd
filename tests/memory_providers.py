"""In-memory calendar and mailbox for pipeline and service tests (the providers' protocols, no I/O).

Tests play the user on the mailbox: edit ``bodies``, add ids to ``sent``, remove from ``drafts``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timezone

from daemon.core.model import Event
from providers.base import (
    Capabilities,
    DraftFate,
    DraftMessage,
    DraftRef,
    FetchResult,
    InvitationEmail,
    ProviderError,
    ThreadInfo,
    Window,
)
from providers.mime import build_message, fingerprint


class MemoryCalendar:
    capabilities = Capabilities(incremental=False)

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.error: Exception | None = None
        self.calls = 0

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        self.calls += 1
        if self.error is not None:
            raise self.error
        inside = tuple(e for e in self.events if _overlaps(e, window))
        return FetchResult(events=inside, cursor=f"v{self.calls}")


def _overlaps(event: Event, window: Window) -> bool:
    start, end = event.span(timezone.utc)  # all-day events as UTC days: close enough for tests
    return end > window.start and start < window.end


class MemoryMailbox:
    """A mailbox that remembers drafts and lets a test play the user (edit, delete, send)."""

    capabilities = Capabilities(threads_replies=True, detects_edits=True, detects_sent=True, reads_invitations=True)

    def __init__(self) -> None:
        self.drafts: dict[str, DraftMessage] = {}
        self.bodies: dict[str, str] = {}
        self.sent: set[str] = set()
        self.ids = itertools.count(1)
        self.crash_after_create = False
        self.thread: ThreadInfo | None = None
        self.invitation: InvitationEmail | None = None  # what read_invitation finds
        self.invitation_reads = 0
        self.error: Exception | None = None  # raised by every call while set (an unreachable mailbox)

    def create(self, draft: DraftMessage) -> DraftRef:
        self._fail()
        draft_id = f"d{next(self.ids)}"
        build_message(draft)  # must be a valid message
        self.drafts[draft_id] = draft
        self.bodies[draft_id] = draft.text
        if self.crash_after_create:
            self.crash_after_create = False
            raise RuntimeError("power cut right after the draft was created")
        return DraftRef(id=draft_id, fingerprint=fingerprint(draft.text), thread_id=draft.thread_id)

    def fate(self, ref: DraftRef) -> DraftFate:
        self._fail()
        if ref.id in self.sent:
            return DraftFate.SENT
        if ref.id not in self.drafts:
            return DraftFate.DELETED
        return DraftFate.UNTOUCHED if fingerprint(self.bodies[ref.id]) == ref.fingerprint else DraftFate.EDITED

    def update(self, ref: DraftRef, draft: DraftMessage) -> DraftRef:
        self._fail()
        if ref.id not in self.drafts:
            raise ProviderError(f"draft {ref.id} no longer exists")
        self.drafts[ref.id] = draft
        self.bodies[ref.id] = draft.text
        return replace(ref, fingerprint=fingerprint(draft.text))

    def delete(self, ref: DraftRef) -> None:
        self._fail()
        self.drafts.pop(ref.id, None)

    def find_by_key(self, key: str) -> DraftRef | None:
        self._fail()
        for draft_id, draft in self.drafts.items():
            if draft.key == key:
                return DraftRef(id=draft_id, fingerprint=fingerprint(self.bodies[draft_id]))
        return None

    def find_thread(self, event: Event) -> ThreadInfo | None:
        return self.thread

    def read_invitation(self, event: Event) -> InvitationEmail | None:
        self.invitation_reads += 1
        return self.invitation

    def _fail(self) -> None:
        if self.error is not None:
            raise self.error

    def kinds(self) -> list[str]:
        """The keys of the drafts there now, sorted."""
        return sorted(d.key for d in self.drafts.values())
