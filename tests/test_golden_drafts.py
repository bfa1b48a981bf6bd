"""Golden files: one rendered draft per kind and reason (and language), reviewed by a person in the diff.

Regenerate after a deliberate wording change with
    SALVAGE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden_drafts.py
and read the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from drafts_scenarios import render

from daemon.config import REASONS, TIME_ZONE_REASON
from daemon.core.model import ActionKind, Mode

GOLDEN = Path(__file__).parent / "golden"
LANGUAGES = ("en", "de")
# Each reason is shown in a different way of holding the interview, so the golden set covers them all.
MODE_OF = {reason: (Mode.VIDEO, Mode.PHONE, Mode.ONSITE)[i % 3] for i, reason in enumerate((*REASONS, TIME_ZONE_REASON))}
CASES = [(lang, kind, reason) for lang in LANGUAGES for kind in ActionKind
         for reason in ((*REASONS, TIME_ZONE_REASON) if kind is ActionKind.RESCHEDULE else REASONS)]


def rendered(language: str, kind: ActionKind, reason: str) -> str:
    draft = render(kind, MODE_OF[reason], reason, language=language)
    return f"To: {', '.join(a.email for a in draft.to)}\nSubject: {draft.subject}\n\n{draft.text}"


@pytest.mark.parametrize(("language", "kind", "reason"), CASES)
def test_golden(language: str, kind: ActionKind, reason: str) -> None:
    path = GOLDEN / language / f"{kind.value}.{reason}.txt"
    text = rendered(language, kind, reason)
    if os.environ.get("SALVAGE_REGENERATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: regenerate with SALVAGE_REGENERATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path} differs: review, then regenerate"


def test_no_stale_golden_files() -> None:
    wanted = {GOLDEN / lang / f"{kind.value}.{reason}.txt" for lang, kind, reason in CASES}
    assert set(GOLDEN.glob("*/*.txt")) <= wanted
