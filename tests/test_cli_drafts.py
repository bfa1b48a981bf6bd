"""Drafts readable where you are: `salvage drafts`, `salvage drafts show ID`, and .eml files `cat` can read."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.cli.commands import DEMO_NOW
from providers.base import Address, DraftMessage
from providers.folder import FolderDrafts
from providers.mime import MAX_LINE, parse_message, plain_body


@pytest.fixture
def demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out)]) == 0
    return out, capsys.readouterr().out


def test_demo_ends_by_pointing_at_the_drafts_commands(demo: tuple[Path, str]) -> None:
    out, printed = demo
    tail = printed[printed.index("Next"):]
    assert "salvage drafts -c" in tail and re.search(r"salvage drafts show [0-9a-f]{8} -c", tail)
    assert "salvage init" in tail
    assert (out / "config.yaml").is_file()


def test_drafts_lists_every_live_draft_with_its_interview_and_place(
    demo: tuple[Path, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = demo
    files = sorted((out / "drafts").glob("*.eml"))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["drafts", "-c", str(out / "config.yaml")]) == 0
    listed = capsys.readouterr().out
    assert f"Drafts folder: {out / 'drafts'}" in listed
    for path in files:
        assert f"in {path.name}" in listed
    assert "missed_interview → priya.shah@hooli.example  (untouched)" in listed
    assert "for 'Phone screen - Hooli'" in listed
    assert main(["drafts", "-c", str(out / "config.yaml"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(files) == 6
    assert {r["fate"] for r in rows} == {"untouched"}
    assert {r["interview"] for r in rows} >= {"Phone screen - Hooli", "Onsite interview - Stark Industries"}
    monkeypatch.setenv("COLUMNS", "140")
    assert main(["drafts", "-c", str(out / "config.yaml")]) == 0
    assert "┃ id" in capsys.readouterr().out


def test_drafts_show_prints_the_decoded_draft(demo: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = demo
    assert main(["drafts", "-c", str(out / "config.yaml"), "--format", "json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["kind"] == "missed_interview")
    assert main(["drafts", "show", row["id"], "-c", str(out / "config.yaml")]) == 0
    shown = capsys.readouterr().out
    assert "To: Priya Shah <priya.shah@hooli.example>" in shown
    assert "Subject: Apologies — our phone screen this morning" in shown
    assert "10:30–11:00 GMT" in shown and "=E2=80=93" not in shown
    assert "still free" not in shown and "another time" in shown  # 09:30–10:00, drafted at 10:30
    # --config after the sub-command works too; an unknown id is a user error
    assert main(["drafts", "-c", str(out / "config.yaml"), "show", "ffffffff"]) == 2


def test_demo_eml_files_are_readable_with_cat_and_dated_by_now(demo: tuple[Path, str]) -> None:
    out, _ = demo
    for path in (out / "drafts").glob("*.eml"):
        raw = path.read_bytes()
        assert b"Content-Transfer-Encoding: 8bit" in raw
        assert "–".encode() in raw and b"=E2=80=93" not in raw
        assert all(len(line) <= MAX_LINE for line in raw.split(b"\r\n"))
        message = parse_message(raw)
        assert message["Date"].datetime == datetime.fromisoformat(DEMO_NOW)
        assert path.name.startswith("20261124-103000-")


def test_an_overlong_line_falls_back_to_quoted_printable_and_fates_still_work(tmp_path: Path) -> None:
    clock = lambda: datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc)  # noqa: E731
    box = FolderDrafts(tmp_path, now=clock)
    me, them = Address("me@example.com", "Me"), Address("them@example.com", "Them")
    long = DraftMessage(key="k1", sender=me, to=(them,), subject="s", text="x" * 2000 + "\n")
    short = DraftMessage(key="k2", sender=me, to=(them,), subject="s", text="Thursday 11:00–12:00\n")
    ref_long, ref_short = box.create(long), box.create(short)
    raw_long = (tmp_path / ref_long.id).read_bytes()
    assert b"quoted-printable" in raw_long and all(len(x) <= MAX_LINE for x in raw_long.split(b"\r\n"))
    assert plain_body(parse_message(raw_long)).rstrip("\n") == "x" * 2000
    assert box.fate(ref_short).value == "untouched" and box.fate(ref_long).value == "untouched"
    path = tmp_path / ref_short.id
    path.write_bytes(path.read_bytes().replace("11:00–12:00".encode(), "11:30–12:00".encode()))
    assert box.fate(ref_short).value == "edited"
