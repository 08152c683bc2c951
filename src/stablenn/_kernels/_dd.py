"""Error-free transformations and double-double arithmetic in any array namespace.

A double-double value is a pair ``(hi, lo)`` with ``hi + lo`` the represented number and
``|lo| <= ulp(hi) / 2``.  The building blocks are Knuth's TwoSum, Dekker's Fast2Sum and
Dekker's product with Veltkamp splitting; none needs a fused multiply-add, so they work on
every backend.  They assume finite operands: callers replace non-finite values first and
patch the special cases afterwards ("double where").

Reference: T. J. Dekker, "A floating-point technique for extending the available precision",
Numer. Math. 18 (1971), doi:10.1007/BF01397083.
"""

from __future__ import annotations

import math

from .._namespace import Array, Namespace

_SPLITTER = 134217729.0  # 2**27 + 1 splits a float64 into two 26-bit halves
_BIG = 2.0**995  # above this, SPLITTER * a would overflow: scale down first
_DOWN = 2.0**-28
_UP = 2.0**28


def _pin(*arrays: Array) -> tuple[Array, ...]:
    """The operands of an error-free transformation, hidden from XLA's algebraic simplifier.

    Under ``jax.jit`` XLA reassociates constants: in TwoSum or Fast2Sum with a constant first
    operand ``c``, ``(c + b) - c`` becomes ``b`` and the error term comes out 0 (jitted
    float64 sigmoid, logit, sigmoid_grad were 2 ULP off and tanh_grad 3 for that; our
    double-double exps fell from 2**-60 and 2**-100 to 2**-53).  Passing the operands
    through ``jax.lax.optimization_barrier`` keeps the simplifier from seeing through them.
    On NumPy, PyTorch, CuPy and Dask the arrays come back unchanged.

    XLA's CPU pipeline drops the barriers before fusion, so they do not stop its other
    rewrite: see `_product`.
    """
    for a in arrays:
        if type(a).__module__.startswith("jax"):
            import jax

            return tuple(jax.lax.optimization_barrier(arrays))
    return arrays


def _product(a: Array, b: Array) -> Array:
    """``fl(a * b)``, the same rounded value wherever XLA's fusion copies it.

    XLA lets LLVM contract a product into a following addition (an FMA, which does not round
    the product) and copies a product into each consumer's fusion, so Dekker's ``p = fl(a b)``
    could be the rounded product where it is returned and the exact one in ``ah bh - p``,
    where its error is recovered: jitted float64 tanh_grad was 2 ULP off at x = -0.922 for
    that (a double-double square's low part wrong by 7e-17 relative).  On JAX the product
    gets ``+ sign(p) * 0``: an FMA with that addend rounds once, to ``fl(a b)``, and the sum is
    no product for a later contraction.
    """
    p = a * b
    if type(p).__module__.startswith("jax"):
        import jax.numpy as jnp

        p = p + jnp.sign(p) * 0.0
    return p


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """``s + e == a + b`` exactly, with ``s = fl(a + b)`` (Knuth, any magnitudes)."""
    a, b = _pin(a, b)
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def fast_two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """``s + e == a + b`` exactly when ``|a| >= |b|`` (or a == 0) (Dekker)."""
    a, b = _pin(a, b)
    s = a + b
    e = b - (s - a)
    return s, e


def split(xp: Namespace, a: Array, guard: bool = True) -> tuple[Array, Array]:
    """Veltkamp split: ``a == hi + lo`` with both halves of at most 26 significant bits.

    ``guard=False`` skips the rescaling of huge values when the caller knows ``|a| < 2**995``.
    """
    if not guard:
        (t,) = _pin(_product(a, _SPLITTER))
        hi = t - (t - a)
        return hi, a - hi
    big = xp.abs(a) > _BIG
    a_s = xp.where(big, a * _DOWN, a)
    (t,) = _pin(_product(a_s, _SPLITTER))
    hi = t - (t - a_s)
    lo = a_s - hi
    hi = xp.where(big, hi * _UP, hi)
    lo = xp.where(big, lo * _UP, lo)
    return hi, lo


