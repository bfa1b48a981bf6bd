"""An application's quota is every account's: one account meeting it holds back the provider's others."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fakes.google_fake import GoogleFake
from memory_providers import MemoryCalendar, MemoryMailbox
from test_google_calendar import ME, WINDOW, Sleeps, source, timed, token
from test_incremental import config_for
from test_pipeline import TOMORROW_2PM, meeting

from daemon.engine.pipeline import Engine
from daemon.engine.state import StateStore
from providers.base import TransientError

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with GoogleFake() as server:
        server.add_client()
        server.add_calendar(ME, "Me", time_zone="Europe/Berlin", primary=True)
        yield server


@pytest.mark.parametrize(("reason", "shared"), [
    ("rateLimitExceeded", True),  # the project's per-minute limit
    ("dailyLimitExceeded", True),  # the project's daily courtesy limit
    ("userRateLimitExceeded", False),  # this user's own
    ("quotaExceeded", False),  # this user's calendar usage limit
])
def test_google_says_whose_limit_it_is(fake: GoogleFake, tmp_path: Path, reason: str, shared: bool) -> None:
    token(fake, tmp_path)
    fake.put_event(ME, timed("A", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
    fake.fail("events.list", 403, reason=reason, retry_after="30", times=9)
    with pytest.raises(TransientError) as info:
        source(fake, tmp_path, Sleeps()).fetch(WINDOW, None)
    assert info.value.shared is shared


class Limited(MemoryCalendar):
    def __init__(self, error: TransientError | None = None) -> None:
        super().__init__()
        self.limit = error

    def fetch(self, window, cursor):  # type: ignore[no-untyped-def]
        if self.limit is not None:
            self.calls += 1
            raise self.limit
        return super().fetch(window, cursor)


def test_one_account_meeting_the_apps_quota_holds_back_the_others(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    config = config_for(names, tmp_path)
    store = StateStore.open(tmp_path / "state.sqlite3")
    calendars = {n: Limited() for n in names}
    for i, name in enumerate(names):
        calendars[name].events = [meeting(TOMORROW_2PM + timedelta(hours=i), key=f"m{i}", account=name)]
    engine = Engine(config, store, open_calendar=lambda a, ctx: calendars[a.name],
                    open_drafts=lambda a, ctx: MemoryMailbox())
    calendars["a"].limit = TransientError("HTTP 403 Rate Limit Exceeded", retry_after=120, shared=True)
    first = engine.run_once(NOW, accounts=["a"]).polls[0]
    assert not first.ok and first.retry_after == 120
    asked = calendars["b"].calls
    held = engine.run_once(NOW + timedelta(seconds=30), accounts=["b"]).polls[0]
    assert not held.ok and calendars["b"].calls == asked  # not even asked
    assert held.retry_after == pytest.approx(90) and "rate limit" in held.message
    status = store.account_status("b")
    assert status is not None and status.error is not None and "rate limit" in status.error
    # a limit that is this account's own holds back nobody else
    calendars["a"].limit = TransientError("HTTP 429", retry_after=600)
    calendars["b"].limit = None
    later = NOW + timedelta(minutes=3)
    assert not engine.run_once(later, accounts=["a"]).polls[0].ok
    assert engine.run_once(later, accounts=["b"]).polls[0].ok and engine.run_once(later, accounts=["c"]).polls[0].ok
    status = store.account_status("b")
    assert status is not None and status.error is None
