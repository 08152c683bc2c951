"""Plain-NumPy log-sum-exp, softmax and log-softmax over the last axis, tiled and threaded.

This is the path NumPy users get without the compiled kernels of ``stablenn._fast`` (no
Numba, or ``STABLENN_FAST_CPU=0``, or ``STABLENN_PLAIN=1``).  It computes what
``_kernels/reductions.py`` computes, with the same accuracy, but as a fixed sequence of
in-place ufunc calls on tiles of about ``TILE`` elements held in per-thread float64 buffers:
the temporaries stay in the L2 cache, no full-size float64 copy of a narrower input is ever
made, and the tiles run on all cores (NumPy releases the GIL inside its loops).

Two working modes, as in ``reductions.py``:

- float16 and float32: widened to float64, where ``d = x - m`` is exact for any two finite
  inputs that matter (its rounding is at most ``|d| 2**-53`` relative, far below the output's
  precision for every ``|d|`` at which ``e**d`` is still representable in the narrow type),
  so no correction term is needed; the sum of the other terms (``S = 1 + rest``) is kept
  apart from the pivot's exact 1 so that ``log S = log1p(rest)`` keeps a tiny rest.
- float64: ``d = x - m`` with its exact rounding error ``dl`` (Knuth's TwoSum), the terms
  ``t = e**d (1 + dl)``, and their sum split error-free (Rump's ExtractScalar):
  ``hi = (t + sigma) - sigma`` is exact, its sum over any number of terms is exact when
  ``sigma = 2**ceil(log2 n)``, and the rest ``t - hi`` is tiny, so ``S = H + Lo`` is known to
  about ``eps**2``; ``H - 1`` is exact, so ``log1p(S - 1)`` needs no pivot bookkeeping.

A tile whose rows hold anything but finite numbers (NaN, infinities, a ``x - m`` that
overflows) or whose rest is subnormal is handed whole to the array-API kernel of
``reductions.py``, which has the special-case tables; rows are independent, so the result
is the same as if the kernel had run on the whole array.  Timings: ``benchmarks/plain_vs_peers.py``.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import Any

import numpy as np

from .. import _blocking
from . import reductions as k

__all__: list[str] = []

TILE = 1 << 15  # elements per tile: 256 KiB per float64 buffer, five buffers fit in L2
MIN_ELEMENTS = 1  # measured faster than the whole-array kernels at every size tried (4 x 256 up)
_NARROW = (np.dtype(np.float16), np.dtype(np.float32))
_F64 = np.dtype(np.float64)
_TINY = 2.0**-1000  # a 1-D rest below this may be made of subnormal terms (reductions._tiny_rest)


def applies(x: Any) -> bool:
    """Whether ``x`` (a NumPy array, reduced axis last) takes this path."""
    return (
        type(x) is np.ndarray
        and (x.dtype in _NARROW or x.dtype == _F64)
        and x.ndim >= 1
        and x.shape[-1] > 0
        and x.size >= MIN_ELEMENTS
    )


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.flat: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        size = shape[0] * shape[1]
        buf = self.flat.get(name)
        if buf is None or buf.size < size:
            buf = np.empty(max(size, TILE), dtype=np.float64)
            self.flat[name] = buf
        return buf[:size].reshape(shape)


_BUF = _Buffers()


@functools.lru_cache(maxsize=64)
def _sigma(n: int) -> float:
    """The power of two that makes the sum of ``n`` split terms in [0, 1] exact."""
    return float(2.0 ** max(1, math.ceil(math.log2(max(n, 2)))))


# ---------------------------------------------------------------------------------------
# Tile kernels.  ``xt`` is a (r, c) tile of the input, ``m`` its rows' shift (float64, (r,)).

_ROW_LOOP = 512  # from this row length a loop of scalar ufunc calls beats a (r, 1) broadcast


def _by_row(ufunc: Any, a: np.ndarray, col: np.ndarray, out: np.ndarray) -> None:
    """``ufunc(a, col[:, None], out)``: NumPy runs a (r, 1) operand broadcast along long rows
    through a strided loop (measured 2-3x slower than a scalar operand), so long rows go one
    by one with a Python float."""
    if a.shape[1] < _ROW_LOOP:
        ufunc(a, col[:, None], out)
        return
    for ai, ci, oi in zip(a, col.tolist(), out):
        ufunc(ai, ci, oi)


def _shifted64(xt: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``d = fl(x - m)`` and its exact rounding error ``dl`` (Knuth's TwoSum), float64 input."""
    shape = xt.shape
    d = _BUF.get("d", shape)
    dl = _BUF.get("dl", shape)
    w = _BUF.get("w", shape)
    _by_row(np.subtract, xt, m, d)  # s = fl(x - m)
    np.subtract(d, xt, out=w)  # bb = s - x
    np.subtract(d, w, out=dl)  # s - bb
    np.subtract(xt, dl, out=dl)  # x - (s - bb)
    _by_row(np.add, w, m, w)  # bb + m, so that -m - bb = -(bb + m) exactly
    np.subtract(dl, w, out=dl)  # dl = (x - (s - bb)) + (-m - bb)
    return d, dl


