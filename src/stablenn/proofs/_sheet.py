"""The exercise sheet's handwritten attempts, as proofs that ``verify`` must refuse.

The scanned sheet derives two identities by hand and gets both wrong: it writes
``tanh(x) = (eˣ − eˣ)/(eˣ + eˣ)`` (the ``e⁻ˣ`` terms lost, which makes tanh zero), and in
the binary cross-entropy it writes ``e²ˣ`` where ``e⁻ˣ`` belongs and copies ``1/(1 + e²ˣ)``
into the ``1 − σ(x)`` term.  Each attempt is transcribed line by line; ``verify`` marks
the lines that do not follow, which is how the report shows what the sheet got wrong.
The correct derivations are ``tanh-derivative`` and ``bce-logits``.
"""

from __future__ import annotations

from typing import Any

from sympy import Derivative, Eq, Interval, S, exp, log, tanh

from ._catalogue import add, frac, mul, neg, x, y
from ._core import Assumption, Part, Proof, Step
from ._functions import sigma

__all__ = ["sheet_attempts", "sheet_bce"]

_PROBLEM = "the sheet's attempt"


def _wrong_tanh() -> Any:
    E = exp(x)
    return frac(add(E, neg(E)), add(E, E))  # (eˣ − eˣ)/(eˣ + eˣ), as written


def sheet_tanh() -> Proof:
    """The sheet's definition of tanh: the minus signs of ``e⁻ˣ`` are lost."""
    wrong = _wrong_tanh()
    return Proof(
        "sheet-tanh", "the sheet's tanh(x) = (eˣ − eˣ)/(eˣ + eˣ)", _PROBLEM,
        Eq(tanh(x), wrong, evaluate=False), [Assumption(x, S.Reals)],
        [Part("", [Step(tanh(x), "left-hand side"), Step(wrong, "the sheet's definition of tanh")])],
        claim="wrong: the right-hand side is 0; tanh(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ)",
    )


def sheet_tanh_derivative() -> Proof:
    """The sheet's derivative of tanh: right first line, then the lost ``e⁻ˣ``."""
    lhs, wrong = Derivative(tanh(x), x), _wrong_tanh()
    return Proof(
        "sheet-tanh-derivative", "the sheet's tanh′(x)", _PROBLEM,
        Eq(lhs, wrong, evaluate=False), [Assumption(x, S.Reals)],
        [Part("", [
            Step(lhs, "left-hand side"),
            Step(1 - tanh(x) ** 2, "the sheet's first line (right)"),
            Step(wrong, "the sheet's next lines"),
        ])],
        claim="wrong after the first line; see tanh-derivative for the derivation",
    )


def sheet_bce(e2x: Any = None, *, copied_term: bool = True) -> Proof:
    """The sheet's binary cross-entropy derivation.

    Parameters
    ----------
    e2x : sympy expression, optional
        What the sheet writes where ``e⁻ˣ`` belongs (default ``e²ˣ``, as on the sheet).
    copied_term : bool
        Whether line 2 copies ``1/(1 + e2x)`` into the ``1 − σ(x)`` term, as on the sheet.
    """
    e2x = exp(2 * x) if e2x is None else e2x
    lhs = neg(add(mul(y, log(sigma(x))), mul(add(1, -y), log(add(1, neg(sigma(x)))))))
    L = log(add(1, e2x))
    second = frac(1, add(1, e2x)) if copied_term else frac(e2x, add(1, e2x))
    rhs = add(x, neg(mul(x, y)), L)
    steps = [
        Step(lhs, "binary cross-entropy"),
        Step(neg(add(mul(y, log(frac(1, add(1, e2x)))), mul(add(1, -y), log(second)))), "the sheet's line 2"),
        Step(neg(add(neg(mul(y, L)), mul(add(1, -y), log(frac(e2x, add(1, e2x)))))), "the sheet's line 3"),
        Step(rhs, "the sheet's result"),
    ]
    return Proof(
        "sheet-bce", "the sheet's binary cross-entropy derivation", _PROBLEM,
        Eq(lhs, rhs, evaluate=False), [Assumption(x, S.Reals), Assumption(y, Interval(0, 1))],
        [Part("", steps)],
        claim="wrong: e²ˣ stands where e⁻ˣ belongs; see bce-logits for the derivation",
    )


def sheet_attempts() -> tuple[Proof, ...]:
    """The sheet's handwritten derivations; each has at least one step ``verify`` refuses."""
    return (sheet_tanh(), sheet_tanh_derivative(), sheet_bce())
