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


def d_sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # sigma'(x) = e / (1 + e)^2, e = exp(-|x|): no 1 - sigma cancellation (ours, 1 ULP)
    return ek.sigmoid_grad(xp, x, exact)


def d_log_sigmoid(xp: Namespace, x: Array, exact: bool) -> Array:
    # d/dx log sigma(x) = sigma(-x): 1 at -inf, 0 at +inf, e^-x in the positive tail
    return ek.sigmoid(xp, -x, exact)


def d_softplus(xp: Namespace, x: Array, exact: bool) -> Array:
    # d/dx softplus(x) = sigma(x): keeps the subnormal tail e^x for x << 0
    return ek.sigmoid(xp, x, exact)


def d_tanh(xp: Namespace, x: Array, exact: bool) -> Array:
    # tanh'(x) = 4 e / (1 + e)^2, e = exp(-2|x|): no 1 - tanh^2 cancellation
    return ek.tanh_grad(xp, x, exact)


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
    # near 0, tanh(x/2) keeps its relative accuracy there.
    return -ek.sigmoid_grad(xp, x, exact) * ek.tanh(xp, x / 2.0, exact)


def d_tanh_grad(xp: Namespace, x: Array, exact: bool) -> Array:
    # d/dx sech^2(x) = -2 tanh(x) sech^2(x): both factors relatively accurate
    return -2.0 * ek.tanh(xp, x, exact) * ek.tanh_grad(xp, x, exact)


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
    e = xp.where(fin_x, xp.exp(d), 0.0)
    big_e = e / (den_hi + den_lo)
    b_safe = xp.where(b == 0, 1.0, b)
    big_e = xp.where(sh.is_pinf, share / b_safe, big_e)
    big_e = xp.where(sh.inf_pos & ~sh.is_pinf, 0.0, big_e)
    big_e = xp.where(zero & ~sh.inf_pos, 0.0, big_e)
    big_e = xp.where(bad, xp.nan, big_e)
    return p_hi, p_lo, big_e * scale


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
    """``p - y`` in the work dtype: what the rounding of the saved softmax output lost."""
    p_hi, p_lo = softmax_dd(xp, x, exact)
    r = (p_hi - y) + p_lo
    return xp.where(xp.isfinite(r), r, 0.0)


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


def exp_dd(xp: Namespace, a: Array) -> tuple[Array, Array]:
    """``e^a`` as a double-double pair, relative error about ``2**-70``, for ``a <= 0``.

    The library ``exp`` is within an ULP, which is not enough where a result cancels
    against another term (``sigma(x) - y`` for a soft label near ``sigma(x)``).  Here
    ``a = k log 2 + r`` with ``|r| <= log(2)/2`` carried exactly (Cody-Waite), ``e^r`` is
    ``1 + r + r^2/2 + r^3/6 + r^4/24`` in double-double plus the rest of its Taylor series in
    float64 (below ``5e-5``, so its rounding costs ``2**-67`` at most), and ``2**k`` scales
    exactly.  ``-inf`` gives 0; results below the normal range lose their low part.
    """
    fin = xp.isfinite(a)
    a_s = xp.where(fin, xp.maximum(a, -1075.0), 0.0)
    k = xp.round(a_s * _INV_LN2)
    r1 = a_s - k * _LN2_HI  # exact: k * _LN2_HI has trailing zeros
    r_hi, r_lo = _dd.two_sum(r1, -k * _LN2_LO)
    zeros = xp.zeros_like(r_hi)
    r2 = _dd.mul(xp, r_hi, r_lo, r_hi, r_lo)
    r3 = _dd.mul(xp, *r2, r_hi, r_lo)
    r4 = _dd.mul(xp, *r2, *r2)
    # the Taylor tail sum_{n >= 5} r^n / n!, Horner in float64 up to r^17 / 17! (< 2**-75)
    poly = zeros
    for n in range(17, 5, -1):
        poly = (poly + 1.0 / math.factorial(n)) * r_hi
    tail = r_hi**5 * (1.0 / 120.0 + poly)
    s = _dd.add(r4[0], r4[1], zeros, zeros)
    s = _dd.div(xp, s[0], s[1], 24.0 + zeros, zeros)
    s = _dd.add(*s, tail, zeros)
    t3 = _dd.div(xp, r3[0], r3[1], 6.0 + zeros, zeros)
    s = _dd.add(*s, *t3)
    s = _dd.add(*s, r2[0] * 0.5, r2[1] * 0.5)
    s = _dd.add(*s, r_hi, r_lo)
    s = _dd.add(*s, 1.0 + zeros, zeros)
    # 2**k in two exact halves (2**k alone underflows to 0 below k = -1074)
    k1 = xp.floor(k / 2.0)
    f1, f2 = _pow2(xp, k1), _pow2(xp, k - k1)
    hi, lo = (s[0] * f1) * f2, (s[1] * f1) * f2
    hi = xp.where(fin, hi, xp.where(a > 0, a, 0.0))
    lo = xp.where(fin, lo, 0.0)
    return xp.where(xp.isnan(a), a, hi), lo


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
