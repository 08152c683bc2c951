"""Read and write PyTorch ``nn.Sequential`` models (torch is imported only when given one)."""

from __future__ import annotations

import copy
import sys
from typing import Any, NamedTuple

import numpy as np

from .. import _messages as msg
from ._network import Layer, Network

__all__: list[str] = []

_STABLENN_TORCH = "stablenn.torch"


def is_model(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


class _Leaf(NamedTuple):
    path: str  # how a message names it: model[1][0]
    parent: Any
    key: str  # the child's name in parent._modules
    module: Any


def _leaves(model: Any) -> list[_Leaf]:
    """Leaf modules in forward order, through nested Sequentials."""
    import torch

    if type(model) is not torch.nn.Sequential:
        raise msg.networks_torch_container(model)
    out: list[_Leaf] = []

    def walk(seq: Any, prefix: str) -> None:
        for key, child in seq.named_children():
            path = f"{prefix}[{key}]" if key.isdigit() else f"{prefix}.{key}"
            if type(child) is torch.nn.Sequential:
                walk(child, path)
            else:
                out.append(_Leaf(path, seq, key, child))

    walk(model, "model")
    return out


def _kind(module: Any) -> str | None:
    """'linear', an activation name, 'identity', or None for a module we cannot convert."""
    import torch.nn as nn

    exact = {
        nn.Linear: "linear",
        nn.Sigmoid: "sigmoid",
        nn.Tanh: "tanh",
        nn.ReLU: "relu",
        nn.Identity: "identity",
    }
    kind = exact.get(type(module))
    if kind is not None:
        return kind
    cls = type(module)
    # stablenn's own modules, recognised by name so that nothing here imports stablenn.torch
    if cls.__module__ == _STABLENN_TORCH or cls.__module__.startswith(_STABLENN_TORCH + "."):
        return {"Sigmoid": "sigmoid", "Tanh": "tanh"}.get(cls.__name__)
    return None


class _Plan(NamedTuple):
    linears: list[_Leaf]
    activations: list[_Leaf | None]  # the activation module after each Linear


def _plan(model: Any) -> _Plan:
    linears: list[_Leaf] = []
    activations: list[_Leaf | None] = []
    for leaf in _leaves(model):
        kind = _kind(leaf.module)
        if kind is None:
            raise msg.networks_torch_module(leaf.path, leaf.module)
        if kind == "identity":
            continue
        if kind == "linear":
            linears.append(leaf)
            activations.append(None)
            continue
        if not linears:
            raise msg.networks_torch_order(leaf.path, type(leaf.module).__name__, "comes before any Linear")
        if activations[-1] is not None:
            raise msg.networks_torch_order(
                leaf.path, type(leaf.module).__name__, f"follows another activation ({activations[-1].path})"
            )
        activations[-1] = leaf
    if not linears:
        raise msg.networks_torch_container(model)
    return _Plan(linears, activations)


def _numpy64(tensor: Any) -> np.ndarray:
    import torch

    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()


def to_network(model: Any) -> Network:
    """The model as a float64 Network (an exact copy of its parameters)."""
    plan = _plan(model)
    layers = []
    for linear, act in zip(plan.linears, plan.activations):
        module = linear.module
        weight = _numpy64(module.weight).T
        bias = None if module.bias is None else _numpy64(module.bias)
        activation = "identity" if act is None else _kind(act.module)
        layers.append(Layer(weight, bias, activation, name=linear.path))
    return Network(layers)


def _tensor(array: np.ndarray) -> Any:
    """A CPU tensor owning a writable copy (``from_numpy`` warns on read-only arrays)."""
    import torch

    return torch.from_numpy(np.array(array, dtype=np.float64, order="C", copy=True))


def _write_linear(leaf: _Leaf, layer: Layer) -> None:
    """Put ``layer``'s parameters into the Linear at ``leaf`` (a copy), in its dtype and device."""
    import torch

    module = leaf.module
    weight = module.weight
    needs_bias = module.bias is None and bool(np.any(layer.bias != 0))
    if needs_bias:
        # the rewrite moved a constant into this layer: it needs a bias it did not have
        new = torch.nn.Linear(
            module.in_features, module.out_features, bias=True, device=weight.device, dtype=weight.dtype
        )
        new.weight.requires_grad_(weight.requires_grad)
        new.bias.requires_grad_(weight.requires_grad)
        new.train(module.training)
        setattr(leaf.parent, leaf.key, new)
        module = new
    with torch.no_grad():
        module.weight.copy_(_tensor(layer.weight.T))
        if module.bias is not None:
            module.bias.copy_(_tensor(layer.bias))
    # float64 parameters were checked by the rewrite; a narrower dtype may still overflow
    for name in ("weight", "bias"):
        value = getattr(module, name)
        if value is not None and not bool(torch.isfinite(value).all()):
            raise msg.networks_rewrite_overflow(f"module `{leaf.path}`", name)


def _activation_module(old: Any, name: str) -> Any:
    """A module computing ``name``, from the same family (torch.nn or stablenn.torch) as ``old``."""
    import torch

    family = type(old).__module__
    if family == _STABLENN_TORCH or family.startswith(_STABLENN_TORCH + "."):
        import importlib

        try:
            cls = getattr(importlib.import_module(family), {"sigmoid": "Sigmoid", "tanh": "Tanh"}[name], None)
        except ImportError:
            cls = None
        if cls is not None:
            return cls()
    return {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}[name]()


def rewritten(model: Any, new: Network, converted: tuple[int, ...]) -> Any:
    """A deep copy of ``model`` with ``new``'s parameters and activations."""
    copied = copy.deepcopy(model)
    plan = _plan(copied)
    for k, (linear, layer) in enumerate(zip(plan.linears, new.layers)):
        _write_linear(linear, layer)
        act = plan.activations[k]
        if k in converted and act is not None:
            setattr(act.parent, act.key, _activation_module(act.module, layer.activation))
    return copied


def collapsed(model: Any, new: Network) -> Any:
    """``Sequential(Linear[, output activation])`` with ``new``'s single layer."""
    import torch

    plan = _plan(model)
    first = plan.linears[0].module.weight
    layer = new.layers[0]
    linear = torch.nn.Linear(layer.n_inputs, layer.n_outputs, bias=True, device=first.device, dtype=first.dtype)
    with torch.no_grad():
        linear.weight.copy_(_tensor(layer.weight.T))
        linear.bias.copy_(_tensor(layer.bias))
    linear.requires_grad_(first.requires_grad)
    modules = [linear]
    last = plan.activations[-1]
    if last is not None:
        modules.append(copy.deepcopy(last.module))
    out = torch.nn.Sequential(*modules)
    out.train(model.training)
    return out
