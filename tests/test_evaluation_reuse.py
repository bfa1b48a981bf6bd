"""A pass over unchanged calendars reuses the last evaluation; any change, wake-up or time limit ends it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from memory_providers import MemoryCalendar, MemoryMailbox
from test_pipeline import CONFIG, TOMORROW_2PM, interview, meeting

from daemon.config import parse_config
from daemon.core.model import Event
from daemon.engine.pipeline import REUSE_FOR, Engine
from daemon.engine.state import StateStore
from providers.base import FetchResult, Window

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class QuietCalendar(MemoryCalendar):
    """Says "unchanged" when its events are what it sent last time, as an ics URL answering 304 does."""

    def __init__(self) -> None:
        super().__init__()
        self.last: tuple[Event, ...] | None = None

    def fetch(self, window: Window, cursor: str | None) -> FetchResult:
        result = super().fetch(window, cursor)
        if result.events == self.last:
            return FetchResult(unchanged=True, cursor=cursor)
        self.last = result.events
        return result


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "state.sqlite3"
        self.config = parse_config(CONFIG, tmp_path / "config.yaml")
        self.store = StateStore.open(self.path)
        self.calendars = {"work": QuietCalendar(), "home": QuietCalendar()}
        self.mailboxes = {"work": MemoryMailbox(), "home": MemoryMailbox()}
        self.engine = Engine(self.config, self.store,
                             open_calendar=lambda account, ctx: self.calendars[account.name],
                             open_drafts=lambda account, ctx: self.mailboxes[account.name])
        self.calendars["work"].events = [interview(TOMORROW_2PM), meeting(TOMORROW_2PM - timedelta(minutes=30))]

    def run(self, now: datetime, account: str | None = None) -> tuple[object, list[str]]:
        report = self.engine.run_once(now, accounts=[account] if account else None)
        return report.evaluation, [f"{o.result}:{o.kind}" for o in report.outcomes if o.result != "kept"]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_quiet_passes_reuse_the_evaluation_until_its_time_is_up(setup: Setup) -> None:
    first, made = setup.run(NOW)
    assert made == ["created:reschedule_request"]
    second, made = setup.run(NOW + timedelta(minutes=1))  # the draft just made: evaluated afresh
    assert second is not first and made == []
    for minutes in (2, 3, 5):
        again, made = setup.run(NOW + timedelta(minutes=minutes), account="home")
        assert again is second and made == []
    later, _ = setup.run(NOW + timedelta(minutes=1) + REUSE_FOR)
    assert later is not second


def test_a_calendar_change_or_a_user_action_ends_the_reuse(setup: Setup) -> None:
    setup.run(NOW)
    quiet, _ = setup.run(NOW + timedelta(minutes=1))
    setup.calendars["home"].events = [meeting(TOMORROW_2PM + timedelta(days=1), key="h1", account="home")]
    changed, _ = setup.run(NOW + timedelta(minutes=2))
    assert changed is not quiet
    settled, _ = setup.run(NOW + timedelta(minutes=3))
    assert settled is changed
    setup.mailboxes["work"].drafts.clear()  # the user deletes the draft
    after, made = setup.run(NOW + timedelta(minutes=4))
    assert made == ["deleted:reschedule_request"]
    fresh, _ = setup.run(NOW + timedelta(minutes=5))
    assert fresh is not after


def test_another_process_writing_the_state_ends_the_reuse(setup: Setup) -> None:
    setup.run(NOW)
    quiet, _ = setup.run(NOW + timedelta(minutes=1))
    assert setup.run(NOW + timedelta(minutes=2))[0] is quiet
    with StateStore.open(setup.path) as other:  # e.g. `salvage missed` while the service runs
        other.mark_missed(interview(TOMORROW_2PM).occurrence_key, NOW + timedelta(minutes=2))
    assert setup.run(NOW + timedelta(minutes=3))[0] is not quiet


def test_a_wake_up_between_two_passes_ends_the_reuse(setup: Setup) -> None:
    started = NOW - timedelta(minutes=5)  # its missed check falls due at start + grace, inside REUSE_FOR
    setup.calendars["work"].events = [interview(started, key="now")]
    quiet, _ = setup.run(NOW)
    assert setup.run(NOW + timedelta(seconds=30))[0] is quiet
    assert quiet.wakeups, "an upcoming interview has its missed check"  # type: ignore[attr-defined]
    due = min(w.when for w in quiet.wakeups)  # type: ignore[attr-defined]
    assert setup.run(due - timedelta(seconds=1))[0] is quiet
    assert setup.run(due)[0] is not quiet


def test_a_dry_run_is_always_evaluated_afresh(setup: Setup) -> None:
    setup.run(NOW)
    quiet, _ = setup.run(NOW + timedelta(minutes=1))
    report = setup.engine.run_once(NOW + timedelta(minutes=2), dry_run=True)
    assert report.evaluation is not quiet
