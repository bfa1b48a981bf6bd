"""The honest reasons a draft may give (a leaf module: the parser needs them without loading the config)."""

from __future__ import annotations

from typing import Literal, get_args

Reason = Literal[
    "scheduling_conflict",
    "illness",
    "family_emergency",
    "current_job",
    "technical_problem",
    "transport_delay",
    "own_mistake",
]
REASONS: tuple[str, ...] = get_args(Reason)
