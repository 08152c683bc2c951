"""``stablenn report [--out DIR] [--quick]``: build the report and print where it is.

Exit status: 0 when every proof was verified and every function met its budget, 1 when
the page was written but a proof failed or a budget was exceeded (the page says which),
2 for bad input (one line on stderr).  Pieces of evidence that a feature cannot provide
yet are listed on the page and do not change the status.  Nothing heavy is imported
until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "report",
        help="build the report: every identity of the sheet proved, every function measured (HTML + Markdown)",
        description=(
            "Prove every identity of the exercise sheet, measure the naive formulas and stablenn against exact "
            "arithmetic, run the networks and gradients demos, and write one self-contained HTML page (report.html) "
            "and its Markdown twin (report.md) into --out. A progress bar goes to stderr; the page's path is "
            "printed at the end."
        ),
    )
    parser.add_argument("--out", default="report", metavar="DIR", help="output directory (default: ./report)")
    parser.add_argument("--quick", action="store_true", help="small sample sizes (about a minute of CPU time; for tests)")
    parser.add_argument("--samples", type=int, default=None, metavar="N",
                        help="scalar inputs (and BCE elements) per function and dtype in the audit tables")
    parser.add_argument("--vector-samples", type=int, default=None, metavar="N",
                        help="vectors (reductions) and cross-entropy rows per function and dtype in the audit tables")
    parser.add_argument("--seed", type=int, default=0, help="seed of every sampler (default 0)")
    parser.add_argument("--processes", type=int, default=None, metavar="N",
                        help="worker processes for the exact reference values (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"stablenn report: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``report``: 0 all verified and within budget, 1 otherwise, 2 bad input."""
    from pathlib import Path

    from ._build import build
    from ._evidence import Sizes

    for name in ("samples", "vector_samples", "processes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return _fail(f"`--{name.replace('_', '-')}` must be a positive integer; got {value}. Leave it out for the default.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"`--out` must be a directory; got the file {str(out)!r}. Pass a directory name, e.g. --out report.")
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.samples is not None:
        overrides["audit_samples"] = args.samples
    if args.vector_samples is not None:
        overrides["audit_vectors"] = args.vector_samples
    if args.processes is not None:
        overrides["processes"] = args.processes
    if args.quick:
        sizes, mode = Sizes.quick(**overrides), "quick"
    else:
        sizes, mode = Sizes(**overrides), "default"
    try:
        result = build(out, sizes=sizes, mode=mode, progress=not args.no_progress)
    except OSError as exc:
        return _fail(f"cannot write the report into {str(out)!r}: {exc.strerror or exc}. Choose another --out.")
    print(result.summary)
    print(f"built in {result.wall:.1f} s wall, {result.cpu:.1f} s CPU")
    if result.missing:
        print(f"missing ({len(result.missing)}): " + "; ".join(m.feature + ": " + m.what for m in result.missing))
    print(f"report written: {result.html.resolve()}")
    print(f"markdown twin:  {result.markdown.resolve()}")
    return 0 if result.ok else 1
