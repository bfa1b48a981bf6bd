"""Output that fits the terminal: a table when wide, a list when narrow; kinds never cut; colour only on a TTY."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW

SAMPLE = resources.files("daemon.sample")
KINDS = ("missed", "double_booked", "no_join_info", "interview_clash", "odd_hour", "out_of_office")
PLANNED = ("missed_interview", "reschedule_request", "ask_join_info")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7]|38;5;\d+)[;m]")


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    shutil.copy(str(SAMPLE / "demo.ics"), tmp_path / "demo.ics")
    (tmp_path / "config.yaml").write_text((SAMPLE / "demo.yaml").read_text() + "state:\n  path: state.sqlite3\n")
    return tmp_path / "config.yaml"


def check(config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["check", "--config", str(config), "--now", DEMO_NOW]) == 1
    return capsys.readouterr().out


def test_narrow_terminal_gets_a_list_that_fits_and_cuts_nothing(
    demo_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = check(demo_config, capsys, monkeypatch, 80)
    assert max(len(line) for line in whole.splitlines()) <= 80 and "…" not in whole  # the cases table too
    out = whole.split("Open cases")[0]
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "┃" not in out and "…" not in out
    for kind in KINDS:
        assert f"risk: {kind} (" in out, kind
    for kind in PLANNED:
        assert f"draft: {kind}\n" in out, kind
    assert "missed: missed" not in out and "(critical): missed:" not in out
    assert not any(line.endswith(" ") for line in lines)
    assert len(lines) < 60  # was ~130 for the same 8 interviews


def test_wide_terminal_gets_a_table_with_whole_kinds(
    demo_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for columns in (100, 160):
        out = check(demo_config, capsys, monkeypatch, columns)
        assert "┃ id" in out and "…" not in out
        assert max(len(line) for line in out.splitlines()) <= columns
        for kind in (*KINDS, *PLANNED):
            assert re.search(rf"│ {kind}\b", out) or f" {kind} (" in out, (columns, kind)


def test_no_colour_into_a_pipe(demo_config: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert not ANSI.search(check(demo_config, capsys, monkeypatch, 120))


def test_colour_on_a_terminal_but_never_with_no_color(
    demo_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")  # what rich sees when stdout is a terminal
    monkeypatch.setenv("TERM", "xterm-256color")
    assert COLOUR.search(check(demo_config, capsys, monkeypatch, 120))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not COLOUR.search(check(demo_config, capsys, monkeypatch, 120))


def test_prose_wraps_at_words_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.cli.output import consoles

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "40")
    out, _ = consoles()
    with out.capture() as captured:
        out.print("Drafts written (review them in a mail client; Salvage never sends)")
    lines = captured.get().splitlines()
    words = set("Drafts written (review them in a mail client; Salvage never sends)".split())
    assert len(lines) > 1 and all(w in words for line in lines for w in ANSI.sub("", line).split())
