"""Fast gradient rules per device type: the plug for compiled forward/backward kernels.

The torch glue asks ``lookup(function, device_type, args, opts)`` before using the
array-API rule of ``_rules.RULES``.  An entry (a Triton kernel pair for CUDA tensors, say)
supplies

* ``forward(args, opts) -> (out, saved)``: ``args`` the array arguments in the rule's order
  (``_rules.RULES[function].arrays``), ``opts`` the keyword options; ``saved`` a dict whose
  tensors must be inputs, outputs, or constants (as for ``torch.autograd.Function``);
* ``backward(saved, grads, opts, needs) -> list``: one gradient (or None) per array
  argument; ``needs[i]`` says whether argument ``i`` wants one;
* optionally ``applies(args, opts) -> bool`` to refuse a call (dtype, layout, size).

An entry goes in only once it meets the same gradient budgets as the array-API rule
(``stablenn._autodiff.gradient_impls`` gives the audit its gradients).  Nothing here
imports a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _messages as msg

__all__: list[str] = []


@dataclass(frozen=True)
class FastRule:
    forward_fn: Callable[[list[Any], dict[str, Any]], tuple[Any, dict[str, Any]]]
    backward_fn: Callable[[dict[str, Any], list[Any], dict[str, Any], list[bool]], list[Any]]
    applies: Callable[[list[Any], dict[str, Any]], bool] | None = None

    # the interface of ``_rules.Rule`` that the torch glue uses
    def forward(self, xp: Any, fn: Any, args: list[Any], opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return self.forward_fn(args, opts)

    def vjp(self, xp: Any, saved: dict[str, Any], grads: list[Any], opts: dict[str, Any], needs: list[bool]) -> list[Any]:
        return self.backward_fn(saved, grads, opts, needs)


_FAST: dict[tuple[str, str], FastRule] = {}


def register(
    function: str,
    device_type: str,
    *,
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    applies: Callable[..., bool] | None = None,
) -> None:
    """Add a fast forward/backward pair for ``function`` on tensors of ``device_type``."""
    key = (function, device_type)
    if key in _FAST:
        raise msg.grad_fast_rule(function, device_type)
    _FAST[key] = FastRule(forward, backward, applies)


def unregister(function: str, device_type: str) -> None:
    _FAST.pop((function, device_type), None)


def lookup(function: str, device_type: str, args: list[Any], opts: dict[str, Any]) -> FastRule | None:
    entry = _FAST.get((function, device_type))
    if entry is None or (entry.applies is not None and not entry.applies(args, opts)):
        return None
    return entry
