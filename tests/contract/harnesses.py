"""One harness per provider for the contract suites: the provider under test plus a way to play its world.

A calendar harness seeds the remote calendar (``add``/``retitle``/``remove``) and opens the source
under test; a mailbox harness opens the draft store and plays the user (edit, send, discard). The
suites in this folder run every test over every harness listed in :data:`CALENDARS` and
:data:`MAILBOXES`. Adding a provider = one harness class here + one line in each table that applies
(see docs/providers.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from fakes.google_fake import GoogleFake
from fakes.google_fake import config_yaml as google_config
from fakes.graph_fake import GraphFake, config_text, sign_in
from memory_providers import MemoryCalendar, MemoryMailbox

from daemon.config import Config, parse_config
from daemon.core.model import Event, person
from providers import registry
from providers.base import CalendarSource, DraftRef, DraftStore, TransientError

UTC = timezone.utc
ME = "me@example.com"
ORGANIZER = "rita@acme.example"


class CalendarHarness(Protocol):
    """A calendar provider under test and the remote calendar it reads."""

    def add(self, title: str, start: datetime | date, end: datetime | date) -> str:
        """Seed an event organised by :data:`ORGANIZER`; returns a handle for later changes."""
        ...

    def retitle(self, handle: str, title: str) -> None:
        """Rename a seeded event (as the organizer would)."""
        ...

    def remove(self, handle: str) -> None:
        """Delete a seeded event."""
        ...

    def source(self) -> CalendarSource:
        """The calendar source under test (opened through the registry)."""
        ...


class MailboxHarness(Protocol):
    """A draft store under test and the mailbox it writes to; plays the user."""

    def store(self) -> DraftStore:
        """The draft store under test (opened through the registry where the provider allows)."""
        ...

    def user_edits(self, ref: DraftRef, text: str) -> None: ...
    def user_sends(self, ref: DraftRef) -> None: ...
    def user_deletes(self, ref: DraftRef) -> None: ...

    def live_keys(self) -> list[str]:
        """``X-Salvage-Key`` of every draft now in the Drafts folder, sorted."""
        ...

    def sent_by_us(self) -> int:
        """How many messages the provider itself sent (must stay 0: Salvage never sends)."""
        ...

    def outages(self, ref: DraftRef) -> dict[str, Callable[[], AbstractContextManager[None]]]:
        """Ways the store can fail to see ``ref`` without it being gone (unreachable, unreadable, a proxy)."""
        ...


def _config(text: str) -> Config:
    return parse_config(text)


# ---- in-memory ------------------------------------------------------------------------------------


class MemoryCalendarHarness:
    def __init__(self) -> None:
        self.calendar = MemoryCalendar()
        self._n = 0

    def add(self, title: str, start: datetime | date, end: datetime | date) -> str:
        self._n += 1
        handle = f"m{self._n}"
        self.calendar.events.append(Event(account="contract", source_id=handle, title=title, start=start, end=end,
                                          organizer=person(ORGANIZER)))
        return handle

    def _replace(self, handle: str, event: Event | None) -> None:
        events = [e for e in self.calendar.events if e.source_id != handle]
        self.calendar.events = events + ([event] if event is not None else [])

    def retitle(self, handle: str, title: str) -> None:
        old = next(e for e in self.calendar.events if e.source_id == handle)
        from dataclasses import replace

        self._replace(handle, replace(old, title=title))

    def remove(self, handle: str) -> None:
        self._replace(handle, None)

    def source(self) -> CalendarSource:
        return self.calendar


class MemoryMailboxHarness:
    def __init__(self) -> None:
        self.mailbox = MemoryMailbox()

    def store(self) -> DraftStore:
        return self.mailbox

    def user_edits(self, ref: DraftRef, text: str) -> None:
        self.mailbox.bodies[ref.id] = text

    def user_sends(self, ref: DraftRef) -> None:
        self.mailbox.sent.add(ref.id)
        self.mailbox.drafts.pop(ref.id)

    def user_deletes(self, ref: DraftRef) -> None:
        self.mailbox.drafts.pop(ref.id)

    def live_keys(self) -> list[str]:
        return self.mailbox.kinds()

    def outages(self, ref: DraftRef) -> dict[str, Callable[[], AbstractContextManager[None]]]:
        @contextmanager
        def unreachable() -> Iterator[None]:
            self.mailbox.error = TransientError("mailbox unreachable")
            try:
                yield
            finally:
                self.mailbox.error = None

        return {"unreachable": unreachable}

    def sent_by_us(self) -> int:
        return 0


# ---- ics and folder (files) ---------------------------------------------------------------------------


def _ics_when(name: str, value: datetime | date) -> str:
    if isinstance(value, datetime):
        return f"{name}:{value.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{name};VALUE=DATE:{value.strftime('%Y%m%d')}"


class IcsHarness:
    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "calendar.ics"
        self.events: dict[str, tuple[str, datetime | date, datetime | date]] = {}
        self._write()
        self.config = _config(
            f"user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}\n"
            f"accounts:\n  - name: contract\n    calendar: {{type: ics, path: {self.path}}}\n"
            f"    drafts: {{type: folder, path: {tmp / 'drafts'}}}\n")

    def _write(self) -> None:
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Salvage contract//EN"]
        for uid, (title, start, end) in self.events.items():
            lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z", _ics_when("DTSTART", start),
                      _ics_when("DTEND", end), f"SUMMARY:{title}", f"ORGANIZER:mailto:{ORGANIZER}",
                      f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ME}", "END:VEVENT"]
        lines.append("END:VCALENDAR")
        self.path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")

    def add(self, title: str, start: datetime | date, end: datetime | date) -> str:
        uid = f"e{len(self.events) + 1}@contract.example"
        self.events[uid] = (title, start, end)
        self._write()
        return uid

    def retitle(self, handle: str, title: str) -> None:
        _, start, end = self.events[handle]
        self.events[handle] = (title, start, end)
        self._write()

    def remove(self, handle: str) -> None:
        del self.events[handle]
        self._write()

    def source(self) -> CalendarSource:
        return registry.open_calendar(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))


class FolderHarness:
    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "drafts"
        self.config = _config(
            f"user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}\n"
            f"accounts:\n  - name: contract\n    calendar: {{type: ics, path: {tmp / 'none.ics'}}}\n"
            f"    drafts: {{type: folder, path: {self.path}}}\n")

    def store(self) -> DraftStore:
        return registry.open_drafts(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))

    def user_edits(self, ref: DraftRef, text: str) -> None:
        from providers.mime import parse_message

        file = self.path / ref.id
        message = parse_message(file.read_bytes())
        message.set_content(text)
        file.write_bytes(message.as_bytes())

    def user_sends(self, ref: DraftRef) -> None:
        (self.path / "sent").mkdir(exist_ok=True)
        os.replace(self.path / ref.id, self.path / "sent" / ref.id)

    def user_deletes(self, ref: DraftRef) -> None:
        (self.path / ref.id).unlink()

    def live_keys(self) -> list[str]:
        from providers.mime import KEY_HEADER, parse_message

        return sorted(str(parse_message(p.read_bytes())[KEY_HEADER]) for p in self.path.glob("*.eml"))

    def outages(self, ref: DraftRef) -> dict[str, Callable[[], AbstractContextManager[None]]]:
        aside = self.path.with_name("drafts-aside")

        @contextmanager
        def folder_missing() -> Iterator[None]:  # an unmounted disk, a sync client mid-move
            os.replace(self.path, aside)
            try:
                yield
            finally:
                os.replace(aside, self.path)

        @contextmanager
        def folder_is_a_file() -> Iterator[None]:
            os.replace(self.path, aside)
            self.path.write_text("not a folder")
            try:
                yield
            finally:
                self.path.unlink()
                os.replace(aside, self.path)

        @contextmanager
        def draft_is_not_a_file() -> Iterator[None]:
            file = self.path / ref.id
            os.replace(file, aside)
            file.mkdir()
            try:
                yield
            finally:
                file.rmdir()
                os.replace(aside, file)

        return {"folder missing": folder_missing, "folder is a file": folder_is_a_file,
                "draft is not a file": draft_is_not_a_file}

    def sent_by_us(self) -> int:
        return 0


# ---- Google (loopback fake) ----------------------------------------------------------------------


def _google_when(value: datetime | date) -> dict[str, str]:
    if isinstance(value, datetime):
        return {"dateTime": value.isoformat()}
    return {"date": value.isoformat()}


class GoogleHarness:
    def __init__(self, fake: GoogleFake, tmp: Path) -> None:
        self.fake = fake
        fake.add_client()
        fake.add_calendar(ME, "Me", primary=True)
        fake.token_file(tmp / "tokens" / "g.google.json")
        self.config = _config(google_config(fake, tmp))

    def add(self, title: str, start: datetime | date, end: datetime | date) -> str:
        item = self.fake.put_event(ME, {"summary": title, "start": _google_when(start), "end": _google_when(end),
                                        "organizer": {"email": ORGANIZER},
                                        "attendees": [{"email": ME, "self": True, "responseStatus": "accepted"},
                                                      {"email": ORGANIZER, "organizer": True}]})
        return str(item["id"])

    def retitle(self, handle: str, title: str) -> None:
        old = self.fake.calendars[ME].events[handle]
        self.fake.put_event(ME, {**old, "summary": title})

    def remove(self, handle: str) -> None:
        self.fake.cancel_event(ME, handle)

    def source(self) -> CalendarSource:
        return registry.open_calendar(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))

    def store(self) -> DraftStore:
        return registry.open_drafts(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))

    def user_edits(self, ref: DraftRef, text: str) -> None:
        self.fake.user_edit(ref.id, text)

    def user_sends(self, ref: DraftRef) -> None:
        self.fake.user_send(ref.id)

    def user_deletes(self, ref: DraftRef) -> None:
        self.fake.user_discard(ref.id)

    def outages(self, ref: DraftRef) -> dict[str, Callable[[], AbstractContextManager[None]]]:
        @contextmanager
        def fault(status: int, body: bytes | None = None, reason: str = "") -> Iterator[None]:
            self.fake.fail("drafts.get", status, body=body, reason=reason, times=50)
            try:
                yield
            finally:
                self.fake.faults.clear()

        return {"a proxy's 404 page": lambda: fault(404, b"<html><body>404 Not Found</body></html>"),
                "permission denied": lambda: fault(403, reason="forbidden")}

    def live_keys(self) -> list[str]:
        from providers.mime import KEY_HEADER

        return sorted(str(self.fake.draft_message(d).parsed[KEY_HEADER]) for d in list(self.fake.drafts))

    def sent_by_us(self) -> int:
        return self.fake.count("drafts.send") + self.fake.count("messages.send")


# ---- Microsoft Graph (loopback fake) ---------------------------------------------------------------


class GraphHarness:
    def __init__(self, fake: GraphFake, state: Path) -> None:
        self.fake = fake
        self.config = _config(config_text(fake, state))

    def add(self, title: str, start: datetime | date, end: datetime | date) -> str:
        return self.fake.add_event(title, start, end, organizer=("Rita Recruiter", ORGANIZER),
                                   attendees=[(self.fake.user_name, self.fake.user_email, "required", "accepted")])

    def retitle(self, handle: str, title: str) -> None:
        self.fake.update_event(handle, subject=title)

    def remove(self, handle: str) -> None:
        self.fake.delete_event(handle)

    def source(self) -> CalendarSource:
        return registry.open_calendar(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))

    def store(self) -> DraftStore:
        return registry.open_drafts(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))

    def user_edits(self, ref: DraftRef, text: str) -> None:
        self.fake.user_edits(ref.id, text)

    def user_sends(self, ref: DraftRef) -> None:
        self.fake.user_sends(ref.id)

    def user_deletes(self, ref: DraftRef) -> None:
        self.fake.user_deletes(ref.id)

    def outages(self, ref: DraftRef) -> dict[str, Callable[[], AbstractContextManager[None]]]:
        @contextmanager
        def fault(status: int, code: str) -> Iterator[None]:
            found = self.fake.add_fault("/messages/", status, method="GET", times=50,
                                        body={"error": {"code": code, "message": "injected"}})
            try:
                yield
            finally:
                found.times = 0

        return {"a 404 that is not ErrorItemNotFound": lambda: fault(404, "NotFound"),
                "access denied": lambda: fault(403, "ErrorAccessDenied")}

    def live_keys(self) -> list[str]:
        return sorted(str(self.fake.draft_key(m)) for m in self.fake.drafts())

    def sent_by_us(self) -> int:
        return sum(1 for r in self.fake.requests if r.path.endswith(("/send", "/sendMail")))


# ---- CalDAV (a real Radicale) ------------------------------------------------------------------------------


class CaldavHarness:
    def __init__(self, server: Any, user: str, tmp: Path) -> None:
        self.server = server
        self.user = user
        self.calendar = server.make_calendar(user, "work", "Work")
        self.events: dict[str, tuple[str, datetime | date, datetime | date]] = {}
        os.environ[CALDAV_PASSWORD_ENV] = CALDAV_PASSWORD
        self.config = _config(f"""
