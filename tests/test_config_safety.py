"""Config files and arguments that once crashed, hung or were silently misread: exit 2 and a plain message
(issue 8, item 9)."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import configfile
from daemon.cli import main
from daemon.cli.commands import DEMO_NOW
from daemon.config import ConfigError, parse_config

SAMPLE = resources.files("daemon.sample")
BASE = (SAMPLE / "demo.yaml").read_text()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(str(SAMPLE / "demo.ics"), tmp_path / "demo.ics")
    return tmp_path


def _write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    (folder / name).write_text(text)
    return folder / name


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    return code, captured.err + captured.out


BOMB = "user:\n  name: A\n  email: a@b.example\n  timezone: UTC\n  aliases: &l0 [a, a, a, a, a, a, a, a, a, a]\n" + "".join(
    f"x{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))

CASES = {
    "unquoted 9:00 (read as 540)": (BASE.replace('start: "09:00"', "start: 9:00"), 'write times as quoted "HH:MM"'),
    "unquoted 18:00 (read as 1080)": (BASE.replace('end: "17:30"', "end: 18:00"), 'write times as quoted "HH:MM"'),
    "a time with an offset": (BASE.replace('start: "09:00"', 'start: "09:00+02:00"'), 'write times as quoted "HH:MM"'),
    "a number for a time": (BASE.replace('start: "09:00"', "start: 32400"), 'write times as quoted "HH:MM"'),
    ".nan": (BASE + "classification:\n  threshold: .nan\n", "write a finite number"),
    "-.inf": (BASE + "classification:\n  threshold: -.inf\n", "write a finite number"),
    '"nan" as text': (BASE + "classification:\n  threshold: 'nan'\n", "finite number"),
    "an alias bomb": (BASE.replace("user:\n", "ignored:\n", 1) + BOMB.replace("x", "y"), "YAML aliases expanded"),
    "a recursive alias": (BASE + "x: &a [*a]\n", "refers to itself"),
    "deep nesting": (BASE + "x: " + "[" * 1500 + "]" * 1500 + "\n", "nested too deeply"),
    "a missing calendar type": (BASE.replace("      type: ics\n", ""),
                                "'type' is missing: say which kind of calendar this is,"),
    "a state.path that is a folder": (BASE + "state:\n  path: .\n", "state.path"),
    "a state.path inside a file": (BASE + "state:\n  path: demo.ics/state.sqlite3\n", "state.path"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["validate", "check"])
def test_bad_config_is_exit_2_with_the_fix(folder: Path, case: str, command: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = CASES[case]
    config = _write(folder, text if "state:" in text else text + "state:\n  path: s.sqlite3\n")
    args = (["config", "validate", "--config", str(config)] if command == "validate"
            else ["check", "--config", str(config), "--now", DEMO_NOW])
    code, output = _run(args, capsys)
    assert code == 2 and expected in " ".join(output.split()), output


def test_non_regular_and_huge_config_files_are_refused_not_read(folder: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would block for ever
    big = _write(folder, BASE + "# " + "x" * (2 * 1024 * 1024) + "\n", "big.yaml")
    for path, expected in ((fifo, "is a FIFO"), (Path("/dev/zero"), "is a device"), (big, "larger than"),
                           (folder, "is a directory")):
        code, output = _run(["config", "validate", "--config", str(path)], capsys)
        assert code == 2 and expected in output, output


@pytest.mark.parametrize("now", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+05:00", "1900-01-01T00:00Z"])
def test_now_out_of_range_is_exit_2(folder: Path, now: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(folder, BASE + "state:\n  path: s.sqlite3\n")
    code, output = _run(["check", "--config", str(config), "--now", now], capsys)
    assert code == 2 and "out of range" in output


def test_quoted_single_digit_hours_are_fine() -> None:
    config = parse_config(BASE.replace('start: "09:00"', 'start: "9:00"'))
    assert config.working_hours.start.hour == 9 and config.working_hours.start.tzinfo is None


SCALARS = st.one_of(
    st.from_regex(r"-?[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?", fullmatch=True),
    st.sampled_from([".nan", ".NaN", ".inf", "-.Inf", "+.inf", "1e400", "0x10", "0o7", "1_000", "~", "null", "yes",
                     "2026-11-24", "2026-11-24 09:00:00", "09:00:00Z", "'09:00'", '"25:00"', "[]", "{}", "&a 1", "!!str"]),
    st.text(alphabet="0123456789:.-+eE_ ", max_size=8),
)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(start=SCALARS, threshold=SCALARS)
def test_generated_scalars_are_read_or_refused_never_crash(start: str, threshold: str) -> None:
    text = BASE.replace('start: "09:00"', f"start: {start}") + f"classification:\n  threshold: {threshold}\n"
    try:
        config = parse_config(text)
    except ConfigError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)
        return
    start_time = config.working_hours.start
    assert start_time.tzinfo is None and config.classification.threshold == config.classification.threshold
    assert abs(config.classification.threshold) != float("inf")


# ---- the libyaml loader reads what the pure-Python one read, and refuses with the same words (issue 14) --

REFUSED = [
    "user:\n  name: [unclosed\n", "a: b: c\n", "a:\n  - x\n  y: 2\n", "a: 'unterminated\nb: 2\n", "a: *nope\n",
    "a: 1\n---\nb: 2\n", "a:\n\tb: 1\n", "a: {b: 1\nc: 2\n", "- a\nb: 1\n", "key: [1, 2]]\n", "a: @x\n",
    "x:\n  y: 1\n   z: 2\n", "a: |\n  x\n y\n", "a: \x07\n", "a: !!python/object:os.system x\n",
    "a: &x 1\nb: &x 2\n", "x: " + "[" * 60 + "]" * 60 + "\n", "ok: 1\nx:\n" + "".join(f"{' ' * i} - \n" for i in range(60)),
]


def _outcome(text: str) -> object:
    try:
        return ("data", configfile.load_yaml(text, "c.yaml"))
    except configfile.ConfigFileError as exc:
        return ("refused", exc.problems)


@pytest.fixture
def python_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a PyYAML built without libyaml."""
    monkeypatch.setattr(configfile, "_LOADERS", (configfile._PythonLoader,))


