"""Gradient rules for PyTorch and JAX, chosen at the start of each public computation.

The public functions ask ``wanted(*arrays)`` after validating their arguments; when it is
true they hand the call to ``call(name, public_function, *arrays, **options)``, which runs
the function's rule:

* PyTorch (a tensor that requires grad, with grad mode on): a ``torch.autograd.Function``
  whose forward is the public function itself and whose backward is an array-API kernel of
  ``_kernels.py``; sigmoid, tanh, softmax and log_softmax keep only their output and a
  rounding residual (``_rules.py`` says which, and why).  A per-device table of fast
  forward/backward pairs (``register_fast``) is consulted first, for GPU kernels.
* JAX (any tracer: ``jit``, ``vmap``, ``grad``, ``jvp``): a ``jax.custom_jvp`` whose primal is
  the public function and whose tangent map is the rule's JVP.  Concrete JAX arrays outside
  any transformation get the public function under one ``jax.jit`` per call signature
  (``_jax.compiled``): run op by op, a double-double kernel is thousands of dispatches, each
  compiled for every new shape (seconds per call).

Nothing here imports PyTorch or JAX until an array of that library is seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._state import disabled, is_disabled
from ._table import register as register_fast
from ._table import unregister as unregister_fast

__all__ = ["call", "disabled", "gradient_impls", "register_fast", "unregister_fast", "wanted"]


def _module(value: object) -> str:
    return type(value).__module__.split(".", 1)[0]


def wanted(*arrays: object) -> bool:
    """Whether a call with these arguments must go through a gradient rule.

    True for a PyTorch tensor that requires grad while grad mode is on, and for any JAX array
    (a tracer gets the rule, a concrete array one compiled program); False inside a rule's
    own primal computation.
    """
    if is_disabled():
        return False
    for a in arrays:
        if a is None or isinstance(a, (bool, int, float)):
            continue
        kind = _module(a)
        if kind == "torch":
            if getattr(a, "requires_grad", False):
                import torch

                if torch.is_grad_enabled():
                    return True
        elif kind in ("jax", "jaxlib"):
            return True
    return False


def call(name: str, fn: Callable[..., Any], *args: Any, **opts: Any) -> Any:
    """Run public function ``fn`` (named ``name``) on ``args`` through its gradient rule."""
    from ._rules import RULES

    rule = RULES[name]
    if any(_module(a) == "torch" for a in args if a is not None):
        from . import _torch

        return _torch.apply(rule, fn, args, opts)
    from . import _jax

    if _jax.any_tracer(args):
        return _jax.apply(rule, fn, args, opts)
    return _jax.compiled(rule, fn, args, opts)


def gradient_impls(function_name: str) -> dict[str, Callable[..., Any]]:
    """Gradient implementations of one function, for the audit (``stablenn audit --grad``).

    See ``stablenn._autodiff._impls.gradient_impls``.
    """
    from ._impls import gradient_impls as impls

    return impls(function_name)
