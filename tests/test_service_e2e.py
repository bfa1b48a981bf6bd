"""The real `salvage run` process on an ics file + drafts folder, driven by editing the calendar.

Times in the calendars are relative to the real clock (the process uses it). Every process is killed
in the fixture's teardown, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 3.0  # poll_minutes: 0.05, the shortest the config allows
SLACK = 2.5  # process start-up and a loaded CI machine
PHONE = "+44 20 7946 0321"


# ---- calendars ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    uid: str
    title: str
    start: datetime
    minutes: int = 60
    interview: bool = True


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_ics(path: Path, entries: list[Entry]) -> None:
    """Write a calendar atomically (the service must never read half a file)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Salvage tests//EN"]
    for e in entries:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{e.uid}",
            f"DTSTAMP:{stamp(datetime.now(UTC))}",
            f"DTSTART:{stamp(e.start)}",
            f"DTEND:{stamp(e.start + timedelta(minutes=e.minutes))}",
            f"SUMMARY:{e.title}",
        ]
        if e.interview:
            lines += [
                f"DESCRIPTION:Scheduled via Greenhouse. If we get cut off\\, call me on {PHONE}.",
                "LOCATION:https://acme.zoom.us/j/123456789",
                "ORGANIZER;CN=Jordan Lee:mailto:jordan@acme-robotics.example",
                "ATTENDEE;CN=Jordan Lee;PARTSTAT=ACCEPTED:mailto:jordan@acme-robotics.example",
            ]
        else:
            lines.append("ORGANIZER;CN=Chris Doyle:mailto:chris@currentjob.example")
        lines += ["ATTENDEE;CN=Alex Morgan;PARTSTAT=ACCEPTED:mailto:alex@example.com", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    os.replace(tmp, path)


def interview(uid: str, start: datetime, company: str = "Acme Robotics") -> Entry:
    return Entry(uid, f"Technical interview - {company}", start)


def meeting(uid: str, start: datetime, minutes: int = 120) -> Entry:
    return Entry(uid, "Quarterly planning", start, minutes, interview=False)


def minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def day_at(days: int, hour: int) -> datetime:
    """``days`` from today at ``hour``:00 UTC (the user's zone): inside working hours, far from now."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


# ---- the process ----------------------------------------------------------------------------------


class Daemon:
    """One `salvage run` process, its log, and the files of its config."""

    def __init__(self, home: Path, config: Path) -> None:
        self.home = home
        self.config = config
        self.log_path = home / f"run-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(home), "XDG_STATE_HOME": str(home / "xdg")}
        env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--config", str(config)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def health(self) -> dict[str, Any]:
        try:
            data = json.loads((self.home / "state" / "health.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def wait_running(self, timeout: float = 20.0) -> None:
        """Until the service has started and written its health file."""
        wait_for(lambda: self.health().get("pid") == self.pid and self.health().get("state") == "running",
                 timeout, "the service did not start", process=self)

    def last_poll(self, account: str) -> datetime | None:
        for a in self.health().get("accounts", []):
            if a.get("name") == account and a.get("last_poll"):
                return datetime.fromisoformat(a["last_poll"])
        return None

    def wait_polls(self, account: str, count: int = 1) -> None:
        """Until ``count`` more passes of ``account`` have finished."""
        for _ in range(count):
            since = datetime.now(UTC)
            wait_for(partial(self._polled_since, account, since), 4 * POLL_SECONDS + SLACK,
                     f"no poll of {account}", process=self)

    def _polled_since(self, account: str, since: datetime) -> bool:
        last = self.last_poll(account)
        return last is not None and last > since

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        self._log.close()


def wait_for(condition: Callable[[], bool], timeout: float, message: str, *, process: Daemon | None = None) -> float:
    """Poll ``condition`` with short sleeps; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if process is not None and process.proc.poll() is not None:
            pytest.fail(f"salvage run exited early with {process.proc.returncode}; log:\n{process.log()}")
        if time.monotonic() - started > timeout:
            pytest.fail(message + (f"\nlog of salvage run:\n{process.log()}" if process is not None else ""))
        time.sleep(0.05)
    return time.monotonic() - started


class Home:
    """A config (ics + folder accounts), its calendars and drafts folders, and the processes started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemons: list[Daemon] = []
        self.config = root / "config.yaml"

    def write_config(self, *, poll_minutes: float = 0.05, grace_minutes: int = 10, broken: bool = False,
                     notify: bool = False) -> None:
        notify_line = ""
        if notify:
            script = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '|' + sys.argv[3] + '\\n')"
            command = [sys.executable, "-c", script, str(self.root / "notified.txt"), "{message}", "{phone}"]
            notify_line = f"notify: {{command: {json.dumps(command)}}}\n"
        text = (
            "user: {name: Alex Morgan, email: alex@example.com, timezone: UTC}\n"
            "state: {path: state/state.sqlite3}\n"
            f"missed: {{grace_minutes: {grace_minutes}}}\n"
            # times follow the real clock: an interview at 3 am must not add a risk of its own
            "detection: {ignore_kinds: [odd_hour]}\n"
            f"{notify_line}"
            "accounts:\n"
            "  - name: work\n"
            f"    poll_minutes: {poll_minutes}\n"
            "    calendar: {type: ics, path: work.ics}\n"
            "    drafts: {type: folder, path: drafts}\n"
        )
        if broken:
            text += (
                "  - name: broken\n"
                f"    poll_minutes: {poll_minutes}\n"
                "    calendar: {type: ics, path: no-such-calendar.ics}\n"
                "    drafts: {type: folder, path: drafts-broken}\n"
            )
        self.config.write_text(text, encoding="utf-8")

    def calendar(self, entries: list[Entry]) -> None:
        write_ics(self.root / "work.ics", entries)

    def drafts(self) -> list[Path]:
        folder = self.root / "drafts"
        return sorted(folder.glob("*.eml")) if folder.is_dir() else []

    def start(self) -> Daemon:
        daemon = Daemon(self.root, self.config)
        self.daemons.append(daemon)
        daemon.wait_running()
        return daemon

    def salvage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another `salvage` command as a process, on the same config."""
        env = {**os.environ, "HOME": str(self.root), "XDG_STATE_HOME": str(self.root / "xdg"), "COLUMNS": "200"}
        return subprocess.run(
            [sys.executable, "-m", "daemon.cli", *args, "--config", str(self.config)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )

    def draft_states(self) -> dict[str, str]:
        with sqlite3.connect(self.root / "state" / "state.sqlite3") as db:
            return {f"{kind}:{key[:8]}": state for key, kind, state in db.execute("SELECT key, kind, state FROM drafts")}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    try:
        yield h
    finally:
        for daemon in h.daemons:
            daemon.close()


def subject(path: Path) -> str:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.lower().startswith("subject:"):
            return line.split(":", 1)[1].strip()
    return ""


# ---- the tests ------------------------------------------------------------------------------------


def test_clash_delete_move_status_and_sigterm(home: Home) -> None:
    a_start, b_start = day_at(2, 14), day_at(3, 11)
    home.write_config(broken=True)
    home.calendar([interview("a@acme.example", a_start), interview("b@hooli.example", b_start, "Hooli")])
    daemon = home.start()
    daemon.wait_polls("work")
    assert home.drafts() == []

    # A clash appears: exactly one draft within two poll intervals.
    clash_a = [interview("a@acme.example", a_start), meeting("m1@job.example", a_start - timedelta(minutes=30))]
    home.calendar([*clash_a, interview("b@hooli.example", b_start, "Hooli")])
    took = wait_for(lambda: len(home.drafts()) >= 1, 2 * POLL_SECONDS + SLACK,
                    "no draft within two poll intervals", process=daemon)
    assert took <= 2 * POLL_SECONDS + SLACK
    daemon.wait_polls("work")
    (draft_a,) = home.drafts()
    assert re.search(r"reschedul|move|new time", subject(draft_a).lower()), subject(draft_a)
    assert f"{a_start:%A} {a_start.day} {a_start:%B}" in subject(draft_a)  # interview A's day (B is the next)

    # The failing account is shown by `salvage status` while the healthy one works.
    status = home.salvage("status")
    assert status.returncode == 0, status.stderr
    assert "broken" in status.stdout and "failing" in status.stdout and "no-such-calendar.ics" in status.stdout
    assert "running" in status.stdout
    assert home.salvage("status", "--exit-code").returncode == 1
    data = json.loads(home.salvage("status", "--format", "json").stdout)
    accounts = {a["name"]: a for a in data["accounts"]}
    assert accounts["work"]["ok"] is True and accounts["broken"]["ok"] is False
    assert "no-such-calendar.ics" in accounts["broken"]["error"]
    assert [d["kind"] for d in data["drafts"]] == ["reschedule_request"]
    assert data["service"]["state"] == "running" and data["service"]["pid"] == daemon.pid

    # The user deletes the draft: it never comes back.
    draft_a.unlink()
    daemon.wait_polls("work", 2)
    assert home.drafts() == []
    assert "deleted" in home.draft_states().values()

    # Interview B gets a clash (the healthy account keeps producing drafts), then moves: the untouched
    # draft is replaced in place, never duplicated.
    clash_b = [interview("b@hooli.example", b_start, "Hooli"), meeting("m2@job.example", b_start - timedelta(minutes=30))]
    home.calendar([*clash_a, *clash_b])
    wait_for(lambda: len(home.drafts()) == 1, 2 * POLL_SECONDS + SLACK, "no draft for B",
             process=daemon)
    (draft_b,) = home.drafts()
    assert f"{b_start:%A} {b_start.day} {b_start:%B}" in subject(draft_b)
    before = draft_b.read_text(encoding="utf-8")
    moved = b_start + timedelta(minutes=30)  # 11:30, still inside the 10:30-12:30 meeting: a clash at a new time
    home.calendar([*clash_a, interview("b@hooli.example", moved, "Hooli"), clash_b[1]])
    wait_for(lambda: draft_b.exists() and draft_b.read_text(encoding="utf-8") != before, 2 * POLL_SECONDS + SLACK,
             "the draft was not replaced after the move", process=daemon)
    daemon.wait_polls("work")
    assert home.drafts() == [draft_b]
    assert moved.strftime("%H:%M") in draft_b.read_text(encoding="utf-8")

    # The clash goes away (the meeting is cancelled): the untouched draft is withdrawn.
    home.calendar([*clash_a, interview("b@hooli.example", moved, "Hooli")])
    wait_for(lambda: home.drafts() == [], 2 * POLL_SECONDS + SLACK,
             "the draft was not withdrawn", process=daemon)

    # The failing account was logged once, not at every poll.
    log = daemon.log()
    assert log.count("no-such-calendar.ics") == 1, log

    code, took = daemon.terminate()
    assert code == 0, daemon.log()
    assert took < 5.0
    assert daemon.health()["state"] == "stopped"


def test_kill_9_then_restart_makes_no_duplicate_second_instance_refuses_sighup_keeps_config(home: Home) -> None:
    start = day_at(2, 14)
    home.write_config()
    home.calendar([interview("a@acme.example", start), meeting("m1@job.example", start - timedelta(minutes=30))])
    first = Daemon(home.root, home.config)
    home.daemons.append(first)
    wait_for(lambda: len(home.drafts()) >= 1, 20, "no draft", process=first)
    first.proc.send_signal(signal.SIGKILL)  # right after the draft was written
    assert first.proc.wait(10) == -signal.SIGKILL
    (draft,) = home.drafts()

    # Make it the worst moment for certain: the draft is in the folder but the state still says
    # "about to create it" (the intent), as if the kill came between the two.
    with sqlite3.connect(home.root / "state" / "state.sqlite3") as db:
        db.execute("UPDATE drafts SET state='pending', ref=NULL")
    second = home.start()
    second.wait_polls("work", 2)
    assert home.drafts() == [draft]
    assert list(home.draft_states().values()) == ["untouched"]

    # A second instance on the same state refuses, saying who holds it.
    refused = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "run", "--config", str(home.config)],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "HOME": str(home.root), "XDG_STATE_HOME": str(home.root / "xdg")},
    )
    assert refused.returncode == 2
    assert f"another salvage run (pid {second.pid}) is using" in refused.stderr
    assert second.proc.poll() is None

    # SIGHUP with a broken config: logged, the old config kept, the service goes on.
    good = home.config.read_text(encoding="utf-8")
    home.config.write_text(good.replace("poll_minutes: 0.05", "poll_minutes: soon"), encoding="utf-8")
    second.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the old one" in second.log(), 10, "no word about the bad config", process=second)
    assert "poll_minutes" in second.log()
    second.wait_polls("work")

    code, _ = second.terminate()
    assert code == 0
    assert home.drafts() == [draft]


