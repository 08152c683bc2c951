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

from .._namespace import Array, Namespace

_SPLITTER = 134217729.0  # 2**27 + 1 splits a float64 into two 26-bit halves
_BIG = 2.0**995  # above this, SPLITTER * a would overflow: scale down first
_DOWN = 2.0**-28
_UP = 2.0**28


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """``s + e == a + b`` exactly, with ``s = fl(a + b)`` (Knuth, any magnitudes)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def fast_two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """``s + e == a + b`` exactly when ``|a| >= |b|`` (or a == 0) (Dekker)."""
    s = a + b
    e = b - (s - a)
    return s, e


def split(xp: Namespace, a: Array, guard: bool = True) -> tuple[Array, Array]:
    """Veltkamp split: ``a == hi + lo`` with both halves of at most 26 significant bits.

    ``guard=False`` skips the rescaling of huge values when the caller knows ``|a| < 2**995``.
    """
    if not guard:
        t = _SPLITTER * a
        hi = t - (t - a)
        return hi, a - hi
    big = xp.abs(a) > _BIG
    a_s = xp.where(big, a * _DOWN, a)
    t = _SPLITTER * a_s
    hi = t - (t - a_s)
    lo = a_s - hi
    hi = xp.where(big, hi * _UP, hi)
    lo = xp.where(big, lo * _UP, lo)
    return hi, lo


def two_prod(xp: Namespace, a: Array, b: Array, guard: bool = True) -> tuple[Array, Array]:
    """``p + e == a * b`` exactly (barring underflow), ``p = fl(a * b)`` (Dekker)."""
    p = a * b
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
