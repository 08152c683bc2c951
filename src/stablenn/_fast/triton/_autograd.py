"""Gradient rules for the Triton entries: one ``torch.autograd.Function`` per function.

These stand in until ``stablenn._autodiff`` offers a per-device slot for fast forward and
backward kernels; the backward functions here (``_launch.softmax_backward``,
``_launch.bce_backward``, ``_launch.unary`` with ``dy``, the gradient written by
``_launch.cross_entropy``) are what such a slot would call.  The derivatives are the ones
the CPU path documents: computed from the input where that is accurate (sigma'(x) =
sigma(x) sigma(-x), not y (1 - y)), finite at infinite logits and at all ``-inf`` rows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from ... import _messages as msg
from . import _launch as L

__all__: list[str] = []

# derivative of each elementwise function, as another elementwise function of the input
_DERIVATIVE = {
    "sigmoid": "sigmoid_grad",
    "softplus": "sigmoid",
    "log_sigmoid": "sigmoid_neg",
    "tanh": "tanh_grad",
}


class Unary(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, name: str) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name = name
        return L.unary(x, name)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return L.unary(x, _DERIVATIVE[ctx.name], dy), None


class LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return L.logsumexp(x)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> torch.Tensor:
        # d LSE / dx_i = softmax(x)_i: 0 for -inf entries and for all -inf rows (finite)
        (x,) = ctx.saved_tensors
        return L.softmax(x, False, g=dy)


class Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, log: bool) -> torch.Tensor:
        y = L.softmax(x, log)
        ctx.save_for_backward(y)
        ctx.log = log
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, None]:
        (y,) = ctx.saved_tensors
        return L.softmax_backward(y, dy, ctx.log), None


class BCE(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        y: torch.Tensor,
        weight: torch.Tensor | None,
        pos_weight: torch.Tensor | None,
        reduction: str,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, y, weight, pos_weight)
        ctx.reduction = reduction
        return L.bce(x, y, weight, pos_weight, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[Any, ...]:
        x, y, weight, pos_weight = ctx.saved_tensors
        want_x, want_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dx, dt = L.bce_backward(x, y, weight, pos_weight, ctx.reduction, dout, want_y)
        return (dx if want_x else None), dt, None, None, None


class CrossEntropy(torch.autograd.Function):
    """Forward and backward fused: the forward kernel also writes d(loss)/d(logits) for an
    upstream gradient of 1 (softmax minus one-hot, weighted and smoothed, without keeping the
    probabilities); the backward scales it in place by the upstream gradient, skipping
    rows whose factor is 1 on the device."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        targets: torch.Tensor,
        weight: torch.Tensor | None,
        ignore_index: int | None,
        smoothing: float,
        reduction: str,
    ) -> torch.Tensor:
        out, grad = L.cross_entropy(x, targets, weight, ignore_index, smoothing, reduction, True)
        ctx.save_for_backward(x, targets, weight, grad)
        ctx.args = (ignore_index, smoothing, reduction)
        ctx.used = False
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[Any, ...]:
        x, targets, weight, grad = ctx.saved_tensors
        ignore_index, smoothing, reduction = ctx.args
        if ctx.used:  # a second backward (retain_graph): the saved gradient was scaled
            _, grad = L.cross_entropy(x, targets, weight, ignore_index, smoothing, reduction, True)
        ctx.used = True
        assert grad is not None
        L.scale_rows(grad, dout, per_row=reduction == "none")
        return grad, None, None, None, None, None


def check_targets(targets: torch.Tensor, n_classes: int, ignore_index: int | None) -> None:
    """Raise the CPU path's error for class indices out of range.

    Reading the answer costs one device-to-host synchronisation on a flag computed from the
    targets alone (one pass over ``N`` integers, not over the logits).  It is skipped while
    ``torch.compile`` traces or a CUDA graph is captured, where reading a value is not
    allowed; an unchecked bad index then gives a NaN loss (and NaN gradient row), never a
    silent 0.
    """
    if targets.numel() == 0 or torch.compiler.is_compiling():
        return
    if targets.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    bad = (targets < 0) | (targets >= n_classes)
    if ignore_index is not None:
        bad &= targets != ignore_index
    if bool(bad.any()):
        low, high = int(targets.min()), int(targets.max())
        raise msg.class_index_range(low, high, n_classes, ignore_index)
