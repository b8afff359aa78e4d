"""The ``adain`` command line (``adain SUBCOMMAND ...`` or ``python -m adain SUBCOMMAND ...``).

Each subcommand lives in its own module, listed in :data:`SUBCOMMANDS`, which provides

* ``HELP: str`` — one line for ``adain --help``;
* ``add_arguments(parser: argparse.ArgumentParser) -> None``;
* ``run(args: argparse.Namespace) -> int`` — the exit code.

To add a subcommand (e.g. ``train``), write ``adain/train_cli.py`` with those three names and add one entry
here. Exit codes: 0 success, 1 failure (some work failed), 2 usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import MappingProxyType

from adain import __version__

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "SUBCOMMANDS", "UsageError", "build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: subcommand name → module implementing it (see the module docstring).
SUBCOMMANDS = MappingProxyType({"stylize": "adain.stylize_cli", "train": "adain.train_cli"})


class UsageError(Exception):
    """Inconsistent or invalid command-line options found after parsing: exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="adain", description="AdaIN arbitrary style transfer (Huang & Belongie, ICCV 2017)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except UsageError as e:
        args._parser.print_usage(sys.stderr)
        print(f"adain {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
