"""The consoles the commands print to: event text never reaches the terminal as escape codes.

Titles, names, descriptions and mailbox text are written by other people. A title such as
``"\\x1b]0;pwned\\x07\\x1b[2J"`` would retitle the window and clear the screen, ``\\u202e`` would
show the rest of the line backwards. Every string printed through these consoles — in tables,
markup or plain — is stripped of such characters first (rich's own styling is added after, so
colours still work). Escaping rich *markup* in event text is a separate matter (``_escape`` in
:mod:`daemon.cli.output`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from daemon.core.text import strip_invisible


class SafeConsole(Console):
    """A rich :class:`Console` that strips escape, control and bidi characters from every string."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Render ``text`` after stripping what a terminal would act on instead of showing."""
        return super().render_str(strip_invisible(text, keep_newlines=True), **kwargs)