user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}
accounts:
  - name: contract
    calendar: {{type: caldav, url: "{server.url}", username: {user}, password_env: {CALDAV_PASSWORD_ENV}}}
    drafts: {{type: folder, path: {tmp / 'drafts'}}}
""")

    def _put(self, uid: str) -> None:
        title, start, end = self.events[uid]
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Salvage contract//EN", "BEGIN:VEVENT", f"UID:{uid}",
                 "DTSTAMP:20261101T000000Z", _ics_when("DTSTART", start), _ics_when("DTEND", end),
                 f"SUMMARY:{title}", f"ORGANIZER:mailto:{ORGANIZER}", f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ME}",
                 "END:VEVENT", "END:VCALENDAR"]
        self.server.put(self.user, self.calendar, uid, "\r\n".join(lines) + "\r\n")

    def add(self, title: str, start: datetime | date, end: datetime | date) -> str:
        uid = f"e{len(self.events) + 1}"
        self.events[uid] = (title, start, end)
        self._put(uid)
        return uid

    def retitle(self, handle: str, title: str) -> None:
        _, start, end = self.events[handle]
        self.events[handle] = (title, start, end)
        self._put(handle)

    def remove(self, handle: str) -> None:
        del self.events[handle]
        self.server.delete(self.user, self.calendar, handle)

    def source(self) -> CalendarSource:
        return registry.open_calendar(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))


CALDAV_PASSWORD_ENV = "SALVAGE_CONTRACT_CALDAV_PASSWORD"
CALDAV_PASSWORD = "contract-app-password"


# ---- IMAP (a real Dovecot) ------------------------------------------------------------------------------


class ImapHarness:
    def __init__(self, server: Any, user: str, tmp: Path) -> None:
        from imapclient import IMAPClient

        self.server = server
        (tmp / "none.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
        os.environ[IMAP_PASSWORD_ENV] = IMAP_PASSWORD
        self.config = _config(f"""
