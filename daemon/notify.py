"""The optional "call them first" notification: runs the configured command, never a shell.

``notify.command`` is an argv list; ``{message}`` and ``{phone}`` are replaced inside each argument
(plain text replacement, so other braces are left alone). A missing program, a non-zero exit or a
timeout is logged and otherwise ignored: a notification is a nicety, the draft is what matters.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

log = logging.getLogger("salvage.notify")

TIMEOUT_SECONDS = 10.0


def expand(command: Sequence[str], message: str, phone: str | None) -> list[str]:
    """The argv with the placeholders of each argument replaced."""
    return [arg.replace("{message}", message).replace("{phone}", phone or "") for arg in command]


def notify(command: Sequence[str] | None, message: str, phone: str | None = None, *,
           timeout: float = TIMEOUT_SECONDS) -> bool:
    """Run the notify command once; True when it exited 0. Never raises."""
    if not command:
        return False
    argv = expand(command, message, phone)
    program = argv[0]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
            shell=False,
        )
    except FileNotFoundError:
        log.warning("notify: command %r not found (check notify.command in the config)", program)
        return False
    except subprocess.TimeoutExpired:
        log.warning("notify: %r did not finish within %.0fs; gave up on it", program, timeout)
        return False
    except OSError as exc:
        log.warning("notify: cannot run %r: %s", program, exc.strerror or exc)
        return False
    except Exception as exc:  # noqa: BLE001 - a notification must never break a pass
        log.warning("notify: %r failed: %s: %s", program, type(exc).__name__, exc)
        return False
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if done.stderr else []
        log.warning("notify: %r exited with status %d%s", program, done.returncode,
                    f": {tail[0][:200]}" if tail else "")
        return False
    log.info("notify: sent via %s", program)
    return True
