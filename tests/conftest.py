"""Suite-wide fixtures."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

_CONFIGURED = ("salvage", "daemon", "providers", "googleapiclient", "httpx", "httpcore", "msal", "urllib3",
               "apscheduler")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`salvage` commands call daemon.cli.logs.configure(); undo it so one test's levels never hide another's logs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in _CONFIGURED}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
