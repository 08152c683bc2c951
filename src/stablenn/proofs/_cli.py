"""``stablenn prove [NAME ...] [--list]``: print and check the proofs in the terminal.

Each proof prints its claim, its assumptions and one step a line with the rule beside it
and a mark (✓ both checks passed, ✗ a check failed, with the reason below).  Exit status:
0 when every step of every proof chosen was verified, 1 when one failed, 2 for bad input
(an unknown name, a bad option), with one line on stderr.  Nothing heavy is imported until
the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``prove`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "prove",
        help="prove the sheet's identities step by step, each step checked by SymPy and mpmath",
        description=(
            "Print the proofs of the exercise sheet's identities and of the stable forms "
            "stablenn evaluates, one step a line with the rule that justifies it. Every step "
            "is checked twice: SymPy shows it equals the step before under the assumptions, "
            "and mpmath evaluates both at random points at 50 digits. Exits 1 if a step fails."
        ),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="proofs to check (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the proofs' names and titles, and exit")
    parser.add_argument(
        "--sheet", action="store_true",
        help="check the exercise sheet's handwritten derivations instead: each must be refused",
    )
    parser.add_argument("--ascii", action="store_true", help="plain ASCII output instead of Unicode math")
    parser.add_argument("--points", type=int, default=8, help="random points per part for mpmath (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random points (default 0)")
    parser.set_defaults(func=run)


def _fail(error: Exception) -> int:
    print(f"stablenn prove: error: {error}", file=sys.stderr)
    return 2


def _can_print_unicode() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗σΣ₁ⁿ−".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    """Run ``prove``: 0 all verified, 1 a step failed, 2 bad input (one line on stderr)."""
    from .. import _messages
    from . import _index
    from ._ascii import to_ascii

    ascii_only = bool(args.ascii) or not _can_print_unicode()
    if args.list:
        width = max(len(name) for name in _index.NAMES)
        for name, problem, title in _index.INDEX:
            line = f"{name:<{width}}  {problem:<12}  {title}"
            print(to_ascii(line) if ascii_only else line)
        return 0
    if getattr(args, "sheet", False):
        return _sheet(args, ascii_only)
    unknown = [n for n in args.names if n not in _index.NAMES]
    if unknown:
        return _fail(_messages.unknown_proof(unknown[0], _index.NAMES))
    if not isinstance(args.points, int) or args.points < 1:
        return _fail(_messages.proof_bad_points(args.points))
    chosen = list(dict.fromkeys(args.names)) or list(_index.NAMES)

    from . import get

    start = time.perf_counter()
    failed: list[str] = []
    steps = 0
    for name in chosen:
        proof = get(name)
        try:
            result = proof.verify(points=args.points, seed=args.seed)
        except Exception as err:  # a checker bug must not look like a verified proof
            print(proof.text(ascii=ascii_only))
            print(f"  {name}: could not be checked: {type(err).__name__}: {err}\n")
            failed.append(name)
            continue
        steps += len(result.steps)
        print(proof.text(result, ascii=ascii_only))
        print()
        if not result.ok:
            failed.append(name)
    seconds = time.perf_counter() - start
    if failed:
        print(f"{len(failed)} of {len(chosen)} proofs failed: {', '.join(failed)} ({seconds:.1f} s)")
        return 1
    print(f"all {len(chosen)} proofs verified: {steps} steps, each by SymPy and by mpmath ({seconds:.1f} s)")
    return 0


def _sheet(args: argparse.Namespace, ascii_only: bool) -> int:
    """Check the sheet's own derivations: 0 when each is refused, 1 when one verifies."""
    if args.names:
        print("stablenn prove: error: `--sheet` takes no proof names; got " + ", ".join(args.names), file=sys.stderr)
        return 2
    from ._ascii import to_ascii
    from ._sheet import sheet_attempts

    accepted = []
    attempts = sheet_attempts()
    for proof in attempts:
        result = proof.verify(points=args.points, seed=args.seed)
        print(proof.text(result, ascii=ascii_only))
        print()
        if result.ok:
            accepted.append(proof.name)
    if accepted:
        print(f"the sheet's attempts {', '.join(accepted)} unexpectedly verified")
        return 1
    summary = f"all {len(attempts)} of the sheet's handwritten attempts are refused, as they must be"
    print(to_ascii(summary) if ascii_only else summary)
    return 0
