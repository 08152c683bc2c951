"""The one table of error budgets: function x dtype -> largest ULP distance allowed.

The tests, the audit command and the docs read this table; nothing else states a
budget.  Error is Herbie's ULP distance (`stablenn.audit._ulp.ulp_distance`) between the
result and the correctly rounded exact value from the mpmath oracle.

* float16, bfloat16, float32: 1 ULP for every budgeted function (they compute in
  float64 inside, so the one rounding to the narrow format dominates).
* float64: 1 ULP for the elementwise functions and binary cross-entropy; 2 ULP for
  logsumexp, softmax, log_softmax (every component) and cross-entropy (every target).
* logsumexp near 0 is ill-conditioned: there the allowance of `logsumexp_tolerance`
  applies on top of the ULP budget.
* ``sigmoid_via_tanh`` and ``tanh_via_sigmoid`` show the sheet's identities and carry
  no budget: `MEASURED` records what they reach.  The ``_from_output`` derivatives are
  exact formulas of their argument (measured in `MEASURED`); what they lose is relative
  accuracy *as derivatives*, in the input ranges of `FROM_OUTPUT_LOSS`.
* Room for gradients: keys ``("grad", function, dtype)`` (issue 4) are read by
  `budget(function, dtype, kind="grad")`.

>>> budget("softmax", "float64"), budget("softmax", "float32"), budget("tanh_via_sigmoid", "float32")
(2.0, 1.0, None)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._ulp import get_format, ulp_of

__all__ = [
    "BUDGETS",
    "BUDGETED",
    "DOCUMENTATION_ONLY",
    "DTYPES",
    "FROM_OUTPUT_LOSS",
    "MEASURED",
    "budget",
    "from_output_limit",
    "logsumexp_tolerance",
]

DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

_ELEMENTWISE = ("sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad")
_REDUCTIONS = ("logsumexp", "softmax", "log_softmax", "cross_entropy_with_logits")

#: Functions with a budget, in the order tables list them.
BUDGETED: tuple[str, ...] = (*_ELEMENTWISE, "logsumexp", "softmax", "log_softmax",
                             "binary_cross_entropy_with_logits", "cross_entropy_with_logits")

#: Functions that exist to show an identity or a cheap formula: no budget.
DOCUMENTATION_ONLY: tuple[str, ...] = (
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
    "sigmoid_grad_from_output",
    "tanh_grad_from_output",
)

BUDGETS: dict[tuple[str, ...], float] = {}
for _f in (*_ELEMENTWISE, "binary_cross_entropy_with_logits"):
    for _d in DTYPES:
        BUDGETS[(_f, _d)] = 1.0
for _f in _REDUCTIONS:
    for _d in DTYPES:
        BUDGETS[(_f, _d)] = 2.0 if _d == "float64" else 1.0

#: Measured maximum ULP of the documentation-only functions (no budget), from
#: ``python benchmarks/accuracy.py`` (20,000 inputs per dtype; see that script's output).
#: The ``_from_output`` figures are for the formula as a function of its argument y.
MEASURED: dict[tuple[str, str], float] = {
    # (1 + tanh(x/2)) / 2 cancels to 0 once sigmoid(x) < 2**-54 (x below about -37.4),
    # computed in float64: total loss in the negative tail of float32 and float64; float16
    # keeps every digit (its tail ends before float64's does).
    ("sigmoid_via_tanh", "float16"): 0.0,
    ("sigmoid_via_tanh", "bfloat16"): 9185.0,
    ("sigmoid_via_tanh", "float32"): 600083559.0,
    ("sigmoid_via_tanh", "float64"): 4.3601074462799334e18,
    # 2 sigmoid(2x) - 1 cancels near 0: tanh(x) ~ x is lost below about 2**-54.
    ("tanh_via_sigmoid", "float16"): 0.0,
    ("tanh_via_sigmoid", "bfloat16"): 9386.0,
    ("tanh_via_sigmoid", "float32"): 615127064.0,
    ("tanh_via_sigmoid", "float64"): 4.360040151222359e18,
    # y (1 - y) and (1 - y)(1 + y) as functions of y: correctly rounded below float64
    # (exact float64 products), 1 ULP in float64.
    ("sigmoid_grad_from_output", "float16"): 0.0,
    ("sigmoid_grad_from_output", "bfloat16"): 0.0,
    ("sigmoid_grad_from_output", "float32"): 0.0,
    ("sigmoid_grad_from_output", "float64"): 1.0,
    ("tanh_grad_from_output", "float16"): 0.0,
    ("tanh_grad_from_output", "bfloat16"): 0.0,
    ("tanh_grad_from_output", "float32"): 0.0,
    ("tanh_grad_from_output", "float64"): 1.0,
}

# ---------------------------------------------------------------- gradients (issue 4; owned by the gradients work)
# d/dx of every elementwise function, of logsumexp, the softmax and log_softmax VJPs with
# one-hot cotangents (each row of the Jacobian) and of both losses w.r.t. the logits, in
# float32 and float64, measured with stablenn's rules (``stablenn._autodiff``) against
# mpmath: 2 ULP (issue 4, item 2).  ``benchmarks/gradient_audit.py`` prints the table,
# tests/test_gradients_accuracy.py enforces it, through PyTorch and through JAX alike
# (JAX against the flushed reference: XLA on the CPU flushes subnormal inputs and results
# to zero, the platform's rule; the budget is the same).  `stablenn audit --all --check`
# runs these audits too (`stablenn.audit._engine.audit_gradient`).
_GRADIENTS = (
    *_ELEMENTWISE,
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
    "sigmoid_grad_from_output",
    "tanh_grad_from_output",
    "logsumexp",
    "softmax",
    "log_softmax",
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
)
for _f in _GRADIENTS:
    for _d in ("float32", "float64"):
        BUDGETS[("grad", _f, _d)] = 2.0
# ---------------------------------------------------------------- end of gradients


def budget(function: str, dtype: Any, *, kind: str = "value") -> float | None:
    """The largest ULP distance allowed for `function` in `dtype` (None: no budget).

    Parameters
    ----------
    function : str
        A public function name of stablenn.
    dtype : str or dtype
        ``float16``, ``bfloat16``, ``float32`` or ``float64``.
    kind : {"value", "grad"}
        ``"grad"`` reads the gradient budgets, keyed ``("grad", function, dtype)``.

    >>> budget("logsumexp", "float64"), budget("sigmoid", "bfloat16")
    (2.0, 1.0)
    """
    name = get_format(dtype).name
    key: tuple[str, ...] = (function, name) if kind == "value" else ("grad", function, name)
    return BUDGETS.get(key)


# ---------------------------------------------------------------- the _from_output derivatives


def from_output_limit(function: str, dtype: Any) -> float:
    """The smallest input ``x >= 0`` from which the ``_from_output`` derivative is 0.

    ``sigmoid_grad_from_output(sigmoid(x))`` is exactly 0 once ``y = fl(sigmoid(x))`` is
    1: from ``sigmoid(x) >= 1 - 2**-(p+1)`` (the midpoint below 1 rounds to 1, the even
    neighbour), i.e. ``x >= log(2**(p+1) - 1)``.  ``tanh_grad_from_output(tanh(x))`` is 0
    once ``fl(tanh(x)) = 1``: ``2 / (e**2x + 1) <= 2**-(p+1)``, i.e.
    ``x >= log(2**(p+2) - 1) / 2`` (and symmetrically for ``x <= -limit``).  The true
    derivatives there are about ``e**-x`` and ``4 e**-2x``: every digit is lost.

    Returns the limit as a real number (not rounded to `dtype`).

    >>> round(from_output_limit("sigmoid_grad_from_output", "float32"), 4)
    17.3287
    >>> round(from_output_limit("tanh_grad_from_output", "float64"), 4)
    19.0615
    """
    p = get_format(dtype).precision
    if function == "sigmoid_grad_from_output":
        return math.log(2.0 ** (p + 1) - 1.0)
    if function == "tanh_grad_from_output":
        return math.log(2.0 ** (p + 2) - 1.0) / 2.0
    raise ValueError(f"`function` must be a _from_output derivative; got {function!r}.")


#: Where the ``_from_output`` derivatives lose relative accuracy, per dtype, as
#: derivatives of the input x (their argument is y = f(x) rounded to the dtype).
#: ``all_digits_lost_from``: `from_output_limit` (result exactly 0, true value positive).
#: ``relative_error``: the first-order relative error from the rounding of y,
#: ``u * e**|x|`` for sigmoid and ``u * e**(2|x|) / 2`` for tanh (``u = 2**-p``), so more
#: than half the digits are lost beyond ``p log(2) / 2`` and ``p log(2) / 4`` respectively.
FROM_OUTPUT_LOSS: dict[tuple[str, str], dict[str, Any]] = {}
for _d in DTYPES:
    _p = get_format(_d).precision
    FROM_OUTPUT_LOSS[("sigmoid_grad_from_output", _d)] = {
        "all_digits_lost_from": from_output_limit("sigmoid_grad_from_output", _d),
        "half_digits_lost_from": _p * math.log(2.0) / 2,
        "relative_error": "2**-p * exp(|x|)",
        "accurate_range": "x <= 0 (y <= 1/2): within 2 ULP of sigmoid'(x)",
    }
    FROM_OUTPUT_LOSS[("tanh_grad_from_output", _d)] = {
        "all_digits_lost_from": from_output_limit("tanh_grad_from_output", _d),
        "half_digits_lost_from": _p * math.log(2.0) / 4,
        "relative_error": "2**-p * exp(2|x|) / 2",
        "accurate_range": "|x| <= 1/2: within a few ULP of tanh'(x)",
    }


# ---------------------------------------------------------------- logsumexp near 0


# The factor c of the signed-weights allowance c u**2 kappa_b (u**2 = 2**-106, the unit of
# double-double): up to about 1000 u**2 from the double-double exp (mergeable.exp_dd, eight
# squarings; measured 981 u**2 against mpmath), a few u**2 from each product and about
# log2(n) u**2 from the double-double sum, relative to the sum of the terms' magnitudes.
KAPPA_B_FACTOR = 4096.0


def logsumexp_tolerance(x: Any, b: Any, exact: float, dtype: Any, *, ulps: float | None = None) -> float:
    """The absolute error allowed for ``logsumexp(x, b=b)`` whose exact value is `exact`.

    .. math::

        \\mathrm{tol} = B \\cdot \\mathrm{ulp}(r) + 2u\\,(|x_k| + |\\lambda| + |L| - |r|)

    with ``r`` the exact result, ``B`` the ULP budget, ``u = 2**-53`` (every dtype is
    computed in float64), ``k`` the largest term (largest ``x_i + log|b_i|``),
    ``lambda = log|b_k|`` (0 without ``b``) and ``L = r - x_k - lambda``, the log of the
    sum relative to its largest term.

    Derivation.  The stable computation is ``r = x_k + lambda + log1p(s)`` with
    ``s = sum_{i != k} (b_i / b_k) e**(x_i - x_k)``, and ``L = log1p(s)``.  Whatever is
    done inside, the three summands are float64 numbers and rounding them costs up to
    ``u (|x_k| + |lambda| + |L|)`` in absolute terms; when they share a sign this sum is
    ``|r|``, the rounding of the result itself, which the ULP budget covers, so only the
    excess ``|x_k| + |lambda| + |L| - |r|`` (twice the cancelled magnitude) is allowed on
    top.  Near ``r = 0`` with ``x_k`` of order 1 that is the condition number of
    log-sum-exp at work (Blanchard, Higham and Higham 2021: the relative condition number
    is ``sum_i |x_i| softmax_i / |r|``, here about ``|x_k| / |r|``).  Factor 2:
    second-order terms and ``exp``/``log`` errors of up to one ULP.  Away from 0 nothing
    cancels and the tolerance is the budget.

    Weights of both signs (some ``b_i < 0`` and some ``b_i > 0``; otherwise nothing below
    applies and the tolerance is exactly the one above).  The weighted sum itself can
    cancel; its condition number is

    .. math::

        \\kappa_b = \\frac{\\sum_i |b_i| e^{x_i}}{|\\sum_i b_i e^{x_i}|} \\ge 1,

    and no method that rounds the terms ``b_i e**x_i`` to a relative error ``eta`` can
    promise better than ``eta * kappa_b`` relative error in the sum, i.e. an absolute
    error of about ``eta * kappa_b`` in its log.  logsumexp forms and sums the terms in
    double-double (`stablenn._kernels.reductions.signed_sum`): ``eta <= c u**2`` with
    ``u**2 = 2**-106`` and ``c = KAPPA_B_FACTOR = 4096`` (the double-double exp is within
    about 1000 ``u**2``, the products and the sum add a few ``u**2`` and ``log2(n) u**2``).
    The allowance is then

    .. math::

        \\mathrm{tol} = B \\cdot \\mathrm{ulp}(r) + 2u\\,\\max(E, E_g) + c\\,u^2 \\kappa_b,

    with ``E`` the excess above and ``E_g`` the same excess taken at the largest term
    after merging the terms of equal ``x`` (``B_g = sum of b_i over x_i = x_g``, the pivot
    of the computation, which skips groups whose weights cancel exactly).  ``kappa_b``
    comes from `exact`, which is known to half an ULP of `dtype`: it is taken at its
    smallest value consistent with that.  An exact cancellation (every ``B_g = 0``) has
    ``exact = -inf`` and tolerance 0: it must come out as ``-inf``.

    Parameters
    ----------
    x, b : array_like
        The vector and its weights (`b` may be None); finite entries matter, entries
        with ``b = 0`` or ``x = -inf`` are ignored.
    exact : float
        The correctly rounded exact value (finite; otherwise the tolerance is 0).
    dtype : str or dtype
        The result's format.
    ulps : float, optional
        ``B``; default: the budget of logsumexp in `dtype`.

    >>> tol = logsumexp_tolerance([0.0, -40.0], None, 4.248354255291589e-18, "float64")
    >>> bool(tol == 2 * np.spacing(4.248354255291589e-18))   # nothing cancels: the budget
    True
    >>> x = np.log(np.array([0.3, 0.7]))                  # exact result near 0
    >>> logsumexp_tolerance(x, None, 0.0, "float64") > 1e-17
    True
    >>> # b of both signs, kappa_b ~ 4e16: mpmath.log(mpmath.e - mpmath.mpf(2.718281828459045))
    >>> # -> -36.47280459058011 (e**1 and its float64 value cancel to 1.4e-16)
    >>> tol = logsumexp_tolerance([1.0, 0.0], [1.0, -2.718281828459045], -36.47280459058011, "float64")
    >>> 1e-13 < tol < 1e-11
    True
    """
    fmt = get_format(dtype)
    B = budget("logsumexp", fmt) if ulps is None else ulps
    assert B is not None
    r = float(exact)
    if not math.isfinite(r):
        return 0.0
    xf = np.asarray(x, dtype=np.float64).ravel()
    bf = np.ones_like(xf) if b is None else np.broadcast_to(np.asarray(b, dtype=np.float64), xf.shape).ravel()
    keep = (bf != 0) & np.isfinite(xf) & np.isfinite(bf)
    xf, bf = xf[keep], bf[keep]
    base = float(B * ulp_of(r, fmt))
    if xf.size == 0:
        return base
    logb = np.log(np.abs(bf))
    k = int(np.argmax(xf + logb))
    xk, lam = float(xf[k]), float(logb[k])
    big_l = r - xk - lam
    excess = abs(xk) + abs(lam) + abs(big_l) - abs(r)
    if not ((bf < 0).any() and (bf > 0).any()):
        return base + 2.0 * 2.0**-53 * max(0.0, excess)
    # Weights of both signs (see the docstring): the summands of the result are taken at
    # the largest term after merging equal x, and the sum's own error is amplified by kappa_b.
    xs, inverse = np.unique(xf, return_inverse=True)
    big_b = np.zeros(xs.size)
    counts = np.bincount(inverse, minlength=xs.size)
    big_b[inverse[counts[inverse] == 1]] = bf[counts[inverse] == 1]
    for g in np.flatnonzero(counts > 1):
        big_b[g] = math.fsum(bf[inverse == g])  # exact sum, correctly rounded: 0 only if exactly 0
    alive = big_b != 0
    if alive.any():
        xs, logb_g = xs[alive], np.log(np.abs(big_b[alive]))
        g = int(np.argmax(xs + logb_g))
        xg, lam_g = float(xs[g]), float(logb_g[g])
        excess = max(excess, abs(xg) + abs(lam_g) + abs(r - xg - lam_g) - abs(r))
    key = xk + lam
    log_kappa = math.log(math.fsum(np.exp(xf + logb - key))) + key - r - float(ulp_of(r, fmt)) / 2
    kappa_term = KAPPA_B_FACTOR * 2.0**-106 * math.exp(min(log_kappa, 700.0))
    return base + 2.0 * 2.0**-53 * max(0.0, excess) + kappa_term
