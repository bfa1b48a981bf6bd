"""Where Salvage keeps its files: the platform's config and state dirs, overridable by env vars."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import platformdirs

APP = "salvage"


def config_dir() -> Path:
    """``$SALVAGE_CONFIG_DIR`` or the platform config dir (e.g. ``~/.config/salvage``)."""
    env = os.environ.get("SALVAGE_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir(APP))


def state_dir() -> Path:
    """``$SALVAGE_STATE_DIR`` or the platform state dir (e.g. ``~/.local/state/salvage``)."""
    env = os.environ.get("SALVAGE_STATE_DIR")
    return Path(env) if env else Path(platformdirs.user_state_dir(APP))


def secret_file(path: Path, data: str | bytes) -> None:
    """Write a secret atomically with mode 0600 (created so, never widened afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with the leaf at mode 0700, whatever the umask.

    An existing directory is left as it is: it may be one the user made and shares on purpose.
    """
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; an odd umask could leave it unusable


def private_file(path: Path) -> None:
    """Make sure ``path`` exists as a regular file of ours with mode 0600, whatever the umask.

    For files another library creates (SQLite's database: its -wal and -shm files copy the
    database's mode), so they are private from their first byte.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600 whatever the umask (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


STALE_TEMP_SECONDS = 60.0  # our temp files live for milliseconds; one this old was left by a crash


def remove_stale_temp(folder: Path, pattern: re.Pattern[str], *, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Remove temp files matching ``pattern`` in ``folder`` older than ``older_than`` seconds; how many.

    Only regular files (never what a symlink points to) and only our own names.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    cutoff = time.time() - older_than
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed
