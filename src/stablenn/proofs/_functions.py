"""The named functions the proofs talk about, as SymPy functions with a definition.

SymPy knows ``exp``, ``log`` and ``tanh`` but not the logistic sigmoid or softplus.  They
are defined here as opaque SymPy functions: SymPy never evaluates or differentiates them on
its own (so a proof that uses a property of sigma must derive it), and the checker unfolds
each into its definition before comparing two steps.  Each also carries its mpmath
definition for the numerical check and prints as the reader expects (``σ(x)``).
"""

from __future__ import annotations

from typing import Any, Callable

import mpmath
import sympy
from sympy.codegen.cfunctions import log1p

__all__ = ["DEFINITIONS", "MPMATH", "log1p", "sigma", "softplus"]


class _Named(sympy.Function):
    """A function of one argument that stays unevaluated and prints under its own name."""

    nargs = 1
    _display = ""

    @classmethod
    def eval(cls, arg: Any) -> None:  # never evaluate: proofs unfold definitions explicitly
        return None

    def _display_function(self) -> Any:
        return sympy.Function(self._display or type(self).__name__)(*self.args)

    def _mathml_presentation(self, printer: Any) -> Any:
        return printer._print(self._display_function())

    def _mathml_content(self, printer: Any) -> Any:
        return printer._print(self._display_function())

    def _latex(self, printer: Any) -> str:
        name = r"\sigma" if self._display == "σ" else r"\operatorname{%s}" % type(self).__name__
        return f"{name}\\left({printer._print(self.args[0])}\\right)"


class sigma(_Named):
    """The logistic sigmoid, defined as ``σ(x) = 1/(1 + e^(−x))``."""

    _display = "σ"


class softplus(_Named):
    """Softplus, defined as ``softplus(x) = log(1 + e^x)``."""

    _display = "softplus"


def _unfold_sigma(u: Any) -> Any:
    return 1 / (1 + sympy.exp(-u))


def _unfold_softplus(u: Any) -> Any:
    return sympy.log(1 + sympy.exp(u))


def _unfold_log1p(u: Any) -> Any:
    return sympy.log(1 + u)


#: function class -> its definition in terms of exp and log (the checker's axioms)
DEFINITIONS: dict[type, Callable[[Any], Any]] = {
    sigma: _unfold_sigma,
    softplus: _unfold_softplus,
    log1p: _unfold_log1p,
}

#: function class -> its value in mpmath, straight from the definition (exact enough at
#: the working precision of the numerical check)
MPMATH: dict[type, Callable[[Any], Any]] = {
    sigma: lambda u: 1 / (1 + mpmath.exp(-u)),
    softplus: lambda u: mpmath.log(1 + mpmath.exp(u)),
    log1p: lambda u: mpmath.log1p(u),
}
