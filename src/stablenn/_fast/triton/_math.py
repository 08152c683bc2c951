"""Device functions shared by the Triton kernels: exp, expm1, log1p and the dtype plumbing.

Every function is plain arithmetic, comparisons and bit manipulation, so that the code the
GPU runs is the code ``TRITON_INTERPRET=1`` runs on the CPU (the interpreter has no
libdevice, and ``tl.exp`` on float32 lowers to an approximate ``ex2.approx``).  Each takes a
constexpr ``WIDE``: True computes in float64 (the kernels use it for float32 data, whose
1-ULP budget needs more than float32 arithmetic), False in float32 (for float16 and
bfloat16 data, whose budget float32 meets with a wide margin).

Accuracy, relative, before the final rounding to the data's dtype (checked against mpmath
by ``tests/test_triton_kernels.py``):

- ``exp_neg`` (argument <= 0): float64 1e-13 (results below 1e-304 flushed to 0), float32
  5e-7; ``expm1_neg``: float64 1e-12, float32 1e-6;
- ``log1p_pos`` (argument >= 0): float64 1.5e-12 (2**-39), float32 5e-7.

float64 arithmetic with these errors leaves a float32 result within 1 ULP: the rounding to
float32 (2**-24) dominates them by a factor of 2**15 or more; float32 arithmetic leaves a
float16 or bfloat16 result (2**-11, 2**-8) within 1 ULP likewise.

FMA contraction (enabled on the GPU, absent in the interpreter) only removes roundings from
these formulas: none of them relies on a product being rounded.
"""

from __future__ import annotations

import triton
import triton.language as tl

# float64: Cody-Waite split of ln 2 (ln2_hi has 32 trailing zero bits, so k * ln2_hi is exact
# for |k| < 2**21) and the round-to-integer constant 1.5 * 2**52.
_LN2_HI_64 = tl.constexpr(6.93147180369123816490e-01)
_LN2_LO_64 = tl.constexpr(1.90821492927058770002e-10)
_MAGIC_64 = tl.constexpr(6755399441055744.0)
# float32: ln2_hi has 16 significant bits (k * ln2_hi exact for |k| < 2**8); 1.5 * 2**23.
_LN2_HI_32 = tl.constexpr(0.693145751953125)
_LN2_LO_32 = tl.constexpr(1.428606820309417232e-06)
_MAGIC_32 = tl.constexpr(12582912.0)
_LOG2E = tl.constexpr(1.4426950408889634)
# eighths of ln 2 for the float64 exp (ln2_hi / 8 keeps 21 trailing zero bits)
_EIGHT_LOG2E = tl.constexpr(11.541560327111707)
_LN2_8_HI = tl.constexpr(0.08664339754614048)
_LN2_8_LO = tl.constexpr(2.3852686615882346e-11)


@triton.jit
def _scale_pow2(p, k, WIDE: tl.constexpr):
    """``p * 2**k`` for integer ``k`` in [-1080, 0] (float64) or [-152, 0] (float32).

    Two factors, each a normal power of two built from its exponent bits, so that a result
    below the normal range is rounded once, by the second product, to the right subnormal.
    """
    k1 = k >> 1
    k2 = k - k1
    if WIDE:
        s1 = ((k1 + 1023).to(tl.int64) << 52).to(tl.float64, bitcast=True)
        s2 = ((k2 + 1023).to(tl.int64) << 52).to(tl.float64, bitcast=True)
    else:
        s1 = ((k1 + 127) << 23).to(tl.float32, bitcast=True)
        s2 = ((k2 + 127) << 23).to(tl.float32, bitcast=True)
    return p * s1 * s2


@triton.jit
def _reduce_ln2(d, WIDE: tl.constexpr):
    """``d = k ln2 + r`` with integer ``k`` and ``|r| <= ln2 / 2`` (Cody and Waite)."""
    if WIDE:
        t = d * _LOG2E + _MAGIC_64  # rounds d / ln2 to an integer held in the low bits
        kf = t - _MAGIC_64
        k = (t.to(tl.int64, bitcast=True) - 0x4338000000000000).to(tl.int32)
        r = (d - kf * _LN2_HI_64) - kf * _LN2_LO_64
    else:
        t = d * _LOG2E + _MAGIC_32
        kf = t - _MAGIC_32
        k = t.to(tl.int32, bitcast=True) - 0x4B400000
        r = (d - kf * _LN2_HI_32) - kf * _LN2_LO_32
    return k, r


