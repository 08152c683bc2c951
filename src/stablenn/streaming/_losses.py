"""Binary and softmax cross-entropy over a stream of batches, totals carried exactly."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from .. import _messages as msg
from .. import losses as public
from .._dtypes import floating, work_dtype
from .._kernels import losses as k
from .._kernels import mergeable as mg
from .._namespace import Array, Namespace, backend_name, is_array, namespace, quiet
from .._validation import broadcast_to, move_last, reduction as check_reduction, single_axis
from ..losses import _check_indices, _check_labels, _is_int, _smoothing
from ._lse import _NDIM_ANY

__all__ = [
    "BinaryCrossEntropyWithLogits",
    "CrossEntropyWithLogits",
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
]


class _Total:
    """A running loss total: double-double sum, denominator, library and dtype of the batches."""

    _name = "loss"

    def __init__(self) -> None:
        self.count = 0
        self._xp: Namespace | None = None
        self._backend: str | None = None
        self._dtype: Any = None
        self._total: mg.Total | None = None

    def __repr__(self) -> str:
        if self._total is None:
            return f"{self._name}(no batch yet)"
        return f"{self._name}({self._backend} {self._dtype}, {self.count} losses)"

    def _check(self, xp: Namespace, x: Array, dtype: Any, value: Any) -> None:
        if self._backend is None:
            return
        if backend_name(x) != self._backend:
            raise msg.streaming_chunk_backend("logits", self._backend, value)
        if dtype != self._dtype:
            raise msg.streaming_chunk_dtype("logits", str(self._dtype), value)

    def _absorb(self, xp: Namespace, backend: str | None, dtype: Any, part: mg.Total, n: int) -> None:
        if self._total is None:
            self._xp, self._backend, self._dtype, self._total = xp, backend, dtype, part
        else:
            with quiet(xp):
                self._total = mg.merge_totals(xp, mg.stack_totals(xp, [self._total, part]))
        self.count += n

    def _merge_checks(self, other: Any) -> None:
        if type(other) is not type(self):
            raise msg.streaming_merge_kind(self._name, other)
        if self._total is None or other._total is None:
            return
        if self._backend != other._backend:
            raise msg.streaming_merge_mismatch(self._name, "array library", self._backend, other._backend)
        if self._dtype != other._dtype:
            raise msg.streaming_merge_mismatch(self._name, "dtype", str(self._dtype), str(other._dtype))

    def _merge(self, other: _Total) -> None:
        if other._total is not None:
            assert other._xp is not None
            self._absorb(other._xp, other._backend, other._dtype, other._total, other.count)

    def result(self, *, reduction: str = "mean") -> Array:
        """The mean (default) or the sum of every loss seen, rounded once.

        Parameters
        ----------
        reduction : {'mean', 'sum'}, optional
            As in the one-shot function.

        Returns
        -------
        array
            0-dimensional, in the batches' library, device and floating dtype.
        """
        if not isinstance(reduction, str) or reduction not in ("mean", "sum"):
            raise msg.streaming_loss_reduction(reduction)
        if self._total is None or self._xp is None:
            raise msg.streaming_no_chunk(self._name)
        xp = self._xp
        with quiet(xp):
            out = mg.finish_total(xp, self._total, reduction == "mean")
            return out if out.dtype == self._dtype else xp.astype(out, self._dtype)


class BinaryCrossEntropyWithLogits(_Total):
    r"""Binary cross-entropy with logits over batches: update, merge, read the mean or sum.

    .. math:: \ell(x, y) = -w\,[\,p\,y \log\sigma(x) + (1 - y)\log(1 - \sigma(x))\,]

    The losses of each batch are computed as :func:`stablenn.binary_cross_entropy_with_logits`
    computes them, carried in double-double, and added to a running double-double total; the
    mean divides by the number of elements of all batches.  The result is rounded once, so
    it is the one-shot function's answer on the concatenated batches, within its budget
    (1 ULP).

    Parameters
    ----------
    pos_weight : array, optional
        Weight of the positive term, broadcastable to every batch (one value per class).

    Attributes
    ----------
    count : int
        Number of elements seen.

    Raises
    ------
    TypeError, ValueError
        As :func:`stablenn.binary_cross_entropy_with_logits`, per batch; and a batch whose
        dtype or array library differs from the first batch's.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.streaming import BinaryCrossEntropyWithLogits
    >>> bce = BinaryCrossEntropyWithLogits()
    >>> _ = bce.update(np.array([800.0, -np.inf]), np.array([1.0, 0.0]))
    >>> _ = bce.update(np.array([0.0]), np.array([0.5]))
    >>> float(bce.result())  # (0 + 0 + log 2) / 3, correctly rounded
    0.23104906018664845
    """

    _name = "BinaryCrossEntropyWithLogits"

    def __init__(self, *, pos_weight: Array | None = None) -> None:
        super().__init__()
        if pos_weight is not None and not is_array(pos_weight):
            raise msg.not_an_array("pos_weight", pos_weight)
        self.pos_weight = pos_weight

    def update(self, logits: Array, targets: Array, /, *, weight: Array | None = None) -> BinaryCrossEntropyWithLogits:
        """Add a batch (``weight``: per-element weights, broadcastable); returns ``self``."""
        xp = namespace(logits=logits, targets=targets, weight=weight, pos_weight=self.pos_weight)
        x = floating(xp, logits, "logits")
        y = floating(xp, targets, "targets")
        w = None if weight is None else floating(xp, weight, "weight")
        pw = None if self.pos_weight is None else floating(xp, self.pos_weight, "pos_weight")
        shape = tuple(x.shape)
        if tuple(y.shape) != shape:
            raise msg.targets_same_shape(shape, tuple(y.shape))
        dtype = xp.result_type(*(a.dtype for a in (x, y, w, pw) if a is not None))
        self._check(xp, x, dtype, logits)
        x, y = xp.astype(x, dtype), xp.astype(y, dtype)
        if w is not None:
            w = broadcast_to(xp, xp.astype(w, dtype), shape, "weight", "logits")
        if pw is not None:
            pw = broadcast_to(xp, xp.astype(pw, dtype), shape, "pos_weight", "logits")
        _check_labels(xp, y)
        work = work_dtype(xp, x)
        exact = work == dtype
        cast = (lambda a: a) if exact else (lambda a: None if a is None else xp.astype(a, work))
        with quiet(xp):
            hi, lo = k.binary_cross_entropy(xp, cast(x), cast(y), cast(w), cast(pw), exact)
            over = k.overflowed(xp, hi, x, y, w, pw) if exact else False
            part = mg.total_rescued(
                xp, hi, lo, None, over, lambda: k.binary_cross_entropy(xp, x, y, w, pw, exact, scale=2.0**-k.SCALE)
            )
        self._absorb(xp, backend_name(x), dtype, part, math.prod(shape))
        return self

    def merge(self, other: BinaryCrossEntropyWithLogits) -> BinaryCrossEntropyWithLogits:
        """Add another running total (``other`` is unchanged); returns ``self``."""
        self._merge_checks(other)
        self._merge(other)
        return self


class CrossEntropyWithLogits(_Total):
    r"""Softmax cross-entropy with logits over batches: update, merge, read the mean or sum.

    .. math:: \ell_n = -\sum_c w_c\, y_{n,c} \log \operatorname{softmax}(x_n)_c

    Each batch's losses are computed as :func:`stablenn.cross_entropy_with_logits` computes
    them and added to a running double-double total.  With class indices the mean divides by
    the total weight of the non-ignored targets of all batches (their count without
    ``weight``), as PyTorch does on the concatenated batch; with probabilities by the number
    of rows.  Rounded once: the one-shot answer within its budget.

    Parameters
    ----------
    axis : int, optional
        The class axis of every batch (default -1).
    weight : array, optional
        Class weights, shape ``(C,)``.
    ignore_index : int, optional
        Class-index targets equal to it contribute nothing, to the sum or to the mean's
        denominator.
    label_smoothing : float, optional
        In :math:`[0, 1]`, as in the one-shot function.

    Attributes
    ----------
    count : int
        Number of rows (losses) seen, ignored ones included.

    Raises
    ------
    TypeError, IndexError, ValueError
        As :func:`stablenn.cross_entropy_with_logits`, per batch; and a batch whose dtype,
        array library, number of classes or kind of target (indices or probabilities)
        differs from the first batch's.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.streaming import CrossEntropyWithLogits
    >>> ce = CrossEntropyWithLogits(ignore_index=-100)
    >>> _ = ce.update(np.array([[40.0, 0.0], [0.0, 0.0]]), np.array([0, -100]))
    >>> _ = ce.update(np.array([[0.0, 0.0]]), np.array([1]))
    >>> float(ce.result())  # (log1p(e^-40) + log 2) / 2: the ignored row is not counted
    0.34657359027997264
    """

    _name = "CrossEntropyWithLogits"

    def __init__(
        self,
        *,
        axis: int = -1,
        weight: Array | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        single_axis(axis, _NDIM_ANY)
        self.eps = _smoothing(label_smoothing)
        if ignore_index is not None and (isinstance(ignore_index, bool) or not _is_int(ignore_index)):
            raise msg.ignore_index_type(ignore_index)
        if weight is not None and not is_array(weight):
            raise msg.not_an_array("weight", weight)
        self.axis = axis
        self.weight = weight
        self.ignore_index = ignore_index
        self._classes: int | None = None
        self._probs: bool | None = None

    def update(self, logits: Array, targets: Array, /) -> CrossEntropyWithLogits:
        """Add a batch: class indices, or probabilities of the shape of ``logits``; returns ``self``."""
        if not is_array(targets):
            raise msg.not_an_array("targets", targets)
        xp = namespace(logits=logits, targets=targets, weight=self.weight)
        x = floating(xp, logits, "logits")
        shape = tuple(x.shape)
        ax = single_axis(self.axis, x.ndim)
        n_classes = shape[ax]
        if n_classes == 0:
            raise msg.no_classes(shape, ax)
        index_shape = tuple(s for i, s in enumerate(shape) if i != ax)
        if xp.isdtype(targets.dtype, "integral"):
            if tuple(targets.shape) != index_shape:
                raise msg.targets_shape(shape, index_shape, tuple(targets.shape))
            probs = None
        elif xp.isdtype(targets.dtype, "real floating"):
            if tuple(targets.shape) != shape:
                raise msg.targets_shape(shape, index_shape, tuple(targets.shape))
            if self.ignore_index is not None:
                raise msg.prob_targets_ignore_index()
            probs = targets
        else:
            raise msg.targets_dtype(targets)
        dtype = x.dtype if probs is None else xp.result_type(x.dtype, probs.dtype)
        w = None
        if self.weight is not None:
            w = floating(xp, self.weight, "weight")
            if tuple(w.shape) != (n_classes,):
                raise msg.weight_shape("weight", f"({n_classes},), one weight per class", tuple(w.shape))
            dtype = xp.result_type(dtype, w.dtype)
        self._check(xp, x, dtype, logits)
        if self._classes is not None and n_classes != self._classes:
            raise msg.streaming_chunk_shape("logits", (ax,), f"({self._classes} classes)", logits)
        if self._probs is not None and (probs is not None) != self._probs:
            raise msg.streaming_chunk_dtype("targets", "of the earlier batches' kind", targets)
        x = xp.astype(x, dtype)
        xl, _ = move_last(xp, x, (ax,))
        work = work_dtype(xp, x)
        exact = work == dtype
        cast = (lambda a: a) if exact else (lambda a: None if a is None else xp.astype(a, work))
        with quiet(xp):
            if probs is None:
                _check_indices(xp, targets, n_classes, self.ignore_index)
                ignore = None if self.ignore_index is None else targets == self.ignore_index
                valid = (targets >= 0) & (targets < n_classes)
                bad = ~valid if ignore is None else ~(valid | ignore)
                safe_t = xp.where(valid, targets, xp.zeros_like(targets))
                hi, lo, w_t = k.cross_entropy_index(xp, cast(xl), safe_t, cast(w), ignore, self.eps, exact)
                hi = xp.where(bad, xp.nan, hi)  # an index nobody checked (lazy backends): NaN

                def rescaled() -> tuple[Any, Any]:
                    r_hi, r_lo, _ = k.cross_entropy_index(xp, xl, safe_t, w, ignore, self.eps, exact, scale=2.0**-k.SCALE)
                    return xp.where(bad, xp.nan, r_hi), r_lo

                over = k.overflowed(xp, hi, whole=xl) if exact else False
                part = mg.total_rescued(xp, hi, lo, w_t, over, rescaled)
            else:
                p = xp.astype(floating(xp, probs, "targets"), dtype)
                _check_labels(xp, p)
                pl, _ = move_last(xp, p, (ax,))
                hi, lo = k.cross_entropy_probs(xp, cast(xl), cast(pl), cast(w), self.eps, exact)
                over = k.overflowed(xp, hi, whole=xl) if exact else False
                part = mg.total_rescued(  # the mean divides by the number of rows
                    xp, hi, lo, None, over, lambda: k.cross_entropy_probs(xp, xl, pl, w, self.eps, exact, scale=2.0**-k.SCALE)
                )
        self._classes, self._probs = n_classes, probs is not None
        self._absorb(xp, backend_name(x), dtype, part, math.prod(index_shape))
        return self

    def merge(self, other: CrossEntropyWithLogits) -> CrossEntropyWithLogits:
        """Add another running total (``other`` is unchanged); returns ``self``."""
        self._merge_checks(other)
        if self._classes is not None and other._classes is not None:
            if self._classes != other._classes:
                raise msg.streaming_merge_mismatch(self._name, "numbers of classes", self._classes, other._classes)
            if self._probs != other._probs:
                kinds = {True: "probability targets", False: "class-index targets"}
                raise msg.streaming_merge_mismatch(self._name, "kinds of target", kinds[self._probs], kinds[other._probs])
        if self._classes is None:
            self._classes, self._probs = other._classes, other._probs
        self._merge(other)
        return self


def _items(chunks: Iterable[Any], sizes: tuple[int, ...], accepted: str) -> Iterator[tuple[Any, ...]]:
    seen = False
    for i, item in enumerate(chunks):
        if not isinstance(item, tuple) or len(item) not in sizes:
            raise msg.streaming_loss_item(i, item, accepted)
        seen = True
        yield item
    if not seen:
        raise msg.streaming_empty_iterable("chunks")


def binary_cross_entropy_with_logits(
    chunks: Iterable[Any], /, *, pos_weight: Array | None = None, reduction: str = "mean"
) -> Array | Iterator[Array]:
    """Binary cross-entropy with logits over batches ``(logits, targets[, weight])``.

    Parameters
    ----------
    chunks : iterable of tuples
        ``(logits, targets)`` or ``(logits, targets, weight)`` per batch.
    pos_weight : array, optional
        As in :func:`stablenn.binary_cross_entropy_with_logits`.
    reduction : {'mean', 'sum', 'none'}, optional
        'mean' (default) over every element of every batch, 'sum', or 'none': an iterator
        of each batch's per-element losses.

    Returns
    -------
    array or iterator of arrays
        0-dimensional for 'mean' and 'sum'.

    Raises
    ------
    TypeError, ValueError
        As :class:`BinaryCrossEntropyWithLogits`; a malformed item; an empty iterable.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn import streaming
    >>> batches = [(np.array([0.0, 0.0]), np.array([1.0, 0.0])), (np.array([0.0]), np.array([1.0]))]
    >>> float(streaming.binary_cross_entropy_with_logits(batches))  # log 2
    0.6931471805599453
    """
    red = check_reduction(reduction)
    items = _items(chunks, (2, 3), "(logits, targets) or (logits, targets, weight)")
    if red == "none":
        return (
            public.binary_cross_entropy_with_logits(
                item[0], item[1], weight=item[2] if len(item) == 3 else None, pos_weight=pos_weight, reduction="none"
            )
            for item in items
        )
    acc = BinaryCrossEntropyWithLogits(pos_weight=pos_weight)
    for item in items:
        acc.update(item[0], item[1], weight=item[2] if len(item) == 3 else None)
    return acc.result(reduction=red)


def cross_entropy_with_logits(
    chunks: Iterable[Any],
    /,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Array | Iterator[Array]:
    """Softmax cross-entropy with logits over batches ``(logits, targets)``.

    Parameters
    ----------
    chunks : iterable of tuples
        ``(logits, targets)`` per batch: class indices or class probabilities.
    axis, weight, ignore_index, label_smoothing
        As in :func:`stablenn.cross_entropy_with_logits`.
    reduction : {'mean', 'sum', 'none'}, optional
        'mean' (default; weighted and ``ignore_index`` respected over all batches), 'sum',
        or 'none': an iterator of each batch's per-row losses.

    Returns
    -------
    array or iterator of arrays
        0-dimensional for 'mean' and 'sum'.

    Raises
    ------
    TypeError, IndexError, ValueError
        As :class:`CrossEntropyWithLogits`; a malformed item; an empty iterable.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn import streaming
    >>> batches = [(np.zeros((2, 4)), np.array([0, 3])), (np.zeros((1, 4)), np.array([2]))]
    >>> float(streaming.cross_entropy_with_logits(batches))  # log 4
    1.3862943611198906
    """
    red = check_reduction(reduction)
    items = _items(chunks, (2,), "(logits, targets)")
    if red == "none":
        return (
            public.cross_entropy_with_logits(
                item[0], item[1], axis=axis, weight=weight, ignore_index=ignore_index,
                label_smoothing=label_smoothing, reduction="none",
            )
            for item in items
        )
    acc = CrossEntropyWithLogits(axis=axis, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)
    for item in items:
        acc.update(item[0], item[1])
    return acc.result(reduction=red)
