"""Rendering drafts: Jinja2 templates (plain text, optional HTML twin) per action kind.

Built-in templates live in the ``daemon.templates`` package (English at its root, other languages
in a folder named by ``drafts.language``); a file with the same name in ``drafts.templates_dir``
wins. The built-in HTML twins render the plain-text body as paragraphs, so the two always agree. Templates see only plain data prepared here (strings, lists, dicts):
the interview's own event and the action, never the conflicting event, never ``action.notes`` or
``action.explanation`` (those are for the user). Event text is untrusted: it is passed as values
(never compiled as a template), rendered in a sandbox, escaped in HTML, and cleaned of control
characters, encoded-words and spoofing display names (:mod:`daemon.core.text`) before it goes
near a header.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    FunctionLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from daemon.config import REASONS, TIME_ZONE_REASON, Config
from daemon.core.model import Action, ActionKind, CaseFacts, Event, Mode, Person, Slot, utc_now
from daemon.core.normalize import zone
from daemon.core.text import display_name, msg_id, one_line
from daemon.engine import writing
from providers.base import Address, DraftMessage, ThreadInfo

log = logging.getLogger(f"salvage.{__name__}")

PARTS = ("subject", "txt", "html")
SHORT_NOTICE = timedelta(hours=24)
FEW_DAYS = timedelta(hours=72)
# Reasons after which "could we still meet now?" is a fair question (not after illness or a family
# emergency); onsite, only a transport delay: the user is on the way.
_NOW_OK = frozenset({"scheduling_conflict", "own_mistake", "technical_problem", "transport_delay", "current_job"})
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u0085]")
_INNER_SPACES = re.compile(r"(?<=\S) {2,}")  # e.g. where an empty reason sentence was left out


class RenderError(ValueError):
    """A draft could not be rendered (unknown reason, broken override template…)."""


def template_name(kind: ActionKind, part: str) -> str:
    """The file name of one part (``subject``, ``txt`` or ``html``) of a kind's template."""
    return f"{kind.value}.{part}.j2"


TEMPLATE_NAMES: frozenset[str] = frozenset(
    {template_name(kind, part) for kind in ActionKind for part in PARTS}
    | {"_macros.j2", "_macros.html.j2", "_writing.j2"}
)


# ---- the Jinja environment ----------------------------------------------------------------------


def _language_neutral(name: str) -> bool:
    """The HTML twins and their macros only lay out the text body: one set serves every language."""
    return name.endswith(".html.j2")


def _builtin_loader(language: str = "en") -> BaseLoader:
    root = resources.files("daemon.templates")

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        item = root.joinpath(name) if language == "en" else root.joinpath(language, name)
        if not item.is_file() and language != "en" and _language_neutral(name):
            item = root.joinpath(name)
        if not item.is_file():
            return None
        return item.read_text(encoding="utf-8"), str(item), lambda: True

    return FunctionLoader(load)


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html.j2"))


@pass_context
def _variant(context: Context, name: str, count: int) -> int:
    """``variant("opening", 3)`` in a template: 0, 1 or 2, stable for this case, spread across cases."""
    return writing.variant(str(context.get("variant_seed", "")), str(name), int(count))


def text_to_html(text: str) -> Markup:
    """A plain-text body as HTML: blank lines part paragraphs, "- " lines make a list, all escaped."""
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        items = [line for line in lines if line.startswith("- ")]
        lead = [line for line in lines if not line.startswith("- ")]
        if items and lines[: len(lead)] == lead:
            if lead:
                blocks.append("<p>" + "<br>\n".join(str(escape(line)) for line in lead) + "</p>")
            blocks.append("<ul>\n" + "\n".join(f"<li>{escape(i[2:])}</li>" for i in items) + "\n</ul>")
        else:
            blocks.append("<p>" + "<br>\n".join(str(escape(line)) for line in lines) + "</p>")
    return Markup("\n".join(blocks))


def _environment(templates_dir: Path | None, language: str = "en") -> SandboxedEnvironment:
    loaders: list[BaseLoader] = []
    if templates_dir is not None:
        loaders.append(FileSystemLoader(str(templates_dir), encoding="utf-8", followlinks=True))
    loaders.append(_builtin_loader(language))
    env = SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=_autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["variant"] = _variant
    env.filters["paragraphs"] = text_to_html
    return env


