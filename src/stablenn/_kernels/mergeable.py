"""Mergeable states: log-sum-exp, and compensated sums of losses, merged in any order.

Problem 4's identity holds for any shift :math:`a`, so a slice can keep its own:

    LSE(x) = m + log S,    S = sum_i b_i e^{x_i - m}.

A state is ``(m, S)`` per reduced slice plus the special cases seen so far.  Two states merge
by rescaling to the larger shift: ``m = max(m1, m2)``, ``S = S1 e^{m1 - m} + S2 e^{m2 - m}``.
Each partial ``S`` is built by the one-shot kernel's own pieces (the shift helper, the exact
rounding error of ``x - m`` and the double-double sum of ``reductions.py``), and the rescaling
factor ``e^{m_j - m}`` is computed in double-double (``exp_dd``), so a merge adds about
``eps**2`` of relative error: every term of the merged sum carries the single rounding of its
own ``exp``, as in the one-shot kernel, and the streamed result meets the same budget.

A state is held in the working dtype (float64 where the backend has it) as arrays of the
kept shape.  ``n_pinf`` counts the ``+inf`` terms (softmax shares the mass among them).
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from math import factorial

from .._namespace import Array, Namespace, device
from . import _dd
from .reductions import _log_abs, shift_terms, signed_path, signed_sum, sum_terms

__all__: list[str] = []

# ln 2 as a double-double; mpmath.mp.prec = 300; l = mpmath.log(2); hi = float(l);
# lo = float(l - hi)  ->  0.6931471805599453, 2.3190468138462996e-17 (remainder 5.7e-34)
_LN2_HI = 0.6931471805599453
_LN2_LO = 2.3190468138462996e-17
_SQUARINGS = 8  # exp(r) = exp(r / 2^8)^(2^8): the series runs on |r| < 1.4e-3
_DEGREE = 9  # Taylor terms of expm1 kept: the first left out is below 5e-33 relative


def _dd_const(q: Fraction) -> tuple[float, float]:
    hi = float(q)
    return hi, float(q - Fraction(hi))


_INV_FACT = [_dd_const(Fraction(1, factorial(n))) for n in range(_DEGREE + 1)]


@dataclass(frozen=True)
class State:
    """Partial log-sum-exp of slices: ``m + log|s_hi + s_lo|``, with the special cases."""

    m: Array  # the shift, finite (0 where no finite term was seen)
    s_hi: Array  # S = sum b e^{x - m}, double-double
    s_lo: Array
    nan: Array  # a NaN term was seen (bool)
    inf_pos: Array  # a +inf term (positive weight) was seen (bool)
    inf_neg: Array  # a -inf term (negative weight times +inf) was seen (bool)
    n_pinf: Array  # number of +inf terms, in the working dtype


def is_float64(xp: Namespace, a: Array) -> bool:
    return bool(a.dtype == getattr(xp, "float64", None))


def empty(xp: Namespace, shape: tuple[int, ...], like: Array) -> State:
    """The state of no terms at all: ``log 0 = -inf``, sign 0."""
    zero = xp.zeros(shape, dtype=like.dtype, device=device(like))
    no = zero != zero
    return State(zero, zero, zero, no, no, no, zero)


def partial(xp: Namespace, x: Array, b: Array | None, exact: bool, clean: bool = False) -> State:
    """State of each slice over the last axis, from the one-shot kernel's own pieces.

    ``x`` (and ``b``, broadcast to it) of shape ``(..., n)`` in the working dtype; ``exact``
    as in ``reductions.logsumexp`` (double-double where the working dtype is the input's);
    ``clean`` as in ``reductions.shift_terms`` (every entry finite, no weights: no masks).
    """
    if x.shape[-1] == 0:
        return empty(xp, tuple(x.shape[:-1]), x)
    if signed_path(xp, x, b, None):  # weights of both signs: the cancellation-safe sum
        assert b is not None
        w = signed_sum(xp, x, b)
        s_hi, s_lo = w.scaled(xp)
        return State(w.m, s_hi, s_lo, w.nan, w.inf_pos, w.inf_neg, w.n_pinf)
    sh = shift_terms(xp, x, b, None, exact, clean and b is None)
    if exact and sh.t_lo is not None:
        s_hi, s_lo = sum_dd(xp, sh.t_hi, sh.t_lo)
    else:
        s_hi, s_lo = sum_terms(xp, sh, exact)
    if sh.finite is None:  # clean: no special case anywhere
        no = s_hi != s_hi
        return State(sh.m[..., 0], s_hi, s_lo, no, no, no, xp.zeros_like(s_hi))
    n_pinf = xp.sum(xp.astype(sh.is_pinf, x.dtype), axis=-1)
    return State(sh.m[..., 0], s_hi, s_lo, sh.nan[..., 0], sh.inf_pos[..., 0], sh.inf_neg[..., 0], n_pinf)


_LANES = 1 << 14  # lanes of the long-axis sum: long enough to amortise each step's overhead


def sum_dd(xp: Namespace, hi: Array, lo: Array) -> tuple[Array, Array]:
    """Double-double sum of ``hi + lo`` over the last axis, fast on long axes.

    The same result as ``_dd.sum_last`` to within ``eps**2`` relative: a long axis is cut
    into rows of ``_LANES`` entries that are added row by row with TwoSum, each lane keeping
    its exact rounding errors (and the ``lo`` parts) in a second accumulator; the lanes are
    then summed by ``_dd.sum_last``.  Contiguous rows instead of the pairwise tree's strided
    halves: about ten times faster on 10^7 entries, same accuracy (Ogita, Rump and Oishi's
    Sum2, doi:10.1137/030601818).
    """
    n = hi.shape[-1]
    k = n // _LANES
    if k < 4:
        return _dd.sum_last(xp, hi, lo)
    lead = tuple(hi.shape[:-1])
    body_hi = xp.reshape(hi[..., : k * _LANES], lead + (k, _LANES))
    body_lo = xp.reshape(lo[..., : k * _LANES], lead + (k, _LANES))
    s = body_hi[..., 0, :]
    c = body_lo[..., 0, :]
    for j in range(1, k):
        s, e = _dd.two_sum(s, body_hi[..., j, :])
        c = c + (e + body_lo[..., j, :])  # errors of order eps |s|: their own rounding is eps^2
    lanes_hi = xp.concat([s, hi[..., k * _LANES :]], axis=-1)
    lanes_lo = xp.concat([c, lo[..., k * _LANES :]], axis=-1)
    return _dd.sum_last(xp, lanes_hi, lanes_lo)


_STATE_FIELDS = ("m", "s_hi", "s_lo", "nan", "inf_pos", "inf_neg", "n_pinf")


def stack(xp: Namespace, states: list[State]) -> State:
    """States of one kept shape, stacked along a new last axis (for ``merge``)."""
    return State(*(xp.stack([getattr(s, f) for s in states], axis=-1) for f in _STATE_FIELDS))


def _reshape(xp: Namespace, st: State, shape: tuple[int, ...]) -> State:
    return State(*(xp.reshape(getattr(st, f), shape) for f in _STATE_FIELDS))


def _concat(xp: Namespace, states: list[State]) -> State:
    return State(*(xp.concat([getattr(s, f) for s in states], axis=0) for f in _STATE_FIELDS))


BLOCK = 1 << 14  # entries per block of the blocked forms: temporaries of 128 KiB stay in cache


def partial_blocked(xp: Namespace, x: Array, b: Array | None, exact: bool, clean: bool = False) -> State:
    """``partial`` evaluated on blocks of about ``BLOCK`` entries, for large arrays.

    Each of the kernel's whole-array steps streams a full-size temporary through memory;
    on blocks the temporaries stay in cache (1.5 times faster on 10^7 float64 here).  Rows
    are blocked as they are; a row longer than ``BLOCK`` is cut into pieces whose states
    are merged, which is exact to about ``eps**2`` (the merge's own guarantee).  A loop of
    whole-array calls: meant for CPU arrays, the caller decides.
    """
    n = x.shape[-1]
    lead = tuple(x.shape[:-1])
    rows = 1
    for s in lead:
        rows *= s
    if n == 0 or rows * n < 4 * BLOCK:
        return partial(xp, x, b, exact, clean)
    x2 = xp.reshape(x, (rows, n))
    b2 = None if b is None else xp.reshape(b, (rows, n))
    if n <= BLOCK:
        step = max(1, BLOCK // n)
        parts = [
            partial(xp, x2[i : i + step, :], None if b2 is None else b2[i : i + step, :], exact, clean)
            for i in range(0, rows, step)
        ]
        return _reshape(xp, _concat(xp, parts), lead)
    if clean and b is None:
        return _reshape(xp, _concat(xp, [_long_row(xp, x2[i : i + 1, :], exact) for i in range(rows)]), lead)
    pieces = [
        partial(xp, x2[i : i + 1, j : j + BLOCK], None if b2 is None else b2[i : i + 1, j : j + BLOCK], exact, clean)
        for i in range(rows)
        for j in range(0, n, BLOCK)
    ]
    q = -(-n // BLOCK)
    return _reshape(xp, merge(xp, _reshape(xp, _concat(xp, pieces), (rows, q))), lead)


def _long_row(xp: Namespace, x: Array, exact: bool) -> State:
    """State of one long row ``(1, n)`` of finite values, block by block, one shift.

    The shift is the row's maximum, found first (one fast pass), so every block's terms are
    the one-shot kernel's own; they are added block by block into ``BLOCK`` lanes with TwoSum
    (as ``sum_dd``), the lanes summed at the end.  Nothing is merged, nothing rescaled.
    Without ``exact`` the pivot terms and the rest are summed apart, as ``sum_terms`` does.
    """
    n = x.shape[-1]
    m = xp.max(x, axis=-1, keepdims=True)
    full = n - n % BLOCK
    s = c = None
    main = rest = None
    for j in range(0, n, BLOCK):
        sh = shift_terms(xp, x[:, j : j + BLOCK], None, m, exact, True)
        if not exact:
            at_pivot = sh.d_hi == 0
            zero = xp.zeros_like(sh.t_hi)
            pm = xp.sum(xp.where(at_pivot, sh.t_hi, zero), axis=-1)
            pr = xp.sum(xp.where(at_pivot, zero, sh.t_hi), axis=-1)
            main, rest = (pm, pr) if main is None else (main + pm, rest + pr)
        elif j >= full:  # the short last block: added to the lanes' total below
            t_hi, t_lo = _dd.sum_last(xp, sh.t_hi, sh.t_lo)
        elif s is None:
            s, c = sh.t_hi, sh.t_lo
        else:
            s, e = _dd.two_sum(s, sh.t_hi)
            c = c + (e + sh.t_lo)
    if exact:
        s_hi, s_lo = _dd.sum_last(xp, s, c)
        if full < n:
            s_hi, s_lo = _dd.add(s_hi, s_lo, t_hi, t_lo)
    else:
        s_hi, s_lo = _dd.two_sum(main, rest)
    no = s_hi != s_hi
    return State(m[..., 0], s_hi, s_lo, no, no, no, xp.zeros_like(s_hi))


def normalise_blocked(xp: Namespace, x: Array, st: State, kind: str, exact: bool, clean: bool = False) -> Array:
    """``normalise`` on blocks of about ``BLOCK`` entries (see ``partial_blocked``)."""
    n = x.shape[-1]
    lead = tuple(x.shape[:-1])
    rows = 1
    for s in lead:
        rows *= s
    if n == 0 or rows * n < 4 * BLOCK:
        return normalise(xp, x, st, kind, exact, clean)
    x2 = xp.reshape(x, (rows, n))
    s2 = _reshape(xp, st, (rows,))

    def rows_of(i: int, k: int) -> State:
        return State(*(getattr(s2, f)[i : i + k] for f in _STATE_FIELDS))

    if n <= BLOCK:
        step = max(1, BLOCK // n)
        out = [normalise(xp, x2[i : i + step, :], rows_of(i, step), kind, exact, clean) for i in range(0, rows, step)]
        return xp.reshape(xp.concat(out, axis=0), tuple(x.shape))
    out = [
        xp.concat([normalise(xp, x2[i : i + 1, j : j + BLOCK], rows_of(i, 1), kind, exact, clean) for j in range(0, n, BLOCK)], axis=-1)
        for i in range(rows)
    ]
    return xp.reshape(xp.concat(out, axis=0), tuple(x.shape))


def merge(xp: Namespace, st: State) -> State:
    """Merge the states stacked along the last axis into one state per slice.

    ``S = sum_j S_j e^{m_j - m}`` with ``m = max_j m_j`` over the states that hold a finite
    term: the factors are at most 1 (nothing overflows) and are carried in double-double,
    so no term's digits are lost to the rescaling.  A state without finite terms (empty,
    all ``-inf``, or an exact cancellation) contributes nothing and does not move ``m``:
    there is no ``-inf - -inf``.
    """
    live = st.s_hi != 0
    m_live = xp.where(live, st.m, -xp.inf)
    m = xp.max(m_live, axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    # m_j - m exactly, as a double-double; exp of it to ~eps^2 relative
    d_hi, d_lo = _dd.two_sum(xp.where(live, st.m, m), -m)
    if is_float64(xp, st.m):
        e_hi, e_lo = exp_dd(xp, d_hi, d_lo)
        t_hi, t_lo = _dd.mul(xp, st.s_hi, st.s_lo, e_hi, e_lo)
        t_hi = xp.where(live, t_hi, 0.0)
        t_lo = xp.where(live, t_lo, 0.0)
        s_hi, s_lo = _dd.sum_last(xp, t_hi, t_lo)
    else:  # no wider type to carry the factor in: one rounding per merge
        t = xp.where(live, (st.s_hi + st.s_lo) * xp.exp(d_hi), 0.0)
        s_hi = xp.sum(t, axis=-1)
        s_lo = xp.zeros_like(s_hi)
    return State(
        m[..., 0],
        s_hi,
        s_lo,
        xp.any(st.nan, axis=-1),
        xp.any(st.inf_pos, axis=-1),
        xp.any(st.inf_neg, axis=-1),
        xp.sum(st.n_pinf, axis=-1),
    )


def finish(xp: Namespace, st: State) -> tuple[Array, Array]:
    """``(log|S| + m, sign)`` with the special cases of ``reductions.logsumexp``."""
    res = st.m + _log_abs(xp, st.s_hi, st.s_lo)
    sign = xp.sign(st.s_hi)
    both = st.inf_pos & st.inf_neg
    res = xp.where(st.inf_pos | st.inf_neg, xp.inf, res)
    sign = xp.where(st.inf_pos, 1.0, xp.where(st.inf_neg, -1.0, sign))
    bad = st.nan | both
    res = xp.where(bad, xp.nan, res)
    sign = xp.where(bad, xp.nan, sign)
    return res, sign


def normalise(xp: Namespace, x: Array, st: State, kind: str, exact: bool, clean: bool = False) -> Array:
    """Normalise ``x`` (slices along the last axis, working dtype) by a merged state.

    ``kind`` is ``"softmax"`` or ``"log_softmax"``.  The formulas of the one-shot kernels,
    with the shift and the double-double sum taken from the state of the whole slice, so a
    chunk is normalised without seeing the rest of its slice.  ``clean``: every entry of
    ``x`` is finite (special cases elsewhere in the slice still apply).  Returns the working
    dtype.
    """
    sh = shift_terms(xp, x, None, st.m[..., None], exact, clean)
    count = st.n_pinf[..., None]
    count1 = xp.where(count == 0, 1.0, count)
    if kind == "softmax":
        s_hi, s_lo = st.s_hi[..., None], st.s_lo[..., None]
        zero = s_hi == 0
        if exact:
            # e_i / S in double-double, rounded once
            q_hi, q_lo = _dd.div(xp, sh.t_hi, sh.t_lo, xp.where(zero, 1.0, s_hi), xp.where(zero, 0.0, s_lo))
            y = q_hi + q_lo
        else:
            y = sh.t_hi / xp.where(zero, 1.0, s_hi + s_lo)
        # +inf entries share the mass evenly; an all -inf slice gives zeros (S == 0 above)
        at_inf = 0.0 if sh.is_pinf is None else xp.where(sh.is_pinf, 1.0 / count1, 0.0)
        y = xp.where(st.inf_pos[..., None], at_inf, y)
    else:
        big_l = _log_abs(xp, st.s_hi, st.s_lo)[..., None]
        ok_l = xp.isfinite(big_l)
        # log p_i = (x_i - m) - log S, added as (d_hi - L) + d_lo with one final rounding
        y_hi, y_lo = _dd.two_sum(sh.d_hi, -xp.where(ok_l, big_l, 0.0))
        y = y_hi + (y_lo + sh.d_lo)
        y = xp.where(ok_l if sh.finite is None else sh.finite & ok_l, y, -xp.inf)
        at_inf = -xp.inf if sh.is_pinf is None else xp.where(sh.is_pinf, -xp.log(count1), -xp.inf)
        y = xp.where(st.inf_pos[..., None], at_inf, y)
    return xp.where(st.nan[..., None], xp.nan, y)


def effective_sample_size(xp: Namespace, st1: State, st2: State) -> Array:
    """Kish's ``(sum w)^2 / sum w^2`` from the states of ``log w`` and ``2 log w``.

    ``exp(2 LSE(log w) - LSE(2 log w))`` without the cancellation of two large logarithms:
    the state of ``2 log w`` has exactly twice the shift of the state of ``log w`` (doubling
    is exact, and so is the largest term), so the ratio is ``S1^2 / S2``, formed in
    double-double.  Special cases: no finite weight gives 0; ``k`` infinite log-weights
    share all the weight, ``k``; a NaN gives NaN.
    """
    zero = st2.s_hi == 0
    if is_float64(xp, st1.s_hi):
        n_hi, n_lo = _dd.mul(xp, st1.s_hi, st1.s_lo, st1.s_hi, st1.s_lo)
        q_hi, q_lo = _dd.div(xp, n_hi, n_lo, xp.where(zero, 1.0, st2.s_hi), xp.where(zero, 0.0, st2.s_lo))
        ess = q_hi + q_lo
    else:
        s1 = st1.s_hi + st1.s_lo
        ess = s1 * s1 / xp.where(zero, 1.0, st2.s_hi + st2.s_lo)
    ess = xp.where(zero, 0.0, ess)
    ess = xp.where(st1.inf_pos, st1.n_pinf, ess)
    return xp.where(st1.nan, xp.nan, ess)


@dataclass(frozen=True)
class Total:
    """Partial total of per-element losses: a double-double sum, and its denominator.

    The sum is ``(s_hi + s_lo) * 2**s_e``: a sum (or single losses) beyond the largest float
    whose mean is finite is kept at a power-of-two scale (``losses.sum_scaled``).
    ``special`` is the plain sum of the non-finite losses (``inf`` or NaN), kept apart so
    they decide the total the way plain addition would without poisoning the compensation.
    ``den`` is the element count (or the sum of the target weights) the mean divides by.
    """

    s_hi: Array
    s_lo: Array
    special: Array
    den_hi: Array
    den_lo: Array
    s_e: Array


def total(xp: Namespace, hi: Array, lo: Array, den: Array | None, e: float = 0.0) -> Total:
    """Total of the losses ``(hi + lo) * 2**e`` (any shape); ``den``: the terms of the
    denominator, None to count the elements."""
    from .losses import sum_scaled

    flat_hi = xp.reshape(hi, (1, -1))
    flat_lo = xp.reshape(lo, (1, -1))
    special = ~xp.isfinite(flat_hi)
    s_hi, s_lo, s_e = sum_scaled(xp, xp.where(special, 0.0, flat_hi), xp.where(special, 0.0, flat_lo))
    sp = xp.sum(xp.where(special, flat_hi, 0.0), axis=-1)
    if den is None:
        d_hi = xp.sum(xp.ones_like(flat_hi), axis=-1)  # the count, exact below 2^53
        d_lo = xp.zeros_like(d_hi)
    else:
        d_hi, d_lo = _dd.sum_last(xp, xp.reshape(den, (1, -1)), None)
    return Total(s_hi[0], s_lo[0], sp[0], d_hi[0], d_lo[0], s_e[0] + e)


def total_rescued(
    xp: Namespace, hi: Array, lo: Array, den: Array | None, over: bool | Array, rescaled: Callable[[], tuple[Array, Array]]
) -> Total:
    """`total` of the losses, or where ``over`` holds (some single loss overflowed while the
    inputs are finite: ``losses.overflowed``) of the losses ``rescaled()`` at ``2**-SCALE``.

    ``over`` a 0-d array (values not readable): both totals, one picked per field.
    """
    from .losses import SCALE, pick

    if over is False:
        return total(xp, hi, lo, den)
    big = total(xp, *rescaled(), den, SCALE)
    if over is True:
        return big
    plain = total(xp, hi, lo, den)
    return Total(*pick(xp, over, _fields(big), _fields(plain)))


TOTAL_FIELDS = tuple(f.name for f in dataclasses.fields(Total))


def _fields(t: Total) -> tuple[Array, ...]:
    return tuple(getattr(t, f) for f in TOTAL_FIELDS)


def stack_totals(xp: Namespace, totals: list[Total]) -> Total:
    return Total(*(xp.stack(parts, axis=-1) for parts in zip(*(_fields(t) for t in totals))))


def merge_totals(xp: Namespace, t: Total) -> Total:
    """Merge totals stacked along the last axis: double-double sums, nothing rounded (but
    sums brought to a common power-of-two scale)."""
    from .losses import sum_scaled

    s_hi, s_lo, s_e = sum_scaled(xp, t.s_hi, t.s_lo, t.s_e)
    d_hi, d_lo = _dd.sum_last(xp, t.den_hi, t.den_lo)
    return Total(s_hi, s_lo, xp.sum(t.special, axis=-1), d_hi, d_lo, s_e)


def finish_total(xp: Namespace, t: Total, mean: bool) -> Array:
    """The sum, or the mean (one rounding of the double-double quotient), as ``losses.reduce``."""
    from .losses import divide_scaled

    if not mean:
        return (t.s_hi + t.s_lo) * 2.0**t.s_e + t.special  # inf or NaN losses decide as plain addition
    if not is_float64(xp, t.s_hi):
        return ((t.s_hi + t.s_lo) * 2.0**t.s_e + t.special) / (t.den_hi + t.den_lo)
    return divide_scaled(xp, t.s_hi, t.s_lo, t.s_e, t.special, t.den_hi, t.den_lo)


def exp_dd(xp: Namespace, d_hi: Array, d_lo: Array) -> tuple[Array, Array]:
    """``exp(d_hi + d_lo)`` as a double-double, relative error about ``1e-30``, for ``d <= 0``.

    Float64 only (the splitting constants of ``_dd`` are float64's).  The argument is reduced
    as ``d = k ln 2 + r`` with ``ln 2`` in double-double and ``k ln 2`` formed exactly
    (Dekker's product), then ``exp(r) = (1 + expm1(r / 2^8))^(2^8)``: a degree-9 Taylor series
    of ``expm1`` in double-double, squared eight times in the form ``p -> 2p + p^2`` so the
    leading 1 never absorbs the digits of ``p``.  Below ``-746`` the result is 0.
    """
    tiny = d_hi < -746.0
    dh = xp.where(tiny, 0.0, d_hi)
    dl = xp.where(tiny, 0.0, d_lo)
    k = xp.round(dh / _LN2_HI)
    a_hi, a_lo = _dd.two_prod(xp, k, xp.full_like(k, _LN2_HI))
    b_hi, b_lo = _dd.two_prod(xp, k, xp.full_like(k, _LN2_LO))
    r_hi, r_lo = _dd.add(dh, dl, -a_hi, -a_lo)
    r_hi, r_lo = _dd.add(r_hi, r_lo, -b_hi, -b_lo)
    scale = 2.0**-_SQUARINGS
    r_hi, r_lo = r_hi * scale, r_lo * scale
    # expm1(r) = r (1/1! + r (1/2! + r (1/3! + ...))), Horner in double-double
    c_hi, c_lo = _INV_FACT[_DEGREE]
    p_hi = xp.full_like(r_hi, c_hi)
    p_lo = xp.full_like(r_hi, c_lo)
    for n in range(_DEGREE - 1, 0, -1):
        p_hi, p_lo = _dd.mul(xp, p_hi, p_lo, r_hi, r_lo)
        c_hi, c_lo = _INV_FACT[n]
        p_hi, p_lo = _dd.add(p_hi, p_lo, xp.full_like(r_hi, c_hi), xp.full_like(r_hi, c_lo))
    p_hi, p_lo = _dd.mul(xp, p_hi, p_lo, r_hi, r_lo)
    for _ in range(_SQUARINGS):
        # (1 + p)^2 = 1 + (2p + p^2)
        q_hi, q_lo = _dd.mul(xp, p_hi, p_lo, p_hi, p_lo)
        p_hi, p_lo = _dd.add(2.0 * p_hi, 2.0 * p_lo, q_hi, q_lo)
    e_hi, e_lo = _dd.add(xp.ones_like(p_hi), xp.zeros_like(p_hi), p_hi, p_lo)
    two_k = 2.0**k  # exact: a power of two, down to the subnormal 2^-1074
    e_hi = xp.where(tiny, 0.0, e_hi * two_k)
    e_lo = xp.where(tiny, 0.0, e_lo * two_k)
    return e_hi, e_lo
