"""Dispatch-table entries of the fused CPU kernels (``stablenn._fast.cpu``) for NumPy.

Importing this module imports neither Numba nor the kernels: the loaders do, on the first
call that takes a fast path.  An entry applies only to a plain ``numpy.ndarray`` in native
byte order, with at least ``MIN_ELEMENTS[name]`` elements (below that the plain path is as
fast, and a fresh process would pay the kernels' loading for nothing), in a layout the
kernels read in place, and only where Numba is installed.  ``docs/performance.md`` gives
the measurements behind each entry and each threshold.

Set ``STABLENN_FAST_CPU=0`` to switch every entry off (the plain path is then used).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any

from .. import _dispatch

__all__: list[str] = []

# Smallest number of elements for which an entry is taken.  Measured (median of 15 calls,
# public function, fast path against plain path, docs/performance.md): from 4,096 elements
# every fast path is faster in both dtypes (float32 sigmoid 52 us against 63 us, softmax
# rows 100 against 138, float64 BCE 173 against 1,612); at 2,048 float32 sigmoid is not.
MIN_ELEMENTS: dict[str, int] = dict.fromkeys(
    (
        "logsumexp",
        "softmax",
        "log_softmax",
        "sigmoid",
        "softplus",
        "log_sigmoid",
        "sigmoid_grad",
        "tanh_grad",
        "binary_cross_entropy_with_logits",
        "cross_entropy_with_logits",
    ),
    1 << 12,
)

_FORCED = False


@contextlib.contextmanager
def forced() -> Iterator[None]:
    """Take every applicable fast path whatever the size (for the tests and the audit)."""
    global _FORCED
    saved = _FORCED
    _FORCED = True
    try:
        yield
    finally:
        _FORCED = saved


_NUMBA: bool | None = None


def _enabled() -> bool:
    global _NUMBA
    if os.environ.get("STABLENN_FAST_CPU", "1") == "0":
        return False
    if _NUMBA is None:
        _NUMBA = importlib.util.find_spec("numba") is not None
    return _NUMBA


def _plain_ndarray(x: Any) -> bool:
    import numpy as np

    return type(x) is np.ndarray and x.dtype.isnative


def _big_enough(name: str, x: Any) -> bool:
    return _FORCED or x.size >= MIN_ELEMENTS[name]


# A strided last axis is copied a few rows at a time; longer rows than this stay on the plain
# path (one row would be a full-size copy).
_MAX_STRIDED_ROW_BYTES = 1 << 23


def _rows_readable(x: Any) -> bool:
    """The kernels read rows in place (last axis contiguous, no negative strides), or a few
    rows at a time through a small contiguous block."""
    if x.ndim == 0:
        return True
    item = x.itemsize
    if (x.shape[-1] <= 1 or x.strides[-1] == item) and all(s >= 0 and s % item == 0 for s in x.strides):
        return True
    return x.shape[-1] * item <= _MAX_STRIDED_ROW_BYTES


def _loader(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        from .cpu import _driver

        return getattr(_driver, name)  # type: ignore[no-any-return]

    return load


def _applies_logsumexp(x: Any, b: Any, return_sign: bool) -> bool:
    return (
        b is None
        and _plain_ndarray(x)
        and _big_enough("logsumexp", x)
        and _rows_readable(x)
        and _enabled()
    )


def _applies_normalise(name: str) -> Callable[[Any], bool]:
    def applies(x: Any) -> bool:
        return _plain_ndarray(x) and _big_enough(name, x) and _rows_readable(x) and _enabled()

    return applies


def _applies_elementwise(name: str) -> Callable[[Any], bool]:
    def applies(x: Any) -> bool:
        return (
            _plain_ndarray(x)
            and _big_enough(name, x)
            and (x.flags.c_contiguous or x.flags.f_contiguous or _rows_readable(x))
            and _enabled()
        )

    return applies


def _weight_ok(w: Any, shape: tuple[int, ...]) -> bool:
    """A weight the BCE kernel reads: None, one value, or one per position of the last axis."""
    if w is None:
        return True
    if not _plain_ndarray(w):
        return False
    if all(s == 0 for s in w.strides) or w.size <= 1:
        return True
    return bool(w.ndim) and all(s == 0 for s in w.strides[:-1]) and w.strides[-1] == w.itemsize


def _applies_bce(x: Any, y: Any, w: Any, pw: Any, reduction: str) -> bool:
    return (
        _plain_ndarray(x)
        and _plain_ndarray(y)
        and y.dtype == x.dtype
        and _big_enough("binary_cross_entropy_with_logits", x)
        and x.flags.c_contiguous
        and y.flags.c_contiguous
        and _weight_ok(w, x.shape)
        and _weight_ok(pw, x.shape)
        and _enabled()
    )


def _applies_ce(x: Any, targets: Any, w: Any, ignore_index: Any, eps: float, reduction: str) -> bool:
    import numpy as np

    return (
        _plain_ndarray(x)
        and _plain_ndarray(targets)
        and (w is None or (_plain_ndarray(w) and w.ndim == 1))
        and x.ndim >= 1
        and _big_enough("cross_entropy_with_logits", x)
        and _rows_readable(x)
        and (ignore_index is None or abs(int(ignore_index)) < 2**62)
        and np.issubdtype(targets.dtype, np.integer)
        and _enabled()
    )


_FLOATS = ("float32", "float64")

_dispatch.register("logsumexp", "numpy", _FLOATS, _loader("logsumexp"), _applies_logsumexp)
_dispatch.register("softmax", "numpy", _FLOATS, _loader("softmax"), _applies_normalise("softmax"))
_dispatch.register("log_softmax", "numpy", _FLOATS, _loader("log_softmax"), _applies_normalise("log_softmax"))
for _name in ("sigmoid", "softplus", "log_sigmoid", "sigmoid_grad", "tanh_grad"):
    _dispatch.register(_name, "numpy", _FLOATS, _loader(_name), _applies_elementwise(_name))
_dispatch.register(
    "binary_cross_entropy_with_logits", "numpy", _FLOATS, _loader("binary_cross_entropy_with_logits"), _applies_bce
)
_dispatch.register("cross_entropy_with_logits", "numpy", _FLOATS, _loader("cross_entropy_with_logits"), _applies_ce)
