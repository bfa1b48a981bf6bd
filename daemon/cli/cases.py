"""Cases on the command line: `salvage done EVENT`, the open-cases table of `check`/`status`, and
finding an interview for `salvage missed` in the case store (beyond the read window)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from daemon.cli.common import UserError, config_from, open_state, parse_now
from daemon.cli.output import fmt_instant, fmt_when
from daemon.config import Config
from daemon.core.ids import short_id
from daemon.core.model import ACTIVE_PHASES, Case, Event, Phase
from daemon.core.plan import phone_for

DONE_REASON = "you said it is done (`salvage done`)"


def open_cases(cases: Iterable[Case]) -> list[Case]:
    """Cases the user should hear about (at risk, waiting, missed, followed up, rebooked), by interview start."""
    return sorted((c for c in cases if c.phase in ACTIVE_PHASES),
                  key=lambda c: (c.event.span(timezone.utc)[0], c.key))


def call_first(case: Case) -> str | None:
    """'call first: <phone>' for an open missed case (the seeds' first step), else None."""
    if case.phase is not Phase.MISSED:
        return None
    phone = phone_for(case.event)
    return f"call first: {phone}" if phone else "call first (no number in the invitation)"


def next_step(case: Case, tz: tzinfo) -> str:
    """What happens next in this case, in a few words."""
    if case.phase is Phase.MISSED:
        return str(call_first(case)) + "; then send the apology in your Drafts"
    if case.phase is Phase.AT_RISK:
        return f"at risk: `salvage preview {short_id(case.key)}` shows what is planned"
    if case.phase is Phase.RESCHEDULE_REQUESTED:
        return "reschedule request drafted or sent; waiting for a new time"
    if case.phase is Phase.FOLLOWED_UP:
        return "follow-up sent; waiting for their answer"
    if case.phase is Phase.REBOOKED:
        return f"rebooked for {fmt_instant(case.rebooked_start, tz)}"
    return case.close_reason or "—"


def case_json(case: Case, tz: tzinfo) -> dict[str, Any]:
    """The stable JSON shape of one case."""
    return {
        "id": short_id(case.key),
        "key": case.key,
        "account": case.account,
        "title": case.event.title,
        "start": case.event.start.isoformat(),
        "phase": case.phase.value,
        "missed_at": case.missed_at.isoformat() if case.missed_at else None,
        "rebooked_key": case.rebooked_key,
        "rebooked_start": case.rebooked_start.isoformat() if case.rebooked_start else None,
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "close_reason": case.close_reason or None,
        "call_first": call_first(case),
        "phone": phone_for(case.event),
        "next": next_step(case, tz),
    }


def cases_table(cases: list[Case], config: Config, title: str = "Open cases") -> Table:
    tz = config.user.zone
    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("interview", ratio=2, overflow="fold")
    table.add_column("when", ratio=1)
    table.add_column("phase", no_wrap=True, min_width=max(len(p.value) for p in Phase))  # never cut
    table.add_column("next", ratio=2, overflow="fold")
    for case in cases:
        phase = f"[bold red]{case.phase.value}[/]" if case.phase is Phase.MISSED else case.phase.value
        step = escape(next_step(case, tz))
        if case.phase is Phase.MISSED:
            step = f"[bold red]{step}[/]"
        table.add_row(short_id(case.key), escape(case.event.title), fmt_when(case.event, tz), phase, step)
    return table


def print_cases(cases: Iterable[Case], config: Config, out: Console) -> None:
    """The open-cases table, when there are any."""
    shown = open_cases(cases)
    if shown:
        out.print(cases_table(shown, config))


def find_case(cases: Iterable[Case], query: str, *, what: str = "case") -> Case:
    """A case by short id, occurrence key, or (case-insensitive) part of its interview's title."""
    pool = list(cases)
    exact = [c for c in pool if query in (c.key, c.event.source_id) or short_id(c.key) == query]
    matches = exact or [c for c in pool if len(query) >= 4 and short_id(c.key).startswith(query)]
    if not matches:
        needle = query.casefold()
        matches = [c for c in pool if needle in c.event.title.casefold()]
    if not matches:
        raise UserError(f"no {what} matches {query!r}; `salvage check` lists open cases with their ids")
    if len(matches) > 1:
        listing = "; ".join(f"{short_id(c.key)} {c.event.title!r}" for c in matches[:10])
        more = f"; and {len(matches) - 10} more" if len(matches) > 10 else ""
        raise UserError(f"{query!r} matches {len(matches)} {what}s ({listing}{more}); use the id")
    return matches[0]


def recent_interviews(cases: Iterable[Case], now: datetime, config: Config) -> list[Event]:
    """Interviews from the case store that started within `missed.lookback_days` (for `salvage missed`)."""
    since = now - timedelta(days=config.missed.lookback_days)
    out = []
    for case in cases:
        start = case.event.span(config.user.zone)[0]
        if since <= start <= now:
            out.append(case.event)
    return out


def cmd_done(args: argparse.Namespace, out: Console) -> int:
    """Close a case on the user's word: no more drafts for it; untouched ones go at the next pass."""
    config = config_from(args)
    now = parse_now(args.now)
    with open_state(config) as store:
        case = find_case([c for c in store.cases() if c.account in {a.name for a in config.accounts}], args.event)
        if case.phase is Phase.CLOSED:
            out.print(f"The case of {case.event.title!r} is already closed ({case.close_reason}).", markup=False)
            return 0
        store.close_case(case.key, now, DONE_REASON)
    out.print(f"Closed the case of {case.event.title!r} ({fmt_when(case.event, config.user.zone)}). "
              "Salvage makes no more drafts for it; its untouched drafts are withdrawn at the next pass.",
              markup=False)
    return 0

