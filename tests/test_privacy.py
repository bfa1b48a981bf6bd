"""Drafts, state and health are private whatever the umask and whoever made the folder (issue 8, item 7)."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from daemon.engine.state import StateStore
from daemon.service.health import write_health
from providers.base import Address, DraftMessage
from providers.folder import FolderDrafts

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o277], ids=["umask000", "umask022", "umask277"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _draft() -> DraftMessage:
    return DraftMessage(key="k" * 32, sender=Address("alex@example.com"), to=(Address("jordan@acme.example"),),
                        subject="Rescheduling", text="Dear Jordan,\n")


def test_drafts_are_0600_in_a_0700_folder(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "new" / "drafts"
    store = FolderDrafts(folder, now=lambda: NOW)
    ref = store.create(_draft())
    assert mode(folder) == 0o700 and mode(folder / ref.id) == 0o600
    store.update(ref, _draft())
    assert mode(folder / ref.id) == 0o600


def test_drafts_are_0600_in_a_folder_the_user_made(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    os.chmod(folder, 0o755)
    ref = FolderDrafts(folder, now=lambda: NOW).create(_draft())
    assert mode(folder / ref.id) == 0o600 and mode(folder) == 0o755  # their folder stays as they made it


def test_state_database_wal_and_shm_are_0600(tmp_path: Path, umask: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    with StateStore.open(shared / "state.sqlite3") as store:
        store.record_failure("a", NOW, "x")  # a write, so the WAL and its index exist
        names = sorted(p.name for p in shared.iterdir())
        assert {"state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"} <= set(names)
        assert all(mode(shared / name) == 0o600 for name in names), {n: oct(mode(shared / n)) for n in names}
    with StateStore.open(tmp_path / "fresh" / "dir" / "state.sqlite3"):
        assert mode(tmp_path / "fresh" / "dir") == 0o700


def test_an_old_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with StateStore.open(path) as store:
        store.record_failure("a", NOW, "x")
    for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    with StateStore.open(path) as store:
        store.record_failure("a", NOW, "y")
        assert all(mode(p) == 0o600 for p in tmp_path.iterdir())


def test_health_file_is_0600(tmp_path: Path, umask: int) -> None:
    os.chmod(tmp_path, 0o755)
    write_health(tmp_path / "health.json", {"state": "running"})
    assert mode(tmp_path / "health.json") == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]


def _aged(path: Path, seconds: float = 3600) -> Path:
    path.write_bytes(b"half a draft")
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_crash_leftover_temp_files_are_cleaned_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "drafts"
    folder.mkdir()
    stale = _aged(folder / ".20261124-090000-abcd1234-rescheduling.eml.0a1b2c3d.tmp")
    fresh = _aged(folder / ".20261124-090000-abcd1234-other.eml.0a1b2c3e.tmp", seconds=1)  # a writer is busy
    theirs = _aged(folder / ".notes.txt.tmp")
    FolderDrafts(folder, now=lambda: NOW)
    assert not stale.exists() and fresh.exists() and theirs.exists()

    state = tmp_path / "state"
    state.mkdir()
    leftover = _aged(state / ".health.json.4242.tmp")
    write_health(state / "health.json", {"state": "running"})
    assert not leftover.exists()
