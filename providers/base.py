"""The small interfaces every provider implements, and the values that cross them.

A provider module implements one or both of :class:`CalendarSource` and :class:`DraftStore` and is
registered by one line in :mod:`providers.registry`. The core never imports providers.

Errors: providers raise the exceptions below (never library-specific ones) so the service can treat
the three kinds of failure differently: :class:`AuthError` (the account waits for
``salvage auth``), :class:`TransientError` (retried later with backoff), :class:`ProviderError`
(anything else that is the remote's or the config's fault; shown, retried at the next poll).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from daemon import __version__
from daemon.config import ProviderSection
from daemon.core.model import Event, utc_now

T = TypeVar("T")
S = TypeVar("S", bound=ProviderSection)


class ProviderError(Exception):
    """A provider failed in a way that affects only its account."""


class AuthError(ProviderError):
    """Credentials are missing, expired or revoked: the user must run ``salvage auth ACCOUNT``."""


class TransientError(ProviderError):
    """Temporary failure (rate limit, 5xx, timeout). ``retry_after`` is in seconds, if known.

    ``shared`` says the limit hit is the application's, shared by every account of the provider (a
    project's quota, not one user's): the engine then holds back every account of that provider.
    """

    def __init__(self, message: str, retry_after: float | None = None, *, shared: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.shared = shared


@dataclass(frozen=True, slots=True)
class Window:
    """The time range a calendar source must cover: ``start`` <= event end, event start < ``end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError("Window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("Window end must be after its start")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one poll of a calendar source produced.

    - ``complete=True``: ``events`` is the whole content of the window (replace what was known).
    - ``complete=False``: a delta. ``events`` are added or changed occurrences, ``removed`` lists
      the ``source_id`` values of occurrences that are gone.
    - ``unchanged=True``: nothing changed since ``cursor`` (e.g. HTTP 304); ``events`` is empty.
    ``cursor`` is opaque state for the next call (sync token, delta link, ETag…), saved by the caller.
    ``problems`` are human-readable notes about items that could not be read (a malformed event
    affects only itself).
    """

    events: tuple[Event, ...] = ()
    removed: tuple[str, ...] = ()
    complete: bool = True
    unchanged: bool = False
    cursor: str | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a calendar source or draft store can do; the engine reads these.

    ``incremental``: a calendar answers deltas since its cursor (a delta from a source that does not
    say so is refused, as applying it would drop events). ``threads_replies``: ``find_thread`` can
    find the invitation to reply under (else the engine does not ask). ``detects_edits``: ``fate``
    can tell the user's edit from our content (else a draft, once made, is never rewritten).
    ``detects_sent``: ``fate`` can tell sent from discarded (else a vanished draft is "sent or
    deleted"). ``reads_invitations``: the store offers ``read_invitation(event) -> InvitationEmail |
    None`` (else the engine does not ask).
    """

    incremental: bool = False
    threads_replies: bool = False
    detects_edits: bool = True
    detects_sent: bool = True
    reads_invitations: bool = False


@runtime_checkable
class CalendarSource(Protocol):
    """Yields events for a window, incrementally when ``cursor`` (from the last result) allows."""

    capabilities: Capabilities  # only ``incremental`` applies to a calendar source

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        """Return the events of ``window``; a delta since ``cursor`` when the source supports it.

        A cursor that the remote rejects (e.g. Google 410, Graph 410) must lead to a full result
        (``complete=True``) rather than an error.
        """
        ...


@dataclass(frozen=True, slots=True)
class Address:
    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class DraftMessage:
    """A rendered draft, provider-neutral. Build MIME with :func:`providers.mime.build_message`."""

    key: str  # goes into the X-Salvage-Key header
    sender: Address
    to: tuple[Address, ...]
    subject: str
    text: str
    html: str | None = None
    cc: tuple[Address, ...] = ()
    in_reply_to: str | None = None  # Message-ID of the invitation, with angle brackets
    references: tuple[str, ...] = ()
    thread_id: str | None = None  # provider thread / conversation / message id to reply to
    occurrence_key: str = ""


@dataclass(frozen=True, slots=True)
class DraftRef:
    """Where a draft lives in a mailbox, and a fingerprint of what we put there.

    ``id`` is the provider's stable id (Gmail draft id, Graph immutable message id, file name, IMAP
    UID…). ``fingerprint`` is :func:`providers.mime.fingerprint` of the body we wrote, so an edit by the
    user can be told apart from our own content. ``extra`` holds provider data (JSON-serialisable).
    """

    id: str
    fingerprint: str
    thread_id: str | None = None
    created: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


class DraftFate(str, Enum):
    UNTOUCHED = "untouched"
    EDITED = "edited"
    SENT = "sent"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """How to make a draft a reply to the invitation email, when one was found."""

    thread_id: str | None = None
    message_id: str | None = None  # RFC 5322 Message-ID, with angle brackets
    references: tuple[str, ...] = ()
    subject: str | None = None
    mail_id: str | None = None  # the provider's id of the invitation message (Gmail), when it differs


@dataclass(frozen=True, slots=True)
class InvitationEmail:
    """The invitation email for an event, as a mail provider found it: its subject and plain text.

    Draft stores that can read mail offer ``read_invitation(event) -> InvitationEmail | None``; the
    engine parses it with :func:`daemon.core.invitation.parse_invitation`.
    """

    subject: str
    text: str
    received: datetime | None = None


@runtime_checkable
class DraftStore(Protocol):
    """Creates and tracks drafts in the user's own mailbox. Never sends.

    A fate is read only from positive evidence. :meth:`fate` answers ``DELETED`` only when the store
    itself positively said "no such draft" (Gmail's JSON 404 ``notFound``, Graph's 404
    ``ErrorItemNotFound``, a file absent from a drafts folder that could be read in full, an IMAP
    SEARCH that ran and found nothing). Anything that keeps it from knowing — an I/O or permission
    error, a missing or unmounted folder, a 5xx, a timeout, a 404 page from a proxy — raises
    :class:`ProviderError` (or :class:`TransientError`): the draft keeps its state, the pass reports
    the error, and the next pass asks again. The same holds for :meth:`find_by_key`: ``None`` means
    the mailbox was searched and holds no such draft. ``tests/contract`` checks this for every store.
    """

    capabilities: Capabilities  # threads_replies, detects_edits, detects_sent

    def create(self, draft: DraftMessage) -> DraftRef:
        """Put a new draft in the Drafts folder and return where it is."""
        ...

    def fate(self, ref: DraftRef) -> DraftFate:
        """What became of a draft we created: untouched, edited by the user, sent, or deleted."""
        ...

    def update(self, ref: DraftRef, draft: DraftMessage) -> DraftRef:
        """Replace an untouched draft's content (the event changed). Returns the new ref."""
        ...

    def delete(self, ref: DraftRef) -> None:
        """Withdraw an untouched draft whose reason is gone."""
        ...

    def find_by_key(self, key: str) -> DraftRef | None:
        """Find a draft carrying ``X-Salvage-Key: key`` (crash recovery); None if there is none."""
        ...

    def find_thread(self, event: Event) -> ThreadInfo | None:
        """Find the invitation email for ``event`` to reply to; None when not found or not supported."""
        ...


@runtime_checkable
class TokenSource(Protocol):
    """Where a provider's access tokens come from: one method, whatever the sign-in behind it.

    Implemented by Google's saved OAuth grant (:class:`providers.google.auth.GoogleTokenSource`),
    Microsoft's msal cache (:class:`providers.microsoft.auth.MsalTokenSource`) and
    :class:`FixedToken` (tests, or a token handed over by another tool).
    """

    def token(self, *, force_refresh: bool = False) -> str:
        """A usable access token; a fresh one when ``force_refresh`` (the last was refused).

        Raises :class:`AuthError` when the user must run ``salvage auth`` and
        :class:`TransientError` when the token service cannot be reached.
        """
        ...


class FixedToken:
    """A :class:`TokenSource` that always hands out the same token (it cannot be refreshed)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.refused = 0  # how often a refresh was asked for (the token was refused)

    def token(self, *, force_refresh: bool = False) -> str:
        """The fixed token; after a refusal, :class:`AuthError` (nothing can renew it)."""
        if force_refresh:
            self.refused += 1
            raise AuthError("the fixed access token was refused")
        return self.value


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """A saved cursor as the JSON object a source wrote, or None when absent or unreadable.

    An unreadable cursor (from an older version, or damaged) is not an error: the source then does a
    full sync, which is always safe.
    """
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


# ---- what a provider declares, and what it is given ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Role:
    """One side of a provider: its section model and its factory.

    ``factory`` is ``"module:function"``, imported only when an account uses it; the function takes
    ``(settings, context)`` (an instance of ``settings`` and a :class:`ProviderContext`) and returns
    an object that declares its :class:`Capabilities` as ``capabilities``.
    """

    settings: type[ProviderSection]
    factory: str


@dataclass(frozen=True, slots=True)
class Provider:
    """Everything the registry needs to know about one provider (its module's ``PROVIDER``).

    ``connection`` is the model of the account-level section named after the provider (``google:``),
    shared by its calendar and drafts; ``authenticate`` is ``"module:function"`` taking
    ``(context, *, no_browser, out)`` for ``salvage auth``.
    """

    name: str
    calendar: Role | None = None
    drafts: Role | None = None
    connection: type[ProviderSection] | None = None
    authenticate: str | None = None

    def role(self, role: str) -> Role | None:
        """The ``calendar`` or ``drafts`` role, if the provider has it."""
        return self.calendar if role == "calendar" else self.drafts if role == "drafts" else None


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """HTTP settings common to every provider (timeouts and CA bundles are the provider's own)."""

    user_agent: str = f"salvage/{__version__}"


class HttpClients(Protocol):
    """Where providers get their HTTP clients: one per CA bundle, shared (see providers/http.py)."""

    def client(self, ca_bundle: Path | None = None) -> Any: ...


class ProviderContext:
    """What a provider is given besides its settings: who the account is, where files go, the clock.

    One context per account: its :meth:`shared` pool gives the calendar source and the draft store of
    the account the same connection object (one session, one token keeper) when they share a service;
    :meth:`close` closes the pool.
    """

    def __init__(
        self,
        account: str,
        *,
        user_name: str,
        email: str,
        addresses: frozenset[str],
        zone: tzinfo,
        state_dir: Path,
        connections: Mapping[str, ProviderSection] | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        http: HttpOptions = HttpOptions(),
        http_clients: HttpClients | None = None,
    ) -> None:
        self.account = account
        self.user_name = user_name
        self.email = email
        self.addresses = addresses
        self.zone = zone
        self.state_dir = state_dir
        self.connections: Mapping[str, ProviderSection] = dict(connections or {})
        self.clock = clock
        self.sleep = sleep
        self.http = http
        self.http_clients = http_clients
        self._pool: dict[str, Any] = {}
        self._lock = threading.Lock()

    def connection(self, name: str, model: type[S]) -> S:
        """The account's ``name:`` section (validated by the config as ``model``)."""
        section = self.connections.get(name)
        if not isinstance(section, model):
            raise ProviderError(f"account {self.account!r} has no '{name}:' section")
        return section

    def http_client(self, ca_bundle: Path | None = None) -> Any:
        """An HTTP client (httpx) trusting ``ca_bundle`` or the system's CAs, shared between accounts."""
        if self.http_clients is None:
            raise ProviderError(f"account {self.account!r} was given no HTTP clients")
        return self.http_clients.client(ca_bundle)

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """The account's one object for ``key``, made by ``make()`` on first use."""
        with self._lock:
            if key not in self._pool:
                self._pool[key] = make()
            return self._pool[key]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close every shared object (they are made again on next use)."""
        with self._lock:
            pool, self._pool = self._pool, {}
        for value in pool.values():
            closer = getattr(value, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # noqa: BLE001 - closing must never fail
                    pass
