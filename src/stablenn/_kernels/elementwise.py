"""Elementwise kernels: the sigmoid family, softplus, logit and tanh.

Every function takes the namespace, a floating array in the working dtype, and ``exact``
(see the package docstring).  Special values are produced by the formulas themselves: each
formula is written so that +-inf and NaN flow through to the documented answer without an
intermediate inf - inf or 0 * inf, and without NumPy warnings.
"""

from __future__ import annotations

from .._namespace import Array, Namespace
from . import _dd

_HUGE_ARG = 1000.0  # exp(-2000) == 0 in every dtype: clipping here avoids overflowing 2*|x|


def sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # sigma(x) = 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0, with e = exp(-|x|):
    # exp never overflows, and the negative tail keeps its subnormal results instead of 0.
    e = xp.exp(-xp.abs(x))
    num = xp.where(x >= 0, xp.ones_like(e), e)
    if not exact:
        return num / (1.0 + e)
    den_hi, den_lo = _dd.fast_two_sum(xp.ones_like(e), e)  # 1 + e exactly
    hi, lo = _dd.div(xp, num, xp.zeros_like(e), den_hi, den_lo, guard=False)  # operands in [0, 2]
    return _nan_through(xp, x, hi + lo)


def softplus(xp: Namespace, x: Array, exact: bool) -> Array:
    # softplus(x) = max(x, 0) + log1p(exp(-|x|)): exp never overflows and the tail below
    # -36 (float64) keeps full relative accuracy, since log1p(e) ~ e there.
    ax = xp.abs(x)
    tail = xp.log1p(xp.exp(-ax))
    pos = xp.where(x > 0, x, xp.zeros_like(x))
    if not exact:
        return pos + tail
    hi, lo = _dd.two_sum(xp.where(xp.isfinite(pos), pos, 0.0), tail)
    out = hi + lo
    return xp.where(x == xp.inf, x, out)


def log_sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # log sigma(x) = -softplus(-x): log(-inf) = -inf, log(+inf) = 0, no cancellation.
    return -softplus(xp, -x, exact)


def logit(xp: Namespace, p: Array, exact: bool) -> Array:
    # logit(p) = log(p / (1 - p)), evaluated in three pieces so that nothing cancels:
    #   p < 1/4:        log(p) - log1p(-p)             (log(p) dominates)
    #   1/4 <= p <= 3/4: log1p((2p - 1) / (1 - p))     (2p - 1 is exact; result near 0 stays relative)
    #   p > 3/4:        log(p) - log(1 - p)            (1 - p is exact by Sterbenz's lemma)
    # p outside [0, 1] and NaN give NaN; logit(0) = -inf, logit(1) = +inf.
    inside = (p >= 0) & (p <= 1)
    ps = xp.where(inside, p, 0.5)  # safe value for the branches not taken
    low = ps < 0.25
    high = ps > 0.75
    mid = ~(low | high)
    # the low and high pieces, each fed a safe value where it is not used
    p_low = xp.where(low & (ps > 0), ps, 0.125)
    p_high = xp.where(high & (ps < 1), ps, 0.875)
    r_low = xp.where(ps == 0, -xp.inf, xp.log(p_low) - xp.log1p(-p_low))
    r_high = xp.where(ps == 1, xp.inf, xp.log(p_high) - xp.log(1.0 - p_high))
    p_mid = xp.where(mid, ps, 0.5)
    num = 2.0 * p_mid - 1.0
    if exact:
        den_hi, den_lo = _dd.two_sum(xp.ones_like(p_mid), -p_mid)
        q_hi, q_lo = _dd.div(xp, num, xp.zeros_like(num), den_hi, den_lo, guard=False)  # |num| <= 1/2
        r_mid = xp.log1p(q_hi) + q_lo / (1.0 + q_hi)
    else:
        r_mid = xp.log1p(num / (1.0 - p_mid))
    out = xp.where(low, r_low, xp.where(high, r_high, r_mid))
    return xp.where(inside, out, xp.full_like(p, xp.nan))


