"""``jax.numpy`` with float64 ``exp``, ``expm1`` and ``log1p`` that round like NumPy's.

XLA's own float64 versions on the CPU are up to 1 ULP (exp), 3 ULP (expm1) and 126 ULP
(log1p of a negative argument) from the correctly rounded result, measured against mpmath;
composed in the kernels that is 2 to 93 ULP (sigmoid at -19, logit at 0.37).  Here:

* ``exp(a)``: the double-double `_dd.exp_parts` (relative error ~2**-58), rounded once;
* ``expm1(a)``: the double-double ``exp(a) - 1`` (its subtraction of 1 is exact in
  double-double) or, for ``|a| <= 0.35``, the series of `_dd._expm1_small`;
* ``log1p(q)``: ``log(u) + (q - (u - 1)) / u`` with ``u = fl(1 + q)``: the rounding of
  ``1 + q`` is recovered exactly and passed through log's derivative ``1/u``, so only the
  (correctly rounded in practice) ``log`` is trusted.

Other dtypes and every other function are jax.numpy's own.  `stablenn._namespace.namespace`
hands this namespace to the kernels for JAX arrays.

Two double-double reductions are offered to the kernels as well (``segment_sums_dd``,
``sum_dd``): written with ``jax.lax`` primitives instead of the strided slices and
concatenations of `_dd.sum_last` and the Hillis-Steele scan of
`stablenn._kernels.reductions.signed_sum`.  XLA fuses those slices into their consumers and
recomputes each producer once per use at every level, so the run time of a jitted weighted
logsumexp grew exponentially with the length (16 entries: 1 ms, 32: over 100 s).
"""

from __future__ import annotations

from typing import Any, cast

from ._kernels import _dd

__all__: list[str] = []


class AccurateJax:
    """A proxy of ``jax.numpy`` (every attribute delegated) with accurate float64 exp, expm1, log1p."""

    def __init__(self, jnp: Any) -> None:
        self._jnp = jnp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jnp, name)

    def __repr__(self) -> str:
        return "<jax.numpy with accurate float64 exp, expm1, log1p (stablenn)>"

    def _is64(self, x: Any) -> bool:
        return getattr(x, "dtype", None) == self._jnp.float64

    def exp(self, x: Any, /) -> Any:
        jnp = self._jnp
        if not self._is64(x):
            return jnp.exp(x)
        finite = jnp.isfinite(x)
        xs = jnp.where(finite, x, 0.0)
        e_hi, e_lo = _dd.exp_parts(jnp, xs)
        e = e_hi + e_lo
        e = jnp.where(xs > 709.782712893384, jnp.inf, e)  # above log(max float64)
        return jnp.where(finite, e, jnp.exp(x))

    def expm1(self, x: Any, /) -> Any:
        jnp = self._jnp
        if not self._is64(x):
            return jnp.expm1(x)
        finite = jnp.isfinite(x)
        xs = jnp.where(finite, x, 0.0)
        small = jnp.abs(xs) <= 0.35
        m_hi, m_lo = _dd._expm1_small(jnp, jnp.where(small, xs, 0.0), jnp.zeros_like(xs))
        e_hi, e_lo = _dd.exp_parts(jnp, jnp.where(small, 0.0, xs))
        d_hi, d_lo = _dd.two_sum(e_hi, -jnp.ones_like(e_hi))
        big = jnp.where(xs > 709.782712893384, jnp.inf, d_hi + (d_lo + e_lo))
        r = jnp.where(small, m_hi + m_lo, big)
        return jnp.where(finite, r, jnp.expm1(x))

    def log1p(self, x: Any, /) -> Any:
        jnp = self._jnp
        if not self._is64(x):
            return jnp.log1p(x)
        u = 1.0 + x
        safe_u = jnp.where((u > 0) & jnp.isfinite(u), u, 1.0)
        r = jnp.log(safe_u) + (x - (safe_u - 1.0)) / safe_u
        # u == 0 (x = -1): -inf; x < -1, NaN: NaN; x = +inf: inf (jax.numpy's own log1p)
        return jnp.where((u > 0) & jnp.isfinite(u), r, jnp.log1p(x))

    # ------------------------------------------------------------ double-double reductions

    def segment_sums_dd(self, start: Any, hi: Any) -> tuple[Any, Any]:
        """Inclusive double-double sums of ``hi`` over runs along the last axis.

        ``start`` marks the first entry of each run.  ``jax.lax.associative_scan`` with the
        segmented operator ``(f1, v1) + (f2, v2) = (f1 | f2, v2 if f2 else v1 + v2)``, the
        sums in double-double (TwoSum, then Fast2Sum of the carried low parts).
        """
        from jax import lax

        jnp = self._jnp

        def combine(a: Any, c: Any) -> Any:
            fa, ah, al = a
            fc, ch, cl = c
            h, lo = _dd.add(ah, al, ch, cl)
            return fa | fc, jnp.where(fc, ch, h), jnp.where(fc, cl, lo)

        _, g_hi, g_lo = lax.associative_scan(combine, (start, hi, jnp.zeros_like(hi)), axis=hi.ndim - 1)
        return g_hi, g_lo

    def sum_dd(self, hi: Any, lo: Any) -> tuple[Any, Any]:
        """Double-double sum of ``hi + lo`` over the last axis: one ``jax.lax.reduce``.

        The reducer adds two double-doubles (TwoSum, Fast2Sum); XLA may combine the entries in
        any order, each order keeping the error near ``log2(n) u**2`` of the sum of magnitudes.
        A sum that overflows is ``+-inf`` with a low part of 0.
        """
        from jax import lax

        jnp = self._jnp

        zero = jnp.zeros((), hi.dtype)
        s_hi, s_lo = lax.reduce((hi, lo), (zero, zero), lambda a, c: _dd.add(*a, *c), (hi.ndim - 1,))
        overflow = jnp.isinf(s_hi) | jnp.isnan(s_hi)
        inf_sum = jnp.sum(hi, axis=-1)
        return cast(Any, jnp.where(overflow, inf_sum, s_hi)), cast(Any, jnp.where(overflow, 0.0, s_lo))