def test_the_c_loader_is_used_when_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__ and configfile._LOADERS[0] is not configfile._PythonLoader


@pytest.mark.parametrize("text", [BASE, (Path(__file__).parents[1] / "config.example.yaml").read_text(),
                                  BASE + "x: &a {k: [1, 2.5, '3', \"x\", null, true, 2026-11-24]}\ny: *a\n"],
                         ids=["demo", "example", "aliases"])
def test_the_c_loader_gives_the_same_data(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(text)
    monkeypatch.setattr(configfile, "_LOADERS", (configfile._PythonLoader,))
    assert fast[0] == "data" and fast == _outcome(text) and fast[1] == yaml.safe_load(text)


@pytest.mark.parametrize("text", REFUSED + [c[0] for c in CASES.values()])
def test_refused_yaml_reads_the_same_with_either_loader(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(text)
    monkeypatch.setattr(configfile, "_LOADERS", (configfile._PythonLoader,))
    assert fast == _outcome(text)


@pytest.mark.parametrize("case", [c for c in CASES if "state.path" not in c and "type" not in c])
def test_every_guard_holds_without_libyaml(case: str, python_only: None) -> None:
    text, expected = CASES[case]
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert expected in " ".join(" ".join(info.value.problems).split())


def test_lines_in_yaml_errors() -> None:
    problems = {text: _outcome(text)[1] for text in REFUSED[:3]}
    assert problems == {
        "user:\n  name: [unclosed\n": ["c.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>'"],
        "a: b: c\n": ["c.yaml:1: not valid YAML: mapping values are not allowed here"],
        "a:\n  - x\n  y: 2\n": ["c.yaml:3: not valid YAML: expected <block end>, but found '?'"],
    }
    assert _outcome("ok: 1\nx: " + "[" * 60 + "]" * 60 + "\n") == (
        "refused", ["c.yaml:2: the YAML is nested too deeply for a config file"])


@pytest.mark.parametrize("value", ["!!int x", "!!float x", "!!timestamp x", "!!bool x", "!!binary x"])
def test_a_value_its_tag_cannot_read_is_refused_with_its_line(value: str) -> None:
    kind, problems = _outcome(f"a: 1\nb: {value}\n")
    assert kind == "refused" and len(problems) == 1 and problems[0].startswith("c.yaml:2: not valid YAML:"), problems


def test_a_megabyte_of_brackets_is_refused_not_a_crash() -> None:
    assert _outcome("x: " + "[" * (1024 * 1024 - 10)) == (
        "refused", ["c.yaml:1: the YAML is nested too deeply for a config file"])