def tanh(xp: Namespace, x: Array, exact: bool) -> Array:
    # Our own tanh, for backends whose tanh misses the budget.  With a = |x|:
    #   a < 0.55:  tanh(a) = -m / (2 + m), m = expm1(-2a)   (no cancellation near 0)
    #   a >= 0.55: tanh(a) = (1 - e) / (1 + e), e = exp(-2a) <= 1/3
    a = xp.minimum(xp.abs(x), _HUGE_ARG)
    small = a < 0.55
    a_small = xp.where(small, a, 0.0)
    a_large = xp.where(small, 1.0, a)
    m = xp.expm1(-2.0 * a_small)
    e = xp.exp(-2.0 * a_large)
    if exact:
        zeros = xp.zeros_like(a)
        d_hi, d_lo = _dd.two_sum(2.0 + zeros, m)
        s_hi, s_lo = _dd.div(xp, -m, zeros, d_hi, d_lo, guard=False)
        n_hi, n_lo = _dd.two_sum(1.0 + zeros, -e)
        q_hi, q_lo = _dd.two_sum(1.0 + zeros, e)
        l_hi, l_lo = _dd.div(xp, n_hi, n_lo, q_hi, q_lo, guard=False)
        r = xp.where(small, s_hi + s_lo, l_hi + l_lo)
    else:
        r = xp.where(small, -m / (2.0 + m), (1.0 - e) / (1.0 + e))
    r = xp.where(x < 0, -r, r)
    r = xp.where(x == 0, x, r)  # keeps the sign of zero
    return _nan_through(xp, x, r)


def sigmoid_grad(xp: Namespace, x: Array, exact: bool) -> Array:
    # sigma'(x) = sigma(x) sigma(-x) = e / (1 + e)^2 with e = exp(-|x|): symmetric in x, no
    # 1 - sigma cancellation, so the tails keep full relative accuracy (peers return 0 there).
    return _sech2_like(xp, xp.abs(x), 1.0, exact, x)


# mpmath.mp.prec = 300; l = mpmath.log(4); float(l), float(l - float(l))
_LN4_HI = 1.3862943611198906
_LN4_LO = 4.638093627692599e-17


def tanh_grad(xp: Namespace, x: Array, exact: bool) -> Array:
    # tanh'(x) = 1 - tanh(x)^2 = 4 e / (1 + e)^2 with e = exp(-2|x|) = 4 sigma'(2x).
    a = xp.minimum(xp.abs(x), _HUGE_ARG)
    out = _sech2_like(xp, 2.0 * a, 4.0, exact, x)
    if not exact:
        return out
    # Far out, (1 + e)^2 = 1 and the result is 4 e^{-2|x|}, but e^{-2|x|} is subnormal (and
    # has lost relative precision) before 4 e^{-2|x|} is: there take exp(ln 4 - 2|x|) with the
    # argument carried exactly, so the result is rounded once.
    far = 2.0 * a > 700.0
    u_hi, u_lo = _dd.two_sum(xp.where(far, -2.0 * a, -700.0), _LN4_HI + xp.zeros_like(a))
    tail = xp.exp(u_hi)
    tail = tail + tail * (u_lo + _LN4_LO)
    return xp.where(far & ~xp.isnan(x), tail, out)


def _sech2_like(xp: Namespace, a: Array, scale: float, exact: bool, x: Array) -> Array:
    e = xp.exp(-a)
    if not exact:
        return scale * e / ((1.0 + e) * (1.0 + e))
    ones = xp.ones_like(e)
    s_hi, s_lo = _dd.fast_two_sum(ones, e)
    d_hi, d_lo = _dd.mul(xp, s_hi, s_lo, s_hi, s_lo, guard=False)  # operands in [1, 4]
    q_hi, q_lo = _dd.div(xp, e, xp.zeros_like(e), d_hi, d_lo, guard=False)
    return _nan_through(xp, x, scale * q_hi + scale * q_lo)


def sigmoid_grad_from_output(xp: Namespace, y: Array, exact: bool) -> Array:
    # sigma' = y (1 - y): what backprop uses from the saved output.  1 - y rounds away every
    # digit of sigma(-x) once y > 1 - eps/2, i.e. it returns 0 for x beyond ~36.7 (float64).
    return y * (1.0 - y)


def tanh_grad_from_output(xp: Namespace, y: Array, exact: bool) -> Array:
    # tanh' = (1 - y)(1 + y): better than 1 - y^2 (one cancellation instead of two roundings),
    # but 1 - |y| still loses every digit once |y| rounds to 1 (|x| beyond ~19 in float64).
    return (1.0 - y) * (1.0 + y)


def sigmoid_via_tanh(xp: Namespace, x: Array, exact: bool, tanh_fn: object) -> Array:
    # The sheet's identity sigma(x) = (1 + tanh(x/2)) / 2: 1 + tanh cancels for x << 0.
    return (1.0 + tanh_fn(x / 2.0)) / 2.0  # type: ignore[operator]


def tanh_via_sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # The sheet's identity tanh(x) = 2 sigma(2x) - 1: cancels near 0 (tinygrad's tanh).
    return 2.0 * sigmoid(xp, 2.0 * xp.clip(x, -_HUGE_ARG, _HUGE_ARG), exact) - 1.0


def _nan_through(xp: Namespace, x: Array, r: Array) -> Array:
    return xp.where(xp.isnan(x), x, r)
