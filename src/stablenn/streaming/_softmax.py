"""Softmax and log-softmax over a stream of chunks: one pass for the normaliser, one to emit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .. import _blocking
from .. import _messages as msg
from .._kernels import mergeable as mg
from .._namespace import Array, quiet
from .._validation import all_finite, restore_axis, single_axis
from ._lse import _NDIM_ANY, LogSumExp, _prepare

__all__ = ["log_softmax", "softmax"]


def softmax(chunks: Any, /, *, axis: int = -1) -> Iterator[Array]:
    r"""Softmax along ``axis`` of an array given as chunks along that axis.

    .. math:: \operatorname{softmax}(x)_i = e^{x_i - m - \log S},\qquad
              S = \sum_j e^{x_j - m}

    The first pass folds every chunk into a :class:`LogSumExp` (the largest term :math:`m`
    and the sum :math:`S` of each slice); the second reads the chunks again and yields each
    one normalised.  The first pass runs when the function is called, so bad chunks raise
    there; the second runs as the result is iterated.

    Parameters
    ----------
    chunks : sequence, re-iterable, or callable
        Arrays that are pieces of one array along ``axis`` (equal shapes elsewhere).  They are
        read twice: pass a sequence, an object whose ``__iter__`` starts over (a reader of
        files), or a function returning a fresh iterator.  A one-shot iterator is refused.
    axis : int, optional
        The axis to normalise (default -1); the chunks split the array along it.

    Returns
    -------
    iterator of arrays
        The normalised chunks, in order, each of its chunk's shape, library, device and
        floating dtype.

    Raises
    ------
    TypeError
        If ``chunks`` is a one-shot iterator, a chunk is not a real array, or chunks differ
        in dtype or array library.
    IndexError
        If ``axis`` is out of range.
    ValueError
        If ``chunks`` is empty, chunks differ in shape off ``axis``, or the second pass reads
        a different number of values than the first.

    Notes
    -----
    Special cases as :func:`stablenn.softmax`, over the whole slice: a NaN anywhere in a
    slice makes all of its chunks NaN; ``+inf`` entries share the mass evenly; an all
    ``-inf`` slice gives zeros.  Each component is computed as in the one-shot function
    (exact rounding error of :math:`x_i - m`, :math:`e_i / S` in double-double), from the
    merged state: at most 1 ULP in float32 and narrower, 2 ULP in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn import streaming
    >>> chunks = [np.array([1000.0, 0.0]), np.array([1000.0])]
    >>> [p for p in streaming.softmax(chunks)]
    [array([0.5, 0. ]), array([0.5])]
    """
    return _normalised(chunks, axis, "softmax")


def log_softmax(chunks: Any, /, *, axis: int = -1) -> Iterator[Array]:
    r"""Log-softmax along ``axis`` of an array given as chunks along that axis.

    .. math:: \log\operatorname{softmax}(x)_i = (x_i - m) - \log S

    Two passes, as :func:`softmax`; the same arguments, errors and special cases as
    :func:`stablenn.log_softmax`.  The dominant component keeps its digits
    (:math:`-\operatorname{log1p}(r)`, not 0).

    Parameters
    ----------
    chunks : sequence, re-iterable, or callable
        As in :func:`softmax`.
    axis : int, optional
        The axis to normalise (default -1).

    Returns
    -------
    iterator of arrays
        The log-probabilities, chunk by chunk.

    Raises
    ------
    TypeError, IndexError, ValueError
        As :func:`softmax`.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn import streaming
    >>> [y for y in streaming.log_softmax(lambda: iter([np.array([0.0]), np.array([-40.0])]))]
    [array([-4.24835426e-18]), array([-40.])]
    """
    return _normalised(chunks, axis, "log_softmax")


def _reader(chunks: Any) -> Callable[[], Iterator[Any]]:
    """A function returning a fresh iterator over ``chunks`` each time it is called."""
    if callable(chunks) and not isinstance(chunks, Iterable):
        return lambda: iter(chunks())
    if not isinstance(chunks, Iterable) or iter(chunks) is chunks:
        raise msg.streaming_not_reiterable(chunks)
    return lambda: iter(chunks)


def _normalised(chunks: Any, axis: Any, kind: str) -> Iterator[Array]:
    single_axis(axis, _NDIM_ANY)  # an int, not a tuple: one axis is normalised
    read = _reader(chunks)
    state = LogSumExp(axis=axis)
    for chunk in read():
        state.update(chunk)
    if state._spec is None:
        raise msg.streaming_empty_iterable("chunks")
    return _second_pass(read, state, axis, kind)


def _second_pass(read: Callable[[], Iterator[Any]], state: LogSumExp, axis: Any, kind: str) -> Iterator[Array]:
    spec, st = state._spec, state._state
    assert spec is not None and st is not None
    seen = 0
    for chunk in read():
        xp, xl, _, cspec, n = _prepare(chunk, None, axis, "chunk")
        state._check(cspec, chunk, "chunk")
        with quiet(xp):
            normalise = mg.normalise_blocked if _blocking.wanted(xp, xl) else mg.normalise
            y = normalise(xp, xl, st, kind, spec.exact, all_finite(xp, xl))
            if y.dtype != spec.dtype:
                y = xp.astype(y, spec.dtype)
        seen += n
        yield restore_axis(xp, y, spec.red[0], spec.ndim)
    if seen != state.count:
        raise msg.streaming_second_pass(state.count, seen)
