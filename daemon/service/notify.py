"""The "call them first" notification: the configured command, else the desktop's own notifier.

By default (``notify.desktop``) a missed interview pops up a desktop notification where the platform
has a notifier: ``notify-send`` on Linux, ``osascript`` on macOS (the message is passed as an argument
to a fixed script, never spliced into it). Where neither exists it is a silent no-op, said once in
the log at info level.

``notify.command`` is an argv list; ``{message}`` and ``{phone}`` are replaced inside each argument
(one pass of plain text replacement: other braces are left alone, and a ``{phone}`` inside the
message stays literal). The substituted text is never parsed by a shell, so ``$(...)``, ``;`` or
quotes in an event title reach the program as ordinary characters. A missing program, a non-zero
exit or a timeout is logged and otherwise ignored: a notification is a nicety, the draft is what
matters.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo

log = logging.getLogger(f"salvage.{__name__}")

TIMEOUT_SECONDS = 10.0
_PLACEHOLDER = re.compile(r"\{(message|phone)\}")


# macOS: the message arrives as `item 1 of argv`, so no quote in it can change the script.
_OSASCRIPT = ("osascript", "-e", "on run argv", "-e",
              'display notification (item 1 of argv) with title "Salvage" subtitle "Call first" sound name "Glass"',
              "-e", "end run", "{message}")


def desktop_command(platform: str | None = None,
                    which: Callable[[str], str | None] = shutil.which) -> list[str] | None:
    """The desktop notifier's argv template for this platform, or None where there is none."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") and which("notify-send"):
        return ["notify-send", "--urgency=critical", "--app-name=Salvage", "Salvage: call first", "{message}"]
    if platform == "darwin" and which("osascript"):
        return list(_OSASCRIPT)
    return None


def call_script(name: str, missed: bool, start: datetime, tz: tzinfo, now: datetime) -> str:
    """One line to say on the phone: who you are, the apology, the question (the seeds' order)."""
    local = start.astimezone(tz)
    day = "today" if local.date() == now.astimezone(tz).date() else f"on {local:%A %d %B}"
    me = f"this is {name}" if name else "this is the candidate"
    if missed:
        return (f"Say: \"Hello, {me}. I am so sorry I missed our interview at {local:%H:%M} {day}. "
                f"Are you still free now, or could we reschedule?\"")
    return (f"Say: \"Hello, {me}. I am very sorry, but I cannot make our interview at {local:%H:%M} {day}. "
            f"Could we find another time?\"")


def expand(command: Sequence[str], message: str, phone: str | None) -> list[str]:
    """The argv with the placeholders of each argument replaced (one argument stays one argument)."""
    values = {"message": message, "phone": phone or ""}
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in command]


def notify(command: Sequence[str] | None, message: str, phone: str | None = None, *,
           timeout: float = TIMEOUT_SECONDS) -> bool:
    """Run the notify command once; True when it exited 0. Never raises."""
    if not command:
        return False
    argv = expand(command, message, phone)
    program = argv[0]
    try:
        # Its own session, so a timeout can stop the whole group (e.g. a script and its curl).
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            shell=False,
            start_new_session=True,
        )
    except FileNotFoundError:
        log.warning("notify: command %r not found (check notify.command in the config)", program)
        return False
    except OSError as exc:
        log.warning("notify: cannot run %r: %s", program, exc.strerror or exc)
        return False
    except Exception as exc:  # noqa: BLE001 - a notification must never break a pass
        log.warning("notify: %r failed: %s: %s", program, type(exc).__name__, exc)
        return False
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        log.warning("notify: %r did not finish within %.0fs; stopped it", program, timeout)
        return False
    except Exception as exc:  # noqa: BLE001
        _kill(proc)
        log.warning("notify: %r failed: %s: %s", program, type(exc).__name__, exc)
        return False
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if stderr else []
        log.warning("notify: %r exited with status %d%s", program, proc.returncode,
                    f": {tail[0][:200]}" if tail else "")
        return False
    log.info("notify: sent via %s", program)
    return True


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop the command and everything it started; reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    try:
        proc.communicate(timeout=2)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        # something it started escaped the group and holds the pipe: stop reading, reap the child
        if proc.stderr is not None:
            proc.stderr.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
