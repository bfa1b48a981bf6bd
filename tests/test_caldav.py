"""The CalDAV calendar source against a real Radicale, through the real caldav library."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from servers.radicale import Radicale, make_server, remove, vevent

from daemon.config import parse_config
from providers import registry
from providers.base import FetchResult, ProviderError, TransientError, Window
from providers.caldav import CaldavSource
from providers.secret import PasswordError

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 9, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=1), NOW + timedelta(days=30))
PASSWORD_ENV = "SALVAGE_TEST_CALDAV_PASSWORD"


@pytest.fixture(scope="module")
def radicale() -> Iterator[Radicale]:
    server = make_server()
    for i in range(1, 31):
        server.add_user(f"user{i}", "app-password")
    server.start()
    yield server
    remove(server)


_users = iter(range(1, 31))


@pytest.fixture
def user(radicale: Radicale, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, "app-password")
    return f"user{next(_users)}"


@pytest.fixture
def work(radicale: Radicale, user: str) -> str:
    return radicale.make_calendar(user, "work", "Work")


def source(radicale: Radicale, user: str, tmp_path: Path, url: str | None = None, **settings: Any) -> CaldavSource:
    values = {"url": url or radicale.url, "username": user, "password_env": PASSWORD_ENV, **settings}
    body = "\n".join(f"      {k}: {json.dumps(v) if not isinstance(v, Path) else v}" for k, v in values.items()
                     if v is not None)
    config = parse_config(f"""
user: {{name: Alex Morgan, email: alex@example.com, timezone: Europe/London}}
accounts:
  - name: cal
    calendar:
      type: caldav
{body}
    drafts: {{type: folder, path: {tmp_path / 'drafts'}}}
