"""`salvage status`: accounts, upcoming interviews with risks, live drafts, the health file, --exit-code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW
from daemon.config import load_config
from daemon.engine.state import StateStore
from daemon.service.health import STALE_AFTER, health_path, read_health, service_state, write_health

SAMPLE = resources.files("daemon.sample")
UTC = timezone.utc


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # tables not wrapped, so cells can be searched


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The demo calendar (ics) with drafts in a folder, plus a second account whose calendar is missing."""
    shutil.copy(str(SAMPLE / "demo.ics"), tmp_path / "demo.ics")
    (tmp_path / "config.yaml").write_text(
        "user:\n  name: Alex Morgan\n  email: alex.morgan@example.com\n  timezone: Europe/London\n"
        "  phone: '+44 7700 900123'\n"
        "working_hours:\n  days: [mon, tue, wed, thu, fri]\n  start: '09:00'\n  end: '17:30'\n"
        "accounts:\n"
        "  - name: demo\n    calendar: {type: ics, path: demo.ics}\n    drafts: {type: folder, path: drafts}\n"
        "  - name: spare\n    calendar: {type: ics, path: demo.ics}\n    drafts: {type: folder, path: drafts2}\n"
        "    enabled: false\n"
        "state:\n  path: state/state.sqlite3\n"
    )
    return tmp_path / "config.yaml"


def status(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, str]:
    code = main(["status", "--config", str(config), "--now", DEMO_NOW, *extra])
    return code, capsys.readouterr().out


