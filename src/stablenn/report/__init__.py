"""The report: every identity of the exercise sheet proved, and the numbers that make it matter.

``stablenn report [--out DIR]`` (or :func:`build`) writes one self-contained HTML page and a
Markdown twin: for each problem of the sheet, its statement, the proof with every step
checked by SymPy and mpmath, and the evidence from the other features (the audit's error
measurements against exact arithmetic, the networks demos, the gradients); a summary at
the top (every proof verified or not, every function within budget or not, the machine and
the library versions).  Nothing is fetched to build or to view the page: formulas are
MathML generated here, plots inline SVG.  Where a feature cannot provide a piece, the page
says what is missing; it never shows a number that was not measured in the run.

Importing this package is cheap: the work happens in :func:`build`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._build import BuildResult, build
    from ._evidence import Sizes

__all__ = ["BuildResult", "Sizes", "build"]


def __getattr__(name: str) -> Any:  # PEP 562: nothing heavy at import
    if name in ("build", "BuildResult"):
        from . import _build

        return getattr(_build, name)
    if name == "Sizes":
        from ._evidence import Sizes

        return Sizes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
