"""The `salvage` command line.

Exit codes: 0 success (for `check`: no risks), 1 `check` found risks or an account failed /
`status --exit-code` found a problem, 2 a user error (bad config, bad arguments, unknown event),
3 an internal error.

Only argparse is imported at module level: `salvage --help` and shell completion must not pay for
pydantic, rich or Jinja2. Each command imports what it needs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from daemon import __version__
from daemon.reasons import REASONS

# What a person does, in the order they meet it. A command not listed here still shows, under "other".
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Try it", ("demo",)),
    ("Set up", ("init", "config", "auth", "service", "completion")),
    ("Watch", ("check", "week", "status", "run")),
    ("Act", ("missed", "preview", "drafts", "done")),
    ("Look back", ("report",)),
)
EVENT_HELP = "the interview: its id (from `salvage check`), its key, or part of its title"


class _Commands:
    """Adds sub-commands and remembers their one-line help for the grouped listing."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="salvage")
        self.sub.required = True
        self.helps: dict[str, str] = {}

    def add(self, name: str, help: str) -> argparse.ArgumentParser:
        self.helps[name] = help
        return _add_sub(self.sub, name, help)

    def listing(self) -> str:
        """The commands grouped by what a person does with them."""
        width = max(len(n) for n in self.helps) + 2
        placed: set[str] = set()
        blocks: list[str] = []
        for title, names in GROUPS:
            rows = [f"  {n:<{width}}{self.helps[n]}" for n in names if n in self.helps]
            placed.update(names)
            if rows:
                blocks.append(f"{title}:\n" + "\n".join(rows))
        rest = [f"  {n:<{width}}{h}" for n, h in self.helps.items() if n not in placed]
        if rest:
            blocks.append("Other:\n" + "\n".join(rest))
        return "\n\n".join(blocks) + "\n\nRun `salvage COMMAND --help` for a command's options."