user: {{name: Alex Morgan, email: {ME}, timezone: Europe/London}}
accounts:
  - name: contract
    calendar: {{type: ics, path: {tmp / 'none.ics'}}}
    drafts: {{type: imap, host: 127.0.0.1, port: {server.port}, security: none, username: {user},
              password_env: {IMAP_PASSWORD_ENV}}}
""")
        self._user = user
        self.client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
        self.client.login(user, IMAP_PASSWORD)
        self._stores: list[Any] = []

    def store(self) -> DraftStore:
        store = registry.open_drafts(self.config.accounts[0], registry.context(self.config.accounts[0], self.config))
        self._stores.append(store)
        return store

    def _uid(self, ref: DraftRef) -> int:
        self.client.select_folder("Drafts")
        return int(ref.id)

    def user_edits(self, ref: DraftRef, text: str) -> None:
        from providers.mime import parse_message

        uid = self._uid(ref)
        msg = parse_message(self.client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"])
        msg.set_content(text)  # a mail client saves an edit as a new message and removes the old one
        self.client.append("Drafts", bytes(msg), flags=[b"\\Draft"])
        self.user_deletes(ref)

    def user_sends(self, ref: DraftRef) -> None:
        self.client.move([self._uid(ref)], "Sent")

    def user_deletes(self, ref: DraftRef) -> None:
        uid = self._uid(ref)
        self.client.delete_messages([uid])
        self.client.uid_expunge([uid])

    def live_keys(self) -> list[str]:
        from providers.mime import KEY_HEADER, parse_message

        self.client.select_folder("Drafts")
        uids = self.client.search(["UNDELETED"])
        found = self.client.fetch(uids, ["BODY.PEEK[HEADER]"]) if uids else {}
        return sorted(str(parse_message(d[b"BODY[HEADER]"])[KEY_HEADER]) for d in found.values())

    def sent_by_us(self) -> int:
        return 0  # an IMAP store has no way to send: it only APPENDs, and the suite checks where to

    def outages(self, ref: DraftRef) -> dict[str, Callable[[], AbstractContextManager[None]]]:
        @contextmanager
        def server_down() -> Iterator[None]:
            from imapclient import IMAPClient

            self.server.stop()
            try:
                yield
            finally:
                self.server.start()
                self.client = IMAPClient("127.0.0.1", port=self.server.port, ssl=False)  # ours went down too
                self.client.login(self._user, IMAP_PASSWORD)

        return {"server down": server_down}

    def close(self) -> None:
        for store in self._stores:
            store.close()
        self.client.logout()


IMAP_PASSWORD_ENV = "SALVAGE_CONTRACT_IMAP_PASSWORD"
IMAP_PASSWORD = "contract-app-password"


# ---- shared servers and the tables ---------------------------------------------------------------------


class Servers:
    """Loopback fakes shared by the whole contract session (a Graph sign-in is slow), reset per test."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._graph: GraphFake | None = None
        self._graph_state = tmp / "graph"
        self._dovecot: Any = None
        self._radicale: Any = None
        self._caldav_users: Iterator[str] = iter(f"contract{i}" for i in range(1, 81))
        self._imap_users: Iterator[str] = iter(f"contract{i}@example.com" for i in range(1, 81))

    def graph(self) -> GraphFake:
        if self._graph is None:
            self._graph = GraphFake()
            self._graph_state.mkdir(parents=True, exist_ok=True)
            sign_in(self._graph, config_text(self._graph, self._graph_state))
        self._graph.reset()
        return self._graph

    def dovecot(self) -> tuple[Any, str]:
        """The shared Dovecot (started on first use) and a fresh user on it."""
        import pytest
        from servers.dovecot import make_server, unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        if self._dovecot is None:
            server = make_server()
            for i in range(1, 81):  # before the start: Dovecot caches its passwd-file
                server.add_user(f"contract{i}@example.com", IMAP_PASSWORD)
            server.start()
            self._dovecot = server
        return self._dovecot, next(self._imap_users)

    def radicale(self) -> tuple[Any, str]:
        """The shared Radicale (started on first use) and a fresh user on it."""
        if self._radicale is None:
            from servers.radicale import make_server

            server = make_server()
            for i in range(1, 81):
                server.add_user(f"contract{i}", CALDAV_PASSWORD)
            server.start()
            self._radicale = server
        return self._radicale, next(self._caldav_users)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
        if self._radicale is not None:
            from servers.radicale import remove as remove_radicale

            remove_radicale(self._radicale)
        if self._dovecot is not None:
            from servers.dovecot import remove

            remove(self._dovecot)


