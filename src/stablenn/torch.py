"""PyTorch modules: drop-in replacements for ``torch.nn``'s activations and losses.

Each module takes the constructor arguments its ``torch.nn`` namesake takes and computes
with stablenn's functions, so its outputs are accurate in every dtype and its gradients go
through stablenn's own rules (``stablenn._autodiff``): exact in the saturated tails, finite
at infinite inputs, and, for :class:`Sigmoid`, :class:`Tanh`, :class:`Softmax` and
:class:`LogSoftmax`, computed from the saved output.  Swap them into an existing model::

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), stablenn.torch.Tanh(), torch.nn.Linear(8, 3))

What the backward pass keeps, besides the output (``residual=``):

``"full"`` (default for :class:`Sigmoid` and :class:`Tanh`)
    a residual of the output's dtype that restores the digits of ``1 - |y|`` the rounding
    of ``y`` lost: gradients within 1 ULP everywhere, at the memory cost of the input.
``"half"`` (default for :class:`Softmax`, and :class:`LogSoftmax` below float64)
    the residual at half the width (float32 for float64, bfloat16 for float32): half the
    input's memory.  Enough for softmax and log_softmax (within 2 ULP; float64 log_softmax
    keeps a float64 residual by default, since near ``p = 1`` it carries all of ``1 - p``);
    for sigmoid and tanh it keeps the relative error near ``2**-9`` deep in the tail (where
    ``y`` rounds to 1) instead of 100%.
``"none"``
    the output only, as PyTorch does: PyTorch's memory and PyTorch's accuracy from the
    output (the gradient of sigmoid is 0 from x = 16.6 in float32).

Importing this module imports PyTorch; ``import stablenn`` does not.

Examples
--------
>>> import torch
>>> import stablenn.torch as snt
>>> x = torch.tensor([0.0, 20.0, 40.0], dtype=torch.float64, requires_grad=True)
>>> snt.Sigmoid()(x).sum().backward()
>>> x.grad
tensor([2.5000e-01, 2.0612e-09, 4.2484e-18], dtype=torch.float64)
>>> x.grad = None
>>> torch.nn.Sigmoid()(x).sum().backward()  # from the rounded output: 0 at 40
>>> x.grad
tensor([2.5000e-01, 2.0612e-09, 0.0000e+00], dtype=torch.float64)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import _autodiff
from . import _messages as msg
from . import activations as _activations
from . import losses as _losses
from . import reductions as _reductions

__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "LogSigmoid",
    "LogSoftmax",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
]

_MODES = ("full", "half", "none")


def _mode(value: Any, *, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or value not in _MODES:
        raise msg.grad_residual_mode("residual", value)
    return value


def _eager(fn: Any) -> Any:
    """Run ``fn`` outside ``torch.compile``'s tracing: a graph break, then stablenn's own path.

    TorchDynamo cannot trace the array-API plumbing of the public functions
    (``array_api_compat``'s type checks); under ``torch.compile`` the modules therefore run
    eagerly between the compiled regions, with the same autograd rules.
    """
    disable = getattr(torch.compiler, "disable", None)
    return fn if disable is None else disable(fn)


def _routed(name: str, fn: Any, args: tuple[Any, ...], default: str | None, residual: str | None, **opts: Any) -> Any:
    """Call ``fn`` through its gradient rule with a non-default residual, else plainly."""
    if residual is not None and residual != default and _autodiff.wanted(*args):
        return _autodiff.call(name, fn, *args, residual=residual, **opts)
    return None


sigmoid = _activations.sigmoid
tanh = _activations.tanh
log_sigmoid = _activations.log_sigmoid
softplus = _activations.softplus
softmax = _reductions.softmax
log_softmax = _reductions.log_softmax
binary_cross_entropy_with_logits = _losses.binary_cross_entropy_with_logits
cross_entropy_with_logits = _losses.cross_entropy_with_logits


def _dim(module: str, dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise msg.grad_module_dim(module, dim)
    return dim


def _reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    from torch.nn import _reduction as legacy

    return str(legacy.legacy_get_string(size_average, reduce))


class Sigmoid(nn.Module):
    r"""Logistic sigmoid, as ``torch.nn.Sigmoid``; see :func:`stablenn.sigmoid`.

    Parameters
    ----------
    residual : {'full', 'half', 'none'}, optional
        What the backward pass keeps besides the output (module docstring); default 'full'.
    """

    def __init__(self, *, residual: str = "full") -> None:
        super().__init__()
        self.residual = _mode(residual)

    @_eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out = _routed("sigmoid", _activations.sigmoid, (input,), "full", self.residual)
        return sigmoid(input) if out is None else out

    def extra_repr(self) -> str:
        return f"residual={self.residual!r}"


class Tanh(nn.Module):
    r"""Hyperbolic tangent, as ``torch.nn.Tanh``; see :func:`stablenn.tanh`.

    Parameters
    ----------
    residual : {'full', 'half', 'none'}, optional
        What the backward pass keeps besides the output (module docstring); default 'full'.
    """

    def __init__(self, *, residual: str = "full") -> None:
        super().__init__()
        self.residual = _mode(residual)

    @_eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out = _routed("tanh", _activations.tanh, (input,), "full", self.residual)
        return tanh(input) if out is None else out

    def extra_repr(self) -> str:
        return f"residual={self.residual!r}"


class LogSigmoid(nn.Module):
    r"""Log of the sigmoid, as ``torch.nn.LogSigmoid``; see :func:`stablenn.log_sigmoid`."""

    @_eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return log_sigmoid(input)  # type: ignore[no-any-return]


class Softplus(nn.Module):
    r"""Softplus, as ``torch.nn.Softplus``: :math:`\operatorname{softplus}(\beta x)/\beta`.

    Parameters
    ----------
    beta : float, optional
        Scale of the input (default 1).
    threshold : float, optional
        Accepted for compatibility and not used: PyTorch returns ``x`` above
        ``threshold / beta`` (5.8e5 ULP off in float64 just above 20); stablenn's softplus
        needs no threshold.
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    @_eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.beta == 1:
            return softplus(input)  # type: ignore[no-any-return]
        return softplus(input * self.beta) / self.beta  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold} (not used)"


