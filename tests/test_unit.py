"""`salvage service install|uninstall`: the systemd user unit and the launchd agent it writes."""

from __future__ import annotations

import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import main, unit

CONFIG = """\
user:
  name: Alex Morgan
  email: alex@example.com
  timezone: Europe/London
accounts:
  - name: home
    calendar: {type: ics, path: cal.ics}
    drafts: {type: folder, path: drafts}
state:
  path: state.sqlite3
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and XDG_CONFIG_HOME; a `salvage` script at a path with a space in it; Linux."""
    home = tmp_path / "home dir"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg config"))
    for name in unit.ENV_PASSTHROUGH:
        monkeypatch.delenv(name, raising=False)
    script = tmp_path / "my tools" / "bin" / "salvage"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "service", "install"])
    monkeypatch.setattr(unit, "platform", lambda: "linux")
    return home


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "Salvage 50% $HOME"  # blanks, a specifier and a variable, all to be kept literally
    folder.mkdir()
    (folder / "cal.ics").write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    path = folder / "config.yaml"
    path.write_text(CONFIG)
    return path


def script_path() -> str:
    return str(Path(sys.argv[0]).absolute())


def systemd_words(line: str) -> list[str]:
    """Split an ExecStart= value the way systemd does for the quoting Salvage emits."""
    return [w.replace("$$", "$").replace("%%", "%") for w in shlex.split(line)]


def unit_lines(text: str) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            lines.setdefault(key, []).append(value)
    return lines


def test_systemd_unit_runs_this_salvage_with_the_absolute_config(home: Path, config: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "install", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    target = home / "xdg config" / "systemd" / "user" / "salvage.service"
    assert target.is_file()
    text = target.read_text()
    lines = unit_lines(text)
    assert systemd_words(lines["ExecStart"][0]) == [script_path(), "run", "--config", str(config)]
    assert lines["Restart"] == ["on-failure"]
    assert lines["Type"] == ["simple"]
    assert lines["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert lines["WantedBy"] == ["default.target"]
    # journald-friendly: stderr to the journal under a stable name, never thrown away
    assert lines["StandardError"] == ["journal"] and lines["SyslogIdentifier"] == ["salvage"]
    assert "StandardOutput" not in lines or lines["StandardOutput"] != ["null"]
    assert "PYTHONUNBUFFERED=1" in lines["Environment"]
    assert "systemctl --user daemon-reload && systemctl --user enable --now salvage.service" in printed
    assert "loginctl enable-linger" in printed
    assert str(target) in printed


def test_relative_config_is_made_absolute(home: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(config.parent)
    assert main(["service", "install", "--config", "config.yaml"]) == 0
    text = (home / "xdg config" / "systemd" / "user" / "salvage.service").read_text()
    words = systemd_words(unit_lines(text)["ExecStart"][0])
    assert words[-1] == str(config) and Path(words[0]).is_absolute()


def test_without_the_salvage_script_it_runs_python_dash_m(home: Path, config: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/somewhere/pytest"])
    assert unit.salvage_argv() == [str(Path(sys.executable).absolute()), "-m", "daemon.cli"]


def test_environment_is_passed_through_quoted(home: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALVAGE_STATE_DIR", str(home / "state $dir 100%"))
    assert main(["service", "install", "--config", str(config)]) == 0
    text = (home / "xdg config" / "systemd" / "user" / "salvage.service").read_text()
    env = [shlex.split(v)[0].replace("%%", "%") for v in unit_lines(text)["Environment"]]
    # Environment= does no $ expansion, so the dollar is not doubled there
    assert f"SALVAGE_STATE_DIR={home / 'state $dir 100%'}" in env


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(home: Path, config: Path, tmp_path: Path) -> None:
    assert main(["service", "install", "--config", str(config)]) == 0
    target = home / "xdg config" / "systemd" / "user" / "salvage.service"
    done = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=30,
                          check=False)
    if "Failed to initialize manager" in done.stderr or "Failed to lookup" in done.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert "ignoring" not in done.stderr and "not executable" not in done.stderr, done.stderr


def test_print_shows_the_unit_and_writes_nothing(home: Path, config: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "install", "--config", str(config), "--print"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Written by `salvage service install`")
    assert "[Service]" in printed and "Restart=on-failure" in printed
    assert systemd_words(unit_lines(printed)["ExecStart"][0])[-1] == str(config)
    assert not (home / "xdg config").exists()


def test_install_refuses_a_config_that_does_not_load(home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: 3\n")
    assert main(["service", "install", "--config", str(bad)]) == 2
    assert "invalid configuration" in capsys.readouterr().err
    assert main(["service", "install", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert not (home / "xdg config").exists()


def test_install_again_updates_and_uninstall_removes(home: Path, config: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    user_dir = home / "xdg config" / "systemd" / "user"
    assert main(["service", "install", "--config", str(config)]) == 0
    assert main(["service", "install", "--config", str(config)]) == 0
    assert "Updated" in capsys.readouterr().out
    # what `systemctl --user enable` leaves behind
    wants = user_dir / "default.target.wants"
    wants.mkdir()
    (wants / "salvage.service").symlink_to(user_dir / "salvage.service")
    assert main(["service", "uninstall"]) == 0
    printed = capsys.readouterr().out
    assert not (user_dir / "salvage.service").exists()
    assert not (wants / "salvage.service").is_symlink()
    assert "systemctl --user stop salvage.service" in printed
    assert main(["service", "uninstall"]) == 0
    assert "Nothing to remove" in capsys.readouterr().out


def test_launchd_agent_on_macos(home: Path, config: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(unit, "platform", lambda: "darwin")
    assert main(["service", "install", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    target = home / "Library" / "LaunchAgents" / "org.salvage.run.plist"
    data = plistlib.loads(target.read_bytes())
    assert data["Label"] == "org.salvage.run"
    assert data["ProgramArguments"] == [script_path(), "run", "--config", str(config)]
    assert data["KeepAlive"] == {"SuccessfulExit": False}  # restarted after a crash, not after a stop
    assert data["RunAtLoad"] is True
    log = Path(data["StandardErrorPath"])
    assert log.is_absolute() and log.parent == home / "Library" / "Logs" and log.parent.is_dir()
    assert data["EnvironmentVariables"]["PYTHONUNBUFFERED"] == "1"
    assert f"launchctl bootstrap gui/$(id -u) {target}" in printed
    assert not (home / "xdg config").exists()

    assert main(["service", "install", "--config", str(config), "--print"]) == 0
    shown = plistlib.loads(capsys.readouterr().out.encode())
    assert shown["ProgramArguments"] == data["ProgramArguments"]

    assert main(["service", "uninstall"]) == 0
    assert "launchctl bootout" in capsys.readouterr().out
    assert not target.exists()
