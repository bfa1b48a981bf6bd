"""Honest exit codes and messages: each message a newcomer found untrue, now true, with a test."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW

SAMPLE = resources.files("daemon.sample")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    shutil.copy(str(SAMPLE / "demo.ics"), tmp_path / "demo.ics")
    text = (SAMPLE / "demo.yaml").read_text() + "state:\n  path: state.sqlite3\n"
    (tmp_path / "config.yaml").write_text(text)
    return tmp_path / "config.yaml"


@pytest.fixture
def example_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped example, as a newcomer copies it, with state and drafts kept in the test's folder."""
    monkeypatch.setenv("SALVAGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SALVAGE_MS_CLIENT_ID", raising=False)
    path = tmp_path / "config.yaml"
    shutil.copy(ROOT / "config.example.yaml", path)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_check_with_a_failing_account_exits_nonzero_and_says_so_above_the_table(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", "--config", str(example_config)])
    out = capsys.readouterr().out
    assert code == 1
    first = out.splitlines()[0]
    assert "1 of 1 account(s) could not be read (personal)" in first
    # the failure names the file and line where the calendar is configured
    line = line_of(example_config, "path: ~/calendars/personal.ics")
    assert f"accounts[0].calendar.path at {example_config}:{line}" in out
    assert "No interviews found in the accounts that could be read" in out


def test_validate_names_file_and_line_of_a_missing_calendar(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "validate", "--config", str(example_config)]) == 2
    out = capsys.readouterr().out
    line = line_of(example_config, "path: ~/calendars/personal.ics")
    assert f"accounts[0].calendar.path ({example_config}:{line})" in out and "does not exist" in out


def test_auth_of_an_account_that_needs_none_does_not_claim_to_authorise(
    example_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["auth", "personal", "--config", str(example_config)]) == 0
    out = capsys.readouterr().out
    assert "needs no authorisation" in out and "is authorised" not in out


def test_placeholder_client_id_is_named_before_any_network_call(
    example_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from providers import registry

    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("sign-in started with a placeholder client id")

    monkeypatch.setattr(registry, "authenticate", no_network)
    assert main(["auth", "work-outlook", "--config", str(example_config)]) == 2
    err = capsys.readouterr().err
    line = line_of(example_config, "client_id: ${SALVAGE_MS_CLIENT_ID")
    assert "'00000000-0000-0000-0000-000000000000' is the example's placeholder" in err
    assert f"{example_config}:{line}" in err
    # validate says the same for an enabled account
    text = example_config.read_text().replace("enabled: false", "enabled: true")
    example_config.write_text(text)
    main(["config", "validate", "--config", str(example_config)])
    assert "placeholder" in capsys.readouterr().out


def test_placeholder_google_client_json(tmp_path: Path) -> None:
    from daemon.cli.common import placeholder_problems
    from daemon.config import parse_config

    secrets = tmp_path / "client.json"
    secrets.write_text('{"installed": {"client_id": "YOUR_CLIENT_ID.apps.googleusercontent.com"}}')
    config = parse_config(
        "user: {name: A, email: a@example.com, timezone: UTC}\n"
        "accounts:\n  - name: g\n    calendar: {type: google}\n    drafts: {type: google}\n"
        f"    google: {{client_secrets: {secrets}}}\n")
    [(keys, problem)] = placeholder_problems(config.accounts[0])
    assert keys == ("google", "client_secrets") and "placeholder" in problem
    secrets.write_text('{"installed": {"client_id": "1234-abc.apps.googleusercontent.com"}}')
    assert placeholder_problems(config.accounts[0]) == []


def test_an_ambiguous_event_lists_every_match(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "interview", "--config", str(demo_config), "--now", DEMO_NOW]) == 2
    err = capsys.readouterr().err
    count = int(re.search(r"matches (\d+) events", err).group(1))  # type: ignore[union-attr]
    assert count == len(re.findall(r"\b[0-9a-f]{8} '", err)) == 7


def test_preview_of_the_interview_that_stays_names_the_one_that_moves(
    demo_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preview", "Initech", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    out = capsys.readouterr().out
    assert "it stays, and the clash is solved by moving 'Panel interview - Globex'" in out
    assert "salvage preview 63eaab31" in out.replace("\n", " ")


def test_missed_lists_every_draft_the_pass_wrote(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["missed", "Pied Piper", "--config", str(demo_config), "--now", "2026-11-27T16:00:00+00:00"])
    out = capsys.readouterr().out
    assert code == 0
    drafts = sorted((demo_config.parent / "drafts").glob("*.eml"))
    assert len(drafts) == 2  # the missed-interview apology and the Stark reschedule request
    assert "missed_interview for 'Recruiter call - Pied Piper'" in out
    assert "also changed drafts for other interviews" in out
    assert "reschedule_request for 'Onsite interview - Stark Industries'" in out


def test_call_first_is_said_only_for_a_missed_or_short_notice_interview(
    demo_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three days before anything: nothing is missed and nothing is short notice.
    assert main(["run", "--once", "--config", str(demo_config), "--now", "2026-11-20T09:00:00+00:00"]) in (0, 1)
    out = capsys.readouterr().out
    assert "call them first" not in out.lower()
    assert main(["demo", "--output", str(demo_config.parent / "demo")]) == 0
    out = capsys.readouterr().out
    assert "You missed 'Phone screen - Hooli': call them first on +44 20 7946 0321" in out


def test_withdrawn_names_the_interview(demo_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    ics = demo_config.parent / "demo.ics"
    # The dentist appointment that made the Acme interview double-booked is cancelled.
    text = ics.read_text()
    start = text.index("SUMMARY:Dentist")
    block_start = text.rindex("BEGIN:VEVENT", 0, start)
    block_end = text.index("BEGIN:VEVENT", start)
    ics.write_text(text[:block_start] + text[block_end:])
    capsys.readouterr()
    assert main(["run", "--once", "--config", str(demo_config), "--now", DEMO_NOW]) == 0
    out = capsys.readouterr().out
    assert "withdrawn  reschedule_request for 'Technical interview - Acme Robotics'" in out