class Softmax(nn.Module):
    r"""Softmax along ``dim``, as ``torch.nn.Softmax``; see :func:`stablenn.softmax`.

    Parameters
    ----------
    dim : int
        The axis to normalise (required: PyTorch's implicit choice is deprecated).
    residual : {'full', 'half', 'none'}, optional
        What the backward pass keeps besides the output; default 'half'.
    """

    def __init__(self, dim: int | None = None, *, residual: str = "half") -> None:
        super().__init__()
        self.dim = _dim("Softmax", dim)
        self.residual = _mode(residual)

    @_eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out = _routed("softmax", _reductions.softmax, (input, None), "half", self.residual, axis=self.dim)
        return softmax(input, axis=self.dim) if out is None else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, residual={self.residual!r}"


class LogSoftmax(nn.Module):
    r"""Log-softmax along ``dim``, as ``torch.nn.LogSoftmax``; see :func:`stablenn.log_softmax`.

    Parameters
    ----------
    dim : int
        The axis to normalise.
    residual : {'full', 'half', 'none'} or None, optional
        What the backward pass keeps besides the output; default None: 'half', and 'full'
        in float64 (near ``p = 1`` the residual carries all of ``1 - p``).
    """

    def __init__(self, dim: int | None = None, *, residual: str | None = None) -> None:
        super().__init__()
        self.dim = _dim("LogSoftmax", dim)
        self.residual = _mode(residual, allow_none=True)

    @_eager
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out = _routed("log_softmax", _reductions.log_softmax, (input, None), None, self.residual, axis=self.dim)
        return log_softmax(input, axis=self.dim) if out is None else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, residual={self.residual!r}"


class BCEWithLogitsLoss(nn.Module):
    r"""Binary cross-entropy with logits, as ``torch.nn.BCEWithLogitsLoss``.

    Same arguments (``weight`` and ``pos_weight`` are registered as buffers, as PyTorch
    does; ``size_average`` and ``reduce`` are PyTorch's deprecated spelling of
    ``reduction``).  Finite at infinite logits, accurate for soft labels; see
    :func:`stablenn.binary_cross_entropy_with_logits`.
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.reduction = _reduction(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    @_eager
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy_with_logits(  # type: ignore[no-any-return]
            input, target, weight=self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )


class CrossEntropyLoss(nn.Module):
    r"""Softmax cross-entropy, as ``torch.nn.CrossEntropyLoss``.

    Same arguments and layout: classes along dimension 1 for inputs of shape ``(N, C, ...)``,
    dimension 0 for an input of shape ``(C,)``; targets are class indices (``ignore_index``
    applies, default -100) or class probabilities.  The loss at the argmax keeps its digits
    and its gradient (``p_t - 1`` formed as ``-sum_{j != t} p_j``); see
    :func:`stablenn.cross_entropy_with_logits`.
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.reduction = _reduction(size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", weight)

    @_eager
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        axis = 1 if input.ndim >= 2 else 0
        index = not torch.is_floating_point(target)
        return cross_entropy_with_logits(  # type: ignore[no-any-return]
            input,
            target,
            axis=axis,
            weight=self.weight,
            ignore_index=self.ignore_index if index else None,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )
