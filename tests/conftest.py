"""Suite-wide fixtures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

import providers.registry  # noqa: F401 - installs the providers' config sections for parse_config

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After a run that included the corpus, list every producer with its pass counts per path."""
    corpus = sys.modules.get("test_corpus")  # loaded only when the corpus tests were collected
    tally = getattr(corpus, "TALLY", None)
    if not tally:
        return
    paths = ["ics", "google", "graph", "graph-own-zone"]
    terminalreporter.section("calendar corpus: instants right / expected, per producer and path")
    terminalreporter.write_line(f"{'producer':<20}" + "".join(f"{p:>16}" for p in paths))
    for producer in sorted(tally):
        cells = [tally[producer].get(p) for p in paths]
        terminalreporter.write_line(
            f"{producer:<20}" + "".join(f"{(f'{c[0]}/{c[1]}' if c else '-'):>16}" for c in cells)
        )
