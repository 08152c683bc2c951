"""Derivative kernels: pure array-API math for the gradient rules.

Like ``stablenn._kernels``, every function takes the namespace ``xp`` first, receives
arrays in the dtype to compute in (the *work* dtype: float64 where the backend has it) and
``exact`` (True when the work dtype is the result dtype, so that rounding errors of the
intermediate steps must be carried in double-double).  Nothing here names a backend.

Three families:

* local derivatives of the elementwise functions, from the input (``d_<name>``);
* derivatives from the *saved output* plus a rounding residual (``*_from_saved``): the
  backward pass of sigmoid, tanh, softmax and log_softmax keeps only its output and a
  residual that restores the digits the output's rounding lost (see ``residual_*``);
* the gradient arrays of the reductions and losses (``weighted_softmax``,
  ``softmax_vjp_parts``, ``bce_partials``, ``cross_entropy_partials``).

The special values follow issue 4: gradients are the limits where they exist (0 for an all
``-inf`` slice, even shares over ``+inf`` entries, ``sigmoid(x) - y`` at infinite logits), and
NaN appears only where the input holds a NaN.
"""

from __future__ import annotations

import math
from typing import Any

from .._kernels import _dd
from .._kernels import elementwise as ek
from .._kernels.reductions import _log_abs, shift_terms, sum_terms
from .._kernels.reductions import log_softmax as log_softmax_kernel
from .._namespace import Array, Namespace

_HUGE_ARG = 1000.0  # exp(-2000) == 0 in every dtype: clip before doubling |x|


# ---------------------------------------------------------------- elementwise, from the input


def _dd_mode(xp: Namespace, x: Array, exact: bool) -> bool:
    """Double-double evaluation: the result dtype is the work dtype, float64."""
    return exact and x.dtype == xp.float64


_TINY_DD = 2.0**-1000  # below this a double-double's low part is lost (subnormal): plain values


def _sech2_dd(xp: Namespace, e_hi: Array, e_lo: Array, power: int = 2) -> tuple[Array, Array]:
    """``e / (1 + e)**power`` in double-double, ``e`` in [0, 1] a double-double pair."""
    one, zero = xp.ones_like(e_hi), xp.zeros_like(e_hi)
    s = _dd.add(one, zero, e_hi, e_lo)
    d = _dd.mul(xp, *s, *s, guard=False)  # operands in [1, 2]
    if power == 3:
        d = _dd.mul(xp, *d, *s, guard=False)
    q_hi, q_lo = _dd.div(xp, e_hi, e_lo, *d, guard=False)
    # a subnormal e: e / (1 + e)^k = e to far below one rounding of the (subnormal) result
    tiny = e_hi < _TINY_DD
    return xp.where(tiny, e_hi, q_hi), xp.where(tiny, 0.0, q_lo)


def d_sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # sigma'(x) = e / (1 + e)^2, e = exp(-|x|): no 1 - sigma cancellation.  float64: e as a
    # double-double (our own exp, not the library's: XLA's is 1-2 ULP off and the quotient
    # adds its roundings), the quotient in double-double, rounded once.
    if not _dd_mode(xp, x, exact):
        return ek.sigmoid_grad(xp, x, exact)
    q_hi, q_lo = _sech2_dd(xp, *exp_dd(xp, -xp.abs(x)))
    return _keep_nan(xp, x, q_hi + q_lo)


def d_log_sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # d/dx log sigma(x) = sigma(-x): 1 at -inf, 0 at +inf, e^-x in the positive tail
    if not _dd_mode(xp, x, exact):
        return ek.sigmoid(xp, -x, exact)
    hi, lo = sigmoid_dd(xp, -x, exact)
    return hi + lo


def d_softplus(xp: Namespace, x: Array, exact: bool) -> Array:
    # d/dx softplus(x) = sigma(x): keeps the subnormal tail e^x for x << 0
    if not _dd_mode(xp, x, exact):
        return ek.sigmoid(xp, x, exact)
    hi, lo = sigmoid_dd(xp, x, exact)
    return hi + lo


# mpmath.mp.prec = 300; l = mpmath.log(4); float(l), float(l - float(l))
_LN4_HI, _LN4_LO = 1.3862943611198906, 4.638093627692599e-17
# mpmath.mp.prec = 300; l = mpmath.log(8); float(l), float(l - float(l))
_LN8_HI, _LN8_LO = 2.0794415416798357, 1.8059370687790465e-16


def _scaled_tail(xp: Namespace, two_a: Array, ln_hi: float, ln_lo: float) -> Array:
    """``c e^(-2a)`` with ``c = e^(ln_hi + ln_lo)`` (4 or 8) as one exponential, rounded once.

    Far out, ``e^(-2a)`` is subnormal (and has lost its relative precision) before ``c
    e^(-2a)`` is; ``ln c - 2a`` is carried as a TwoSum so that the argument is exact.
    """
    u_hi, u_lo = _dd.two_sum(-two_a, ln_hi + xp.zeros_like(two_a))
    hi, lo = exp_dd(xp, u_hi, u_lo + ln_lo)
    return hi + lo


def d_tanh(xp: Namespace, x: Array, exact: bool) -> Array:
    # tanh'(x) = 4 e / (1 + e)^2, e = exp(-2|x|): no 1 - tanh^2 cancellation.  float64: in
    # double-double with our own exp; beyond 2|x| = 700 (e subnormal) as e^(ln 4 - 2|x|).
    if not _dd_mode(xp, x, exact):
        return ek.tanh_grad(xp, x, exact)
    two_a = 2.0 * xp.minimum(xp.abs(x), _HUGE_ARG)  # exact
    q_hi, q_lo = _sech2_dd(xp, *exp_dd(xp, -two_a))
    out = 4.0 * q_hi + 4.0 * q_lo
    out = xp.where(two_a > 700.0, _scaled_tail(xp, xp.maximum(two_a, 700.0), _LN4_HI, _LN4_LO), out)
    return _keep_nan(xp, x, out)


def d_logit(xp: Namespace, p: Array, exact: bool) -> Array:
    # logit'(p) = 1 / (p (1 - p)): 1 - p is exact for p >= 1/2 (Sterbenz) and carried as a
    # double-double pair below; +inf at p = 0 and 1, NaN outside [0, 1].
    inside = (p > 0) & (p < 1)
    ps = xp.where(inside, p, 0.5)
    if exact:
        c_hi, c_lo = _dd.two_sum(xp.ones_like(ps), -ps)
        d_hi, d_lo = _dd.mul(xp, ps, xp.zeros_like(ps), c_hi, c_lo)
        # a subnormal product cannot be split exactly: fall back to the plain quotient there
        tiny = d_hi < 2.0**-960
        d_safe = xp.where(tiny, 1.0, d_hi)
        q_hi, q_lo = _dd.div(xp, xp.ones_like(ps), xp.zeros_like(ps), d_safe, xp.where(tiny, 0.0, d_lo))
        out = xp.where(tiny, 1.0 / (ps * (1.0 - ps)), q_hi + q_lo)
    else:
        out = 1.0 / (ps * (1.0 - ps))
    edge = (p == 0) | (p == 1)
    out = xp.where(edge, xp.inf, out)
    return xp.where(inside | edge, out, xp.nan)


def d_sigmoid_grad(xp: Namespace, x: Array, exact: bool) -> Array:
    # sigma''(x) = sigma'(x) (1 - 2 sigma(x)) = -sigma'(x) tanh(x/2): 1 - 2 sigma(x) cancels
    # near 0, tanh(x/2) keeps its relative accuracy there.  float64, with a = |x|, e = e^-a
    # and m = e^-a - 1 (both our own, in double-double): tanh(a/2) = -m / (1 + e), so
    # sigma'' = -sign(x) (-m) e / (1 + e)^3, rounded once.
    if not _dd_mode(xp, x, exact):
        return -ek.sigmoid_grad(xp, x, exact) * ek.tanh(xp, x / 2.0, exact)
    a = xp.abs(x)
    q = _sech2_dd(xp, *exp_dd(xp, -a), power=3)
    m_hi, m_lo = expm1_dd(xp, -a)
    p_hi, p_lo = _dd.mul(xp, *q, -m_hi, -m_lo, guard=False)
    tiny = q[0] < _TINY_DD  # e subnormal: -m = 1 to far below its rounding
    out = xp.where(tiny, q[0], p_hi + p_lo)
    # |x| < 2**-30: sigma'' = -x/8 (1 - x^2/4 + ...), rounded once (and no product with a
    # tiny -m, which XLA would flush below the normal range)
    out = xp.where(a < 2.0**-30, a / 8.0, out)
    return _keep_nan(xp, x, xp.where(x < 0, out, -out))


def d_tanh_grad(xp: Namespace, x: Array, exact: bool) -> Array:
    # d/dx sech^2(x) = -2 tanh(x) sech^2(x): both factors relatively accurate.  float64, with
    # a = |x|, e = e^-2a, m = e^-2a - 1: tanh(a) = -m / (1 + e), sech^2 = 4 e / (1 + e)^2, so
    # the derivative is -sign(x) 8 (-m) e / (1 + e)^3, rounded once; beyond 2a = 700 (e
    # subnormal) -sign(x) e^(ln 8 - 2a).
    if not _dd_mode(xp, x, exact):
        return -2.0 * ek.tanh(xp, x, exact) * ek.tanh_grad(xp, x, exact)
    two_a = 2.0 * xp.minimum(xp.abs(x), _HUGE_ARG)
    q = _sech2_dd(xp, *exp_dd(xp, -two_a), power=3)
    m_hi, m_lo = expm1_dd(xp, -two_a)
    p_hi, p_lo = _dd.mul(xp, *q, -m_hi, -m_lo, guard=False)
    out = 8.0 * p_hi + 8.0 * p_lo
    out = xp.where(two_a > 700.0, _scaled_tail(xp, xp.maximum(two_a, 700.0), _LN8_HI, _LN8_LO), out)
    out = xp.where(two_a < 2.0**-29, two_a, out)  # -2x (1 - 4x^2/3 + ...), rounded once
    return _keep_nan(xp, x, xp.where(x < 0, out, -out))


def d_sigmoid_grad_from_output(xp: Namespace, y: Array, exact: bool) -> Array:
    # d/dy y (1 - y) = 1 - 2y: 2y is exact and the subtraction exact for y in [1/4, 1]
    return 1.0 - 2.0 * y


def d_tanh_grad_from_output(xp: Namespace, y: Array, exact: bool) -> Array:
    # d/dy (1 - y)(1 + y) = -2y, exact
    return -2.0 * y


# ---------------------------------------------------------------- output-saving: sigmoid and tanh


def residual_sigmoid(xp: Namespace, x: Array, y: Array, exact: bool) -> Array:
    """What the rounding of ``y = fl(sigma(x))`` lost, in the work dtype.

    Where ``y >= 1/2``: ``r = (1 - y) - sigma(-x)``: ``1 - y`` is exact there (Sterbenz) and
    ``sigma(-x)`` is computed from the input, so ``(1 - y) - r`` gives back the complement
    that ``1 - y`` alone rounds to 0 from x = 16.6 (float32).  Below 1/2: ``r = sigma(x) -
    y``, the rounding error of ``y`` itself (``sigma(x)`` in double-double).  ``x`` and ``y``
    are in the work dtype.
    """
    c = ek.sigmoid(xp, -xp.abs(x), exact)  # sigma(-|x|) = sigma(-x) where x >= 0
    s_hi, s_lo = sigmoid_dd(xp, xp.where(x < 0, x, -1.0), exact)
    upper = y >= 0.5
    lower = (s_hi - y) + s_lo
    out = xp.where(upper, (1.0 - y) - xp.where(upper, c, 0.0), xp.where(upper, 0.0, lower))
    return xp.where(xp.isfinite(out), out, 0.0)


def sigmoid_from_saved(xp: Namespace, y: Array, r: Array | None, exact: bool) -> Array:
    """sigma'(x) from the saved output ``y`` and residual ``r`` (None: from ``y`` alone).

    The factor below 1/2 is ``s = (1 - y) - r = sigma(-x)`` where ``y >= 1/2`` and ``s = y +
    r = sigma(x)`` below; ``sigma' = s (1 - s)``.  Differentiable in ``y`` with the right
    second derivative (``r`` is a constant).
    """
    upper = y >= 0.5
    if r is None:
        small = xp.where(upper, 1.0 - y, y)
    else:
        small = xp.where(upper, (1.0 - y) - r, y + r)
    if exact:
        big_hi, big_lo = _dd.two_sum(xp.ones_like(small), -small)
        p_hi, p_lo = _dd.mul(xp, small, xp.zeros_like(small), big_hi, big_lo)
        return _keep_nan(xp, y, p_hi + p_lo)
    return small * (1.0 - small)


def residual_tanh(xp: Namespace, x: Array, y: Array, exact: bool) -> Array:
    """``r = (1 - |y|) - (1 - tanh|x|)`` where ``|y| >= 1/2`` (0 elsewhere), work dtype.

    ``1 - tanh|x| = 2 sigma(-2|x|)`` is computed from the input, so ``(1 - |y|) - r`` gives
    back the complement that ``1 - |y|`` rounds to 0 from |x| = 9 (float32).
    """
    a = xp.minimum(xp.abs(x), _HUGE_ARG)
    c = 2.0 * ek.sigmoid(xp, -2.0 * a, exact)
    ay = xp.abs(y)
    upper = ay >= 0.5
    return xp.where(upper, (1.0 - ay) - xp.where(upper, c, 0.0), 0.0)


def tanh_from_saved(xp: Namespace, y: Array, r: Array | None, exact: bool) -> Array:
    """tanh'(x) = (1 - |y|)(1 + |y|) from the saved output and residual.

    With ``s = (1 - |y|) - r = 1 - tanh|x|`` for ``|y| >= 1/2``: ``tanh' = s (2 - s)``.
    """
    ay = xp.abs(y)
    upper = ay >= 0.5
    s = 1.0 - ay if r is None else (1.0 - ay) - r
    if exact:
        t_hi, t_lo = _dd.two_sum(2.0 + xp.zeros_like(s), -s)
        u_hi, u_lo = _dd.mul(xp, s, xp.zeros_like(s), t_hi, t_lo)
        up = u_hi + u_lo
        a_hi, a_lo = _dd.two_sum(xp.ones_like(y), -y)
        b_hi, b_lo = _dd.two_sum(xp.ones_like(y), y)
        v_hi, v_lo = _dd.mul(xp, a_hi, a_lo, b_hi, b_lo)
        low = v_hi + v_lo
    else:
        up = s * (2.0 - s)
        low = (1.0 - y) * (1.0 + y)
    return _keep_nan(xp, y, xp.where(upper, up, low))


# ---------------------------------------------------------------- reductions


def softmax_dd(xp: Namespace, x: Array, exact: bool) -> tuple[Array, Array]:
    """softmax over the last axis as a double-double pair ``(hi, lo)`` (``lo = 0`` unless exact).

    The same evaluation as ``stablenn._kernels.reductions.softmax`` (shifted exponentials
    with the rounding of ``x - max`` carried, a double-double sum and quotient), stopping
    before the final rounding; special slices as there (+inf entries share the mass, all
    ``-inf`` gives zeros, a NaN poisons the slice).
    """
    return weighted_softmax(xp, x, None, exact)[:2]


def weighted_softmax(xp: Namespace, x: Array, b: Array | None, exact: bool) -> tuple[Array, Array, Array]:
    """``(P_hi, P_lo, E)`` over the last axis: the gradients of ``log|sum_j b_j e^{x_j}|``.

    ``P_i = b_i e^{x_i} / S`` (d/dx_i) and ``E_i = e^{x_i} / S`` (d/db_i), ``S`` the signed
    sum.  All ``-inf`` (or empty, or all-zero-weight) slices give 0; ``+inf`` entries share
    the gradient evenly (1/k each); a NaN in the slice gives NaN throughout.
    """
    scale = None
    if b is not None:
        # weights of any magnitude (1e-300, say) times e^(x - m) underflow: scale them by a
        # power of two that brings the largest to about 1 (exact; P does not change, E does)
        mag = xp.where(xp.isfinite(b) & (b != 0), xp.abs(b), 0.0)
        top = xp.max(mag, axis=-1, keepdims=True)
        top = xp.where(top == 0, 1.0, top)
        k = xp.clip(xp.floor(xp.log2(top)), -1000.0, 1000.0)
        scale = xp.where(k <= 0, 1.0 / _pow2(xp, xp.minimum(k, 0.0)), _pow2(xp, -xp.maximum(k, 0.0)))
        b = b * scale
    sh = shift_terms(xp, x, b, None, exact)
    if _dd_mode(xp, x, exact):
        sh = _terms_dd(xp, sh, b)
    # the same sum as the forward pass (weighted terms near the pivot carry their main part
    # in t_lo: b + b expm1(d), so t_lo is never dropped when it is there)
    s_hi, s_lo = _sum(xp, sh, exact, b is None)
    s_hi, s_lo = s_hi[..., None], s_lo[..., None]
    zero = (s_hi + s_lo) == 0
    den_hi = xp.where(zero, 1.0, s_hi)
    den_lo = xp.where(zero, 0.0, s_lo)
    if exact or sh.t_lo is not None:
        t_lo = sh.t_lo if sh.t_lo is not None else xp.zeros_like(sh.t_hi)
        p_hi, p_lo = _dd.div(xp, sh.t_hi, t_lo, den_hi, den_lo)
    else:
        p_hi = sh.t_hi / (den_hi + den_lo)
        p_lo = xp.zeros_like(p_hi)
    count = xp.sum(xp.astype(sh.is_pinf, p_hi.dtype), axis=-1, keepdims=True)
    share = 1.0 / xp.where(count == 0, 1.0, count)
    uniform = xp.where(sh.is_pinf, share, 0.0)
    p_hi = xp.where(sh.inf_pos, uniform, p_hi)
    p_lo = xp.where(sh.inf_pos, 0.0, p_lo)
    bad = sh.nan | (sh.inf_pos & sh.inf_neg)
    p_hi = xp.where(bad, xp.nan, p_hi)
    p_lo = xp.where(bad, 0.0, p_lo)
    if b is None:
        return p_hi, p_lo, p_hi
    # d/db_i = e^{x_i - m} / S for every finite x_i, zero weights included
    fin_x = xp.isfinite(x)
    d = xp.where(fin_x, x, sh.m) - sh.m
    if _dd_mode(xp, x, exact):
        e_hi, e_lo = exp_dd(xp, d)
        e = xp.where(fin_x, e_hi + e_lo, 0.0)
    else:
        e = xp.where(fin_x, xp.exp(d), 0.0)
    big_e = e / (den_hi + den_lo)
    b_safe = xp.where(b == 0, 1.0, b)
    big_e = xp.where(sh.is_pinf, share / b_safe, big_e)
    big_e = xp.where(sh.inf_pos & ~sh.is_pinf, 0.0, big_e)
    big_e = xp.where(zero & ~sh.inf_pos, 0.0, big_e)
    big_e = xp.where(bad, xp.nan, big_e)
    return p_hi, p_lo, big_e * scale


def _terms_dd(xp: Namespace, sh: Any, b: Array | None) -> Any:
    """The shifted terms ``b e^(d_hi + d_lo)`` again, with our double-double exp.

    The forward kernels take ``e^d`` from the library (1 ULP in NumPy and PyTorch; XLA's is
    1-2 ULP off, and hundreds near the bottom of the range, e^-700), which the gradient
    ``t / S`` would pass on: here every term is a double-double pair to about ``2**-70``.
    """
    from dataclasses import replace

    fin = sh.finite
    e_hi, e_lo = exp_dd(xp, sh.d_hi, sh.d_lo)
    if b is None:
        t_hi, t_lo = e_hi, e_lo
    else:
        t_hi, t_lo = _dd.mul(xp, xp.where(fin, b, 0.0), xp.zeros_like(e_hi), e_hi, e_lo)
    return replace(sh, t_hi=xp.where(fin, t_hi, 0.0), t_lo=xp.where(fin, t_lo, 0.0))


def _sum(xp: Namespace, sh: Any, exact: bool, unweighted: bool) -> tuple[Array, Array]:
    """Sum of the shifted terms over the last axis, ``(hi, lo)``.

    A double-double sum of ``t_hi`` and ``t_lo`` wherever the low parts exist (exact mode,
    and weighted sums, whose terms near the pivot keep their main part in ``t_lo``);
    otherwise the forward kernel's ``sum_terms`` (the pivot and the rest joined by TwoSum).
    Not ``sum_terms`` in the first case: its recomputation of a "tiny rest" when the sum is
    exactly 1 takes ``e^(d + 700)`` of every other term whatever its weight's sign and
    whatever ``d_lo`` holds (x = (-17.49, -17.49, -16.33) with b = (1, -1, 1) gives S = 1.63
    for the exact 1; x 1e63 apart gives a rest of -5e-300 for the exact 0).
    """
    if exact or sh.t_lo is not None:
        return _dd.sum_last(xp, sh.t_hi, sh.t_lo)
    return sum_terms(xp, sh, exact)  # type: ignore[no-any-return]


