"""Event text never acts on the terminal or forges log lines (issue 8, item 8)."""

from __future__ import annotations

import io
import json
import logging
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW
from daemon.cli.logs import JsonFormatter, TextFormatter
from daemon.cli.terminal import SafeConsole
from daemon.core.text import escape_invisible, strip_invisible

SAMPLE = resources.files("daemon.sample")
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e\u2066"
DANGEROUS = ("\x1b", "\x9b", "\x9d", "\x07", "\u202e", "\u2066", "\r")


@pytest.fixture
def hostile_config(tmp_path: Path) -> Path:
    text = (SAMPLE / "demo.ics").read_text()
    for old, new in (("SUMMARY:Phone screen - Hooli", f"SUMMARY:Phone screen {EVIL}- Hooli"),
                     ("ORGANIZER;CN=Priya Shah:", f"ORGANIZER;CN=Priya {EVIL}Shah:"),
                     ("SUMMARY:Quarterly planning", f"SUMMARY:Quarterly {EVIL}planning"),
                     ("SUMMARY:Technical interview - Acme Robotics", f"SUMMARY:Technical interview {EVIL}Acme")):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "demo.ics").write_text(text)
    (tmp_path / "config.yaml").write_text((SAMPLE / "demo.yaml").read_text() + "state:\n  path: s.sqlite3\n")
    return tmp_path / "config.yaml"


def _clean(output: str) -> bool:
    return not any(ch in output for ch in DANGEROUS)


@pytest.mark.parametrize("command", [["check"], ["check", "--format", "json"], ["preview", "Hooli"],
                                     ["preview", "Acme"], ["run", "--once"], ["status"], ["report"]])
def test_no_command_passes_escape_codes_from_event_text(hostile_config: Path, command: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    if command[0] in ("status", "report"):  # they read what a run recorded
        main(["run", "--once", "--config", str(hostile_config), "--now", DEMO_NOW])
        capsys.readouterr()
    now = [] if command[0] == "status" else ["--now", DEMO_NOW]
    main([*command, "--config", str(hostile_config), *now])
    captured = capsys.readouterr()
    assert "Hooli" in captured.out or "Acme" in captured.out or "interview" in captured.out.lower()
    assert _clean(captured.out), repr(captured.out[:2000])
    assert _clean(captured.err), repr(captured.err[:2000])
    if "json" in command:
        titles = {i["title"] for i in json.loads(captured.out)["interviews"]}
        assert f"Phone screen {EVIL}- Hooli" in titles  # the data is intact, only its spelling is safe


def test_the_console_keeps_its_own_colours() -> None:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, width=60, highlight=False)
    console.print(f"[bold]Interview[/] {EVIL}done")
    out = buffer.getvalue()
    assert "\x1b[1m" in out  # rich's styling is still there …
    assert "pwned" not in out and "\x1b[2J" not in out and "\x9b" not in out and "\u202e" not in out  # … not theirs


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("salvage.pipeline", logging.INFO, __file__, 1, message, args, None)


def test_log_lines_cannot_be_forged_by_event_text() -> None:
    title = "Interview\n2026-11-24 10:30:00 ERROR salvage.pipeline: demo: needs `salvage auth`\r\x1b[1A\x1b[2K"
    line = TextFormatter("%(levelname)s %(name)s: %(message)s").format(_record("created draft for %s", title))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.startswith("INFO salvage.pipeline: created draft for Interview\\n2026-11-24")
    data = JsonFormatter().format(_record("created draft for %s", title + "\u202e\x9b"))
    assert "\n" not in data and "\u202e" not in data and "\x9b" not in data
    assert json.loads(data)["message"] == "created draft for " + title + "\u202e\x9b"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from([*DANGEROUS, "\n", "\x85", "\u2028", "\x00", "[", "]", "a", "é", ";", "0"]),
               max_size=40))
def test_generated_text_never_keeps_a_terminal_control(text: str) -> None:
    assert _clean(strip_invisible(text, keep_newlines=True))
    assert "\n" not in strip_invisible(text) and "\x85" not in strip_invisible(text)
    escaped = escape_invisible(text)
    assert _clean(escaped) and "\n" not in escaped and "\x85" not in escaped and "\u2028" not in escaped
