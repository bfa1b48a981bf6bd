"""Short, stable ids for events, shown in tables and accepted by `salvage preview/missed`."""

from __future__ import annotations

import hashlib


def short_id(occurrence_key: str) -> str:
    """An 8-character id derived from an occurrence key."""
    return hashlib.sha1(occurrence_key.encode("utf-8")).hexdigest()[:8]
