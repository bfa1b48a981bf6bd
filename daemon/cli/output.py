"""How the commands show things: times, risks, the interviews table and the stable JSON shapes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, tzinfo
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from daemon.config import Config
from daemon.core.ids import short_id
from daemon.core.model import Action, Event, Risk, Severity
from daemon.engine.pipeline import Evaluation, Outcome, PassReport, Result

_SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def consoles() -> tuple[Console, Console]:
    """stdout and stderr consoles. On a terminal, prose wraps at words to its width; into a pipe or
    file, lines are left whole for the reader's own tools. Colour only on a terminal and never with
    NO_COLOR (rich reads both, and COLUMNS, from the environment)."""
    from daemon.cli.terminal import SafeConsole

    pair = (SafeConsole(highlight=False, emoji=False), SafeConsole(stderr=True, highlight=False, emoji=False))
    for console in pair:
        console.soft_wrap = not console.is_terminal
    return pair[0], pair[1]


def fmt_when(event: Event, tz: tzinfo) -> str:
    """'Wed 25 Nov 14:00–14:45' in the user's zone; all-day events as dates."""
    if isinstance(event.start, datetime) and isinstance(event.end, datetime):
        start, end = event.start.astimezone(tz), event.end.astimezone(tz)
        day = start.strftime("%a %d %b %H:%M")
        tail = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%a %d %b %H:%M")
        return f"{day}–{tail}"
    assert isinstance(event.start, date)
    return event.start.strftime("%a %d %b") + " (all day)"