def _split_sum(t: np.ndarray, sigma: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Row sums of ``t`` (entries in [0, sigma]) as ``(H, Lo)`` with ``H`` exact.

    ExtractScalar (Rump, Ogita and Oishi): with ``sigma`` a power of two, ``hi = (t + sigma)
    - sigma`` is exact and a multiple of ulp(sigma), so any sum of them up to ``2 sigma`` is
    exact whatever the order; ``t - hi`` is exact and below ulp(sigma) / 2, so the plain sum
    of those is off by about eps**2 of the row's sum."""
    w = _BUF.get("w", t.shape)
    if isinstance(sigma, float):
        np.add(t, sigma, out=w)
        np.subtract(w, sigma, out=w)
    else:
        _by_row(np.add, t, sigma, w)
        _by_row(np.subtract, w, sigma, w)
    h = _rowsum1(w)
    np.subtract(t, w, out=w)
    return h, _rowsum1(w)


def _sums64(d: np.ndarray, dl: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``t = e**d`` and ``S = sum t (1 + dl)`` per row as ``(H, Lo)``: ``H`` exact."""
    t = _BUF.get("t", d.shape)
    np.exp(d, out=t)
    h, lo = _split_sum(t, sigma)
    # exp(d + dl) = e**d (1 + dl) + O(dl**2): the carried rounding error of x - m
    if d.shape[1] <= 8192:
        lo += np.vecdot(t, dl)
    else:  # long rows: OpenBLAS may start threads for a dot product above 10,000 entries
        lo += np.einsum("ij,ij->i", t, dl)
    return t, h, lo


def _sums_or_none(
    xt: np.ndarray, m: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(d, dl, t, H, Lo)`` of a float64 tile shifted by its row maxima ``m``, or None where
    some row needs the special-case kernel (`_bad64`)."""
    d, dl = _shifted64(xt, m)
    t, h, lo = _sums64(d, dl, _sigma(xt.shape[1]))
    return None if _bad64(h, lo) else (d, dl, t, h, lo)


def _bad64(h: np.ndarray, lo: np.ndarray) -> bool:
    """A row needs the special-case kernel: a term was -inf or x - m overflowed (NaN in
    ``lo``), or the whole rest is below one rounding of 1 (``H == 1``): ``lo`` is then the
    result of the dominant component (``log1p(rest)``) and its plain sum of many small
    terms is not accurate enough (3 ULP measured); the kernel sums it in double-double."""
    # a NaN fails the comparison: one pass over the (r,) row sums
    # (lo == 0 with H == 1 is no exception: every term may have underflowed to 0)
    return not bool(np.logical_and.reduce((h != 1.0) & (lo == lo)))


_rowsum = np.add.reduce  # with axis=1: the ufunc itself, without np.sum's Python wrapper


def _rowsum1(a: np.ndarray) -> np.ndarray:
    return _rowsum(a, axis=1)


def _max_rows(xt: np.ndarray) -> np.ndarray:
    return np.maximum.reduce(xt, axis=1).astype(np.float64, copy=False)


def _all_finite(m: np.ndarray) -> bool:
    return bool(np.logical_and.reduce(np.isfinite(m)))


def _general(name: str, xt: np.ndarray, out_dtype: np.dtype) -> Any:
    """The array-API kernel of ``reductions.py`` on one tile (special values handled there)."""
    exact = xt.dtype == _F64
    xw = xt if exact else xt.astype(np.float64)
    clean = bool(np.isfinite(xw).all())
    if name == "logsumexp":
        res, sign = k.logsumexp(np, xw, None, None, exact, clean)
        return res, sign
    kernel = k.softmax if name == "softmax" else k.log_softmax
    return kernel(np, xw, None, exact, clean).astype(out_dtype, copy=False)


def _unshifted_ok(xt: np.ndarray, m: np.ndarray) -> bool:
    """Whether ``e**x`` itself can be summed: no row sum overflows, and no term that matters is
    subnormal (every row's maximum >= 0, so outputs below e**-708 are not amplified by 1 / S;
    or, in float64, no entry below -708 at all).  Narrow outputs: every term that underflows
    in float64 is below the smallest subnormal of float32 once divided by S >= e**-600."""
    n = xt.shape[1]
    hi = 700.0 - math.log(n + 1.0)
    if not (m.max() <= hi and m.min() >= -600.0):  # NaN fails both
        return False
    return xt.dtype != _F64 or m.min() >= 0.0 or float(xt.min()) >= -708.0


def _tile_softmax(xt: np.ndarray, ot: np.ndarray) -> None:
    m = _max_rows(xt)
    if _unshifted_ok(xt, m):
        # softmax is shift-invariant: with no shift there is no rounding of x - m to carry;
        # each e**x is rounded once
        t = _BUF.get("t", xt.shape)
        np.exp(xt, out=t, dtype=np.float64)  # widened exactly, then exp in float64
        if xt.dtype != _F64:
            s = _rowsum1(t)
            _by_row(np.multiply, t, 1.0 / s, t)  # two float64 roundings, then one to float32
            np.copyto(ot, t, casting="same_kind")
            return
        # rows scaled into [0, 2) by powers of two would be exact; instead each row gets its
        # own sigma above its largest term (2**ceil(m log2 e) + 1 >= e**m (1 + eps))
        n = xt.shape[1]
        sigma = np.ldexp(1.0, (np.ceil(m * 1.4426950408889634) + 2 + math.ceil(math.log2(n))).astype(np.int64))
        h, lo = _split_sum(t, sigma)
        _normalise64(t, None, h, lo, ot)
        return
    if not _all_finite(m):
        ot[...] = _general("softmax", xt, ot.dtype)
        return
    if xt.dtype != _F64:
        d = _BUF.get("d", xt.shape)
        np.copyto(d, xt)  # exact widening
        _by_row(np.subtract, d, m, d)  # exact in float64
        np.exp(d, out=d)
        s = _rowsum1(d)  # >= 1: the pivot is exactly 1
        _by_row(np.multiply, d, 1.0 / s, d)
        np.copyto(ot, d, casting="same_kind")
        return
    parts = _sums_or_none(xt, m)
    if parts is None:
        ot[...] = _general("softmax", xt, ot.dtype)
        return
    d, dl, t, h, lo = parts
    _normalise64(t, dl, h, lo, ot)


def _normalise64(t: np.ndarray, dl: np.ndarray | None, h: np.ndarray, lo: np.ndarray, ot: np.ndarray) -> None:
    """``p = t (1 + dl) / S`` as ``q + q (dl + delta)`` with ``q = fl(t / S_hi)`` and the
    per-row ``delta = -S_lo / S_hi``: one rounding of the quotient, one of the final sum."""
    s_hi = h + lo
    s_lo = (h - s_hi) + lo  # Fast2Sum: |H| >= |Lo|
    delta = -s_lo / s_hi  # 1 / (S_hi + S_lo) = (1 / S_hi) (1 - S_lo / S_hi) + O(eps**2)
    if dl is None:
        w = _BUF.get("w", t.shape)
        _by_row(np.divide, t, s_hi, t)  # q = fl(t / S_hi)
        _by_row(np.multiply, t, delta, w)  # q delta
        np.add(t, w, out=ot)
        return
    _by_row(np.add, dl, delta, dl)
    _by_row(np.divide, t, s_hi, t)
    np.multiply(dl, t, out=dl)
    np.add(t, dl, out=ot)


def _log_s(h: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``log S`` for ``S = H + Lo >= 1`` (``reductions._log_abs`` for this case, fewer calls):
    ``log1p`` of ``S - 1`` rounded once (``H - 1`` is exact) where ``S <= 2``, else
    ``log(S_hi) + S_lo / S_hi``."""
    s_hi = h + lo
    near = s_hi <= 2.0
    if near.all():
        return np.log1p((h - 1.0) + lo)  # type: ignore[no-any-return]
    far = np.log(s_hi) + ((h - s_hi) + lo) / s_hi
    if not near.any():
        return far  # type: ignore[no-any-return]
    return np.where(near, np.log1p((h - 1.0) + lo), far)  # type: ignore[no-any-return]


def _tile_log_softmax(xt: np.ndarray, ot: np.ndarray) -> None:
    if xt.dtype != _F64:
        d = _BUF.get("d", xt.shape)
        t = _BUF.get("t", xt.shape)
        np.copyto(d, xt)
        r = xt.shape[0]
        rows = np.arange(r)
        piv = np.argmax(d, axis=1)  # NaN: the first NaN, caught below
        m = d[rows, piv]
        if not _all_finite(m):
            ot[...] = _general("log_softmax", xt, ot.dtype)
            return
        _by_row(np.subtract, d, m, d)  # exact in float64
        d[rows, piv] = -np.inf  # the pivot's exact 1 is kept out of the rest
        np.exp(d, out=t)
        d[rows, piv] = 0.0
        big_l = np.log1p(_rowsum1(t))  # log S = log1p(rest)
        # log p = (x - m) - log S: both <= 0, no cancellation; one float64 rounding, then one
        # to the output's dtype
        _by_row(np.subtract, d, big_l, d)
        np.copyto(ot, d, casting="same_kind")
        return
    m = _max_rows(xt)
    if not _all_finite(m):
        ot[...] = _general("log_softmax", xt, ot.dtype)
        return
    parts = _sums_or_none(xt, m)
    if parts is None:
        ot[...] = _general("log_softmax", xt, ot.dtype)
        return
    d, dl, _, h, lo = parts
    _log_output64(d, dl, _log_s(h, lo), ot)


def _log_output64(d: np.ndarray, dl: np.ndarray, big_l: np.ndarray, ot: np.ndarray) -> None:
    """``log p = (d - L) + dl``, the rounding error ``dl`` of ``x - m`` carried.

    ``d <= 0`` and ``-L <= 0``: no cancellation, and ``|log p| >= max(|d|, L)``, so the two
    roundings cost at most one ULP beside the error of ``L``; the dominant component is
    ``-L`` exactly (not the 0 every peer returns).  Measured against the oracle on 6,000
    sampled vectors: the same worst case (2 ULP, the error of ``L`` at the dominant entry)
    as adding ``d - L`` exactly with TwoSum, at a third of the cost."""
    _by_row(np.subtract, d, big_l, ot)
    np.add(ot, dl, out=ot)


def _tile_logsumexp(xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = xt.shape[0]
    if xt.dtype != _F64:
        d = _BUF.get("d", xt.shape)
        np.copyto(d, xt)
        rows = np.arange(r)
        piv = np.argmax(d, axis=1)
        m = d[rows, piv]
        if not _all_finite(m):
            return _general("logsumexp", xt, _F64)  # type: ignore[no-any-return]
        _by_row(np.subtract, d, m, d)
        d[rows, piv] = -np.inf
        np.exp(d, out=d)
        return m + np.log1p(_rowsum1(d)), np.ones(r)
    m = _max_rows(xt)
    if not _all_finite(m):
        return _general("logsumexp", xt, _F64)  # type: ignore[no-any-return]
    parts = _sums_or_none(xt, m)
    if parts is None:
        return _general("logsumexp", xt, _F64)  # type: ignore[no-any-return]
    _, _, _, h, lo = parts
    return m + _log_s(h, lo), np.ones(r)


# ---------------------------------------------------------------------------------------
# Drivers: rows of at most TILE elements go by blocks of whole rows (one pass); longer rows
# by column chunks after their maximum is known (a second pass writes softmax outputs).


def _row_tiles(rows: int, n: int) -> list[tuple[int, int]]:
    step = max(1, TILE // n)
    return [(i, min(i + step, rows)) for i in range(0, rows, step)]


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax over the last axis, in ``x``'s dtype."""
    with np.errstate(all="ignore"):  # exp underflow, -inf - -inf: intended, patched
        return _normalise(x, "softmax")


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log-softmax over the last axis, in ``x``'s dtype."""
    with np.errstate(all="ignore"):
        return _normalise(x, "log_softmax")


def _normalise(x: np.ndarray, name: str) -> np.ndarray:
    n = x.shape[-1]
    rows = x.size // n
    x2 = x.reshape(rows, n)
    out = np.empty((rows, n), dtype=x.dtype)
    if n <= TILE:
        tile = _tile_softmax if name == "softmax" else _tile_log_softmax
        _blocking.run_each(lambda span: tile(x2[span[0] : span[1]], out[span[0] : span[1]]), _row_tiles(rows, n))
    else:
        for i in range(rows):
            _long_normalise(name, x2[i : i + 1], out[i : i + 1])
    return out.reshape(x.shape)


def logsumexp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log sum e**x, sign)`` over the last axis in float64, shape ``x.shape[:-1]``."""
    with np.errstate(all="ignore"):
        return _logsumexp(x)


def _logsumexp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[-1]
    rows = x.size // n
    x2 = x.reshape(rows, n)
    res = np.empty(rows)
    sign = np.empty(rows)
    if n <= TILE:

        def one(span: tuple[int, int]) -> None:
            a, b = span
            res[a:b], sign[a:b] = _tile_logsumexp(x2[a:b])

        _blocking.run_each(one, _row_tiles(rows, n))
    else:
        for i in range(rows):
            res[i], sign[i] = _long_logsumexp(x2[i : i + 1])
    return res.reshape(x.shape[:-1]), sign.reshape(x.shape[:-1])


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(j, min(j + TILE, n)) for j in range(0, n, TILE)]


def _long_max(xr: np.ndarray) -> tuple[float, int]:
    """Largest entry of a (1, n) row and its first position (NaN: a NaN's position)."""
    parts = _blocking.run_each(lambda c: (c[0], np.argmax(xr[0, c[0] : c[1]])), _chunks(xr.shape[1]))
    best_j = -1
    best = -math.inf
    for start, j in parts:
        v = float(xr[0, start + j])
        if math.isnan(v):
            return v, start + int(j)
        if best_j < 0 or v > best:
            best, best_j = v, start + int(j)
    return best, best_j


def _long_sums(xr: np.ndarray, m: float, piv: int) -> tuple[float, float] | None:
    """``S`` of a long row as ``(H, Lo)`` (float64) or the narrow rest as ``(1, rest)``;
    None where a chunk needs the special-case kernel."""
    n = xr.shape[1]
    mm = np.array([m])
    narrow = xr.dtype != _F64
    sigma = _sigma(n)

    def one(c: tuple[int, int]) -> tuple[float, float] | None:
        xt = xr[:, c[0] : c[1]]
        if narrow:
            d = _BUF.get("d", xt.shape)
            np.copyto(d, xt)
            np.subtract(d, m, out=d)
            if c[0] <= piv < c[1]:
                d[0, piv - c[0]] = -np.inf
            np.exp(d, out=d)
            return 0.0, float(np.sum(d))
        d, dl = _shifted64(xt, mm)
        _, h, lo = _sums64(d, dl, sigma)
        if np.isnan(lo).any():
            return None
        return float(h[0]), float(lo[0])

    parts = _blocking.run_each(one, _chunks(n))
    if any(p is None for p in parts):
        return None
    if narrow:
        return 1.0, math.fsum(p[1] for p in parts)  # type: ignore[index]
    h = sum(p[0] for p in parts)  # type: ignore[index]  # exact: multiples of ulp(sigma), <= n
    lo = math.fsum(p[1] for p in parts)  # type: ignore[index]
    if h == 1.0 and abs(lo) < _TINY:
        return None
    return h, lo


def _long_logsumexp(xr: np.ndarray) -> tuple[float, float]:
    m, piv = _long_max(xr)
    sums = None if not math.isfinite(m) else _long_sums(xr, m, piv)
    if sums is None:
        res, sign = _general("logsumexp", xr, _F64)
        return float(res[0]), float(sign[0])
    h, lo = sums
    if xr.dtype != _F64:
        return m + math.log1p(lo), 1.0
    return m + float(_log_s(np.array([h]), np.array([lo]))[0]), 1.0


def _long_normalise(name: str, xr: np.ndarray, orow: np.ndarray) -> None:
    m, piv = _long_max(xr)
    sums = None if not math.isfinite(m) else _long_sums(xr, m, piv)
    if sums is None:
        orow[...] = _general(name, xr, orow.dtype)
        return
    h, lo = sums
    narrow = xr.dtype != _F64
    mm = np.array([m])
    hh, ll = np.array([h]), np.array([lo])
    if narrow:
        big_l = math.log1p(lo)
        inv = 1.0 / (1.0 + lo)
    else:
        big_l_arr = _log_s(hh, ll)

    def one(c: tuple[int, int]) -> None:
        xt = xr[:, c[0] : c[1]]
        ot = orow[:, c[0] : c[1]]
        if narrow:
            d = _BUF.get("d", xt.shape)
            np.copyto(d, xt)
            np.subtract(d, m, out=d)
            if name == "softmax":
                np.exp(d, out=d)
                np.multiply(d, inv, out=d)
            else:
                np.subtract(d, big_l, out=d)
            np.copyto(ot, d, casting="same_kind")
            return
        d, dl = _shifted64(xt, mm)
        if name == "softmax":
            t = _BUF.get("t", d.shape)
            np.exp(d, out=t)
            _normalise64(t, dl, hh, ll, ot)
        else:
            _log_output64(d, dl, big_l_arr, ot)

    _blocking.run_each(one, _chunks(xr.shape[1]))