# ---- formatting dates and times -----------------------------------------------------------------


def _day(value: date, language: str = "en") -> str:
    return writing.day_text(value, language)


def zone_label(value: datetime) -> str:
    """The zone abbreviation of an aware datetime (``GMT``, ``EDT``); ``UTC+5:30`` when it has none."""
    name = value.tzname() or ""
    if name and not re.match(r"^(UTC|GMT)?[+\-\d]", name):
        return name
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _range(start: datetime, end: datetime, tz: tzinfo, language: str = "en") -> tuple[str, str, date, str]:
    """(with day, without day, local start date, start time with zone) for an interval shown in ``tz``."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    sa, ea = writing.zone_word(zone_label(s), language), writing.zone_word(zone_label(e), language)
    hours = " Uhr" if language == "de" else ""
    ends_same_day = e.date() == s.date() or (e.date() == s.date() + timedelta(days=1) and e.hour == e.minute == 0)
    at = f"{s:%H:%M}{hours} {sa}"
    if ends_same_day:
        times = f"{s:%H:%M}–{e:%H:%M}{hours} {sa}" if sa == ea else f"{s:%H:%M} {sa} – {e:%H:%M}{hours} {ea}"
        return f"{_day(s.date(), language)}, {times}", times, s.date(), at
    full = f"{_day(s.date(), language)}, {s:%H:%M} {sa} – {_day(e.date(), language)}, {e:%H:%M}{hours} {ea}"
    return full, full, s.date(), at


def when(start: datetime, end: datetime, user_tz: tzinfo, their_tz: tzinfo | None,
         language: str = "en") -> dict[str, Any]:
    """How templates see a time range: ``theirs`` (recipient's zone, or None) and ``mine`` (user's)."""
    mine, mine_times, my_day, my_at = _range(start, end, user_tz, language)
    theirs: str | None = None
    their_day = my_day
    their_at = my_at
    if their_tz is not None:
        text, _, their_day, at = _range(start, end, their_tz, language)
        if text != mine:
            theirs, their_at = text, at
    return {
        "theirs": theirs,
        "mine": mine,
        # In "(… for me)" the day is repeated only when it differs from the recipient's.
        "mine_short": mine_times if their_day == my_day else mine,
        "day": _day(their_day if theirs else my_day, language),
        # The start alone ("09:30 GMT"), in the recipient's zone when shown there.
        "time": their_at,
        "time_mine": my_at,
        "all_day": False,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def when_dates(start: date, end: date, language: str = "en") -> dict[str, Any]:
    """How templates see an all-day range (end exclusive): dates only, no zones."""
    last = max(start, end - timedelta(days=1))
    joiner = " bis " if language == "de" else " to "
    text = _day(start, language) if last == start else f"{_day(start, language)}{joiner}{_day(last, language)}"
    return {
        "theirs": None,
        "mine": text,
        "mine_short": text,
        "day": _day(start, language),
        "time": "",
        "time_mine": "",
        "all_day": True,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


# ---- the context templates see ------------------------------------------------------------------


def _clean(text: str, limit: int = 200) -> str:
    return one_line(text or "", limit)


_INTERVIEW_PREFIX = re.compile(r"^\s*interview\s*[:\-–—|]\s*", re.IGNORECASE)


def _topic(title: str) -> str:
    """The title for a subject after "...our interview": without a leading "Interview:" to repeat."""
    rest = _INTERVIEW_PREFIX.sub("", title, count=1)
    return rest if rest.strip() else title


def _usable_name(p: Person) -> str:
    name = display_name(p.name, 100)
    if not name or name.lower() == p.email.lower():
        return ""
    return name


def _join_names(names: list[str], language: str = "en") -> str:
    return writing.join_names(names, language)


def _signature_lines(signature: str | None) -> list[str]:
    if not signature:
        return []
    lines = [_BODY_CONTROL.sub(" ", line).rstrip() for line in signature.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _sender(config: Config, account_name: str) -> Address:
    for account in config.accounts:
        if account.name == account_name and account.email:
            return Address(account.email, _clean(config.user.name, 100))
    return Address(config.user.email, _clean(config.user.name, 100))


def _their_zone(action: Action) -> tzinfo | None:
    return zone(action.recipient_timezone) if action.recipient_timezone else None


def _greeting(action: Action, language: str) -> tuple[str, str, str, list[dict[str, str]]]:
    """(first names joined, team's company, kind of greeting, recipients) for the salutation."""
    people = [(p, writing.addressee(p, _usable_name(p))) for p in action.recipients]
    persons = [a for _, a in people if a.kind == "person"]
    teams = [a for _, a in people if a.kind == "team"]
    recipients = [{"name": _usable_name(p), "email": p.email, "first": a.first, "full": a.full, "kind": a.kind}
                  for p, a in people]
    if persons:
        key = "full" if language == "de" else "first"  # German greets formally, by the whole name
        return _join_names([getattr(a, key) for a in persons], language), "", "person", recipients
    if teams:
        return "", teams[0].company, "team", recipients
    return "", "", "unknown", recipients


def _notice(until: timedelta) -> str:
    if until < SHORT_NOTICE:
        return "short"
    return "days" if until < FEW_DAYS else "ample"


def build_context(config: Config, action: Action, event: Event, now: datetime) -> dict[str, Any]:
    """The variables every template receives (documented in docs/templates.md)."""
    language = config.drafts.language
    user_tz = config.user.zone
    their_tz = _their_zone(action)
    shown_tz = their_tz or user_tz
    if isinstance(event.start, datetime) and isinstance(event.end, datetime):
        interview_when = when(event.start, event.end, user_tz, their_tz, language)
        starts, ends = event.start, event.end
    else:
        assert isinstance(event.start, date) and isinstance(event.end, date)
        interview_when = when_dates(event.start, event.end, language)
        starts, ends = event.span(user_tz)
    until = starts - now
    window_open = starts <= now < ends
    mode = action.mode.value
    # Seeds: "If you could attend the meeting in short order, you could ask if the hiring manager is
    # available to see you now" — not once its window has passed, and not after a reason that rules it out.
    still_open = window_open and action.reason in _NOW_OK and (
        action.mode is not Mode.ONSITE or action.reason == "transport_delay")
    names, team, greeting_kind, recipients = _greeting(action, language)
    title = "" if event.is_private else _clean(event.title, 150)
    return {
        "kind": action.kind.value,
        "reason": action.reason,
        "language": language,
        "variant_seed": f"{action.occurrence_key}\x1f{action.kind.value}",
        "greeting_name": names,
        "greeting_team": team,
        "greeting_kind": greeting_kind,
        "recipients": recipients,
        "user": {
            "name": _clean(config.user.name, 100),
            "email": config.user.email,
            "phone": _clean(config.user.phone or "", 60),
            "signature_lines": _signature_lines(config.user.signature),
        },
        "interview": {
            "title": title,
            "topic": _topic(title) if title else "",
            "noun": writing.interview_noun(title, language),
            "mode": mode,
            "when": interview_when,
            "day": interview_when["day"],
            "all_day": event.all_day,
            "notice": _notice(until),
            "short_notice": timedelta(0) <= until < SHORT_NOTICE,
            "relative": "" if event.all_day else writing.relative_day(starts, now, shown_tz),
            "window_open": window_open,
            "still_open": still_open,
            "just_missed": still_open,  # the name older templates used
        },
        "case": _case_context(action, event, user_tz, their_tz, language),
        "probable": when(action.probable.start, action.probable.end, user_tz, their_tz, language)
        if action.probable else None,
        "hours_overlap": action.hours_overlap,
        "slots": [when(s.start, s.end, user_tz, their_tz, language) for s in action.slots],
    }


def _case_context(action: Action, event: Event, user_tz: tzinfo, their_tz: tzinfo | None,
                  language: str = "en") -> dict[str, Any]:
    """The interview's story so far (from its case, ``action.case``), for wording."""
    facts = action.case
    start = event.span(user_tz)[0]

    def at(slot: Slot | None) -> dict[str, Any] | None:
        return when(slot.start, slot.end, user_tz, their_tz, language) if slot is not None else None

    original = facts.original if facts.original is None or facts.original.start != start else None
    return {
        "after_miss": facts.follows_miss,
        "follows_miss": facts.follows_miss,
        "apology_sent": facts.apology_sent,
        "prior_contact": facts.prior_contact,
        "original": at(original),  # none when it is the interview's own (unmoved) time
        "rebooked": at(facts.rebooked),
        "agreed": facts.agreed,
        "previous_requests": facts.previous_requests,
    }


# ---- text clean-up ------------------------------------------------------------------------------


def tidy(text: str) -> str:
    """``\\n`` line endings, single inner spaces, at most one blank line in a row, one final newline."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for line in text.split("\n"):
        line = _INNER_SPACES.sub(" ", _BODY_CONTROL.sub(" ", line)).rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def reply_subject(subject: str) -> str:
    """``Re: subject`` unless it already starts with Re:."""
    cleaned = _clean(subject, 250)
    return cleaned if re.match(r"(?i)^re\s*:", cleaned) else f"Re: {cleaned}"


# ---- the renderer -------------------------------------------------------------------------------


def _template_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost template file and line in a traceback (Jinja rewrites frames to point there)."""
    found: tuple[str, int] | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _describe(exc: BaseException, name: str) -> str:
    if isinstance(exc, TemplateSyntaxError):
        where = exc.filename or exc.name or name
        return f"{where}:{exc.lineno}: syntax error: {exc.message}"
    if isinstance(exc, TemplateNotFound):
        return f"{name}: template not found: {exc.name}"
    frame = _template_frame(exc.__traceback__)
    where = f"{frame[0]}:{frame[1]}" if frame else name
    message = getattr(exc, "message", None) or str(exc)
    return f"{where}: {type(exc).__name__}: {message}"


class Renderer:
    """Renders an :class:`Action` for an interview into a :class:`DraftMessage`."""

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.clock = clock
        folder = config.drafts.templates_dir
        if folder is not None and not folder.is_dir():
            log.warning("drafts.templates_dir %s is not a folder; using the built-in templates", folder)
        self.env = _environment(folder, config.drafts.language)

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except Exception as exc:  # a user's template can fail in any way; name the file and line
            raise RenderError(f"cannot render {name}: {_describe(exc, name)}") from None

    def render(
        self,
        action: Action,
        event: Event,
        *,
        thread: ThreadInfo | None = None,
        now: datetime | None = None,
    ) -> DraftMessage:
        """The draft for ``action`` about its interview ``event`` (a reply to ``thread`` if given)."""
        if action.reason not in REASONS and action.reason != TIME_ZONE_REASON:
            raise RenderError(f"unknown reason {action.reason!r}; choose one of: {', '.join(REASONS)}")
        moment = now or self.clock()
        if moment.utcoffset() is None:
            raise RenderError("render: 'now' must be timezone-aware")
        context = build_context(self.config, action, event, moment)
        subject = _clean(self._render(template_name(action.kind, "subject"), context), 250)
        text = tidy(self._render(template_name(action.kind, "txt"), context))
        html = None
        if self.config.drafts.html:
            html = tidy(self._render(template_name(action.kind, "html"), {**context, "text_body": text}))
        in_reply_to: str | None = None
        references: tuple[str, ...] = ()
        thread_id: str | None = None
        if thread is not None:
            if thread.subject and thread.subject.strip():
                subject = reply_subject(thread.subject)
            # The invitation's ids come from whoever sent it: only plain <id> tokens are kept.
            in_reply_to = msg_id(thread.message_id or "")
            if in_reply_to:
                refs = [r for r in (msg_id(ref) for ref in thread.references) if r]
                if in_reply_to not in refs:
                    refs.append(in_reply_to)
                references = tuple(refs)
            thread_id = thread.thread_id
        to = tuple(Address(p.email, _usable_name(p)) for p in action.recipients)
        return DraftMessage(
            key=action.key,
            sender=_sender(self.config, action.account),
            to=to,
            subject=subject,
            text=text,
            html=html,
            in_reply_to=in_reply_to,
            references=references,
            thread_id=thread_id,
            occurrence_key=action.occurrence_key,
        )


# ---- checking an override folder ----------------------------------------------------------------


def _sample() -> tuple[Action, Event]:
    tz = ZoneInfo("Europe/London")
    start = datetime(2030, 3, 12, 14, 0, tzinfo=tz)
    event = Event(
        account="sample",
        source_id="sample-interview",
        title="Interview",
        start=start,
        end=start + timedelta(hours=1),
        organizer=Person(email="recruiter@example.com", name="Sam Recruiter"),
    )
    slots = tuple(Slot(start + timedelta(days=d), start + timedelta(days=d, hours=1)) for d in (1, 2, 3))
    action = Action(
        kind=ActionKind.RESCHEDULE,
        account="sample",
        occurrence_key=event.occurrence_key,
        recipients=(event.organizer,) if event.organizer else (),
        slots=slots,
        recipient_timezone="America/New_York",
    )
    return action, event


def _override_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.endswith(".j2"):
            yield path


def template_problems(config: Config) -> list[str]:
    """Problems with the templates (override folder missing, syntax errors, failing renders), named."""
    folder = config.drafts.templates_dir
    problems: list[str] = []
    if folder is not None:
        if not folder.exists():
            return [f"drafts.templates_dir: {folder} does not exist"]
        if not folder.is_dir():
            return [f"drafts.templates_dir: {folder} is not a folder"]
    env = _environment(folder, config.drafts.language)
    names = set(TEMPLATE_NAMES)
    if folder is not None:
        try:
            files = list(_override_files(folder))
        except OSError as exc:
            return [f"drafts.templates_dir: cannot read {folder}: {exc.strerror or exc}"]
        for path in files:
            if path.name not in TEMPLATE_NAMES and not path.name.startswith("_"):
                problems.append(
                    f"{path}: not a template name Salvage uses (e.g. reschedule_request.txt.j2; "
                    "helper files must start with '_'), so it is ignored"
                )
            names.add(path.name)
    broken: set[str] = set()
    for name in sorted(names):
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            broken.add(name)
            problems.append(_describe(exc, name))
        except UnicodeDecodeError:
            broken.add(name)
            problems.append(f"{folder / name if folder else name}: not UTF-8 text")
        except TemplateNotFound:
            continue
    if broken:
        return problems
    # Compiling is not enough: a misspelt variable only fails when rendered.
    action, event = _sample()
    renderer = Renderer(config.model_copy(update={"drafts": config.drafts.model_copy(update={"html": True})}))
    seen: set[str] = set()
    now = datetime(2030, 3, 9, 12, 0, tzinfo=config.user.zone)
    # The branches a built-in takes: each reason-bearing kind with each reason in each mode, at the
    # moment that kind is drafted (a missed one both during and after its window), and the others
    # in each mode with each set of case facts.
    start = event.span(config.user.zone)[0]
    rebooked = Slot(start + timedelta(days=5), start + timedelta(days=5, hours=1))
    cases = (CaseFacts(), CaseFacts(follows_miss=True, apology_sent=True, rebooked=rebooked, agreed=True,
                                    previous_requests=1), CaseFacts(follows_miss=True, agreed=False))
    moments = {ActionKind.RESCHEDULE: (now, start - timedelta(hours=3)),
               ActionKind.MISSED: (start + timedelta(minutes=15), start + timedelta(hours=3)),
               ActionKind.FOLLOW_UP: (start + timedelta(days=1),)}
    variants: list[Action] = []
    moment_of: list[datetime] = []
    turn = 0
    for kind in ActionKind:
        reasons = (*REASONS, TIME_ZONE_REASON) if kind in moments else ("scheduling_conflict",)
        for reason in reasons:
            for mode in Mode:
                for case in cases if kind not in moments else (cases[turn % len(cases)],):
                    turn += 1
                    variants.append(replace(action, kind=kind, reason=reason, mode=mode, case=case,
                                            probable=rebooked if turn % 2 else None,
                                            hours_overlap=bool(turn % 3), slots=action.slots if turn % 4 else ()))
                    options = moments.get(kind, (now,))
                    moment_of.append(options[turn % len(options)])
    for variant, moment in zip(variants, moment_of, strict=True):
        try:
            renderer.render(variant, event, now=moment)
        except RenderError as exc:
            if str(exc) not in seen:
                seen.add(str(exc))
                problems.append(str(exc))
    return problems
