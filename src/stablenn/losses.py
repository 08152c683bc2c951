"""Binary and softmax cross-entropy with logits, with PyTorch's arguments and semantics."""

from __future__ import annotations

import math
import operator
from typing import Any

from . import _autodiff, _blocking, _dispatch
from . import _messages as msg
from ._dtypes import floating, work_dtype
from ._kernels import _dd
from ._kernels import losses as k
from ._namespace import Array, backend_name, can_read_values, device, namespace, quiet, scalar_if_numpy
from ._validation import broadcast_to, move_last, reduction as check_reduction, single_axis, value_range

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy_with_logits"]


def binary_cross_entropy_with_logits(
    logits: Array,
    targets: Array,
    /,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Binary cross-entropy of the sigmoid of ``logits``, finite at infinite logits.

    .. math:: \ell(x, y) = -w\,[\,p\,y \log\sigma(x) + (1 - y)\log(1 - \sigma(x))\,]

    Parameters
    ----------
    logits : array
        Real array :math:`x` (integers and booleans promoted).
    targets : array
        Labels :math:`y` of the same shape; hard (0 or 1) or soft (in :math:`[0, 1]`).
    weight : array, optional
        Per-element weight :math:`w`, broadcastable to ``logits``.
    pos_weight : array, optional
        Weight :math:`p` of the positive term, broadcastable to ``logits`` (typically one
        value per class, along the last axis), as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, optional
        'mean' (default) averages over all elements, 'sum' adds them, 'none' returns them.

    Returns
    -------
    array
        Same library and device as ``logits``; the floating dtype of the arguments; the
        shape of ``logits`` for 'none', else 0-dimensional.

    Raises
    ------
    TypeError
        If an argument is not an array or is complex.
    ValueError
        If ``targets`` does not have the shape of ``logits``, ``weight`` or ``pos_weight``
        does not broadcast, ``reduction`` is unknown, or (on NumPy, array-api-strict and
        CPU PyTorch, where values are cheap to read) a label lies outside :math:`[0, 1]`.
        Lazy backends (Dask, JAX) are not checked: labels outside :math:`[0,1]` give the
        formula's value.

    Notes
    -----
    - If ``x_i`` or ``y_i`` is NaN, that loss is NaN.
    - If ``x_i = +inf``: the loss is 0 when :math:`y_i = 1`, else ``+inf``.
    - If ``x_i = -inf``: the loss is 0 when :math:`p y_i = 0`, else ``+inf`` (peers: NaN).
    - The mean of an empty array is NaN, its sum 0 (as in PyTorch).

    The loss is evaluated as :math:`p\,y\,\operatorname{softplus}(-x) + (1 - y)
    \operatorname{softplus}(x)` with :math:`\operatorname{softplus}(x) = \max(x, 0) +
    \operatorname{log1p}(e^{-|x|})`: both terms are non-negative for labels in
    :math:`[0,1]`, so nothing cancels.  The sheet's form :math:`\max(x,0) - xy +
    \log(1 + e^{-|x|})` (Problem 6) is equal on paper but subtracts :math:`xy` from
    :math:`x` and loses the digits of :math:`(1-y)x` for soft labels (14,400 ULP in
    float64 near :math:`y = 1`).  In float64 the terms and the reduction are carried in
    double-double; narrower dtypes are computed in float64.  At most 1 ULP, per element
    and reduced.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([np.inf, -np.inf, 800.0])
    >>> y = np.array([1.0, 1.0, 1.0 - 2.0**-30])
    >>> snn.binary_cross_entropy_with_logits(x, y, reduction="none")
    array([0.00000000e+00,            inf, 7.45058060e-07])
    >>> with np.errstate(invalid="ignore"):
    ...     np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))  # the sheet's form: NaN at +inf
    array([          nan,           inf, 7.4505806e-07])
    """
    red = check_reduction(reduction)
    xp = namespace(logits=logits, targets=targets, weight=weight, pos_weight=pos_weight)
    if _autodiff.wanted(logits, targets, weight, pos_weight):  # gradients: our rule (stablenn._autodiff)
        args = (logits, targets, weight, pos_weight)
        return _autodiff.call("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, *args, reduction=red)  # type: ignore[no-any-return]
    x = floating(xp, logits, "logits")
    y = floating(xp, targets, "targets")
    w = None if weight is None else floating(xp, weight, "weight")
    pw = None if pos_weight is None else floating(xp, pos_weight, "pos_weight")
    shape = tuple(x.shape)
    if tuple(y.shape) != shape:
        raise msg.targets_same_shape(shape, tuple(y.shape))
    dtype = xp.result_type(*(a.dtype for a in (x, y, w, pw) if a is not None))
    # cast only where the dtype differs: a same-dtype astype copies the whole input
    x = x if x.dtype == dtype else xp.astype(x, dtype)
    y = y if y.dtype == dtype else xp.astype(y, dtype)
    if w is not None:
        w = broadcast_to(xp, xp.astype(w, dtype), shape, "weight", "logits")
    if pw is not None:
        pw = broadcast_to(xp, xp.astype(pw, dtype), shape, "pos_weight", "logits")
    _check_labels(xp, y)
    work = work_dtype(xp, x)
    exact = work == dtype
    with quiet(xp):
        fast = _dispatch.lookup("binary_cross_entropy_with_logits", backend_name(x), dtype, x, y, w, pw, red)
        if fast is not None:
            return fast(x, y, w, pw, red)
        cast = (lambda a: a) if exact else (lambda a: None if a is None else xp.astype(a, work))
        n = math.prod(shape)
        den = None if red != "mean" else xp.asarray(float(n), dtype=work, device=device(x))

        def run(xb: Array, yb: Array, wb: Array | None, pwb: Array | None) -> Any:
            hi, lo = k.binary_cross_entropy(xp, cast(xb), cast(yb), cast(wb), cast(pwb), exact)
            if red == "none":
                out = hi + lo
                return out if exact else xp.astype(out, dtype)
            # weighted losses beyond the largest float whose sum (mean) is finite: summed
            # scaled by 2**-SCALE, carried in the exponent of the partial sum
            over = k.overflowed(xp, hi, xb, yb, wb, pwb) if exact else False
            return k.partial_sum_rescued(
                xp, hi, lo, exact, over, lambda: k.binary_cross_entropy(xp, xb, yb, wb, pwb, exact, scale=2.0**-k.SCALE)
            )

        if _blocking.wanted(xp, x):
            parts = _blocking.flat(xp, run, [x, y, w, pw]) if red == "none" else _blocking.flat_parts(run, [x, y, w, pw])
        else:
            parts = run(x, y, w, pw)
        if red == "none":
            return parts
        out = k.finish_sum(xp, *parts, den, exact)
        return scalar_if_numpy(xp, out if exact else xp.astype(out, dtype))


def cross_entropy_with_logits(
    logits: Array,
    targets: Array,
    /,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""Softmax cross-entropy of ``logits`` against class indices or class probabilities.

    .. math:: \ell_n = -\sum_c w_c\, y_{n,c} \log \operatorname{softmax}(x_n)_c

    Parameters
    ----------
    logits : array
        Real array with the classes along ``axis`` (integers and booleans promoted).
    targets : array
        Either integer class indices, of the shape of ``logits`` without ``axis``, or
        floating class probabilities of the shape of ``logits``.
    axis : int, optional
        The class axis (default -1).  PyTorch's ``F.cross_entropy`` uses axis 1 for
        inputs of shape ``(N, C, ...)``: pass ``axis=1`` to match it there.
    weight : array, optional
        Class weights, shape ``(C,)``.
    ignore_index : int, optional
        Class-index targets equal to it contribute 0 and are left out of the mean.
    label_smoothing : float, optional
        In :math:`[0, 1]`: the target becomes :math:`(1-\varepsilon)\,y +
        \varepsilon/C`, as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, optional
        With class indices 'mean' divides by the sum of the weights of the non-ignored
        targets (by their count without ``weight``), as PyTorch does; with probabilities
        it divides by the number of rows.

    Returns
    -------
    array
        Same library and device as ``logits``, its floating dtype; the shape of ``logits``
        without ``axis`` for 'none', else 0-dimensional.

    Raises
    ------
    TypeError
        If an argument is not an array or is complex, ``targets`` is boolean, ``axis`` is
        not an int, or ``ignore_index`` is not an int.
    IndexError
        If ``axis`` is out of range.
    ValueError
        If ``targets`` or ``weight`` has the wrong shape, ``reduction`` or
        ``label_smoothing`` is invalid, ``ignore_index`` is given with probability targets,
        or (on NumPy, array-api-strict and CPU PyTorch) a class index is out of range or a
        probability outside :math:`[0, 1]`.  On lazy backends (Dask, JAX) an out-of-range
        index is not raised: that row's loss is NaN.

    Notes
    -----
    - If a row of ``logits`` holds a NaN, its loss is NaN.
    - A target class whose logit is ``-inf`` has loss ``+inf``; a class with probability 0
      contributes 0 even where its logit is ``-inf`` (peers: NaN).
    - With class indices, the mean over only ignored targets is NaN (0/0, as in PyTorch).

    The loss of a row at class :math:`t` is :math:`\operatorname{log1p}(r) - (x_t - m)`
    with :math:`m` the largest logit and :math:`r` the sum of the other shifted
    exponentials, the subtraction carried exactly: at the argmax it is
    :math:`\operatorname{log1p}(r)` (e.g. :math:`4\cdot 10^{-18}`), which every peer
    rounds to 0.  At most 1 ULP in float32 and narrower, 2 ULP in float64.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([[40.0, 0.0], [0.0, 0.0]])
    >>> snn.cross_entropy_with_logits(x, np.array([0, 1]), reduction="none")
    array([4.24835426e-18, 6.93147181e-01])
    >>> m = x.max(axis=-1, keepdims=True)
    >>> (m - x + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))[:, 0]  # textbook
    array([0.        , 0.69314718])
    """
    red = check_reduction(reduction)
    eps = _smoothing(label_smoothing)
    if ignore_index is not None and (isinstance(ignore_index, bool) or not _is_int(ignore_index)):
        raise msg.ignore_index_type(ignore_index)
    xp = namespace(logits=logits, targets=targets, weight=weight)
    if _autodiff.wanted(logits, targets, weight):  # gradients: our rule (stablenn._autodiff)
        opts = {"axis": axis, "ignore_index": ignore_index, "label_smoothing": eps, "reduction": red}
        return _autodiff.call("cross_entropy_with_logits", cross_entropy_with_logits, logits, targets, weight, **opts)  # type: ignore[no-any-return]
    x = floating(xp, logits, "logits")
    shape = tuple(x.shape)
    ax = single_axis(axis, x.ndim)
    n_classes = shape[ax]
    if n_classes == 0:
        raise msg.no_classes(shape, ax)
    index_shape = tuple(s for i, s in enumerate(shape) if i != ax)
    t_dtype = targets.dtype
    if xp.isdtype(t_dtype, "integral"):
        if tuple(targets.shape) != index_shape:
            raise msg.targets_shape(shape, index_shape, tuple(targets.shape))
        probs = None
    elif xp.isdtype(t_dtype, "real floating"):
        if tuple(targets.shape) != shape:
            raise msg.targets_shape(shape, index_shape, tuple(targets.shape))
        if ignore_index is not None:
            raise msg.prob_targets_ignore_index()
        probs = targets
    else:
        raise msg.targets_dtype(targets)
    dtype = x.dtype if probs is None else xp.result_type(x.dtype, probs.dtype)
    w = None
    if weight is not None:
        w = floating(xp, weight, "weight")
        if tuple(w.shape) != (n_classes,):
            raise msg.weight_shape("weight", f"({n_classes},), one weight per class", tuple(w.shape))
        dtype = xp.result_type(dtype, w.dtype)
    x = x if x.dtype == dtype else xp.astype(x, dtype)  # no copy when the dtype already matches
    xl, _ = move_last(xp, x, (ax,))
    work = work_dtype(xp, x)
    exact = work == dtype
    cast = (lambda a: a) if exact else (lambda a: None if a is None else xp.astype(a, work))
    dev = device(x)
    with quiet(xp):
        if probs is None:
            _check_indices(xp, targets, n_classes, ignore_index)
            fast = _dispatch.lookup(
                "cross_entropy_with_logits", backend_name(x), dtype, xl, targets, w, ignore_index, eps, red
            )
            if fast is not None:
                return fast(xl, targets, w, ignore_index, eps, red)
            ignore = None if ignore_index is None else targets == ignore_index
            valid = (targets >= 0) & (targets < n_classes)
            bad = ~valid if ignore is None else ~(valid | ignore)
            safe_t = xp.where(valid, targets, xp.zeros_like(targets))

            def run(xb: Array, tb: Array, ib: Array | None, badb: Array) -> Any:
                hi, lo, w_t = k.cross_entropy_index(xp, cast(xb), tb, cast(w), ib, eps, exact)
                hi = xp.where(badb, xp.nan, hi)  # an index nobody checked (lazy backends): NaN, never a silent 0
                if red == "none":
                    out = hi + lo
                    return out if exact else xp.astype(out, dtype)
                den = k.partial_sum(xp, w_t, xp.zeros_like(w_t), exact)
                # as for binary cross-entropy: weighted row losses beyond the largest float
                over = k.overflowed(xp, hi, xp.where(badb, xp.nan, xp.zeros_like(hi)), whole=xb) if exact else False

                def rescaled() -> tuple[Array, Array]:
                    r_hi, r_lo, _ = k.cross_entropy_index(xp, xb, tb, w, ib, eps, exact, scale=2.0**-k.SCALE)
                    return xp.where(badb, xp.nan, r_hi), r_lo

                return (*k.partial_sum_rescued(xp, hi, lo, exact, over, rescaled), *den)

            if _blocking.wanted(xp, xl):
                rows = math.prod(index_shape)
                parts = _blocking.map_rows(
                    run,
                    [xp.reshape(xl, (rows, n_classes)), xp.reshape(safe_t, (rows,)),
                     None if ignore is None else xp.reshape(ignore, (rows,)), xp.reshape(bad, (rows,))],
                    n_classes,
                )
                if red == "none":
                    return xp.reshape(parts, index_shape)
            else:
                parts = run(xl, safe_t, ignore, bad)
                if red == "none":
                    return parts
            den = None
            if red == "mean":
                den = k.finish_sum(xp, *parts[3:], None, exact)
            out = k.finish_sum(xp, *parts[:3], den, exact)
            return scalar_if_numpy(xp, out if exact else xp.astype(out, dtype))
        else:
            p = xp.astype(floating(xp, probs, "targets"), dtype)
            _check_labels(xp, p)
            pl, _ = move_last(xp, p, (ax,))
            fast = _dispatch.lookup("cross_entropy_with_logits_probs", backend_name(x), dtype, xl, pl, w, eps, red)
            if fast is not None:
                return fast(xl, pl, w, eps, red)
            hi, lo = k.cross_entropy_probs(xp, cast(xl), cast(pl), cast(w), eps, exact)
            rows = math.prod(index_shape)
            den = xp.asarray(float(rows), dtype=work, device=dev) if red == "mean" else None
            over = k.overflowed(xp, hi, whole=xl) if red != "none" and exact else False
            if over is not False:
                # weighted row losses beyond the largest float whose mean is finite: summed
                # at a power-of-two scale, as for class indices
                parts = k.partial_sum_rescued(
                    xp, hi, lo, exact, over, lambda: k.cross_entropy_probs(xp, xl, pl, w, eps, exact, scale=2.0**-k.SCALE)
                )
                return scalar_if_numpy(xp, k.finish_sum(xp, *parts, den, exact))
        out = k.reduce(xp, hi, lo, red, den, exact)
        return scalar_if_numpy(xp, out if exact else xp.astype(out, dtype))


def _is_int(value: object) -> bool:
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _smoothing(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise msg.label_smoothing_value(value)
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise msg.label_smoothing_value(value)
    return v


def _check_labels(xp: Any, y: Array) -> None:
    # one pass when the labels are fine; min and max are read only to word the error
    if not can_read_values(y) or not bool(xp.any((y < 0) | (y > 1))):
        return
    low, high = value_range(xp, y)
    raise msg.labels_range(float(low), float(high))


def _check_indices(xp: Any, t: Array, n_classes: int, ignore_index: int | None) -> None:
    rng = value_range(xp, t)
    if rng is None:
        return
    low, high = int(rng[0]), int(rng[1])
    if low >= 0 and high < n_classes:
        return
    if ignore_index is None:
        raise msg.class_index_range(low, high, n_classes, None)
    kept = xp.where(t == ignore_index, xp.zeros_like(t), t)
    low2, high2 = int(xp.min(kept)), int(xp.max(kept))
    if low2 < 0 or high2 >= n_classes:
        raise msg.class_index_range(low, high, n_classes, ignore_index)
