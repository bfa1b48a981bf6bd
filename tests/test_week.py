"""`salvage week`: the picture's content, golden output at two widths, a real terminal, and the files.

The golden files are the demo's week as it should look; regenerate them after a deliberate change with
``SALVAGE_REGOLD=1 pytest tests/test_week.py`` and read the diff before committing it.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW, open_engine
from daemon.cli.common import parse_now
from daemon.cli.week import build_week, draw
from daemon.config import load_config

GOLDEN = Path(__file__).parent / "data" / "week"
TITLE = "The next 7 days for Alex Morgan (Europe/London), from Tue 24 Nov 10:30"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's own config, after `salvage demo` (its state holds the sample calendar)."""
    out = tmp_path_factory.mktemp("week") / "demo"
    assert main(["demo", "--output", str(out)]) == 0
    return out / "config.yaml"


def picture(config_path: Path, width: int) -> str:
    config = load_config(config_path)
    now = parse_now(DEMO_NOW)
    with open_engine(config) as engine:
        evaluation = engine.evaluate(now)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, highlight=False)
    draw(build_week(evaluation, config, now, days=7, width=width), config, console, TITLE)
    return buffer.getvalue()


def golden(width: int, text: str) -> str:
    path = GOLDEN / f"demo_{width}.txt"
    if os.environ.get("SALVAGE_REGOLD"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", [80, 160])
def test_golden_picture(demo: Path, width: int) -> None:
    text = picture(demo, width)
    assert text == golden(width, text)
    assert max(len(line) for line in text.splitlines()) <= width


def test_the_picture_marks_what_matters(demo: Path) -> None:
    config = load_config(demo)
    now = parse_now(DEMO_NOW)
    with open_engine(config) as engine:
        evaluation = engine.evaluate(now)
    week = build_week(evaluation, config, now, days=7, width=80)
    assert [d.day.isoformat() for d in week.days][0] == "2026-11-24" and len(week.days) == 7
    # waking hours 07–22, widened to 03:00 by the interview set up in Los Angeles
    assert (week.first_hour, week.last_hour) == (3, 23)
    tue, wed, thu, fri, sat, sun, mon = week.days
    assert "now" in tue.cells and [s.event.title for s in tue.slots] == ["Phone screen - Hooli"]
    # Acme overlaps the dentist: its own cells and clash cells; Globex lies inside Initech: only its letter
    acme = next(s for s in wed.slots if "Acme" in s.event.title)
    assert acme.letter in wed.cells and "clash" in wed.cells
    globex = next(s for s in thu.slots if "Globex" in s.event.title)
    assert thu.cells.count(globex.letter) == 1 and globex.letter in thu.clashing
    assert not sun.slots and set(sun.cells) == {"off"}  # a weekend day without events
    assert set(mon.cells) == {"busy"} and mon.all_day == ["Out of office - family visit"]
    assert "work" in wed.cells and "work" not in sat.cells


def tmux_screen(command: list[str], width: int, done: str, cwd: Path) -> str:
    """Run ``command`` in a detached tmux session of ``width`` columns and return its screen text."""
    socket = f"salvage-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX", "NO_COLOR")}
    shell = " ".join(command) + "; sleep 60"
    base = ["tmux", "-L", socket, "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-x", str(width), "-y", "60", "-c", str(cwd), shell],
                   check=True, env=env, timeout=30)
    try:
        deadline = time.monotonic() + 60
        while True:
            screen = subprocess.run([*base, "capture-pane", "-p"], capture_output=True, text=True, check=True,
                                    timeout=30).stdout
            if done in screen or time.monotonic() > deadline:
                return screen
            time.sleep(0.2)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux): "
                    "the real-terminal check of `salvage week` needs it")
@pytest.mark.parametrize("width", [80, 160])
def test_week_in_a_real_terminal(demo: Path, width: int) -> None:
    command = [sys.executable, "-m", "daemon.cli", "week", "--no-poll", "-c", str(demo), "--now", DEMO_NOW]
    screen = tmux_screen(command, width, "all day: Out of office", demo.parent)
    lines = [line.rstrip() for line in screen.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    expected = [line.rstrip() for line in golden(width, picture(demo, width)).splitlines()]
    assert lines == expected


def test_svg_and_html_write_the_same_picture(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svg, html = tmp_path / "week.svg", tmp_path / "week.html"
    assert main(["week", "--no-poll", "-c", str(demo), "--now", DEMO_NOW, "--format", "svg", "-o", str(svg)]) == 0
    assert main(["week", "--no-poll", "-c", str(demo), "--now", DEMO_NOW, "--format", "html", "-o", str(html),
                 "--width", "100"]) == 0
    assert f"Wrote {svg}" in capsys.readouterr().out
    text = svg.read_text()
    assert text.startswith("<svg") and "Phone" in text and "Hooli" in text
    page = html.read_text()
    assert "<html" in page.lower() and "Out of office - family visit" in page
    assert main(["week", "-c", str(demo), "--days", "0"]) == 2
