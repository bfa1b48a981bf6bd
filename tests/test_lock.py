"""One service per state file: a second `salvage run` is refused; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.service.lock import InstanceLock, LockError, holder, lock_path, pid_alive

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
user:
  name: Alex Morgan
  email: alex@example.com
  timezone: Europe/London
accounts:
  - name: home
    calendar: {type: ics, path: cal.ics}
    drafts: {type: folder, path: drafts}
    poll_minutes: 60
state:
  path: state/state.sqlite3
"""

# Holds the lock of argv[1] until killed (or exits without releasing it when argv[2] == "exit").
HOLD = """
import sys, time
from pathlib import Path
from daemon.service.lock import InstanceLock
lock = InstanceLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
if sys.argv[2] == "exit":
    sys.exit(0)
time.sleep(120)
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "cal.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nEND:VCALENDAR\r\n")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def state_of(config: Path) -> Path:
    return config.parent / "state" / "state.sqlite3"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def held(config: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of the config's state file."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(state_of(config)), "hold"], stdout=subprocess.PIPE,
                            text=True, env=env(), cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_second_run_is_refused_with_the_holders_pid(config: Path, held: subprocess.Popen[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"another salvage run (pid {held.pid}) is using {state_of(config)}" in err
    assert "Traceback" not in err
    assert holder(state_of(config)) == held.pid
    with pytest.raises(LockError, match=f"pid {held.pid}"):
        InstanceLock(state_of(config)).acquire()


def test_a_one_off_pass_is_refused_while_the_service_runs(config: Path, held: subprocess.Popen[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--config", str(config)]) == 2
    assert f"pid {held.pid}" in capsys.readouterr().err
    assert not (config.parent / "drafts").exists()


def test_missed_while_the_service_runs_leaves_the_draft_to_it(config: Path, held: subprocess.Popen[str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (config.parent / "cal.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:i1@acme.example\r\n"
        "DTSTAMP:20261120T090000Z\r\nDTSTART:20261124T090000Z\r\nDTEND:20261124T093000Z\r\n"
        "SUMMARY:Phone interview - Acme\r\nORGANIZER;CN=Jo:mailto:jo@acme.example\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alex@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    now = "2026-11-24T10:00:00+00:00"
    assert main(["missed", "--config", str(config), "--now", now, "Acme"]) == 0
    out = capsys.readouterr().out
    assert f"running salvage service (pid {held.pid}) will write" in out
    assert not (config.parent / "drafts").exists()  # the service writes it, not this process
    held.kill()
    held.wait(timeout=10)
    assert main(["run", "--once", "--config", str(config), "--now", now]) == 0
    assert len(list((config.parent / "drafts").glob("*.eml"))) == 1  # the recorded miss was kept


def test_the_lock_of_a_killed_holder_is_taken_over(config: Path, held: subprocess.Popen[str]) -> None:
    held.send_signal(signal.SIGKILL)
    held.wait(timeout=10)
    state = state_of(config)
    assert lock_path(state).read_text().strip() == str(held.pid)  # the dead holder's pid is still written
    assert holder(state) is None  # ... but nobody alive holds it
    with InstanceLock(state) as lock:
        assert lock.held
        assert holder(state) == os.getpid()
    assert not lock.held


def test_the_lock_is_released_when_its_holder_exits(config: Path) -> None:
    done = subprocess.run([sys.executable, "-c", HOLD, str(state_of(config)), "exit"], capture_output=True,
                          text=True, env=env(), cwd=ROOT, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "locked"
    with InstanceLock(state_of(config)):
        pass


def test_release_is_idempotent_and_the_file_is_kept(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state.sqlite3"
    lock = InstanceLock(state).acquire()
    path = lock_path(state)
    assert path == tmp_path / "deep" / "state.sqlite3.lock"
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(LockError, match=f"another salvage run \\(pid {os.getpid()}\\) is using {state}"):
        InstanceLock(state).acquire()  # a second open file description conflicts even in one process
    lock.release()
    lock.release()
    assert path.exists() and path.read_text() == ""  # never deleted: a new holder must lock the same inode
    assert holder(state) is None
    InstanceLock(state).acquire().release()


def test_an_unusable_lock_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite3"
    lock_path(state).mkdir()  # a directory where the lock file should be
    with pytest.raises(LockError, match="cannot open lock file"):
        InstanceLock(state).acquire()


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    assert not pid_alive(gone.pid)


def test_the_running_service_holds_the_lock_and_releases_it_on_sigterm(config: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The real `salvage run`: a second one is refused while it runs; after SIGTERM the lock is free."""
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)
    try:
        health = config.parent / "state" / "health.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if holder(state_of(config)) == proc.pid and health.exists():
                break
            time.sleep(0.1)
        died = proc.stderr.read() if proc.poll() is not None and proc.stderr is not None else ""
        assert holder(state_of(config)) == proc.pid, died
        assert main(["run", "--config", str(config)]) == 2
        assert f"another salvage run (pid {proc.pid}) is using" in capsys.readouterr().err
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert holder(state_of(config)) is None
    assert json.loads((config.parent / "state" / "health.json").read_text())["state"] == "stopped"
    with InstanceLock(state_of(config)):
        pass


def test_a_symlinked_state_path_shares_the_lock_of_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linked-dir").symlink_to(real, target_is_directory=True)
    (real / "state.sqlite3").touch()
    (tmp_path / "linked-file.sqlite3").symlink_to(real / "state.sqlite3")
    with InstanceLock(real / "state.sqlite3"):
        for other in (tmp_path / "linked-dir" / "state.sqlite3", tmp_path / "linked-file.sqlite3"):
            with pytest.raises(LockError, match="another salvage run"):
                InstanceLock(other).acquire()
            assert holder(other) == os.getpid()
    assert not (tmp_path / "linked-file.sqlite3.lock").exists()


def test_a_second_run_through_a_link_to_the_state_file_is_refused(config: Path, tmp_path: Path,
                                                                 held: subprocess.Popen[str]) -> None:
    state_of(config).touch()
    (tmp_path / "alias.sqlite3").symlink_to(state_of(config))
    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("state/state.sqlite3", "alias.sqlite3"))
    assert main(["run", "--once", "--config", str(other)]) == 2
    assert not (config.parent / "drafts").exists()
