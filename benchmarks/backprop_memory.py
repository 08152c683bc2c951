"""Bytes kept for backward: stablenn's output-saving rules against PyTorch and naive formulas.

Item 4 of issue 4.  A 10-layer MLP (``Linear(4096, 4096)`` then the activation, ten times),
batch 512, float32, on the CPU.  Every tensor autograd saves for the backward pass goes
through ``torch.autograd.graph.saved_tensors_hooks``; the hook records the storage it
belongs to, and the bytes kept are the sizes of the distinct storages (a tensor saved by
two layers, like an activation output that the next ``Linear`` also keeps, counts once).
Parameters are reported apart from activations.

Variants:

* PyTorch's ``nn.Sigmoid`` / ``nn.Tanh`` (save the output; the gradient from ``y (1 - y)``);
* a naive composite formula that autograd differentiates step by step
  (``1 / (1 + exp(-x))`` and ``(e^x - e^-x) / (e^x + e^-x)``);
* ``stablenn.torch.Sigmoid`` / ``Tanh`` with ``residual`` "full" (default: exact tails),
  "half" and "none" (see ``stablenn.torch``).

Run: ``python benchmarks/backprop_memory.py [--width 4096 --batch 512 --layers 10]``.
Needs about 3 GB of memory (the weights, their gradients, one backward pass).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
from torch import nn

import stablenn.torch as snt


class NaiveSigmoid(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 / (1 + torch.exp(-x))


class NaiveTanh(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.exp(x), torch.exp(-x)
        return (a - b) / (a + b)


VARIANTS: dict[str, dict[str, Callable[[], nn.Module]]] = {
    "sigmoid": {
        "PyTorch nn.Sigmoid": nn.Sigmoid,
        "naive 1/(1+exp(-x))": NaiveSigmoid,
        "stablenn Sigmoid (residual='full', default)": lambda: snt.Sigmoid(residual="full"),
        "stablenn Sigmoid (residual='half')": lambda: snt.Sigmoid(residual="half"),
        "stablenn Sigmoid (residual='none')": lambda: snt.Sigmoid(residual="none"),
    },
    "tanh": {
        "PyTorch nn.Tanh": nn.Tanh,
        "naive (e^x-e^-x)/(e^x+e^-x)": NaiveTanh,
        "stablenn Tanh (residual='full', default)": lambda: snt.Tanh(residual="full"),
        "stablenn Tanh (residual='half')": lambda: snt.Tanh(residual="half"),
        "stablenn Tanh (residual='none')": lambda: snt.Tanh(residual="none"),
    },
}


def mlp(make_activation: Callable[[], nn.Module], width: int, layers: int) -> nn.Module:
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(width, width), make_activation()]
    return nn.Sequential(*mods)


def saved_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, int, int]:
    """``(activation bytes, parameter bytes, saved tensors)`` kept for backward."""
    storages: dict[int, int] = {}
    count = 0
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal count
        count += 1
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(x).mean()
    acts = sum(n for ptr, n in storages.items() if ptr not in params)
    weights = sum(n for ptr, n in storages.items() if ptr in params)
    loss.backward()  # the graph is complete and runs
    return acts, weights, count


def measure(width: int, batch: int, layers: int) -> list[dict[str, object]]:
    """One row per variant: activation bytes and tensors kept for backward, parameters apart."""
    torch.set_num_threads(2)
    x = torch.randn(batch, width, generator=torch.Generator().manual_seed(1))
    layer_bytes = batch * width * 4
    rows: list[dict[str, object]] = []
    for family in VARIANTS.values():
        for label, make in family.items():
            model = mlp(make, width, layers)
            acts, weights, count = saved_bytes(model, x)
            rows.append({
                "activation": label,
                f"activations kept (MiB, {layers} layers x {width} wide, batch {batch})": round(acts / 2.0**20, 1),
                "per layer (activation tensors)": round(acts / layers / layer_bytes, 2),
                "parameters kept (MiB)": round(weights / 2.0**20, 1),
                "tensors saved": count,
            })
            del model
    return rows


def report_data(quick: bool = True) -> list[dict[str, object]]:
    """The table for ``stablenn report``.

    The report runs a smaller network than ``main`` (width 512 and batch 256 instead of 4096
    and 512, same depth: seconds instead of minutes on two cores); the bytes kept per layer,
    in units of one activation tensor, do not depend on the size.  ``quick=False`` runs the
    issue's size.
    """
    return measure(512, 256, 10) if quick else measure(4096, 512, 10)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--layers", type=int, default=10)
    args = p.parse_args(argv)
    print(f"{args.layers}-layer MLP, width {args.width}, batch {args.batch}, float32; "
          f"one activation tensor = {args.batch * args.width * 4 / 2.0**20:.0f} MiB\n")
    rows = measure(args.width, args.batch, args.layers)
    print("| " + " | ".join(rows[0]) + " |")
    print("|---|" + "---:|" * (len(rows[0]) - 1))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
