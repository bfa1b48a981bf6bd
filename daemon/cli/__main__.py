"""`python -m daemon.cli.main` runs the `salvage` command."""

from __future__ import annotations

import sys

from daemon.cli.main import main

sys.exit(main())
