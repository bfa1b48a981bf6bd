"""The retry helper takes its clock and its sleep from the caller: nothing waits, nothing reads the wall clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from providers.base import TransientError
from providers.retry import RetryPolicy, call_with_retry, parse_retry_after

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)


def test_an_http_date_is_measured_from_the_given_clock() -> None:
    assert parse_retry_after("Tue, 24 Nov 2026 09:02:00 GMT", NOW) == 120.0
    assert parse_retry_after("Tue, 24 Nov 2026 08:00:00 GMT", NOW) == 0.0  # already past
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None


def test_waits_go_through_the_given_sleep() -> None:
    waits: list[float] = []
    answers = iter([TransientError("busy", retry_after=7), TransientError("busy"), "done"])

    def flaky() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    policy = RetryPolicy(attempts=3, base_seconds=1.0, cap_seconds=4.0)
    assert call_with_retry(flaky, policy, what="GET x", sleep=waits.append) == "done"
    assert waits[0] == 7 and 0 <= waits[1] <= 2  # Retry-After first, then jittered backoff


def test_a_long_retry_after_is_raised_not_waited_for() -> None:
    waits: list[float] = []

    def refused() -> None:
        raise TransientError("quota", retry_after=3600)

    with pytest.raises(TransientError):
        call_with_retry(refused, RetryPolicy(max_retry_after=300), sleep=waits.append)
    assert waits == []
