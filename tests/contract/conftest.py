"""Fixtures of the contract suites: every test runs once per provider harness in harnesses.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harnesses import CALENDARS, MAILBOXES, Servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    shared = Servers(tmp_path_factory.mktemp("contract-servers"))
    yield shared
    shared.close()


@pytest.fixture(params=sorted(CALENDARS))
def calendar(request: pytest.FixtureRequest, tmp_path: Path, servers: Servers) -> Iterator[Any]:
    """A calendar harness (see harnesses.CalendarHarness), one per registered provider."""
    with CALENDARS[request.param](tmp_path, servers) as harness:
        yield harness


@pytest.fixture(params=sorted(MAILBOXES))
def mailbox(request: pytest.FixtureRequest, tmp_path: Path, servers: Servers) -> Iterator[Any]:
    """A mailbox harness (see harnesses.MailboxHarness), one per registered provider."""
    with MAILBOXES[request.param](tmp_path, servers) as harness:
        yield harness
        assert harness.sent_by_us() == 0  # Salvage never sends
