"""The command line end to end on the bundled demo calendar (ics + folder providers)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser
from importlib import resources
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW

SAMPLE = resources.files("daemon.sample")
FORBIDDEN = ("dentist", "initech", "final round", "concert", "quarterly planning", "another interview",
             "other interview", "albert hall", "family visit")


def read_drafts(folder: Path) -> list:
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    """The demo's calendar and a config using it, as a user would write them."""
    shutil.copy(str(SAMPLE / "demo.ics"), tmp_path / "demo.ics")
    text = (SAMPLE / "demo.yaml").read_text()
    text += "state:\n  path: state.sqlite3\n"
    (tmp_path / "config.yaml").write_text(text)
    return tmp_path / "config.yaml"


def test_demo_writes_the_expected_drafts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "Call them first" in printed or "call them first" in printed
    drafts = read_drafts(tmp_path / "out" / "drafts")
    by_recipient = {str(m["To"].addresses[0].addr_spec): m for m in drafts}
    assert set(by_recipient) == {
        "priya.shah@hooli.example",  # missed an hour ago (clash with a work meeting)
        "jordan.lee@acme-robotics.example",  # double-booked
        "talent@globex.example",  # clashes with another interview (booked later, so this one moves)
        "dana.kim@umbrella-health.example",  # 03:00 local: created in Los Angeles
        "recruiting@stark.example",  # inside the out-of-office week
        "lucius.fox@wayne.example",  # remote, no link
    }
    for message in drafts:
        assert message["X-Salvage-Key"] and message["X-Unsent"] == "1"
        assert message["From"].addresses[0].addr_spec == "alex.morgan@example.com"
        body = message.get_body(preferencelist=("plain",)).get_content().lower()
        subject = str(message["Subject"]).lower()
        for word in FORBIDDEN:
            assert word not in body and word not in subject, (word, subject)
    missed = by_recipient["priya.shah@hooli.example"].get_body(preferencelist=("plain",)).get_content()
    # 09:30–10:00, drafted at 10:30: its window has passed, so no "are you still free now?"
    assert "still free" not in missed.lower() and "another time" in missed.lower()
    assert missed.startswith(("Dear Priya,", "Hello Priya,")) and "phone screen" in missed


def test_demo_twice_is_reproducible(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["demo", "--output", str(out)]) == 0
    first = sorted(p.read_bytes().split(b"Message-ID")[0] for p in (out / "drafts").glob("*.eml"))
    assert main(["demo", "--output", str(out)]) == 0
    second = sorted(p.read_bytes().split(b"Message-ID")[0] for p in (out / "drafts").glob("*.eml"))
    assert len(first) == len(second) == 6


