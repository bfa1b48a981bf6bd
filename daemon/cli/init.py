"""`salvage init`: a few questions, then a commented config (mode 0600) that validates, and the next command.

Every answer can also come from a flag; `--non-interactive` asks nothing and fails plainly (exit 2) on a
missing or bad answer, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console

from daemon.cli.common import UserError, parse_now

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL = re.compile(r"(?i)^(https?|webcal)://\S+$")


T = TypeVar("T")


class Invalid(ValueError):
    """An answer that cannot be used; the message says why and what would do."""


@dataclass
class Answers:
    name: str
    email: str
    timezone: str
    days: list[str]
    start: str
    end: str
    calendar: str  # a path to an .ics file, or an http(s)/webcal URL
    drafts: Path


# ---- checking answers ---------------------------------------------------------------------------


def check_name(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise Invalid("your name signs the drafts; it cannot be empty")
    return text


def check_email(text: str) -> str:
    text = text.strip()
    if not _EMAIL.fullmatch(text):
        raise Invalid(f"{text!r} is not an email address (like you@example.com)")
    return text.lower()


def check_zone(text: str) -> str:
    text = text.strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"{text!r} is not a timezone name; use an IANA name such as Europe/London") from None
    return text


def check_days(text: str) -> list[str]:
    """``mon-fri``, ``mon,tue,thu`` or ``mon-thu,sat``."""
    days: list[str] = []
    for part in re.split(r"[,\s]+", text.strip().lower()):
        if not part:
            continue
        first, _, last = part.partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise Invalid(f"{part!r} is not a day or range of days (use e.g. mon-fri or mon,wed,fri)")
        a = DAYS.index(first[:3])
        b = DAYS.index(last[:3]) if last else a
        if b < a:
            raise Invalid(f"{part!r} runs backwards; write the earlier day first")
        days.extend(d for d in DAYS[a:b + 1] if d not in days)
    if not days:
        raise Invalid("name at least one working day")
    return [d for d in DAYS if d in days]


def check_time(text: str) -> str:
    text = text.strip()
    try:
        value = time.fromisoformat(text if len(text) != 4 else "0" + text)
    except ValueError:
        raise Invalid(f"{text!r} is not a time of day; use HH:MM, e.g. 09:00") from None
    return value.strftime("%H:%M")


def check_calendar(text: str) -> str:
    text = text.strip()
    if _URL.match(text):
        return text
    path = Path(text).expanduser()
    if not path.is_file():
        raise Invalid(f"{path} is not a file; give the path of your .ics file (export it from your calendar "
                      "app) or its secret https:// address")
    return str(path.resolve())


def check_folder(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    if path.exists() and not path.is_dir():
        raise Invalid(f"{path} exists and is not a folder")
    return path.resolve()


# ---- asking -------------------------------------------------------------------------------------


def default_name() -> str:
    try:
        import pwd

        gecos = pwd.getpwuid(os.getuid()).pw_gecos.split(",")[0].strip()
    except (ImportError, KeyError, AttributeError):
        gecos = ""
    return gecos


def detected_zone() -> str:
    """The computer's timezone (tzlocal), or UTC when it cannot be told."""
    try:
        import tzlocal

        name = tzlocal.get_localzone_name()
    except Exception:  # noqa: BLE001 - detection is a convenience; the user confirms or types it
        name = None
    try:
        return check_zone(name or "UTC")
    except Invalid:
        return "UTC"


class Asker:
    """Asks on the terminal until an answer checks out; takes a flag's value instead where one was given."""

    def __init__(self, out: Console, interactive: bool, read: Callable[[str], str] = input) -> None:
        self.out = out
        self.interactive = interactive
        self.read = read

    def ask(self, flag: str, given: str | None, question: str, default: str | None, check: Callable[[str], T]) -> T:
        if given is not None:
            try:
                return check(given)
            except Invalid as exc:
                raise UserError(f"{flag}: {exc}") from None
        if not self.interactive:
            if default is None:
                raise UserError(f"{flag} is needed with --non-interactive")
            return check(default)
        while True:
            hint = f" [{default}]" if default else ""
            try:
                reply = self.read(f"{question}{hint}: ")
            except EOFError:
                raise UserError("no answer (end of input); run `salvage init --non-interactive` with flags in scripts") from None
            reply = reply.strip() or (default or "")
            try:
                return check(reply)
            except Invalid as exc:
                self.out.print(f"  [yellow]{exc}[/]")


def gather(args: argparse.Namespace, out: Console, read: Callable[[str], str] = input) -> Answers:
    """Every answer, from flags or questions."""
    ask = Asker(out, interactive=not args.non_interactive, read=read).ask
    if not args.non_interactive:
        out.print("A few questions, then Salvage writes your config. Press Enter to take the [default].")
    name = ask("--name", args.name, "Your name (drafts are signed with it)", default_name() or None, check_name)
    email = ask("--email", args.email, "Your email address (drafts are from it)", None, check_email)
    zone = detected_zone()
    timezone = ask("--timezone", args.timezone, f"Your timezone (this computer says {zone})", zone, check_zone)
    days = ask("--work-days", args.work_days, "Working days, when new interview times may be offered", "mon-fri",
               check_days)
    start = ask("--work-start", args.work_start, "Working hours start", "09:00", check_time)
    end = ask("--work-end", args.work_end, "Working hours end", "17:30", check_time)
    while start >= end:
        message = f"working hours must end after they start ({start}–{end})"
        if not (args.work_start is None and args.work_end is None and not args.non_interactive):
            raise UserError(message)
        out.print(f"  [yellow]{message}[/]")
        start = ask("--work-start", None, "Working hours start", "09:00", check_time)
        end = ask("--work-end", None, "Working hours end", "17:30", check_time)
    if not args.non_interactive and args.calendar is None:
        out.print("Which calendar? Salvage reads an .ics file (export one from your calendar app) or a secret "
                  "iCal address (https://…). Google and Microsoft accounts: see `salvage config example`.")
    calendar = ask("--calendar", args.calendar, "Your calendar: .ics file or https:// address", None, check_calendar)
    drafts = ask("--drafts-folder", args.drafts_folder, "Folder for the drafts (.eml files you open in your mail app)",
                 str(Path("~/salvage-drafts").expanduser()), check_folder)
    return Answers(name=name, email=email, timezone=timezone, days=days, start=start, end=end, calendar=calendar,
                   drafts=drafts)


# ---- writing ------------------------------------------------------------------------------------


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def config_text(a: Answers, today: date) -> str:
    """The commented config for these answers."""
    source = f"url: {_q(a.calendar)}" if _URL.match(a.calendar) else f"path: {_q(a.calendar)}"
    return f"""\
# Salvage configuration, written by `salvage init` on {today.isoformat()}.
# Every option, with its default: `salvage config example`. Check this file: `salvage config validate`.
# Any value may be ${{ENV_VAR}}: keep secrets out of this file.

# Who you are. Drafts are signed with your name and written from your address.
user:
  name: {_q(a.name)}
  email: {_q(a.email)}
  timezone: {_q(a.timezone)}          # IANA name; working and waking hours are in this zone

# When new times for an interview may be offered.
working_hours:
  days: [{", ".join(a.days)}]
  start: "{a.start}"
  end: "{a.end}"

# Each account pairs one calendar with one place for drafts. Salvage never sends mail.
accounts:
  - name: personal
    calendar:
      type: ics
      {source}
    drafts:
      type: folder                # .eml files: open them in your mail app to review and send
      path: {_q(str(a.drafts))}
"""


def init_command(args: argparse.Namespace, out: Console) -> int:
    """Ask, write the config (0600), validate it, and say what to run next."""
    from daemon import paths
    from daemon.cli.common import account_problems
    from daemon.config import ConfigError, default_config_path, parse_config

    target = (args.config or default_config_path()).expanduser().absolute()
    interactive = not args.non_interactive
    if interactive and not sys.stdin.isatty():
        raise UserError("salvage init asks questions on a terminal; in scripts use --non-interactive with flags "
                        "(see `salvage init --help`)")
    if target.exists() and not args.force:
        if not interactive:
            raise UserError(f"{target} already exists; pass --force to replace it")
        reply = input(f"{target} already exists. Replace it? [y/N]: ").strip().lower()
        if reply not in ("y", "yes"):
            out.print("Left it as it is.")
            return 0
    answers = gather(args, out)
    text = config_text(answers, parse_now(None).astimezone(ZoneInfo(answers.timezone)).date())
    try:
        parse_config(text, target)
    except ConfigError as exc:  # the questions check every answer; this is the config's own word
        raise UserError("the answers do not make a valid config: " + "; ".join(exc.problems)) from None
    paths.secret_file(target, text)
    problems = account_problems(argparse.Namespace(config=target), parse_config(text, target))
    out.print(f"Wrote {target} (readable only by you).")
    for problem in problems:
        out.print(f"  [yellow]{problem}[/]")
    out.print("Config OK." if not problems else "Fix the above, then check again with `salvage config validate`.")
    flag = "" if target == default_config_path().expanduser().absolute() else f" --config {target}"
    out.print(f"Next: [bold]salvage check{flag}[/] — the interviews it finds in your calendar, and their risks.")
    return 0
