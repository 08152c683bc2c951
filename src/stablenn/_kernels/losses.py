"""Binary and softmax cross-entropy with logits, per element and reduced.

Losses are returned as double-double pairs ``(hi, lo)`` per element (``lo`` is zeros when
the working dtype is already wider than the result) so that the reduction adds them without
a second rounding; ``reduce`` rounds once at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._namespace import Array, Namespace, can_read_values, device
from . import _dd

# A sum of finite float64 terms overflows only when it exceeds 2**1024; scaled by 2**-SCALE
# it cannot (fewer than 2**63 terms), and terms small enough to lose bits in the scaling are
# below 2**-1982 of that sum.  Sums carry the exponent ``e`` of their scale: the value is
# ``(hi + lo) * 2**e``, ``e`` 0 or SCALE.
SCALE = 64.0
from .reductions import _log_abs, shift_terms, sum_terms


def _mul(xp: Namespace, exact: bool, hi: Array, lo: Array, c: Array) -> tuple[Array, Array]:
    """(hi + lo) * c, carried exactly in exact mode."""
    if exact:
        # Dekker's product overflows near the largest float: there the plain one is exact
        # enough (the low part is below an ULP of the product)
        huge = ~(xp.abs(hi) <= 2.0**900)
        ph, pl = _dd.mul(xp, xp.where(huge, 0.0, hi), xp.where(huge, 0.0, lo), c, xp.zeros_like(c))
        return xp.where(huge, hi * c, ph), xp.where(huge, 0.0, pl)
    return hi * c, lo * c


def binary_cross_entropy(
    xp: Namespace,
    x: Array,
    y: Array,
    weight: Array | None,
    pos_weight: Array | None,
    exact: bool,
    scale: float = 1.0,
) -> tuple[Array, Array]:
    """Elementwise ``-w [pw y log sigma(x) + (1 - y) log(1 - sigma(x))]``, times ``scale``.

    ``scale`` (a power of two) keeps finite the weighted losses of a sum whose terms would
    overflow: see `partial_sum`.
    """
    finite = xp.isfinite(x)
    xf = xp.where(finite, x, 0.0)
    # loss = pw y softplus(-x) + (1 - y) softplus(x): both terms are >= 0 for y in [0, 1], so
    # nothing cancels.  The sheet's max(x, 0) - x y + log1p(e^-|x|) subtracts x y from x and
    # loses the digits of (1 - y) x for soft labels (14,400 ULP at y near 1 in float64).
    tail = xp.log1p(xp.exp(-xp.abs(xf)))
    zero = xp.zeros_like(xf)
    pos = xp.where(xf > 0, xf, zero)
    neg = xp.where(xf < 0, -xf, zero)
    c1 = y if pos_weight is None else y * pos_weight
    if exact:
        # the tail in double-double: a weight, pos_weight or soft label would magnify the
        # rounding of exp and log1p to 2 ULP of the loss
        if weight is None and pos_weight is None and _hard(xp, y):
            # coefficients 0 and 1: the loss is n + t or p + t, one rounding of a tail that
            # is itself within an ULP (the cheap path, 20x faster)
            t_hi, t_lo = tail, xp.zeros_like(tail)
        else:
            t_hi, t_lo = _dd.log1p_exp(xp, -xp.abs(xf))
        a_hi, a_lo = _dd.add(neg, xp.zeros_like(neg), t_hi, t_lo)  # softplus(-x)
        b_hi, b_lo = _dd.add(pos, xp.zeros_like(pos), t_hi, t_lo)  # softplus(x)
        if pos_weight is None:
            c1_hi, c1_lo = y, xp.zeros_like(y)
        else:
            c1_hi, c1_lo = _dd.two_prod(xp, y, pos_weight)
        c2_hi, c2_lo = _dd.two_sum(xp.ones_like(y), -y)  # 1 - y exactly
        # Dekker's products overflow near the largest float: there (|x| > 2**900) one term is
        # |x| times its coefficient, 0 or a rounding of the other, and plain arithmetic is exact
        # enough (one product, one sum of a term below an ULP)
        huge = xp.abs(xf) > 2.0**900
        # the scale goes on before the coefficients: pos_weight times a huge softplus may
        # overflow where the scaled sum (mean) of the losses does not
        small = xp.where(huge, xp.zeros_like(xf), xp.ones_like(xf)) * scale
        t1 = _dd.mul(xp, c1_hi, c1_lo, a_hi * small, a_lo * small)
        t2 = _dd.mul(xp, c2_hi, c2_lo, b_hi * small, b_lo * small)
        hi, lo = _dd.add(*t1, *t2)
        plain = c1 * ((neg + tail) * scale) + (1.0 - y) * ((pos + tail) * scale)
        hi = xp.where(huge, plain, hi)
        lo = xp.where(huge, 0.0, lo)
        hi, lo = _deep_tail(xp, xf, c1, c2_hi, hi, lo, weight, scale)  # weighted there
    else:
        hi = c1 * (neg + tail) + (1.0 - y) * (pos + tail)
        lo = xp.zeros_like(hi)
        if scale != 1.0:
            hi, lo = hi * scale, lo * scale
        if weight is not None:
            hi, lo = _mul(xp, exact, hi, lo, weight)
    # infinite logits: the limits.  x = +inf leaves (1 - y) softplus(x) = (1 - y) inf,
    # x = -inf leaves pw y inf; a zero coefficient gives 0, not NaN.
    coef = xp.where(x > 0, 1.0 - y, c1)
    if weight is not None:
        coef = coef * weight
    coef_safe = xp.where(coef == 0, 1.0, coef)
    at_inf = xp.where(coef == 0, 0.0, coef_safe * xp.inf)
    inf_x = xp.isinf(x)
    hi = xp.where(inf_x, at_inf, hi)
    lo = xp.where(inf_x, 0.0, lo)
    nan = xp.isnan(x) | xp.isnan(hi)
    hi = xp.where(nan, xp.nan, hi)
    lo = xp.where(nan, 0.0, lo)
    return hi, lo


def _hard(xp: Namespace, y: Array) -> bool:
    """Whether every label is 0 or 1 (read on eager backends only; elsewhere False)."""
    return can_read_values(y) and bool(xp.all((y == 0) | (y == 1)))


_TAIL_SHIFT = 64.0 * 0.6931471805599453  # 64 ln 2 in double-double: exp(-|x|) * 2**64
_TAIL_SHIFT_LO = 64.0 * 2.3190468138462996e-17


def _deep_tail(
    xp: Namespace, xf: Array, c1: Array, c2: Array, hi: Array, lo: Array, weight: Array | None, scale: float
) -> tuple[Array, Array]:
    """Weighted float64 losses that are only a tail ``coef * e^-|x|`` below the smallest normal.

    Beyond |x| = 708 the loss of a label at the far end (``y = 1`` for x > 0: ``pw e^-x``;
    ``y = 0`` for x < 0: ``e^x``) is ``e^-|x|``, a subnormal with few significant bits: a
    weight or ``pos_weight`` above 1 would magnify its rounding (10 ULP on PyTorch, whose
    exp loses the subnormal).  There it is computed as ``coef * w * (e^-|x| * 2**64)`` in
    double-double and scaled back once.  Returns the weighted ``(hi, lo)`` everywhere.
    """
    deep = (xp.abs(xf) > 708.0) & xp.where(xf > 0, c2 == 0, c1 == 0)
    if weight is not None:
        hi, lo = _mul(xp, True, hi, lo, weight)
    if can_read_values(xf) and not bool(xp.any(deep)):
        return hi, lo
    a_hi, a_lo = _dd.two_sum(-xp.abs(xp.where(deep, xf, 708.0)), xp.full_like(xf, _TAIL_SHIFT))
    e_hi, e_lo = _dd.exp_parts(xp, a_hi)
    e_lo = e_lo + e_hi * (a_lo + _TAIL_SHIFT_LO)  # exp(a_hi + a_lo), a_lo below 2**-44
    coef = xp.where(xf > 0, c1, xp.ones_like(c1))
    t_hi, t_lo = _dd.mul(xp, coef, xp.zeros_like(coef), e_hi, e_lo)
    if scale != 1.0:
        t_hi, t_lo = t_hi * scale, t_lo * scale
    if weight is not None:
        t_hi, t_lo = _mul(xp, True, t_hi, t_lo, weight)
    back = (t_hi + t_lo) * 2.0**-64
    return xp.where(deep, back, hi), xp.where(deep, 0.0, lo)


def cross_entropy_index(
    xp: Namespace,
    x: Array,
    target: Array,
    weight: Array | None,
    ignore: Array | None,
    smoothing: float,
    exact: bool,
    scale: float = 1.0,
) -> tuple[Array, Array, Array]:
    """Per-row loss ``(hi, lo)`` times ``scale`` (a power of two, as in
    `binary_cross_entropy`) and per-row weight ``w_t`` (0 for ignored rows).

    ``x`` has the classes last, ``target`` holds valid class indices (ignored rows: any valid
    index, masked by ``ignore``), ``weight`` has shape ``(C,)``.
    """
    n_classes = x.shape[-1]
    sh = shift_terms(xp, x, None, None, exact)
    s_hi, s_lo = sum_terms(xp, sh, exact)
    big_l = _log_abs(xp, s_hi, s_lo)  # log sum e^{x - m} >= 0
    classes = xp.arange(n_classes, dtype=target.dtype, device=device(x))
    onehot = classes == target[..., None]
    zeros = xp.zeros_like(sh.d_hi)
    finite_l = xp.where(xp.isfinite(big_l), big_l, 0.0)
    # -log p_c = L - (x_c - m), added as (L - d_hi) - d_lo: at the argmax this is log1p(rest),
    # not the 0 that a rounded log-softmax gives.
    nl_hi, nl_lo = _dd.two_sum(finite_l[..., None], -sh.d_hi)
    nl_lo = xp.where(xp.isinf(nl_hi), 0.0, nl_lo - sh.d_lo)  # x - m overflowed: -log p = inf
    nl_hi = xp.where(sh.finite, nl_hi, xp.inf)
    nl_lo = xp.where(sh.finite, nl_lo, 0.0)
    # special slices: +inf entries share the mass; NaN poisons the row
    count = xp.sum(xp.astype(sh.is_pinf, x.dtype), axis=-1, keepdims=True)
    at_inf = xp.log(xp.where(count == 0, 1.0, count))
    nl_hi = xp.where(sh.inf_pos, xp.where(sh.is_pinf, at_inf, xp.inf), nl_hi)
    nl_lo = xp.where(sh.inf_pos, 0.0, nl_lo)
    nl_hi = xp.where(sh.nan, xp.nan, nl_hi)
    nl_lo = xp.where(sh.nan, 0.0, nl_lo)

    if scale != 1.0:
        nl_hi, nl_lo = nl_hi * scale, nl_lo * scale
    hi = xp.sum(xp.where(onehot, nl_hi, zeros), axis=-1)
    lo = xp.sum(xp.where(onehot, nl_lo, zeros), axis=-1)
    if weight is not None:
        w_t = xp.sum(xp.where(onehot, weight, zeros), axis=-1)
        hi, lo = _mul(xp, exact, hi, lo, w_t)
    else:
        w_t = xp.ones_like(hi)
    if smoothing:
        # PyTorch: (1 - eps) * w_t * nll + eps / C * sum_c w_c (-log p_c)
        if smoothing == 1.0:  # the class term has weight 0 (and must not give 0 * inf)
            hi, lo = xp.zeros_like(hi), xp.zeros_like(lo)
        else:
            hi, lo = _mul(xp, exact, hi, lo, xp.asarray(1.0 - smoothing, dtype=x.dtype, device=device(x)) + zeros[..., 0])
        th, tl = nl_hi, nl_lo
        if weight is not None:
            # a zero weight removes a class even where -log p_c is infinite
            wz = weight == 0
            th = xp.where(wz, 0.0, th)
            tl = xp.where(wz, 0.0, tl)
            th, tl = _mul(xp, exact, th, tl, weight + zeros)
        if exact:
            # sum_c -log p_c may overflow where eps / C times it does not: sum scaled
            fin = xp.isfinite(th)
            sm_hi, sm_lo, sm_e = sum_scaled(xp, xp.where(fin, th, 0.0), xp.where(fin, tl, 0.0))
            sm_hi, sm_lo = _mul(xp, exact, sm_hi, sm_lo, smoothing / n_classes + zeros[..., 0])
            back = 2.0**sm_e
            sm_hi, sm_lo = sm_hi * back, sm_lo * back
            # classes whose x_c - m overflowed: -log p_c is beyond the largest float, eps / C
            # times it need not be (rows summed again at a power-of-two scale)
            coef_s = (xp.ones_like(th) if weight is None else weight + zeros) * (smoothing / n_classes)
            sm_hi, sm_lo = _overflowed_terms(xp, x, sh, finite_l, coef_s, coef_s != 0, scale, sm_hi, sm_lo)
            over = xp.isinf(sh.d_hi) & xp.isfinite(x)
            sm_hi = xp.where(xp.any(xp.isinf(th) & ~over, axis=-1), xp.inf, sm_hi)
            sm_hi = xp.where(xp.any(xp.isnan(th), axis=-1), xp.nan, sm_hi)
            sm_lo = xp.where(xp.isfinite(sm_hi), sm_lo, 0.0)
        else:
            sm_hi, sm_lo = xp.sum(th, axis=-1), xp.zeros_like(hi)
            sm_hi, sm_lo = _mul(xp, exact, sm_hi, sm_lo, smoothing / n_classes + zeros[..., 0])
        if exact:
            hi, lo = _finite_add(xp, hi, lo, sm_hi, sm_lo)
        else:
            hi, lo = hi + sm_hi, lo + sm_lo
    if ignore is not None:
        hi = xp.where(ignore, 0.0, hi)
        lo = xp.where(ignore, 0.0, lo)
        w_t = xp.where(ignore, 0.0, w_t)
    return hi, lo, w_t


def cross_entropy_probs(
    xp: Namespace,
    x: Array,
    p: Array,
    weight: Array | None,
    smoothing: float,
    exact: bool,
    scale: float = 1.0,
) -> tuple[Array, Array]:
    """Per-row loss ``sum_c w_c p'_c (-log q_c)`` with ``p' = (1 - eps) p + eps / C``, times
    ``scale`` (a power of two, as in `binary_cross_entropy`)."""
    n_classes = x.shape[-1]
    if smoothing:
        p = p * (1.0 - smoothing) + smoothing / n_classes
    coef = p if weight is None else p * weight
    sh = shift_terms(xp, x, None, None, exact)
    s_hi, s_lo = sum_terms(xp, sh, exact)
    big_l = _log_abs(xp, s_hi, s_lo)
    finite_l = xp.where(xp.isfinite(big_l), big_l, 0.0)
    nl_hi, nl_lo = _dd.two_sum(finite_l[..., None], -sh.d_hi)
    nl_lo = xp.where(xp.isinf(nl_hi), 0.0, nl_lo - sh.d_lo)  # x - m overflowed: -log p = inf
    # a class with zero probability contributes 0 even where its logit is -inf (peers: NaN)
    live = coef != 0
    infinite = (~sh.finite) & live
    nl_hi = xp.where(sh.finite, nl_hi, 0.0) * scale
    nl_lo = xp.where(sh.finite, nl_lo, 0.0) * scale
    t_hi, t_lo = _mul(xp, exact, nl_hi, nl_lo, xp.where(live, coef, 0.0))
    t_hi = xp.where(live, t_hi, 0.0)  # a zero probability times an infinite -log q is 0
    t_lo = xp.where(live, t_lo, 0.0)
    if exact:
        hi, lo = _dd.sum_last(xp, t_hi, t_lo)
        hi, lo = _overflowed_terms(xp, x, sh, finite_l, coef, live, scale, hi, lo)
    else:
        hi = xp.sum(t_hi, axis=-1)
        lo = xp.zeros_like(hi)
    # a -inf logit with positive probability: +inf loss (a +inf logit elsewhere too)
    inf_row = xp.any(infinite & ~sh.is_pinf, axis=-1)
    count = xp.sum(xp.astype(sh.is_pinf, x.dtype), axis=-1)
    # rows holding +inf logits: mass 1/k on each +inf class, 0 elsewhere
    at_pinf = xp.sum(xp.where(sh.is_pinf, coef, 0.0), axis=-1) * xp.log(xp.where(count == 0, 1.0, count))
    other_mass = xp.any(live & ~sh.is_pinf, axis=-1)
    hi = xp.where(sh.inf_pos[..., 0], xp.where(other_mass, xp.inf, at_pinf), xp.where(inf_row, xp.inf, hi))
    lo = xp.where(sh.inf_pos[..., 0] | inf_row, 0.0, lo)
    nan = sh.nan[..., 0] | xp.any(xp.isnan(coef), axis=-1)
    hi = xp.where(nan, xp.nan, hi)
    lo = xp.where(nan, 0.0, lo)
    return hi, lo


def _overflowed_terms(
    xp: Namespace, x: Array, sh: Any, finite_l: Array, coef: Array, live: Array, scale: float, hi: Array, lo: Array
) -> tuple[Array, Array]:
    """Rows where some ``x_c - m`` overflowed (logits spanning more than the float range):
    ``-log q_c = L + m - x_c`` is beyond the largest float there, yet ``p_c`` times it need
    not be.  Such rows are summed again at the scale ``2**-SCALE`` and scaled back once."""
    over = xp.isinf(sh.d_hi) & xp.isfinite(x) & live
    if can_read_values(x) and not bool(xp.any(over)):
        return hi, lo
    k = 2.0**-SCALE
    xs = xp.where(xp.isfinite(x), x, 0.0)
    n_hi, n_lo = _dd.two_sum(sh.m * k, -xs * k)  # (m - x) 2**-SCALE, exact
    n_hi, n_lo = _dd.add(n_hi, n_lo, finite_l[..., None] * k, xp.zeros_like(n_hi))
    n_hi = xp.where(over, n_hi, xp.where(sh.finite, _sh_nl(xp, sh, finite_l), 0.0) * k)
    n_lo = xp.where(over, n_lo, 0.0)
    t_hi, t_lo = _mul(xp, True, n_hi * scale, n_lo * scale, xp.where(live, coef, 0.0))
    t_hi = xp.where(live, t_hi, 0.0)
    t_lo = xp.where(live, t_lo, 0.0)
    s_hi, s_lo = _dd.sum_last(xp, t_hi, t_lo)
    rows = xp.any(over, axis=-1)
    back = (s_hi + s_lo) * 2.0**SCALE
    return xp.where(rows, back, hi), xp.where(rows, 0.0, lo)


def _sh_nl(xp: Namespace, sh: Any, finite_l: Array) -> Array:
    """``-log q = L - (x - m)``, rounded, where ``x - m`` did not overflow."""
    d = xp.where(xp.isinf(sh.d_hi), 0.0, sh.d_hi)
    return (finite_l[..., None] - d) - sh.d_lo


def _finite_add(xp: Namespace, ah: Array, al: Array, bh: Array, bl: Array) -> tuple[Array, Array]:
    ok = xp.isfinite(ah) & xp.isfinite(bh)
    sh, sl = _dd.add(xp.where(ok, ah, 0.0), xp.where(ok, al, 0.0), xp.where(ok, bh, 0.0), xp.where(ok, bl, 0.0))
    return xp.where(ok, sh, ah + bh), xp.where(ok, sl, 0.0)


def sum_scaled(xp: Namespace, hi: Array, lo: Array, e: Array | None = None) -> tuple[Array, Array, Array]:
    """Double-double sum over the last axis of finite terms ``(hi + lo) * 2**e`` that never overflows.

    Returns ``(s_hi, s_lo, s_e)`` with the sum equal to ``(s_hi + s_lo) * 2**s_e``: the plain
    double-double sum where it is finite (``s_e`` the common exponent), else the sum of the
    terms scaled down by ``2**-SCALE`` more.  Terms of different exponents are first brought
    to the largest one (a power-of-two scaling, exact but for terms negligible beside the
    total).  NumPy and PyTorch compute the rescaled sum only where some sum overflowed.
    """
    if e is not None:
        top = xp.max(e, axis=-1, keepdims=True)
        hi = hi * 2.0 ** (e - top)
        lo = lo * 2.0 ** (e - top)
        top = top[..., 0]
    else:
        top = xp.zeros_like(hi[..., 0]) if hi.shape[-1] else xp.sum(hi, axis=-1)
    a_hi, a_lo = _dd.sum_last(xp, hi, lo)
    over = xp.isinf(a_hi)
    if can_read_values(a_hi) and not bool(xp.any(over)):
        return a_hi, a_lo, top
    scale = 2.0**-SCALE
    b_hi, b_lo = _dd.sum_last(xp, hi * scale, lo * scale)
    return xp.where(over, b_hi, a_hi), xp.where(over, b_lo, a_lo), xp.where(over, top + SCALE, top)


def overflowed(xp: Namespace, hi: Array, *inputs: Array | None, whole: Array | None = None) -> bool | Array:
    """Whether a per-element float64 loss overflowed although its inputs (elementwise, and
    ``whole`` all of it) are finite.

    A Python bool where values can be read; elsewhere (JAX, Dask) a 0-d boolean array, and
    the caller computes both sums and picks one with `pick`.
    """
    bad = xp.isinf(hi)
    for a in inputs:
        if a is not None:
            bad = bad & xp.isfinite(a)
    found = xp.any(bad)
    if can_read_values(hi):
        return bool(found) and (whole is None or bool(xp.all(xp.isfinite(whole))))
    return found if whole is None else found & xp.all(xp.isfinite(whole))


def pick(xp: Namespace, over: Array, rescued: tuple[Array, ...], plain: tuple[Array, ...]) -> tuple[Array, ...]:
    """The rescaled partial sums where ``over`` (a 0-d boolean array) holds, else the plain ones."""
    return tuple(xp.where(over, a, b) for a, b in zip(rescued, plain))


def partial_sum_rescued(
    xp: Namespace, hi: Array, lo: Array, exact: bool, over: bool | Array, rescaled: Callable[[], tuple[Array, Array]]
) -> tuple[Array, Array, Array]:
    """`partial_sum` of the losses, or where ``over`` holds (`overflowed`: a single loss beyond
    the largest float, its inputs finite) of the losses ``rescaled()`` at ``2**-SCALE``, the
    exponent raised to match.  ``over`` a 0-d array: both sums, one picked."""
    if over is False:
        return partial_sum(xp, hi, lo, exact)
    r_hi, r_lo, r_e = partial_sum(xp, *rescaled(), exact)
    rescued = (r_hi, r_lo, r_e + SCALE)
    return rescued if over is True else pick(xp, over, rescued, partial_sum(xp, hi, lo, exact))


def partial_sum(xp: Namespace, hi: Array, lo: Array, exact: bool) -> tuple[Array, Array, Array]:
    """Sum of all the per-element losses ``(hi, lo)``: ``(s_hi, s_lo, s_e)`` of shape ``(1,)``.

    The sum is ``(s_hi + s_lo) * 2**s_e`` (see `sum_scaled`: a float64 sum that would
    overflow is kept scaled, so that a mean of huge losses stays finite).  Non-finite losses
    (inf, NaN) are added to the high part the way plain addition would.
    """
    flat_hi = xp.reshape(hi, (1, -1))
    flat_lo = xp.reshape(lo, (1, -1))
    special = ~xp.isfinite(flat_hi)
    if exact:
        s_hi, s_lo, s_e = sum_scaled(xp, xp.where(special, 0.0, flat_hi), xp.where(special, 0.0, flat_lo))
    else:
        s_hi = xp.sum(xp.where(special, 0.0, flat_hi), axis=-1)
        s_lo = xp.zeros_like(s_hi)
        s_e = xp.zeros_like(s_hi)
    return s_hi + xp.sum(xp.where(special, flat_hi, 0.0), axis=-1), s_lo, s_e


def finish_sum(
    xp: Namespace, s_hi: Array, s_lo: Array, s_e: Array, denominator: Array | None, exact: bool
) -> Array:
    """Partial sums ``(s_hi + s_lo) * 2**s_e`` of shape ``(k,)`` joined, divided by
    ``denominator`` for a mean, rounded once (and only then scaled back)."""
    special = ~xp.isfinite(s_hi)
    if exact:
        t_hi, t_lo, t_e = sum_scaled(
            xp, xp.where(special, 0.0, s_hi)[None, :], xp.where(special, 0.0, s_lo)[None, :], s_e[None, :]
        )
        t_hi, t_lo, t_e = t_hi[0], t_lo[0], t_e[0]
    else:
        t_hi, t_lo, t_e = xp.sum(xp.where(special, 0.0, s_hi)), xp.sum(s_lo), xp.max(s_e)
    extra = xp.sum(xp.where(special, s_hi, 0.0))  # inf or NaN partials decide as plain addition
    if denominator is None:
        return (t_hi + t_lo) * 2.0**t_e + extra
    if exact:
        return divide_scaled(xp, t_hi, t_lo, t_e, extra, denominator, xp.zeros_like(t_hi))
    return ((t_hi + t_lo) * 2.0**t_e + extra) / denominator


def divide_scaled(
    xp: Namespace, t_hi: Array, t_lo: Array, t_e: Array, extra: Array, d_hi: Array, d_lo: Array
) -> Array:
    """``((t_hi + t_lo) 2**t_e + extra) / (d_hi + d_lo)``, float64, rounded once.

    ``extra`` holds the non-finite losses (inf or NaN decide as plain division would).  A
    numerator near the largest float is divided at a power-of-two scale: its quotient times
    the denominator, inside the double-double division, would overflow.
    """
    back = 2.0**t_e
    big = xp.abs(t_hi) > 2.0**1000
    n_hi = xp.where(big, t_hi * 2.0**-SCALE, t_hi)
    n_lo = xp.where(big, t_lo * 2.0**-SCALE, t_lo)
    scaled_back = xp.where(big, back * 2.0**SCALE, back)
    den = d_hi + d_lo
    ok = (den != 0) & xp.isfinite(extra)
    q_hi, q_lo = _dd.div(
        xp,
        xp.where(ok, n_hi, 0.0),
        xp.where(ok, n_lo, 0.0),
        xp.where(ok, d_hi, 1.0),
        xp.where(ok, d_lo, 0.0),
    )
    return xp.where(ok, (q_hi + q_lo) * scaled_back, ((t_hi + t_lo) * back + extra) / den)


def reduce(
    xp: Namespace, hi: Array, lo: Array, reduction: str, denominator: Array | None, exact: bool
) -> Array:
    """Round per-element losses, or sum them (``denominator``: divide by it for the mean)."""
    if reduction == "none":
        return hi + lo
    return finish_sum(xp, *partial_sum(xp, hi, lo, exact), denominator, exact)
