"""One service per state file: an exclusive ``flock`` on ``<state>.lock`` held for the process's life.

The kernel drops an ``flock`` when its holder dies (even by ``kill -9``), so a stale lock file never
blocks a restart. The file is never deleted: removing it would let two processes lock two different
inodes under the same name. The lock sits beside the state file's *real* path (symbolic links
resolved), so two spellings of one database (a symlinked directory, a link to the file) share one
lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from daemon.engine.state import StateError


class LockError(StateError):
    """Another process holds the state file's lock."""


def real_state_path(state_path: Path) -> Path:
    """The state file's path with every symbolic link resolved (the parts that exist so far)."""
    return Path(os.path.realpath(state_path))


def lock_path(state_path: Path) -> Path:
    """``<state>.lock`` beside the state file's real path."""
    real = real_state_path(state_path)
    return real.with_name(real.name + ".lock")


class InstanceLock:
    """An exclusive, non-blocking lock on a state file; release with :meth:`release` or ``with``."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self.path = lock_path(state_path)
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock (a no-op if this object holds it) or raise :class:`LockError` naming the holder."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockError(f"cannot open lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockError(
                f"another salvage run{who} is using {self.state_path}; stop it first "
                f"(or give this one another state.path)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise LockError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(state_path: Path) -> int | None:
    """The pid of a live process that wrote the lock file of ``state_path``, or None.

    Reads the pid instead of probing with ``flock``: a probe could make a starting service fail.
    """
    try:
        text = lock_path(state_path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
