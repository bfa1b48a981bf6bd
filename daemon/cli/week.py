"""`salvage week`: the coming days as a timeline, one row per day, to look at rather than read.

Each row is a day; each cell a slice of its waking hours. Working hours are marked, busy time shaded,
each interview drawn with its own letter (coloured by its worst risk), a clash as ``!``, now as ``|``.
Under each day, one line per interview: its letter, time, title, risks and the planned draft.
``--format svg`` / ``html`` record the same rendering and write it to a file (rich's exporters).
"""

from __future__ import annotations

import argparse
import io
import string
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from rich.console import Console
from rich.text import Text

from daemon.cli.common import UserError
from daemon.cli.output import hanging
from daemon.config import Config
from daemon.core.ids import short_id
from daemon.core.model import Event, Risk, Severity
from daemon.core.text import strip_invisible
from daemon.engine.pipeline import Evaluation

LABEL = 7  # "Tue 24 "
GLYPH = {"off": " ", "work": "·", "busy": "░", "clash": "!", "now": "|"}
STYLE = {"off": "", "work": "dim", "busy": "grey62", "clash": "bold white on red", "now": "bold magenta"}
SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
SEVERITY_MARK = {Severity.CRITICAL: "✗", Severity.WARNING: "!", Severity.INFO: "i"}
OK_STYLE = "bold green"
LETTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits


@dataclass
class Slot:
    """An interview placed on the picture."""

    letter: str
    event: Event
    start: datetime
    end: datetime
    risks: list[Risk]
    drafts: list[str]

    @property
    def style(self) -> str:
        worst = min((r.severity for r in self.risks), key=_severity_rank, default=None)
        return SEVERITY_STYLE[worst] if worst is not None else OK_STYLE


@dataclass
class Day:
    day: date
    cells: list[str]  # "off", "work", "busy", "clash", "now", or an interview letter
    slots: list[Slot] = field(default_factory=list)
    all_day: list[str] = field(default_factory=list)  # titles of all-day busy entries (e.g. time off)
    clashing: set[str] = field(default_factory=set)  # letters whose first cell is drawn over busy time


@dataclass
class Week:
    days: list[Day]
    first_hour: int
    last_hour: int  # exclusive
    width: int  # cells per day
    styles: dict[str, str]

    @property
    def minutes_per_cell(self) -> float:
        return (self.last_hour - self.first_hour) * 60 / self.width


def _severity_rank(severity: Severity) -> int:
    return {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}[severity]


def _clip(start: datetime, end: datetime, lo: datetime, hi: datetime) -> tuple[datetime, datetime] | None:
    s, e = max(start, lo), min(end, hi)
    return (s, e) if s < e else None