def status_json(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out = status(capsys, config, "--format", "json", *extra)
    return code, json.loads(out)


def run_once(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--config", str(config), "--now", DEMO_NOW]) == 0
    capsys.readouterr()


def add_failing_account(config: Path) -> None:
    text = config.read_text().replace(
        "state:\n",
        "  - name: work\n    calendar: {type: ics, path: gone.ics}\n    drafts: {type: folder, path: drafts3}\n"
        "state:\n",
    )
    config.write_text(text)


def test_fresh_state_no_service_ever_run(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = status(capsys, config, "--exit-code")
    assert code == 0
    assert "has not run" in out and "not polled yet" in out and "disabled" in out
    assert "No live drafts" in out
    code, data = status_json(capsys, config, "--exit-code")
    assert code == 0 and data["ok"] is True
    assert data["service"] == {"state": "never-run", "pid": None, "updated": None,
                               "detail": "no health file: the service has not run with this state"}
    assert [a["name"] for a in data["accounts"]] == ["demo", "spare"]
    demo = data["accounts"][0]
    assert demo["last_poll"] is None and demo["next_poll"] is None and demo["ok"] is True
    assert demo["calendar"] == "ics" and demo["drafts"] == "folder"
    assert data["interviews"] == [] and data["drafts"] == []
    assert not (config.parent / "state" / "state.sqlite3").exists()  # status changes nothing


def test_json_after_a_pass_shows_polls_interviews_risks_and_drafts(config: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run_once(config, capsys)
    code, data = status_json(capsys, config, "--exit-code")
    assert code == 0 and data["ok"] is True
    assert data["now"] == datetime.fromisoformat(DEMO_NOW).isoformat() and data["timezone"] == "Europe/London"
    demo = data["accounts"][0]
    assert set(demo) == {"name", "enabled", "calendar", "drafts", "ok", "needs_auth", "error", "error_since",
                         "failures", "last_poll", "last_success", "next_poll", "problems"}
    assert datetime.fromisoformat(demo["last_poll"]) == datetime.fromisoformat(DEMO_NOW)
    assert demo["error"] is None and demo["needs_auth"] is False and demo["failures"] == 0
    assert data["accounts"][1]["enabled"] is False and data["accounts"][1]["last_poll"] is None

    by_title = {i["title"]: i for i in data["interviews"]}
    # the interview missed an hour ago is still shown (it needs action now); past, fine ones are not
    missed = by_title["Phone screen - Hooli"]
    assert [r["kind"] for r in missed["risks"]] == ["missed"]
    assert [a["kind"] for a in missed["actions"]] == ["missed_interview"]
    assert {r["kind"] for r in by_title["Technical interview - Acme Robotics"]["risks"]} == {"double_booked"}
    assert by_title["Recruiter call - Pied Piper"]["risks"] == []
    assert "Interview prep: Acme Robotics" not in by_title
    now = datetime.fromisoformat(DEMO_NOW)
    for item in data["interviews"]:
        assert datetime.fromisoformat(item["end"]) > now or item["risks"]

    drafts = data["drafts"]
    assert len(drafts) == 6
    assert {d["kind"] for d in drafts} == {"missed_interview", "reschedule_request", "ask_join_info"}
    for d in drafts:
        assert set(d) >= {"key", "account", "kind", "state", "subject", "to", "event_start", "created", "where"}
        assert d["account"] == "demo" and d["state"] == "untouched"
        assert (config.parent / "drafts" / d["where"]).is_file()  # the folder store names its .eml file
    starts = [d["event_start"] for d in drafts]
    assert starts == sorted(starts, key=datetime.fromisoformat)


def test_table_after_a_pass(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_once(config, capsys)
    code, out = status(capsys, config)
    assert code == 0
    assert "Accounts" in out and "Upcoming interviews" in out and "Live drafts" in out
    assert "Tue 24 Nov 10:30" in out  # last poll, in the user's timezone
    assert "Phone screen - Hooli" in out and "missed" in out and "double_booked" in out
    assert "priya.shah@hooli.example" in out and "untouched" in out
    # each draft's review note: call first, and what the clash is with (the articles' "consider your reason")
    flat = " ".join(out.split())
    assert "→ missed_interview to priya.shah@hooli.example: Call Priya Shah first: +44 20 7946 0321" in flat
    assert 'This clash is with another interview ("Final round interview - Initech")' in flat


def test_a_failing_account_is_shown_and_fails_the_exit_code(config: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    add_failing_account(config)
    main(["run", "--once", "--config", str(config), "--now", DEMO_NOW])
    capsys.readouterr()
    code, data = status_json(capsys, config, "--exit-code")
    assert code == 1 and data["ok"] is False
    accounts = {a["name"]: a for a in data["accounts"]}
    assert accounts["demo"]["ok"] is True
    work = accounts["work"]
    assert work["ok"] is False and work["failures"] == 1 and "gone.ics" in work["error"]
    assert datetime.fromisoformat(work["error_since"]) == datetime.fromisoformat(DEMO_NOW)
    assert len(data["drafts"]) == 6  # the healthy account still drafted

    code, out = status(capsys, config, "--exit-code")
    assert code == 1 and "failing (1×)" in out and "gone.ics" in out
    assert status(capsys, config)[0] == 0  # without --exit-code, status itself succeeded


def test_needs_auth_fails_the_exit_code(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_once(config, capsys)
    with StateStore.open(config.parent / "state" / "state.sqlite3") as store:
        store.record_failure("demo", datetime.fromisoformat(DEMO_NOW), "token revoked", needs_auth=True)
    code, data = status_json(capsys, config, "--exit-code")
    assert code == 1 and data["accounts"][0]["needs_auth"] is True
    code, out = status(capsys, config, "--exit-code")
    assert code == 1 and "needs `salvage auth demo`" in out


def test_a_failing_disabled_account_does_not_count(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_once(config, capsys)
    with StateStore.open(config.parent / "state" / "state.sqlite3") as store:
        store.record_failure("spare", datetime.fromisoformat(DEMO_NOW), "old error")
    assert status(capsys, config, "--exit-code")[0] == 0


def health(pid: int | None, updated: datetime, state: str = "running") -> dict[str, Any]:
    return {"version": 1, "state": state, "pid": pid, "updated": updated.isoformat(), "accounts": []}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


@pytest.mark.parametrize(
    ("make", "state", "code"),
    [
        (lambda now: health(os.getpid(), now - timedelta(seconds=30)), "running", 0),
        (lambda now: health(os.getpid(), now - STALE_AFTER - timedelta(minutes=1)), "not-responding", 1),
        (lambda now: health(dead_pid(), now - timedelta(seconds=30)), "dead", 1),
        (lambda now: health(dead_pid(), now - timedelta(days=3), "stopped"), "stopped", 0),
    ],
)
def test_the_health_file_decides_whether_the_service_is_alive(config: Path, capsys: pytest.CaptureFixture[str],
                                                              make: Any, state: str, code: int) -> None:
    run_once(config, capsys)
    # staleness is judged by the real clock, whatever --now says about the calendar
    write_health(health_path(load_config(config)), make(datetime.now(UTC)))
    got, data = status_json(capsys, config, "--exit-code")
    assert (got, data["service"]["state"]) == (code, state)
    assert data["ok"] is (code == 0)
    got, out = status(capsys, config, "--exit-code")
    assert got == code and data["service"]["detail"] in out


def test_health_file_path_and_round_trip(config: Path) -> None:
    cfg = load_config(config)
    path = health_path(cfg)
    assert path == config.parent / "state" / "health.json"
    assert read_health(path) is None
    write_health(path, {"state": "running", "pid": 1})
    assert read_health(path) == {"state": "running", "pid": 1}
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]  # no temporary file left behind
    path.write_text("{not json")
    assert read_health(path) is None
    assert service_state(None, datetime.now(UTC)).state == "never-run"
    assert service_state({"state": "running", "pid": os.getpid(), "updated": "yesterday"},
                         datetime.now(UTC)).state == "not-responding"


def test_a_broken_health_file_is_treated_as_missing(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config.parent / "state" / "health.json"
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2")
    code, data = status_json(capsys, config, "--exit-code")
    assert code == 0 and data["service"]["state"] == "never-run"


def test_bad_now_is_a_user_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(config), "--now", "2026-11-24T10:30"]) == 2
    assert "no timezone offset" in capsys.readouterr().err


def test_an_evaluation_failure_still_shows_accounts_and_drafts(config: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run_once(config, capsys)
    from daemon.engine.pipeline import Engine

    def broken(self: Engine, now: datetime) -> None:
        raise RuntimeError("classifier exploded")

    monkeypatch.setattr(Engine, "evaluate", broken)
    code, data = status_json(capsys, config)
    assert code == 0 and data["evaluation_error"] == "RuntimeError: classifier exploded"
    assert data["interviews"] == [] and len(data["drafts"]) == 6 and data["accounts"][0]["ok"] is True
    code, out = status(capsys, config)
    assert code == 0 and "could not evaluate the calendars: RuntimeError: classifier exploded" in out
    assert "Live drafts" in out
