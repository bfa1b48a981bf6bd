"""The handlers behind each `salvage` command (argument parsing lives in :mod:`daemon.cli.main`)."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.text import Text

from daemon.cli.common import (
    UserError,
    account_problems,
    config_from,
    config_location,
    dump_json,
    open_state,
    parse_now,
    placeholder_problems,
)
from daemon.cli.output import (
    _escape,
    fmt_instant,
    fmt_when,
    hanging,
    interview_json,
    interviews_table,
    print_outcomes,
    print_polls,
    risk_text,
)
from daemon.config import AccountConfig, Config, json_schema, load_config
from daemon.core.ids import short_id
from daemon.core.model import ActionKind, Classification, Event
from daemon.engine.pipeline import Engine, Evaluation, Outcome, PassReport, Result, find_events
from providers.base import DraftStore, ProviderContext

log = logging.getLogger(f"salvage.{__name__}")

DEMO_NOW = "2026-11-24T10:30:00+00:00"
_INTERVIEW = Classification(occurrence_key="", is_interview=True, score=0.0, reasons=("an interview in the case store",))


# ---- commands -----------------------------------------------------------------------------------


@contextmanager
def open_engine(config: Config, *, clock: Callable[[], datetime] | None = None) -> Iterator[Engine]:
    """The engine over the config's state store; both are closed on the way out.

    ``clock`` dates the drafts written to a folder (the demo's ``--now``, so its files are reproducible)."""
    with open_state(config) as store:
        if clock is None:
            engine = Engine(config, store)
        else:
            engine = Engine(config, store, open_drafts=_clocked_drafts(clock))
        try:
            yield engine
        finally:
            engine.close()


def _clocked_drafts(clock: Callable[[], datetime]) -> Callable[[AccountConfig, ProviderContext], DraftStore]:
    from providers import registry
    from providers.folder import FolderDrafts

    def open_drafts(account: AccountConfig, context: ProviderContext) -> DraftStore:
        store = registry.open_drafts(account, context)
        return FolderDrafts(store.path, now=clock) if isinstance(store, FolderDrafts) else store

    return open_drafts


def cmd_init(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.init import init_command

    return init_command(args, out)


def cmd_check(args: argparse.Namespace, out: Console) -> int:
    config = config_from(args)
    now = parse_now(args.now)
    with open_engine(config) as engine:
        report = PassReport(now=now)
        if not args.no_poll:
            report.polls = [engine.poll(a, now) for a in engine.accounts()]
        evaluation = engine.evaluate(now)
    interviews = evaluation.interviews
    risky = [e for e in interviews if evaluation.risks_for(e.occurrence_key)]
    from daemon.cli.cases import case_json, open_cases, print_cases

    cases = open_cases(evaluation.cases.values())
    if args.format == "json":
        dump_json(
            {
                "now": now.isoformat(),
                "timezone": config.user.timezone,
                "accounts": [
                    {"name": p.account, "ok": p.ok, "error": p.message or None, "needs_auth": p.needs_auth}
                    for p in report.polls
                ],
                "interviews": [interview_json(e, evaluation) for e in interviews],
                "cases": [case_json(c, config.user.zone) for c in cases],
                "summary": {"interviews": len(interviews), "at_risk": len(risky), "risks": len(evaluation.risks),
                            "open_cases": len(cases)},
            }
        )
    else:
        failed = report.failed_accounts
        if failed:
            names = ", ".join(p.account for p in failed)
            out.print(f"[bold red]{len(failed)} of {len(report.polls)} account(s) could not be read ({_escape(names)}): "
                      "their interviews are missing below.[/]")
        print_polls(report, out, where=lambda name: _account_location(args, config, name))
        if not interviews:
            read = "the accounts that could be read" if failed else "your calendars"
            out.print(f"No interviews found in {read} "
                      f"({config.window.past_days} day(s) back, {config.window.future_days} ahead).")
        else:
            out.print(interviews_table(evaluation, config, f"Interviews as of {fmt_instant(now, config.user.zone)}"))
            out.print(f"{len(interviews)} interview(s), {len(risky)} at risk.")
        print_cases(cases, config, out)
        # What the planner has to tell you (call first; what the clash is with): never in a draft.
        notes = [(a, n) for a in evaluation.actions for n in a.notes]
        if notes:
            out.print("Before you send:")
        for action, note in notes:
            line = f"→ {short_id(action.occurrence_key)} {action.kind.value}: {_escape(note)}"
            for part in hanging(out, Text.from_markup(line), out.width, indent=2):
                out.print(part)
    missed = [c for c in cases if c.phase.value == "missed"]
    return 1 if risky or missed or report.failed_accounts else 0


def _account_location(args: argparse.Namespace, config: Config, name: str) -> str:
    """Where in the config file an account's calendar is set, for a message about it."""
    for i, account in enumerate(config.accounts):
        if account.name == name:
            key = "path" if getattr(account.calendar, "path", None) is not None else "type"
            return f"accounts[{i}].calendar.{key} at {config_location(args, 'accounts', i, 'calendar', key)}"
    return config_location(args)


def cmd_run(args: argparse.Namespace, out: Console) -> int:
    config = config_from(args)
    if not args.once:
        if args.now:
            raise UserError("--now only works with --once")
        from daemon.service.scheduler import serve

        return serve(args.config, dry_run=args.dry_run)
    now = parse_now(args.now)
    from daemon.service.lock import InstanceLock

    # Drafts are written by one process per state at a time: a running service refuses this pass.
    with InstanceLock(config.state_path), open_engine(config) as engine:
        engine.alone = True  # the lock keeps the service and other passes out
        report = engine.run_once(now, dry_run=args.dry_run)
    print_polls(report, out)
    made = [o for o in report.outcomes if o.result not in (Result.KEPT, Result.EXISTS)]
    label = "dry run: " if args.dry_run else ""
    if made:
        out.print(f"{label}drafts:")
        print_outcomes(made, out, titles=report.evaluation)
    else:
        out.print(f"{label}nothing to do.")
    if args.dry_run:
        for o in report.outcomes:
            if o.draft is not None and o.result is Result.WOULD_CREATE:
                out.rule(f"{o.kind} → {', '.join(a.email for a in o.draft.to)}")
                out.print(f"Subject: {o.draft.subject}", markup=False)
                out.print(o.draft.text, markup=False)
    return 1 if report.failed_accounts else 0  # the healthy accounts were still served


def _poll_all(engine: Engine, now: datetime, out: Console) -> None:
    """Read every account's calendar so a command sees today's events, not the last pass's."""
    for poll in [engine.poll(a, now) for a in engine.accounts()]:
        if not poll.ok:
            out.print(f"[yellow]account {poll.account}: {_escape(poll.message)}[/]")


def cmd_preview(args: argparse.Namespace, out: Console) -> int:
    config = config_from(args)
    now = parse_now(args.now)
    with open_engine(config) as engine:
        if not args.no_poll:
            _poll_all(engine, now, out)
        evaluation = engine.evaluate(now)
        event = _one_event(evaluation, args.event)
        actions = evaluation.actions_for(event.occurrence_key)
        c = evaluation.classifications[event.occurrence_key]
        out.print(f"[bold]{_escape(event.title)}[/] — {fmt_when(event, config.user.zone)} "
                  f"[dim](id {short_id(event.occurrence_key)})[/]")
        out.print(f"interview: {'yes' if c.is_interview else 'no'} (score {c.score:g}): "
                  + _escape("; ".join(c.reasons) or "no rule matched"))
        for risk in evaluation.risks_for(event.occurrence_key):
            out.print(f"risk: {_escape(risk_text(risk))}")
        if not actions:
            out.print(no_draft_text(evaluation, event))
            return 0
        for action in actions:
            if args.reason:
                from dataclasses import replace

                action = replace(action, reason=args.reason)
            draft = engine.render(action, event, now)
            out.rule(f"{action.kind.value}")
            for line in action.explanation:
                out.print(f"[dim]why: {_escape(line)}[/]")
            for note in action.notes:
                out.print(f"[bold]→ {_escape(note)}[/]")
            out.print(f"To: {', '.join(f'{a.name} <{a.email}>' if a.name else a.email for a in draft.to)}",
                      markup=False)
            out.print(f"Subject: {draft.subject}", markup=False)
            out.print("")
            out.print(draft.text, markup=False)
    return 0


def no_draft_text(evaluation: Evaluation, event: Event) -> str:
    """Why no draft is planned for an event, naming the interview that moves instead where one does."""
    if not evaluation.classifications[event.occurrence_key].is_interview:
        return "No draft is planned: this event is not an interview."
    for risk in evaluation.risks_for(event.occurrence_key):
        other = evaluation.by_key.get(risk.other_key or "")
        if other is None:
            continue
        moving = [a for a in evaluation.actions_for(other.occurrence_key) if a.kind is ActionKind.RESCHEDULE]
        if moving:
            oid = short_id(other.occurrence_key)
            return (f"No draft is planned for this interview: it stays, and the clash is solved by moving "
                    f"{_escape(other.title)!r} (id {oid}); `salvage preview {oid}` shows that draft.")
    if not evaluation.risks_for(event.occurrence_key):
        return "No draft is planned for this interview: no risk was found."
    return "No draft is planned for this interview: none of its risks calls for an email."


def _one_event(evaluation: Evaluation, query: str) -> Event:
    matches = find_events(evaluation, query)
    if not matches:
        raise UserError(f"no event matches {query!r}; `salvage check` lists interviews with their ids")
    if len(matches) > 1:
        interviews = [e for e in matches if evaluation.classifications[e.occurrence_key].is_interview]
        if len(interviews) == 1:
            return interviews[0]
        shown = matches[:10]
        listing = "; ".join(f"{short_id(e.occurrence_key)} {e.title!r}" for e in shown)
        more = f"; and {len(matches) - len(shown)} more" if len(matches) > len(shown) else ""
        raise UserError(f"{query!r} matches {len(matches)} events ({listing}{more}); use the id")
    return matches[0]


def _missed_event(evaluation: Evaluation, engine: Engine, query: str, now: datetime) -> Event:
    """The interview the user says they missed: in the calendar now, or in the case store within the look-back."""
    from daemon.cli.cases import recent_interviews

    config = engine.config
    pool = {e.occurrence_key: e for e in evaluation.events}
    for event in recent_interviews(engine.store.cases(), now, config):
        pool.setdefault(event.occurrence_key, event)
    cases = set(evaluation.cases)
    interviews = {e.occurrence_key for e in evaluation.interviews} | cases
    look = replace(evaluation, events=tuple(pool.values()),
                   classifications={**{k: _INTERVIEW for k in cases}, **evaluation.classifications})
    if not find_events(look, query):
        raise UserError(f"no interview matches {query!r} in the calendar or in the last "
                        f"{config.missed.lookback_days} days (missed.lookback_days); `salvage check` lists them")
    event = _one_event(look, query)
    since = now - timedelta(days=config.missed.lookback_days)
    start = event.span(config.user.zone)[0]
    if event.occurrence_key in interviews and start < since:
        raise UserError(f"{event.title!r} started {fmt_instant(start, config.user.zone)}, more than "
                        f"{config.missed.lookback_days} days ago (missed.lookback_days)")
    return event


def cmd_missed(args: argparse.Namespace, out: Console) -> int:
    from daemon.service.lock import InstanceLock, LockError, holder

    config = config_from(args)
    now = parse_now(args.now)
    with open_engine(config) as engine:
        _poll_all(engine, now, out)
        evaluation = engine.evaluate(now)
        event = _missed_event(evaluation, engine, args.event, now)
        start = event.span(config.user.zone)[0]
        if start > now:
            raise UserError(f"{event.title!r} starts {fmt_instant(start, config.user.zone)}; it cannot be missed yet")
        engine.store.mark_missed(event.occurrence_key, now, args.reason)
        engine.store.reopen_case(event.occurrence_key, now, "you said you missed it")
        out.print(f"Recorded: you missed {event.title!r} ({fmt_when(event, config.user.zone)}).")
        if args.no_draft:
            out.print("A missed-interview draft will be made at the next pass.")
            return 0
        try:
            lock = InstanceLock(config.state_path).acquire()
        except LockError:
            pid = holder(config.state_path)
            who = f" (pid {pid})" if pid else ""
            out.print(f"The running salvage service{who} will write the missed-interview draft at its next poll.")
            return 0
        try:
            report = engine.run_once(now, accounts=[event.account])
        finally:
            lock.release()
    print_polls(report, out)
    mine = [o for o in report.outcomes if o.occurrence_key == event.occurrence_key]
    others = [o for o in report.outcomes if o.occurrence_key != event.occurrence_key
              and o.result not in (Result.KEPT, Result.EXISTS)]
    print_outcomes(mine, out, titles=report.evaluation)
    if others:
        out.print("The same pass also changed drafts for other interviews:")
        print_outcomes(others, out, titles=report.evaluation)
    print_call_first(report.outcomes, report.evaluation, out)
    return 0


def cmd_done(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.cases import cmd_done as done

    return done(args, out)


def print_call_first(outcomes: list[Outcome], evaluation: Evaluation | None, out: Console) -> None:
    """The loud "phone them first" line, true to why: a missed interview, a short-notice move, or a
    move whose invitation gives a number (the articles: phone for any cancellation)."""
    for o in outcomes:
        if not o.call_first or o.result not in (Result.CREATED, Result.UPDATED, Result.WOULD_CREATE):
            continue
        event = evaluation.by_key.get(o.occurrence_key) if evaluation else None
        title = f" {_escape(event.title)!r}" if event else ""
        phone = f" on {_escape(o.phone)}" if o.phone else ""
        if o.kind == ActionKind.MISSED.value:
            out.print(f"[bold red]You missed{title}: call them first{phone}[/] — a phone call beats email; "
                      "then send the draft.")
            continue
        short = event is not None and evaluation is not None and (
            event.span(evaluation.now.tzinfo or timezone.utc)[0] - evaluation.now < timedelta(hours=24))
        if short or not o.phone:
            out.print(f"[bold red]Short notice for{title}: call them first{phone}[/] — then send the draft.")
        else:
            out.print(f"[bold]Moving{title}: call them first{phone}[/] — the invitation gives a number, and a "
                      "call beats email for any cancellation; then send the draft.")


def cmd_status(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.status import status_command

    return status_command(args, out)


def cmd_drafts(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.drafts import drafts_command

    return drafts_command(args, out)


def cmd_week(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.week import week_command

    config = config_from(args)
    now = parse_now(args.now)
    if not 1 <= args.days <= 31:
        raise UserError("--days must be between 1 and 31")
    if not 60 <= args.width <= 400:
        raise UserError("--width must be between 60 and 400 columns")
    with open_engine(config) as engine:
        if not args.no_poll:
            _poll_all(engine, now, out)
        evaluation = engine.evaluate(now)
    return week_command(args, out, evaluation, config, now)


def cmd_report(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.report import report_command

    return report_command(args, out)


def cmd_auth(args: argparse.Namespace, out: Console) -> int:
    from providers import registry

    config = config_from(args)
    account = config.account(args.account)
    if not registry.auth_kinds(account):
        out.print(f"Account {account.name!r} needs no authorisation ({account.calendar.kind} calendar, "
                  f"{account.drafts.kind} drafts): nothing to do.", markup=False)
        return 0
    index = config.accounts.index(account)
    for keys, problem in placeholder_problems(account):
        raise UserError(f"{problem} ({'.'.join(map(str, keys))} at {config_location(args, 'accounts', index, *keys)})")
    microsoft = account.connection("microsoft")
    if args.browser and microsoft is not None:
        interactive = microsoft.model_copy(update={"auth_flow": "interactive"})
        account = account.model_copy(update={"connections": {**account.connections, "microsoft": interactive}})
    registry.authenticate(account, config, no_browser=args.no_browser, out=lambda line: out.print(line, markup=False))
    with open_state(config) as store:
        status = store.account_status(account.name)
        if status is not None and status.needs_auth:
            store.record_failure(account.name, parse_now(None), "authorised again; waiting for the next poll")
    out.print(f"Account {account.name!r} is authorised.")
    return 0


def example_config_text() -> str:
    """The annotated example config shipped in the package (the same file as config.example.yaml)."""
    return (resources.files("daemon.sample") / "config.example.yaml").read_text(encoding="utf-8")


def cmd_config(args: argparse.Namespace, out: Console) -> int:
    if args.config_command == "schema":
        dump_json(json_schema())
        return 0
    if args.config_command == "example":
        sys.stdout.write(example_config_text())
        return 0
    config = config_from(args)
    from daemon.engine.render import template_problems
    from daemon.engine.state import state_path_problem

    problems = template_problems(config)
    state = state_path_problem(config.state_path)
    if state:
        problems.append(f"state.path: {state}")
    problems.extend(account_problems(args, config))
    if problems:
        out.print("[red]The config is valid YAML, but:[/]")
        for p in problems:
            out.print(f"  - {_escape(p)}")
        return 2
    out.print(f"Config OK: {len(config.accounts)} account(s), timezone {config.user.timezone}.")
    return 0


def cmd_completion(args: argparse.Namespace, out: Console) -> int:
    import argcomplete

    sys.stdout.write(argcomplete.shellcode(["salvage"], shell=args.shell))
    return 0


def cmd_service(args: argparse.Namespace, out: Console) -> int:
    from daemon.cli.unit import service_command

    return service_command(args, out)


def cmd_demo(args: argparse.Namespace, out: Console) -> int:
    now = parse_now(args.now or DEMO_NOW)
    output: Path = args.output.resolve()
    drafts_dir = output / "drafts"
    if drafts_dir.exists():
        shutil.rmtree(drafts_dir)
    for stale in output.glob("state.sqlite3*"):
        stale.unlink()
    output.mkdir(parents=True, exist_ok=True)
    config_path = write_demo_config(output)
    config = load_config(config_path)
    with open_engine(config, clock=lambda: now) as engine:
        report = engine.run_once(now)
    evaluation = report.evaluation
    assert evaluation is not None
    tz = config.user.zone
    out.print(f"[bold]Salvage demo[/] — a sample calendar for {config.user.name} ({config.user.timezone}), "
              f"clock pinned at {fmt_instant(now, tz)} so the demo is reproducible.")
    print_polls(report, out)
    out.print(interviews_table(evaluation, config, "Interviews found"))
    ignored = [e for e in evaluation.events if not evaluation.classifications[e.occurrence_key].is_interview]
    counts = Counter(e.title for e in ignored)  # a recurring meeting once, with its count
    names = [_escape(t) + (f" ×{n}" if n > 1 else "") for t, n in counts.items()]
    out.print(f"Not interviews ({len(ignored)}): " + ", ".join(names[:12]) + (", …" if len(names) > 12 else ""))
    out.print("\n[bold]Drafts written[/] (review them in a mail client; Salvage never sends):")
    print_outcomes(report.outcomes, out, titles=evaluation)
    print_call_first(report.outcomes, evaluation, out)
    first = next((o for o in report.outcomes if o.result is Result.CREATED), None)
    cfg = _shell_path(config_path)
    out.print(f"\nDrafts: {drafts_dir}  (.eml files: open them in Thunderbird, Apple Mail or Outlook)")
    out.print(f"State:  {output / 'state.sqlite3'}")
    out.print("\n[bold]Next[/], on the demo's own config:")
    steps = [("The drafts, and where each is:", f"salvage drafts -c {cfg}")]
    if first is not None:
        steps.append(("One, as its recipient will read it:", f"salvage drafts show {first.key[:8]} -c {cfg}"))
    steps.append(("The week as a picture:", f"salvage week -c {cfg} --now {now.isoformat()}"))
    steps.append(("Then make Salvage watch your own calendar:", "salvage init"))
    for what, command in steps:
        out.print(f"  {what}")
        out.print(f"    [bold]{_escape(command)}[/]", soft_wrap=True)
    return 0


def _shell_path(path: Path) -> str:
    """A path as short as it can be written from here (relative when under the current folder)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_demo_config(output: Path) -> Path:
    """The demo's calendar and a config using it, written under ``output`` (drafts and state beside them)."""
    sample = resources.files("daemon.sample")
    (output / "demo.ics").write_bytes((sample / "demo.ics").read_bytes())
    text = (sample / "demo.yaml").read_text(encoding="utf-8")
    text += "state:\n  path: state.sqlite3\n"
    path = output / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path

