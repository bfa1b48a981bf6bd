"""`salvage status` and the health file the service keeps beside its state.

The running service rewrites ``<state dir>/health.json`` (atomically) after every job and at least
once a minute (a heartbeat from its worker thread), and once more, with ``"state": "stopped"``,
when it exits cleanly. ``salvage status`` reads it to tell whether the service is alive; monitors
can read it directly (its shape is documented in ``docs/service.md``).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from daemon.cli.common import config_from, dump_json, parse_now
from daemon.config import AccountConfig, Config
from daemon.core.model import DraftState, RiskKind, utc_now
from daemon.engine.state import LIVE_STATES, AccountStatus, DraftRecord, StateStore
from daemon.service.lock import pid_alive

HEALTH_FILE = "health.json"
HEALTH_VERSION = 1
# The service's heartbeat writes the health file every minute; older than this means it is stuck.
STALE_AFTER = timedelta(minutes=5)


def health_path(config: Config) -> Path:
    """``health.json`` in the directory of the state file."""
    return config.state_path.parent / HEALTH_FILE


def write_health(path: Path, data: dict[str, Any]) -> None:
    """Replace the health file atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_health(path: Path) -> dict[str, Any] | None:
    """The health file's content, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def account_json(account: AccountConfig, status: AccountStatus | None) -> dict[str, Any]:
    """One account's health, as shown by status and written to the health file."""

    def t(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    failing = status is not None and status.error is not None
    return {
        "name": account.name,
        "enabled": account.enabled,
        "calendar": account.calendar.type,
        "drafts": account.drafts.type,
        "ok": not failing,
        "needs_auth": bool(status and status.needs_auth),
        "error": status.error if status else None,
        "error_since": t(status.error_since) if status else None,
        "failures": status.failures if status else 0,
        "last_poll": t(status.last_poll) if status else None,
        "last_success": t(status.last_success) if status else None,
        "next_poll": t(status.next_poll) if status else None,
        "problems": list(status.problems) if status else [],
    }


def accounts_health(config: Config, store: StateStore) -> list[dict[str, Any]]:
    known = {s.name: s for s in store.accounts()}
    return [account_json(a, known.get(a.name)) for a in config.accounts]


@dataclass(frozen=True)
class ServiceState:
    """What the health file says about the service, checked against the process table and clock."""

    state: str  # running, stopped, not-responding, dead, never-run
    pid: int | None
    updated: datetime | None
    detail: str

    @property
    def problem(self) -> bool:
        return self.state in ("not-responding", "dead")


def service_state(health: dict[str, Any] | None, now: datetime) -> ServiceState:
    """Interpret a health file at ``now``."""
    if health is None:
        return ServiceState("never-run", None, None, "no health file: the service has not run with this state")
    pid = health.get("pid") if isinstance(health.get("pid"), int) else None
    updated = _instant(health.get("updated"))
    if health.get("state") == "stopped":
        return ServiceState("stopped", pid, updated, "stopped cleanly")
    if pid is None or not pid_alive(pid):
        return ServiceState("dead", pid, updated, "not running: it was killed or crashed (no clean stop)")
    if updated is None or now - updated > STALE_AFTER:
        return ServiceState("not-responding", pid, updated, "running but its heartbeat stopped")
    return ServiceState("running", pid, updated, "running")


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


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
    from daemon.cli.commands import fmt_instant

    config = config_from(args)
    now = parse_now(getattr(args, "now", None))
    tz = config.user.zone
    # --now moves the calendar view only; whether the service is alive is a question about today
    service = service_state(read_health(health_path(config)), utc_now())
    accounts: list[dict[str, Any]]
    drafts: list[DraftRecord] = []
    evaluation = None
    evaluation_error = None
    if config.state_path.exists():
        with StateStore.open(config.state_path) as store:
            accounts = accounts_health(config, store)
            drafts = sorted(store.drafts(states=LIVE_STATES),
                            key=lambda d: (d.event_start or d.created, d.account, d.kind.value))
            evaluation, evaluation_error = _evaluate(config, store, now)
    else:
        accounts = [account_json(a, None) for a in config.accounts]
    failing = [a for a in accounts if a["enabled"] and (not a["ok"] or a["needs_auth"])]
    upcoming = _upcoming(evaluation, config, now)
    problem = bool(failing) or service.problem

    if getattr(args, "format", "table") == "json":
        from daemon.cli.commands import interview_json

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
            "accounts": accounts,
            "interviews": [interview_json(e, evaluation) for e in upcoming] if evaluation else [],
            "evaluation_error": evaluation_error,
            "drafts": [draft_json(d) for d in drafts],
        })
    else:
        style = "red" if service.problem else ("green" if service.state == "running" else "yellow")
        since = f", last heartbeat {fmt_instant(service.updated, tz)}" if service.updated else ""
        pid = f" (pid {service.pid})" if service.pid and service.state != "stopped" else ""
        out.print(f"service: [{style}]{escape(service.detail)}[/]{pid}{since}")
        out.print(_accounts_table(accounts, config))
        if evaluation_error:
            out.print(f"[red]could not evaluate the calendars: {escape(evaluation_error)}[/]")
        elif evaluation is not None:
            _print_interviews(evaluation, upcoming, config, now, out)
        else:
            out.print("No state yet: start the service with `salvage run`.")
        _print_drafts(drafts, config, out)
    if getattr(args, "exit_code", False) and problem:
        return 1
    return 0


def _evaluate(config: Config, store: StateStore, now: datetime) -> tuple[Any, str | None]:
    from daemon.engine.pipeline import Engine

    try:
        engine = Engine(config, store)
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
    from daemon.cli.commands import fmt_instant

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
            error += f"\n[dim]since {fmt_instant(_instant(a['error_since']), tz)}[/]"
        if a["problems"]:
            error += f"\n[yellow]{len(a['problems'])} unreadable item(s)[/]"
        table.add_row(escape(a["name"]), state, fmt_instant(_instant(a["last_poll"]), tz),
                      fmt_instant(_instant(a["next_poll"]), tz), error or "—")
    return table


def _print_interviews(evaluation: Any, upcoming: list[Any], config: Config, now: datetime, out: Console) -> None:
    from daemon.cli.commands import fmt_instant, interviews_table

    if not upcoming:
        out.print("No upcoming interviews.")
        return
    shown = replace(evaluation, events=tuple(upcoming))
    out.print(interviews_table(shown, config, f"Upcoming interviews as of {fmt_instant(now, config.user.zone)}"))


def _print_drafts(drafts: list[DraftRecord], config: Config, out: Console) -> None:
    from daemon.cli.commands import fmt_instant

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
