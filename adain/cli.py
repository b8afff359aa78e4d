"""The ``adain`` command line (``adain SUBCOMMAND ...`` or ``python -m adain SUBCOMMAND ...``).

Each subcommand lives in its own module, listed in :data:`SUBCOMMANDS`, which provides

* ``HELP: str`` — one line for ``adain --help``;
* ``add_arguments(parser: argparse.ArgumentParser) -> None``;
* ``run(args: argparse.Namespace) -> int`` — the exit code.

To add a subcommand (e.g. ``train``), write ``adain/train_cli.py`` with those three names and add one entry
here. ``adain --help`` reads each ``HELP`` from the module's source without importing it (the subcommands
import torch, which takes seconds); only the subcommand named on the command line is imported.
Exit codes: 0 success, 1 failure (some work failed), 2 usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

from adain import __version__

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "SUBCOMMANDS",
    "UsageError",
    "build_parser",
    "main",
    "subcommand_help",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: subcommand name → module implementing it (see the module docstring).
SUBCOMMANDS = MappingProxyType({"stylize": "adain.stylize_cli", "train": "adain.train_cli"})


def subcommand_help(name: str) -> str:
    """The ``HELP`` string of subcommand ``name``'s module, read from its source without importing it."""
    spec = importlib.util.find_spec(SUBCOMMANDS[name])
    if spec is None or spec.origin is None:
        return ""
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "HELP" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    return ""


class UsageError(Exception):
    """Inconsistent or invalid command-line options found after parsing: exit code 2, no traceback."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`SUBCOMMANDS`.

    Args:
        command: import only this subcommand's module and give only its subparser options (the others
            get their one-line help, enough for ``adain --help``); ``None`` imports them all.
    """
    parser = argparse.ArgumentParser(
        prog="adain", description="AdaIN arbitrary style transfer (Huang & Belongie, ICCV 2017)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        if command is not None and name != command:
            line = subcommand_help(name)
            sub.add_parser(name, help=line, description=line)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _parser=p)
    return parser


def _command(argv: Sequence[str]) -> str:
    """The subcommand named in ``argv`` (its first word), or ``""`` (``--help``, ``--version``, a typo)."""
    return argv[0] if argv and argv[0] in SUBCOMMANDS else ""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
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
