"""The table of real-style titles (tests/data/classify_titles.json) as events, for the test and the benchmark."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.core.classify import classify_all
from daemon.core.model import Event, Response, person

TABLE = Path(__file__).parent / "data" / "classify_titles.json"
USER = "alex.morgan@northwind.example"
COLLEAGUE = "pat.lee@northwind.example"
OUTSIDER = "recruiter@globex.example"
START = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def load_rows() -> list[dict[str, Any]]:
    """Every row of the table."""
    rows: list[dict[str, Any]] = json.loads(TABLE.read_text(encoding="utf-8"))["rows"]
    return rows


def table_config() -> Config:
    """The user the table is written for: Alex at Northwind, in London."""
    return Config.model_validate({"user": {"name": "Alex Morgan", "email": USER, "timezone": "Europe/London"}})


def row_event(row: dict[str, Any], index: int) -> Event:
    """The calendar entry a row describes, as it would arrive in the user's calendar."""
    org_email = {"self": USER, "colleague": COLLEAGUE}.get(row.get("org", ""), row.get("org") or OUTSIDER)
    me = person(USER, "Alex Morgan", Response.ACCEPTED, is_self=True)
    own = org_email == USER
    organizer = person(org_email, "", Response.ORGANIZER if own else Response.ACCEPTED, is_self=own)
    attendees = (organizer,) if own else (organizer, me)
    start = START + timedelta(days=index)
    return Event(
        account="table",
        source_id=f"row-{index}",
        title=row["t"],
        start=start,
        end=start + timedelta(minutes=45),
        description=row.get("desc", ""),
        location=row.get("loc", ""),
        organizer=organizer,
        attendees=attendees,
        self_response=Response.ORGANIZER if own else Response.ACCEPTED,
        join_urls=("https://zoom.us/j/81234567890",) if row.get("link") else (),
        ical_uid=f"row-{index}@table.example",
    )


@dataclass(frozen=True)
class Outcome:
    """One row's expected and actual verdict."""

    row: dict[str, Any]
    expected: bool
    actual: bool
    score: float
    reasons: tuple[str, ...]

    @property
    def right(self) -> bool:
        return self.expected == self.actual


def outcomes(config: Config | None = None) -> list[Outcome]:
    """Classify every row."""
    config = config or table_config()
    rows = load_rows()
    events = [row_event(row, i) for i, row in enumerate(rows)]
    found = classify_all(events, config)
    out = []
    for row, event in zip(rows, events, strict=True):
        c = found[event.occurrence_key]
        out.append(Outcome(row, bool(row["y"]), c.is_interview, c.score, c.reasons))
    return out


def precision_recall(results: list[Outcome]) -> tuple[float, float, int, int, int, int]:
    """Precision, recall, and the true/false positive/negative counts."""
    tp = sum(r.expected and r.actual for r in results)
    fp = sum(not r.expected and r.actual for r in results)
    fn = sum(r.expected and not r.actual for r in results)
    tn = sum(not r.expected and not r.actual for r in results)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp, fp, fn, tn