""")
    opened = registry.open_calendar(config.accounts[0], registry.context(config.accounts[0], config))
    assert isinstance(opened, CaldavSource)
    return opened


def titles(result: FetchResult) -> list[str]:
    return sorted(e.title for e in result.events)


def test_discovers_calendars_and_reads_the_window_with_recurrence_expanded(radicale: Radicale, user: str,
                                                                          work: str, tmp_path: Path) -> None:
    personal = radicale.make_calendar(user, "home", "Home")
    radicale.put(user, work, "i1", vevent("i1", "Interview with Acme", "20261203T140000Z", "20261203T150000Z"))
    radicale.put(user, work, "far", vevent("far", "Far away", "20270601T140000Z", "20270601T150000Z"))
    radicale.put(user, work, "weekly", vevent("weekly", "Weekly sync", "20261101T100000Z", "20261101T103000Z",
                                               extra="RRULE:FREQ=WEEKLY;COUNT=10\r\n"))
    radicale.put(user, personal, "d1", vevent("d1", "Dentist", "20261205T090000Z", "20261205T100000Z"))
    src = source(radicale, user, tmp_path)
    result = src.fetch(WINDOW, None)
    assert result.complete
    # Nov 29 .. Dec 27 in the window, and Jan 3 in the week read ahead so the window can slide
    assert titles(result) == ["Dentist", "Interview with Acme"] + ["Weekly sync"] * 6
    interview = next(e for e in result.events if e.title == "Interview with Acme")
    assert interview.organizer is not None and interview.organizer.email == "rita@acme.example"
    assert interview.calendar_id == "Work" and interview.ical_uid == "i1"
    assert interview.start == datetime(2026, 12, 3, 14, tzinfo=UTC)
    assert len({e.source_id for e in result.events}) == 8
    only_work = source(radicale, user, tmp_path, calendars=["Work"]).fetch(WINDOW, None)
    assert "Dentist" not in titles(only_work)
    with pytest.raises(ProviderError, match="no calendar named 'Gym'.*Home, Work"):
        source(radicale, user, tmp_path, calendars=["Gym"]).fetch(WINDOW, None)
    by_url = source(radicale, user, tmp_path, url=radicale.url + personal.lstrip("/")).fetch(WINDOW, None)
    assert titles(by_url) == ["Dentist"]


@pytest.mark.parametrize("sync", [True, False], ids=["sync-collection", "ctag-etag"])
def test_later_polls_are_deltas_and_an_idle_poll_is_one_request(radicale: Radicale, user: str, work: str,
                                                               tmp_path: Path, sync: bool) -> None:
    radicale.put(user, work, "i1", vevent("i1", "Interview with Acme", "20261203T140000Z", "20261203T150000Z"))
    radicale.put(user, work, "i2", vevent("i2", "Phone screen", "20261204T140000Z", "20261204T150000Z"))
    radicale.put(user, work, "weekly", vevent("weekly", "Weekly sync", "20261201T100000Z", "20261201T103000Z",
                                               extra="RRULE:FREQ=WEEKLY;COUNT=3\r\n"))
    src = source(radicale, user, tmp_path)
    src.use_sync_collection = sync
    first = src.fetch(WINDOW, None)
    assert len(first.events) == 5
    before = src.requests
    idle = src.fetch(WINDOW, first.cursor)
    assert idle.unchanged and src.requests - before == 1
    # The organizer moves one interview, cancels the other, and drops one occurrence of the series.
    radicale.put(user, work, "i1", vevent("i1", "Interview with Acme", "20261210T140000Z", "20261210T150000Z"))
    radicale.delete(user, work, "i2")
    radicale.put(user, work, "weekly", vevent("weekly", "Weekly sync", "20261201T100000Z", "20261201T103000Z",
                                               extra="RRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE:20261208T100000Z\r\n"))
    delta = src.fetch(WINDOW, idle.cursor)
    assert not delta.complete and not delta.unchanged
    moved = next(e for e in delta.events if e.title == "Interview with Acme")
    assert moved.start == datetime(2026, 12, 10, 14, tzinfo=UTC)
    by_title = {e.source_id: e.title for e in first.events}
    gone = sorted(by_title[s] for s in delta.removed)
    assert gone == ["Phone screen", "Weekly sync"]
    assert src.fetch(WINDOW, delta.cursor).unchanged


def test_a_sliding_window_reads_the_new_stretch_and_a_bad_token_rereads(radicale: Radicale, user: str, work: str,
                                                                       tmp_path: Path) -> None:
    radicale.put(user, work, "later", vevent("later", "Onsite interview", "20270112T140000Z", "20270112T150000Z"))
    src = source(radicale, user, tmp_path)
    first = src.fetch(WINDOW, None)
    assert titles(first) == []
    later = Window(WINDOW.start + timedelta(days=10), WINDOW.end + timedelta(days=10))
    slid = src.fetch(later, first.cursor)
    assert not slid.complete and titles(slid) == ["Onsite interview"]
    state = json.loads(slid.cursor or "")
    for entry in state["cals"].values():
        entry["token"] = "http://radicale.org/ns/sync/" + "0" * 64
    radicale.put(user, work, "new", vevent("new", "Final round", "20261220T140000Z", "20261220T150000Z"))
    reread = src.fetch(later, json.dumps(state))
    assert "Final round" in titles(reread)
    assert src.fetch(later, "not json").complete  # an unreadable cursor is a full fetch, not an error


def test_wrong_password_private_file_and_a_down_server(radicale: Radicale, user: str, work: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(PasswordError, match=f"access refused.*{PASSWORD_ENV}"):
        source(radicale, user, tmp_path).fetch(WINDOW, None)
    secret = tmp_path / "caldav-password"
    secret.write_text("app-password\n")
    os.chmod(secret, 0o640)
    with pytest.raises(PasswordError, match="chmod 600"):
        source(radicale, user, tmp_path, password_env=None, password_file=secret).fetch(WINDOW, None)
    os.chmod(secret, 0o600)
    assert source(radicale, user, tmp_path, password_env=None, password_file=secret).fetch(WINDOW, None).complete
    with pytest.raises(TransientError, match="cannot reach"):
        source(radicale, user, tmp_path, url="http://127.0.0.1:9/").fetch(WINDOW, None)


def test_tls_is_verified_and_a_ca_bundle_adds_a_private_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, bundle = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    server = make_server(tls=(chain, key, bundle))
    server.add_user("tls-user", "app-password")
    monkeypatch.setenv(PASSWORD_ENV, "app-password")
    try:
        server.start()
        work = server.make_calendar("tls-user", "work", "Work")
        server.put("tls-user", work, "i1", vevent("i1", "Interview with Acme", "20261203T140000Z",
                                                  "20261203T150000Z"))
        with pytest.raises(ProviderError, match="TLS failed.*ca_bundle"):
            source(server, "tls-user", tmp_path).fetch(WINDOW, None)
        trusted = source(server, "tls-user", tmp_path, ca_bundle=bundle).fetch(WINDOW, None)
        assert titles(trusted) == ["Interview with Acme"]
    finally:
        remove(server)