def residual_softmax(xp: Namespace, x: Array, y: Array, exact: bool) -> Array:
    """``(p - y) / y`` in the work dtype: what the rounding of the saved output lost, relative.

    Relative, so that it survives being kept at half the width: the absolute ``p - y`` of
    an output near 1e-95 is near 1e-111, which float32 flushes to 0 (3 ULP in the
    gradient); ``(p - y) / y`` is below ``2**-53`` in magnitude whatever ``y`` is.  0 where
    ``y`` is 0.
    """
    p_hi, p_lo = softmax_dd(xp, x, exact)
    nz = y != 0
    r = ((p_hi - y) + p_lo) / xp.where(nz, y, 1.0)
    return xp.where(xp.isfinite(r) & nz, r, 0.0)


def residual_log_softmax(xp: Namespace, x: Array, y: Array, exact: bool) -> Array:
    """What the rounding of the saved log_softmax output lost, in the work dtype.

    ``exp`` amplifies the rounding of ``y`` by ``|y|`` (40 ULP of ``p`` at y = -80), and
    ``1 - e^y`` needs the digits of ``y`` near 0.  Wider work dtype (float32 and narrower):
    ``delta = y_w - y``, the rounding error of ``y`` itself (``y_w`` the log_softmax in the
    work dtype).  float64 (``exact``): ``q = p / e^y - 1`` with ``p`` the double-double
    softmax and ``e^y`` as the backward pass will compute it, so that ``p = e^y (1 + q)``
    holds to double-double accuracy whatever the rounding of ``y`` and of ``exp``.
    """
    fin = xp.isfinite(y)
    if not exact:
        y_w = log_softmax_kernel(xp, x, None, exact)
        d = y_w - y
        return xp.where(fin & xp.isfinite(d), d, 0.0)
    p_hi, p_lo = softmax_dd(xp, x, exact)
    e = xp.exp(xp.where(fin, y, 0.0))
    q = ((p_hi - e) + p_lo) / e
    return xp.where(fin & xp.isfinite(q), q, 0.0)


def log_softmax_from_saved(xp: Namespace, y: Array, r: Array | None, exact: bool) -> tuple[Array, Array]:
    """``(p, 1 - p)`` from the saved log_softmax output and its residual (see above)."""
    e = xp.exp(y)
    if r is None:
        return e, -xp.expm1(y)
    er = e * r
    if exact:  # r = q: p = e (1 + q) and 1 - p = (1 - e) - e q, with 1 - e exact near p = 1
        return e + er, (1.0 - e) - er
    # r = delta: p = e^(y + delta) = e (1 + delta), 1 - p = -expm1(y) - e delta
    return e + er, -xp.expm1(y) - er


def sum_dd(xp: Namespace, a: Array, exact: bool) -> tuple[Array, Array]:
    """Sum over the last axis with keepdims, double-double where ``exact``."""
    if a.shape[-1] == 0:
        z = xp.sum(a, axis=-1, keepdims=True)
        return z, z
    if exact:
        hi, lo = _dd.sum_last(xp, a, None)
        return hi[..., None], lo[..., None]
    s = xp.sum(a, axis=-1, keepdims=True)
    return s, xp.zeros_like(s)


def complement(xp: Namespace, p: Array, exact: bool) -> Array:
    """``R_i = sum_{j != i} p_j`` over the last axis, without the cancellation of ``1 - p_i``.

    ``S = sum_j p_j`` is carried in double-double, so ``(S_hi - p_i) + S_lo`` keeps the
    small terms that ``1 - p_i`` rounds away when ``p_i`` is within an ULP of 1.
    """
    if p.shape[-1] == 0:
        return p
    s_hi, s_lo = _dd.sum_last(xp, p, None)
    return (s_hi[..., None] - p) + s_lo[..., None]


def _keep_nan(xp: Namespace, y: Array, out: Array) -> Array:
    return xp.where(xp.isnan(y), y, out)


# ---------------------------------------------------------------- losses


# Cody-Waite split of log(2) (fdlibm's): k * _LN2_HI is exact for |k| < 2000
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00


