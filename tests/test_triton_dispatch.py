"""The Triton entries are chosen for CUDA tensors only, and nothing else imports triton.

No GPU is needed: the predicates look at attributes only, so they are tested on CPU tensors
(always refused) and on stand-ins that carry a CUDA device; the public functions are run
on CPU tensors in a fresh interpreter, which must end without ``triton`` (or the kernel
package) in ``sys.modules``.  ``test_triton_compile`` checks that every kernel compiles for
the GPU, and ``test_triton_kernels`` runs them, interpreted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from stablenn import _dispatch
from stablenn._fast import _triton_entries as E

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = (
    "sigmoid", "log_sigmoid", "softplus", "tanh", "sigmoid_grad", "tanh_grad",
    "logsumexp", "softmax", "log_softmax",
    "binary_cross_entropy_with_logits", "cross_entropy_with_logits",
)


@dataclass
class Device:
    type: str
    index: int = 0


@dataclass
class FakeTensor:
    """What the predicates look at: a device, a shape, a dtype, requires_grad."""

    shape: tuple[int, ...]
    dtype: Any = torch.float32
    device: Device = field(default_factory=lambda: Device("cuda"))
    requires_grad: bool = False


def ours(function: str) -> list[_dispatch.Entry]:
    """The Triton entries of a function (their loaders live in ``_triton_entries``)."""
    return [
        e for e in _dispatch.entries().get((function, "torch"), [])
        if getattr(e.load, "__module__", "") == E.__name__
    ]


def applies(function: str, *args: Any) -> bool:
    (entry,) = ours(function)
    assert entry.applies is not None
    return entry.applies(*args)


def call_args(function: str, x: Any, other: Any = None) -> tuple[Any, ...]:
    """The arguments ``lookup`` passes for ``function`` (see ``_dispatch``'s docstring)."""
    if function == "logsumexp":
        return (x, None, False)
    if function == "binary_cross_entropy_with_logits":
        return (x, x if other is None else other, None, None, "mean")
    if function == "cross_entropy_with_logits":
        t = other if other is not None else FakeTensor(x.shape[:-1], torch.int64, x.device)
        return (x, t, None, None, 0.0, "mean")
    return (x,)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_has_one_entry_for_the_three_dtypes(function: str) -> None:
    (entry,) = ours(function)
    assert entry.dtypes == frozenset({"float32", "float16", "bfloat16"})


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cpu_tensors_are_refused(function: str, dtype: torch.dtype) -> None:
    x = torch.zeros(3, 4, dtype=dtype)
    other = torch.zeros(3, dtype=torch.int64) if function == "cross_entropy_with_logits" else None
    assert not applies(function, *call_args(function, x, other))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cuda_tensors_are_taken(function: str) -> None:
    assert applies(function, *call_args(function, FakeTensor((3, 4))))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_other_devices_and_mixed_devices_are_refused(function: str) -> None:
    for kind in ("cpu", "meta", "mps", "xpu"):
        assert not applies(function, *call_args(function, FakeTensor((3, 4), device=Device(kind))))
    if function in ("binary_cross_entropy_with_logits", "cross_entropy_with_logits"):
        x = FakeTensor((3, 4))
        other = FakeTensor((3, 4) if function.startswith("binary") else (3,),
                           torch.float32 if function.startswith("binary") else torch.int64, Device("cuda", 1))
        assert not applies(function, *call_args(function, x, other))
        cpu = FakeTensor(other.shape, other.dtype, Device("cpu"))
        assert not applies(function, *call_args(function, x, cpu))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_empty_arrays_are_refused(function: str) -> None:
    for shape in [(0,), (3, 0), (0, 4), ()]:
        x = FakeTensor(shape)
        other = None
        if function == "cross_entropy_with_logits":
            other = FakeTensor(shape[:-1], torch.int64)
        assert not applies(function, *call_args(function, x, other))


def test_shapes_and_arguments_the_kernels_do_not_take_are_refused() -> None:
    x = FakeTensor((3, 4))
    assert not applies("logsumexp", x, FakeTensor((3, 4)), False)  # weights b
    assert applies("logsumexp", x, None, True)
    t = FakeTensor((3,), torch.float32)  # probability targets are not class indices
    assert not applies("cross_entropy_with_logits", x, t, None, None, 0.0, "mean")
    t = FakeTensor((4,), torch.int64)  # wrong shape
    assert not applies("cross_entropy_with_logits", x, t, None, None, 0.0, "mean")
    w = FakeTensor((4,), requires_grad=True)  # no gradient rule for weights
    t = FakeTensor((3,), torch.int32)
    assert applies("cross_entropy_with_logits", x, t, None, -100, 0.1, "sum")
    assert not applies("cross_entropy_with_logits", x, t, w, None, 0.0, "mean")
    assert not applies("binary_cross_entropy_with_logits", x, x, w, None, "mean")
    assert not applies("binary_cross_entropy_with_logits", x, x, None, w, "mean")
    g = FakeTensor((3, 4), requires_grad=True)
    assert applies("sigmoid", g) and applies("tanh", g)
    assert not applies("sigmoid_grad", g) and not applies("tanh_grad", g)  # no second derivative


def test_lookup_filters_float64() -> None:
    """float64 stays on the PyTorch path: the Triton entries are not even asked."""
    for function in FUNCTIONS:
        for entry in ours(function):
            assert "float64" not in entry.dtypes


def test_without_triton_cuda_tensors_take_the_pytorch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(E, "_triton_found", False)
    assert not applies("softmax", FakeTensor((3, 4)))


def test_gradient_rules_refuse_what_the_kernels_do_not_take() -> None:
    x = FakeTensor((3, 4))
    ce = E.rule_applies("cross_entropy_with_logits")
    t = FakeTensor((3,), torch.int64)
    opts = {"axis": -1, "ignore_index": None, "label_smoothing": 0.0, "reduction": "mean"}
    assert ce([x, t, None], opts)
    assert ce([x, FakeTensor((4,), torch.int64), None], dict(opts, axis=0))
    assert not ce([x, t, None], dict(opts, axis=2))
    assert not ce([x, t, None], dict(opts, label_smoothing=1.5))
    assert not ce([x, t, None], dict(opts, reduction="avg"))
    assert not ce([x, t, FakeTensor((4,), requires_grad=True)], opts)
    assert not ce([FakeTensor((3, 4), device=Device("cpu")), t, None], opts)
    lse = E.rule_applies("logsumexp")
    assert lse([x, None, None], {}) and not lse([x, None, FakeTensor(())], {})
    bce = E.rule_applies("binary_cross_entropy_with_logits")
    assert bce([x, x, None, None], {}) and not bce([x, FakeTensor((3, 4), torch.float16), None, None], {})
    assert not E.rule_applies("sigmoid_grad")([x], {})


def _run(code: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_stablenn_imports_neither_torch_nor_triton() -> None:
    seen = _run("""
        import json, sys
        import stablenn
        print(json.dumps({m: m in sys.modules for m in ("torch", "triton", "stablenn._fast.triton")}))
    """)
    assert seen == {"torch": False, "triton": False, "stablenn._fast.triton": False}


def test_cpu_tensors_through_the_public_api_never_import_triton() -> None:
    seen = _run("""
        import json, sys
        import torch
        import stablenn as snn
        for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            x = torch.randn(4, 6).to(dtype).requires_grad_(True)
            t = torch.tensor([0, 5, 2, 1])
            outs = [
                snn.sigmoid(x), snn.log_sigmoid(x), snn.softplus(x), snn.tanh(x),
                snn.logsumexp(x, axis=-1), snn.softmax(x), snn.log_softmax(x, axis=0),
                snn.cross_entropy_with_logits(x, t, label_smoothing=0.1),
                snn.binary_cross_entropy_with_logits(x, torch.rand(4, 6).to(dtype)),
            ]
            sum(o.float().sum() for o in outs).backward()
            with torch.no_grad():
                snn.sigmoid_grad(x); snn.tanh_grad(x)
        print(json.dumps({m: m in sys.modules for m in ("triton", "stablenn._fast.triton")}))
    """)
    assert seen == {"triton": False, "stablenn._fast.triton": False}


def test_deciding_on_a_cuda_tensor_imports_nothing() -> None:
    """The predicates look at attributes; only the loader imports the kernels."""
    seen = _run("""
        import json, sys
        from types import SimpleNamespace as NS
        from stablenn import _dispatch
        x = NS(shape=(3, 4), dtype="torch.float32", device=NS(type="cuda"), requires_grad=False)
        found = [e.applies(x) for e in _dispatch.entries()[("softmax", "torch")] if e.applies]
        print(json.dumps({"found": any(found), "triton": "triton" in sys.modules,
                          "torch": "torch" in sys.modules}))
    """)
    assert seen == {"found": True, "triton": False, "torch": False}