def test_check_json_shape_and_exit_code(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--config", str(demo_config), "--now", DEMO_NOW, "--format", "json"])
    assert code == 1  # risks found
    data = json.loads(capsys.readouterr().out)
    assert data["timezone"] == "Europe/London" and data["accounts"][0]["ok"] is True
    titles = {i["title"] for i in data["interviews"]}
    assert "Interview prep: Acme Robotics" not in titles
    assert "Recruiter call - Pied Piper" in titles
    for item in data["interviews"]:
        assert set(item) >= {"id", "key", "title", "start", "end", "timezone", "organizer", "score", "reasons", "risks"}
        for risk in item["risks"]:
            assert set(risk) == {"kind", "severity", "evidence", "cause"}
    kinds = {r["kind"] for i in data["interviews"] for r in i["risks"]}
    assert {"missed", "double_booked", "interview_clash", "odd_hour", "out_of_office", "no_join_info"} <= kinds
    pied = next(i for i in data["interviews"] if i["title"] == "Recruiter call - Pied Piper")
    assert pied["actions"] == []


def test_proposed_slots_are_really_free(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.config import load_config
    from daemon.engine.pipeline import Engine
    from daemon.engine.state import StateStore

    config = load_config(demo_config)
    now = datetime.fromisoformat(DEMO_NOW)
    with StateStore.open(config.state_path) as store:
        engine = Engine(config, store)
        engine.poll(config.accounts[0], now)
        evaluation = engine.evaluate(now)
    tz = config.user.zone
    busy = [e.span(tz) for e in evaluation.events if e.blocks_time]
    reschedules = [a for a in evaluation.actions if a.slots]
    assert reschedules
    for action in reschedules:
        assert len(action.slots) == 3
        for slot in action.slots:
            local_start, local_end = slot.start.astimezone(tz), slot.end.astimezone(tz)
            assert local_start.weekday() < 5 and local_start.time() >= config.working_hours.start
            assert local_end.time() <= config.working_hours.end and local_end.date() == local_start.date()
            assert slot.start >= now + timedelta(hours=config.slots.min_notice_hours)
            for start, end in busy:
                assert slot.end <= start or slot.start >= end, (action.kind, slot, start, end)


def test_preview_and_unknown_event(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "--config", str(demo_config), "--now", DEMO_NOW, "Umbrella"]) == 0
    out = capsys.readouterr().out
    assert "dana.kim@umbrella-health.example" in out and "odd_hour" in out
    assert main(["preview", "--config", str(demo_config), "--now", DEMO_NOW, "no such thing"]) == 2
    assert "no event matches" in capsys.readouterr().err


def test_missed_command_then_report(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    later = "2026-11-27T16:00:00+00:00"  # the Pied Piper call (15:00) is over
    assert main(["run", "--once", "--config", str(demo_config), "--now", later]) == 0
    capsys.readouterr()
    assert main(["missed", "--config", str(demo_config), "--now", later, "Pied Piper", "--reason", "illness"]) == 0
    out = capsys.readouterr().out
    assert "missed_interview" in out
    drafts = read_drafts(demo_config.parent / "drafts")
    pied = [m for m in drafts if m["To"].addresses[0].addr_spec == "monica.hall@piedpiper.example"]
    assert len(pied) == 1
    assert main(["report", "--config", str(demo_config), "--now", later, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    titles = {i["title"]: i for i in report["incidents"]}
    assert titles["Recruiter call - Pied Piper"]["missed"] is True
    assert all(i["tip"] for i in report["incidents"])


def test_missed_in_the_future_is_refused(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["missed", "--config", str(demo_config), "--now", DEMO_NOW, "Stark"]) == 2
    assert "cannot be missed yet" in capsys.readouterr().err


def test_run_once_twice_makes_no_second_draft(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    folder = demo_config.parent / "drafts"
    first = sorted(p.name for p in folder.glob("*.eml"))
    assert len(first) == 6
    assert main(["run", "--once", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    assert sorted(p.name for p in folder.glob("*.eml")) == first
    # a deleted draft file is never re-created
    (folder / first[0]).unlink()
    assert main(["run", "--once", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    assert main(["run", "--once", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    assert sorted(p.name for p in folder.glob("*.eml")) == first[1:]


def test_dry_run_writes_nothing(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--dry-run", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    assert "would-create" in capsys.readouterr().out
    assert not (demo_config.parent / "drafts").exists() or not list((demo_config.parent / "drafts").glob("*.eml"))


@pytest.mark.parametrize("bad", ["2026-11-24T10:30:00", "yesterday"])
def test_bad_now_is_a_user_error(demo_config: Path, bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(demo_config), "--now", bad]) == 2
    err = capsys.readouterr().err
    assert "--now" in err and "Traceback" not in err


def test_broken_calendar_file_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "demo.ics").write_text("this is not a calendar")
    (tmp_path / "config.yaml").write_text((SAMPLE / "demo.yaml").read_text() + "state:\n  path: s.sqlite3\n")
    code = main(["check", "--config", str(tmp_path / "config.yaml"), "--now", DEMO_NOW])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err  # a failed account is not a quiet week
    assert "account demo" in captured.out


def test_auth_browser_switches_a_microsoft_account_to_the_browser_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from providers import registry

    config = tmp_path / "config.yaml"
    config.write_text(
        "user: {name: A, email: a@example.com, timezone: UTC}\n"
        "accounts:\n  - name: work\n    calendar: {type: microsoft}\n    drafts: {type: microsoft}\n"
        "    microsoft: {client_id: 00000000-0000-0000-0000-000000000001}\n"
        f"state: {{path: {tmp_path / 'state.sqlite3'}}}\n"
    )
    flows: list[str] = []
    monkeypatch.setattr(registry, "authenticate",
                        lambda account, cfg, **kw: flows.append(account.connection("microsoft").auth_flow))
    assert main(["auth", "--config", str(config), "work"]) == 0
    assert main(["auth", "--config", str(config), "work", "--browser"]) == 0
    assert flows == ["device_code", "interactive"]
    with pytest.raises(SystemExit) as stop:
        main(["auth", "--config", str(config), "work", "--browser", "--no-browser"])
    assert stop.value.code == 2


def test_check_tells_the_user_what_each_clash_is_with(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The articles' "consider your reason", for the user only (drafts never name the other event)."""
    main(["check", "--config", str(demo_config), "--now", DEMO_NOW])
    out = " ".join(capsys.readouterr().out.split())
    assert 'This clash is with another interview ("Final round interview - Initech"): never cite it' in out
    assert 'This clash is with a health appointment ("Dentist - Dr Patel")' in out
    assert "Call Priya Shah first: +44 20 7946 0321" in out


def test_call_first_line_says_why_whatever_the_notice() -> None:
    """A number in the invitation means a call first for any move; "short notice" only when it is."""
    import io
    from datetime import datetime, timedelta, timezone

    from rich.console import Console

    from daemon.cli.commands import print_call_first
    from daemon.core.model import Event
    from daemon.engine.pipeline import Evaluation, Outcome

    now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)

    def said(days: float) -> str:
        start = now + timedelta(days=days)
        event = Event(account="a", source_id="iv", title="Phone screen - Hooli", start=start,
                      end=start + timedelta(minutes=30))
        evaluation = Evaluation(now=now, events=(event,), by_key={"iv": event}, classifications={}, risks=(),
                                actions=())
        outcome = Outcome("k", "a", "iv", "reschedule_request", "created", call_first=True, phone="+44 20 7946 0321")
        buffer = io.StringIO()
        print_call_first([outcome], evaluation, Console(file=buffer, width=200))
        return buffer.getvalue()

    week = said(5)
    assert "Moving 'Phone screen - Hooli': call them first on +44 20 7946 0321" in week and "Short" not in week
    assert "Short notice for 'Phone screen - Hooli': call them first" in said(0.5)
