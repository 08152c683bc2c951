"""The NumPy side of the CPU fast paths: layout, chunking, threads, and the plain-path repair.

Each public entry here has the call convention of its dispatch-table entry (see
``stablenn._dispatch``).  Rows are read in place: a 1-D contiguous view ``flat`` spans
the array and ``offsets[r]`` is where row ``r`` starts, so C-contiguous arrays and strided
arrays whose last axis is contiguous share one kernel without copies.

Rows holding ``+inf`` or NaN are flagged by the kernels and recomputed by the plain
array-API kernels (``stablenn._kernels``), so special values are exactly the plain
path's; so are all ``-inf`` rows and empty axes, which the kernels handle themselves.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ..._kernels import reductions as plain
from . import _jit as J

__all__: list[str] = []

# A row up to this many entries is processed whole by one thread while it sits in cache
# (softmax keeps a float64 copy of its exponentials: 1 MiB per thread at this size).
ROW_IN_CACHE = 1 << 17
# Long rows are split so that every thread gets pieces of at least this many entries.
MIN_CHUNK = 1 << 16


def _threads() -> int:
    return int(numba.get_num_threads())


def rows_layout(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``(flat, offsets, n)`` addressing the rows of ``x``'s last axis in place, or None.

    None when the last axis is not contiguous (its stride is not the item size), when a
    stride is negative, or when strides are not whole items.
    """
    n = x.shape[-1] if x.ndim else 1
    item = x.itemsize
    strides = x.strides
    if x.ndim and n > 1 and strides[-1] != item:
        return None
    if any(s < 0 or s % item for s in strides):
        return None
    kept = x.shape[:-1]
    rows = math.prod(kept)
    if rows == 0 or n == 0:
        return np.empty(0, x.dtype), np.zeros(rows, np.int64), n
    offsets = np.zeros(1, np.int64)
    for size, stride in zip(kept, strides[:-1]):
        offsets = (offsets[:, None] + np.arange(size, dtype=np.int64) * (stride // item)).reshape(-1)
    span = int(offsets[-1]) + n  # non-negative strides: the last row starts last
    flat = np.lib.stride_tricks.as_strided(x, shape=(span,), strides=(item,), writeable=False)
    return flat, offsets, n


def _plan(rows: int, n: int) -> tuple[int, int]:
    """``(groups, chunks)``: row groups for a parallel loop over rows, or (0, pieces per row)
    when rows are few and long enough to split across threads."""
    t = _threads()
    if rows >= 2 * t or n < 2 * MIN_CHUNK:
        return min(rows, 8 * t), 0
    chunks = max(1, min(-(-4 * t // rows), n // MIN_CHUNK))
    return 0, chunks


def _run_parallel(kernel: Any, *args: Any) -> None:
    # dynamic scheduling: a core taken by another process slows the call, not one half of it
    with numba.parallel_chunksize(1):
        kernel(*args)


def _rows_of(flat: np.ndarray, offsets: np.ndarray, n: int, which: np.ndarray) -> np.ndarray:
    return np.stack([flat[o : o + n] for o in offsets[which]])


def _plain_work(x: np.ndarray) -> tuple[np.ndarray, bool]:
    exact = x.dtype == np.float64
    return (x if exact else x.astype(np.float64)), exact


# ------------------------------------------------------------------ log-sum-exp


def _lse_merged(flat: np.ndarray, offsets: np.ndarray, n: int, chunks: int, need_lse: bool) -> tuple[np.ndarray, ...]:
    """Long rows: ``(res, bad, m, S_hi, S_lo)`` per row from ``chunks`` pieces each."""
    rows = offsets.size
    pm = np.empty((rows, chunks))
    ph = np.empty((rows, chunks))
    pl = np.empty((rows, chunks))
    _run_parallel(J.lse_chunks, flat, offsets, n, chunks, pm, ph, pl, False)
    res, ms, shs, sls = (np.empty(rows) for _ in range(4))
    bad = np.zeros(rows, np.bool_)
    ill = np.zeros(rows, np.bool_)
    J.lse_merge(pm, ph, pl, res, bad, ill, ms, shs, sls)
    if need_lse and flat.dtype == np.float32 and ill.any():
        which = np.flatnonzero(ill)
        sub = offsets[which]
        r2, m2, h2, l2 = (np.empty(which.size) for _ in range(4))
        pm2, ph2, pl2 = (np.empty((which.size, chunks)) for _ in range(3))
        _run_parallel(J.lse_chunks, flat, sub, n, chunks, pm2, ph2, pl2, True)
        b2 = np.zeros(which.size, np.bool_)
        J.lse_merge(pm2, ph2, pl2, r2, b2, np.zeros(which.size, np.bool_), m2, h2, l2)
        res[which], bad[which] = r2, b2
    return res, bad, ms, shs, sls


def logsumexp(x: np.ndarray, b: Any, return_sign: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fast path of ``stablenn.logsumexp`` over the last axis (``b`` must be None)."""
    layout = rows_layout(x)
    assert b is None and layout is not None
    flat, offsets, n = layout
    kept = x.shape[:-1]
    rows = offsets.size
    res = np.empty(rows, x.dtype)
    bad = np.zeros(rows, np.bool_)
    if n == 0:
        res[:] = -np.inf
    elif rows:
        groups, chunks = _plan(rows, n)
        if chunks:
            r64, bad, _, _, _ = _lse_merged(flat, offsets, n, chunks, True)
            res[:] = r64
        else:
            _run_parallel(J.lse_rows, flat, offsets, n, res, bad, groups)
    sign = np.where(res == -np.inf, 0.0, 1.0).astype(x.dtype)
    if bad.any():
        which = np.flatnonzero(bad)
        xw, exact = _plain_work(_rows_of(flat, offsets, n, which))
        r, s = plain.logsumexp(np, xw, None, None, exact)
        if not return_sign:
            r = np.where(s < 0, np.nan, r)
        res[which] = r
        sign[which] = s
    return res.reshape(kept), sign.reshape(kept)


# ------------------------------------------------------------------ softmax and log-softmax


def _normalise(name: str, x: np.ndarray) -> np.ndarray:
    layout = rows_layout(x)
    assert layout is not None
    flat, offsets, n = layout
    rows = offsets.size
    out = np.empty(rows * n, x.dtype)
    bad = np.zeros(rows, np.bool_)
    if rows and n:
        groups, chunks = _plan(rows, n)
        if chunks or n > ROW_IN_CACHE:
            chunks = chunks or max(1, n // MIN_CHUNK)
            _, bad, ms, shs, sls = _lse_merged(flat, offsets, n, chunks, False)
            lhs, lls, ihs, ils = (np.empty(rows) for _ in range(4))
            J.lse_finish_parts(ms, shs, sls, bad, lhs, lls, ihs, ils)
            if name == "softmax":
                _run_parallel(J.softmax_chunks, flat, offsets, n, chunks, out, ms, ihs, ils)
            else:
                _run_parallel(J.log_softmax_chunks, flat, offsets, n, chunks, out, ms, lhs, lls)
        elif name == "softmax":
            _run_parallel(J.softmax_rows, flat, offsets, n, out, bad, groups)
        else:
            _run_parallel(J.log_softmax_rows, flat, offsets, n, out, bad, groups)
    out2 = out.reshape(rows, n)
    if bad.any():
        which = np.flatnonzero(bad)
        xw, exact = _plain_work(_rows_of(flat, offsets, n, which))
        kernel = plain.softmax if name == "softmax" else plain.log_softmax
        out2[which] = kernel(np, xw, None, exact)
    return out.reshape(x.shape)


def softmax(x: np.ndarray) -> np.ndarray:
    """Fast path of ``stablenn.softmax`` over the last axis."""
    return _normalise("softmax", x)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Fast path of ``stablenn.log_softmax`` over the last axis."""
    return _normalise("log_softmax", x)
