"""Item 4 of issue 4, small: what each rule keeps for the backward pass.

``torch.autograd.graph.saved_tensors_hooks`` sees every tensor autograd keeps; the byte
counts follow from the shapes and dtypes (no timing, no measurement noise).  The full-size
measurement (10 layers of 4096, batch 512) is ``benchmarks/backprop_memory.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import stablenn as snn
import stablenn.torch as snt


def kept(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    return saved, out


def storage_bytes(tensors: list[torch.Tensor], exclude: tuple[torch.Tensor, ...] = ()) -> int:
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(n for ptr, n in seen.items() if ptr not in skip)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize(("residual", "extra_bytes"), [("full", 4), ("half", 2), ("none", 0)])
def test_sigmoid_tanh_keep_output_and_residual(name: str, residual: str, extra_bytes: int) -> None:
    x = torch.randn(8, 16, requires_grad=True)
    module = getattr(snt, name.capitalize())(residual=residual)
    saved, y = kept(module, x)
    # the output itself is kept (shared with whatever consumes it), never the input
    assert any(t is y for t in saved)
    assert not any(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in saved)
    # besides the output: a residual of 4, 2 or 0 bytes per element (float32, bfloat16, none)
    assert storage_bytes(saved, exclude=(y,)) == extra_bytes * x.numel()


def test_peer_and_naive_formulas_for_comparison() -> None:
    x = torch.randn(8, 16, requires_grad=True)
    saved, y = kept(torch.sigmoid, x)
    assert storage_bytes(saved, exclude=(y,)) == 0  # PyTorch keeps the output only
    saved, y = kept(lambda a: 1 / (1 + torch.exp(-a)), x)
    # besides the output: exp(-x) and the reciprocal (1 / t is a reciprocal, then a product)
    assert storage_bytes(saved, exclude=(y,)) == 8 * x.numel()


@pytest.mark.parametrize(("name", "dtype", "residual_bytes"), [
    ("softmax", torch.float32, 2),
    ("softmax", torch.float64, 4),
    ("log_softmax", torch.float32, 2),
    ("log_softmax", torch.float64, 8),  # float64 log_softmax keeps a float64 residual (near p = 1)
])
def test_normalisers_keep_output_and_compact_residual(name: str, dtype: torch.dtype, residual_bytes: int) -> None:
    x = torch.randn(4, 32, dtype=dtype, requires_grad=True)
    saved, y = kept(lambda a: getattr(snn, name)(a, axis=-1), x)
    assert any(t is y for t in saved)
    assert storage_bytes(saved, exclude=(y,)) == residual_bytes * x.numel()
    assert residual_bytes < x.element_size() or name == "log_softmax"


def test_mlp_keeps_fewer_bytes_than_the_naive_formula() -> None:
    # a 3-layer MLP of width 64: per layer, PyTorch keeps 1 activation tensor (the output,
    # shared with the next Linear), stablenn (full residual) 2, the naive formula 2
    def mlp(act: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(*[m for _ in range(3) for m in (torch.nn.Linear(64, 64), act())])

    x = torch.randn(16, 64)
    one = 16 * 64 * 4
    results = {}
    for label, act in {
        "torch": torch.nn.Sigmoid,
        "full": lambda: snt.Sigmoid(residual="full"),
        "half": lambda: snt.Sigmoid(residual="half"),
        "none": lambda: snt.Sigmoid(residual="none"),
    }.items():
        model = mlp(act)
        params = tuple(model.parameters())
        saved, _ = kept(model, x)
        results[label] = storage_bytes(saved, exclude=params) / one
    # the input x, then each layer's output; plus the residuals
    assert results == {"torch": 4.0, "full": 7.0, "half": 5.5, "none": 4.0}
