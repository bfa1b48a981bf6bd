"""The `salvage` command line.

Exit codes: 0 success (for `check`: no risks), 1 `check` found risks / `status --exit-code` found a
problem, 2 a user error (bad config, bad arguments, unknown event), 3 an internal error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from daemon import __version__
from daemon.cli.common import UserError
from daemon.cli.terminal import SafeConsole
from daemon.config import REASONS, ConfigError
from daemon.engine.render import RenderError
from daemon.engine.state import StateError
from providers.base import ProviderError


def _add_common(p: argparse.ArgumentParser, *, now: bool = False) -> None:
    p.add_argument("--config", "-c", type=Path, help="config file (default: the platform config dir)")
    if now:
        p.add_argument("--now", help="pretend it is this instant (ISO 8601 with offset), for reproducible runs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salvage",
        description="Watches your calendars for job interviews at risk and drafts the right email.",
    )
    parser.add_argument("--version", action="version", version=f"salvage {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="run the whole pipeline on a bundled sample calendar")
    p.add_argument("--output", "-o", type=Path, default=Path("salvage-demo"), help="folder for drafts and state")
    p.add_argument("--now", help="demo clock (default: the sample's pinned instant)")

    p = sub.add_parser("check", help="one scan: interviews and their risks (exit 1 if any risk)")
    _add_common(p, now=True)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--no-poll", action="store_true", help="use what the state store already has")

    p = sub.add_parser("run", help="run the service (or one pass with --once)")
    _add_common(p, now=True)
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--dry-run", action="store_true", help="show what would be drafted; change no mailbox")

    p = sub.add_parser("preview", help="show the draft(s) Salvage would write for an event")
    _add_common(p, now=True)
    p.add_argument("event", help="event id (from `salvage check`), key, or part of its title")
    p.add_argument("--reason", choices=REASONS, help="preview with this reason")
    p.add_argument("--no-poll", action="store_true", help="use what the state store already has")

    p = sub.add_parser("missed", help="tell Salvage you missed an interview")
    _add_common(p, now=True)
    p.add_argument("event", help="event id (from `salvage check`), key, or part of its title")
    p.add_argument("--reason", choices=REASONS, help="the honest reason to give (default from config)")
    p.add_argument("--no-draft", action="store_true", help="only record it; draft at the next pass")

    p = sub.add_parser("done", help="close an interview's case: no more drafts for it")
    _add_common(p, now=True)
    p.add_argument("event", help="case id (from `salvage check`), key, or part of the interview's title")

    p = sub.add_parser("status", help="accounts, upcoming interviews, live drafts")
    _add_common(p, now=True)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--exit-code", action="store_true", help="exit 1 if an account is failing or needs auth")

    p = sub.add_parser("report", help="past misses and clashes, their causes, and what to change")
    _add_common(p, now=True)
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("auth", help="authorise an account (Google / Microsoft)")
    _add_common(p)
    p.add_argument("account", help="account name from the config")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--no-browser", action="store_true", help="print the URL / code instead of opening a browser")
    how.add_argument("--browser", action="store_true",
                     help="Microsoft: sign in in a browser instead of with a device code")

    p = sub.add_parser("config", help="validate the config or print its JSON Schema")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    v = csub.add_parser("validate", help="check the config file and report every problem")
    _add_common(v)
    csub.add_parser("schema", help="print the config's JSON Schema (for editor completion)")

    p = sub.add_parser("service", help="install Salvage as a user service")
    ssub = p.add_subparsers(dest="service_command", metavar="ACTION")
    ssub.required = True
    i = ssub.add_parser("install", help="write a systemd user unit (Linux) or launchd plist (macOS)")
    _add_common(i)
    i.add_argument("--print", dest="print_only", action="store_true", help="print the file instead of writing it")
    ssub.add_parser("uninstall", help="remove the unit / plist written by install")
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
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_format, args.command)
    out = SafeConsole(highlight=False, soft_wrap=True)
    err = SafeConsole(stderr=True, highlight=False, soft_wrap=True)
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
