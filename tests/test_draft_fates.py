"""A draft's fate only from positive evidence, and lost or replaced state never duplicates a draft."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from memory_providers import MemoryCalendar

from daemon.config import Config, parse_config
from daemon.core.model import DraftState, Event, Response, person
from daemon.engine.pipeline import Engine
from daemon.engine.state import StateStore
from providers.folder import FolderDrafts

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TOMORROW_2PM = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)

CONFIG = """
user: {{name: Alex Morgan, email: alex@example.com, timezone: Europe/London}}
accounts:
  - name: {name}
    email: alex.work@example.com
    calendar: {{type: ics, path: work.ics}}
    drafts: {{type: folder, path: drafts}}
state: {{path: {state}}}
"""


def clash(account: str) -> list[Event]:
    """An interview tomorrow at 2 pm double-booked with a meeting: one reschedule draft."""
    iv = Event(account=account, source_id="iv1", ical_uid="iv1", title="Technical interview - Acme Robotics",
               start=TOMORROW_2PM, end=TOMORROW_2PM + timedelta(hours=1),
               organizer=person("jordan@acme-robotics.example", "Jordan Lee"),
               attendees=(person("alex@example.com", "Alex", Response.ACCEPTED, is_self=True),),
               join_urls=("https://acme.zoom.us/j/123",), description="Scheduled via Greenhouse")
    meeting = Event(account=account, source_id="m1", ical_uid="m1", title="Quarterly planning",
                    start=TOMORROW_2PM, end=TOMORROW_2PM + timedelta(minutes=90))
    return [iv, meeting]


class World:
    """One account whose drafts go to a real drafts folder; the state file can be lost or replaced."""

    def __init__(self, tmp: Path, name: str = "work", state: str = "state.sqlite3") -> None:
        self.tmp = tmp
        self.drafts = tmp / "drafts"
        self.calendar = MemoryCalendar()
        self.open(name, state)

    def open(self, name: str, state: str = "state.sqlite3") -> None:
        self.config: Config = parse_config(CONFIG.format(name=name, state=state), self.tmp / "config.yaml")
        self.calendar.events = clash(name)
        self.store = StateStore.open(self.config.state_path)
        self.folder = FolderDrafts(self.drafts, now=lambda: NOW)
        self.engine = Engine(self.config, self.store, open_calendar=lambda a, c: self.calendar,
                             open_drafts=lambda a, c: self.folder)

    def run(self, now: datetime = NOW) -> list[str]:
        return [f"{o.result}:{o.kind}" for o in self.engine.run_once(now).outcomes if o.result != "kept"]

    def files(self) -> list[str]:
        return sorted(p.name for p in self.drafts.glob("*.eml"))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# ---- item 4: a fate only from positive evidence --------------------------------------------------


def test_a_vanished_drafts_folder_is_an_error_for_that_pass_not_a_deletion(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    assert world.run() == ["created:reschedule_request"]
    aside = world.tmp / "unmounted"
    os.replace(world.drafts, aside)
    caplog.set_level(logging.DEBUG, logger="salvage")
    for _ in range(3):
        assert world.run() == ["failed:reschedule_request"]
    (record,) = world.store.drafts()
    assert record.state is DraftState.UNTOUCHED
    status = world.store.account_status("work")
    assert status is not None and status.error is not None and "drafts folder" in status.error
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "drafts folder" in r.getMessage()]
    assert len(warnings) == 1  # logged once, shown in status at every pass
    os.replace(aside, world.drafts)
    assert world.run() == []  # kept: it was never gone
    assert world.store.drafts()[0].state is DraftState.UNTOUCHED
    status = world.store.account_status("work")
    assert status is not None and status.error is None
    (world.drafts / world.files()[0]).unlink()  # now the user really deletes it
    assert world.run() == ["deleted:reschedule_request"]
    assert world.run() == []  # never re-created
    assert world.files() == []
