"""Help everywhere: every command and option explains itself; commands are grouped; completion works."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daemon.cli import main
from daemon.cli.main import GROUPS, build_parser

ROOT = Path(__file__).resolve().parents[1]


def walk(parser: argparse.ArgumentParser, path: str = "salvage"):
    """Every (command path, parser) pair, the top level included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")


def test_every_command_and_option_has_a_one_line_help() -> None:
    missing = []
    for path, parser in walk(build_parser()):
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.help or "\n" in action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_help_groups_commands_by_what_a_person_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    positions = [text.index(f"{title}:\n") for title, _ in GROUPS if f"{title}:\n" in text]
    assert len(positions) >= 5 and positions == sorted(positions)
    assert text.index("Set up:") < text.index("\n  auth ") < text.index("Watch:") < text.index("\n  check ")
    assert text.index("Act:") < text.index("\n  missed ") < text.index("Look back:") < text.index("\n  report ")
    # every command the parser knows is listed once, with its help
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        assert f"\n  {name} " in text, name


def test_check_help_explains_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = capsys.readouterr().out
    assert "--format" in text and "json for scripts" in text


def test_config_example_is_the_shipped_annotated_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "example"]) == 0
    text = capsys.readouterr().out
    assert text == (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    assert "# Who you are." in text and yaml.safe_load(text)["user"]["timezone"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    assert "salvage" in capsys.readouterr().out


def test_completion_answers_the_shell(tmp_path: Path) -> None:
    """The argcomplete protocol, as the bash script drives it: commands, then options."""
    answers = tmp_path / "answers"

    def complete(line: str) -> list[str]:
        env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "_ARGCOMPLETE_STDOUT_FILENAME": str(answers), "_ARGCOMPLETE_IFS": "\n"}
        subprocess.run([sys.executable, "-m", "daemon.cli"], env=env, check=True, timeout=30)
        return [w.strip() for w in answers.read_text().split("\n") if w.strip()]

    assert "check" in complete("salvage ch")
    assert "--format" in complete("salvage check --fo")
