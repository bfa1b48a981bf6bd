"""`salvage report`: past misses and clashes, their root causes, and what to change next time.

The seeds' last step is "learn from the experience": this turns the risk history in the state store
into a short list of what went wrong and one prevention tip per cause.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from daemon.cli.cases import call_first, case_json
from daemon.cli.common import config_from, dump_json, open_state, parse_now
from daemon.core.model import RiskCause, RiskKind
from daemon.engine.state import DraftRecord, RiskRecord

# Risk kinds worth a retrospective (a tight buffer alone is not an incident).
INCIDENT_KINDS = ("missed", "interview_clash", "double_booked", "out_of_office", "odd_hour", "travel", "no_join_info",
                  "time_mismatch")

CAUSE_LABELS = {
    RiskCause.TIMEZONE: "timezone mix-up",
    RiskCause.DOUBLE_BOOKING: "double booking",
    RiskCause.INTERVIEW_CLASH: "two interviews at once",
    RiskCause.OUT_OF_OFFICE: "scheduled while away",
    RiskCause.TRAVEL: "not enough travel time",
    RiskCause.BUFFER: "no gap between meetings",
    RiskCause.NO_JOIN_INFO: "no link or address",
    RiskCause.NO_REMINDER: "no reminder / forgot",
    RiskCause.USER_DECLARED: "no reminder / forgot",
}

TIPS = {
    RiskCause.TIMEZONE: "When an invitation comes from another region, confirm the time in both zones before "
    "accepting; Salvage flags interviews outside your waking hours.",
    RiskCause.DOUBLE_BOOKING: "Decline or move the other commitment as soon as an interview is booked, and keep "
    "every calendar you use connected so clashes show up early.",
    RiskCause.INTERVIEW_CLASH: "Offer interview slots from one calendar only, and block them the moment a recruiter "
    "confirms, so two companies cannot book the same time.",
    RiskCause.OUT_OF_OFFICE: "Add time off to your calendar before offering availability, and mention it to "
    "recruiters when you share slots.",
    RiskCause.TRAVEL: "Leave travel time around in-person interviews; put the address in the event so the gap "
    "can be checked.",
    RiskCause.BUFFER: "Keep 15 minutes free before each interview to settle in and test your setup.",
    RiskCause.NO_JOIN_INFO: "Ask for the video link, dial-in or address when you accept the invitation.",
    RiskCause.NO_REMINDER: "Set two reminders on every interview: the day before and an hour before.",
}


@dataclass(frozen=True)
class Incident:
    occurrence_key: str
    title: str
    start: datetime | None
    kinds: tuple[str, ...]
    cause: RiskCause
    evidence: tuple[str, ...]
    drafts: tuple[str, ...]

    @property
    def missed(self) -> bool:
        return "missed" in self.kinds


def root_cause(records: list[RiskRecord]) -> RiskCause:
    """The most telling cause among an interview's risks (a miss explained by its clash etc.)."""
    causes = {_cause(r) for r in records}
    for cause in (RiskCause.TIMEZONE, RiskCause.INTERVIEW_CLASH, RiskCause.DOUBLE_BOOKING, RiskCause.OUT_OF_OFFICE,
                  RiskCause.TRAVEL, RiskCause.NO_JOIN_INFO):
        if cause in causes:
            return cause
    kinds = {r.kind for r in records}
    if RiskKind.DOUBLE_BOOKED in kinds:
        return RiskCause.DOUBLE_BOOKING
    if RiskKind.INTERVIEW_CLASH in kinds:
        return RiskCause.INTERVIEW_CLASH
    if RiskKind.ODD_HOUR in kinds:
        return RiskCause.TIMEZONE
    if RiskKind.MISSED in kinds:
        return RiskCause.NO_REMINDER
    return next(iter(sorted(c for c in causes if c is not RiskCause.NONE)), RiskCause.NO_REMINDER)


def _cause(record: RiskRecord) -> RiskCause:
    """A stored risk's cause (a risk recorded before causes were kept: the cause its kind implies)."""
    for value in (record.cause, record.kind):
        try:
            return RiskCause(value)
        except ValueError:
            continue
    return RiskCause.NONE


def incidents(history: list[RiskRecord], drafts: list[DraftRecord], now: datetime) -> list[Incident]:
    """Past interviews that had an incident-worthy risk, oldest first."""
    grouped: dict[str, list[RiskRecord]] = defaultdict(list)
    for record in history:
        if record.kind in INCIDENT_KINDS:
            grouped[record.occurrence_key].append(record)
    by_event: dict[str, list[DraftRecord]] = defaultdict(list)
    for d in drafts:
        by_event[d.occurrence_key].append(d)
    out = []
    for key, records in grouped.items():
        start = records[0].event_start
        if start is not None and start > now:
            continue
        out.append(
            Incident(
                occurrence_key=key,
                title=records[0].title,
                start=start,
                kinds=tuple(sorted({r.kind for r in records})),
                cause=root_cause(records),
                evidence=tuple(r.evidence for r in records),
                drafts=tuple(f"{d.kind.value} ({d.state.value})" for d in by_event.get(key, [])),
            )
        )
    out.sort(key=lambda i: (i.start or now, i.occurrence_key))
    return out


def report_command(args: argparse.Namespace, out: Console) -> int:
    config = config_from(args)
    now = parse_now(args.now)
    with open_state(config) as store:
        found = incidents(store.risk_history(), store.drafts(), now)
        calls = [c for c in store.cases(open_only=True) if call_first(c)]
    causes = Counter(i.cause for i in found)
    if args.format == "json":
        dump_json(
            {
                "now": now.isoformat(),
                "incidents": [
                    {
                        "key": i.occurrence_key,
                        "title": i.title,
                        "start": i.start.isoformat() if i.start else None,
                        "missed": i.missed,
                        "risks": list(i.kinds),
                        "cause": i.cause,
                        "evidence": list(i.evidence),
                        "drafts": list(i.drafts),
                        "tip": TIPS.get(i.cause, TIPS[RiskCause.NO_REMINDER]),
                    }
                    for i in found
                ],
                "causes": dict(causes),
                "call_first": [case_json(c, config.user.zone) for c in calls],
            }
        )
        return 0
    for case in calls:  # the seeds' first step, before any lesson
        out.print(f"[bold red]Missed: {escape(case.event.title)} — {escape(str(call_first(case)))}[/], "
                  "then send the apology waiting in your Drafts.")
    if not found:
        out.print("No past misses or clashes recorded. Nothing to learn yet — good.")
        return 0
    tz = config.user.zone
    table = Table(title="Past misses and clashes", show_lines=True, title_justify="left")
    for column in ("when", "interview", "what happened", "root cause", "drafts"):
        table.add_column(column)
    for i in found:
        when = i.start.astimezone(tz).strftime("%a %d %b %H:%M") if i.start else "—"
        what = ("[bold red]missed[/]; " if i.missed else "") + ", ".join(k for k in i.kinds if k != "missed")
        table.add_row(when, escape(i.title), what.strip("; "), CAUSE_LABELS.get(i.cause, i.cause),
                      escape(", ".join(i.drafts) or "—"))
    out.print(table)
    out.print("[bold]Learn from the experience[/]")
    for cause, count in causes.most_common():
        out.print(f"  • {CAUSE_LABELS.get(cause, cause)} ×{count}: {TIPS.get(cause, TIPS[RiskCause.NO_REMINDER])}")
    return 0
