"""Passwords and app passwords for CalDAV and IMAP: from an environment variable or a 0600 file.

A secret is read when a connection is made, never cached in a log line or an error message. A file
that other users could read is refused: an app password grants the whole mailbox.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from providers.base import ProviderError


class PasswordError(ProviderError):
    """The password is missing, unreadable or refused by the server.

    Not an :class:`~providers.base.AuthError`: `salvage auth` cannot fix it (the user edits the
    variable or the file), so the account is not parked; it is shown as failing with this message
    and tried again at its next poll, which reads the file again.
    """


def check_password_source(password_env: str | None, password_file: Path | None, needed: bool) -> None:
    """For a settings validator: exactly one of ``password_env``/``password_file`` when a password is used."""
    if needed and (password_env is None) == (password_file is None):
        raise ValueError("give exactly one of password_env (an environment variable's name) or "
                         "password_file (a file readable only by you, mode 0600)")
    if not needed and (password_env is not None or password_file is not None):
        raise ValueError("password_env / password_file are only used with auth: password")
    if password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
        raise ValueError(f"password_env {password_env!r} is not an environment variable name")


def read_password(account: str, password_env: str | None, password_file: Path | None) -> str:
    """The password from ``password_env`` or ``password_file``; :class:`PasswordError` when unusable."""
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise PasswordError(f"account {account!r}: environment variable {password_env} holding the password "
                            "is not set (or empty)")
        return value
    if password_file is None:
        raise PasswordError(f"account {account!r}: no password_env or password_file configured")
    try:
        fd = os.open(password_file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise PasswordError(f"account {account!r}: password file {password_file} does not exist") from None
    except OSError as exc:
        raise PasswordError(f"account {account!r}: password file {password_file} cannot be read: "
                        f"{exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PasswordError(f"account {account!r}: password file {password_file} is not a regular file")
        if info.st_mode & 0o077:
            raise PasswordError(f"account {account!r}: password file {password_file} can be read by other users "
                            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {password_file}")
        data = handle.read(4096)
    value = data.decode("utf-8", "replace").strip("\r\n")
    if not value:
        raise PasswordError(f"account {account!r}: password file {password_file} is empty")
    return value
