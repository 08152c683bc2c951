"""Dask graphs: log-sum-exp, softmax and the losses as one tree reduction over a state.

Loaded only by the loaders of ``stablenn._fast._dask_entries``, so importing stablenn never
imports Dask.  Every function here takes Dask arrays laid out as the dispatch table's call
conventions say (reduced axis last) and returns lazy Dask arrays.

Log-sum-exp reads each chunk once: a blockwise step turns every chunk into its partial state
(the kernels' ``mergeable.partial``: shift, exact shifted exponentials, double-double sum),
packed as a small float64 array of ``len(_LSE_FIELDS)`` values per kept position, and
``dask.array.reduction`` merges those states in a tree (``mergeable.merge``).  No max pass
precedes an exp-sum pass, and the chunk sizes along the reduced axis are never needed, so
arrays with unknown chunk sizes there (after boolean indexing) reduce correctly.

Softmax and log-softmax read their input twice: once into the state, once to normalise each
chunk with the merged state.  The second read is a clone of the input's graph, so Dask
recomputes (re-reads) each chunk rather than holding every chunk in memory until the state
is known: peak memory stays a few chunks, whatever the array size.

The losses reduce the same way: each chunk's losses, carried in double-double by the kernels,
become a packed partial total (``mergeable.Total``) and the totals are added in a tree.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.graph_manipulation import clone

from ... import _messages as msg
from ..._kernels import losses as kl
from ..._kernels import mergeable as mg
from ..._namespace import quiet
from ..._validation import all_finite

__all__ = ["binary_cross_entropy", "cross_entropy", "cross_entropy_probs", "log_softmax", "logsumexp", "softmax", "state"]

_LSE_FIELDS = ("m", "s_hi", "s_lo", "nan", "inf_pos", "inf_neg", "n_pinf")
_BOOL_FIELDS = frozenset({"nan", "inf_pos", "inf_neg"})
_TOTAL_FIELDS = mg.TOTAL_FIELDS
_WORK = np.dtype("float64")


def _ns(a: Any) -> Any:
    return array_api_compat.array_namespace(a)


def _meta(ndim: int, dtype: Any = _WORK) -> np.ndarray:
    return np.empty((0,) * ndim, dtype=dtype)


def _work(xp: Any, a: Any) -> Any:
    return a if a.dtype == xp.float64 else xp.astype(a, xp.float64)


def _identity(a: Any, axis: Any = None, keepdims: bool = True, computing_meta: bool = False) -> Any:
    return a


# ---------------------------------------------------------------- packed states
def _pack_state(xp: Any, st: mg.State) -> Any:
    return xp.stack([xp.astype(getattr(st, f), xp.float64) for f in _LSE_FIELDS], axis=-1)


def unpack_state(a: Any) -> mg.State:
    """The fields of a packed state (works on NumPy blocks and on lazy Dask arrays)."""
    parts = {f: a[..., i] for i, f in enumerate(_LSE_FIELDS)}
    for f in _BOOL_FIELDS:
        parts[f] = parts[f] != 0
    return mg.State(**parts)


def _pack_total(xp: Any, t: mg.Total) -> Any:
    return xp.stack([getattr(t, f) for f in _TOTAL_FIELDS], axis=-1)


def _unpack_total(a: Any) -> mg.Total:
    return mg.Total(*(a[..., i] for i in range(len(_TOTAL_FIELDS))))


# ---------------------------------------------------------------- log-sum-exp state
def _block_state(x: Any, b: Any = None, *, exact: bool) -> Any:
    """Partial state of one chunk over its last axis, packed: shape ``(..., 1, fields)``."""
    xp = _ns(x)
    with quiet(xp):
        xw = _work(xp, x)
        partial = mg.partial_blocked if isinstance(x, np.ndarray) else mg.partial
        st = partial(xp, xw, None if b is None else _work(xp, b), exact, b is None and all_finite(xp, xw))
        return _pack_state(xp, st)[..., None, :]


def _merge_states(a: Any, axis: tuple[int, ...], keepdims: bool = True) -> Any:
    """Merge packed states concatenated along the next-to-last axis."""
    xp = _ns(a)
    with quiet(xp):
        out = _pack_state(xp, mg.merge(xp, unpack_state(a)))  # fields (..., k) -> (...)
    return out[..., None, :] if keepdims else out


def state(x: Any, b: Any = None) -> Any:
    """The merged log-sum-exp state over the last axis: lazy, shape ``(..., fields)``.

    ``x`` (and ``b``, broadcast to it) a Dask array of a floating dtype.  The state is float64
    whatever the input dtype, with double-double sums where the input is float64.
    """
    nd = x.ndim
    ind = tuple(range(nd))
    args: list[Any] = [x, ind]
    if b is not None:
        args += [b, ind]
    token = tokenize(x.name, None if b is None else b.name)
    states = da.blockwise(
        _block_state,
        ind + (nd,),
        *args,
        new_axes={nd: len(_LSE_FIELDS)},
        adjust_chunks={nd - 1: 1},
        dtype=_WORK,
        meta=_meta(nd + 1),
        name=f"stablenn-lse-partial-{token}",
        exact=x.dtype == _WORK,
    )
    return da.reduction(
        states,
        chunk=_identity,
        combine=_merge_states,
        aggregate=_merge_states,
        axis=nd - 1,
        keepdims=False,
        dtype=_WORK,
        concatenate=True,
        meta=_meta(nd),
        name=f"stablenn-lse-merge-{token}",
    )


# ---------------------------------------------------------------- log-sum-exp
def _finish_block(a: Any, *, return_sign: bool, out_dtype: Any) -> Any:
    xp = _ns(a)
    with quiet(xp):
        res, sign = mg.finish(xp, unpack_state(a))
        if not return_sign:
            res = xp.where(sign < 0, xp.nan, res)
        return xp.stack([xp.astype(res, out_dtype), xp.astype(sign, out_dtype)], axis=-1)


def logsumexp(x: Any, b: Any, return_sign: bool) -> tuple[Any, Any]:
    """Dispatch entry: ``(res, sign)`` over the last axis, each chunk read once."""
    st = state(x, b)
    nd = st.ndim
    ind = tuple(range(nd))
    both = da.blockwise(
        _finish_block,
        ind,
        st,
        ind,
        adjust_chunks={nd - 1: 2},
        dtype=x.dtype,
        meta=_meta(nd, x.dtype),
        return_sign=return_sign,
        out_dtype=x.dtype,
    )
    return both[..., 0], both[..., 1]


# ---------------------------------------------------------------- softmax, log-softmax
def _normalise_block(x: Any, packed: Any, *, kind: str, exact: bool) -> Any:
    """softmax or log-softmax of one chunk, given the merged state of its slices."""
    xp = _ns(x)
    with quiet(xp):
        xw = _work(xp, x)
        normalise = mg.normalise_blocked if isinstance(x, np.ndarray) else mg.normalise
        y = normalise(xp, xw, unpack_state(packed), kind, exact, all_finite(xp, xw))
        return y if y.dtype == x.dtype else xp.astype(y, x.dtype)


def _normalised(x: Any, kind: str) -> Any:
    nd = x.ndim
    ind = tuple(range(nd))
    st = state(x)
    again = clone(x)  # read the chunks again rather than hold them all until `st` is known
    return da.blockwise(
        _normalise_block,
        ind,
        again,
        ind,
        st,
        ind[:-1] + (nd,),
        concatenate=True,
        dtype=x.dtype,
        meta=_meta(nd, x.dtype),
        name=f"stablenn-{kind}-{tokenize(x.name)}",
        kind=kind,
        exact=x.dtype == _WORK,
    )


def softmax(x: Any) -> Any:
    """Dispatch entry: softmax over the last axis, each chunk read twice."""
    return _normalised(x, "softmax")


def log_softmax(x: Any) -> Any:
    """Dispatch entry: log-softmax over the last axis, each chunk read twice."""
    return _normalised(x, "log_softmax")


# ---------------------------------------------------------------- loss totals
def _merge_totals(a: Any, axis: tuple[int, ...], keepdims: bool = True) -> Any:
    """Add packed totals concatenated along ``axis`` (every axis but the packed one)."""
    xp = _ns(a)
    k = len(_TOTAL_FIELDS)
    flat = xp.reshape(a, (-1, k))
    with quiet(xp):
        out = _pack_total(xp, mg.merge_totals(xp, mg.Total(*(flat[:, i] for i in range(k)))))
    return xp.reshape(out, (1,) * (a.ndim - 1) + (k,)) if keepdims else out


def _reduce_totals(partials: Any, nd: int, mean: bool, dtype: Any) -> Any:
    total = da.reduction(
        partials,
        chunk=_identity,
        combine=_merge_totals,
        aggregate=_merge_totals,
        axis=tuple(range(nd)),
        keepdims=False,
        dtype=_WORK,
        concatenate=True,
        meta=_meta(1),
        name="stablenn-loss-total",
    )
    return da.map_blocks(_finish_total_block, total, drop_axis=0, dtype=dtype, meta=_meta(0, dtype), mean=mean, out_dtype=dtype)


def _finish_total_block(a: Any, *, mean: bool, out_dtype: Any) -> Any:
    xp = _ns(a)
    with quiet(xp):
        return xp.astype(mg.finish_total(xp, _unpack_total(a), mean), out_dtype)


def _loss_output(block_fn: Any, args: list[Any], ind: tuple[int, ...], reduction: str, dtype: Any, **kwargs: Any) -> Any:
    """Per-element losses, or their tree-reduced total, from a per-chunk loss function."""
    nd = len(ind)
    if reduction == "none":
        return da.blockwise(
            block_fn, ind, *args, dtype=dtype, meta=_meta(nd, dtype), concatenate=True, mode="none", out_dtype=dtype, **kwargs
        )
    partials = da.blockwise(
        block_fn,
        ind + (nd,),
        *args,
        new_axes={nd: len(_TOTAL_FIELDS)},
        adjust_chunks=dict.fromkeys(ind, 1),
        dtype=_WORK,
        meta=_meta(nd + 1),
        concatenate=True,
        mode="total",
        out_dtype=dtype,
        **kwargs,
    )
    return _reduce_totals(partials, nd, reduction == "mean", dtype)


def _emit(
    xp: Any, hi: Any, lo: Any, den: Any, mode: str, out_dtype: Any, nd: int, over: bool, rescaled: Any
) -> Any:
    """The chunk's losses, or its packed total (``over``: some single loss overflowed while
    the inputs are finite, the total then taken of ``rescaled()``: see `mg.total_rescued`)."""
    if mode == "none":
        return xp.astype(hi + lo, out_dtype)
    packed = _pack_total(xp, mg.total_rescued(xp, hi, lo, den, over, rescaled))
    return xp.reshape(packed, (1,) * nd + (len(_TOTAL_FIELDS),))


# ---------------------------------------------------------------- binary cross-entropy
def _bce_block(x: Any, y: Any, *rest: Any, has_w: bool, has_pw: bool, exact: bool, mode: str, out_dtype: Any) -> Any:
    xp = _ns(x)
    it = iter(rest)
    w = _work(xp, next(it)) if has_w else None
    pw = _work(xp, next(it)) if has_pw else None
    with quiet(xp):
        xw, yw = _work(xp, x), _work(xp, y)
        hi, lo = kl.binary_cross_entropy(xp, xw, yw, w, pw, exact)
        over = mode != "none" and exact and bool(kl.overflowed(xp, hi, xw, yw, w, pw))
        return _emit(
            xp, hi, lo, None, mode, out_dtype, x.ndim, over,
            lambda: kl.binary_cross_entropy(xp, xw, yw, w, pw, exact, scale=2.0**-kl.SCALE),
        )


def binary_cross_entropy(x: Any, y: Any, weight: Any, pos_weight: Any, reduction: str) -> Any:
    """Dispatch entry: BCE with logits; ``weight``, ``pos_weight`` broadcast to ``x``."""
    if x.ndim == 0:
        flat = [None if a is None else a.reshape((1,)) for a in (x, y, weight, pos_weight)]
        out = binary_cross_entropy(*flat, reduction)  # type: ignore[arg-type]
        return out.reshape(()) if reduction == "none" else out
    ind = tuple(range(x.ndim))
    args: list[Any] = [x, ind, y, ind]
    for a in (weight, pos_weight):
        if a is not None:
            args += [a, ind]
    return _loss_output(
        _bce_block, args, ind, reduction, x.dtype,
        has_w=weight is not None, has_pw=pos_weight is not None, exact=x.dtype == _WORK,
    )


# ---------------------------------------------------------------- softmax cross-entropy
def _ce_block(
    x: Any, t: Any, *rest: Any, ignore_index: int | None, smoothing: float, exact: bool, mode: str, out_dtype: Any
) -> Any:
    xp = _ns(x)
    w = _work(xp, rest[0]) if rest else None
    n_classes = x.shape[-1]
    with quiet(xp):
        ignore = None if ignore_index is None else t == ignore_index
        valid = (t >= 0) & (t < n_classes)
        bad = ~valid if ignore is None else ~(valid | ignore)
        safe_t = xp.where(valid, t, xp.zeros_like(t))
        xw = _work(xp, x)
        hi, lo, w_t = kl.cross_entropy_index(xp, xw, safe_t, w, ignore, smoothing, exact)
        hi = xp.where(bad, xp.nan, hi)  # an index nobody checked (lazy values): NaN, never a silent 0

        def rescaled() -> tuple[Any, Any]:
            r_hi, r_lo, _ = kl.cross_entropy_index(xp, xw, safe_t, w, ignore, smoothing, exact, scale=2.0**-kl.SCALE)
            return xp.where(bad, xp.nan, r_hi), r_lo

        over = mode != "none" and exact and bool(kl.overflowed(xp, hi, whole=xw))
        return _emit(xp, hi, lo, w_t, mode, out_dtype, t.ndim, over, rescaled)


def cross_entropy(x: Any, targets: Any, weight: Any, ignore_index: int | None, smoothing: float, reduction: str) -> Any:
    """Dispatch entry: softmax cross-entropy, classes last, class-index targets."""
    nd = x.ndim
    if any(math.isnan(c) for c in x.chunks[-1]):
        raise msg.dask_unknown_chunks("logits", nd - 1, x)
    if len(x.chunks[-1]) > 1:
        x = x.rechunk({nd - 1: -1})  # each row's classes in one chunk
    if nd == 1:  # a single row: give it a batch axis of length 1
        out = cross_entropy(x[None, :], targets[None], weight, ignore_index, smoothing, reduction)
        return out[0] if reduction == "none" else out
    ind = tuple(range(nd - 1))
    args: list[Any] = [x, ind + (nd - 1,), targets, ind]
    if weight is not None:
        args += [weight.rechunk(-1), (nd - 1,)]
    return _loss_output(
        _ce_block, args, ind, reduction, x.dtype,
        ignore_index=ignore_index, smoothing=smoothing, exact=x.dtype == _WORK,
    )


def _ce_probs_block(x: Any, p: Any, *rest: Any, smoothing: float, exact: bool, mode: str, out_dtype: Any) -> Any:
    xp = _ns(x)
    w = _work(xp, rest[0]) if rest else None
    with quiet(xp):
        xw, pw = _work(xp, x), _work(xp, p)
        hi, lo = kl.cross_entropy_probs(xp, xw, pw, w, smoothing, exact)
        over = mode != "none" and exact and bool(kl.overflowed(xp, hi, whole=xw))
        return _emit(
            xp, hi, lo, None, mode, out_dtype, x.ndim - 1, over,
            lambda: kl.cross_entropy_probs(xp, xw, pw, w, smoothing, exact, scale=2.0**-kl.SCALE),
        )


def cross_entropy_probs(x: Any, probs: Any, weight: Any, smoothing: float, reduction: str) -> Any:
    """Dispatch entry: softmax cross-entropy, classes last, class-probability targets of the
    logits' shape; the mean divides by the number of rows."""
    nd = x.ndim
    for name, a in (("logits", x), ("targets", probs)):
        if any(math.isnan(c) for c in a.chunks[-1]):
            raise msg.dask_unknown_chunks(name, nd - 1, a)
    if nd == 1:  # a single row: give it a batch axis of length 1
        out = cross_entropy_probs(x[None, :], probs[None, :], weight, smoothing, reduction)
        return out[0] if reduction == "none" else out
    x = x.rechunk({nd - 1: -1})  # each row's classes in one chunk
    probs = probs.rechunk(x.chunks)
    ind = tuple(range(nd - 1))
    args: list[Any] = [x, ind + (nd - 1,), probs, ind + (nd - 1,)]
    if weight is not None:
        args += [weight.rechunk(-1), (nd - 1,)]
    return _loss_output(_ce_probs_block, args, ind, reduction, x.dtype, smoothing=smoothing, exact=x.dtype == _WORK)
