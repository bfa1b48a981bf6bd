"""The `salvage` command line: the parser, one module per command group, shared helpers."""

from __future__ import annotations

from daemon.cli.main import main

__all__ = ["main"]
