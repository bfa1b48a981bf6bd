"""One rule for which copy of an occurrence counts, used by the core and the engine alike."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from core_helpers import at, interview, make_config, meeting

from daemon.core.classify import classify_all
from daemon.core.copies import pick_copies
from daemon.core.detect import detect
from daemon.core.plan import PlanContext, plan

LONDON = ZoneInfo("Europe/London")


def copies():  # type: ignore[no-untyped-def]
    """The same invitation on three calendars: one a minute later (a stale copy), two identical."""
    base = interview(at("2026-12-02 14:00"), ical_uid="iv1@acme.example")
    work = replace(base, account="work", source_id="work/iv1")
    home = replace(base, account="home", source_id="home/iv1")
    late = replace(base, account="alpha", source_id="alpha/iv1", start=base.start + timedelta(minutes=1),
                   end=base.end + timedelta(minutes=1))
    return work, home, late


def test_the_earliest_copy_then_the_account_name_counts_whatever_the_order() -> None:
    work, home, late = copies()
    assert work.occurrence_key == home.occurrence_key == late.occurrence_key
    for order in itertools.permutations((work, home, late)):
        assert pick_copies(order, LONDON) == {work.occurrence_key: home}


def test_classifier_detector_and_planner_agree_on_the_copy() -> None:
    config = make_config()
    work, home, late = copies()
    now = at("2026-11-24 09:00")
    clash = meeting(at("2026-12-02 13:30"), minutes=90, account="work", source_id="work/m1")
    events = [late, work, home, clash]
    labels = classify_all(events, config)
    risks = detect(events, labels, config, now)
    actions = plan(events, labels, risks, config, now, PlanContext())
    chosen = pick_copies(events, config.user.zone)[work.occurrence_key]
    assert chosen is home
    assert any(r.occurrence_key == work.occurrence_key for r in risks)  # the clash was seen
    assert {a.account for a in actions if a.occurrence_key == work.occurrence_key} == {"home"}