def two_prod(xp: Namespace, a: Array, b: Array, guard: bool = True) -> tuple[Array, Array]:
    """``p + e == a * b`` exactly (barring underflow), ``p = fl(a * b)`` (Dekker)."""
    a, b = _pin(a, b)
    (p,) = _pin(_product(a, b))
    ah, al = split(xp, a, guard)
    bh, bl = split(xp, b, guard)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def add(ah: Array, al: Array, bh: Array, bl: Array) -> tuple[Array, Array]:
    """Double-double sum."""
    s, e = two_sum(ah, bh)
    e = e + (al + bl)
    return fast_two_sum(s, e)


def mul(xp: Namespace, ah: Array, al: Array, bh: Array, bl: Array, guard: bool = True) -> tuple[Array, Array]:
    """Double-double product."""
    p, e = two_prod(xp, ah, bh, guard)
    e = e + (ah * bl + al * bh)
    return fast_two_sum(p, e)


def div(xp: Namespace, ah: Array, al: Array, bh: Array, bl: Array, guard: bool = True) -> tuple[Array, Array]:
    """Double-double quotient ``(ah + al) / (bh + bl)``, ``bh`` non-zero and finite."""
    q = ah / bh
    p, e = two_prod(xp, q, bh, guard)
    # remainder r = a - q*b, computed exactly up to the low-order terms
    r = ((ah - p) - e) + (al - q * bl)
    return fast_two_sum(q, r / bh)


def sum_last(xp: Namespace, hi: Array, lo: Array | None) -> tuple[Array, Array]:
    """Double-double sum over the last axis: a pairwise tree of TwoSums.

    Each level adds neighbouring pairs with TwoSum and carries the exact rounding errors in
    ``lo``; the error of the result is about ``log2(n) * eps**2`` relative to the sum of
    magnitudes, far below one rounding of the result.  An empty axis sums to ``(0, 0)``.
    """
    if lo is None:
        lo = xp.zeros_like(hi)
    n = hi.shape[-1]
    if n == 0:
        zero = xp.sum(hi, axis=-1)
        return zero, zero
    while n > 1:
        if n % 2:
            pad = xp.zeros_like(hi[..., :1])
            hi = xp.concat([hi, pad], axis=-1)
            lo = xp.concat([lo, pad], axis=-1)
            n += 1
        s, e = two_sum(hi[..., 0::2], hi[..., 1::2])
        lo = (lo[..., 0::2] + lo[..., 1::2]) + e
        hi = s
        n //= 2
    s, e = two_sum(hi[..., 0], lo[..., 0])
    # a sum that overflowed is +-inf (its error terms, inf - inf, are NaN: drop them)
    overflow = xp.isinf(hi[..., 0])
    return xp.where(overflow, hi[..., 0], s), xp.where(overflow, 0.0, e)


# ---------------------------------------------------------------- exp and log1p(exp) in double-double
#
# Relative error about 2**-58: enough to round a sum of products of them once (the losses),
# far cheaper than the 1e-30 `mergeable.exp_dd`.  Built from + - * / only.

_LN2_HI = 0.6931471805599453
_LN2_LO = 2.3190468138462996e-17
# 1/n! for n = 4.. 16: the tail of expm1 beyond its cubic term, in plain float64
_TAIL_COEF = [1.0 / math.factorial(n) for n in range(4, 17)]
_SIXTH_HI = 1.0 / 6.0
_SIXTH_LO = (1.0 - 6.0 * _SIXTH_HI) / 6.0  # 1/6 - fl(1/6), to 2**-110 (6 * fl(1/6) is exact)