def _add_sub(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command whose one-line help is also its description."""
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, metavar="PATH",
                   help="config file (default: the platform config dir, or $SALVAGE_CONFIG)")


def _add_now(p: argparse.ArgumentParser) -> None:
    p.add_argument("--now", metavar="INSTANT",
                   help="pretend it is this instant (ISO 8601 with offset), for reproducible runs")


def _add_common(p: argparse.ArgumentParser, *, now: bool = False) -> None:
    _add_config(p)
    if now:
        _add_now(p)


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table for people (default), json for scripts")


def _add_no_poll(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-poll", action="store_true", help="use what the state store already has; read no calendar")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; every command and option carries a one-line help."""
    parser = argparse.ArgumentParser(
        prog="salvage",
        usage="salvage [OPTIONS] COMMAND [ARGS]",
        description="Watches your calendars for job interviews at risk and drafts the right email\n"
        "into your Drafts folder. It never sends anything.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"salvage {__version__}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    cmds = _Commands(parser)

    p = cmds.add("demo", "run the whole pipeline on a bundled sample calendar")
    p.add_argument("--output", "-o", type=Path, default=Path("salvage-demo"), metavar="DIR",
                   help="folder for the demo's drafts and state (default: ./salvage-demo)")
    p.add_argument("--now", metavar="INSTANT", help="demo clock (default: the sample's pinned instant)")

    p = cmds.add("init", "answer a few questions and get a working config for your own calendar")
    _add_config(p)
    p.add_argument("--non-interactive", action="store_true", help="ask nothing: take every answer from the flags")
    p.add_argument("--force", action="store_true", help="replace an existing config file")
    p.add_argument("--name", help="your name, to sign drafts with")
    p.add_argument("--email", help="your email address, the drafts' From")
    p.add_argument("--timezone", metavar="ZONE", help="your IANA timezone (default: this computer's)")
    p.add_argument("--work-days", metavar="DAYS", help="working days, e.g. mon-fri (the default) or mon,tue,thu")
    p.add_argument("--work-start", metavar="HH:MM", help="start of working hours (default 09:00)")
    p.add_argument("--work-end", metavar="HH:MM", help="end of working hours (default 17:30)")
    p.add_argument("--calendar", metavar="ICS", help="your calendar: an .ics file or its secret https:// address")
    p.add_argument("--drafts-folder", metavar="DIR", help="where drafts are written as .eml files (default ~/salvage-drafts)")

    p = cmds.add("check", "one scan: interviews and their risks (exit 1 if any risk or failed account)")
    _add_common(p, now=True)
    _add_format(p)
    _add_no_poll(p)

    p = cmds.add("run", "run the service (or one pass with --once)")
    _add_common(p, now=True)
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--dry-run", action="store_true", help="show what would be drafted; change no mailbox")

    p = cmds.add("preview", "show the draft(s) Salvage would write for an interview, and why")
    _add_common(p, now=True)
    p.add_argument("event", metavar="EVENT", help=EVENT_HELP)
    p.add_argument("--reason", choices=REASONS, help="preview with this honest reason")
    _add_no_poll(p)

    p = cmds.add("missed", "tell Salvage you missed an interview; drafts the apology now")
    _add_common(p, now=True)
    p.add_argument("event", metavar="EVENT", help=EVENT_HELP)
    p.add_argument("--reason", choices=REASONS, help="the honest reason to give (default from config)")
    p.add_argument("--no-draft", action="store_true", help="only record it; draft at the next pass")

    p = cmds.add("done", "close an interview's case: no more drafts for it")
    _add_common(p, now=True)
    p.add_argument("event", metavar="EVENT", help="case id (from `salvage check`), key, or part of the interview's title")

    p = cmds.add("drafts", "the live drafts: interview, kind, recipient, fate and where each is")
    _add_config(p)
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="table for people (default), json for scripts")
    dsub = p.add_subparsers(dest="drafts_command", metavar="ACTION")
    show = _add_sub(dsub, "show", "print one draft as its recipient will read it")
    show.add_argument("id", metavar="ID", help="the draft's id, from `salvage drafts`")
    show.add_argument("--config", "-c", type=Path, metavar="PATH", default=argparse.SUPPRESS,
                      help="config file (default: the platform config dir, or $SALVAGE_CONFIG)")

    p = cmds.add("week", "the coming days as a picture: busy time, interviews, clashes and risks")
    _add_common(p, now=True)
    p.add_argument("--days", type=int, default=7, help="how many days to draw, from today (default 7)")
    p.add_argument("--format", choices=("text", "svg", "html"), default="text",
                   help="text in the terminal (default), or the same picture as an SVG or HTML file")
    p.add_argument("--output", "-o", type=Path, metavar="FILE",
                   help="file for --format svg/html (default: ./salvage-week.svg or .html)")
    p.add_argument("--width", type=int, default=120, help="columns of the svg/html picture (default 120)")
    _add_no_poll(p)

    p = cmds.add("status", "accounts, upcoming interviews, live drafts")
    _add_common(p, now=True)
    _add_format(p)
    p.add_argument("--exit-code", action="store_true", help="exit 1 if an account is failing or needs auth")

    p = cmds.add("report", "past misses and clashes, their causes, and what to change")
    _add_common(p, now=True)
    _add_format(p)

    p = cmds.add("auth", "authorise a Google or Microsoft account, once")
    _add_common(p)
    p.add_argument("account", metavar="ACCOUNT", help="account name from the config")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--no-browser", action="store_true", help="print the URL / code instead of opening a browser")
    how.add_argument("--browser", action="store_true",
                     help="Microsoft: sign in in a browser instead of with a device code")

    p = cmds.add("config", "check the config, print the annotated example or the JSON Schema")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    v = _add_sub(csub, "validate", "check the config file and report every problem with its file and line")
    _add_common(v)
    _add_sub(csub, "example", "print the annotated example config (every option, with its default)")
    _add_sub(csub, "schema", "print the config's JSON Schema (for editor completion)")

    p = cmds.add("service", "install Salvage as a user service (systemd or launchd)")
    ssub = p.add_subparsers(dest="service_command", metavar="ACTION")
    ssub.required = True
    i = _add_sub(ssub, "install", "write a systemd user unit (Linux) or launchd plist (macOS)")
    _add_common(i)
    i.add_argument("--print", dest="print_only", action="store_true", help="print the file instead of writing it")
    _add_sub(ssub, "uninstall", "remove the unit / plist written by install")

    p = cmds.add("completion", "print the shell completion script (bash, zsh or fish)")
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="your shell")

    parser.epilog = cmds.listing()
    return parser


def setup_logging(verbose: int, fmt: str, command: str) -> None:
    """INFO for the service, WARNING for one-shot commands; -v / -vv raise it."""
    from daemon.cli.logs import configure

    if verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1 or command == "run":
        level = logging.INFO
    else:
        level = logging.WARNING
    configure(level=level, fmt=fmt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `salvage` command."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell is asking for completions: answer and exit
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_format, args.command)

    from daemon.cli.common import UserError
    from daemon.cli.output import consoles
    from daemon.config import ConfigError
    from daemon.engine.render import RenderError
    from daemon.engine.state import StateError
    from providers.base import ProviderError

    out, err = consoles()
    try:
        from daemon.cli import commands

        handler = getattr(commands, f"cmd_{args.command}")
        return int(handler(args, out) or 0)
    except ConfigError as exc:
        err.print(f"[bold red]salvage:[/] invalid configuration{f' in {exc.source}' if exc.source else ''}:", markup=True)
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False)
        return 2
    except (UserError, StateError, RenderError) as exc:
        err.print(f"salvage: {exc}", markup=False)
        return 2
    except ProviderError as exc:
        err.print(f"salvage: {exc}", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("salvage: interrupted", markup=False)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        if args.debug:
            raise
        err.print(f"salvage: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", markup=False)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