Opener = Callable[[Path, Servers], AbstractContextManager[Any]]


@contextmanager
def _memory_calendar(tmp: Path, servers: Servers) -> Iterator[MemoryCalendarHarness]:
    yield MemoryCalendarHarness()


@contextmanager
def _memory_mailbox(tmp: Path, servers: Servers) -> Iterator[MemoryMailboxHarness]:
    yield MemoryMailboxHarness()


@contextmanager
def _ics(tmp: Path, servers: Servers) -> Iterator[IcsHarness]:
    yield IcsHarness(tmp)


@contextmanager
def _folder(tmp: Path, servers: Servers) -> Iterator[FolderHarness]:
    yield FolderHarness(tmp)


@contextmanager
def _google(tmp: Path, servers: Servers) -> Iterator[GoogleHarness]:
    with GoogleFake() as fake:
        yield GoogleHarness(fake, tmp)


@contextmanager
def _graph(tmp: Path, servers: Servers) -> Iterator[GraphHarness]:
    fake = servers.graph()
    yield GraphHarness(fake, servers._graph_state)
    assert fake.violations == []


@contextmanager
def _caldav(tmp: Path, servers: Servers) -> Iterator[CaldavHarness]:
    server, user = servers.radicale()
    yield CaldavHarness(server, user, tmp)


@contextmanager
def _imap(tmp: Path, servers: Servers) -> Iterator[ImapHarness]:
    server, user = servers.dovecot()
    harness = ImapHarness(server, user, tmp)
    yield harness
    harness.close()


# One line per provider. The harness is a context manager: (tmp_path, shared servers) -> harness.
CALENDARS: dict[str, Opener] = {
    "memory": _memory_calendar,
    "ics": _ics,
    "google": _google,
    "microsoft": _graph,
    "caldav": _caldav,
}
MAILBOXES: dict[str, Opener] = {
    "memory": _memory_mailbox,
    "folder": _folder,
    "google": _google,
    "microsoft": _graph,
    "imap": _imap,
}

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def soon(days: int, hour: int = 14) -> datetime:
    """An aware instant ``days`` after :data:`NOW`, at ``hour`` UTC."""
    return (NOW + timedelta(days=days)).replace(hour=hour, minute=0)
