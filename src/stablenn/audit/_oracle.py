"""The mpmath oracle: correctly rounded values of every public function of stablenn.

Method
------
Inputs are floats, so they are exact binary rationals.  Each function is evaluated with
mpmath's raw number tuples (``mpmath.libmp``, gmpy2-backed when gmpy2 is installed) at a
working precision of ``W`` bits, together with a rigorous bound on the error of that
evaluation (a "ball" ``v +- err``).  The reference is the correctly rounded value of the
ball's centre *if both ends of the ball round to the same number*; otherwise ``W`` is
doubled and the evaluation repeated.  So every reference value here is correctly rounded
(to nearest, ties to even) in the target format, whatever the conditioning of the input.

Two facts make the loop terminate:

* each formula below is written so that its error shrinks with ``W`` (no cancellation is
  left to chance: ``log1p`` of an exactly formed ``1 + u``, ``expm1`` with guard bits,
  differences of inputs formed exactly);
* an exact value never lies on a rounding boundary unless it is rational, and the
  rational cases are caught first and rounded exactly: ``e**q`` is irrational for
  rational ``q != 0``, and by the Lindemann-Weierstrass theorem ``sum_j B_j e**x_j`` with
  distinct rational ``x_j`` and rational ``B_j`` not all zero is nonzero and
  transcendental unless it is a single term with ``x_j = 0``.

The starting precision is ``max(64, 2p + 32)`` bits for a format of ``p`` bits (64 for
float16 and bfloat16, 80 for float32, 138 for float64); the ball check, not the starting
precision, is what makes the result right, and ill-conditioned inputs (log-sum-exp near
0, logit near 1/2) raise the precision as far as they need.

Error bounds
------------
mpmath rounds ``+ - * /`` correctly at the requested precision (relative error at most
``2**-W``), and ``exp``/``log`` carry guard bits and stay within 1 ULP (``2**(1-W)``).
Each formula's comment counts its operations; the bounds used are deliberately
generous (``_K = 16`` units of ``2**-W`` for the short formulas).

>>> elementwise("sigmoid", np.array([-800.0, 0.0, 40.0]), "float64").tolist()
[0.0, 0.5, 1.0]
>>> float(elementwise("log_sigmoid", np.array([40.0]), "float64")[0])   # -exp(-40)
-4.248354255291589e-18
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath
import mpmath.libmp as L
import numpy as np

from stablenn import _messages

from ._ulp import Format, get_format, round_ball, round_mpf

__all__ = [
    "ELEMENTWISE",
    "LOSSES",
    "REDUCTIONS",
    "VectorReference",
    "bce",
    "bce_all",
    "bce_grad",
    "bce_reduced",
    "cross_entropy",
    "cross_entropy_all",
    "cross_entropy_grad",
    "cross_entropy_row",
    "derivative",
    "elementwise",
    "exact_elementwise",
    "log_softmax",
    "log_softmax_vjp",
    "logsumexp",
    "logsumexp_grad",
    "parallel_map",
    "softmax",
    "softmax_vjp",
    "vector",
]

ELEMENTWISE: tuple[str, ...] = (
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "logit",
    "tanh",
    "sigmoid_grad",
    "tanh_grad",
    "sigmoid_grad_from_output",
    "tanh_grad_from_output",
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
)
REDUCTIONS: tuple[str, ...] = ("logsumexp", "softmax", "log_softmax")
LOSSES: tuple[str, ...] = ("binary_cross_entropy_with_logits", "cross_entropy_with_logits")

_MAX_PREC = 1 << 16
_K = 16  # error of a short formula, in units of 2**-W (the true figure is at most 6)
_LN2 = math.log(2.0)

Mpf = tuple  # an mpmath raw number: (sign, man, exp, bc)

_ZERO, _ONE, _TWO = L.fzero, L.fone, L.from_int(2)
_HALF = L.from_man_exp(1, -1)


# ---------------------------------------------------------------- primitives


def _start_prec(fmt: Format) -> int:
    return max(64, 2 * fmt.precision + 32)


def _mag(t: Mpf) -> int:
    """Exponent e with ``2**(e-1) <= |t| < 2**e`` (``t`` finite, nonzero)."""
    return int(t[2]) + int(t[3])


def _exp(t: Mpf, w: int) -> Mpf:
    return L.mpf_exp(t, w, "n")


def _log(t: Mpf, w: int) -> Mpf:
    # mpmath's log watches for arguments near 1 and adds the cancelled bits, so an exact
    # argument gives a relatively accurate result even when log(t) is tiny.
    return L.mpf_log(t, w, "n")


def _log1p(t: Mpf, w: int) -> Mpf:
    """log(1 + t) with relative error below 2**(2-w), for exact or rounded t > -1."""
    if t == _ZERO:
        return _ZERO
    if _mag(t) < -w:
        # log1p(t) = t - t**2/2 + ...: the dropped terms are below |t| * 2**-2w.
        return L.mpf_sub(t, L.mpf_shift(L.mpf_mul(t, t), -1), w, "n")
    # 1 + t formed exactly, so log sees no rounding and keeps relative accuracy.
    return _log(L.mpf_add(_ONE, t), w)


def _expm1(t: Mpf, w: int) -> Mpf:
    """exp(t) - 1 with relative error below 2**(2-w) (t exact)."""
    if t == _ZERO:
        return _ZERO
    m = _mag(t)
    if m < -w:
        # expm1(t) = t + t**2/2 + ...: the dropped terms are below |t| * 2**-2w.
        return L.mpf_add(t, L.mpf_shift(L.mpf_mul(t, t), -1), w, "n")
    # exp(t) - 1 cancels |t| relative to 1 when t is small: carry -mag(t) guard bits.
    wp = w + max(0, -m) + 10
    return L.mpf_sub(_exp(t, wp), _ONE, w, "n")


def _rel_err(v: Mpf, k: int, w: int) -> Mpf:
    """The absolute bound ``|v| * k * 2**-w``."""
    return L.mpf_shift(L.mpf_mul(L.mpf_abs(v), L.from_int(k)), -w)


def _decide(v: Mpf, err: Mpf, fmt: Format) -> float | None:
    """The rounding of every point of ``[v - err, v + err]`` if they all agree, else None."""
    return round_ball(v, err, fmt)


@dataclass
class _Split:
    """A value ``(a + delta) / den`` with ``a`` and ``den`` exact (dyadic) and ``delta``
    known to ``+- err``.

    Used where the exact value is a dyadic rational plus a transcendental correction
    that can be astronomically small (``x_j - x_max - log1p(e**-180000)``): the rational
    part may sit exactly on a rounding boundary, and no finite precision decides such a
    ball.  `_decide_split` settles it from the sign of the correction.
    """

    a: Mpf
    delta: Mpf
    err: Mpf
    den: Mpf | None = None
    w: int = 64  # the working precision it was computed at

    def ball_at(self) -> tuple[Mpf, Mpf]:
        return self.ball(self.w)

    def ball(self, w: int) -> tuple[Mpf, Mpf]:
        v = L.mpf_add(self.a, self.delta, w, "n")
        err = L.mpf_add(self.err, L.mpf_shift(L.mpf_abs(v), 1 - w), w, "u")
        if self.den is not None:
            v = L.mpf_div(v, self.den, w, "n")
            err = L.mpf_add(L.mpf_div(err, L.mpf_abs(self.den), w, "u"), L.mpf_shift(L.mpf_abs(v), 1 - w), w, "u")
        return v, err


def _fraction(t: Mpf) -> Fraction:
    sign, man, exp, _ = t
    f = Fraction(int(man)) * (Fraction(2) ** int(exp))
    return -f if sign else f


def _decide_split(sp: _Split, fmt: Format) -> float | None:
    """Round ``(a + delta) / den`` when ``delta`` is too small to move it across a boundary.

    Every rounding boundary of the format (representable values and midpoints) is a
    multiple of ``2**B`` with ``B = emin - p``; ``a = A 2**alpha`` and
    ``den = D 2**beta`` (D odd or 1).  So ``a / den - k 2**B`` has a numerator that is a
    multiple of ``2**min(alpha, B + beta)``, and a boundary other than ``a / den`` lies at
    least ``2**Lg`` away, ``Lg = min(alpha, B + beta) - mag(den)``.  If the true offset
    ``t = delta / den`` is nonzero with a known sign and ``|t| < 2**Lg``, then
    ``round(a/den + t) = round(a/den + sign(t) 2**(Lg - 1))``, computed exactly.
    """
    if L.mpf_cmp(L.mpf_abs(sp.delta), sp.err) <= 0:
        return None  # the sign of the correction is not known
    b_exp = fmt.emin - fmt.precision
    lg = b_exp if sp.a == _ZERO else min(int(sp.a[2]), b_exp)
    den_mag = 0
    if sp.den is not None:
        lg = min(int(sp.a[2]) if sp.a != _ZERO else b_exp, b_exp + int(sp.den[2]))
        den_mag = _mag(sp.den)
        lg -= den_mag
    bound = L.mpf_add(L.mpf_abs(sp.delta), sp.err, 64, "u")
    if sp.den is not None:
        bound = L.mpf_div(bound, L.mpf_abs(sp.den), 64, "u")
    if _mag(bound) > lg:  # |t| < 2**mag(bound) <= 2**lg needed
        return None
    positive = (sp.delta[0] == 0) != (sp.den is not None and sp.den[0] == 1)
    value = _fraction(sp.a)
    if sp.den is not None:
        value /= _fraction(sp.den)
    step = Fraction(2) ** (lg - 1)
    return round_mpf(value + step if positive else value - step, fmt)


def _to_mpf(x: float) -> Mpf:
    return L.from_float(float(x))


Computed = tuple[Mpf, Mpf] | float | _Split | None


def _decide_item(got: Computed, fmt: Format) -> float | None:
    """The correct rounding of one computed value, or None if this precision cannot tell."""
    if isinstance(got, float):
        return got
    if got is None:
        return None
    if isinstance(got, _Split):
        r = _decide(*got.ball_at(), fmt)
        return r if r is not None else _decide_split(got, fmt)
    return _decide(got[0], got[1], fmt)


def _run(name: str, fmt: Format, compute: Callable[[int], Computed]) -> float:
    """Evaluate ``compute(w)`` at rising precision until its rounding is decided.

    ``compute`` returns a ball ``(value, abs_error)``, a `_Split`, an exact float, or
    None (needs more precision).
    """
    w = _start_prec(fmt)
    while w <= _MAX_PREC:
        r = _decide_item(compute(w), fmt)
        if r is not None:
            return r
        w *= 2
    raise _messages.audit_oracle_precision(name, _MAX_PREC)


def _run_batch(
    name: str, fmt: Format, compute: Callable[[int], list[Computed]], reduce: Callable[[list[Computed], int], list[Computed]]
) -> tuple[list[float], list[float]]:
    """Like `_run` for many outputs at once: the items of ``compute(w)`` and the reductions
    ``reduce(items, w)`` built from the same unrounded items (no second evaluation)."""
    w = _start_prec(fmt)
    items_out: list[float | None] | None = None
    reduced_out: list[float | None] | None = None
    while w <= _MAX_PREC:
        items = compute(w)
        reduced = reduce(items, w)
        if items_out is None:
            items_out = [None] * len(items)
            reduced_out = [None] * len(reduced)
        assert reduced_out is not None
        for i, it in enumerate(items):
            if items_out[i] is None:
                items_out[i] = _decide_item(it, fmt)
        for i, it in enumerate(reduced):
            if reduced_out[i] is None:
                reduced_out[i] = _decide_item(it, fmt)
        if all(v is not None for v in items_out) and all(v is not None for v in reduced_out):
            return [float(v) for v in items_out], [float(v) for v in reduced_out]  # type: ignore[arg-type]
        w *= 2
    raise _messages.audit_oracle_precision(name, _MAX_PREC)


# ---------------------------------------------------------------- elementwise


def _sigmoid_pos_neg(x: Mpf, w: int) -> Mpf:
    # sigma(x) = 1 / (1 + e**-x): e**-x (2 units), 1 + e (1 unit, no cancellation:
    # both terms positive), the division (1 unit).
    return L.mpf_div(_ONE, L.mpf_add(_ONE, _exp(L.mpf_neg(x), w), w, "n"), w, "n")


def _softplus_value(x: Mpf, w: int) -> Mpf:
    # softplus(x) = log1p(e**x) for x <= 0, x + log1p(e**-x) for x > 0 (both terms
    # positive: no cancellation; e**-x never overflows).
    if x[0]:  # negative
        return _log1p(_exp(x, w), w)
    return L.mpf_add(x, _log1p(_exp(L.mpf_neg(x), w), w), w, "n")


def _tanh_value(x: Mpf, w: int) -> Mpf:
    # tanh(|x|) = expm1(2|x|) / (expm1(2|x|) + 2): both terms positive, no cancellation
    # near 0 (1 - tanh would cancel; expm1 does not).
    ax = L.mpf_abs(x)
    em = _expm1(L.mpf_shift(ax, 1), w)
    v = L.mpf_div(em, L.mpf_add(em, _TWO, w, "n"), w, "n")
    return L.mpf_neg(v) if x[0] else v


def _sigmoid_grad_value(x: Mpf, w: int) -> Mpf:
    # sigma'(x) = e / (1 + e)**2 with e = e**-|x| <= 1 (even function; no overflow).
    e = _exp(L.mpf_neg(L.mpf_abs(x)), w)
    d = L.mpf_add(_ONE, e, w, "n")
    return L.mpf_div(e, L.mpf_mul(d, d, w, "n"), w, "n")


def _tanh_grad_value(x: Mpf, w: int) -> Mpf:
    # tanh'(x) = sech(x)**2 = 4 e / (1 + e)**2 with e = e**-2|x| <= 1.
    e = _exp(L.mpf_neg(L.mpf_shift(L.mpf_abs(x), 1)), w)
    d = L.mpf_add(_ONE, e, w, "n")
    return L.mpf_shift(L.mpf_div(e, L.mpf_mul(d, d, w, "n"), w, "n"), 2)


def _logit_value(p: Mpf, w: int) -> Mpf:
    # logit(p) = log(p / (1 - p)); near p = 1/2 the log of a ratio near 1 would turn the
    # ratio's rounding into an absolute error, so there use
    # logit(p) = log1p((2p - 1) / (1 - p)) with 2p - 1 and 1 - p formed exactly.
    q = L.mpf_sub(_ONE, p)  # exact
    if L.mpf_lt(L.from_man_exp(1, -2), p) and L.mpf_lt(p, L.from_man_exp(3, -2)):
        num = L.mpf_sub(L.mpf_shift(p, 1), _ONE)  # exact
        return _log1p(L.mpf_div(num, q, w, "n"), w)
    return _log(L.mpf_div(p, q, w, "n"), w)


def _elementwise_special(name: str, x: float) -> float | None:
    """The documented answer at NaN, +-inf and the exact cases, else None."""
    if math.isnan(x):
        return math.nan
    if name in ("sigmoid", "sigmoid_via_tanh"):
        if math.isinf(x):
            return 1.0 if x > 0 else 0.0
        if x == 0.0:
            return 0.5
    elif name == "log_sigmoid":
        if math.isinf(x):
            return -0.0 if x > 0 else -math.inf
    elif name == "softplus":
        if math.isinf(x):
            return math.inf if x > 0 else 0.0
    elif name == "logit":
        if x < 0.0 or x > 1.0:
            return math.nan
        if x == 0.0:
            return -math.inf
        if x == 1.0:
            return math.inf
        if x == 0.5:
            return 0.0
    elif name in ("tanh", "tanh_via_sigmoid"):
        if math.isinf(x):
            return math.copysign(1.0, x)
        if x == 0.0:
            return x  # tanh(+-0) = +-0
    elif name in ("sigmoid_grad", "tanh_grad"):
        if math.isinf(x):
            return 0.0
    return None


_ELEMENTWISE_COMPUTE: dict[str, Callable[[Mpf, int], Mpf]] = {
    "sigmoid": _sigmoid_pos_neg,
    "sigmoid_via_tanh": _sigmoid_pos_neg,
    "log_sigmoid": lambda x, w: L.mpf_neg(_softplus_value(L.mpf_neg(x), w)),
    "softplus": _softplus_value,
    "logit": _logit_value,
    "tanh": _tanh_value,
    "tanh_via_sigmoid": _tanh_value,
    "sigmoid_grad": _sigmoid_grad_value,
    "tanh_grad": _tanh_grad_value,
}


def _from_output_exact(name: str, y: float, fmt: Format) -> float:
    """y(1 - y) or (1 - y)(1 + y) evaluated exactly on the given y, then rounded once."""
    if math.isnan(y):
        return math.nan
    if math.isinf(y):
        return -math.inf  # inf * (1 - inf) and (1 - inf)(1 + inf) are -inf in IEEE
    t = _to_mpf(y)
    if name == "sigmoid_grad_from_output":
        a, b = t, L.mpf_sub(_ONE, t)
    else:
        a, b = L.mpf_sub(_ONE, t), L.mpf_add(_ONE, t)
    v = L.mpf_mul(a, b)  # exact: prec=0
    if v == _ZERO:
        # the sign of an IEEE product of zeros and ones: y(1-y) at y = -0 is -0.
        return math.copysign(0.0, y) if y == 0.0 and name == "sigmoid_grad_from_output" else 0.0
    return round_mpf(v, fmt)


def _elementwise_scalar(name: str, x: float, fmt: Format) -> float:
    if name in ("sigmoid_grad_from_output", "tanh_grad_from_output"):
        return _from_output_exact(name, x, fmt)
    special = _elementwise_special(name, x)
    if special is not None:
        return special
    t = _to_mpf(x)
    fn = _ELEMENTWISE_COMPUTE[name]

    def compute(w: int) -> tuple[Mpf, Mpf]:
        v = fn(t, w)
        return v, _rel_err(v, _K, w)

    return _run(name, fmt, compute)


def _check_name(name: str, accepted: Sequence[str]) -> None:
    if name not in accepted:
        raise _messages.audit_unknown_function(name, tuple(accepted))


def elementwise(name: str, x: Any, dtype: Any) -> np.ndarray:
    """Correctly rounded values of the elementwise function `name` at each `x`.

    Parameters
    ----------
    name : str
        One of `ELEMENTWISE`.
    x : array_like
        Inputs, representable in `dtype` (any shape).
    dtype : str or dtype
        The result format.

    Returns
    -------
    numpy.ndarray
        Same shape as `x`, the format's storage dtype (float32 for bfloat16).

    Notes
    -----
    Special values: NaN gives NaN; ``sigmoid(-inf) = 0``, ``sigmoid(+inf) = 1``,
    ``log_sigmoid(-inf) = -inf``, ``log_sigmoid(+inf) = -0``, ``softplus(-inf) = 0``,
    ``softplus(+inf) = inf``, ``logit(0) = -inf``, ``logit(1) = inf``, ``logit(p) = NaN``
    outside [0, 1], ``tanh(+-inf) = +-1``, ``tanh(+-0) = +-0``, derivatives 0 at
    ``+-inf``.  The ``_from_output`` functions are the IEEE values of their formulas at
    ``+-inf`` (``-inf``).

    >>> elementwise("logit", np.array([0.5, 0.75, 1.0, 2.0]), "float32").tolist()
    [0.0, 1.0986123085021973, inf, nan]
    """
    _check_name(name, ELEMENTWISE)
    fmt = get_format(dtype)
    a = np.asarray(x, dtype=np.float64)
    out = np.array([_elementwise_scalar(name, float(v), fmt) for v in a.ravel()], dtype=np.float64)
    return out.reshape(a.shape).astype(fmt.storage)


def exact_elementwise(name: str, x: float, prec: int = 113) -> mpmath.mpf:
    """The exact value of `name` at `x` to about `prec` bits, as an mpmath number.

    For printing ("the exact value is ..."); `elementwise` gives correctly rounded values.

    >>> mpmath.nstr(exact_elementwise("softplus", -40.0), 12)
    '4.24835425529e-18'
    """
    _check_name(name, ELEMENTWISE)
    x = float(x)
    if name in ("sigmoid_grad_from_output", "tanh_grad_from_output"):
        if math.isnan(x) or math.isinf(x):
            return mpmath.mpf(_from_output_exact(name, x, get_format("float64")))
        t = _to_mpf(x)
        if name == "sigmoid_grad_from_output":
            v = L.mpf_mul(t, L.mpf_sub(_ONE, t))
        else:
            v = L.mpf_mul(L.mpf_sub(_ONE, t), L.mpf_add(_ONE, t))
        return mpmath.mpf(v)
    special = _elementwise_special(name, x)
    if special is not None:
        return mpmath.mpf(special)
    return mpmath.mpf(_ELEMENTWISE_COMPUTE[name](_to_mpf(x), prec + 16))


# ---------------------------------------------------------------- derivatives of elementwise functions


def _sigmoid_second(x: Mpf, w: int) -> Mpf:
    # sigma''(x) = sigma'(x) (1 - 2 sigma(x)), and 1 - 2 sigma(x) = -tanh(x/2)
    # = expm1(-x) / (1 + e**-x) for x >= 0 (odd in x).  With e = e**-|x|:
    # sigma''(x) = sign(x) e expm1(-|x|) / (1 + e)**3; expm1 avoids the cancellation of 1 - e.
    ax = L.mpf_abs(x)
    e = _exp(L.mpf_neg(ax), w)
    d = L.mpf_add(_ONE, e, w, "n")
    num = L.mpf_mul(e, _expm1(L.mpf_neg(ax), w), w, "n")
    v = L.mpf_div(num, L.mpf_mul(L.mpf_mul(d, d, w, "n"), d, w, "n"), w, "n")
    return L.mpf_neg(v) if x[0] else v


def _tanh_second(x: Mpf, w: int) -> Mpf:
    # d/dx sech(x)**2 = -2 tanh(x) sech(x)**2 (odd; both factors relatively accurate).
    return L.mpf_neg(L.mpf_shift(L.mpf_mul(_tanh_value(x, w), _tanh_grad_value(x, w), w, "n"), 1))


_DERIVATIVE_COMPUTE: dict[str, Callable[[Mpf, int], Mpf]] = {
    "sigmoid": _sigmoid_grad_value,
    "sigmoid_via_tanh": _sigmoid_grad_value,
    "log_sigmoid": lambda x, w: _sigmoid_pos_neg(L.mpf_neg(x), w),  # d/dx log sigma(x) = sigma(-x)
    "softplus": _sigmoid_pos_neg,  # d/dx softplus(x) = sigma(x)
    "tanh": _tanh_grad_value,
    "tanh_via_sigmoid": _tanh_grad_value,
    "sigmoid_grad": _sigmoid_second,
    "tanh_grad": _tanh_second,
}


def _derivative_scalar(name: str, x: float, fmt: Format) -> float:
    if math.isnan(x):
        return math.nan
    if name == "logit":
        # logit'(p) = 1 / (p (1 - p)): rational, rounded exactly; +inf at 0 and 1.
        if x < 0.0 or x > 1.0:
            return math.nan
        if x == 0.0 or x == 1.0:
            return math.inf
        t = _to_mpf(x)
        return round_mpf(1 / _fraction(L.mpf_mul(t, L.mpf_sub(_ONE, t))), fmt)
    if name == "sigmoid_grad_from_output":
        return -math.inf * math.copysign(1.0, x) if math.isinf(x) else round_mpf(L.mpf_sub(_ONE, L.mpf_shift(_to_mpf(x), 1)), fmt)
    if name == "tanh_grad_from_output":
        return -x * 2.0 if math.isinf(x) else round_mpf(L.mpf_neg(L.mpf_shift(_to_mpf(x), 1)), fmt)
    if math.isinf(x):
        if name == "log_sigmoid":
            return 0.0 if x > 0 else 1.0
        if name == "softplus":
            return 1.0 if x > 0 else 0.0
        return 0.0
    if x == 0.0 and name in ("sigmoid_grad", "tanh_grad"):
        return 0.0
    t = _to_mpf(x)
    fn = _DERIVATIVE_COMPUTE[name]

    def compute(w: int) -> tuple[Mpf, Mpf]:
        v = fn(t, w)
        return v, _rel_err(v, 2 * _K, w)

    return _run("d/dx " + name, fmt, compute)


def derivative(name: str, x: Any, dtype: Any) -> np.ndarray:
    """Correctly rounded derivative d/dx of the elementwise function `name` at each `x`.

    The limits at +-inf are returned (0 for the saturating functions, 1 or 0 for
    ``log_sigmoid`` and ``softplus``); ``logit'`` is ``+inf`` at 0 and 1.

    >>> derivative("softplus", np.array([0.0, -800.0]), "float64").tolist()
    [0.5, 0.0]
    """
    _check_name(name, ELEMENTWISE)
    fmt = get_format(dtype)
    a = np.asarray(x, dtype=np.float64)
    out = np.array([_derivative_scalar(name, float(v), fmt) for v in a.ravel()], dtype=np.float64)
    return out.reshape(a.shape).astype(fmt.storage)


# ---------------------------------------------------------------- vectors: logsumexp, softmax, log_softmax


@dataclass
class VectorReference:
    """Correctly rounded results of the reductions of one 1-D vector.

    Attributes
    ----------
    logsumexp : float
        ``log|sum_i b_i e**x_i|`` (``b = 1`` when absent).
    sign : float
        The sign of the sum: 1, -1, 0 for an exact zero (then ``logsumexp = -inf``), NaN.
    softmax, log_softmax : numpy.ndarray or None
        Every component (storage dtype); None when `b` was given (they take no weights).
    """

    logsumexp: float
    sign: float
    softmax: np.ndarray | None
    log_softmax: np.ndarray | None


@dataclass
class _Groups:
    """The contributing finite entries of a vector, equal x values merged (exact weights)."""

    x: list[Mpf]  # distinct x values, exact
    xf: np.ndarray  # the same as float64
    weight: list[Mpf]  # exact sum of b over each group (the count when b is absent)
    log_weight: np.ndarray  # approximate log|weight| (float64), to choose and skip terms


def _approx_log_abs(t: Mpf) -> float:
    """log|t| to about 1e-15 relative, for any exponent (t finite, nonzero)."""
    man = int(t[1])
    return math.log(man) + int(t[2]) * _LN2


def _group(xf: np.ndarray, bf: np.ndarray | None) -> _Groups:
    uniq, inverse = np.unique(xf, return_inverse=True)
    if bf is None:
        counts = np.bincount(inverse, minlength=len(uniq))
        weights = [L.from_int(int(c)) for c in counts]
    else:
        weights = [_ZERO] * len(uniq)
        for j, bi in zip(inverse.tolist(), bf.tolist(), strict=True):
            weights[j] = L.mpf_add(weights[j], _to_mpf(bi))  # exact
        keep = [j for j, wj in enumerate(weights) if wj != _ZERO]
        uniq = uniq[keep]
        weights = [weights[j] for j in keep]
    return _Groups(
        x=[_to_mpf(v) for v in uniq.tolist()],
        xf=uniq,
        weight=weights,
        log_weight=np.array([_approx_log_abs(wj) for wj in weights], dtype=np.float64),
    )


def _weighted_sum(g: _Groups, k: int, w: int) -> tuple[Mpf, Mpf, dict[int, Mpf]]:
    """``U = sum_{j != k} (B_j / B_k) e**(x_j - x_k)``, a bound on its error, and the
    exponentials ``e**(x_j - x_k)`` it computed (by group index, to share them).

    Terms are skipped when they are below ``2**-(w + 10) / G`` of the largest term of
    the sum (``G`` groups): together they are below ``2**-(w + 10) * A`` where
    ``A = sum_j |t_j|``, and that is added to the bound.  Each kept term has relative
    error at most 4 units of ``2**-w`` (exp, division, product), and the running sum adds
    at most ``G`` units of ``A``: ``|err U| <= (G + 5) 2**-w A``.
    """
    n = len(g.x)
    if n == 1:
        return _ZERO, _ZERO, {}
    # key_j - key_k = log|t_j| up to float64 rounding (relative 1e-15 of a difference,
    # absorbed by the margin of 2 below).
    with np.errstate(over="ignore", invalid="ignore"):  # huge gaps overflow to -inf: skipped
        rel = (g.xf - g.xf[k]) + (g.log_weight - g.log_weight[k])
    rel[k] = -math.inf
    second = float(np.max(rel))
    cut = second - (w + 10 + math.log2(n)) * _LN2 - 2.0
    bk = g.weight[k]
    u = _ZERO
    a = _ZERO
    exps: dict[int, Mpf] = {}
    unit = L.mpf_abs(bk) == _ONE
    keep = rel >= cut
    keep[k] = False  # when every gap overflows float64, cut is -inf and rel[k] passes too
    for j in np.flatnonzero(keep).tolist():
        d = L.mpf_sub(g.x[j], g.x[k])  # exact difference of the inputs
        e = exps[j] = _exp(d, w)
        t = L.mpf_mul(g.weight[j] if unit and not bk[0] else L.mpf_div(g.weight[j], bk, w, "n"), e, w, "n")
        u = L.mpf_add(u, t, w, "n")
        a = L.mpf_add(a, L.mpf_abs(t), w, "n")
    err = L.mpf_shift(L.mpf_mul(a, L.from_int(n + 5 + 1)), -w)  # +1: the skipped mass
    return u, err, exps


def _specials(xf: np.ndarray, bf: np.ndarray | None) -> tuple[str, Any]:
    """Classify a vector: ('nan',), ('inf', signs, mask), ('empty',) or ('finite', mask)."""
    contributing = np.ones(xf.shape, dtype=bool) if bf is None else (bf != 0)
    xc = xf[contributing]
    if np.isnan(xc).any() or (bf is not None and np.isnan(bf[contributing]).any()):
        return "nan", None
    if bf is not None:
        inf_b = contributing & np.isinf(bf)
        if (inf_b & (xf == -math.inf)).any():
            return "nan", None  # inf * e**-inf = inf * 0
        infinite = contributing & ((xf == math.inf) | inf_b)
    else:
        infinite = xf == math.inf
    if infinite.any():
        signs = np.ones(int(infinite.sum())) if bf is None else np.sign(bf[infinite])
        if (signs > 0).any() and (signs < 0).any():
            return "nan", None  # inf - inf
        return "inf", (float(signs[0]), infinite)
    finite = contributing & (xf > -math.inf)
    if not finite.any():
        return "empty", None
    return "finite", finite


def _lse_weighted(g: _Groups, fmt: Format) -> tuple[float, float]:
    """log|sum_j B_j e**x_j| and its sign, pivoting on the largest term |B_k| e**x_k."""
    if not g.x:
        return -math.inf, 0.0  # exact cancellation of the weights
    if len(g.x) == 1 and L.mpf_abs(g.weight[0]) == _ONE:
        return round_mpf(g.x[0], fmt), (-1.0 if g.weight[0][0] else 1.0)  # exact
    k = int(np.argmax(g.xf + g.log_weight))
    sign_k = -1.0 if g.weight[k][0] else 1.0
    state: dict[str, float] = {}

    def compute(w: int) -> tuple[Mpf, Mpf] | None:
        u, err_u, _ = _weighted_sum(g, k, w)
        if u == _ZERO or _mag(u) < -2:
            # |U| < 1/4: 1 + U > 0, and log1p keeps a tiny U (never formed 1 + U exactly:
            # U can be 2**-(10**30)).
            state["sign"] = sign_k
            lg = _log1p(u, w)
            spread = _ONE  # |1 + U| >= 3/4; the error of log1p(U +- err) is <= 2 err
        else:
            d = L.mpf_add(_ONE, u)  # exact: U is not tiny here
            if d == _ZERO or L.mpf_cmp(L.mpf_shift(L.mpf_abs(d), -1), err_u) < 0:
                return None  # |1 + U| not known to within a factor 2: more precision
            state["sign"] = sign_k * (-1.0 if d[0] else 1.0)
            d_abs = L.mpf_abs(d)
            lg = _log(d_abs, w)
            spread = d_abs
        lb = _log(L.mpf_abs(g.weight[k]), w)
        head = L.mpf_add(g.x[k], lb, w, "n")
        v = L.mpf_add(head, lg, w, "n")
        # With |err U| <= |1 + U| / 2, log|1 + U| moves by at most 2 |err U| / |1 + U|.
        err = L.mpf_shift(L.mpf_div(err_u, spread, w, "u"), 2)
        size = L.mpf_add(
            L.mpf_add(L.mpf_abs(g.x[k]), L.mpf_abs(lb), w, "u"),
            L.mpf_add(L.mpf_abs(lg), L.mpf_abs(v), w, "u"),
            w,
            "u",
        )
        err = L.mpf_add(err, L.mpf_shift(size, 2 - w), w, "u")
        return v, err

    w = _start_prec(fmt)
    while w <= _MAX_PREC:
        got = compute(w)
        if got is not None:
            r = _decide(got[0], got[1], fmt)
            if r is not None:
                return r, state["sign"]
        w *= 2
    raise _messages.audit_oracle_precision("logsumexp", _MAX_PREC)


def _softmax_parts(g: _Groups, w: int) -> tuple[int, Mpf, Mpf, Mpf, Mpf, dict[int, Mpf]]:
    """Pivot on the largest x (index m): ``D = sum_j c_j e**(x_j - x_m) >= 1``.

    Returns ``(m, D, rel_D, log_D, err_log_D, exps)``: D rounded to w bits with a bound
    on its relative error, and ``log D = log c_m + log1p(U)`` (all terms positive: no
    cancellation; ``1 + U`` is never formed exactly, U can be astronomically small)
    with a bound on its absolute error.
    """
    m = len(g.x) - 1  # np.unique sorts: the last group holds the maximum
    u, err_u, exps = _weighted_sum(g, m, w)  # U = D / c_m - 1 >= 0
    cm = g.weight[m]
    d = L.mpf_mul(cm, L.mpf_add(_ONE, u, w, "n"), w, "n")
    # relative error of D: that of 1 + U (|err U| / (1 + U) <= |err U|) plus 2 roundings
    rel_d = L.mpf_add(err_u, L.from_man_exp(2, -w), w, "u")
    lg1 = _log1p(u, w)
    log_d = L.mpf_add(_log(cm, w), lg1, w, "n")
    # log1p(U +- err U) moves by at most err U (U >= 0); log1p, log c_m and the sum each
    # add at most 4 units of log D.
    err_log = L.mpf_add(err_u, L.mpf_shift(log_d, 4 - w), w, "u")
    exps[m] = _ONE
    return m, d, rel_d, log_d, err_log, exps


def vector(x: Any, dtype: Any, b: Any = None, *, softmax: bool = True) -> VectorReference:
    """Correctly rounded logsumexp (with sign), softmax and log_softmax of a 1-D vector.

    The exponentials of one vector are shared by the three results.

    Parameters
    ----------
    x : array_like
        1-D, values representable in `dtype`.
    dtype : str or dtype
        The result format.
    b : array_like, optional
        Weights, same shape as `x` (SciPy's ``logsumexp(x, b=b)``).  With `b` only
        logsumexp is computed.
    softmax : bool
        Also compute softmax and log_softmax (when `b` is None).

    Notes
    -----
    Semantics: entries with ``b = 0`` contribute nothing, even if ``x`` is inf or NaN;
    entries with ``x = -inf`` contribute nothing.  NaN in a contributing entry gives NaN
    everywhere.  Contributing ``+inf`` entries (or infinite ``b``) give ``logsumexp =
    +inf`` with the sign of their ``b`` (NaN if the signs differ: inf - inf), softmax
    ``1/k`` on the ``k`` infinite entries and 0 elsewhere, log_softmax ``-log k`` there
    and ``-inf`` elsewhere.  No contributing entry (empty, all ``-inf``, all ``b = 0``)
    or an exact cancellation of the weights: ``logsumexp = -inf`` with sign 0; softmax
    zeros; log_softmax ``-inf``.

    >>> r = vector(np.array([0.0, -40.0]), "float64")
    >>> r.logsumexp, r.log_softmax.tolist()          # log1p(e**-40), -log1p(e**-40)
    (4.248354255291589e-18, [-4.248354255291589e-18, -40.0])
    """
    fmt = get_format(dtype)
    xf = np.asarray(x, dtype=np.float64).ravel()
    bf = None if b is None else np.asarray(b, dtype=np.float64).ravel()
    want = softmax and bf is None
    n = xf.size
    kind, info = _specials(xf, bf)
    if kind == "nan":
        nan = np.full(n, math.nan)
        return VectorReference(math.nan, math.nan, nan if want else None, nan.copy() if want else None)
    if kind == "empty":
        return VectorReference(
            -math.inf, 0.0, np.zeros(n) if want else None, np.full(n, -math.inf) if want else None
        )
    if kind == "inf":
        sign, mask = info
        sm = lsm = None
        if want:
            k = int(mask.sum())
            sm = np.where(mask, round_mpf(L.mpf_div(_ONE, L.from_int(k), 4 * fmt.precision, "n"), fmt), 0.0)
            top = 0.0 if k == 1 else round_mpf(L.mpf_neg(_log(L.from_int(k), 4 * fmt.precision)), fmt)
            lsm = np.where(mask, top, -math.inf)
        return VectorReference(math.inf, sign, sm, lsm)
    finite = info
    g = _group(xf[finite], None if bf is None else bf[finite])
    if bf is not None:
        lse, sign = _lse_weighted(g, fmt)
        return VectorReference(lse, sign, None, None)
    lse, sm, lsm = _softmax_all(g, xf, finite, fmt, want)
    return VectorReference(lse, 1.0, sm, lsm)


def _softmax_all(
    g: _Groups, xf: np.ndarray, finite: np.ndarray, fmt: Format, want: bool
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    n = xf.size
    # A component with e**(x_j - max) below half the smallest subnormal (with a margin of
    # e**-1 for the float64 test) rounds to 0: its softmax needs no exponential.
    under = math.log(fmt.smallest_subnormal) - _LN2 - 1.0
    lse_out: float | None = None
    sm_group: list[float | None] = [None] * len(g.x)
    lsm_group: list[float | None] = [None] * len(g.x)
    w = _start_prec(fmt)
    while w <= _MAX_PREC:
        m, d, rel_d, log_d, err_log, exps = _softmax_parts(g, w)
        if lse_out is None:
            # logsumexp = x_m + log D: a sum that can cancel (x_m < 0 < log D): the bound is
            # absolute, err_log plus one rounding of each term.
            v = L.mpf_add(g.x[m], log_d, w, "n")
            size = L.mpf_add(L.mpf_abs(g.x[m]), L.mpf_abs(v), w, "u")
            lse_out = _decide(v, L.mpf_add(err_log, L.mpf_shift(size, 1 - w), w, "u"), fmt)
            if lse_out is None:
                lse_out = _decide_split(_Split(g.x[m], log_d, err_log, w=w), fmt)
        if want:
            for j in range(len(g.x)):
                if lsm_group[j] is None:
                    # log_softmax_j = (x_j - x_m) - log D: both terms <= 0, no cancellation;
                    # x_j - x_m is exact.
                    diff = L.mpf_sub(g.x[j], g.x[m])
                    v = L.mpf_sub(diff, log_d, w, "n")
                    err = L.mpf_add(err_log, L.mpf_shift(L.mpf_abs(v), 1 - w), w, "u")
                    lsm_group[j] = _decide(v, err, fmt)
                    if lsm_group[j] is None:
                        # diff is exact and may sit on a boundary: decide by the sign of -log D
                        lsm_group[j] = _decide_split(_Split(diff, L.mpf_neg(log_d), err_log, w=w), fmt)
                if sm_group[j] is None:
                    if g.xf[j] < g.xf[m] + under:  # e**(x_j - x_m) underflows (no overflowing gap)
                        sm_group[j] = 0.0
                        continue
                    # softmax_j = e**(x_j - x_m) / D: relative error 2 (exp) + 1 (division)
                    # units plus that of D.
                    e = exps.get(j) or _exp(L.mpf_sub(g.x[j], g.x[m]), w)
                    v = L.mpf_div(e, d, w, "n")
                    rel = L.mpf_add(rel_d, L.from_man_exp(4, -w), w, "u")
                    sm_group[j] = _decide(v, L.mpf_mul(v, rel, w, "u"), fmt)
        done = lse_out is not None and (
            not want or all(s is not None for s in sm_group) and all(s is not None for s in lsm_group)
        )
        if done:
            break
        w *= 2
    else:
        raise _messages.audit_oracle_precision("softmax", _MAX_PREC)
    assert lse_out is not None
    if not want:
        return lse_out, None, None
    index = np.searchsorted(g.xf, xf[finite])
    sm = np.zeros(n)
    lsm = np.full(n, -math.inf)
    sm[finite] = np.array(sm_group, dtype=np.float64)[index]
    lsm[finite] = np.array(lsm_group, dtype=np.float64)[index]
    return lse_out, sm, lsm


def logsumexp(x: Any, dtype: Any, b: Any = None) -> tuple[float, float]:
    """Correctly rounded ``(log|sum b e**x|, sign)`` of a 1-D vector (see `vector`).

    >>> logsumexp(np.array([0.0, 0.0]), "float64", b=np.array([1.0, -1.0]))   # exact zero
    (-inf, 0.0)
    """
    r = vector(x, dtype, b, softmax=False)
    return r.logsumexp, r.sign


def softmax(x: Any, dtype: Any) -> np.ndarray:
    """Correctly rounded softmax of a 1-D vector, every component (see `vector`)."""
    r = vector(x, dtype)
    assert r.softmax is not None
    return r.softmax.astype(get_format(dtype).storage)


def log_softmax(x: Any, dtype: Any) -> np.ndarray:
    """Correctly rounded log_softmax of a 1-D vector, every component (see `vector`)."""
    r = vector(x, dtype)
    assert r.log_softmax is not None
    return r.log_softmax.astype(get_format(dtype).storage)


# ---------------------------------------------------------------- losses


def _abs_add(a: Mpf, b: Mpf, w: int) -> Mpf:
    """|a| + |b| rounded up (for error bounds)."""
    return L.mpf_add(L.mpf_abs(a), L.mpf_abs(b), w, "u")


def _bce_ball(x: float, y: float, wt: float, pw: float, w: int) -> Computed:
    """One element of binary cross-entropy with logits, as a ball at precision w.

    loss = wt [pw y softplus(-x) + (1 - y) softplus(x)]   (PyTorch's definition:
    -wt [pw y log sigma(x) + (1 - y) log(1 - sigma(x))], and -log sigma(x) = softplus(-x),
    -log(1 - sigma(x)) = softplus(x)).  A term whose coefficient is exactly 0 contributes
    0 even where its softplus is infinite: the limit at x = +-inf.
    """
    if math.isnan(x) or math.isnan(y) or math.isnan(wt) or math.isnan(pw):
        return math.nan
    if math.isinf(y) or math.isinf(wt) or math.isinf(pw):
        return math.nan  # outside the measured domain: no documented answer
    a = L.mpf_mul(L.mpf_mul(_to_mpf(wt), _to_mpf(pw)), _to_mpf(y))  # exact
    c = L.mpf_mul(_to_mpf(wt), L.mpf_sub(_ONE, _to_mpf(y)))  # exact
    if math.isinf(x):
        coef = a if x < 0 else c  # the term whose softplus is +inf; the other is 0
        if coef == _ZERO:
            return 0.0
        return -math.inf if coef[0] else math.inf
    if x == 0.0:
        s = L.mpf_add(a, c)  # exact: loss = (a + c) log 2
        if s == _ZERO:
            return 0.0
        v = L.mpf_mul(s, L.mpf_log(_TWO, w, "n"), w, "n")
        return v, _rel_err(v, 4, w)
    t = _to_mpf(x)
    # softplus(x) = max(x, 0) + softplus(-|x|), so
    # loss = [c x if x > 0 else -a x] + (a + c) softplus(-|x|):
    # an exact product plus a correction that is positive for a + c > 0 (and can be as
    # small as e**-|x|), kept apart so that the exact part may sit on a rounding boundary.
    head = L.mpf_mul(c, t) if x > 0 else L.mpf_neg(L.mpf_mul(a, t))  # exact
    total = L.mpf_add(a, c)  # exact
    tail = _softplus_value(L.mpf_neg(L.mpf_abs(t)), w)  # within 8 units
    delta = L.mpf_mul(total, tail, w, "n")
    return _Split(head, delta, _rel_err(delta, _K, w), w=w)


def _broadcast(value: Any, shape: tuple[int, ...], default: float) -> np.ndarray:
    if value is None:
        return np.full(shape, default)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)


def bce(logits: Any, targets: Any, dtype: Any, *, weight: Any = None, pos_weight: Any = None) -> np.ndarray:
    """Correctly rounded binary cross-entropy with logits, element by element.

    PyTorch's definition with ``reduction="none"``:
    ``-weight [pos_weight y log sigma(x) + (1 - y) log(1 - sigma(x))]``.
    Limits at infinite logits: 0 where the coefficient of the infinite term is 0 (x = +inf
    with y = 1, x = -inf with y = 0), +inf otherwise; NaN for NaN anywhere.

    >>> bce(np.array([np.inf, -np.inf, 0.0]), np.array([1.0, 1.0, 0.5]), "float32").tolist()
    [0.0, inf, 0.6931471824645996]
    """
    fmt = get_format(dtype)
    x = np.asarray(logits, dtype=np.float64)
    shape = x.shape
    y = _broadcast(targets, shape, 0.0)
    wt = _broadcast(weight, shape, 1.0)
    pw = _broadcast(pos_weight, shape, 1.0)
    out = np.empty(x.size)
    for i, (xi, yi, wi, pi) in enumerate(zip(x.ravel().tolist(), y.ravel().tolist(), wt.ravel().tolist(), pw.ravel().tolist(), strict=True)):
        out[i] = _run(
            "binary_cross_entropy_with_logits", fmt, lambda w, xi=xi, yi=yi, wi=wi, pi=pi: _bce_ball(xi, yi, wi, pi, w)
        )
    return out.reshape(shape).astype(fmt.storage)


def _reduce_balls(items: list[Computed], denominator: Mpf | None, w: int) -> Computed:
    """Sum (and divide by an exact denominator) a list of balls, splits and special floats."""
    specials = [v for v in items if isinstance(v, float)]
    if any(math.isnan(v) for v in specials):
        return math.nan
    infs = {v for v in specials if math.isinf(v)}
    if len(infs) == 2:
        return math.nan
    if infs:
        total: float = infs.pop()
        if denominator is not None and denominator == _ZERO:
            return total  # inf / 0 stays inf
        if denominator is not None and denominator[0]:
            total = -total
        return total
    finite = [item for item in items if not isinstance(item, float)]  # a finite special is 0
    if any(item is None for item in finite):
        return None
    if finite and all(isinstance(item, _Split) for item in finite):
        # sum of exact parts exactly, of corrections with their errors plus one rounding each
        a = _ZERO
        delta = _ZERO
        err = _ZERO
        size = _ZERO
        for item in finite:
            assert isinstance(item, _Split)
            a = L.mpf_add(a, item.a)
            delta = L.mpf_add(delta, item.delta, w, "n")
            err = L.mpf_add(err, item.err, w, "u")
            size = L.mpf_add(size, L.mpf_abs(item.delta), w, "u")
        err = L.mpf_add(err, L.mpf_shift(L.mpf_mul(size, L.from_int(len(finite) + 1)), -w), w, "u")
        if denominator is not None and denominator == _ZERO:
            if a == _ZERO and delta == _ZERO and err == _ZERO:
                return math.nan  # 0 / 0, as PyTorch gives when every target is ignored
            return None if L.mpf_cmp(L.mpf_abs(L.mpf_add(a, delta, w, "n")), err) <= 0 else (
                math.inf if not L.mpf_add(a, delta, w, "n")[0] else -math.inf
            )
        return _Split(a, delta, err, denominator, w=w)
    v = _ZERO
    err = _ZERO
    size = _ZERO
    for item in finite:
        if isinstance(item, _Split):
            item = item.ball(w)
        assert isinstance(item, tuple)
        v = L.mpf_add(v, item[0], w, "n")
        err = L.mpf_add(err, item[1], w, "u")
        size = L.mpf_add(size, L.mpf_abs(item[0]), w, "u")
    # the running sum adds one rounding of at most the partial sums' size per term
    err = L.mpf_add(err, L.mpf_shift(L.mpf_mul(size, L.from_int(len(finite) + 1)), -w), w, "u")
    if denominator is not None:
        if denominator == _ZERO:
            if v == _ZERO and err == _ZERO:
                return math.nan  # 0 / 0
            if L.mpf_cmp(L.mpf_abs(v), err) <= 0:
                return None
            return math.inf if not v[0] else -math.inf
        v = L.mpf_div(v, denominator, w, "n")
        err = L.mpf_add(
            L.mpf_div(err, L.mpf_abs(denominator), w, "u"), L.mpf_shift(L.mpf_abs(v), 1 - w), w, "u"
        )
    return v, err


def bce_reduced(
    logits: Any, targets: Any, dtype: Any, *, weight: Any = None, pos_weight: Any = None, reduction: str = "mean"
) -> float:
    """Correctly rounded ``"mean"`` or ``"sum"`` of `bce` over all elements.

    ``"mean"`` divides by the number of elements (PyTorch: weights do not normalise).

    >>> bce_reduced(np.array([0.0, 0.0]), np.array([0.0, 1.0]), "float64", reduction="sum")   # 2 log 2
    1.3862943611198906
    """
    fmt = get_format(dtype)
    x = np.asarray(logits, dtype=np.float64)
    shape = x.shape
    cols = [
        a.ravel().tolist()
        for a in (x, _broadcast(targets, shape, 0.0), _broadcast(weight, shape, 1.0), _broadcast(pos_weight, shape, 1.0))
    ]
    n = x.size
    if n == 0:
        return math.nan if reduction == "mean" else 0.0
    den = L.from_int(n) if reduction == "mean" else None

    def compute(w: int) -> Computed:
        return _reduce_balls([_bce_ball(*args, w) for args in zip(*cols, strict=True)], den, w)

    return _run("binary_cross_entropy_with_logits", fmt, compute)


@dataclass
class _Row:
    """One row of logits prepared for exact log_softmax at any precision."""

    kind: str  # "nan", "inf", "empty" or "finite"
    xf: np.ndarray
    info: Any
    groups: _Groups | None

    @classmethod
    def make(cls, row: Any) -> _Row:
        xf = np.asarray(row, dtype=np.float64).ravel()
        kind, info = _specials(xf, None)
        groups = _group(xf[info], None) if kind == "finite" else None
        return cls(kind, xf, info, groups)

    def log_softmax_balls(self, w: int) -> list[tuple[Mpf, Mpf] | float]:
        """Each component of log_softmax as a ball, or a float (-inf, exact values)."""
        n = self.xf.size
        if self.kind == "nan":
            return [math.nan] * n
        if self.kind == "empty":
            return [-math.inf] * n
        if self.kind == "inf":
            _, mask = self.info
            k = int(mask.sum())
            top = L.mpf_neg(_log(L.from_int(k), w))
            top_ball: tuple[Mpf, Mpf] | float = 0.0 if k == 1 else (top, _rel_err(top, 2, w))
            return [top_ball if mask[i] else -math.inf for i in range(n)]
        g = self.groups
        assert g is not None
        m, _, _, log_d, err_log, _ = _softmax_parts(g, w)
        balls: list[tuple[Mpf, Mpf] | float] = []
        for j in range(len(g.x)):
            v = L.mpf_sub(L.mpf_sub(g.x[j], g.x[m]), log_d, w, "n")
            balls.append((v, L.mpf_add(err_log, L.mpf_shift(L.mpf_abs(v), 1 - w), w, "u")))
        index = np.searchsorted(g.xf, self.xf)
        finite = self.info
        return [balls[int(index[i])] if finite[i] else -math.inf for i in range(n)]


def _ce_coefficients(
    n_classes: int, target: Any, weight: np.ndarray | None, smoothing: float, w: int
) -> list[tuple[Mpf, Mpf]]:
    """``coef_c = w_c q_c`` with ``q = (1 - eps) * target + eps / C`` and its error.

    ``target`` is a class index (int) or a probability vector.  PyTorch's label smoothing
    for class indices, ``(1 - eps) * nll + eps / C * sum_c (-w_c log p_c)``, has exactly
    these coefficients.
    """
    eps = _to_mpf(smoothing)
    keep = L.mpf_sub(_ONE, eps)  # exact
    exact_share = eps == _ZERO or n_classes & (n_classes - 1) == 0  # eps / C exact: eps = 0 or C = 2**k
    if exact_share:
        share = L.mpf_shift(eps, -(n_classes.bit_length() - 1))
    else:
        share = L.mpf_div(eps, L.from_int(n_classes), w, "n")  # one rounding
    out = []
    for c in range(n_classes):
        if isinstance(target, (int, np.integer)):
            base = keep if c == int(target) else _ZERO
        else:
            base = L.mpf_mul(keep, _to_mpf(float(target[c])))  # exact
        if exact_share:
            q = L.mpf_add(base, share)  # exact
            q_err = _ZERO
        else:
            q = L.mpf_add(base, share, w, "n")
            q_err = L.mpf_add(L.mpf_shift(share, -w), L.mpf_shift(L.mpf_abs(q), -w), w, "u")
        wc = _ONE if weight is None else _to_mpf(float(weight[c]))
        out.append((L.mpf_mul(wc, q), L.mpf_mul(L.mpf_abs(wc), q_err)))
    return out


def _ce_row_split(row: _Row, coefs: list[tuple[Mpf, Mpf]], w: int) -> Computed:
    """``sum_c coef_c (x_m - x_c) + (sum_c coef_c) log D`` with exact coefficients.

    ``-log_softmax_c = (x_m - x_c) + log D`` (``x_m`` the largest logit), so the loss is
    an exact rational plus ``S log D``: a `_Split`.
    """
    g = row.groups
    assert g is not None
    m, _, _, log_d, err_log, _ = _softmax_parts(g, w)
    finite = row.info
    a = _ZERO
    total = _ZERO
    infinite: set[float] = set()
    for c, (cf, _) in enumerate(coefs):
        if cf == _ZERO:
            continue  # an exactly zero coefficient contributes 0, even at log p = -inf
        if not finite[c]:
            infinite.add(-math.inf if cf[0] else math.inf)  # -log p_c = +inf
            continue
        a = L.mpf_add(a, L.mpf_mul(cf, L.mpf_sub(g.x[m], _to_mpf(row.xf[c]))))  # exact
        total = L.mpf_add(total, cf)  # exact
    if infinite:
        return math.nan if len(infinite) == 2 else infinite.pop()
    delta = L.mpf_mul(total, log_d, w, "n")
    err = L.mpf_add(L.mpf_mul(L.mpf_abs(total), err_log, w, "u"), L.mpf_shift(L.mpf_abs(delta), 1 - w), w, "u")
    return _Split(a, delta, err, w=w)


def _ce_row_ball(
    row: _Row, target: Any, weight: np.ndarray | None, smoothing: float, w: int
) -> Computed:
    """``sum_c coef_c * (-log_softmax_c)`` as a ball (or a special float)."""
    n = row.xf.size
    if isinstance(target, (int, np.integer)):
        specials = weight is not None and np.isnan(weight).any()
    else:
        t = np.asarray(target, dtype=np.float64)
        specials = np.isnan(t).any() or (weight is not None and np.isnan(weight).any())
    if specials or row.kind == "nan":
        return math.nan
    coefs = _ce_coefficients(n, target, weight, smoothing, w)
    if row.kind == "finite" and all(cf_err == _ZERO for _, cf_err in coefs):
        return _ce_row_split(row, coefs, w)
    lsm = row.log_softmax_balls(w)
    v = _ZERO
    err = _ZERO
    size = _ZERO
    infinite: set[float] = set()
    for (cf, cf_err), comp in zip(coefs, lsm, strict=True):
        if cf == _ZERO and cf_err == _ZERO:
            continue  # an exactly zero coefficient contributes 0, even at log p = -inf
        if isinstance(comp, float):
            if comp == 0.0:
                continue
            # comp = -inf: the term is +inf * coef
            if cf == _ZERO:
                return math.nan  # an inexact coefficient straddling 0 at an infinite term
            infinite.add(-math.inf if cf[0] else math.inf)
            continue
        lv, lerr = comp
        term = L.mpf_neg(L.mpf_mul(cf, lv, w, "n"))
        v = L.mpf_add(v, term, w, "n")
        size = L.mpf_add(size, L.mpf_abs(term), w, "u")
        # |coef| err(lsm) + |lsm| err(coef) + one rounding of the product
        err = L.mpf_add(err, L.mpf_mul(L.mpf_abs(cf), lerr, w, "u"), w, "u")
        err = L.mpf_add(err, L.mpf_mul(L.mpf_abs(lv), cf_err, w, "u"), w, "u")
    if infinite:
        return math.nan if len(infinite) == 2 else infinite.pop()
    err = L.mpf_add(err, L.mpf_shift(L.mpf_mul(size, L.from_int(2 * n + 2)), -w), w, "u")
    return v, err


def cross_entropy_row(
    logits: Any,
    target: Any,
    dtype: Any,
    *,
    weight: Any = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> float:
    """Correctly rounded softmax cross-entropy of one row (PyTorch, ``reduction="none"``).

    Parameters
    ----------
    logits : array_like
        1-D, the C logits of the row.
    target : int or array_like
        A class index, or C class probabilities.
    weight : array_like, optional
        C class weights.
    label_smoothing : float
        ``eps``: the target becomes ``(1 - eps) * target + eps / C``.
    ignore_index : int, optional
        A class-index target equal to it gives 0.

    Notes
    -----
    ``loss = -sum_c w_c q_c log_softmax(x)_c`` with ``q`` the smoothed target.  A class
    with ``q_c w_c = 0`` contributes 0 even at a ``-inf`` logit; a class with
    ``q_c w_c > 0`` at a ``-inf`` logit gives ``+inf``.  NaN anywhere gives NaN.

    >>> cross_entropy_row(np.array([0.0, 40.0]), 1, "float64")       # log1p(e**-40)
    4.248354255291589e-18
    """
    fmt = get_format(dtype)
    if isinstance(target, (int, np.integer)) and ignore_index is not None and int(target) == ignore_index:
        return 0.0
    row = _Row.make(logits)
    wt = None if weight is None else np.asarray(weight, dtype=np.float64)
    tg = target if isinstance(target, (int, np.integer)) else np.asarray(target, dtype=np.float64)
    return _run("cross_entropy_with_logits", fmt, lambda w: _ce_row_ball(row, tg, wt, float(label_smoothing), w))


def cross_entropy(
    logits: Any,
    targets: Any,
    dtype: Any,
    *,
    weight: Any = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Any:
    """Correctly rounded softmax cross-entropy of a batch ``(N, C)``, PyTorch's reductions.

    ``targets`` is ``(N,)`` integer class indices or ``(N, C)`` probabilities.
    ``reduction="none"`` gives the N row losses (`cross_entropy_row`), ``"sum"`` their
    sum; ``"mean"`` divides the sum by ``sum_n w_{t_n}`` over the rows not ignored for
    class indices (the count when `weight` is None; with label smoothing too, as PyTorch
    does), and by N for probabilities.  An all-ignored batch gives NaN (0 / 0).

    >>> cross_entropy(np.zeros((2, 4)), np.array([0, 3]), "float32", reduction="mean")    # log 4
    1.3862943649291992
    """
    fmt = get_format(dtype)
    x = np.asarray(logits, dtype=np.float64)
    n_rows, n_classes = x.shape
    index_targets = np.issubdtype(np.asarray(targets).dtype, np.integer)
    tg = np.asarray(targets) if index_targets else np.asarray(targets, dtype=np.float64)
    wt = None if weight is None else np.asarray(weight, dtype=np.float64)
    if reduction == "none":
        return np.array(
            [
                cross_entropy_row(
                    x[i],
                    int(tg[i]) if index_targets else tg[i],
                    fmt,
                    weight=wt,
                    label_smoothing=label_smoothing,
                    ignore_index=ignore_index,
                )
                for i in range(n_rows)
            ],
            dtype=np.float64,
        ).astype(fmt.storage)
    rows = [_Row.make(x[i]) for i in range(n_rows)]
    active = [not (index_targets and ignore_index is not None and int(tg[i]) == ignore_index) for i in range(n_rows)]
    den: Mpf | None = None
    if reduction == "mean":
        if index_targets:
            den = _ZERO
            for i in range(n_rows):
                if active[i]:
                    den = L.mpf_add(den, _ONE if wt is None else _to_mpf(float(wt[int(tg[i])])))  # exact
        else:
            den = L.from_int(n_rows)
        if n_rows == 0:
            return math.nan

    def compute(w: int) -> Computed:
        balls: list[Computed] = [
            _ce_row_ball(rows[i], int(tg[i]) if index_targets else tg[i], wt, float(label_smoothing), w)
            if active[i]
            else 0.0
            for i in range(n_rows)
        ]
        return _reduce_balls(balls, den, w)

    return _run("cross_entropy_with_logits", fmt, compute)


def bce_all(
    logits: Any, targets: Any, dtype: Any, *, weight: Any = None, pos_weight: Any = None
) -> tuple[np.ndarray, float, float]:
    """`bce` (per element), and its ``"mean"`` and ``"sum"``, from one evaluation.

    >>> none, mean, total = bce_all(np.zeros(2), np.array([0.0, 1.0]), "float64")
    >>> none.tolist(), mean, total                      # log 2, log 2, 2 log 2
    ([0.6931471805599453, 0.6931471805599453], 0.6931471805599453, 1.3862943611198906)
    """
    fmt = get_format(dtype)
    x = np.asarray(logits, dtype=np.float64)
    shape = x.shape
    cols = [
        a.ravel().tolist()
        for a in (x, _broadcast(targets, shape, 0.0), _broadcast(weight, shape, 1.0), _broadcast(pos_weight, shape, 1.0))
    ]
    n = x.size
    den = L.from_int(max(n, 1))
    items, reduced = _run_batch(
        "binary_cross_entropy_with_logits",
        fmt,
        lambda w: [_bce_ball(*args, w) for args in zip(*cols, strict=True)],
        lambda items, w: [_reduce_balls(items, den, w), _reduce_balls(items, None, w)],
    )
    mean = math.nan if n == 0 else reduced[0]
    return np.array(items, dtype=np.float64).reshape(shape).astype(fmt.storage), mean, reduced[1]


def cross_entropy_all(
    logits: Any,
    targets: Any,
    dtype: Any,
    *,
    weight: Any = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """`cross_entropy` with ``"none"``, ``"mean"`` and ``"sum"`` from one evaluation.

    >>> none, mean, total = cross_entropy_all(np.zeros((2, 4)), np.array([0, 3]), "float32")
    >>> none.tolist(), mean                             # log 4
    ([1.3862943649291992, 1.3862943649291992], 1.3862943649291992)
    """
    fmt = get_format(dtype)
    x = np.asarray(logits, dtype=np.float64)
    n_rows = x.shape[0]
    index_targets = np.issubdtype(np.asarray(targets).dtype, np.integer)
    tg = np.asarray(targets) if index_targets else np.asarray(targets, dtype=np.float64)
    wt = None if weight is None else np.asarray(weight, dtype=np.float64)
    rows = [_Row.make(x[i]) for i in range(n_rows)]
    active = [not (index_targets and ignore_index is not None and int(tg[i]) == ignore_index) for i in range(n_rows)]
    if index_targets:
        den = _ZERO
        for i in range(n_rows):
            if active[i]:
                den = L.mpf_add(den, _ONE if wt is None else _to_mpf(float(wt[int(tg[i])])))  # exact
    else:
        den = L.from_int(n_rows)

    def compute(w: int) -> list[Computed]:
        return [
            _ce_row_ball(rows[i], int(tg[i]) if index_targets else tg[i], wt, float(label_smoothing), w)
            if active[i]
            else 0.0
            for i in range(n_rows)
        ]

    items, reduced = _run_batch(
        "cross_entropy_with_logits",
        fmt,
        compute,
        lambda items, w: [_reduce_balls(items, den, w), _reduce_balls(items, None, w)],
    )
    mean = math.nan if n_rows == 0 else reduced[0]
    return np.array(items, dtype=np.float64).astype(fmt.storage), mean, reduced[1]


# ---------------------------------------------------------------- gradients of reductions and losses
#
# These carry cancellation that the formulas cannot remove (g_i - <g, s>, the BCE
# gradient (1 - y + pw y) sigma(x) - pw y), so they are evaluated with mpmath at two
# precisions, P and 2P: the error of the 2P value is about 2**-P times that of the P
# value, so |v_P - v_2P| (doubled) bounds the error of v_2P as long as the error scales
# with the precision, which holds for these formulas (exact inputs, no skipped terms).
# The ball decides the rounding as above; P doubles until it does.


def _two_precision(name: str, fmt: Format, fn: Callable[[], list[Any]], n: int) -> np.ndarray:
    """Correctly rounded outputs of ``fn`` (a list of n mpf or float values)."""
    out: list[float | None] = [None] * n
    p = _start_prec(fmt)
    prev = None
    while p <= _MAX_PREC:
        with mpmath.workprec(p):
            cur = fn()
        if prev is not None:
            for i in range(n):
                if out[i] is not None:
                    continue
                a, b = prev[i], cur[i]
                if isinstance(b, float):
                    out[i] = b
                    continue
                err = L.mpf_add(
                    L.mpf_shift(L.mpf_abs(L.mpf_sub(a._mpf_, b._mpf_)), 1),
                    L.mpf_shift(L.mpf_abs(b._mpf_), 4 - p),
                    p,
                    "u",
                )
                out[i] = _decide(b._mpf_, err, fmt)
            if all(v is not None for v in out):
                return np.array(out, dtype=np.float64).astype(fmt.storage)
        prev = cur
        p *= 2
    raise _messages.audit_oracle_precision(name, _MAX_PREC)


# "Exact" below means rounded to the working precision plus _WIDE bits: exact for every
# operand within 2**_WIDE of the others, and an error 2**-_WIDE below the largest operand
# otherwise (terms e^-1e300 beside 1 cannot be added exactly).  Every gradient that does not
# underflow is at least 2**-1100 / 2**1030 of its largest term (float64 operands), so this
# costs less than 2**-2000 of the result.
_WIDE = 4400


def _exact_sum(values: Iterable[Any]) -> Any:
    """The sum of mpf values, "exactly" (see ``_WIDE``), as a raw mpf."""
    prec = mpmath.mp.prec + _WIDE
    acc = L.fzero
    for v in values:
        acc = L.mpf_add(acc, v._mpf_ if isinstance(v, mpmath.mpf) else v, prec, "n")
    return acc


def _exact(a: Any, b: Any, op: Callable[..., Any]) -> Any:
    """``op(a, b)`` "exactly" (``mpf_mul``, ``mpf_sub``...) on raw mpfs or mpf values."""
    return op(a._mpf_ if isinstance(a, mpmath.mpf) else a, b._mpf_ if isinstance(b, mpmath.mpf) else b, mpmath.mp.prec + _WIDE, "n")


def _mp_terms(x: np.ndarray, b: np.ndarray | None = None) -> tuple[list[mpmath.mpf], Any]:
    """``t_i = b_i e**(x_i - m)`` (rounded at the working precision) and their exact sum.

    The gradient references below combine these terms with exact arithmetic (``_WIDE``
    bits beyond the working precision) and round once at the end, so the only errors are the roundings of the
    exponentials, which shrink with the working precision: no ``1 - s_i`` that cancels to
    a fixed-precision 0 where a probability saturates (``1 - s_i = e^-720``, say), and
    the two-precision loop of ``_two_precision`` sees every error it has to bound.
    """
    xs = [mpmath.mpf(float(v)) for v in x]
    bs = [mpmath.mpf(1)] * len(xs) if b is None else [mpmath.mpf(float(v)) for v in b]
    m = max(xs)
    terms = [bi * mpmath.exp(xi - m) for xi, bi in zip(xs, bs, strict=True)]
    return terms, _exact_sum(terms)


def _ratio(num: Any, den: Any) -> Any:
    """``num / den`` (raw mpfs) at the working precision; exactly 0.0 (a float) for a zero
    numerator, which the two-precision loop then accepts as exact."""
    if num == L.fzero:
        return 0.0
    return mpmath.mpf(num) / mpmath.mpf(den)


def logsumexp_grad(x: Any, dtype: Any, b: Any = None) -> np.ndarray:
    """Correctly rounded gradient of ``log|sum b e**x|``: ``b_i e**x_i / sum_j b_j e**x_j``.

    Finite inputs only (the gradient at special values is the gradients issue's to define).

    >>> logsumexp_grad(np.array([0.0, 0.0]), "float32").tolist()
    [0.5, 0.5]
    """
    fmt = get_format(dtype)
    xf = np.asarray(x, dtype=np.float64).ravel()
    bf = None if b is None else np.asarray(b, dtype=np.float64).ravel()

    def fn() -> list[Any]:
        t, s_ex = _mp_terms(xf, bf)
        return [_ratio(ti._mpf_, s_ex) for ti in t]

    return _two_precision("logsumexp gradient", fmt, fn, xf.size)


def softmax_vjp(x: Any, cotangent: Any, dtype: Any) -> np.ndarray:
    """Correctly rounded ``J^T g`` of softmax: ``s_i (g_i - sum_j g_j s_j)``.

    Evaluated as ``t_i (g_i S - U) / S**2`` with ``S = sum_j t_j`` and ``U = sum_j g_j
    t_j`` exact, so that ``g_i S - U = sum_j (g_i - g_j) t_j`` is exact too: a saturated
    ``s_i`` near 1 makes ``g_i - sum_j g_j s_j`` smaller than any fixed working precision
    can see, not this.

    >>> softmax_vjp(np.array([0.0, 0.0]), np.array([1.0, 0.0]), "float64").tolist()
    [0.25, -0.25]
    >>> # d softmax_0 / dx_0 at x = (700, 0): s_0 (1 - s_0) = e^-700 / (1 + e^-700)^2
    >>> float(softmax_vjp(np.array([700.0, 0.0]), np.array([1.0, 0.0]), "float64")[0])
    9.85967654375977e-305
    """
    fmt = get_format(dtype)
    xf = np.asarray(x, dtype=np.float64).ravel()
    gf = [mpmath.mpf(float(v)) for v in np.asarray(cotangent, dtype=np.float64).ravel()]

    def fn() -> list[Any]:
        t, s_ex = _mp_terms(xf)
        u_ex = _exact_sum(_exact(gj, tj, L.mpf_mul) for gj, tj in zip(gf, t, strict=True))
        s2 = L.mpf_mul(s_ex, s_ex, 0)
        return [_ratio(_exact(ti, _exact(_exact(gi, s_ex, L.mpf_mul), u_ex, L.mpf_sub), L.mpf_mul), s2) for gi, ti in zip(gf, t, strict=True)]

    return _two_precision("softmax vjp", fmt, fn, xf.size)


def _log_softmax_vjp_terms(t: list[Any], s_ex: Any, g: list[Any]) -> list[Any]:
    # g_i - s_i sum_j g_j = (g_i S - t_i G) / S with S and G exact sums: exact numerator
    g_ex = _exact_sum(g)
    return [_ratio(_exact(_exact(gi, s_ex, L.mpf_mul), _exact(ti, g_ex, L.mpf_mul), L.mpf_sub), s_ex) for gi, ti in zip(g, t, strict=True)]


def log_softmax_vjp(x: Any, cotangent: Any, dtype: Any) -> np.ndarray:
    """Correctly rounded ``J^T g`` of log_softmax: ``g_i - s_i sum_j g_j``.

    Evaluated as ``(g_i S - t_i G) / S`` with the sums ``S`` and ``G`` exact: no ``1 -
    s_i`` that a working precision rounds to 0 where ``s_i`` saturates.

    >>> log_softmax_vjp(np.array([0.0, 0.0]), np.array([1.0, 0.0]), "float64").tolist()
    [0.5, -0.5]
    >>> float(log_softmax_vjp(np.array([700.0, 0.0]), np.array([1.0, 0.0]), "float64")[0])
    9.85967654375977e-305
    """
    fmt = get_format(dtype)
    xf = np.asarray(x, dtype=np.float64).ravel()
    gf = [mpmath.mpf(float(v)) for v in np.asarray(cotangent, dtype=np.float64).ravel()]

    def fn() -> list[Any]:
        t, s_ex = _mp_terms(xf)
        return _log_softmax_vjp_terms(t, s_ex, gf)

    return _two_precision("log_softmax vjp", fmt, fn, xf.size)


def bce_grad(logits: Any, targets: Any, dtype: Any, *, weight: Any = None, pos_weight: Any = None) -> np.ndarray:
    """Correctly rounded d(loss)/d(logit) of `bce` per element (finite logits).

    ``w [(1 - y + pw y) sigma(x) - pw y] = w [(1 - y) - pw y e] / (1 + e)`` with ``e =
    e**-x`` (``x >= 0``; for ``x < 0`` numerator and denominator are multiplied by ``e**x``),
    the numerator exact but for the rounding of ``e``: ``sigma(x) - 1`` is never formed, so
    a saturated logit keeps its gradient (``-e^-800`` at x = 800 with y = 1, not 0).

    >>> bce_grad(np.array([0.0]), np.array([1.0]), "float64").tolist()
    [-0.5]
    >>> bce_grad(np.array([40.0]), np.array([1.0]), "float64").tolist()  # -e^-40 / (1 + e^-40)
    [-4.248354255291589e-18]
    """
    fmt = get_format(dtype)
    x = np.asarray(logits, dtype=np.float64)
    shape = x.shape
    cols = [a.ravel().tolist() for a in (x, _broadcast(targets, shape, 0.0), _broadcast(weight, shape, 1.0), _broadcast(pos_weight, shape, 1.0))]

    def fn() -> list[Any]:
        out: list[Any] = []
        one = mpmath.mpf(1)
        for xi, yi, wi, pi in zip(*cols, strict=True):
            xm, ym, wm, pm = (mpmath.mpf(v) for v in (xi, yi, wi, pi))
            e = mpmath.exp(-abs(xm))
            up = _exact(one, ym, L.mpf_sub)  # 1 - y
            down = _exact(pm, ym, L.mpf_mul)  # pw y
            if xm == 0:  # e = 1: the value w (1 - y - pw y) / 2 is rational (and may be a midpoint)
                num = _exact(_exact(up, down, L.mpf_sub), wm, L.mpf_mul)
                out.append(0.0 if num == L.fzero else round_mpf(L.mpf_shift(num, -1), fmt))
                continue
            if xm >= 0:
                num = _exact(_exact(up, wm, L.mpf_mul), _exact(_exact(down, e, L.mpf_mul), wm, L.mpf_mul), L.mpf_sub)
            else:
                num = _exact(_exact(_exact(up, e, L.mpf_mul), wm, L.mpf_mul), _exact(down, wm, L.mpf_mul), L.mpf_sub)
            out.append(_ratio(num, (one + e)._mpf_))
        return out

    return _two_precision("binary_cross_entropy_with_logits gradient", fmt, fn, x.size).reshape(shape)


def cross_entropy_grad(
    logits: Any, target: Any, dtype: Any, *, weight: Any = None, label_smoothing: float = 0.0
) -> np.ndarray:
    """Correctly rounded gradient of `cross_entropy_row` w.r.t. the row's logits (finite).

    ``(sum_c coef_c) softmax_i - coef_i`` with ``coef_c = w_c q_c``: minus the log_softmax
    VJP with cotangent ``coef``, evaluated the same way (exact sums, no ``1 - s_i``).

    >>> cross_entropy_grad(np.array([0.0, 0.0]), 0, "float64").tolist()
    [-0.5, 0.5]
    >>> float(cross_entropy_grad(np.array([700.0, 0.0]), 0, "float64")[0])  # -e^-700 / (1 + e^-700)
    -9.85967654375977e-305
    """
    fmt = get_format(dtype)
    xf = np.asarray(logits, dtype=np.float64).ravel()
    n = xf.size

    def fn() -> list[Any]:
        eps = mpmath.mpf(float(label_smoothing))
        if isinstance(target, (int, np.integer)):
            q = [(1 - eps) * (1 if c == int(target) else 0) + eps / n for c in range(n)]
        else:
            q = [(1 - eps) * mpmath.mpf(float(t)) + eps / n for t in np.asarray(target, dtype=np.float64)]
        wts = [mpmath.mpf(1)] * n if weight is None else [mpmath.mpf(float(v)) for v in np.asarray(weight, dtype=np.float64)]
        coef = [a * b for a, b in zip(wts, q, strict=True)]
        t, s_ex = _mp_terms(xf)
        return [v if isinstance(v, float) else -v for v in _log_softmax_vjp_terms(t, s_ex, coef)]

    return _two_precision("cross_entropy_with_logits gradient", fmt, fn, n)


# ---------------------------------------------------------------- parallel map


_WORK: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []


def _run_indices(indices: list[int]) -> list[Any]:
    """Worker side: run the inherited work items by index (nothing but ints is pickled in)."""
    return [_WORK[i][0](*_WORK[i][1], **_WORK[i][2]) for i in indices]


def parallel_map(
    fn: Callable[..., Any],
    items: Iterable[tuple[Any, ...]],
    *,
    processes: int | None = None,
    min_items: int = 64,
    **kwargs: Any,
) -> list[Any]:
    """``[fn(*item, **kwargs) for item in items]`` over forked worker processes.

    Uses the ``fork`` start method: the workers inherit the loaded modules and the work
    list itself, so only indices travel to them (any callable works, closures included)
    and only results travel back (they must pickle).  ``processes`` workers (default
    ``min(2, cpu count)``); batches smaller than `min_items`, or ``processes=1``, run in
    this process.

    >>> parallel_map(pow, [(2, 3), (3, 2)], processes=1)
    [8, 9]
    """
    work = [(fn, tuple(item), kwargs) for item in items]
    if processes is None:
        processes = min(2, os.cpu_count() or 1)
    if processes <= 1 or len(work) < min_items or "fork" not in multiprocessing.get_all_start_methods():
        return [f(*a, **kw) for f, a, kw in work]
    import warnings

    n_chunks = min(len(work), 8 * processes)
    # interleaved chunks balance cheap and costly items that the samplers put side by side
    chunks = [list(range(i, len(work), n_chunks)) for i in range(n_chunks)]
    ctx = multiprocessing.get_context("fork")
    _WORK[:] = work
    try:
        with warnings.catch_warnings():
            # JAX warns that fork() is unsafe for its threads; the workers run only mpmath
            # and NumPy on their inherited copy of the data, never JAX.
            warnings.filterwarnings("ignore", message=r".*fork.*", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=r".*fork.*", category=DeprecationWarning)
            with ctx.Pool(processes) as pool:
                parts = pool.map(_run_indices, chunks, chunksize=1)
    finally:
        _WORK.clear()
    out: list[Any] = [None] * len(work)
    for idx, part in zip(chunks, parts, strict=True):
        for i, value in zip(idx, part, strict=True):
            out[i] = value
    return out