@triton.jit
def _expm1_poly(r, WIDE: tl.constexpr):
    """``e**r - 1`` for ``|r| <= ln2 / 2``: the Taylor polynomial of degree 10 (float64,
    remainder below 2**-42 of the result) or 6 (float32, below 2**-23)."""
    if WIDE:
        q = 2.7557319223985893e-07  # 1/10!
        q = q * r + 2.7557319223985888e-06
        q = q * r + 2.4801587301587302e-05
        q = q * r + 1.9841269841269841e-04
        q = q * r + 1.3888888888888889e-03
        q = q * r + 8.3333333333333332e-03
        q = q * r + 4.1666666666666664e-02
        q = q * r + 1.6666666666666666e-01
        q = q * r + 0.5
        q = q * r + 1.0
    else:
        q = 1.3888888888888889e-03  # 1/6!
        q = q * r + 8.3333333333333332e-03
        q = q * r + 4.1666666666666664e-02
        q = q * r + 1.6666666666666666e-01
        q = q * r + 0.5
        q = q * r + 1.0
    return q * r


@triton.jit
def _exp_neg_wide(d):
    """float64 ``e**d`` for ``-700 <= d <= 0`` (the caller flushes smaller ``d`` to 0).

    e^d = 2^k 2^(j/8) e^r with n = 8k + j the integer nearest 8 d / ln2 and |r| <= ln2/16:
    the three bits of j pick 2^(1/2), 2^(1/4), 2^(1/8) with selects (no table, no memory
    access), and e^r needs only the Taylor polynomial of degree 6 (remainder 2**-44).
    About 14 float64 operations, against 19 for the reduction to |r| <= ln2/2.
    """
    t = d * _EIGHT_LOG2E + _MAGIC_64
    nf = t - _MAGIC_64
    n = (t.to(tl.int64, bitcast=True) - 0x4338000000000000).to(tl.int32)
    r = (d - nf * _LN2_8_HI) - nf * _LN2_8_LO  # nf * ln2_hi/8 is exact (|nf| < 2**13)
    q = 1.3888888888888889e-03  # 1/6!
    q = q * r + 8.3333333333333332e-03
    q = q * r + 4.1666666666666664e-02
    q = q * r + 1.6666666666666666e-01
    q = q * r + 0.5
    q = q * r + 1.0
    p = q * r  # e^r - 1
    j = n & 7
    one = tl.full((), 1.0, tl.float64)  # float64 operands: a bare Python float would be float32
    c = tl.where((j & 4) != 0, tl.full((), 1.4142135623730951, tl.float64), one)
    c = c * tl.where((j & 2) != 0, tl.full((), 1.189207115002721, tl.float64), one)
    c = c * tl.where((j & 1) != 0, tl.full((), 1.0905077326652577, tl.float64), one)
    k = n >> 3  # floor(n / 8), >= -1010: 2^k is normal
    scale = ((k + 1023).to(tl.int64) << 52).to(tl.float64, bitcast=True)
    return (c + c * p) * scale


@triton.jit
def exp_neg(d, WIDE: tl.constexpr):
    """``e**d`` for ``d <= 0``, including ``-inf`` (gives 0); NaN gives NaN.

    float64 (``WIDE``): results below e^-700 (1e-304) are returned as 0, far below every
    float32 result (the smallest is 1.4e-45) and every sum they could join.  float32:
    results in the subnormal range are kept (bfloat16 has subnormals down to 9.2e-41).
    """
    # the argument reduction keeps the polynomial's argument small, and the power of two is
    # exact; exp never overflows
    if WIDE:
        low = d < -700.0
        res = _exp_neg_wide(tl.maximum(d, -700.0))
    else:
        low = d < -104.0  # e^-103.98 = 2**-150 rounds to 0 in float32
        dc = tl.maximum(d, -110.0)
        k, r = _reduce_ln2(dc, WIDE)
        res = _scale_pow2(_expm1_poly(r, WIDE) + 1.0, k, WIDE)
    res = tl.where(low, 0.0, res)
    return tl.where(d != d, d, res)


@triton.jit
def expm1_neg(d, WIDE: tl.constexpr):
    """``e**d - 1`` for ``d <= 0`` (``-inf`` gives -1), relatively accurate near 0."""
    # k == 0 (|d| <= ln2/2): the polynomial is e^d - 1 itself, no cancellation.  Otherwise
    # e^d <= 0.71 and 2^k (1 + q) - 1 loses at most one bit.
    if WIDE:
        dc = tl.maximum(d, -760.0)
    else:
        dc = tl.maximum(d, -110.0)
    k, r = _reduce_ln2(dc, WIDE)
    q = _expm1_poly(r, WIDE)
    big = _scale_pow2(q + 1.0, k, WIDE) - 1.0
    res = tl.where(k == 0, q, big)
    return tl.where(d != d, d, res)


