"""`salvage init`: a newcomer's path from the demo to Salvage watching their own calendar.

The first test is the issue's "done means": on a fresh home, `salvage demo`, then `salvage init`
driven through a real pseudo-terminal, then `salvage check` against the user's own .ics file.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from daemon.cli import main

pexpect = pytest.importorskip("pexpect")

NOW = "2026-11-24T10:30:00+00:00"
# A newcomer's own calendar: an interview next Wednesday that overlaps the weekly team meeting.
MY_ICS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Newcomer//EN
BEGIN:VEVENT
UID:iv-1@jobs.example
DTSTAMP:20261120T120000Z
DTSTART;TZID=America/New_York:20261125T100000
DTEND;TZID=America/New_York:20261125T110000
SUMMARY:Technical interview - Initrode
DESCRIPTION:Join: https://meet.example.com/abc
ORGANIZER;CN=Pat Lee:mailto:pat.lee@initrode.example
ATTENDEE;CN=Sam Newcomer;PARTSTAT=ACCEPTED:mailto:sam@example.org
END:VEVENT
BEGIN:VEVENT
UID:team-1@example.org
DTSTAMP:20261120T120000Z
DTSTART;TZID=America/New_York:20261125T103000
DTEND;TZID=America/New_York:20261125T113000
SUMMARY:Team meeting
END:VEVENT
END:VCALENDAR
"""


def spawn_salvage(args: list[str], home: Path, **env: str) -> pexpect.spawn:
    environ = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_STATE_HOME": str(home / ".local/state"), "COLUMNS": "100", "NO_COLOR": "1", **env}
    for name in ("SALVAGE_CONFIG", "SALVAGE_CONFIG_DIR", "SALVAGE_STATE_DIR"):
        environ.pop(name, None)
    return pexpect.spawn(sys.executable, ["-m", "daemon.cli", *args], env=environ, encoding="utf-8",
                         timeout=30, dimensions=(40, int(environ["COLUMNS"])))


def test_demo_then_init_on_a_terminal_then_check_my_own_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert "salvage init" in capsys.readouterr().out
    (home / "my.ics").write_text(MY_ICS)

    child = spawn_salvage(["init"], home, TZ="America/New_York")
    child.expect(r"Your name.*: ")
    child.sendline("Sam Newcomer")
    child.expect(r"Your email address.*: ")
    child.sendline("sam at example")  # a typo: asked again
    child.expect("is not an email address")
    child.expect(r"Your email address.*: ")
    child.sendline("sam@example.org")
    child.expect(r"this computer says America/New_York\) \[America/New_York\]: ")
    child.sendline("")  # confirm the detected zone
    child.expect(r"Working days.*\[mon-fri\]: ")
    child.sendline("")
    child.expect(r"Working hours start \[09:00\]: ")
    child.sendline("")
    child.expect(r"Working hours end \[17:30\]: ")
    child.sendline("18:00")
    child.expect(r"Your calendar: .ics file or https:// address: ")
    child.sendline("~/calendar.ics")  # not there: asked again
    child.expect("is not a file")
    child.expect(r"Your calendar: .ics file or https:// address: ")
    child.sendline("~/my.ics")
    child.expect(r"Folder for the drafts.*: ")
    child.sendline("")
    child.expect("Config OK.")
    child.expect(r"Next: \S*salvage check")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    config = home / ".config" / "salvage" / "config.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    data = yaml.safe_load(config.read_text())
    assert data["user"] == {"name": "Sam Newcomer", "email": "sam@example.org", "timezone": "America/New_York"}
    assert data["working_hours"] == {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
    assert data["accounts"][0]["calendar"] == {"type": "ics", "path": str(home / "my.ics")}
    assert data["accounts"][0]["drafts"]["path"] == str(home / "salvage-drafts")
    assert "# Who you are." in config.read_text()

    check = spawn_salvage(["check", "--now", NOW], home, COLUMNS="160")
    check.expect(pexpect.EOF)
    check.close()
    text = check.before
    assert check.exitstatus == 1, text  # a risk found
    assert "Technical interview - Initrode" in text and "double_booked" in text
    assert "could not be read" not in text


def test_non_interactive_init_for_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ics = tmp_path / "my.ics"
    ics.write_text(MY_ICS)
    target = tmp_path / "conf" / "config.yaml"
    args = ["init", "--non-interactive", "--config", str(target), "--name", "Sam", "--email", "Sam@Example.org",
            "--timezone", "Europe/Berlin", "--work-days", "mon-thu", "--work-start", "8:30", "--calendar", str(ics),
            "--drafts-folder", str(tmp_path / "drafts")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"Next: salvage check --config {target}" in out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = yaml.safe_load(target.read_text())
    assert data["user"]["email"] == "sam@example.org" and data["user"]["timezone"] == "Europe/Berlin"
    assert data["working_hours"]["days"] == ["mon", "tue", "wed", "thu"] and data["working_hours"]["start"] == "08:30"
    assert main(["config", "validate", "--config", str(target)]) == 0
    # an existing file is not replaced without --force
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--force", "--calendar", "https://cal.example.com/secret.ics"]) == 0
    assert yaml.safe_load(target.read_text())["accounts"][0]["calendar"]["url"] == "https://cal.example.com/secret.ics"


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--email", "nobody", "is not an email address"),
    ("--timezone", "Mars/Olympus", "is not a timezone name"),
    ("--work-days", "fri-mon", "runs backwards"),
    ("--work-start", "25:00", "is not a time of day"),
    ("--calendar", "/nonexistent/cal.ics", "is not a file"),
])
def test_non_interactive_init_refuses_a_bad_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   flag: str, value: str, message: str) -> None:
    ics = tmp_path / "my.ics"
    ics.write_text(MY_ICS)
    answers = {"--name": "Sam", "--email": "sam@example.org", "--calendar": str(ics), flag: value}
    argv = ["init", "--non-interactive", "--config", str(tmp_path / "c.yaml")]
    for key, val in answers.items():
        argv += [key, val]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


def test_init_without_a_terminal_says_how_to_script_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["init", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "--non-interactive" in capsys.readouterr().err


def test_no_config_points_at_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "run `salvage init`" in capsys.readouterr().err