def _expm1_small(xp: Namespace, r_hi: Array, r_lo: Array) -> tuple[Array, Array]:
    """``expm1(r_hi + r_lo)`` for ``|r| <= 0.36`` as a double-double, relative error ~2**-58.

    ``r + r**2/2 + r**3/6`` in double-double; the rest (at most 7e-4 of the result) in float.
    """
    q = _TAIL_COEF[-1] + xp.zeros_like(r_hi)
    for c in reversed(_TAIL_COEF[:-1]):
        q = q * r_hi + c
    r2_hi, r2_lo = two_prod(xp, r_hi, r_hi, guard=False)
    r2_lo = r2_lo + 2.0 * r_hi * r_lo
    r3_hi, r3_lo = mul(xp, r2_hi, r2_lo, r_hi, r_lo, guard=False)
    c3_hi, c3_lo = mul(xp, r3_hi, r3_lo, xp.full_like(r_hi, _SIXTH_HI), xp.full_like(r_hi, _SIXTH_LO), guard=False)
    rest = r2_hi * r2_hi * q  # r**4 (1/24 + r/120 + ...)
    s_hi, s_lo = add(r_hi, r_lo, 0.5 * r2_hi, 0.5 * r2_lo)
    s_hi, s_lo = add(s_hi, s_lo, c3_hi, c3_lo + rest)
    return s_hi, s_lo


def exp_parts(xp: Namespace, a: Array) -> tuple[Array, Array]:
    """``exp(a)`` for finite ``a`` (at most 709.79) as a double-double, relative error ~2**-58.

    ``a = k ln 2 + r`` (``k ln 2`` exact by Dekker's product, ``|r| <= 0.35``), ``exp(a) =
    2**k (1 + expm1(r))``, the power of two applied in two factors so that neither
    overflows nor underflows on its own.  Where ``exp(a)`` is subnormal the low part is
    lost (absolute error below 2**-1074); below -1000 the result is 0.
    """
    a = xp.clip(a, -1000.0, 709.8)
    k = xp.round(a * (1.0 / _LN2_HI))
    p_hi, p_lo = two_prod(xp, k, xp.full_like(k, _LN2_HI), guard=False)
    r_hi, r_lo = two_sum(a, -p_hi)
    r_lo = r_lo - p_lo - k * _LN2_LO
    r_hi, r_lo = fast_two_sum(r_hi, r_lo)
    m_hi, m_lo = _expm1_small(xp, r_hi, r_lo)
    e_hi, e_lo = add(xp.ones_like(m_hi), xp.zeros_like(m_hi), m_hi, m_lo)
    k1 = xp.floor(k * 0.5)
    s1 = 2.0**k1
    s2 = 2.0 ** (k - k1)
    return e_hi * s1 * s2, e_lo * s1 * s2


def log1p_exp(xp: Namespace, a: Array) -> tuple[Array, Array]:
    """``log1p(exp(a))`` (softplus of ``a``) for finite ``a <= 0`` as a double-double,
    relative error ~2**-57.

    ``t0 = log1p(e)`` in float, then one Newton step on ``expm1(t) = e``:
    ``t = t0 + (e - expm1(t0)) / (1 + expm1(t0))`` with both ``e`` and ``expm1(t0)`` in
    double-double (``t0 <= ln 2``: ``expm1(t0) = 2**j (1 + expm1(t0 - j ln 2)) - 1``, j in
    {0, 1}), so the result no longer depends on the rounding of the platform's exp or log1p.
    """
    e_hi, e_lo = exp_parts(xp, a)
    t0 = xp.log1p(e_hi)
    j = xp.where(t0 > 0.5 * _LN2_HI, xp.ones_like(t0), xp.zeros_like(t0))
    r_hi, r_lo = two_sum(t0, -j * _LN2_HI)
    r_lo = r_lo - j * _LN2_LO
    m_hi, m_lo = _expm1_small(xp, r_hi, r_lo)
    # j = 1: expm1(t0) = 2 (1 + m) - 1 = 1 + 2 m
    f = 1.0 + j
    mm_hi, mm_lo = add(j, xp.zeros_like(j), f * m_hi, f * m_lo)
    d_hi, d_lo = add(e_hi, e_lo, -mm_hi, -mm_lo)
    step = (d_hi + d_lo) / (1.0 + mm_hi)
    return fast_two_sum(t0, step)