def fmt_instant(value: datetime | None, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%a %d %b %H:%M") if value else "—"


def risk_text(risk: Risk) -> str:
    return f"{risk.kind.value} ({risk.severity.value}): {risk_evidence(risk)}"


def _iso(value: datetime | date) -> str:
    return value.isoformat()


def interview_json(event: Event, evaluation: Evaluation) -> dict[str, Any]:
    """The stable JSON shape of one interview (documented in the README)."""
    c = evaluation.classifications[event.occurrence_key]
    return {
        "id": short_id(event.occurrence_key),
        "key": event.occurrence_key,
        "account": event.account,
        "title": event.title,
        "start": _iso(event.start),
        "end": _iso(event.end),
        "all_day": event.all_day,
        "timezone": event.timezone,
        "organizer": {"email": event.organizer.email, "name": event.organizer.name} if event.organizer else None,
        "score": c.score,
        "reasons": list(c.reasons),
        "risks": [
            {"kind": r.kind.value, "severity": r.severity.value, "evidence": r.evidence, "cause": r.cause}
            for r in evaluation.risks_for(event.occurrence_key)
        ],
        "actions": [action_json(a) for a in evaluation.actions_for(event.occurrence_key)],
    }


def action_json(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "key": action.key,
        "recipients": [p.email for p in action.recipients],
        "reason": action.reason,
        "slots": [{"start": s.start.isoformat(), "end": s.end.isoformat()} for s in action.slots],
        "call_first": action.call_first,
        "phone": action.phone,
        "notes": list(action.notes),
    }


WIDE = 100  # below this many columns the interviews are a list, not a table


def risk_evidence(risk: Risk) -> str:
    """A risk's evidence without a leading repeat of its kind ("missed: missed: …" reads as a stutter)."""
    text = risk.evidence
    for prefix in (f"{risk.kind.value}: ", f"{risk.kind.value.replace('_', ' ')}: "):
        text = text.removeprefix(prefix)
    return text


def _risk_markup(risk: Risk) -> str:
    return f"[{_SEVERITY_STYLE[risk.severity]}]{risk.kind.value}[/] ({risk.severity.value}): {_escape(risk_evidence(risk))}"


def _planned(evaluation: Evaluation, event: Event) -> list[str]:
    return [a.kind.value for a in evaluation.actions_for(event.occurrence_key)]


class InterviewsView:
    """The interviews with their risks and planned drafts, laid out for the width it is given:
    a table from :data:`WIDE` columns, a list below it. Kinds of risk and draft are never cut."""

    def __init__(self, evaluation: Evaluation, config: Config, title: str) -> None:
        self.evaluation = evaluation
        self.config = config
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if options.max_width >= WIDE:
            yield self.table()
            return
        # Wrap at words even where the console leaves prose lines whole (a pipe): the list is laid out.
        laid_out = options.update(no_wrap=False, overflow="fold")
        for part in self.compact(console, options.max_width):
            yield from console.render(part, laid_out)

    def table(self) -> Table:
        """One row per interview; the kind columns are wide enough for the longest kind."""
        tz = self.config.user.zone
        table = Table(title=self.title, show_lines=True, title_justify="left")
        table.add_column("id", style="dim", no_wrap=True)
        table.add_column("when", no_wrap=True)
        table.add_column("interview", ratio=2, min_width=12, overflow="fold")
        table.add_column("risks", ratio=3, min_width=len("interview_clash"), overflow="fold")
        table.add_column("draft planned", no_wrap=True, min_width=len("reschedule_request"))
        for event in self.evaluation.interviews:
            risks = self.evaluation.risks_for(event.occurrence_key)
            risk_cell = "\n".join(_risk_markup(r) for r in risks) or "[green]none[/]"
            actions = "\n".join(_planned(self.evaluation, event)) or "—"
            who = f"\n[dim]{_escape(event.organizer.display)}[/]" if event.organizer else ""
            table.add_row(short_id(event.occurrence_key), fmt_when(event, tz), _escape(event.title) + who,
                          risk_cell, actions)
        return table

    def compact(self, console: Console, width: int) -> Iterable[RenderableType]:
        """Each interview as a short block: id, time and title, then one wrapped line per risk and draft."""
        tz = self.config.user.zone
        yield Text.from_markup(f"[bold]{_escape(self.title)}[/]")
        for event in self.evaluation.interviews:
            yield Text.from_markup(
                f"[dim]{short_id(event.occurrence_key)}[/]  {fmt_when(event, tz)}  [bold]{_escape(event.title)}[/]"
            )
            lines = [f"[dim]with {_escape(event.organizer.display)}[/]"] if event.organizer else []
            lines += [f"risk: {_risk_markup(r)}" for r in self.evaluation.risks_for(event.occurrence_key)]
            if len(lines) == bool(event.organizer):
                lines.append("risk: [green]none[/]")
            lines += [f"draft: {kind}" for kind in _planned(self.evaluation, event)]
            for line in lines:
                yield from hanging(console, Text.from_markup(line), width, indent=4)
            yield Text("")


def hanging(console: Console, text: Text, width: int, *, indent: int) -> Iterable[Text]:
    """``text`` wrapped at words to ``width``, indented, its continuation lines two further (no trailing padding)."""
    for i, line in enumerate(text.wrap(console, max(20, width - indent - 2))):
        line.rstrip()
        yield Text(" " * (indent if i == 0 else indent + 2)) + line


def print_hanging(out: Console, markup: str, *, indent: int, more: int) -> None:
    """A line of markup indented by ``indent``; on a terminal wrapped at words, continuing at ``more``.
    Into a pipe it stays one line."""
    text = out.render_str(markup)
    if out.soft_wrap:
        out.print(Text(" " * indent) + text)
        return
    for i, line in enumerate(text.wrap(out, max(20, out.width - more))):
        line.rstrip()
        out.print(Text(" " * (indent if i == 0 else more)) + line)


def interviews_table(evaluation: Evaluation, config: Config, title: str) -> InterviewsView:
    """The interviews view (a table on a wide terminal, a list on a narrow one)."""
    return InterviewsView(evaluation, config, title)


def _escape(text: str) -> str:
    """Event text ready for markup: terminal controls stripped (as the console would), markup escaped.

    Stripping here too covers text that becomes a :class:`rich.text.Text` without passing through
    the console's ``render_str`` (the laid-out lists, the week's picture)."""
    from rich.markup import escape

    from daemon.core.text import strip_invisible

    return escape(strip_invisible(text, keep_newlines=True))


def print_polls(report: PassReport, out: Console, *, where: Callable[[str], str] | None = None) -> None:
    """One line per failing account (with where it is configured, if known) and per problem."""
    for poll in report.polls:
        if not poll.ok:
            hint = f" — run `salvage auth {poll.account}`" if poll.needs_auth and "salvage auth" not in poll.message else ""
            place = f" (check {_escape(where(poll.account))})" if where and not poll.needs_auth else ""
            out.print(f"[red]account {poll.account}: {_escape(poll.message)}{hint}{place}[/]")
        for problem in poll.problems:
            out.print(f"[yellow]account {poll.account}: {_escape(problem)}[/]")


def outcome_subject(outcome: Outcome, titles: Evaluation | None) -> str:
    """The interview an outcome is about: its title where the calendar still has it, else its id."""
    event = titles.by_key.get(outcome.occurrence_key) if titles else None
    return repr(event.title) if event else f"interview {short_id(outcome.occurrence_key)}"


def print_outcomes(outcomes: Iterable[Outcome], out: Console, *, where: str = "",
                   titles: Evaluation | None = None) -> None:
    """What happened to each draft, naming its interview; kept and unchanged drafts are left out."""
    for o in outcomes:
        if o.result in (Result.KEPT, Result.EXISTS):
            continue
        to = f" → {', '.join(a.email for a in o.draft.to)}" if o.draft else ""
        detail = f" ({_escape(o.detail)})" if o.detail else ""
        print_hanging(out, f"{o.result:>12}  {o.kind} for {_escape(outcome_subject(o, titles))}{to}{detail}",
                      indent=2, more=16)
        if o.draft:
            print_hanging(out, f"“{_escape(o.draft.subject)}”", indent=16, more=17)
        for note in o.notes:
            print_hanging(out, f"[bold]→ {_escape(note)}[/]", indent=16, more=18)
    if where:
        out.print(where)
