"""Triton kernels: row-wise log-sum-exp, softmax, log-softmax, cross-entropy, BCE, sigmoid family.

Layout: a row kernel runs one program per row of a ``(rows, n)`` view whose last axis is
contiguous (``stride_*`` is the distance between rows); an elementwise kernel runs one
program per ``BLOCK`` elements of a contiguous array.  Rows longer than ``BLOCK`` are
walked in chunks; ``SINGLE`` (constexpr) marks rows that fit one chunk, which are loaded
once and kept in registers.

Numerics (the same formulas as ``stablenn._kernels``):

- float32 data is computed in float64, float16 and bfloat16 in float32 (``IN_KIND``), and
  each result is rounded once to the data's dtype.
- The shift is the largest finite entry ``m`` of the row.  One pass keeps ``m`` and
  ``rest``, the sum of ``e^(x_i - m)`` over every entry except one occurrence of the maximum
  (the pivot, whose term is exactly 1).  When a chunk raises the maximum, the old sum and
  the old pivot are rescaled by ``e^(m_old - m_new)`` and the old pivot becomes an ordinary
  term: every term added is non-negative, so ``rest`` keeps its relative accuracy however
  small it is, and ``log S = log1p(rest)`` keeps the digits that ``log(1 + rest)`` would
  round away (Blanchard, Higham and Higham 2021, doi:10.1093/imanum/draa038).
- Special rows, as on the CPU path: a NaN makes the row NaN; ``+inf`` entries share the
  mass evenly (log-sum-exp ``+inf``); an all ``-inf`` row has log-sum-exp ``-inf``, softmax
  0 and log-softmax ``-inf``.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._math import exp_neg, expm1_neg, load_ct, load_scalar_ct, log1p_pos, to_out

_INF = tl.constexpr(float("inf"))

# elementwise operation codes (``_unary_kernel``'s OP)
SIGMOID = tl.constexpr(0)
LOG_SIGMOID = tl.constexpr(1)
SOFTPLUS = tl.constexpr(2)
SIGMOID_GRAD = tl.constexpr(3)
TANH = tl.constexpr(4)
TANH_GRAD = tl.constexpr(5)
SIGMOID_NEG = tl.constexpr(6)  # sigma(-x): the derivative of log_sigmoid


@triton.jit
def _zero(WIDE: tl.constexpr):
    if WIDE:
        return tl.zeros((), tl.float64)
    else:
        return tl.zeros((), tl.float32)


@triton.jit
def _zeros(BLOCK: tl.constexpr, WIDE: tl.constexpr):
    if WIDE:
        return tl.zeros((BLOCK,), tl.float64)
    else:
        return tl.zeros((BLOCK,), tl.float32)


@triton.jit
def _fold(x, m, rest, WIDE: tl.constexpr):
    """Fold one chunk ``x`` (compute type; lanes to ignore hold ``-inf``) into ``(m, rest)``.

    Returns the new ``(m, rest)``, the chunk's terms ``t = e^(x - base)`` (0 for non-finite
    entries) and ``base`` (``m`` when finite, else 0).
    """
    fin = (x > -_INF) & (x < _INF)
    xs = tl.where(fin, x, -_INF)
    cm = tl.max(xs, axis=0)
    m_new = tl.maximum(m, cm)
    is_new = cm > m
    base = tl.where(m_new > -_INF, m_new, 0.0)  # an all -inf prefix shifts by 0
    t = exp_neg(xs - base, WIDE)
    # the chunk that raises the maximum supplies the pivot: its entries equal to the new
    # maximum leave the sum, and all but one come back as ordinary terms (exactly 1 each)
    piv = (xs == m_new) & (xs > m)  # (xs > m: this chunk raised the maximum)
    chunk = tl.sum(tl.where(piv, 0.0, t), axis=0)
    ties = tl.sum(piv.to(tl.int32), axis=0) - 1
    chunk = chunk + tl.where(is_new, ties, 0).to(chunk.dtype)
    # e^(m_old - m_new) rescales the old sum, and the old pivot (term 1) joins it
    f = exp_neg(tl.where(is_new, m - base, 0.0), WIDE)
    rest = tl.where(is_new, rest * f + f, rest) + chunk
    return m_new, rest, t, base


@triton.jit
def _specials(x):
    """Per-lane counts of NaN and ``+inf`` entries (int32)."""
    return (x != x).to(tl.int32), (x == _INF).to(tl.int32)


@triton.jit
def _scan(row_ptr, lo, hi, BLOCK: tl.constexpr, IN_KIND: tl.constexpr):
    """``(m, rest, n_nan, n_pinf)`` of the entries ``lo <= i < hi`` of one row."""
    WIDE: tl.constexpr = IN_KIND == 0
    m = _zero(WIDE) - _INF
    rest = _zero(WIDE)
    nan_v = tl.zeros((BLOCK,), tl.int32)
    pinf_v = tl.zeros((BLOCK,), tl.int32)
    for start in range(lo, hi, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < hi
        x = load_ct(row_ptr + offs, mask, -_INF, IN_KIND)
        a, b = _specials(x)
        nan_v += a
        pinf_v += b
        m, rest, t, base = _fold(x, m, rest, WIDE)
    return m, rest, tl.sum(nan_v, axis=0), tl.sum(pinf_v, axis=0)


@triton.jit
def _lse_value(m, rest, n_nan, n_pinf, WIDE: tl.constexpr):
    res = m + log1p_pos(rest, WIDE)
    res = tl.where(m > -_INF, res, -_INF)
    res = tl.where(n_pinf > 0, _INF, res)
    return tl.where(n_nan > 0, float("nan"), res)


# ---------------------------------------------------------------- log-sum-exp


@triton.jit
def _lse_kernel(
    x_ptr, out_ptr, m_ptr, r_ptr, c_ptr, n, stride_x, seg, n_split,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, PARTIAL: tl.constexpr,
):
    """Log-sum-exp of each row, or (``PARTIAL``) the state of each of ``n_split`` segments."""
    WIDE: tl.constexpr = IN_KIND == 0
    row = tl.program_id(0)
    part = tl.program_id(1)
    row_ptr = x_ptr + row.to(tl.int64) * stride_x
    lo = part * seg
    hi = tl.minimum(lo + seg, n)
    m, rest, n_nan, n_pinf = _scan(row_ptr, lo, hi, BLOCK, IN_KIND)
    if PARTIAL:
        k = row.to(tl.int64) * n_split + part
        tl.store(m_ptr + k, m)
        tl.store(r_ptr + k, rest)
        tl.store(c_ptr + 2 * k, n_nan)
        tl.store(c_ptr + 2 * k + 1, n_pinf)
    else:
        tl.store(out_ptr + row, to_out(_lse_value(m, rest, n_nan, n_pinf, WIDE), IN_KIND))


@triton.jit
def _lse_merge_kernel(
    m_ptr, r_ptr, c_ptr, out_ptr, n_split, SPLIT: tl.constexpr, IN_KIND: tl.constexpr,
):
    """Merge the segment states of each row: the mergeable state of log-sum-exp."""
    WIDE: tl.constexpr = IN_KIND == 0
    row = tl.program_id(0)
    j = tl.arange(0, SPLIT)
    mask = j < n_split
    k = row.to(tl.int64) * n_split + j
    m = tl.load(m_ptr + k, mask=mask, other=-float("inf"))
    r = tl.load(r_ptr + k, mask=mask, other=0.0)
    n_nan = tl.sum(tl.load(c_ptr + 2 * k, mask=mask, other=0), axis=0)
    n_pinf = tl.sum(tl.load(c_ptr + 2 * k + 1, mask=mask, other=0), axis=0)
    big = tl.max(m, axis=0)
    base = tl.where(big > -_INF, big, 0.0)
    # the first segment holding the maximum keeps its pivot; every other segment's pivot
    # becomes an ordinary term: rest_j + 1, rescaled
    first = tl.min(tl.where(m == big, j, SPLIT), axis=0)
    f = exp_neg(m - base, WIDE)
    terms = tl.where(j == first, r, (r + 1.0) * f)
    rest = tl.sum(tl.where(mask, terms, 0.0), axis=0)
    tl.store(out_ptr + row, to_out(_lse_value(big, rest, n_nan, n_pinf, WIDE), IN_KIND))


# ---------------------------------------------------------------- softmax, log-softmax


@triton.jit
def _normalised(x, t, base, rest, n_nan, n_pinf, LOG: tl.constexpr, WIDE: tl.constexpr):
    """softmax (``t / S``) or log-softmax (``x - m - log1p(rest)``) of entries ``x``."""
    cnt = tl.maximum(n_pinf, 1).to(rest.dtype)
    if LOG:
        big_l = log1p_pos(rest, WIDE)
        y = (x - base) - big_l  # x - m exact; both parts <= 0: no cancellation
        y = tl.where(x > -_INF, y, -_INF)
        at_inf = -log1p_pos(cnt - 1.0, WIDE)
        y = tl.where(n_pinf > 0, tl.where(x == _INF, at_inf, -_INF), y)
    else:
        y = t * (1.0 / (1.0 + rest))  # one division per row; two roundings, both far below the data's
        y = tl.where(n_pinf > 0, tl.where(x == _INF, 1.0 / cnt, 0.0), y)
    return tl.where(n_nan > 0, float("nan"), y)


@triton.jit
def _softmax_kernel(
    x_ptr, y_ptr, g_ptr, n, stride_x, stride_y,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, LOG: tl.constexpr,
    HAS_G: tl.constexpr, SINGLE: tl.constexpr,
):
    """softmax or log-softmax of each row; ``HAS_G``: softmax times ``g[row]`` (the
    derivative of log-sum-exp)."""
    WIDE: tl.constexpr = IN_KIND == 0
    row = tl.program_id(0)
    xr = x_ptr + row.to(tl.int64) * stride_x
    yr = y_ptr + row.to(tl.int64) * stride_y
    if HAS_G:
        g = load_scalar_ct(g_ptr + row, IN_KIND)
    if SINGLE:
        offs = tl.arange(0, BLOCK)
        mask = offs < n
        x = load_ct(xr + offs, mask, -_INF, IN_KIND)
        n_nan = tl.sum((x != x).to(tl.int32), axis=0)
        n_pinf = tl.sum((x == _INF).to(tl.int32), axis=0)
        m, rest, t, base = _fold(x, _zero(WIDE) - _INF, _zero(WIDE), WIDE)
        y = _normalised(x, t, base, rest, n_nan, n_pinf, LOG, WIDE)
        if HAS_G:
            y = y * g
        tl.store(yr + offs, to_out(y, IN_KIND), mask=mask)
    else:
        m, rest, n_nan, n_pinf = _scan(xr, 0, n, BLOCK, IN_KIND)
        base = tl.where(m > -_INF, m, 0.0)
        for start in range(0, n, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            mask = offs < n
            x = load_ct(xr + offs, mask, -_INF, IN_KIND)
            t = tl.zeros_like(x)
            if not LOG:
                t = exp_neg(tl.where((x > -_INF) & (x < _INF), x, -_INF) - base, WIDE)
            y = _normalised(x, t, base, rest, n_nan, n_pinf, LOG, WIDE)
            if HAS_G:
                y = y * g
            tl.store(yr + offs, to_out(y, IN_KIND), mask=mask)


@triton.jit
def _two_sum_combine(a_hi, a_lo, b_hi, b_lo):
    """Add two (hi, lo) pairs, carrying the rounding error of the high parts (Knuth's TwoSum:
    additions only, so FMA contraction cannot touch it)."""
    s = a_hi + b_hi
    bb = s - a_hi
    e = (a_hi - (s - bb)) + (b_hi - bb)
    return s, a_lo + b_lo + e


@triton.jit
def _softmax_bwd_kernel(
    y_ptr, dy_ptr, dx_ptr, n, stride_y, stride_dy, stride_dx,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, LOG: tl.constexpr, SINGLE: tl.constexpr,
):
    """Backward of softmax, ``dx = y (dy - sum(y dy))``, or of log-softmax,
    ``dx = dy - e^y sum(dy)``, from the saved output ``y``.

    The sum is compensated (its terms, products of two values of the data's dtype, are exact
    in the compute type): ``dy - sum`` can cancel, and then only an accurate sum leaves the
    difference accurate.
    """
    WIDE: tl.constexpr = IN_KIND == 0
    row = tl.program_id(0)
    yr = y_ptr + row.to(tl.int64) * stride_y
    dyr = dy_ptr + row.to(tl.int64) * stride_dy
    dxr = dx_ptr + row.to(tl.int64) * stride_dx
    acc_hi = _zeros(BLOCK, WIDE)
    acc_lo = _zeros(BLOCK, WIDE)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n
        dy = load_ct(dyr + offs, mask, 0.0, IN_KIND)
        if LOG:
            term = dy
        else:
            term = load_ct(yr + offs, mask, 0.0, IN_KIND) * dy
        acc_hi, acc_lo = _two_sum_combine(acc_hi, acc_lo, term, _zeros(BLOCK, WIDE))
    hi, lo = tl.reduce((acc_hi, acc_lo), 0, _two_sum_combine)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n
        y = load_ct(yr + offs, mask, 0.0, IN_KIND)
        dy = load_ct(dyr + offs, mask, 0.0, IN_KIND)
        if LOG:
            e = exp_neg(tl.where(mask, y, -_INF), WIDE)
            dx = (dy - e * hi) - e * lo
        else:
            dx = y * ((dy - hi) - lo)  # dy - hi is exact where it cancels (Sterbenz)
        tl.store(dxr + offs, to_out(dx, IN_KIND), mask=mask)


# ---------------------------------------------------------------- cross-entropy


@triton.jit
def _ce_entries(
    x, w, cls, tgt, rest, base, big_l, lcnt, n_nan, n_pinf, coef_t, eps_c, w_sum, scale,
    HAS_W: tl.constexpr, SMOOTH: tl.constexpr, WRITE_GRAD: tl.constexpr, WIDE: tl.constexpr,
):
    """For one chunk: the smoothing terms ``w_c (-log p_c)`` and the gradient entries."""
    fin = (x > -_INF) & (x < _INF)
    d = x - base
    # -log p_c = log1p(rest) - (x_c - m): both parts >= 0, nothing cancels
    nl = tl.where(fin, big_l - d, _INF)
    nl = tl.where(n_pinf > 0, tl.where(x == _INF, lcnt, _INF), nl)
    nl = tl.where(n_nan > 0, float("nan"), nl)
    sm = tl.zeros_like(x)
    if SMOOTH:
        if HAS_W:
            sm = tl.where(w == 0.0, 0.0, nl) * w  # a zero weight removes a class, even at -inf
        else:
            sm = nl
    g = tl.zeros_like(x)
    if WRITE_GRAD:
        # p_c - [c = t], with p_pivot - 1 = -rest / S (not 1/S - 1, which loses rest's digits)
        inv_s = 1.0 / (1.0 + rest)
        p = exp_neg(tl.where(fin, x, -_INF) - base, WIDE) * inv_s
        pm1 = tl.where(x == base, -rest * inv_s, p - 1.0)
        cnt = tl.maximum(n_pinf, 1).to(x.dtype)
        p = tl.where(n_pinf > 0, tl.where(x == _INF, 1.0 / cnt, 0.0), p)
        pm1 = tl.where(n_pinf > 0, p - 1.0, pm1)
        onehot = cls == tgt
        g = coef_t * tl.where(onehot, pm1, p)
        if SMOOTH:
            if HAS_W:
                g = g + eps_c * (w_sum * p - w)
            else:
                g = g + eps_c * (w_sum * p - 1.0)
        g = g * scale
        g = tl.where(n_nan > 0, float("nan"), g)
    return sm, g


@triton.jit
def _ce_kernel(
    x_ptr, t_ptr, w_ptr, loss_ptr, grad_ptr, den_ptr, wsum_ptr,
    n, stride_x, stride_g, ignore_index, eps_hi, eps_lo,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, HAS_W: tl.constexpr,
    HAS_IGNORE: tl.constexpr, SMOOTH: tl.constexpr, WRITE_GRAD: tl.constexpr,
    MEAN: tl.constexpr, SINGLE: tl.constexpr,
):
    """Cross-entropy of each row against a class index; the loss (compute type) goes to
    ``loss_ptr[row]``; ``WRITE_GRAD`` also writes d(total loss)/d(logits) for an upstream
    gradient of 1 (divided by the mean's denominator ``den_ptr[0]`` when ``MEAN``)."""
    WIDE: tl.constexpr = IN_KIND == 0
    row = tl.program_id(0)
    xr = x_ptr + row.to(tl.int64) * stride_x
    gr = grad_ptr + row.to(tl.int64) * stride_g
    tgt = tl.load(t_ptr + row).to(tl.int64)
    valid = (tgt >= 0) & (tgt < n)
    if HAS_IGNORE:
        ignored = tgt == ignore_index
    else:
        ignored = tgt != tgt
    bad = (~valid) & (~ignored)  # an index nobody checked: NaN, never a silent 0
    safe_t = tl.where(valid, tgt, 0)
    eps = (_zero(WIDE) + eps_hi) + eps_lo  # two float32 arguments carry a float64 value

    if SINGLE:
        offs = tl.arange(0, BLOCK)
        mask = offs < n
        x_all = load_ct(xr + offs, mask, -_INF, IN_KIND)
        n_nan = tl.sum((x_all != x_all).to(tl.int32), axis=0)
        n_pinf = tl.sum((x_all == _INF).to(tl.int32), axis=0)
        m, rest, t_unused, base = _fold(x_all, _zero(WIDE) - _INF, _zero(WIDE), WIDE)
    else:
        m, rest, n_nan, n_pinf = _scan(xr, 0, n, BLOCK, IN_KIND)
        base = tl.where(m > -_INF, m, 0.0)
    big_l = log1p_pos(rest, WIDE)
    lcnt = log1p_pos(tl.maximum(n_pinf, 1).to(rest.dtype) - 1.0, WIDE)

    x_t = load_ct(xr + safe_t, valid, 0.0, IN_KIND)
    nl_t = tl.where((x_t > -_INF) & (x_t < _INF), big_l - (x_t - base), _INF)
    nl_t = tl.where(n_pinf > 0, tl.where(x_t == _INF, lcnt, _INF), nl_t)
    nl_t = tl.where(n_nan > 0, float("nan"), nl_t)
    if HAS_W:
        w_t = load_ct(w_ptr + safe_t, valid, 0.0, IN_KIND)
    else:
        w_t = _zero(WIDE) + 1.0
    loss = nl_t * w_t

    if SMOOTH or WRITE_GRAD:
        c_f = _zero(WIDE) + n
        eps_c = eps / c_f
        coef_t = (1.0 - eps) * w_t
        if HAS_W:
            if WIDE:
                w_sum = tl.load(wsum_ptr).to(tl.float64)
            else:
                w_sum = tl.load(wsum_ptr).to(tl.float32)
        else:
            w_sum = c_f
        scale = _zero(WIDE) + 1.0
        if MEAN:
            if WIDE:
                scale = scale / tl.load(den_ptr).to(tl.float64)
            else:
                scale = scale / tl.load(den_ptr).to(tl.float32)
        scale = tl.where(ignored, 0.0, scale)
        sm_v = _zeros(BLOCK, WIDE)
        if SINGLE:
            w = tl.zeros_like(x_all)
            if HAS_W:
                w = load_ct(w_ptr + offs, mask, 0.0, IN_KIND)
            sm, g = _ce_entries(
                x_all, w, offs.to(tl.int64), safe_t, rest, base, big_l, lcnt, n_nan, n_pinf,
                coef_t, eps_c, w_sum, scale, HAS_W, SMOOTH, WRITE_GRAD, WIDE,
            )
            sm_v += tl.where(mask, sm, 0.0)
            if WRITE_GRAD:
                g = tl.where(bad, float("nan"), g)
                tl.store(gr + offs, to_out(g, IN_KIND), mask=mask)
        else:
            for start in range(0, n, BLOCK):
                offs = start + tl.arange(0, BLOCK)
                mask = offs < n
                x = load_ct(xr + offs, mask, -_INF, IN_KIND)
                w = tl.zeros_like(x)
                if HAS_W:
                    w = load_ct(w_ptr + offs, mask, 0.0, IN_KIND)
                sm, g = _ce_entries(
                    x, w, offs.to(tl.int64), safe_t, rest, base, big_l, lcnt, n_nan, n_pinf,
                    coef_t, eps_c, w_sum, scale, HAS_W, SMOOTH, WRITE_GRAD, WIDE,
                )
                sm_v += tl.where(mask, sm, 0.0)
                if WRITE_GRAD:
                    g = tl.where(bad, float("nan"), g)
                    tl.store(gr + offs, to_out(g, IN_KIND), mask=mask)
        if SMOOTH:
            # PyTorch's smoothing: (1 - eps) w_t nll_t + eps / C sum_c w_c nll_c
            loss = loss * (1.0 - eps) + tl.sum(sm_v, axis=0) * eps_c
    loss = tl.where(ignored, 0.0, loss)
    loss = tl.where(bad, float("nan"), loss)
    tl.store(loss_ptr + row, loss)


@triton.jit
def _scale_rows_kernel(
    g_ptr, dy_ptr, n, stride_g, BLOCK: tl.constexpr, IN_KIND: tl.constexpr, PER_ROW: tl.constexpr,
):
    """``g[row] *= dy`` (one value, or one per row), in place; rows whose factor is exactly 1
    are not touched, so the usual ``loss.backward()`` costs no pass over the gradient."""
    WIDE: tl.constexpr = IN_KIND == 0
    row = tl.program_id(0)
    gr = g_ptr + row.to(tl.int64) * stride_g
    if PER_ROW:
        d = load_scalar_ct(dy_ptr + row, IN_KIND)
    else:
        d = load_scalar_ct(dy_ptr, IN_KIND)
    stop = tl.where(d == 1.0, 0, n)
    for start in range(0, stop, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n
        g = load_ct(gr + offs, mask, 0.0, IN_KIND)
        tl.store(gr + offs, to_out(g * d, IN_KIND), mask=mask)


# ---------------------------------------------------------------- binary cross-entropy


@triton.jit
def _softplus_pair(x, WIDE: tl.constexpr):
    """``(softplus(x), softplus(-x))`` for finite ``x``: max(+-x, 0) + log1p(e^-|x|)."""
    tail = log1p_pos(exp_neg(-tl.abs(x), WIDE), WIDE)
    return tl.maximum(x, 0.0) + tail, tl.maximum(-x, 0.0) + tail


@triton.jit
def _bce_kernel(
    x_ptr, y_ptr, w_ptr, pw_ptr, out_ptr, part_ptr, numel, w_period, pw_period,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, HAS_W: tl.constexpr, HAS_PW: tl.constexpr,
    REDUCE: tl.constexpr,
):
    """Elementwise ``w [pw y softplus(-x) + (1 - y) softplus(x)]``; ``REDUCE``: each program
    writes the sum of its block (compute type) to ``part_ptr[pid]`` instead."""
    WIDE: tl.constexpr = IN_KIND == 0
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    x = load_ct(x_ptr + offs, mask, 0.0, IN_KIND)
    y = load_ct(y_ptr + offs, mask, 0.0, IN_KIND)
    finite = (x > -_INF) & (x < _INF)
    xf = tl.where(finite, x, 0.0)
    sp_pos, sp_neg = _softplus_pair(xf, WIDE)
    c1 = y
    if HAS_PW:
        c1 = y * load_ct(pw_ptr + offs % pw_period, mask, 0.0, IN_KIND)
    # both terms are >= 0 for labels in [0, 1]: the sheet's max(x,0) - xy + log1p(e^-|x|)
    # subtracts xy from x and loses the digits of (1 - y) x for soft labels
    loss = c1 * sp_neg + (1.0 - y) * sp_pos
    coef = tl.where(x > 0, 1.0 - y, c1)
    if HAS_W:
        w = load_ct(w_ptr + offs % w_period, mask, 0.0, IN_KIND)
        loss = loss * w
        coef = coef * w
    # infinite logits: the limits; a zero coefficient gives 0, not 0 * inf = NaN
    at_inf = tl.where(coef == 0.0, 0.0, tl.where(coef == 0.0, 1.0, coef) * _INF)
    loss = tl.where(finite, loss, at_inf)
    loss = tl.where((x != x) | (loss != loss), float("nan"), loss)
    if REDUCE:
        tl.store(part_ptr + pid, tl.sum(tl.where(mask, loss, 0.0), axis=0))
    else:
        tl.store(out_ptr + offs, to_out(loss, IN_KIND), mask=mask)


@triton.jit
def _bce_bwd_kernel(
    x_ptr, y_ptr, w_ptr, pw_ptr, dy_ptr, dx_ptr, dt_ptr, numel, w_period, pw_period, count,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, HAS_W: tl.constexpr, HAS_PW: tl.constexpr,
    DY_SCALAR: tl.constexpr, MEAN: tl.constexpr, WANT_DT: tl.constexpr,
):
    """``dx = g w [(1 - y) sigma(x) - pw y sigma(-x)]`` and (``WANT_DT``)
    ``dy_target = g w [softplus(x) - pw softplus(-x)]``, ``g`` the upstream gradient
    (divided by ``count`` for the mean)."""
    WIDE: tl.constexpr = IN_KIND == 0
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    x = load_ct(x_ptr + offs, mask, 0.0, IN_KIND)
    y = load_ct(y_ptr + offs, mask, 0.0, IN_KIND)
    if DY_SCALAR:
        g = load_scalar_ct(dy_ptr, IN_KIND)
    else:
        g = load_ct(dy_ptr + offs, mask, 0.0, IN_KIND)
    if MEAN:
        g = g / (_zero(WIDE) + count)
    e = exp_neg(-tl.abs(x), WIDE)  # sigma(|x|) = 1 / (1 + e), sigma(-|x|) = e / (1 + e)
    inv = 1.0 / (1.0 + e)
    s_pos = tl.where(x >= 0, inv, e * inv)
    s_neg = tl.where(x >= 0, e * inv, inv)
    c1 = y
    if HAS_PW:
        c1 = y * load_ct(pw_ptr + offs % pw_period, mask, 0.0, IN_KIND)
    gx = (1.0 - y) * s_pos - c1 * s_neg
    if HAS_W:
        w = load_ct(w_ptr + offs % w_period, mask, 0.0, IN_KIND)
        gx = gx * w
    tl.store(dx_ptr + offs, to_out(gx * g, IN_KIND), mask=mask)
    if WANT_DT:
        finite = (x > -_INF) & (x < _INF)
        sp_pos, sp_neg = _softplus_pair(tl.where(finite, x, 0.0), WIDE)
        sp_pos = tl.where(finite, sp_pos, tl.where(x > 0, _INF, 0.0))
        sp_neg = tl.where(finite, sp_neg, tl.where(x < 0, _INF, 0.0))
        pw = _zero(WIDE) + 1.0
        if HAS_PW:
            pw = load_ct(pw_ptr + offs % pw_period, mask, 0.0, IN_KIND)
        gt = sp_pos - pw * sp_neg
        if HAS_W:
            gt = gt * w
        gt = tl.where(x != x, float("nan"), gt)
        tl.store(dt_ptr + offs, to_out(gt * g, IN_KIND), mask=mask)


# ---------------------------------------------------------------- sigmoid family


@triton.jit
def _unary(x, OP: tl.constexpr, WIDE: tl.constexpr):
    a = tl.abs(x)
    if OP == TANH or OP == TANH_GRAD:
        a2 = 2.0 * tl.minimum(a, 1000.0)  # e^-2000 is 0 in every dtype; 2|x| cannot overflow
        e = exp_neg(-a2, WIDE)
        if OP == TANH:
            # |x| < 0.55: tanh(a) = -m / (2 + m), m = expm1(-2a), no cancellation near 0;
            # above: (1 - e) / (1 + e), e = e^-2a <= 1/3
            mm = expm1_neg(-tl.where(a < 0.55, a2, 0.0), WIDE)
            r = tl.where(a < 0.55, -mm / (2.0 + mm), (1.0 - e) / (1.0 + e))
            r = tl.where(x < 0, -r, r)
            y = tl.where(x == 0, x, r)  # keeps the sign of zero
        else:
            # tanh'(x) = 4 e / (1 + e)^2, e = e^-2|x|: no 1 - tanh^2 cancellation
            y = 4.0 * e / ((1.0 + e) * (1.0 + e))
    else:
        e = exp_neg(-a, WIDE)  # e^-|x| <= 1: never overflows
        if OP == SIGMOID:
            # sigma(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below: the tail keeps its digits
            y = tl.where(x >= 0, 1.0, e) / (1.0 + e)
        elif OP == SIGMOID_NEG:
            y = tl.where(x >= 0, e, 1.0) / (1.0 + e)
        elif OP == SIGMOID_GRAD:
            # sigma'(x) = e / (1 + e)^2: symmetric, no 1 - sigma cancellation
            y = e / ((1.0 + e) * (1.0 + e))
        elif OP == SOFTPLUS:
            # softplus(x) = max(x, 0) + log1p(e^-|x|)
            y = tl.maximum(x, 0.0) + log1p_pos(e, WIDE)
        else:
            # log sigma(x) = -softplus(-x)
            y = -(tl.maximum(-x, 0.0) + log1p_pos(e, WIDE))
    return tl.where(x != x, x, y)


@triton.jit
def _unary_kernel(
    x_ptr, dy_ptr, out_ptr, numel,
    BLOCK: tl.constexpr, IN_KIND: tl.constexpr, OP: tl.constexpr, HAS_DY: tl.constexpr,
):
    """``out = f(x)``, or ``dy * f(x)`` (``HAS_DY``, a derivative for the backward pass)."""
    WIDE: tl.constexpr = IN_KIND == 0
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    x = load_ct(x_ptr + offs, mask, 0.0, IN_KIND)
    y = _unary(x, OP, WIDE)
    if HAS_DY:
        y = y * load_ct(dy_ptr + offs, mask, 0.0, IN_KIND)
    tl.store(out_ptr + offs, to_out(y, IN_KIND), mask=mask)