def build_week(evaluation: Evaluation, config: Config, now: datetime, *, days: int, width: int) -> Week:
    """The picture's content, for ``days`` days from today (in the user's zone) at ``width`` columns. Pure."""
    tz = config.user.zone
    today = now.astimezone(tz).date()
    dates = [today + timedelta(days=i) for i in range(days)]
    waking = config.detection.waking_hours
    work = config.working_hours
    first, last = min(waking.start.hour, work.start.hour), max(_ceil_hour(waking.end), _ceil_hour(work.end))
    interviews = {e.occurrence_key for e in evaluation.interviews}
    timed = [e for e in evaluation.events if not e.all_day and e.blocks_time]
    for event in timed:  # widen the hours so that nothing in the week falls off the edge
        start, end = (t.astimezone(tz) for t in event.span(tz))
        if start.date() in dates:
            first = min(first, start.hour)
        if end.date() in dates and end.time() != time(0):
            last = max(last, _ceil_hour(end.time()))
    cells_width = max(24, width - LABEL)
    letters = iter(LETTERS)
    out: list[Day] = []
    for day in dates:
        lo = datetime.combine(day, time(first), tzinfo=tz)
        hi = datetime.combine(day, time(0), tzinfo=tz) + timedelta(hours=last)
        step = (hi - lo) / cells_width
        bounds = [(lo + step * i, lo + step * (i + 1)) for i in range(cells_width)]
        working = day.strftime("%a").lower() in work.days
        cells = ["work" if working and _inside(a, b, day, work.start, work.end, tz) else "off" for a, b in bounds]
        row = Day(day=day, cells=cells)
        busy: list[tuple[datetime, datetime]] = []
        for event in timed:
            if event.occurrence_key in interviews:
                continue
            span = _clip(*event.span(tz), lo, hi)
            if span:
                busy.append(span)
                _paint(cells, bounds, span, "busy")
        for event in evaluation.events:
            if event.all_day and event.blocks_time and _covers(event, day, tz):
                row.all_day.append(event.title)
                cells[:] = ["busy"] * len(cells)  # time off or an all-day commitment: the whole day is taken
        for event in sorted((e for e in evaluation.interviews if not e.all_day), key=lambda e: e.span(tz)[0]):
            span = _clip(*event.span(tz), lo, hi)
            if span is None:
                continue
            slot = Slot(letter=next(letters, "?"), event=event, start=span[0], end=span[1],
                        risks=evaluation.risks_for(event.occurrence_key),
                        drafts=[a.kind.value for a in evaluation.actions_for(event.occurrence_key)])
            row.slots.append(slot)
            lead = True
            for i, (a, b) in enumerate(bounds):
                if a < span[1] and span[0] < b:
                    taken = cells[i] in ("busy", "clash") or len(cells[i]) == 1  # busy, or another interview
                    # the first cell always carries the letter, so a clashing interview can still be found
                    cells[i] = slot.letter if lead or not taken else "clash"
                    if taken and lead:
                        row.clashing.add(slot.letter)
                    lead = False
        if lo <= now < hi:
            cells[min(cells_width - 1, int((now - lo) / step))] = "now"
        out.append(row)
    styles = {s.letter: s.style for d in out for s in d.slots}
    return Week(days=out, first_hour=first, last_hour=last, width=cells_width, styles=styles)


def _ceil_hour(t: time) -> int:
    return t.hour + (1 if (t.minute or t.second) else 0) if t != time(0) else 24


def _inside(a: datetime, b: datetime, day: date, start: time, end: time, tz: tzinfo) -> bool:
    mid = a + (b - a) / 2
    return datetime.combine(day, start, tzinfo=tz) <= mid < datetime.combine(day, end, tzinfo=tz)


def _covers(event: Event, day: date, tz: tzinfo) -> bool:
    start, end = event.span(tz)
    lo = datetime.combine(day, time(0), tzinfo=tz)
    return start < lo + timedelta(days=1) and lo < end


def _paint(cells: list[str], bounds: list[tuple[datetime, datetime]], span: tuple[datetime, datetime],
           kind: str) -> None:
    for i, (a, b) in enumerate(bounds):
        if a < span[1] and span[0] < b:
            cells[i] = kind


# ---- drawing ------------------------------------------------------------------------------------


def ruler(week: Week) -> Text:
    """Hour labels above the rows, every hour that has room (every second or third when narrow)."""
    hours = week.last_hour - week.first_hour
    per_hour = week.width / hours
    every = next(n for n in (1, 2, 3, 4, 6) if per_hour * n >= 3)
    line = [" "] * (LABEL + week.width)
    for h in range(week.first_hour, week.last_hour, every):
        at = LABEL + round((h - week.first_hour) * per_hour)
        label = f"{h % 24:02d}"
        if at + len(label) <= len(line) and all(c == " " for c in line[max(0, at - 1):at + len(label)]):
            line[at:at + len(label)] = label
    return Text("".join(line).rstrip(), style="dim")


def day_row(day: Day, week: Week) -> Text:
    text = Text(day.day.strftime("%a %d").ljust(LABEL), style="bold" if day.slots else "")
    for cell in day.cells:
        if cell in GLYPH:
            text.append(GLYPH[cell], style=STYLE[cell])
        elif cell in day.clashing:
            text.append(cell, style=STYLE["clash"])
        else:
            text.append(cell, style=week.styles.get(cell, ""))
    text.rstrip()
    return text