def test_missed_interview_is_drafted_soon_after_start_plus_grace_without_a_poll(home: Home) -> None:
    home.write_config(poll_minutes=60, grace_minutes=0, notify=True)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    home.calendar([interview("a@acme.example", start), meeting("m1@job.example", minute(start) - timedelta(minutes=30))])
    daemon = home.start()
    wait_for(lambda: daemon.last_poll("work") is not None, 20, "no first poll", process=daemon)
    first_poll = daemon.last_poll("work")
    assert first_poll is not None and first_poll < start, "the first poll came after the interview started"
    assert daemon.health()["scheduled_checks"] >= 1

    def missed_draft() -> bool:
        return any(re.search(r"apolog|sorry", subject(p).lower()) for p in home.drafts())

    wait_for(missed_draft, (start - datetime.now(UTC)).total_seconds() + 60,
             "no missed-interview draft within 60 s of start + grace", process=daemon)
    assert datetime.now(UTC) < start + timedelta(seconds=60)
    assert daemon.last_poll("work") is not None
    # The short-notice reschedule draft made before the start is withdrawn; the apology stays.
    # (The file goes a moment before the state records it: wait for both.)
    wait_for(lambda: len(home.drafts()) == 1 and sorted(home.draft_states().values()) == ["untouched", "withdrawn"],
             10, f"drafts: {home.drafts()}, states: {home.draft_states()}", process=daemon)

    # "Call them first": the notify command ran once for the missed interview, with the phone number.
    notified = home.root / "notified.txt"

    def missed_notes() -> list[str]:
        text = notified.read_text(encoding="utf-8") if notified.exists() else ""
        return [line for line in text.splitlines() if line.startswith("Missed interview")]

    wait_for(lambda: bool(missed_notes()), 10, "the notify command did not run", process=daemon)
    code, took = daemon.terminate()
    assert code == 0 and took < 5.0
    (note,) = missed_notes()
    assert note.endswith(f"|{PHONE}") and "Technical interview - Acme Robotics" in note
