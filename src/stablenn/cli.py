"""The ``stablenn`` command: a thin shell over the library.

``main(argv=None) -> int`` builds the parser from the feature modules' ``register``
functions (each imports nothing heavy at module level) and runs the chosen subcommand.
Exit codes: 0 success, 1 a check failed (a budget exceeded, a proof step refused),
2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ._version import __version__

# feature modules that add subcommands; a module not written yet is left out
_COMMANDS = (
    "stablenn._cli_eval",
    "stablenn.audit._cli",
    "stablenn.networks._cli",
    "stablenn.proofs._cli",
    "stablenn.report._cli",
    "stablenn._fast._cli",
    "stablenn.streaming._cli",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stablenn", description="Numerically stable neural-network math, proved and measured.")
    parser.add_argument("--version", action="version", version=f"stablenn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("stablenn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``stablenn prove | head``): stop quietly, as Unix tools do
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