@triton.jit
def log1p_pos(u, WIDE: tl.constexpr):
    """``log(1 + u)`` for ``u >= 0`` (``+inf`` gives ``+inf``), relatively accurate near 0."""
    # w = 1 + u rounded; c = u - (w - 1) is its exact rounding error, so
    # log1p(u) = log(w) + c / w to first order: the correction keeps the digits of a tiny u
    # that 1 + u rounds away.  It needs few digits of its own (c is below half an ulp of w):
    # c (2 - w) for w < 2 is off by c (w - 1)^2 / w, and 0 for w >= 2 by less than 2**-53 of
    # log w, far below the series' error, and neither divides.
    # With w = 2^k f, f in [sqrt(1/2), sqrt(2)): log f = 2 atanh(s), s = (f - 1)/(f + 1),
    # |s| <= 0.172, whose odd series converges fast; f - 1 is exact (Sterbenz).
    w = 1.0 + u
    corr = tl.where(w < 2.0, (u - (w - 1.0)) * (2.0 - w), 0.0)
    if WIDE:
        bits = w.to(tl.int64, bitcast=True)
        e = ((bits >> 52) - 1023).to(tl.int32)
        mant = bits & 0x000FFFFFFFFFFFFF
        big = mant > 0x6A09E667F3BCD  # mantissa bits of sqrt(2)
        fbits = mant | tl.where(big, 0x3FE0000000000000, 0x3FF0000000000000)
        f = fbits.to(tl.float64, bitcast=True)
        k = (e + big.to(tl.int32)).to(tl.float64)
        s = (f - 1.0) / (f + 1.0)
        z = s * s
        rr = 0.15384615384615385  # 2/13
        rr = rr * z + 0.18181818181818182
        rr = rr * z + 0.2222222222222222
        rr = rr * z + 0.2857142857142857
        rr = rr * z + 0.4
        rr = rr * z + 0.6666666666666666
        log_f = 2.0 * s + s * (rr * z)
        res = k * _LN2_HI_64 + (log_f + (corr + k * _LN2_LO_64))
    else:
        bits = w.to(tl.int32, bitcast=True)
        e = (bits >> 23) - 127
        mant = bits & 0x007FFFFF
        big = mant > 0x3504F3  # mantissa bits of sqrt(2)
        fbits = mant | tl.where(big, 0x3F000000, 0x3F800000)
        f = fbits.to(tl.float32, bitcast=True)
        k = (e + big.to(tl.int32)).to(tl.float32)
        s = (f - 1.0) / (f + 1.0)
        z = s * s
        rr = 0.2857142857142857  # 2/7
        rr = rr * z + 0.4
        rr = rr * z + 0.6666666666666666
        log_f = 2.0 * s + s * (rr * z)
        res = k * _LN2_HI_32 + (log_f + (corr + k * _LN2_LO_32))
    res = tl.where(u == float("inf"), u, res)
    return tl.where(u != u, u, res)


# ---------------------------------------------------------------- loads and stores
# IN_KIND: 0 float32, 1 float16, 2 bfloat16 (passed to the kernel as an int16 view: the
# conversions are written out in integer arithmetic, exact and rounded to nearest even,
# identical on the GPU and in the interpreter, whose own bfloat16 casts truncate).


@triton.jit
def load_ct(ptr, mask, fill, IN_KIND: tl.constexpr):
    """Load and widen to the compute type (float64 for float32 data, else float32);
    masked lanes get ``fill``."""
    if IN_KIND == 2:
        raw = tl.load(ptr, mask=mask, other=0)
        x = (raw.to(tl.int32) << 16).to(tl.float32, bitcast=True)
    elif IN_KIND == 1:
        x = tl.load(ptr, mask=mask, other=0.0).to(tl.float32)
    else:
        x = tl.load(ptr, mask=mask, other=0.0).to(tl.float64)
    return tl.where(mask, x, fill)


@triton.jit
def load_scalar_ct(ptr, IN_KIND: tl.constexpr):
    """One value of the data's dtype, widened to the compute type."""
    if IN_KIND == 2:
        return (tl.load(ptr).to(tl.int32) << 16).to(tl.float32, bitcast=True)
    elif IN_KIND == 1:
        return tl.load(ptr).to(tl.float32)
    else:
        return tl.load(ptr).to(tl.float64)


@triton.jit
def to_out(v, IN_KIND: tl.constexpr):
    """Round a compute-type value once to the data's dtype (bfloat16 as int16 bits)."""
    if IN_KIND == 2:
        bits = v.to(tl.int32, bitcast=True)
        nan = (bits & 0x7FFFFFFF) > 0x7F800000
        rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16  # round to nearest, ties to even
        out = tl.where(nan, (bits >> 16) | 0x40, rounded)
        return out.to(tl.int16)
    elif IN_KIND == 1:
        return v.to(tl.float16)
    else:
        return v.to(tl.float32)
