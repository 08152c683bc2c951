"""JAX glue: each call builds a ``jax.custom_jvp`` around the rule's primal and JVP.

``custom_jvp`` (not ``custom_vjp``) so that forward mode works too; reverse mode comes from
JAX transposing the rule's tangent map, which is linear in the tangents.  The primal is
the public function itself with the routing switched off, so a call under ``jit`` or
``vmap`` without differentiation gives the same values as before.  Tangents of inputs that
are not differentiated arrive as symbolic zeros and cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from . import _rules
from ._rules import Rule
from ._state import disabled


def _is_array(value: Any) -> bool:
    return value is not None and not isinstance(value, (bool, int, float)) and hasattr(value, "dtype")


def apply(rule: Rule, fn: Callable[..., Any], args: tuple[Any, ...], opts: dict[str, Any]) -> Any:
    dynamic = [i for i, a in enumerate(args) if _is_array(a)]
    static = list(args)

    def merge(values: tuple[Any, ...]) -> list[Any]:
        # JAX may hand the rule NumPy primals (e.g. when a caller's inputs were NumPy arrays):
        # make them JAX arrays so that the public function sees one library
        out = list(static)
        for i, v in zip(dynamic, values):
            out[i] = jnp.asarray(v)
        return out

    @jax.custom_jvp
    def f(*values: Any) -> Any:
        with disabled():
            return rule.plain(fn, merge(values), opts)

    def f_jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        with disabled():
            full = merge(primals)
            xp = jnp  # JAX's namespace is array-API compatible
            ts: list[Any] = [None] * len(args)
            for i, t in zip(dynamic, tangents):
                if not isinstance(t, SymbolicZero) and xp.isdtype(full[i].dtype, "real floating"):
                    ts[i] = t
            rule.check(full, lambda a: any(a is full[i] and ts[i] is not None for i in dynamic))
            # the primal through f itself: differentiating this rule again (second order)
            # then uses the rule, never the forward kernel's own operations
            out = f(*primals)
            return rule.jvp(xp, out, full, ts, {**opts, "_linear": _linear})

    f.defjvp(f_jvp, symbolic_zeros=True)
    return f(*(args[i] for i in dynamic))


def any_tracer(args: tuple[Any, ...]) -> bool:
    return any(isinstance(a, jax.core.Tracer) for a in args)


_COMPILED: dict[tuple[Any, ...], Callable[..., Any]] = {}


def compiled(rule: Rule, fn: Callable[..., Any], args: tuple[Any, ...], opts: dict[str, Any]) -> Any:
    """The public function on concrete JAX arrays, as one ``jax.jit`` program.

    The same values as the function run op by op (XLA compiles the same operations), without
    a dispatch, and a compilation for every new shape, per operation: a float64 weighted
    logsumexp took 8 s on its first call and 70 ms on later ones, one program 2 s and 1 ms.
    One jitted callable per function, non-array arguments and options (JAX then compiles
    once per shape and dtype); options that cannot be hashed run without the cache.
    """
    dynamic = [i for i, a in enumerate(args) if _is_array(a)]
    static = [None if i in dynamic else a for i, a in enumerate(args)]
    key: tuple[Any, ...] | None = (rule.name, fn, tuple(static), tuple(dynamic), tuple(sorted(opts.items())))
    try:
        program = _COMPILED.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable option
        program, key = None, None
    if program is None:

        def run(*values: Any) -> Any:
            full = list(static)
            for i, v in zip(dynamic, values):
                full[i] = v
            with disabled():
                return rule.plain(fn, full, opts)

        program = jax.jit(run)
        if key is not None:
            _COMPILED[key] = program
    return program(*(args[i] for i in dynamic))


def _linear(name: str, p: Any, big_r: Any, masked: Any, t: Any) -> Any:
    """softmax / log_softmax tangent map ``t -> J t`` whose transpose is ``normalise_vjp``.

    JAX derives reverse mode by transposing the tangent map operation by operation, and the
    order in which it then adds the contributions of ``t``'s three uses is its own: the
    diagonal ``p_i (1 - p_i)`` of a saturated softmax came out as 0.  Wrapping the map in
    ``lax.custom_linear_solve`` (the identity as "matrix", our map as the "solve") makes JAX
    call our own transpose instead.  The primal inputs enter it with their gradient stopped;
    their derivative (needed for second order) comes from a term that is exactly 0 in value
    (``d = p - stop_gradient(p)``), so it adds nothing to the first-order results.
    """
    ps, rs = lax.stop_gradient(p), lax.stop_gradient(big_r)
    main = lax.custom_linear_solve(
        lambda v: v,
        t,
        solve=lambda _, b: _rules.normalise_jvp(jnp, name, ps, rs, masked, b),
        transpose_solve=lambda _, c: _rules.normalise_vjp(jnp, name, ps, rs, masked, c),
    )
    d = p - ps
    return main + _rules.normalise_jvp_dp(jnp, name, ps, d, t)
