"""Machine-checked proofs of the identities behind stablenn's stable formulas.

Every identity of the exercise sheet (Problems 1 to 6) and every stable form stablenn
evaluates is a :class:`Proof`: a statement, its assumptions, and steps, each an expression
with the rule that justifies it.  :meth:`Proof.verify` has SymPy show that each step
equals the one before under the assumptions, and evaluates both at random points with
mpmath at 50 digits, so neither a SymPy simplification failure nor a wrong step can pass.

The exercise sheet's own handwritten derivations, which are wrong in places, are
available as :func:`sheet_attempts`: ``verify`` refuses the lines that do not follow.

Importing this package is cheap: SymPy and mpmath load on first use.

Examples
--------
>>> from stablenn import proofs
>>> proofs.names()[:2]
('affine-composition', 'affine-activation')
>>> result = proofs.get("logsumexp-shift").verify()
>>> result.ok
True
>>> print(proofs.get("sigmoid-symmetry").statement_text())
1 − σ(x) = σ(−x)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._index import INDEX, NAMES

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Assumption, Certificate, Given, Part, Proof, ProofResult, Step, StepResult
    from ._render import mathml, unicode_line
    from ._sheet import sheet_attempts

__all__ = [
    "Assumption",
    "Certificate",
    "Given",
    "Part",
    "Proof",
    "ProofResult",
    "Step",
    "StepResult",
    "all_proofs",
    "get",
    "index",
    "mathml",
    "names",
    "sheet_attempts",
    "unicode_line",
    "verify_all",
]

_CORE = {"Assumption", "Certificate", "Given", "Part", "Proof", "ProofResult", "Step", "StepResult"}
_RENDER = {"mathml", "unicode_line"}


def __getattr__(name: str) -> Any:  # PEP 562: load SymPy only when a proof is used
    if name in _CORE:
        from . import _core

        return getattr(_core, name)
    if name in _RENDER:
        from . import _render

        return getattr(_render, name)
    if name == "sheet_attempts":
        from ._sheet import sheet_attempts

        return sheet_attempts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def names() -> tuple[str, ...]:
    """The names of all proofs, in the order of the exercise sheet."""
    return NAMES


def index() -> tuple[tuple[str, str, str], ...]:
    """``(name, problem, title)`` for every proof, without building any (no SymPy import)."""
    return INDEX


def get(name: str) -> Proof:
    """Build the proof called ``name``.

    Raises
    ------
    ValueError
        If no proof has that name; the message lists the names.
    """
    from .. import _messages

    if not isinstance(name, str) or name not in NAMES:
        raise _messages.unknown_proof(name, NAMES)
    from ._catalogue import build

    return build(name)


def all_proofs() -> tuple[Proof, ...]:
    """Every proof, in the order of the exercise sheet."""
    return tuple(get(name) for name in NAMES)


def verify_all(*, points: int = 8, seed: int = 0, dps: int = 50) -> tuple[ProofResult, ...]:
    """Build and verify every proof; see :meth:`Proof.verify` for the options."""
    return tuple(p.verify(points=points, seed=seed, dps=dps) for p in all_proofs())
