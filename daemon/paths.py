"""Where Salvage keeps its files: the platform's config and state dirs, overridable by env vars."""

from __future__ import annotations

import os
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
