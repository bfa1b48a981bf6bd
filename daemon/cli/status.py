"""`salvage status`: accounts, the service's health, upcoming interviews and live drafts."""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from daemon.cli.cases import case_json, open_cases, print_cases
from daemon.cli.common import config_from, dump_json, parse_now
from daemon.cli.output import fmt_instant, hanging, interview_json, interviews_table
from daemon.config import Config
from daemon.core.model import DraftState, RiskKind, utc_now
from daemon.engine.state import LIVE_STATES, DraftRecord, StateError, StateStore
from daemon.service.health import (
    account_json,
    accounts_health,
    health_path,
    instant,
    read_health,
    service_state,
)


def draft_json(record: DraftRecord) -> dict[str, Any]:
    return {
        "key": record.key,
        "account": record.account,
        "kind": record.kind.value,
        "state": record.state.value,
        "subject": record.subject,
        "to": record.recipients,
        "event_start": record.event_start.isoformat() if record.event_start else None,
        "created": record.created.isoformat(),
        "updated": record.updated.isoformat(),
        "where": record.ref.id if record.ref else None,
        "note": record.note,
    }


# ---- the command --------------------------------------------------------------------------------


def status_command(args: argparse.Namespace, out: Console) -> int:
    """Accounts, service health, upcoming interviews with risks, live drafts; exit 1 on a problem."""

    config = config_from(args)
    now = parse_now(getattr(args, "now", None))
    tz = config.user.zone
    # --now moves the calendar view only; whether the service is alive is a question about today
    service = service_state(read_health(health_path(config)), utc_now())
    accounts: list[dict[str, Any]]
    drafts: list[DraftRecord] = []
    histories: dict[str, list[dict[str, str]]] = {}
    evaluation = None
    evaluation_error = None
    state_error = None
    accounts = [account_json(a, None) for a in config.accounts]
    if config.state_path.exists():
        try:
            with StateStore.open(config.state_path) as store:
                accounts = accounts_health(config, store)
                drafts = sorted(store.drafts(states=LIVE_STATES),
                                key=lambda d: (d.event_start or d.created, d.account, d.kind.value))
                evaluation, evaluation_error = _evaluate(config, store, now)
                if evaluation is not None:
                    histories = {c.key: [{"at": e.at.isoformat(), "phase": e.phase.value, "note": e.note}
                                         for e in store.case_history(c.key)]
                                 for c in open_cases(evaluation.cases.values())}
        except (StateError, sqlite3.DatabaseError) as exc:  # damaged: say so, show what the health file knows
            state_error = f"the state file {config.state_path} cannot be read: {exc}"
            drafts, evaluation, histories = [], None, {}
    failing = [a for a in accounts if a["enabled"] and (not a["ok"] or a["needs_auth"])]
    upcoming = _upcoming(evaluation, config, now)
    problem = bool(failing) or service.problem or state_error is not None

    if getattr(args, "format", "table") == "json":

        dump_json({
            "now": now.isoformat(),
            "timezone": config.user.timezone,
            "ok": not problem,
            "service": {
                "state": service.state,
                "pid": service.pid,
                "updated": service.updated.isoformat() if service.updated else None,
                "detail": service.detail,
            },
            "state_file": str(config.state_path),
            "state_error": state_error,
            "accounts": accounts,
            "interviews": [interview_json(e, evaluation) for e in upcoming] if evaluation else [],
            "evaluation_error": evaluation_error,
            "drafts": [draft_json(d) for d in drafts],
            "cases": [{**case_json(c, tz), "history": histories.get(c.key, [])}
                      for c in open_cases(evaluation.cases.values())] if evaluation else [],
        })
    else:
        style = "red" if service.problem else ("green" if service.state == "running" else "yellow")
        since = f", last heartbeat {fmt_instant(service.updated, tz)}" if service.updated else ""
        pid = f" (pid {service.pid})" if service.pid and service.state != "stopped" else ""
        out.print(f"service: [{style}]{escape(service.detail)}[/]{pid}{since}")
        if state_error:
            out.print(f"[red]{escape(state_error)}[/]: restore it from a backup, or stop the service and move it "
                      "aside (a new one is made)")
        out.print(_accounts_table(accounts, config))
        if evaluation_error:
            out.print(f"[red]could not evaluate the calendars: {escape(evaluation_error)}[/]")
        elif evaluation is not None:
            _print_interviews(evaluation, upcoming, config, now, out)
            print_cases(evaluation.cases.values(), config, out)
        elif state_error is None:
            out.print("No state yet: start the service with `salvage run`.")
        _print_drafts(drafts, config, out)
    if getattr(args, "exit_code", False) and problem:
        return 1
    return 0


def _evaluate(config: Config, store: StateStore, now: datetime) -> tuple[Any, str | None]:
    from daemon.engine.pipeline import Engine

    try:
        engine = Engine(config, store, read_mail=False)  # status reads the store only, no mailbox
    except Exception as exc:  # noqa: BLE001 - e.g. an unusable templates_dir; still show the rest
        return None, f"{type(exc).__name__}: {exc}"
    try:
        return engine.evaluate(now), None
    except Exception as exc:  # noqa: BLE001 - status must still show accounts and drafts
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        engine.close()


def _upcoming(evaluation: Any, config: Config, now: datetime) -> list[Any]:
    """Interviews not over yet, and those just missed (they need action now)."""
    if evaluation is None:
        return []
    out = []
    for event in evaluation.interviews:
        _, end = event.span(config.user.zone)
        missed = any(r.kind is RiskKind.MISSED for r in evaluation.risks_for(event.occurrence_key))
        if end > now or missed:
            out.append(event)
    return out


def _accounts_table(accounts: list[dict[str, Any]], config: Config) -> Table:

    tz = config.user.zone
    table = Table(title="Accounts", title_justify="left")
    for column in ("account", "status", "last poll", "next poll", "error"):
        table.add_column(column)
    for a in accounts:
        if not a["enabled"]:
            state = "[dim]disabled[/]"
        elif a["needs_auth"]:
            state = f"[red]needs `salvage auth {escape(a['name'])}`[/]"
        elif not a["ok"]:
            state = f"[red]failing ({a['failures']}×)[/]"
        elif a["last_poll"] is None:
            state = "[yellow]not polled yet[/]"
        else:
            state = "[green]ok[/]"
        error = escape(a["error"] or "")
        if a["error_since"]:
            error += f"\n[dim]since {fmt_instant(instant(a['error_since']), tz)}[/]"
        if a["problems"]:
            error += f"\n[yellow]{len(a['problems'])} unreadable item(s)[/]"
        table.add_row(escape(a["name"]), state, fmt_instant(instant(a["last_poll"]), tz),
                      fmt_instant(instant(a["next_poll"]), tz), error or "—")
    return table


def _print_interviews(evaluation: Any, upcoming: list[Any], config: Config, now: datetime, out: Console) -> None:

    if not upcoming:
        out.print("No upcoming interviews.")
        return
    shown = replace(evaluation, events=tuple(upcoming))
    out.print(interviews_table(shown, config, f"Upcoming interviews as of {fmt_instant(now, config.user.zone)}"))


def _print_drafts(drafts: list[DraftRecord], config: Config, out: Console) -> None:

    if not drafts:
        out.print("No live drafts.")
        return
    tz = config.user.zone
    table = Table(title="Live drafts", title_justify="left")
    for column in ("account", "kind", "state", "to", "subject", "interview", "since"):
        table.add_column(column)
    for d in drafts:
        state = {DraftState.EDITED: "[cyan]edited by you[/]", DraftState.PENDING: "[yellow]being created[/]"}.get(
            d.state, "untouched")
        table.add_row(escape(d.account), d.kind.value, state, escape(d.recipients), escape(d.subject),
                      fmt_instant(d.event_start, tz), fmt_instant(d.updated, tz))
    out.print(table)
    # The draft's review note: what to do first and what the clash is with (never in the draft itself).
    for d in drafts:
        for note in (n.strip() for n in d.note.split("; ") if n.strip()):
            line = Text.from_markup(f"→ {d.kind.value} to {escape(d.recipients)}: {escape(note)}")
            for part in hanging(out, line, out.width, indent=2):
                out.print(part)
