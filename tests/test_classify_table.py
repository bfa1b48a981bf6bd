"""Classification against a table of real-style titles (tests/data/classify_titles.json).

Every row must come out as the table says, except the rows marked ``known`` (the classifier's honest
misses, which benchmarks/bench_classify.py counts in its precision and recall): those must still be
wrong, so a rule that fixes one has to update the table.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from classify_table import USER, load_rows, outcomes, precision_recall, table_config

from daemon.core.classify import classify
from daemon.core.model import Event, Response, person

ROWS = load_rows()
RESULTS = outcomes()


def test_the_table_is_large_and_mixed() -> None:
    assert len(ROWS) >= 100
    assert sum(r["y"] for r in ROWS) >= 50 and sum(not r["y"] for r in ROWS) >= 40
    assert len({r["t"] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[r["t"][:50] for r in ROWS])
def test_each_title(index: int) -> None:
    result = RESULTS[index]
    known = result.row.get("known")
    if known:
        assert not result.right, f"{result.row['t']!r} is now right: drop its 'known' mark"
        assert known == ("fn" if result.expected else "fp")
    else:
        assert result.right, (result.row["t"], result.score, result.reasons)


def test_precision_and_recall_floor() -> None:
    precision, recall, *_ = precision_recall(RESULTS)
    assert precision >= 0.95 and recall >= 0.9


def test_the_user_as_interviewer_gets_no_draft() -> None:
    colleague = person("pat.lee@northwind.example", "Pat Lee", Response.ACCEPTED)
    me = person(USER, "Alex Morgan", Response.ACCEPTED, is_self=True)
    start = datetime(2026, 11, 24, 15, tzinfo=timezone.utc)
    panel = Event(
        account="work", source_id="panel", title="Interview panel: Senior Engineer candidate - Alex Kim",
        start=start, end=start.replace(hour=16), organizer=colleague, attendees=(colleague, me),
        description="Please submit your scorecard in Greenhouse: https://app.greenhouse.io/scorecards/77123",
        join_urls=("https://meet.google.com/abc-defg-hij",),
    )
    c = classify(panel, table_config())
    assert not c.is_interview
    assert any(r.startswith('you are the interviewer: it mentions "scorecard"') for r in c.reasons)
    # The same title without the scorecard is still caught: a candidate's interview set up by a colleague.
    bare = classify(Event(**{**_fields(panel), "description": "", "source_id": "bare"}), table_config())
    assert not bare.is_interview and any("organised from your own side" in r for r in bare.reasons)


def test_own_negative_keywords_count_in_the_description() -> None:
    config = table_config().model_copy(deep=True)
    config.classification.negative_keywords.append("internal hiring loop")
    start = datetime(2026, 11, 24, 15, tzinfo=timezone.utc)
    event = Event(account="w", source_id="x", title="Technical interview", start=start, end=start,
                  organizer=person("r@globex.example"), description="Part of the internal hiring loop.")
    c = classify(event, config)
    assert not c.is_interview and any('description mentions "internal hiring loop"' in r for r in c.reasons)


def _fields(event: Event) -> dict[str, object]:
    return {name: getattr(event, name) for name in Event.__slots__}  # type: ignore[attr-defined]
