"""``python -m adain SUBCOMMAND ...``: the same as the ``adain`` console script."""

from __future__ import annotations

import sys

from adain.cli import main

if __name__ == "__main__":
    sys.exit(main())
