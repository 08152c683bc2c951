"""Triton kernels for CUDA tensors: the entries ``stablenn._fast._triton_entries`` loads.

Importing this package imports ``torch`` and ``triton``; only the dispatch loads it, and
only once it has seen a CUDA tensor of a supported dtype.  Each function follows the call
convention of its dispatch entry (see ``stablenn._dispatch``) and is differentiable: when
gradients are being recorded it goes through a ``torch.autograd.Function`` whose backward
runs the matching Triton kernel (see ``_autograd``).

Layout of the package: ``_math`` (device functions: exp, expm1, log1p, dtype conversions),
``_kernels`` (the kernels), ``_launch`` (tensor plumbing and launches), ``_autograd``
(gradient rules).
"""

from __future__ import annotations

from typing import Any

import torch

from . import _autograd as A
from . import _launch as L

__all__ = [
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softplus",
    "tanh",
    "tanh_grad",
]


def _recording(*tensors: Any) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and isinstance(t, torch.Tensor) and t.requires_grad for t in tensors
    )


def _unary(name: str) -> Any:
    def impl(x: torch.Tensor) -> torch.Tensor:
        if _recording(x):
            return A.Unary.apply(x, name)
        return L.unary(x, name)

    impl.__name__ = name
    impl.__doc__ = f"``{name}`` of a CUDA tensor (float32, float16, bfloat16)."
    return impl


sigmoid = _unary("sigmoid")
log_sigmoid = _unary("log_sigmoid")
softplus = _unary("softplus")
tanh = _unary("tanh")
sigmoid_grad = _unary("sigmoid_grad")
tanh_grad = _unary("tanh_grad")


def logsumexp(
    x: torch.Tensor, b: torch.Tensor | None, return_sign: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log-sum-exp over the last axis, sign)``; ``b`` must be None."""
    res = A.LogSumExp.apply(x) if _recording(x) else L.logsumexp(x)
    if not return_sign:
        return res, res
    with torch.no_grad():
        one = torch.ones_like(res)
        sign = torch.where(res == -torch.inf, torch.zeros_like(res), one)
        sign = torch.where(torch.isnan(res), res, sign)
    return res, sign


def softmax(x: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis."""
    return A.Softmax.apply(x, False) if _recording(x) else L.softmax(x, False)


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    """log-softmax over the last axis."""
    return A.Softmax.apply(x, True) if _recording(x) else L.softmax(x, True)


def binary_cross_entropy_with_logits(
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor | None,
    pos_weight: torch.Tensor | None,
    reduction: str,
) -> torch.Tensor:
    """BCE with logits; ``weight`` and ``pos_weight`` already broadcast to ``x``."""
    if _recording(x, y):
        return A.BCE.apply(x, y, weight, pos_weight, reduction)
    return L.bce(x, y, weight, pos_weight, reduction)


def cross_entropy_with_logits(
    x: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int | None,
    smoothing: float,
    reduction: str,
) -> torch.Tensor:
    """Cross-entropy of ``x`` (classes last) against class indices ``targets``."""
    A.check_targets(targets, x.shape[-1], ignore_index)
    if _recording(x):
        return A.CrossEntropy.apply(x, targets, weight, ignore_index, smoothing, reduction)
    out, _ = L.cross_entropy(x, targets, weight, ignore_index, smoothing, reduction, False)
    return out
