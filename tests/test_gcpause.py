"""The core pauses the cycle collector for the length of one call and always restores it."""

from __future__ import annotations

import gc

import pytest

from daemon.engine.gcpause import gc_paused


@gc_paused()
def inner() -> bool:
    return gc.isenabled()


@gc_paused()
def outer() -> tuple[bool, bool]:
    return inner(), gc.isenabled()


@gc_paused()
def boom() -> None:
    raise ValueError("boom")


def test_paused_during_the_call_and_restored_after() -> None:
    assert gc.isenabled()
    assert outer() == (False, False)  # a nested pause does not re-enable early
    assert gc.isenabled()
    with pytest.raises(ValueError):
        boom()
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        assert inner() is False
        assert not gc.isenabled()
    finally:
        gc.enable()
