"""Fast gradient rules for ``stablenn._autodiff`` (its per-device table, ``register_fast``).

When a CUDA tensor requires grad, the public functions hand the call to ``_autodiff``; for
the functions below it finds these forward/backward pairs (registered for the device type
``"cuda"`` by ``stablenn._fast._triton_entries``) instead of its array-API rule.  The
forward computes the value with the public function itself (its plain path dispatches to
the Triton kernels, with every check the public layer makes); the backward runs the Triton
backward kernels.  Cross-entropy is fused: its forward kernel writes the gradient as well
(softmax minus one-hot, weighted and smoothed, for an upstream gradient of 1), and the
backward scales it in place, skipping on the device the rows whose factor is 1.

Conventions (``stablenn._autodiff._table``): ``forward(args, opts) -> (out, saved)`` with
``args`` the rule's array arguments, ``backward(saved, grads, opts, needs)`` one gradient per
array argument.
"""

from __future__ import annotations

from typing import Any

import torch

import stablenn

from . import _autograd as A
from . import _launch as L

__all__: list[str] = []


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(int(a) % ndim for a in items))


# ---------------------------------------------------------------- elementwise


def elementwise_forward(name: str) -> Any:
    def forward(args: list[Any], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        x = args[0]
        return getattr(stablenn, name)(x), {"x": x}

    return forward


def elementwise_backward(name: str) -> Any:
    def backward(saved: dict[str, Any], grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        return [L.unary(saved["x"], A._DERIVATIVE[name], grads[0])]

    return backward


# ---------------------------------------------------------------- log-sum-exp, softmax


def logsumexp_forward(args: list[Any], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    x = args[0]
    out = stablenn.logsumexp(x, axis=opts["axis"], keepdims=opts["keepdims"], return_sign=opts["return_sign"])
    return out, {"x": x}


def logsumexp_backward(saved: dict[str, Any], grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
    # d LSE / dx_i = g softmax(x)_i over the reduced axes (moved last and merged)
    x = saved["x"]
    red = _axes(opts["axis"], x.ndim)
    kept = tuple(i for i in range(x.ndim) if i not in red)
    perm = kept + red
    kept_shape = tuple(x.shape[i] for i in kept)
    xl = x.permute(perm).reshape(*kept_shape, -1)
    g = grads[0].reshape(kept_shape)
    dx = L.softmax(xl, False, g=g).reshape([x.shape[i] for i in perm])
    inverse = [perm.index(i) for i in range(x.ndim)]
    return [dx.permute(inverse), None, None]


def normalise_forward(name: str) -> Any:
    def forward(args: list[Any], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        y = getattr(stablenn, name)(args[0], axis=opts["axis"])
        return y, {"y": y}

    return forward


def normalise_backward(name: str) -> Any:
    def backward(saved: dict[str, Any], grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        y = saved["y"]
        ax = int(opts["axis"]) % max(y.ndim, 1)
        if y.ndim == 0:
            return [torch.zeros_like(y), None]
        dx = L.softmax_backward(y.movedim(ax, -1), grads[0].movedim(ax, -1), name == "log_softmax")
        return [dx.movedim(-1, ax), None]

    return backward


# ---------------------------------------------------------------- losses


def bce_forward(args: list[Any], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    x, y, w, pw = args
    out = stablenn.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction=opts["reduction"])
    return out, {"x": x, "y": y, "w": w, "pw": pw}


def bce_backward(saved: dict[str, Any], grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
    x, y = saved["x"], saved["y"]
    w = None if saved["w"] is None else torch.broadcast_to(saved["w"], x.shape)
    pw = None if saved["pw"] is None else torch.broadcast_to(saved["pw"], x.shape)
    dx, dt = L.bce_backward(x, y, w, pw, opts["reduction"], grads[0], needs[1])
    return [dx if needs[0] else None, dt, None, None]


def cross_entropy_forward(args: list[Any], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    x, targets, w = args
    red = opts["reduction"]
    if red not in ("none", "mean", "sum") or x.ndim == 0:  # let the public function refuse it
        stablenn.cross_entropy_with_logits(
            x, targets, weight=w, axis=opts["axis"], ignore_index=opts["ignore_index"],
            label_smoothing=opts["label_smoothing"], reduction=red,
        )
    ax = int(opts["axis"]) % x.ndim
    xl = x.movedim(ax, -1)
    ignore, eps = opts["ignore_index"], float(opts["label_smoothing"])
    A.check_targets(targets, xl.shape[-1], ignore)
    out, grad = L.cross_entropy(xl, targets, w, ignore, eps, red, True)
    return out, {"x": x, "targets": targets, "w": w, "grad": grad, "used": [False]}


def cross_entropy_backward(saved: dict[str, Any], grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
    x, grad = saved["x"], saved["grad"]
    ax = int(opts["axis"]) % x.ndim
    red = opts["reduction"]
    if saved["used"][0]:  # a second backward (retain_graph): the saved gradient was scaled
        _, grad = L.cross_entropy(
            x.movedim(ax, -1), saved["targets"], saved["w"], opts["ignore_index"],
            float(opts["label_smoothing"]), red, True,
        )
    saved["used"][0] = True
    L.scale_rows(grad, grads[0], per_row=red == "none")
    return [grad.movedim(-1, ax), None, None]


# ---------------------------------------------------------------- the table

FORWARD: dict[str, Any] = {
    "logsumexp": logsumexp_forward,
    "softmax": normalise_forward("softmax"),
    "log_softmax": normalise_forward("log_softmax"),
    "binary_cross_entropy_with_logits": bce_forward,
    "cross_entropy_with_logits": cross_entropy_forward,
}
BACKWARD: dict[str, Any] = {
    "logsumexp": logsumexp_backward,
    "softmax": normalise_backward("softmax"),
    "log_softmax": normalise_backward("log_softmax"),
    "binary_cross_entropy_with_logits": bce_backward,
    "cross_entropy_with_logits": cross_entropy_backward,
}
for _name in A._DERIVATIVE:
    FORWARD[_name] = elementwise_forward(_name)
    BACKWARD[_name] = elementwise_backward(_name)
