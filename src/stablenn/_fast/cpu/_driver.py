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

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..._kernels import reductions as plain
from . import _jit as J

__all__: list[str] = []

# A row up to this many entries is processed whole by one thread while it sits in cache
# (softmax keeps a float64 copy of its exponentials: 1 MiB per thread at this size).
ROW_IN_CACHE = 1 << 17
# Long rows are split so that every thread gets pieces of at least this many entries.
MIN_CHUNK = 1 << 16
# Below this many elements a call runs on the calling thread alone: handing work to the
# pool costs tens of microseconds.
PARALLEL_MIN = 1 << 17
# Threads: STABLENN_NUM_THREADS, else every core this process may run on.
THREADS: int | None = None

_POOL: tuple[int, int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    # the parent's pool threads do not exist here, and its lock may have been held
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def threads() -> int:
    """Threads the kernels use (``STABLENN_NUM_THREADS``, default: the usable cores)."""
    if THREADS is not None:
        return max(1, THREADS)
    env = os.environ.get("STABLENN_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _pool(n: int) -> ThreadPoolExecutor:
    """The pool of this process (a forked child builds its own: threads do not survive a
    fork, which is also why the kernels do not use an OpenMP pool)."""
    global _POOL
    pid = os.getpid()
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != pid or _POOL[1] != n:
            _POOL = (pid, n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="stablenn-cpu"))
        return _POOL[2]


def run_tasks(kernel: Callable[..., Any], ntasks: int, work: int, *args: Any) -> list[Any]:
    """``kernel(*args, t0, t1)`` over the tasks ``0 <= t < ntasks`` on every thread.

    The tasks are cut in about 4 pieces per thread, taken from a shared counter by the
    calling thread and ``threads() - 1`` pool threads as each frees up: a core taken by
    another process slows the call rather than leaving it waiting (a pool thread that is
    not scheduled finds the pieces done when it starts; the calling thread never waits for
    a piece nobody has begun).  The kernels release the GIL.  ``work`` (elements) below
    ``PARALLEL_MIN``, one task or one thread: the calling thread runs it all.  Returns the
    kernels' results in task order.
    """
    t = threads()
    if t == 1 or ntasks <= 1 or work < PARALLEL_MIN:
        return [kernel(*args, 0, ntasks)]
    pieces = min(ntasks, 4 * t)
    bounds = [(i * ntasks // pieces, (i + 1) * ntasks // pieces) for i in range(pieces)]
    results: list[Any] = [None] * pieces
    errors: list[BaseException] = []
    counter = itertools.count()  # next() is atomic under the GIL
    left = [pieces]
    lock = threading.Lock()
    finished = threading.Event()

    def worker() -> None:
        while (i := next(counter)) < pieces:
            try:
                results[i] = kernel(*args, *bounds[i])
            except BaseException as error:  # re-raised by the calling thread
                errors.append(error)
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    finished.set()

    pool = _pool(t)
    for _ in range(t - 1):
        pool.submit(worker)
    worker()
    finished.wait()
    if errors:
        raise errors[0]
    return results


def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view: the kernels are compiled for read-only inputs only (one
    specialisation per dtype, whether or not the caller's array is writable)."""
    v = a.view()
    v.flags.writeable = False
    return v


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
    return flat, _ro(offsets), n


def _plan(rows: int, n: int) -> int:
    """Pieces per row: 0 to give whole rows to the threads, or the number of pieces each
    row is split in when rows are few and long."""
    t = threads()
    if rows >= 2 * t or n < 2 * MIN_CHUNK:
        return 0
    return max(1, min(-(-4 * t // rows), n // MIN_CHUNK))


def _rows_of(flat: np.ndarray, offsets: np.ndarray, n: int, which: np.ndarray) -> np.ndarray:
    return np.stack([flat[o : o + n] for o in offsets[which]])


def _plain_work(x: np.ndarray) -> tuple[np.ndarray, bool]:
    exact = x.dtype == np.float64
    return (x if exact else x.astype(np.float64)), exact


# Arrays whose last axis is strided (a reduction over axis 0 of a C array, say) are read a
# few rows at a time into a contiguous block of about this many bytes; the entries accept
# them only when one row fits (a longer strided row would be a full-size copy).
BLOCK_BYTES = 1 << 23


def row_blocks(x: np.ndarray) -> Any:
    """``(index, block)`` pairs: ``block = x[index]`` copied contiguous, a few rows of the
    last axis at a time (``index`` into ``x.shape[:-1]``)."""
    if x.ndim == 1:
        yield (), np.ascontiguousarray(x)
        return
    n = x.shape[-1]
    step = max(1, BLOCK_BYTES // max(1, n * x.itemsize))
    for lead in np.ndindex(x.shape[:-2]):
        for r0 in range(0, x.shape[-2], step):
            index = (*lead, slice(r0, r0 + step))
            yield index, np.ascontiguousarray(x[index])


# ------------------------------------------------------------------ log-sum-exp


def _lse_merged(flat: np.ndarray, offsets: np.ndarray, n: int, chunks: int, need_lse: bool) -> tuple[np.ndarray, ...]:
    """Long rows: ``(res, bad, state)`` per row from ``chunks`` pieces each; ``state[r]`` is
    the merged ``(m, c, r_hi, r_lo)``.  With ``need_lse``, float32 rows whose cheap sum
    cancels are summed again in double-double."""
    rows = offsets.size
    parts = np.empty((rows, chunks, 4))
    run_tasks(J.lse_chunks, rows * chunks, rows * n, flat, offsets, n, chunks, parts, False)
    res = np.empty(rows)
    bad = np.zeros(rows, np.bool_)
    ill = np.zeros(rows, np.bool_)
    state = np.empty((rows, 4))
    J.lse_merge(flat, parts, res, bad, ill, state)
    if need_lse and ill.any():
        which = np.flatnonzero(ill)
        parts2 = np.empty((which.size, chunks, 4))
        run_tasks(J.lse_chunks, which.size * chunks, which.size * n, flat, _ro(offsets[which]), n, chunks, parts2, True)
        res2, state2 = np.empty(which.size), np.empty((which.size, 4))
        bad2, ill2 = np.zeros(which.size, np.bool_), np.zeros(which.size, np.bool_)
        J.lse_merge(flat, parts2, res2, bad2, ill2, state2)
        res[which], bad[which], state[which] = res2, bad2, state2
    return res, bad, state


def logsumexp(x: np.ndarray, b: Any, return_sign: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fast path of ``stablenn.logsumexp`` over the last axis (``b`` must be None)."""
    layout = rows_layout(x)
    assert b is None
    if layout is None:
        res_all = np.empty(x.shape[:-1], x.dtype)
        sign_all = np.empty(x.shape[:-1], x.dtype)
        for index, block in row_blocks(x):
            res_all[index], sign_all[index] = logsumexp(block, None, return_sign)
        return res_all, sign_all
    flat, offsets, n = layout
    kept = x.shape[:-1]
    rows = offsets.size
    res = np.empty(rows, x.dtype)
    bad = np.zeros(rows, np.bool_)
    if n == 0:
        res[:] = -np.inf
    elif rows:
        chunks = _plan(rows, n)
        if chunks:
            r64, bad, _ = _lse_merged(flat, offsets, n, chunks, True)
            res[:] = r64
        else:
            run_tasks(J.lse_rows, rows, rows * n, flat, offsets, n, res, bad)
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
    if layout is None:
        out_all = np.empty(x.shape, x.dtype)
        for index, block in row_blocks(x):
            out_all[index] = _normalise(name, block)
        return out_all
    flat, offsets, n = layout
    rows = offsets.size
    out = np.empty(rows * n, x.dtype)
    bad = np.zeros(rows, np.bool_)
    if rows and n:
        chunks = _plan(rows, n)
        if chunks or n > ROW_IN_CACHE:
            chunks = chunks or max(1, n // MIN_CHUNK)
            _, bad, state = _lse_merged(flat, offsets, n, chunks, False)
            lhs, lls, ihs, ils = (np.empty(rows) for _ in range(4))
            J.lse_finish_parts(state, bad, lhs, lls, ihs, ils)
            ms = np.ascontiguousarray(state[:, 0])
            second = (J.softmax_chunks, ihs, ils) if name == "softmax" else (J.log_softmax_chunks, lhs, lls)
            run_tasks(second[0], rows * chunks, rows * n, flat, offsets, n, chunks, out, ms, second[1], second[2])
        else:
            kernel = J.softmax_rows if name == "softmax" else J.log_softmax_rows
            run_tasks(kernel, rows, rows * n, flat, offsets, n, out, bad)
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


# ------------------------------------------------------------------ elementwise functions

_ELEMENTWISE = {"sigmoid": 0, "softplus": 1, "log_sigmoid": 2, "sigmoid_grad": 3, "tanh_grad": 4}


def _elementwise(name: str) -> Any:
    kind = _ELEMENTWISE[name]

    def run(x: np.ndarray) -> np.ndarray:
        if not (x.flags.c_contiguous or x.flags.f_contiguous):  # a strided view: by blocks
            out_all = np.empty(x.shape, x.dtype)
            for index, block in row_blocks(x):
                out_all[index] = run(block)
            return out_all
        out = np.empty_like(x)  # same memory order as a C- or F-contiguous x
        if x.size:
            run_tasks(J.elementwise, x.size, x.size, kind, _ro(x.ravel(order="K")), out.ravel(order="K"))
        return out

    run.__name__ = name
    run.__doc__ = f"Fast path of ``stablenn.{name}`` (strided arrays a few rows at a time)."
    return run


sigmoid = _elementwise("sigmoid")
softplus = _elementwise("softplus")
log_sigmoid = _elementwise("log_sigmoid")
sigmoid_grad = _elementwise("sigmoid_grad")
tanh_grad = _elementwise("tanh_grad")


# ------------------------------------------------------------------ losses


def weight_row(w: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
    """The values of a weight broadcast to ``shape`` as one row along the last axis: empty
    for None, the row itself where the strides are 0 but the last, a scalar repeated over
    the row; None for any other layout."""
    if w is None:
        return np.empty(0, dtype)
    period = shape[-1] if len(shape) else 1
    if all(s == 0 for s in w.strides) or w.size <= 1:
        return np.full(period, w.reshape(-1)[0] if w.size else 1.0, dtype)
    if w.ndim and all(s == 0 for s in w.strides[:-1]) and w.strides[-1] == w.itemsize:
        return np.ascontiguousarray(w[(0,) * (w.ndim - 1)], dtype=dtype)
    return None


def _reduce(
    sh: float, sl: float, spec: float, reduction: str, den: float | None, dtype: Any, scale: float = 1.0
) -> Any:
    """The plain path's ``reduce`` on a double-double total ``sh + sl`` (of the losses times
    ``scale``): non-finite losses (``spec``) decide the total as plain addition would; the
    float64 mean is a double-double quotient rounded once."""
    with np.errstate(all="ignore"):
        if scale != 1.0:
            total = _reduce(sh, sl, spec * scale, reduction, den, np.float64)
            return np.asarray(float(total) / scale, dtype=dtype)[()]
        sh = float(np.float64(sh) + np.float64(spec))
        if den is None:
            total = sh + sl
        elif dtype == np.float64 and math.isfinite(sh) and den != 0.0:
            qh = sh / den
            if math.isfinite(qh):
                p, e = _two_prod(qh, den)
                r = ((sh - p) - e) + sl
                total = qh + r / den
            else:  # a mean beyond the format (weights below 1)
                total = qh
        else:
            total = float(np.float64(sh + sl) / np.float64(den))
    return np.asarray(total, dtype=dtype)[()]  # a NumPy scalar, as the plain path returns


def _split(a: float) -> tuple[float, float]:
    # Veltkamp: a == hi + lo with 26-bit halves; scaled down first where 2**27 a would overflow
    scale = 1.0
    if abs(a) > 2.0**995:
        a, scale = a * 2.0**-28, 2.0**28
    t = 134217729.0 * a
    hi = t - (t - a)
    return hi * scale, (a - hi) * scale


def _two_prod(a: float, b: float) -> tuple[float, float]:
    """``p + e == a * b`` exactly (barring underflow), ``p = fl(a * b)`` (Dekker)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def binary_cross_entropy_with_logits(x: np.ndarray, y: np.ndarray, w: Any, pw: Any, reduction: str) -> np.ndarray:
    """Fast path of ``stablenn.binary_cross_entropy_with_logits`` (contiguous x and y)."""
    from ..._kernels import losses as plain_losses

    shape = x.shape
    n = x.size
    wv = weight_row(w, shape, x.dtype)
    pwv = weight_row(pw, shape, x.dtype)
    assert wv is not None and pwv is not None
    period = max(wv.size, pwv.size, 1)
    write = reduction == "none"
    out = np.empty(shape, x.dtype) if write else np.empty(1, x.dtype)
    args = (_ro(x.reshape(-1)), _ro(y.reshape(-1)), _ro(wv), _ro(pwv), out.reshape(-1), write)
    rows = n // period
    scale = 1.0
    acc = np.array(run_tasks(J.bce, rows, n, *args, scale) if n else [(0.0, 0.0, 0.0, 0.0)])
    sh, sl = _dd_total(acc[:, 0], acc[:, 1])
    nspec, nover = int(acc[:, 2].sum()), int(acc[:, 3].sum())
    wb = np.broadcast_to(np.ones((), x.dtype) if w is None else w, shape)
    pwb = np.broadcast_to(np.ones((), x.dtype) if pw is None else pw, shape)
    if write and nover:
        # weighted losses of finite entries that overflowed in an intermediate step
        flat_out = out.reshape(-1)
        with np.errstate(all="ignore"):
            fin_in = (np.isfinite(x) & np.isfinite(y) & np.isfinite(wb) & np.isfinite(pwb)).reshape(-1)
        idx = np.flatnonzero(fin_in & ~np.isfinite(flat_out))
        take = lambda a: np.ascontiguousarray(a.reshape(-1)[idx], dtype=np.float64)  # noqa: E731
        fixed = np.empty(idx.size)
        J.bce_rescue(take(x), take(y), take(wb), take(pwb), pw is not None, fixed)
        flat_out[idx] = fixed
    if not write and (nover or not math.isfinite(sh)):
        # finite losses whose sum (or a weighted loss itself) overflows: every loss formed
        # at a power-of-two scale, summed, divided, scaled back once
        scale = _rescue_scale(w, pw)
        acc = np.array(run_tasks(J.bce, rows, n, *args, scale))
        sh, sl = _dd_total(acc[:, 0], acc[:, 1])
        if int(acc[:, 3].sum()):  # still beyond the format at that scale
            sh, sl = math.inf, 0.0
    spec = 0.0
    if nspec:
        work, exact = (np.float64, x.dtype == np.float64)
        idx = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y) & np.isfinite(wb) & np.isfinite(pwb)).reshape(-1))
        take = lambda a: np.ascontiguousarray(a.reshape(-1)[idx], dtype=work)  # noqa: E731
        with np.errstate(all="ignore"):
            hi, lo = plain_losses.binary_cross_entropy(
                np, take(x), take(y), None if w is None else take(wb), None if pw is None else take(pwb), exact
            )
        if write:
            out.reshape(-1)[idx] = hi + lo
        fin = np.isfinite(hi)
        sh, sl = _dd_total(np.concatenate([[sh], hi[fin] * scale]), np.concatenate([[sl], lo[fin] * scale]))
        spec = float(np.sum(hi[~fin]))
    if write:
        return out
    return _reduce(sh, sl, spec, reduction, float(n) if reduction == "mean" else None, x.dtype, scale)


def _dd_total(hs: Any, ls: Any) -> tuple[float, float]:
    """Exact-enough double-double sum of a few (hi, lo) pairs; an infinite or NaN part
    decides the total as plain addition would, a finite total beyond the format is inf."""
    vals = [float(v) for v in list(hs) + list(ls)]
    if not all(math.isfinite(v) for v in vals):
        # a partial sum that overflowed carries a NaN low part (inf - inf in TwoSum): the
        # high parts decide
        with np.errstate(all="ignore"):
            return float(np.sum(np.asarray(hs, dtype=np.float64))), 0.0
    try:
        s = math.fsum(vals)
    except OverflowError:  # the exact total exceeds the format
        return math.copysign(math.inf, math.fsum(v * 2.0**-64 for v in vals)), 0.0
    return s, math.fsum([*vals, -s])


def _rescue_scale(*weights: Any) -> float:
    """The power of two that brings a sum of losses overflowing at scale 1 back into range:
    2**-64, times 2**-e for weights up to 2**e (each weight can lift a loss above the
    format by its own exponent)."""
    e = 64
    for w in weights:
        if w is not None and np.size(w):
            with np.errstate(all="ignore"):
                big = float(np.max(np.abs(np.asarray(w, dtype=np.float64)), initial=0.0))
            if math.isfinite(big) and big > 1.0:
                e += math.frexp(big)[1]
    return 2.0 ** -min(e, 900)


def cross_entropy_with_logits(
    x: np.ndarray, targets: np.ndarray, w: Any, ignore_index: int | None, eps: float, reduction: str
) -> np.ndarray:
    """Fast path of ``stablenn.cross_entropy_with_logits`` with class-index targets."""
    write = reduction == "none"
    wv = np.ones(1) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    opts = (wv, w, ignore_index, float(eps), write)
    if rows_layout(x) is not None:
        blocks = [((), x, targets)]
    else:
        blocks = [(index, block, targets[index]) for index, block in row_blocks(x)]
    out = np.empty(x.shape[:-1], x.dtype) if write else None
    for scale in (1.0, _rescue_scale(w)):
        parts = []
        for index, block, t in blocks:
            part = _ce_block(block, t, *opts, scale)
            if out is not None:
                out[index] = part[0].reshape(block.shape[:-1])
            parts.append(part[1:])
        if out is not None:
            return out
        sh, sl = _dd_total(np.array([p[0] for p in parts]), np.array([p[1] for p in parts]))
        spec = float(sum(p[4] for p in parts))
        # finite losses whose sum overflows: sum them scaled, divide, scale back (every
        # loss is formed at that scale: a single weighted loss may exceed the format)
        if math.isfinite(sh) or scale != 1.0 or spec != 0.0:
            break
    wh, wl = _dd_total(np.array([p[2] for p in parts]), np.array([p[3] for p in parts]))
    den = wh + wl if reduction == "mean" else None
    return _reduce(sh, sl, spec, reduction, den, x.dtype, scale)


def _ce_block(
    x: np.ndarray, targets: np.ndarray, wv: np.ndarray, w: Any, ignore_index: int | None, eps: float, write: bool, scale: float
) -> tuple[Any, float, float, float, float, float]:
    """``(losses or None, sum_hi, sum_lo, weight_hi, weight_lo, special)`` of rows that the
    kernel reads in place; the sums of losses are times ``scale``."""
    from ..._kernels import losses as plain_losses

    layout = rows_layout(x)
    assert layout is not None
    flat, offsets, n = layout
    rows = offsets.size
    t = np.ascontiguousarray(targets.reshape(-1), dtype=np.int64)
    use_ignore = ignore_index is not None
    ignore = int(ignore_index) if use_ignore else 0
    out = np.empty(rows, x.dtype) if write else np.empty(1, x.dtype)
    bad = np.zeros(rows, np.bool_)
    acc = np.zeros((1, 4))
    if rows:
        acc = np.array(run_tasks(J.cross_entropy, rows, rows * n, flat, offsets, n, _ro(t), _ro(wv), ignore, use_ignore, eps, out, write, bad, scale))
    sh, sl = _dd_total(acc[:, 0], acc[:, 1])
    wh, wl = _dd_total(acc[:, 2], acc[:, 3])
    spec = 0.0
    if bad.any():
        which = np.flatnonzero(bad)
        xw, exact = _plain_work(_rows_of(flat, offsets, n, which))
        tw = t[which]
        ww = None if w is None else np.asarray(w, dtype=np.float64)
        ign = None if not use_ignore else tw == ignore
        with np.errstate(all="ignore"):
            hi, lo, w_t = plain_losses.cross_entropy_index(np, xw, tw, ww, ign, eps, exact)
        if write:
            out[which] = hi + lo
        fin = np.isfinite(hi)
        sh, sl = _dd_total(np.concatenate([[sh], hi[fin] * scale]), np.concatenate([[sl], lo[fin] * scale]))
        spec = float(np.sum(hi[~fin]))
        wh, wl = _dd_total(np.concatenate([[wh], w_t]), np.array([wl]))
    return (out if write else None), sh, sl, wh, wl, spec