def slot_tokens(slot: Slot, tz: tzinfo) -> list[Text]:
    """The pieces of an interview's line, each kept whole when the line wraps:
    ``A 14:00–15:00 Technical interview - Acme [33785335] ✗ double_booked → reschedule_request``."""
    start, end = slot.event.span(tz)
    tokens = [Text(slot.letter, style=slot.style), Text(f"{start.astimezone(tz):%H:%M}–{end.astimezone(tz):%H:%M}")]
    tokens += [Text(word, style="bold") for word in strip_invisible(slot.event.title).split()]
    tokens.append(Text(f"[{short_id(slot.event.occurrence_key)}]", style="dim"))
    for risk in sorted(slot.risks, key=lambda r: _severity_rank(r.severity)):
        tokens.append(Text(f"{SEVERITY_MARK[risk.severity]} {risk.kind.value}", style=SEVERITY_STYLE[risk.severity]))
    if not slot.risks:
        tokens.append(Text("✓ no risk", style=OK_STYLE))
    tokens += [Text(f"→ {kind}") for kind in slot.drafts]
    return tokens


def wrap_tokens(tokens: list[Text], width: int, *, indent: int, more: int) -> list[Text]:
    """Tokens joined by spaces into lines of at most ``width`` cells (a longer token gets a line of its own)."""
    lines: list[Text] = []
    line = Text(" " * indent)
    filled = False
    for token in tokens:
        if filled and line.cell_len + 1 + token.cell_len > width:
            lines.append(line)
            line, filled = Text(" " * more), False
        if filled:
            line.append(" ")
        line.append_text(token)
        filled = True
    lines.append(line)
    return lines


def legend(week: Week) -> Text:
    minutes = week.minutes_per_cell
    step = f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"
    text = Text("A-Z ", style="bold")
    text.append("interview   ")
    text.append("░", style=STYLE["busy"])
    text.append(" busy   ")
    text.append("·", style=STYLE["work"])
    text.append(" working hours   ")
    text.append("!", style=STYLE["clash"])
    text.append(" clash   ")
    text.append("|", style=STYLE["now"])
    text.append(f" now   (one cell = {step})")
    return text


def draw(week: Week, config: Config, console: Console, title: str) -> None:
    """Print the picture on ``console``, fitted to ``console.width``."""
    tz = config.user.zone
    console.print(Text(title, style="bold"), soft_wrap=True)
    console.print(legend(week), soft_wrap=False)
    console.print(ruler(week), soft_wrap=True)
    for day in week.days:
        console.print(day_row(day, week), soft_wrap=True)
        for note in day.all_day:
            for line in hanging(console, Text(f"all day: {strip_invisible(note)}", style="grey62"), console.width,
                                indent=LABEL):
                console.print(line, soft_wrap=True)
        for slot in day.slots:
            for line in wrap_tokens(slot_tokens(slot, tz), console.width, indent=LABEL, more=LABEL + 2):
                console.print(line, soft_wrap=True)


def week_command(args: argparse.Namespace, out: Console, evaluation: Evaluation, config: Config,
                 now: datetime) -> int:
    """Draw the coming days in the terminal, or write the same picture to an SVG or HTML file."""
    local = now.astimezone(config.user.zone)
    title = f"The next {args.days} days for {config.user.name} ({config.user.timezone}), from {local:%a %d %b %H:%M}"
    if args.format == "text":
        draw(build_week(evaluation, config, now, days=args.days, width=out.width), config, out, title)
        return 0
    width = args.width
    recorder = Console(record=True, width=width, force_terminal=True, color_system="truecolor", file=io.StringIO())
    draw(build_week(evaluation, config, now, days=args.days, width=width), config, recorder, title)
    target: Path = args.output or Path(f"salvage-week.{args.format}")
    try:
        if args.format == "svg":
            target.write_text(recorder.export_svg(title="salvage week"), encoding="utf-8")
        else:
            target.write_text(recorder.export_html(inline_styles=True), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    out.print(f"Wrote {target} ({width} columns).")
    return 0
