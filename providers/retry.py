"""Retrying idempotent remote calls: capped exponential backoff with full jitter, Retry-After honoured.

The clock and the sleep are the caller's (a provider passes its context's): nothing here reads the
wall clock or blocks on its own, so tests drive retries without waiting.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

from providers.base import TransientError

T = TypeVar("T")
log = logging.getLogger(f"salvage.{__name__}")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # total tries, including the first
    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    max_retry_after: float = 300.0  # a longer Retry-After is not waited for in-line: it is raised

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return rng() * min(self.cap_seconds, self.base_seconds * (2 ** (attempt - 1)))


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    *,
    what: str = "request",
    sleep: Callable[[float], None],
) -> T:
    """Call ``fn``; on :class:`TransientError` wait and try again, up to ``policy.attempts`` tries.

    Only use for idempotent calls (GET, PUT/PATCH of a whole resource, DELETE). A Retry-After longer
    than ``policy.max_retry_after`` is raised at once so the account backs off instead of blocking.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except TransientError as exc:
            if attempt >= policy.attempts or (
                exc.retry_after is not None and exc.retry_after > policy.max_retry_after
            ):
                raise
            wait = policy.delay(attempt, exc.retry_after)
            log.info("%s failed (%s); retry %d in %.1fs", what, exc, attempt, wait)
            sleep(wait)
            attempt += 1


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds, or an HTTP date compared with ``now``)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())
