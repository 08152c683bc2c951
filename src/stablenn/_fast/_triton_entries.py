"""Dispatch entries for CUDA tensors: Triton kernels (``stablenn._fast.triton``).

Registered for the backend ``"torch"`` in float32, float16 and bfloat16 (float64 stays on
the PyTorch path).  Each entry's ``applies`` predicate is true only when every tensor
argument lives on a CUDA device (``DEVICE_TYPES``), the shapes are ones the kernels take, and
``triton`` is installed; it looks at attributes only, so deciding imports neither torch nor
triton, and a CPU tensor never reaches Triton.  The loader imports the kernels the first
time an entry applies.  When a predicate refuses, the call takes the array-API path, with
the same answers.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from .. import _dispatch

__all__: list[str] = []

DTYPES = ("float32", "float16", "bfloat16")
DEVICE_TYPES: tuple[str, ...] = ("cuda",)  # the tests widen this to run the kernels interpreted

_ELEMENTWISE = ("sigmoid", "log_sigmoid", "softplus", "tanh", "sigmoid_grad", "tanh_grad")
_DIFFERENTIABLE = frozenset({"sigmoid", "log_sigmoid", "softplus", "tanh"})

_triton_found: bool | None = None


def triton_available() -> bool:
    """Whether ``triton`` can be imported (looked up once, without importing it)."""
    global _triton_found
    if _triton_found is None:
        _triton_found = importlib.util.find_spec("triton") is not None
    return _triton_found


def on_device(*arrays: Any) -> bool:
    """Every non-None argument is a tensor on one device of a kind in ``DEVICE_TYPES``."""
    device = None
    for a in arrays:
        if a is None:
            continue
        dev = getattr(a, "device", None)
        if getattr(dev, "type", None) not in DEVICE_TYPES:
            return False
        if device is None:
            device = dev
        elif dev != device:
            return False
    return device is not None and triton_available()


def _grad(a: Any) -> bool:
    return bool(getattr(a, "requires_grad", False))


def _has_data(x: Any) -> bool:
    shape = tuple(getattr(x, "shape", ()))
    return len(shape) >= 1 and all(s > 0 for s in shape)


def elementwise_applies(name: str) -> Callable[[Any], bool]:
    def applies(x: Any) -> bool:
        if not on_device(x) or not _has_data(x):
            return False
        return name in _DIFFERENTIABLE or not _grad(x)

    return applies


def logsumexp_applies(x: Any, b: Any, return_sign: Any) -> bool:
    return b is None and on_device(x) and _has_data(x)


def normalise_applies(x: Any) -> bool:
    return on_device(x) and _has_data(x)


def bce_applies(x: Any, y: Any, weight: Any, pos_weight: Any, reduction: Any) -> bool:
    if not on_device(x, y, weight, pos_weight) or not _has_data(x):
        return False
    # no gradient rule for the weights: those calls take the PyTorch path
    return not (_grad(weight) or _grad(pos_weight))


def cross_entropy_applies(
    x: Any, targets: Any, weight: Any, ignore_index: Any, smoothing: Any, reduction: Any
) -> bool:
    if not on_device(x, targets, weight) or not _has_data(x):
        return False
    if tuple(targets.shape) != tuple(x.shape[:-1]) or _grad(weight):
        return False
    return "int" in str(targets.dtype)


# ---------------------------------------------------------------- gradient rules


def _dtype_ok(x: Any) -> bool:
    return str(getattr(x, "dtype", "")).rsplit(".", 1)[-1] in DTYPES


def _same(x: Any, *others: Any) -> bool:
    return all(o is None or (getattr(o, "dtype", None) == x.dtype and not _grad(o)) for o in others)


def rule_applies(name: str) -> Callable[[list[Any], dict[str, Any]], bool]:
    """``applies(args, opts)`` of the fast gradient rule of ``name`` (``_autodiff``'s table):
    the raw arguments of the public call, checked as the dispatch predicates check them."""

    def applies(args: list[Any], opts: dict[str, Any]) -> bool:
        x = args[0]
        if not (on_device(*args) and _dtype_ok(x) and _has_data(x)):
            return False
        if name in _ELEMENTWISE:
            return name in _DIFFERENTIABLE
        if name in ("logsumexp", "softmax", "log_softmax"):
            return all(a is None for a in args[1:])
        if name == "binary_cross_entropy_with_logits":
            y = args[1]
            return tuple(y.shape) == tuple(x.shape) and getattr(y, "dtype", None) == x.dtype and _same(x, *args[2:])
        # cross_entropy_with_logits, class indices along ``axis``
        targets, w = args[1], args[2]
        axis, ignore, eps = opts.get("axis"), opts.get("ignore_index"), opts.get("label_smoothing")
        ndim = len(x.shape)
        if not isinstance(axis, int) or isinstance(axis, bool) or not -ndim <= axis < ndim:
            return False
        if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int)):
            return False
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= eps <= 1.0:
            return False
        ax = axis % ndim
        index_shape = tuple(s for i, s in enumerate(x.shape) if i != ax)
        if "int" not in str(getattr(targets, "dtype", "")) or tuple(targets.shape) != index_shape:
            return False
        if w is not None and tuple(w.shape) != (x.shape[ax],):
            return False
        return _same(x, w) and opts.get("reduction") in ("none", "mean", "sum")

    return applies


def _rule(table: str, name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        module = importlib.import_module("stablenn._fast.triton._rules")
        return getattr(module, table)[name](*args)

    return call


GRADIENT_NAMES = (*sorted(_DIFFERENTIABLE), "logsumexp", "softmax", "log_softmax",
                  "binary_cross_entropy_with_logits", "cross_entropy_with_logits")


def register_gradients() -> None:
    """Register the Triton forward/backward pairs in ``_autodiff``'s per-device table."""
    try:
        from .._autodiff import register_fast, unregister_fast
    except ImportError:  # no gradient layer: the entries' own autograd Functions serve
        return
    for name in GRADIENT_NAMES:
        for device in DEVICE_TYPES:
            unregister_fast(name, device)
            register_fast(
                name, device, forward=_rule("FORWARD", name), backward=_rule("BACKWARD", name),
                applies=rule_applies(name),
            )


def _loader(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        return getattr(importlib.import_module("stablenn._fast.triton"), name)

    return load


def register() -> None:
    for name in _ELEMENTWISE:
        _dispatch.register(name, "torch", DTYPES, _loader(name), elementwise_applies(name))
    _dispatch.register("logsumexp", "torch", DTYPES, _loader("logsumexp"), logsumexp_applies)
    for name in ("softmax", "log_softmax"):
        _dispatch.register(name, "torch", DTYPES, _loader(name), normalise_applies)
    _dispatch.register(
        "binary_cross_entropy_with_logits", "torch", DTYPES,
        _loader("binary_cross_entropy_with_logits"), bce_applies,
    )
    _dispatch.register(
        "cross_entropy_with_logits", "torch", DTYPES,
        _loader("cross_entropy_with_logits"), cross_entropy_applies,
    )


register()
register_gradients()
