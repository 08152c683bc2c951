"""Log-sum-exp, softmax and log-softmax over the last axis.

The public layer moves the reduced axes last (and flattens them into one), promotes to the
working dtype, and hands over ``x`` of shape ``(..., n)``.  All three share one shift helper
and one error-free evaluation of the shifted exponentials:

    d_i = x_i - m          rounded, with its exact rounding error dl_i (TwoSum)
    t_i = exp(d_i + dl_i) ~ exp(d_i) (1 + dl_i)

so the rounding of ``x_i - m``, which exp amplifies by |x_i - m|, never reaches the result
(Blanchard, Higham and Higham 2021, doi:10.1093/imanum/draa038, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._namespace import Array, Namespace
from . import _dd


@dataclass(frozen=True)
class Shifted:
    """The shifted exponentials of a slice and the special cases found in it.

    In clean mode (the caller has checked that every entry is finite and there are no
    weights) the masks are None: nothing needs patching.
    """

    d_hi: Array  # x - m, rounded (0 where the entry is not finite)
    d_lo: Array  # its rounding error
    t_hi: Array  # b * exp(x - m), 0 for -inf entries and for b == 0
    t_lo: Array | None  # rounding error carried from the subtraction (exact mode only)
    m: Array  # the shift, shape (..., 1), finite
    finite: Array | None  # entries with finite x (and finite, non-zero b)
    nan: Array | None  # slice holds a NaN term, shape (..., 1)
    inf_pos: Array | None  # slice holds a +inf term, shape (..., 1)
    inf_neg: Array | None  # slice holds a -inf term (negative weight times +inf), shape (..., 1)
    is_pinf: Array | None  # entries that are +inf terms
    weighted: bool = False  # terms carry weights b

    @property
    def special(self) -> bool:
        return self.finite is not None


def shift_terms(
    xp: Namespace,
    x: Array,
    b: Array | None,
    shift: Array | None,
    exact: bool,
    clean: bool = False,
) -> Shifted:
    """Shift by the largest term (or the caller's ``shift``) and exponentiate.

    ``clean=True`` promises that every entry of ``x`` is finite and ``b`` is None: the
    special-case masks are skipped (several passes fewer).
    """
    if clean and b is None:
        m = xp.max(x, axis=-1, keepdims=True) if shift is None else shift
        if exact:
            d_hi, d_lo = _dd.two_sum(x, -m)
            d_lo = xp.where(xp.isinf(d_hi), 0.0, d_lo)  # x - m overflowed to -inf: exp gives 0
        else:
            d_hi = x - m
            d_lo = xp.zeros_like(d_hi)
        e = xp.exp(d_hi)
        t_lo = e * d_lo if exact else None  # exp(d + dl) = exp(d) (1 + dl) + O(dl^2)
        return Shifted(d_hi, d_lo, e, t_lo, m, None, None, None, None, None)
    if b is not None:
        x, finite, nan, is_pinf, is_ninf = _weighted_cases(xp, x, b)
    else:
        nan = xp.isnan(x)
        is_pinf = x == xp.inf
        is_ninf = None
        finite = xp.isfinite(x)
    xs = xp.where(finite, x, -xp.inf)
    if shift is None:
        if b is not None:
            # the pivot is the largest term b_i e^{x_i}, not the largest x_i: its x becomes 0
            mag = xp.abs(xp.where(finite, b, 1.0))
            key = xp.where(finite, xs + xp.log(mag), -xp.inf)
            kmax = xp.max(key, axis=-1, keepdims=True)
            m = xp.max(xp.where(finite & (key == kmax), xs, -xp.inf), axis=-1, keepdims=True)
        else:
            m = xp.max(xs, axis=-1, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0.0)  # an all -inf slice shifts by 0
    else:
        m = shift
    xf = xp.where(finite, xs, m)  # safe operand: the unused branch computes exp(0)
    if exact:
        d_hi, d_lo = _dd.two_sum(xf, -m)
        d_lo = xp.where(xp.isinf(d_hi), 0.0, d_lo)  # x - m overflowed to -inf: exp gives 0
    else:
        d_hi = xf - m
        d_lo = xp.zeros_like(d_hi)
    e = xp.where(finite, xp.exp(d_hi), 0.0)
    t_lo = e * d_lo if exact else None  # exp(d + dl) = exp(d) (1 + dl) + O(dl^2)
    if b is not None:
        bf = xp.where(finite, b, 0.0)
        # Weights of both signs can cancel almost exactly: terms near the pivot are carried as
        # b + b expm1(d) (a double-double), so e^d = 1 - 2e-18 keeps its tiny part instead of
        # rounding to 1 and cancelling to an exact (and wrong) 0.
        near = xp.abs(d_hi) < 0.34657359027997264  # ln 2 / 2: there b expm1(d) < b / 2
        em1 = xp.expm1(xp.where(near, d_hi, 0.0))
        e = xp.where(near, bf, e * bf)
        near_lo = bf * em1 + bf * (em1 + 1.0) * d_lo
        t_lo = xp.where(near, near_lo, (t_lo * bf) if t_lo is not None else 0.0)
        exact = True  # the weighted sum is carried in double-double (see sum_terms)
    any_ = lambda mask: xp.any(mask, axis=-1, keepdims=True)  # noqa: E731
    return Shifted(
        d_hi=d_hi,
        d_lo=d_lo,
        t_hi=e,
        t_lo=t_lo,
        m=m,
        finite=finite,
        nan=any_(nan),
        inf_pos=any_(is_pinf),
        inf_neg=any_(is_ninf) if is_ninf is not None else xp.zeros_like(any_(is_pinf)),
        is_pinf=is_pinf,
        weighted=b is not None,
    )


def _weighted_cases(xp: Namespace, x: Array, b: Array) -> tuple[Array, Array, Array, Array, Array]:
    """``(x, finite, nan, is_pinf, is_ninf)`` of weighted terms ``b e^x``, entry by entry.

    ``b == 0`` removes an entry whatever ``x`` holds (inf and NaN included): its ``x`` is
    returned as ``-inf``.
    """
    live = b != 0
    x = xp.where(live, x, -xp.inf)
    b_nan = xp.isnan(b)
    b_inf = xp.isinf(b) & (x > -xp.inf)
    nan = xp.isnan(x) | b_nan | (xp.isinf(b) & (x == -xp.inf))
    pinf_term = ((x == xp.inf) & live) | b_inf
    sign_b = xp.sign(b)
    is_pinf = pinf_term & (sign_b > 0)
    is_ninf = pinf_term & (sign_b < 0)
    finite = xp.isfinite(x) & xp.isfinite(b) & live
    return x, finite, nan, is_pinf, is_ninf


def sum_terms(xp: Namespace, sh: Shifted, exact: bool) -> tuple[Array, Array]:
    """The sum of the shifted terms over the last axis as ``(hi, lo)``.

    In exact mode a double-double tree sum.  Otherwise (the working dtype is wider than
    the result) the terms at the pivot (``d == 0``: exactly ``b_k``, 1 without weights)
    and the rest are summed apart and joined with TwoSum, so that ``log|S|`` can still be
    taken as ``log1p`` of the rest: a rest of 4e-18 beside 1 is not rounded away.
    """
    if exact or sh.t_lo is not None:  # weighted sums always carry their low parts
        s_hi, s_lo = _dd.sum_last(xp, sh.t_hi, sh.t_lo)
        return s_hi, _tiny_rest(xp, sh, s_hi, s_lo)
    zero = xp.zeros_like(sh.t_hi)
    at_pivot = sh.d_hi == 0
    if sh.finite is not None:
        at_pivot = at_pivot & sh.finite
    main = xp.sum(xp.where(at_pivot, sh.t_hi, zero), axis=-1)
    rest = xp.sum(xp.where(at_pivot, zero, sh.t_hi), axis=-1)
    return _dd.two_sum(main, rest)


# mpmath.mp.prec = 300; float(mpmath.exp(-700)) -> 9.85967654375977e-305 (relative error
# below 2**-53, i.e. at most half an ULP of any subnormal result it scales)
_EXP_M700 = 9.85967654375977e-305


_TINY_REST = 2.0**-930  # below e^-640: the terms of such a rest all have d < -640


def _tiny_rest(xp: Namespace, sh: Shifted, s_hi: Array, s_lo: Array) -> Array:
    """The rest of ``S = 1 + rest`` recomputed where it is (nearly) subnormal.

    When every other term is below ``2**-930`` their exponentials are subnormal, or their
    corrections ``e d_lo`` are (which XLA on the CPU flushes to 0: 14 ULP on JAX), and each
    has lost relative precision; ``log1p(rest) = rest`` is then the dominant component of
    log-softmax (and cross-entropy at the argmax, logsumexp when the maximum is 0).  The
    terms are recomputed as ``e^(d + 700)``, which is exact to add (``d + 700`` is exact for
    ``d`` in [-800, -640]) and normal, summed, and scaled back by ``e^-700`` in one rounding.
    """
    if sh.weighted:  # the recomputation below has no weights: weighted sums keep their own
        return s_lo
    tiny = (s_hi == 1.0) & (xp.abs(s_lo) < _TINY_REST)
    if not _needed(xp, tiny):
        return s_lo
    # only terms that can be that small (e^-640 > 2^-930 > the whole rest): a shift other than
    # the maximum may leave terms near 1 that are not part of the rest
    rest_terms = (sh.d_hi < -640.0) & (sh.d_hi > -800.0)  # below -800 a term is 0 at any scale
    if sh.finite is not None:
        rest_terms = rest_terms & sh.finite
    d = xp.where(rest_terms, sh.d_hi, -800.0)
    e = xp.where(rest_terms, xp.exp(d + 700.0), 0.0)
    r_hi, r_lo = _dd.sum_last(xp, e, e * sh.d_lo)
    scaled = (r_hi + r_lo) * _EXP_M700
    return xp.where(tiny, scaled, s_lo)


def _needed(xp: Namespace, mask: Array) -> bool:
    """Whether any entry of ``mask`` is set; True where values cannot be read (lazy)."""
    from .._namespace import can_read_values

    return not can_read_values(mask) or bool(xp.any(mask))


def _log_abs(xp: Namespace, s_hi: Array, s_lo: Array) -> Array:
    """log|s_hi + s_lo|: log1p of the exact distance to 1 when |s| is near 1."""
    a = xp.abs(s_hi)
    lo = xp.where(s_hi < 0, -s_lo, s_lo)
    near1 = (a >= 0.5) & (a <= 2.0)
    u = xp.where(near1, a - 1.0, 0.0)  # exact by Sterbenz's lemma
    a_safe = xp.where(near1 | (a == 0), 1.0, a)
    far = xp.log(a_safe) + lo / a_safe
    out = xp.where(near1, xp.log1p(u + lo), far)
    return xp.where(a == 0, -xp.inf, out)


# ---------------------------------------------------------------- weights of both signs
# ln 2 as a double-double; mpmath.mp.prec = 300; l = mpmath.log(2); hi = float(l);
# lo = float(l - hi)  ->  0.6931471805599453, 2.3190468138462996e-17 (remainder 5.7e-34)
_LN2_HI = 0.6931471805599453
_LN2_LO = 2.3190468138462996e-17


def signed_path(xp: Namespace, x: Array, b: Array | None, shift: Array | None) -> bool:
    """Whether ``logsumexp`` takes the cancellation-safe path of ``signed_sum``.

    Only for weights with the default shift in a float64 working dtype (the double-double
    ``exp`` is float64's); there, where some weight is negative and some positive (no
    cancellation is possible otherwise, and the cheaper path is as accurate), and always
    where values cannot be read (Dask, JAX under ``jit``, torch.compile: no branch on data).
    """
    if b is None or shift is not None or x.dtype != getattr(xp, "float64", None):
        return False
    from .._namespace import can_read_values

    if not can_read_values(b):
        return True
    return bool(xp.any(b < 0)) and bool(xp.any(b > 0))


@dataclass(frozen=True)
class Signed:
    """``sum_i b_i e^{x_i} = e^m 2^j (s_hi + s_lo)`` over the last axis, and its special cases."""

    m: Array  # the pivot: x of the largest surviving term, finite (0 if none survives)
    j: Array  # power of two taken out of the weights, an integer in the working dtype
    s_hi: Array  # S = sum_g 2^-j B_g e^{x_g - m} over distinct x_g, double-double
    s_lo: Array
    nan: Array  # slice holds a NaN term (bool, shape (...))
    inf_pos: Array  # slice holds a +inf term
    inf_neg: Array  # slice holds a -inf term
    n_pinf: Array  # number of +inf terms, in the working dtype

    def scaled(self, xp: Namespace) -> tuple[Array, Array]:
        """``2^j (s_hi + s_lo)``: exact unless it leaves the normal range."""
        j1 = xp.floor(self.j / 2.0)
        f1, f2 = 2.0**j1, 2.0 ** (self.j - j1)
        return (self.s_hi * f1) * f2, (self.s_lo * f1) * f2


def signed_sum(xp: Namespace, x: Array, b: Array) -> Signed:
    r"""``sum_i b_i e^{x_i}`` over the last axis for weights of both signs, float64 only.

    Weights of both signs cancel, and the cancellation amplifies every rounding of the
    terms by :math:`\kappa_b = \sum_i |b_i e^{x_i}| / |\sum_i b_i e^{x_i}|`.  Here:

    1. Terms with equal ``x`` are merged first: their weights are summed (double-double,
       a segmented scan over ``x`` sorted) into one weight :math:`B_g` per distinct
       value :math:`x_g`.  By the Lindemann-Weierstrass theorem the numbers
       :math:`e^{x_g}` for distinct rational :math:`x_g` are linearly independent over the
       rationals, so the sum is exactly 0 if and only if every :math:`B_g` is 0: an exact
       cancellation comes out as an exact 0 (``-inf``, sign 0), not as a rounding residue.
    2. The pivot is the largest surviving term :math:`|B_g| e^{x_g}` (groups with
       :math:`B_g = 0` are gone), so a survivor far below a cancelled pair is not lost to
       underflow; extreme weights (pivot's outside :math:`[2^{-600}, 2^{600}]`) are scaled
       by a power of two :math:`2^{-j}` (exact) so that the pivot's is in [1, 2), and tiny
       weights keep their low parts out of the subnormal range.
    3. Each term :math:`2^{-j} B_g e^{x_g - m}` is formed in double-double: ``x - m`` exactly
       (TwoSum), ``exp`` in double-double (``mergeable.exp_dd``), Dekker's product; the
       terms are summed in double-double.

    Every term then carries a relative error of a few :math:`u^2` (:math:`u = 2^{-53}`)
    and the sum an absolute error below :math:`(\log_2 n + 4)\, u^2 \sum_g |T_g|`, so the
    relative error of the sum is about :math:`(\log_2 n + 4)\, u^2 \kappa_b`.
    """
    from .mergeable import exp_dd, sum_dd

    x, finite, nan, is_pinf, is_ninf = _weighted_cases(xp, x, b)
    xs = xp.where(finite, x, -xp.inf)
    bs = xp.where(finite, b, 0.0)
    n = xs.shape[-1]
    order = xp.argsort(xs, axis=-1, stable=True)
    xs = xp.take_along_axis(xs, order, axis=-1)
    g_hi = xp.take_along_axis(bs, order, axis=-1)
    g_lo = xp.zeros_like(g_hi)
    # Segmented inclusive scan (Hillis and Steele) over runs of equal x: after the step
    # with offset s each entry holds the double-double sum of up to 2s entries of its run
    # ending at it; x sorted, so x[i - s] == x[i] means the whole stretch is one run.
    # A namespace may bring its own (JAX: `stablenn._jax_accurate`, where XLA's fusion of
    # these slices costs time exponential in the length).
    step = 1
    if hasattr(xp, "segment_sums_dd") and n > 1:
        first = xp.concat([xp.ones_like(xs[..., :1], dtype=xp.bool), xs[..., 1:] != xs[..., :-1]], axis=-1)
        g_hi, g_lo = xp.segment_sums_dd(first, g_hi)
        step = n
    while step < n:
        same = xs[..., step:] == xs[..., :-step]
        if not _needed(xp, same):  # no run is longer than `step`: the scan is done
            break
        h, lo = _dd.add(
            g_hi[..., step:],
            g_lo[..., step:],
            xp.where(same, g_hi[..., :-step], 0.0),
            xp.where(same, g_lo[..., :-step], 0.0),
        )
        g_hi = xp.concat([g_hi[..., :step], h], axis=-1)
        g_lo = xp.concat([g_lo[..., :step], lo], axis=-1)
        step *= 2
    last = xp.concat([xs[..., :-1] != xs[..., 1:], xp.ones_like(xs[..., :1], dtype=xp.bool)], axis=-1)
    live = last & (g_hi != 0) & (xs > -xp.inf)  # the run's total, where it survives
    # pivot: the largest surviving |B_g| e^{x_g}
    mag = xp.where(live, xp.abs(g_hi), 1.0)
    key = xp.where(live, xs + xp.log(mag), -xp.inf)
    kmax = xp.max(key, axis=-1, keepdims=True)
    m = xp.max(xp.where(live & (key == kmax), xs, -xp.inf), axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)  # nothing survives: S = 0 below
    bk = xp.max(xp.where(live & (xs == m), xp.abs(g_hi), 0.0), axis=-1, keepdims=True)
    # scale only extreme weights: 2^-j moves the logarithm's digits into j ln 2, which cancels
    # against log|S| when the result is near 0 (the budget's allowance for log|b_k| covers
    # that only where |log b_k| is large)
    ordinary = (bk >= 2.0**-600) & (bk <= 2.0**600)
    j = xp.where(ordinary, 0.0, xp.floor(xp.log2(xp.where(bk > 0, bk, 1.0))))
    j1 = xp.floor(j / 2.0)
    f1, f2 = 2.0 ** (-j1), 2.0 ** (j1 - j)  # 2^-j in two exact factors (2^1074 overflows)
    w_hi = xp.where(live, (g_hi * f1) * f2, 0.0)
    w_lo = xp.where(live, (g_lo * f1) * f2, 0.0)
    # x_g - m exactly (TwoSum), e^{x_g - m} and the product with the weight in double-double
    d_hi, d_lo = _dd.two_sum(xp.where(live, xs, m), -m)
    d_lo = xp.where(xp.isinf(d_hi), 0.0, d_lo)  # x - m overflowed to -inf: exp gives 0
    e_hi, e_lo = exp_dd(xp, d_hi, d_lo)
    t_hi, t_lo = _dd.mul(xp, w_hi, w_lo, e_hi, e_lo)
    t_hi = xp.where(live, t_hi, 0.0)
    t_lo = xp.where(live, t_lo, 0.0)
    s_hi, s_lo = xp.sum_dd(t_hi, t_lo) if hasattr(xp, "sum_dd") else sum_dd(xp, t_hi, t_lo)
    return Signed(
        m=m[..., 0],
        j=j[..., 0],
        s_hi=s_hi,
        s_lo=s_lo,
        nan=xp.any(nan, axis=-1),
        inf_pos=xp.any(is_pinf, axis=-1),
        inf_neg=xp.any(is_ninf, axis=-1),
        n_pinf=xp.sum(xp.astype(is_pinf, x.dtype), axis=-1),
    )


def _logsumexp_signed(xp: Namespace, x: Array, b: Array) -> tuple[Array, Array]:
    """``logsumexp`` for weights of both signs (see ``signed_sum``)."""
    w = signed_sum(xp, x, b)
    big_l = _log_abs(xp, w.s_hi, w.s_lo)
    zero = w.s_hi == 0
    big_l = xp.where(zero, 0.0, big_l)
    # log|sum| = m + j ln 2 + log|S|: j ln 2 as a double-double (Dekker's product with the
    # two parts of ln 2), the three added with TwoSum and one final rounding, so a result
    # near 0 is not the difference of rounded summands
    a_hi, a_lo = _dd.two_prod(xp, w.j, xp.full_like(w.j, _LN2_HI))
    a_lo = a_lo + w.j * _LN2_LO
    t_hi, t_lo = _dd.two_sum(w.m, a_hi)
    y_hi, y_lo = _dd.two_sum(t_hi, big_l)
    res = y_hi + (y_lo + (t_lo + a_lo))
    res = xp.where(zero, -xp.inf, res)
    return _special_results(xp, res, xp.sign(w.s_hi), w.inf_pos, w.inf_neg, w.nan)


def _special_results(
    xp: Namespace, res: Array, sign: Array, inf_pos: Array, inf_neg: Array, nan: Array
) -> tuple[Array, Array]:
    """Patch ``(res, sign)`` for slices holding infinite or NaN terms."""
    both = inf_pos & inf_neg
    res = xp.where(inf_pos | inf_neg, xp.inf, res)
    sign = xp.where(inf_pos, 1.0, xp.where(inf_neg, -1.0, sign))
    bad = nan | both
    res = xp.where(bad, xp.nan, res)
    sign = xp.where(bad, xp.nan, sign)
    return res, sign


def logsumexp(
    xp: Namespace, x: Array, b: Array | None, shift: Array | None, exact: bool, clean: bool = False
) -> tuple[Array, Array]:
    """``(log|sum b e^x|, sign)`` over the last axis; shapes ``(...)``."""
    if signed_path(xp, x, b, shift):
        assert b is not None
        return _logsumexp_signed(xp, x, b)
    sh = shift_terms(xp, x, b, shift, exact, clean)
    s_hi, s_lo = sum_terms(xp, sh, exact)
    # log sum b e^x = m + log|S|, S = sum b e^{x - m}; with the default shift S = 1 + rest
    # and log|S| = log1p(rest): the dominant term's digits are not rounded away.
    res = sh.m[..., 0] + _log_abs(xp, s_hi, s_lo)
    sign = xp.sign(s_hi)
    if not sh.special:
        return res, sign
    return _special_results(xp, res, sign, sh.inf_pos[..., 0], sh.inf_neg[..., 0], sh.nan[..., 0])


def softmax(xp: Namespace, x: Array, shift: Array | None, exact: bool, clean: bool = False) -> Array:
    """softmax over the last axis."""
    sh = shift_terms(xp, x, None, shift, exact, clean)
    s_hi, s_lo = sum_terms(xp, sh, exact)
    s_hi, s_lo = s_hi[..., None], s_lo[..., None]
    zero = s_hi == 0  # an all -inf slice: the masked division below gives zeros
    den_hi = xp.where(zero, 1.0, s_hi) if sh.special else s_hi
    den_lo = xp.where(zero, 0.0, s_lo) if sh.special else s_lo
    if exact:
        # (t_hi + t_lo) / (S_hi + S_lo) = q (1 + t_lo/t_hi - S_lo/S_hi) with q = t_hi/S_hi and
        # t_lo/t_hi = dl, the exact rounding error of x - m: the error that exp amplifies by
        # |x - m| never reaches the result; what is left is the rounding of exp, of the
        # quotient and of the final sum
        q = sh.t_hi / den_hi
        p = q + q * (sh.d_lo - den_lo / den_hi)
    else:
        p = sh.t_hi / (den_hi + den_lo)
    if not sh.special:
        return p
    # +inf entries share the mass evenly; any NaN makes the slice NaN
    count = xp.sum(xp.astype(sh.is_pinf, p.dtype), axis=-1, keepdims=True)
    uniform = xp.where(sh.is_pinf, 1.0 / xp.where(count == 0, 1.0, count), 0.0)
    p = xp.where(sh.inf_pos, uniform, p)
    return xp.where(sh.nan, xp.nan, p)


def log_softmax(xp: Namespace, x: Array, shift: Array | None, exact: bool, clean: bool = False) -> Array:
    """log-softmax over the last axis."""
    sh = shift_terms(xp, x, None, shift, exact, clean)
    s_hi, s_lo = sum_terms(xp, sh, exact)
    big_l = _log_abs(xp, s_hi, s_lo)[..., None]
    # log p_i = (x_i - m) - log S, added as (d_hi - L) + d_lo with one final rounding: the
    # dominant component is -log1p(rest), not the 0 every peer returns.
    if not sh.special:
        y_hi, y_lo = _dd.two_sum(sh.d_hi, -big_l)
        y = y_hi + (y_lo + sh.d_lo)
        return xp.where(xp.isinf(sh.d_hi), sh.d_hi, y)  # x - m overflowed: the answer is -inf
    finite_l = xp.where(xp.isfinite(big_l), big_l, 0.0)
    y_hi, y_lo = _dd.two_sum(sh.d_hi, -finite_l)
    y = y_hi + (y_lo + sh.d_lo)
    y = xp.where(sh.finite & xp.isfinite(big_l) & xp.isfinite(sh.d_hi), y, -xp.inf)
    count = xp.sum(xp.astype(sh.is_pinf, y.dtype), axis=-1, keepdims=True)
    at_inf = -xp.log(xp.where(count == 0, 1.0, count))
    y = xp.where(sh.inf_pos, xp.where(sh.is_pinf, at_inf, -xp.inf), y)
    return xp.where(sh.nan, xp.nan, y)
