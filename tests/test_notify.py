"""The notify command: argv placeholders, never a shell, a timeout, failures logged and not raised."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.service import notify as notify_module
from daemon.service.notify import expand, notify

# Records its arguments (after the output path) as JSON, so a test sees exactly what argv it got.
RECORD = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"


def recorder(out: Path, *template: str) -> list[str]:
    return [sys.executable, "-c", RECORD, str(out), *template]


def test_placeholders_are_replaced_inside_each_argument(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    command = recorder(out, "--title=Salvage", "{message}", "tel:{phone}", "{unknown} {message}!")
    assert notify(command, "Call Hooli", "+44 20 7946 0000") is True
    assert json.loads(out.read_text()) == ["--title=Salvage", "Call Hooli", "tel:+44 20 7946 0000",
                                           "{unknown} Call Hooli!"]


def test_a_hostile_message_stays_one_literal_argument(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    pwned = tmp_path / "pwned"
    message = f"$(rm -rf ~); echo pwned; touch {pwned} `touch {pwned}` && touch {pwned} | 'quoted' \"{{phone}}\""
    assert notify(recorder(out, "{message}", "{phone}"), message, None) is True
    # one argument, byte for byte (a {phone} inside the message is not a placeholder); an empty phone
    assert json.loads(out.read_text()) == [message, ""]
    assert not pwned.exists()


def test_expand_is_one_pass() -> None:
    assert expand(["{message}", "x{phone}y"], "{phone} {message}", "123") == ["{phone} {message}", "x123y"]
    assert expand(["{phone}"], "m", None) == [""]


def test_nothing_configured_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(notify_module.subprocess, "Popen", boom)
    assert notify(None, "Missed interview", "123") is False
    assert notify([], "Missed interview", "123") is False


def test_a_missing_program_is_logged_not_raised(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="salvage.daemon.service.notify")
    assert notify([str(tmp_path / "no-such-notifier"), "{message}"], "hello", None) is False
    assert "not found" in caplog.text and "no-such-notifier" in caplog.text


def test_a_program_that_cannot_run_is_logged(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="salvage.daemon.service.notify")
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    assert notify([str(script)], "hello", None) is False
    assert "cannot run" in caplog.text


def test_a_failing_program_is_logged_with_its_last_error_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="salvage.daemon.service.notify")
    command = [sys.executable, "-c", "import sys; sys.stderr.write('first\\nntfy: 401 unauthorized\\n'); sys.exit(3)"]
    assert notify(command, "hello", None) is False
    assert "exited with status 3" in caplog.text and "401 unauthorized" in caplog.text


def test_a_hung_program_is_stopped_after_the_timeout(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO, logger="salvage.daemon.service.notify")
    child_pid = tmp_path / "child.pid"
    # a wrapper that starts a child of its own and waits: the timeout must stop both
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    assert notify([sys.executable, "-c", script], "hello", None, timeout=1.5) is False
    assert time.monotonic() - started < 8
    assert "did not finish within" in caplog.text
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_command_gets_no_stdin_and_its_stdout_is_discarded(tmp_path: Path) -> None:
    out = tmp_path / "stdin.txt"
    script = f"import sys; print('noise'); open({str(out)!r}, 'w').write(repr(sys.stdin.read()))"
    assert notify([sys.executable, "-c", script], "hello", None) is True
    assert out.read_text() == "''"


def test_never_raises_on_odd_input(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="salvage.daemon.service.notify")
    # a NUL byte cannot be put in an argv: logged, not raised
    assert notify([sys.executable, "-c", "pass", "{message}"], "bad\x00byte", None) is False
    assert "notify" in caplog.text


def test_subprocess_is_never_a_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    real = subprocess.Popen

    def spy(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        seen.update(kwargs, argv=argv)
        return real(argv, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(notify_module.subprocess, "Popen", spy)
    assert notify([sys.executable, "-c", "pass", "{message}"], "a; b", None) is True
    assert seen["shell"] is False and seen["argv"] == [sys.executable, "-c", "pass", "a; b"]


def test_the_desktop_notifier_by_platform() -> None:
    from daemon.service.notify import desktop_command

    def has(*names: str):  # noqa: ANN202 - a tiny shutil.which stand-in
        return lambda name: f"/usr/bin/{name}" if name in names else None

    linux = desktop_command("linux", has("notify-send"))
    assert linux is not None and linux[0] == "notify-send" and linux[-1] == "{message}"
    assert desktop_command("linux", has()) is None
    mac = desktop_command("darwin", has("osascript"))
    # the message is an argument to a fixed script, never part of the script text
    assert mac is not None and mac[0] == "osascript" and mac[-1] == "{message}"
    assert all("{message}" not in part for part in mac[:-1])
    assert desktop_command("darwin", has()) is None and desktop_command("win32", has("notify-send")) is None
