"""PyTorch glue: one ``torch.autograd.Function`` runs every rule.

``forward`` runs with gradients off (autograd's own rule), so the public function it calls
takes its plain path: the same kernels and the same values as without gradients.  The
tensors a rule saves go through ``save_for_backward`` (hooks such as
``torch.autograd.graph.saved_tensors_hooks`` see exactly them), and ``backward`` is made of
differentiable tensor operations on them, so double backward works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat
import torch

from . import _table
from ._rules import Rule


class _RuleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, impl: Any, fn: Callable[..., Any], opts: dict[str, Any], *args: Any) -> Any:  # type: ignore[override]
        xp = array_api_compat.array_namespace(*(a for a in args if isinstance(a, torch.Tensor)))
        out, saved = impl.forward(xp, fn, list(args), opts)
        keys, tensors, others = [], [], {}
        for key, value in saved.items():
            if isinstance(value, torch.Tensor):
                keys.append(key)
                tensors.append(value)
            else:
                others[key] = value
        ctx.save_for_backward(*tensors)
        ctx.stablenn = (impl, opts, keys, others, xp)
        if isinstance(out, tuple):
            ctx.mark_non_differentiable(*out[1:])  # logsumexp's sign
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # type: ignore[override]
        impl, opts, keys, others, xp = ctx.stablenn
        saved = dict(zip(keys, ctx.saved_tensors))
        saved.update(others)
        needs = list(ctx.needs_input_grad[3:])
        out = impl.vjp(xp, saved, list(grads), opts, needs)
        return (None, None, None, *out)


def requires_grad(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


def apply(rule: Rule, fn: Callable[..., Any], args: tuple[Any, ...], opts: dict[str, Any]) -> Any:
    rule.check(list(args), requires_grad)
    device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
    impl = _table.lookup(rule.name, device, list(args), opts) or rule
    return _RuleFunction.apply(impl, fn, opts, *args)