def _exp_reduced(xp: Namespace, a: Array) -> tuple[Array, Array, Array, Array]:
    """``e^a = 2**k (1 + s)``: ``(s_hi, s_lo, f1, f2)`` with ``2**k = f1 f2`` exactly.

    ``a = k log 2 + r`` with ``|r| <= log(2)/2`` carried exactly (Cody-Waite); ``s = e^r - 1``
    is ``r + r^2/2 + r^3/6 + r^4/24`` in double-double plus the rest of its Taylor series in
    float64 (below ``5e-5``, so its rounding costs ``2**-67`` of the result at most).  ``a``
    is clipped to [-1075, 709.8] (beyond, ``e^a`` is 0 or overflows anyway); the caller
    patches non-finite ``a``.  Nothing calls the library ``exp``: XLA's is 1-2 ULP off, and
    near the bottom of the range hundreds.
    """
    fin = xp.isfinite(a)
    a_s = xp.where(fin, xp.clip(a, -1075.0, 709.8), 0.0)
    k = xp.round(a_s * _INV_LN2)
    r1 = a_s - k * _LN2_HI  # exact: k * _LN2_HI has trailing zeros
    r_hi, r_lo = _dd.two_sum(r1, -k * _LN2_LO)
    zeros = xp.zeros_like(r_hi)
    r2 = _dd.mul(xp, r_hi, r_lo, r_hi, r_lo, guard=False)
    r3 = _dd.mul(xp, *r2, r_hi, r_lo, guard=False)
    r4 = _dd.mul(xp, *r2, *r2, guard=False)
    # the Taylor tail sum_{n >= 5} r^n / n!, Horner in float64 up to r^17 / 17! (< 2**-75)
    poly = zeros
    for n in range(17, 5, -1):
        poly = (poly + 1.0 / math.factorial(n)) * r_hi
    tail = r_hi**5 * (1.0 / 120.0 + poly)
    s = _dd.div(xp, r4[0], r4[1], 24.0 + zeros, zeros, guard=False)
    s = _dd.add(*s, tail, zeros)
    t3 = _dd.div(xp, r3[0], r3[1], 6.0 + zeros, zeros, guard=False)
    s = _dd.add(*s, *t3)
    s = _dd.add(*s, r2[0] * 0.5, r2[1] * 0.5)
    s = _dd.add(*s, r_hi, r_lo)
    # 2**k in two exact halves (2**k alone is not a float below k = -1074 or above 1023)
    k1 = xp.floor(k / 2.0)
    return s[0], s[1], _pow2_signed(xp, k1), _pow2_signed(xp, k - k1)


def exp_dd(xp: Namespace, a: Array, a_lo: Array | None = None) -> tuple[Array, Array]:
    """``e^(a + a_lo)`` as a double-double pair, relative error about ``2**-70``.

    The library ``exp`` is within an ULP or two, which is not enough where a result
    cancels against another term (``sigma(x) - y`` for a soft label near ``sigma(x)``) or
    is composed with further roundings (a gradient ``e / (1 + e)^2``).  ``a_lo`` is a small
    correction (the rounding error of ``a``): ``e^(a + a_lo) = e^a (1 + a_lo)``.  ``-inf``
    gives 0, ``+inf`` gives inf, NaN gives NaN; results below the normal range lose their
    low part (one rounding of the subnormal result).
    """
    s_hi, s_lo, f1, f2 = _exp_reduced(xp, a)
    one, zeros = xp.ones_like(s_hi), xp.zeros_like(s_hi)
    s_hi, s_lo = _dd.add(one, zeros, s_hi, s_lo)
    if a_lo is not None:
        # only a correction below 2**-42 is small enough for e^a_lo = 1 + a_lo; where |a| >
        # 1100 (the rounding error of a itself is then large) e^a is 0 or inf anyway
        small = xp.isfinite(a_lo) & (xp.abs(a) <= 1100.0)
        s_hi, s_lo = _dd.fast_two_sum(s_hi, s_lo + s_hi * xp.where(small, a_lo, 0.0))
    hi, lo = (s_hi * f1) * f2, (s_lo * f1) * f2
    fin = xp.isfinite(a) & xp.isfinite(hi)
    hi = xp.where(fin, hi, xp.where(a > 0, xp.inf, 0.0))
    lo = xp.where(fin, lo, 0.0)
    return xp.where(xp.isnan(a), a, hi), lo


def expm1_dd(xp: Namespace, a: Array) -> tuple[Array, Array]:
    """``e^a - 1`` as a double-double pair for ``a <= 0``, relative error about ``2**-70``.

    ``2**k (1 + s) - 1 = 2**k s + (2**k - 1)``: for ``k = 0`` (``|a| <= log(2)/2``) this is
    ``s`` itself, accurate relative to itself near ``a = 0``; otherwise no cancellation
    (``|e^a - 1| >= 0.29``) and ``2**k - 1`` is a TwoSum.  ``-inf`` gives -1.
    """
    s_hi, s_lo, f1, f2 = _exp_reduced(xp, a)
    p = f1 * f2  # 2**k (k >= -1075; where it is subnormal it is far below 2**-106 of 1)
    c_hi, c_lo = _dd.two_sum(-xp.ones_like(p), p)  # 2**k - 1, exactly
    t_hi, t_lo = (s_hi * f1) * f2, (s_lo * f1) * f2
    hi, lo = _dd.add(t_hi, t_lo, c_hi, c_lo)
    hi = xp.where(a == -xp.inf, -1.0, hi)
    lo = xp.where(a == -xp.inf, 0.0, lo)
    return xp.where(xp.isnan(a), a, hi), lo


def _pow2_signed(xp: Namespace, k: Array) -> Array:
    """``2**k`` for integral ``k`` in [-1023, 1023] as float64, exactly (``_pow2`` both ways)."""
    n = xp.abs(k)
    up = xp.ones_like(k)
    down = xp.ones_like(k)
    for j in range(9, -1, -1):
        step = float(2**j)
        take = n >= step
        up = xp.where(take, up * 2.0**step, up)
        down = xp.where(take, down * 2.0**-step, down)
        n = n - xp.where(take, step, 0.0)
    return xp.where(k < 0, down, up)


def _pow2(xp: Namespace, k: Array) -> Array:
    """``2**k`` for integral ``k`` in [-1022, 0], exactly: a product of ``2**-(2**j)`` factors.

    (``pow(2, k)`` is not exact on every backend: XLA evaluates it through exp and log.)
    """
    n = -k
    out = xp.ones_like(k)
    for j in range(10, -1, -1):
        step = float(2**j)
        take = n >= step
        out = xp.where(take, out * 2.0 ** -(2**j), out)  # (a where of two scalars is float32 on torch)
        n = n - xp.where(take, step, 0.0)
    return out


def sigmoid_dd(xp: Namespace, x: Array, exact: bool) -> tuple[Array, Array]:
    """``sigma(x)`` as ``(hi, lo)``: ``num / (1 + e)``, ``e = e^-|x|``, in double-double.

    In ``exact`` mode ``e`` itself is a double-double (``exp_dd``): the pair is then
    accurate to about ``2**-70`` relative, far below one rounding of the result.
    """
    if not exact:
        e = xp.exp(-xp.abs(x))
        num = xp.where(x >= 0, xp.ones_like(e), e)
        return num / (1.0 + e), xp.zeros_like(e)
    e_hi, e_lo = exp_dd(xp, -xp.abs(x))
    one, zero = xp.ones_like(e_hi), xp.zeros_like(e_hi)
    pos = x >= 0
    den_hi, den_lo = _dd.add(one, zero, e_hi, e_lo)
    hi, lo = _dd.div(xp, xp.where(pos, one, e_hi), xp.where(pos, zero, e_lo), den_hi, den_lo)
    return xp.where(xp.isnan(x), x, hi), xp.where(xp.isnan(x), 0.0, lo)


def bce_partials(
    xp: Namespace,
    x: Array,
    y: Array,
    w: Array | None,
    pw: Array | None,
    need: tuple[bool, bool, bool, bool],
    exact: bool,
) -> list[Array | None]:
    """Elementwise partial derivatives of the binary cross-entropy with logits.

    With ``l = w [pw y softplus(-x) + (1 - y) softplus(x)]``:

    * d/dx = ``w [(1 - y) sigma(x) - pw y sigma(-x)]``: two products of accurate factors
      (``1 - y`` exact, ``sigma(-x)`` not formed as ``1 - sigma(x)``), so at infinite
      logits it is the limit ``sigma(x) - y`` times the weights: 0, ``-pw y w`` or
      ``(1 - y) w``, never NaN;
    * d/dy = ``w [pw softplus(-x) - softplus(x)] = -w [x + (1 - pw) softplus(-x)]``, from
      ``softplus(x) - softplus(-x) = x``;
    * d/dw = the unweighted loss; d/dpw = ``w y softplus(-x)``.
    """
    fin = xp.isfinite(x)
    xf = xp.where(fin, x, 0.0)
    out: list[Array | None] = [None, None, None, None]
    if need[0]:
        s_hi, s_lo = sigmoid_dd(xp, x, exact)
        # sigma(-x) = 1 - sigma(x) exactly in double-double (1 - s_hi is exact for s_hi >= 1/2)
        c_hi, c_lo = sigmoid_dd(xp, -x, exact)
        one = xp.ones_like(y)
        if exact:
            a_hi, a_lo = _dd.two_sum(one, -y)
            if pw is None:
                b_hi, b_lo = y, xp.zeros_like(y)
            else:
                b_hi, b_lo = _dd.two_prod(xp, y, pw)
            t1 = _dd.mul(xp, a_hi, a_lo, s_hi, s_lo)
            t2 = _dd.mul(xp, b_hi, b_lo, c_hi, c_lo)
            d_hi, d_lo = _dd.add(t1[0], t1[1], -t2[0], -t2[1])
            if w is not None:
                d_hi, d_lo = _dd.mul(xp, d_hi, d_lo, w, xp.zeros_like(w))
            dx = d_hi + d_lo
        else:
            coef = y if pw is None else y * pw
            dx = (1.0 - y) * s_hi - coef * c_hi
            if w is not None:
                dx = dx * w
        out[0] = xp.where(xp.isnan(x) | xp.isnan(y), xp.nan, dx)
    if need[1] or need[3]:
        sp_pos = ek.softplus(xp, x, exact)
        sp_neg = ek.softplus(xp, -x, exact)
        if need[1]:
            if pw is None:
                dy = -xp.where(fin, xf, x)  # softplus(-x) - softplus(x) = -x
            else:
                # -(x + (1 - pw) softplus(-x)) where x is finite; the limits at +-inf
                dy_fin = -(xf + (1.0 - pw) * xp.where(fin, sp_neg, 0.0))
                # the sign of pw times inf, never pw * inf: its derivative would be NaN
                pw_inf = xp.where(pw > 0, xp.inf, xp.where(pw < 0, -xp.inf, 0.0))
                dy = xp.where(fin, dy_fin, xp.where(x > 0, -x, pw_inf))
                dy = xp.where(xp.isnan(x), xp.nan, dy)
            out[1] = dy if w is None else dy * w
        if need[3]:
            dpw = y * sp_neg
            dpw = xp.where(y == 0, 0.0, dpw)
            out[3] = dpw if w is None else dpw * w
    if need[2]:
        # the unweighted loss c1 softplus(-x) + c2 softplus(x); an infinite softplus with a
        # zero coefficient gives 0, and no inf is ever multiplied (its derivative would be NaN)
        c1 = y if pw is None else y * pw
        c2 = 1.0 - y
        parts = []
        for c, sp in ((c1, ek.softplus(xp, -xf, exact)), (c2, ek.softplus(xp, xf, exact))):
            parts.append(xp.where(c == 0, 0.0, c * sp))
        loss = parts[0] + parts[1]
        at_inf = xp.where(xp.where(x > 0, c2, c1) == 0, 0.0, xp.inf)
        loss = xp.where(fin, loss, at_inf)
        out[2] = xp.where(xp.isnan(x) | xp.isnan(y), xp.nan, loss)
    return out


def cross_entropy_partials(
    xp: Namespace,
    x: Array,
    index: Array | None,
    probs: Array | None,
    w: Array | None,
    ignore: Array | None,
    smoothing: float,
    need_targets: bool,
    exact: bool,
) -> tuple[Array, Array | None, Array]:
    """``(d/dx, d/dtargets, row weight)`` of the per-row softmax cross-entropy, classes last.

    Index targets: ``d/dx_j = c_t (p_j - [j = t]) + (eps/C)(W p_j - w_j)`` with ``c_t = (1 -
    eps) w_t`` and ``W = sum_c w_c``; at the target, ``p_t - 1 = -sum_{j != t} p_j`` is taken
    from the other probabilities (``complement``), so a confident correct prediction keeps
    its gradient where ``p_t - 1`` rounds to 0.  Probability targets (``q = (1 - eps) y +
    eps/C``, ``a = w q``, ``A = sum_c a_c``): ``d/dx_j = p_j (A - a_j) - a_j R_j`` with
    ``R_j = sum_{c != j} p_c``, and ``d/dy_c = (1 - eps) w_c (-log p_c)``.  Ignored rows get
    zero gradient.
    """
    n_classes = x.shape[-1]
    p_hi, p_lo = softmax_dd(xp, x, exact)
    p = p_hi + p_lo
    big_r = complement(xp, p, exact)
    zeros = xp.zeros_like(p)
    dy = None
    if index is not None:
        classes = xp.arange(n_classes, dtype=index.dtype, device=_device(x))
        onehot = classes == index[..., None]
        if w is None:
            w_t = xp.ones_like(p[..., 0])
            c_t = (1.0 - smoothing) + zeros[..., :1]
        else:
            w_t = xp.sum(xp.where(onehot, w, zeros), axis=-1)
            c_t = (1.0 - smoothing) * w_t[..., None]
        dx = c_t * xp.where(onehot, -big_r, p)
        if smoothing:
            if w is None:
                dx = dx + smoothing * (p - 1.0 / n_classes)
            else:
                big_w = xp.sum(w)
                dx = dx + (smoothing / n_classes) * (big_w * p - w)
        nan_row = xp.any(xp.isnan(x), axis=-1, keepdims=True)
        dx = xp.where(nan_row, xp.nan, dx)
        if ignore is not None:
            dx = xp.where(ignore[..., None], 0.0, dx)
            w_t = xp.where(ignore, 0.0, w_t)
        return dx, None, w_t
    assert probs is not None
    q = probs * (1.0 - smoothing) + smoothing / n_classes if smoothing else probs
    a = q if w is None else q * w
    big_a = xp.sum(a, axis=-1, keepdims=True)
    dx = p * (big_a - a) - a * big_r
    nan_row = xp.any(xp.isnan(x), axis=-1, keepdims=True) | xp.any(xp.isnan(a), axis=-1, keepdims=True)
    dx = xp.where(nan_row, xp.nan, dx)
    if need_targets:
        nll = _neg_log_softmax(xp, x, exact)
        coef = (1.0 - smoothing) + zeros if w is None else (1.0 - smoothing) * w + zeros
        dy = xp.where(coef == 0, 0.0, coef * nll)
    return dx, dy, xp.ones_like(p[..., 0])


def _neg_log_softmax(xp: Namespace, x: Array, exact: bool) -> Array:
    # -log p_c = log S - (x_c - m), the subtraction carried exactly (as the loss kernel does)
    sh = shift_terms(xp, x, None, None, exact)
    s_hi, s_lo = _sum(xp, sh, exact, True)
    big_l = _log_abs(xp, s_hi, s_lo)[..., None]
    fin_l = xp.where(xp.isfinite(big_l), big_l, 0.0)
    n_hi, n_lo = _dd.two_sum(fin_l, -sh.d_hi)
    out = n_hi + (n_lo - sh.d_lo)
    out = xp.where(sh.finite, out, xp.inf)
    count = xp.sum(xp.astype(sh.is_pinf, out.dtype), axis=-1, keepdims=True)
    at_inf = xp.log(xp.where(count == 0, 1.0, count))
    out = xp.where(sh.inf_pos, xp.where(sh.is_pinf, at_inf, xp.inf), out)
    return xp.where(sh.nan, xp.nan, out)


def _device(x: Array) -> Any:
    from .._namespace import device

    return device(x)
