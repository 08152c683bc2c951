"""Every Numba-compiled function of the CPU fast paths, in one module.

One module on purpose: Numba's on-disk cache is invalidated by changes to the file that
defines a kernel, not by changes to the helpers it calls, so helpers and kernels live
together and any edit recompiles everything.

Building blocks
---------------
``_exp_dd(d)``, ``d <= 0``
    ``exp(d)`` as an unevaluated pair ``hi + lo`` with relative error below ``2**-60``
    (about 1/128 of an ULP; measured against mpmath in ``tests/test_fast_cpu_math.py``).
    Range reduction ``d = (128 e + j) ln2/128 + r``, ``|r| <= ln2/256``, with ``ln2/128``
    split so that ``k * C_HI`` is exact (33 bits times ``|k| < 2**18``) and ``d - k C_HI``
    is exact by Sterbenz's lemma; ``2**(j/128)`` from a table of double-double values; a
    degree-5 Taylor polynomial, whose remainder ``|r|**6/6! < 2**-60.7``.  The sum
    ``T_hi + (T_hi p + T_lo)`` is split exactly by Fast2Sum, so the caller gets the
    rounding error of the last addition back instead of losing it.
``_exp_f(d)``, ``d <= 0``
    For results rounded to float32 at the end: no table, ``|r| <= ln2/2`` and a degree-9
    Chebyshev interpolant; relative error below ``2**-45``.
``_log1p_dd(e)``, ``0 <= e <= 1`` (and ``_log1p_f``, the same without low parts, 2**-50)
    ``log1p(e)`` as ``hi + lo`` with relative error below ``2**-60``: ``s = 1 + e`` exactly
    (Fast2Sum), ``s = c / INV_j * (1 + t)`` with ``INV_j ~ 1/s`` of 9 fractional bits, so
    that ``t = s INV_j - 1`` is exact in one fused multiply-add (``|t| < 2**-8``); then
    ``log s = -log INV_j + log1p(t)``, the table in double-double and ``log1p(t)`` by a
    degree-8 polynomial (remainder below ``2**-64`` relative).

Every loop that should run in SIMD registers keeps ``L`` independent accumulators
("lanes") in a small array, so that the compiler vectorises it without reassociating
floating-point sums (which would break TwoSum); the lane partials are combined at the end
of each block, exactly.  ``_prefer_512`` asks LLVM for 512-bit vectors where the CPU has
AVX-512 (LLVM prefers 256 bits there by default; measured 30% faster on the exp loops).
"""

from __future__ import annotations

import decimal
import math
import os
import tempfile
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# ------------------------------------------------------------------ compilation and cache

_JIT_OPTIONS: dict[str, Any] = {
    "error_model": "numpy",  # no ZeroDivisionError checks: IEEE semantics
    "fastmath": {"contract"},  # fused multiply-add only: never reassociates, keeps NaN and inf
    "nogil": True,
}


def _fallback_cache_dir() -> str:
    uid = getattr(os, "getuid", lambda: 0)()
    return os.path.join(tempfile.gettempdir(), f"stablenn-numba-cache-{uid}")


def jit(*args: Any, inline: str = "never") -> Any:
    """``numba.njit`` with the cache on; a writable cache directory is found if needed.

    Numba caches next to this file (``__pycache__``) or in the user's cache directory;
    where neither is writable (a read-only site-packages and home), the cache goes to a
    per-user temporary directory instead of failing.
    """

    def decorate(func: Any) -> Any:
        options = dict(_JIT_OPTIONS, inline=inline, cache=True)
        try:
            return numba.njit(**options)(func)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            saved = numba.config.CACHE_DIR
            numba.config.CACHE_DIR = _fallback_cache_dir()
            try:
                return numba.njit(**options)(func)
            finally:
                numba.config.CACHE_DIR = saved

    if args and callable(args[0]):
        return decorate(args[0])
    return decorate


def _host_has_avx512() -> bool:
    try:
        import llvmlite.binding as llvm

        return "+avx512f" in llvm.get_host_cpu_features().flatten()
    except Exception:  # pragma: no cover - feature query unavailable
        return False


_AVX512 = _host_has_avx512()


@intrinsic
def _prefer_512(typingctx: Any) -> Any:
    """Mark the calling function ``"prefer-vector-width"="512"`` (AVX-512 hosts only)."""
    sig = types.none()

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        if _AVX512:
            # llvmlite validates attribute names against a fixed list; a string attribute
            # is valid LLVM IR, so it is added to the underlying set directly.
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _as_int(typingctx: Any, x: Any) -> Any:
    """The bits of a float64 as an int64."""
    sig = types.int64(types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` with one rounding (the hardware instruction)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _ldexp(typingctx: Any, x: Any, e: Any) -> Any:
    """``x * 2**e`` rounded once (subnormal results included): LLVM's ``ldexp``, one
    ``vscalefpd`` instruction on AVX-512."""
    sig = types.float64(types.float64, types.int32)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.ldexp.f64.i32")
        return builder.call(fn, args)

    return sig, codegen


# ------------------------------------------------------------------ tables (exact, at import)

_D = decimal.Context(prec=60)


def _dd_of(value: decimal.Decimal) -> tuple[float, float]:
    hi = float(value)  # Decimal -> float is correctly rounded
    lo = float(_D.subtract(value, decimal.Decimal(hi)))
    return hi, lo


def _exp2_table(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``2**(j/n)`` for ``j = 0..n-1`` as double-double (hi, lo)."""
    hi = np.empty(n)
    lo = np.empty(n)
    for j in range(n):
        v = _D.power(decimal.Decimal(2), _D.divide(decimal.Decimal(j), decimal.Decimal(n)))
        hi[j], lo[j] = _dd_of(v)
    return hi, lo


def _log_table(n: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``j = 0..n``: ``INV_j`` = 1/(1 + j/n) rounded to ``bits`` fractional bits, and
    ``-log(INV_j)`` as double-double."""
    inv = np.empty(n + 1)
    hi = np.empty(n + 1)
    lo = np.empty(n + 1)
    for j in range(n + 1):
        c = 1.0 + j / n
        v = round((1.0 / c) * 2**bits) / 2**bits
        inv[j] = v
        hi[j], lo[j] = _dd_of(_D.minus(_D.ln(decimal.Decimal(v))))
    return inv, hi, lo


_EXP_N = 128
_EXP_T_HI, _EXP_T_LO = _exp2_table(_EXP_N)
_LOG_N = 256
_LOG_INV, _LOG_T_HI, _LOG_T_LO = _log_table(_LOG_N, 9)

# ln2/128 split: C_HI has 33 significant bits, so k * C_HI is exact for |k| < 2**20
_C_HI = 0.0054152123475432745
_C_LO = 5.812982117197185e-13
_INV_C = 184.6649652337873  # 128 / ln 2
_SHIFTER = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer in the low bits
_SHIFTER_BITS = 0x4338000000000000
# ln 2 in three pieces for the scalar exp of double-double arguments
_LN2_1 = 0.6931471803691238  # 32 significant bits
_LN2_2 = 1.9082149292705877e-10
_LN2_3 = 1.1612227229362532e-26
_INV_LN2 = 1.4426950408889634
_LN2 = 0.6931471805599453
_LN2_LO = 2.3190468138462996e-17

_INF = math.inf
# Indexing with an unsigned integer skips Numba's negative-index wraparound, which would
# otherwise turn every contiguous load of a vectorised loop into a gather.
_U = np.uintp

# The sum r of the non-maximal terms is kept scaled by 2**600, so that terms and sums in the
# subnormal range (exp(d) for d < -708) keep their relative precision; only the final log
# (``_log_cr``) scales back, rounding once.
_R_EXP = 600
_R_SCALE = 2.0**600
_R_UNSCALE = 2.0**-600

# A loss that overflows in some intermediate step (a weight times a softplus near the
# largest float, x - m beyond it, a label-smoothing sum) is computed again with every term
# scaled by 2**-64 (exact: a power of two) and scaled back once: the result is then inf
# only where the exact loss exceeds the format.
_RESCUE = 2.0**-64
_UNRESCUE = 2.0**64

# lanes per vectorised loop (8 AVX-512 registers of float64: enough independent chains to
# hide the latency of the TwoSum accumulation) and entries per block (16 KiB of float64)
L = 64
B = 2048


# ------------------------------------------------------------------ error-free transformations


@jit(inline="always")
def _two_sum(a: float, b: float) -> tuple[float, float]:
    # Knuth's TwoSum: s + e == a + b exactly, any magnitudes
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@jit(inline="always")
def _fast_two_sum(a: float, b: float) -> tuple[float, float]:
    # Dekker's Fast2Sum: exact when |a| >= |b| (or a == 0)
    s = a + b
    return s, b - (s - a)


@jit(inline="always")
def _dd_add(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    s, e = _two_sum(ah, bh)
    e = e + (al + bl)
    return _fast_two_sum(s, e)


@jit(inline="always")
def _dd_mul(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    p = ah * bh
    e = _fma(ah, bh, -p)  # the exact rounding error of the product
    e = e + (ah * bl + al * bh)
    return _fast_two_sum(p, e)


# ------------------------------------------------------------------ exp and log1p


@jit(inline="always")
def _exp_parts(d: float) -> tuple[float, float, Any]:
    # exp(d) = 2**e * (yh + yl), yh + yl = 2**(j/128) * exp(r) in [1, 2): see the module
    # docstring.  d <= 0; NaN propagates (the table index is masked, so garbage bits never
    # index out of range).
    d = -1000.0 if d < -1000.0 else d  # keeps k in range; exp(-1000) is 0 even scaled by 2**600
    t = d * _INV_C + _SHIFTER
    kf = t - _SHIFTER
    k = _as_int(t) - _SHIFTER_BITS
    r = d - kf * _C_HI  # exact
    r = r - kf * _C_LO
    j = k & (_EXP_N - 1)
    p = r + r * r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0))))
    th = _EXP_T_HI[j]
    q = th * p + _EXP_T_LO[j]
    yh = th + q
    yl = q - (yh - th)  # Fast2Sum: |th| >= |q|
    return yh, yl, np.int32(k >> 7)


@jit(inline="always")
def _exp_dd(d: float) -> tuple[float, float]:
    # one rounding, subnormal results included (the low part is then below resolution)
    yh, yl, e = _exp_parts(d)
    return _ldexp(yh, e), _ldexp(yl, e)


@jit(inline="always")
def _exp_f(d: float) -> float:
    # exp(d) to within 2**-45 relative, for values rounded to float32 later (which needs
    # 2**-25): no table, |r| <= ln2/2 and the degree-9 polynomial interpolating exp at the
    # Chebyshev points of that interval, max error 1.4e-14 (2.0e-14 relative) (coefficients
    # from mpmath.chebyfit(mpmath.exp, [-ln2/2, ln2/2], 10) at 200 bits).  d <= 0; NaN
    # propagates.
    d = -746.0 if d < -746.0 else d
    kf = (d * _INV_LN2 + _SHIFTER) - _SHIFTER
    r = d - kf * _LN2_1
    r = r - kf * _LN2_2
    p = 1.0000000000000135 + r * (1.0000000000000013 + r * (0.4999999999943859 + r * (0.16666666666615648 + r * (
        0.04166666704055191 + r * (0.008333333367311603 + r * (0.0013888801749656543 + r * (
            0.0001984119064754424 + r * (2.4884459751751116e-05 + r * 2.7632640675430236e-06))))))))
    return _ldexp(p, np.int32(kf))


@jit(inline="always")
def _recip12(d: float, steps: int) -> float:
    # 1/d for d in [1, 2] without a division (vdivpd costs 16 cycles per 8 lanes): the
    # linear minimax start 24/17 - 8/17 d (relative error 1/17) and Newton steps
    # y <- y + y (1 - d y), each squaring the error: 2 steps 2**-16, 3 steps 2**-32,
    # 4 steps below the last bit.
    y = 1.4117647058823530 - 0.47058823529411764 * d
    for _ in range(steps):
        y = _fma(y, _fma(-d, y, 1.0), y)
    return y


@jit(inline="always")
def _recip14(d: float) -> float:
    # 1/d for d in [1, 4] to about the last bit (4 Newton steps after an exact halving)
    big = d > 2.0
    y = _recip12(0.5 * d if big else d, 4)
    return 0.5 * y if big else y


@jit(inline="always")
def _log1p_dd(e: float) -> tuple[float, float]:
    # log1p(e) for 0 <= e <= 1 as hi + lo: see the module docstring.
    sh, sl = _fast_two_sum(1.0, e)  # s = 1 + e exactly, 1 <= sh <= 2
    j = int((sh - 1.0) * _LOG_N + 0.5)
    inv = _LOG_INV[j]
    t = _fma(sh, inv, -1.0)  # exact: 9-bit inv, |t| < 2**-8
    tl = sl * inv
    if j == 0:  # inv = 1 and t + tl = e exactly: take e itself (for e < 2**-53, t is 0)
        t = e
        tl = 0.0
    # log1p(t) = t - t^2/2 + t^3/3 - ... = t + t^2 P(t)
    P = -0.5 + t * (1.0 / 3.0 + t * (-0.25 + t * (0.2 + t * (-1.0 / 6.0 + t * (1.0 / 7.0 + t * -0.125)))))
    ph, pl = _fast_two_sum(t, t * t * P)
    pl = pl + tl * (1.0 - t)  # log1p(t + tl) = log1p(t) + tl / (1 + t) + O(tl^2), |t| < 2**-8
    h, l = _two_sum(_LOG_T_HI[j], ph)
    # normalised: for tiny e everything but the rounding of 1 + e sits in the low part
    return _fast_two_sum(h, l + (pl + _LOG_T_LO[j]))


@jit(inline="always")
def _log1p_f(e: float) -> float:
    # log1p(e) for 0 <= e <= 1 to within 2**-50 relative, for results rounded to float32:
    # the reduction of _log1p_dd without the low parts of the table, a degree-6 polynomial
    # (remainder |t|**7/7 < 2**-58 absolute against a result of at least |t|/2).
    sh, sl = _fast_two_sum(1.0, e)
    j = int((sh - 1.0) * _LOG_N + 0.5)
    inv = _LOG_INV[j]
    t = _fma(sh, inv, -1.0)  # exact
    tl = sl * inv
    if j == 0:
        t = e
        tl = 0.0
    P = -0.5 + t * (1.0 / 3.0 + t * (-0.25 + t * (0.2 + t * (-1.0 / 6.0))))
    return _LOG_T_HI[j] + (t + (t * t * P + tl))


@jit
def _exp_acc(dh: float, dl: float, scale: int = 0) -> tuple[float, float]:
    """``2**scale * exp(dh + dl)`` for ``dh + dl <= 0`` as a double-double accurate to about
    2**-95 (where the result and its low part are normal numbers).

    Scalar, for the rare rescaling of a running sum: ``dh + dl = k ln2 + r`` with ln2 in
    three pieces, ``exp(r / 512)`` by its Taylor series in double-double, squared 9 times.
    """
    if dh < -800.0:
        return 0.0, 0.0
    k = math.floor(dh * _INV_LN2 + 0.5)
    rh = dh - k * _LN2_1  # exact: 32-bit constant times |k| < 1200, then Sterbenz
    p = k * _LN2_2
    pe = _fma(k, _LN2_2, -p)
    rh, rl = _two_sum(rh, -p)
    rl = rl - pe + dl - k * _LN2_3
    rh, rl = _fast_two_sum(rh, rl)
    sh = rh / 512.0
    sl = rl / 512.0
    # Taylor series of exp(s) - 1 in double-double; |s| < 7e-4, 9 terms reach 2**-110
    eh, el = sh, sl
    th, tl = sh, sl
    for i in range(2, 10):
        th, tl = _dd_mul(th, tl, sh, sl)
        q = th / i  # (th + tl) / i as a double-double: the remainder of th / i is exact
        th, tl = _fast_two_sum(q, (_fma(-q, i, th) + tl) / i)
        eh, el = _dd_add(eh, el, th, tl)
    # (1 + E)^2 - 1 = E (2 + E): keeps E's relative accuracy
    for _ in range(9):
        ah, al = _dd_add(eh, el, 2.0, 0.0)
        eh, el = _dd_mul(eh, el, ah, al)
    yh, yl = _dd_add(eh, el, 1.0, 0.0)
    ki = np.int32(k + scale)
    return _ldexp(yh, ki), _ldexp(yl, ki)


def _is64(x):  # type: ignore[no-untyped-def]
    """Whether ``x`` is a float64 array: a constant of the compiled code."""
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_is64, jit_options=_JIT_OPTIONS)
def _is64_impl(x):  # type: ignore[no-untyped-def]
    wide = x.dtype == types.float64
    return lambda x: wide


@jit(inline="always")
def _rescale(sh: float, sl: float, dh: float, dl: float) -> tuple[float, float]:
    # (sh + sl) exp(dh + dl) in double-double, for dh + dl <= 0.  Below -700 the factor is
    # formed scaled by 2**600 (a subnormal factor would lose its relative precision) and
    # the product scaled back.
    if dh > -700.0:
        fh, fl = _exp_acc(dh, dl)
        return _dd_mul(sh, sl, fh, fl)
    fh, fl = _exp_acc(dh, dl, _R_EXP)
    ph, pl = _dd_mul(sh, sl, fh, fl)
    return ph * _R_UNSCALE, pl * _R_UNSCALE


# ------------------------------------------------------------------ log-sum-exp building blocks


@jit
def _block_max(x: Any, lo: int, hi: int, lanes: Any) -> float:
    # the largest entry of x[lo:hi] (NaN never wins a comparison: NaN is found by the sum)
    _prefer_512()
    for j in range(L):
        lanes[j] = -_INF
    i = lo
    while i + L <= hi:
        for j in range(L):
            v = x[_U(i + j)]
            lanes[j] = v if v > lanes[j] else lanes[j]
        i += L
    m = -_INF
    for j in range(L):
        m = lanes[j] if lanes[j] > m else m
    while i < hi:
        v = x[_U(i)]
        m = v if v > m else m
        i += 1
    return m


@jit
def _has_nan(x: Any, lo: int, hi: int) -> bool:
    for i in range(lo, hi):
        if x[_U(i)] != x[_U(i)]:
            return True
    return False


@jit
def _block_sum64(x: Any, lo: int, hi: int, m: float, ah: Any, al: Any, cnt: Any, mx: Any) -> tuple[float, float, float, float]:
    """``(r_hi, r_lo, c, max_i x_i)`` over ``x[lo:hi]``, ``sum_i exp(x_i - m) = c + r``,
    ``r`` scaled by ``2**600`` (see ``_R_EXP``).

    ``c`` counts the entries equal to ``m`` (their terms are exactly 1); ``r``, the sum of
    the others, is a double-double of its own: a sum like ``1 + 1e-67`` keeps every digit
    of its small part (``log_softmax`` of a dominant entry is ``-log1p(r)``; a double-double
    ``1 + r`` would hold ``r`` to 2**-106 absolute only).  ``x - m`` is carried exactly
    (TwoSum) and ``exp(d + dl) = exp(d) (1 + dl)``: the rounding of ``x - m``, which exp
    would amplify by ``|x - m|``, never reaches the sum.  The block maximum comes for free;
    if it exceeds ``m`` the caller discards the sums.
    """
    _prefer_512()
    for j in range(L):
        ah[j] = 0.0
        al[j] = 0.0
        cnt[j] = 0.0
        mx[j] = -_INF
    i = lo
    while i + L <= hi:
        for j in range(L):
            v = x[_U(i + j)]
            mx[j] = v if v > mx[j] else mx[j]
            dh, dl = _two_sum(v, -m)
            # far below the shift (or -inf): contributes 0 (below 2**-1150 of the maximum,
            # nothing any output can show); drops the NaN of inf - inf
            skip = dh < -800.0
            dh = -800.0 if skip else dh
            dl = 0.0 if skip else dl
            top = dh == 0.0
            yh, yl, k = _exp_parts(dh)
            yh = 0.0 if (top or skip) else _ldexp(yh, k + _R_EXP)
            yl = 0.0 if (top or skip) else _ldexp(yl, k + _R_EXP)
            s, err = _two_sum(ah[j], yh)
            ah[j] = s
            al[j] = al[j] + (err + (yl + yh * dl))
            cnt[j] = cnt[j] + (1.0 if top else 0.0)
        i += L
    sh = 0.0
    sl = 0.0
    c = 0.0
    bm = -_INF
    for j in range(L):
        sh, e = _two_sum(sh, ah[j])
        sl = sl + (e + al[j])
        c = c + cnt[j]
        bm = mx[j] if mx[j] > bm else bm
    while i < hi:
        v = x[_U(i)]
        bm = v if v > bm else bm
        dh, dl = _two_sum(v, -m)
        if dh == 0.0:
            c = c + 1.0
        elif dh >= -800.0 or dh != dh:  # NaN flows into the sum
            yh, yl, k = _exp_parts(dh)
            yh = _ldexp(yh, k + _R_EXP)
            yl = _ldexp(yl, k + _R_EXP)
            sh, e = _two_sum(sh, yh)
            sl = sl + (e + (yl + yh * dl))
        i += 1
    sh, sl = _fast_two_sum(sh, sl)
    return sh, sl, c, bm


@jit
def _block_sum32(x: Any, lo: int, hi: int, m: float, ah: Any, al: Any, cnt: Any, mx: Any) -> tuple[float, float, float, float]:
    """float32 input, float64 arithmetic: ``(r, 0, c, max_i x_i)`` as ``_block_sum64``.

    ``r`` is a plain float64 sum: ``x - m`` is exact in float64 for two float32 values
    unless they are 2**29 apart, and then the term is 0 either way; each term is within
    2**-45, and at most ``B / L`` positive terms per lane lose below 2**-48.
    """
    _prefer_512()
    for j in range(L):
        ah[j] = 0.0
        cnt[j] = 0.0
        mx[j] = -_INF
    i = lo
    while i + L <= hi:
        for j in range(L):
            v = np.float64(x[_U(i + j)])
            mx[j] = v if v > mx[j] else mx[j]
            d = v - m
            top = d == 0.0
            ah[j] = ah[j] + (0.0 if top else _exp_f(d))
            cnt[j] = cnt[j] + (1.0 if top else 0.0)
        i += L
    r = 0.0
    c = 0.0
    bm = -_INF
    for j in range(L):
        r = r + ah[j]
        c = c + cnt[j]
        bm = mx[j] if mx[j] > bm else bm
    while i < hi:
        v = np.float64(x[_U(i)])
        bm = v if v > bm else bm
        d = v - m
        if d == 0.0:
            c = c + 1.0
        else:
            r = r + _exp_f(d)
        i += 1
    return r * _R_SCALE, 0.0, c, bm


def _block_sum(x, lo, hi, m, ah, al, cnt, mx):  # type: ignore[no-untyped-def]
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_block_sum, jit_options=_JIT_OPTIONS)
def _block_sum_impl(x, lo, hi, m, ah, al, cnt, mx):  # type: ignore[no-untyped-def]
    if x.dtype == types.float64:
        return lambda x, lo, hi, m, ah, al, cnt, mx: _block_sum64(x, lo, hi, m, ah, al, cnt, mx)
    return lambda x, lo, hi, m, ah, al, cnt, mx: _block_sum32(x, lo, hi, m, ah, al, cnt, mx)


@jit
def _lse_state(x: Any, lo: int, hi: int, accurate: bool) -> tuple[float, float, float, float]:
    """``(m, c, r_hi, r_lo)`` with ``log sum exp(x[lo:hi]) = m + log(c + r)``, one pass.

    ``m`` is the largest entry, ``c >= 1`` the number of entries equal to it and ``r`` the
    sum of the other terms ``exp(x_i - m) < 1``, scaled by ``2**600`` (see
    ``_block_sum64``).  Each block of
    ``B`` entries (in L1) is summed relative to the running maximum while its own maximum
    is taken; in the rare block that raises the maximum (about ``log(blocks)`` times for
    shuffled data), the old maxima join ``r`` and the running sums are rescaled by
    ``exp(m_old - m_new)`` computed in double-double (``_exp_acc``), so rescalings add no
    error even for sorted input; the block is then summed again from L1.  float32 input is
    summed in float64 (relative error of ``r`` below 2**-44), float64 in double-double;
    ``accurate`` sums float32 in double-double too (for slices that cancel).
    NaN makes ``r`` NaN, and so does ``+inf`` (the slice goes to the plain path); an all
    ``-inf`` slice gives ``m = -inf, c = r = 0``.
    """
    lanes = np.empty(L)
    ah = np.empty(L)
    al = np.empty(L)
    cnt = np.empty(L)
    m = -_INF
    c = 0.0
    rh = 0.0
    rl = 0.0
    start = lo
    while start < hi:
        stop = min(start + B, hi)
        if m == -_INF:  # nothing above -inf yet: the block's maximum is the shift
            m = np.float64(_block_max(x, start, stop, lanes))
            if m == -_INF:
                if _has_nan(x, start, stop):
                    return m, 0.0, math.nan, 0.0
                start = stop
                continue
        if m == _INF:
            return m, 0.0, math.nan, 0.0
        if accurate:
            bh, bl, bc, bm = _block_sum64(x, start, stop, m, ah, al, cnt, lanes)
        else:
            bh, bl, bc, bm = _block_sum(x, start, stop, m, ah, al, cnt, lanes)
        if bm > m:
            if bm == _INF:
                return bm, 0.0, math.nan, 0.0
            # the old maxima become ordinary terms: (c + r) exp(m - m_new) joins r
            dh, dl = _two_sum(m, -bm)
            rh, rl = _dd_add(rh, rl, c * _R_SCALE, 0.0)
            rh, rl = _rescale(rh, rl, dh, dl)
            c = 0.0
            m = bm
            if accurate:
                bh, bl, bc, bm = _block_sum64(x, start, stop, m, ah, al, cnt, lanes)
            else:
                bh, bl, bc, bm = _block_sum(x, start, stop, m, ah, al, cnt, lanes)
        c = c + bc
        rh, rl = _dd_add(rh, rl, bh, bl)
        start = stop
    return m, c, rh, rl


@jit
def _lse_range(x: Any, lo: int, hi: int) -> tuple[float, float, float, float]:
    """``_lse_state`` to the accuracy the dtype of ``x`` needs."""
    return _lse_state(x, lo, hi, False)


@jit
def _lse_range_accurate(x: Any, lo: int, hi: int) -> tuple[float, float, float, float]:
    """``_lse_state`` in double-double whatever the dtype (float32 slices that cancel)."""
    return _lse_state(x, lo, hi, True)


@jit
def _merge(ms: Any, cs: Any, rhs: Any, rls: Any) -> tuple[float, float, float, float]:
    """Combine partial ``(m_k, c_k, r_k)`` of one slice into one, as ``_lse_range`` would."""
    m = -_INF
    for k in range(ms.size):
        if rhs[k] != rhs[k]:
            return ms[k], 0.0, math.nan, 0.0
        if ms[k] > m:
            m = ms[k]
    if m == -_INF:
        return m, 0.0, 0.0, 0.0
    c = 0.0
    rh = 0.0
    rl = 0.0
    for k in range(ms.size):
        if ms[k] == -_INF:
            continue
        if ms[k] == m:
            c = c + cs[k]
            rh, rl = _dd_add(rh, rl, rhs[k], rls[k])
        else:
            dh, dl = _two_sum(ms[k], -m)
            ph, pl = _dd_add(rhs[k], rls[k], cs[k] * _R_SCALE, 0.0)
            ph, pl = _rescale(ph, pl, dh, dl)
            rh, rl = _dd_add(rh, rl, ph, pl)
    return m, c, rh, rl


@jit(inline="always")
def _log_dd(sh: float, sl: float) -> tuple[float, float]:
    # log(sh + sl) for sh >= 1 as a double-double accurate to about 2**-58: sh = 2**e s with
    # s in [1, 2), log = e ln2 + log1p(s - 1) (s - 1 exact, _log1p_dd) + sl / sh.
    mant, ex = math.frexp(sh)
    e = ex - 1.0
    fh, fl = _log1p_dd(2.0 * mant - 1.0)
    ph = e * _LN2
    pl = _fma(e, _LN2, -ph) + e * _LN2_LO  # e ln2 to 2**-100 relative
    hh, hl = _two_sum(ph, fh)
    return _fast_two_sum(hh, hl + (pl + fl + sl / sh))


@jit(inline="always")
def _log_cr(c: float, rh: float, rl: float) -> tuple[float, float]:
    # L = log(c + r) as a double-double, c >= 1 an integer.  With one maximum it is log1p(r)
    # of the separately summed r: the digits of a dominant term are never rounded away
    # (Blanchard, Higham and Higham 2021).  Accurate to about 2**-58 relative, so that
    # m + L, rounded once, is as good as the cancellation between m and L allows.
    rh = rh * _R_UNSCALE  # r was kept scaled by 2**600: one rounding where r is subnormal
    rl = rl * _R_UNSCALE
    if c == 1.0 and rh <= 1.0:
        h, l = _log1p_dd(rh)
        return _fast_two_sum(h, l + rl / (1.0 + rh))
    sh, sl = _dd_add(c, 0.0, rh, rl)
    return _log_dd(sh, sl)


@jit(inline="always")
def _finish(m: float, c: float, rh: float, rl: float) -> tuple[float, float]:
    """``(m + log(c + r), sign)``; NaN when the slice needs the plain path."""
    if rh != rh:
        return math.nan, math.nan
    if m == -_INF:
        return -_INF, 0.0
    lh, ll = _log_cr(c, rh, rl)
    sh, sl = _two_sum(m, lh)
    return sh + (sl + ll), 1.0


@jit(inline="always")
def _cancels(x: Any, v: float, m: float, c: float, rh: float, rl: float) -> bool:
    # Whether a float32 result v = m + L of the cheap sum is outside its budget: its error
    # is below 2**-44 L (L = log(c + r); the relative error of r bounds that of log(c + r)
    # since 1 - c/S <= log(S/c)) plus the final rounding, and the budget needs half an ULP
    # of float32 (2**-25 |v|).  That fails only where m + L cancels (m < 0,
    # L > 2**18 |v|: log-probabilities that sum to 1 within 2**-18); such slices are summed
    # again in double-double.
    if _is64(x) or rh != rh or m == -_INF:
        return False
    return _log_cr(c, rh, rl)[0] > 262144.0 * abs(v)


# ------------------------------------------------------------------ log-sum-exp kernels
# Rows are addressed as ``flat[offsets[r] : offsets[r] + n]`` of a 1-D contiguous view, so
# that one kernel serves C-contiguous arrays and any strided layout whose last axis is
# contiguous.  ``bad[r]`` marks rows that go to the plain path (+inf or NaN entries).


@jit
def _lse_row(x: Any, lo: int, hi: int) -> tuple[float, float]:
    """``(logsumexp, sign)`` of ``x[lo:hi]``; NaN for a slice that needs the plain path."""
    m, c, rh, rl = _lse_range(x, lo, hi)
    v, sign = _finish(m, c, rh, rl)
    if _cancels(x, v, m, c, rh, rl):
        m, c, rh, rl = _lse_range_accurate(x, lo, hi)
        v, sign = _finish(m, c, rh, rl)
    return v, sign


# ------------------------------------------------------------------ task kernels
# Each kernel below runs the tasks ``t0 <= t < t1`` (rows, or row pieces) of one call; the
# driver hands ranges of tasks to a pool of Python threads.  The kernels release the GIL
# (``nogil``), so the threads run them on every core, and a forked process simply starts a
# new pool (an OpenMP pool cannot survive a fork).


@jit
def lse_rows(flat: Any, offsets: Any, n: int, res: Any, bad: Any, t0: int, t1: int) -> int:
    """logsumexp of rows ``t0..t1``; ``bad[r]`` rows for the plain path."""
    for r in range(t0, t1):
        o = offsets[r]
        v, sign = _lse_row(flat, o, o + n)
        res[r] = v
        bad[r] = sign != sign
    return 0


@jit
def lse_chunks(flat: Any, offsets: Any, n: int, chunks: int, parts: Any, accurate: bool, t0: int, t1: int) -> int:
    """Partial sums ``parts[r, k] = (m, c, r_hi, r_lo)`` of ``chunks`` pieces of every row
    (long rows, few of them); ``accurate`` sums float32 input in double-double (for the rows
    ``lse_merge`` finds cancelling)."""
    for t in range(t0, t1):
        r = t // chunks
        k = t - r * chunks
        o = offsets[r]
        lo = o + k * n // chunks
        hi = o + (k + 1) * n // chunks
        if accurate:
            m, c, rh, rl = _lse_range_accurate(flat, lo, hi)
        else:
            m, c, rh, rl = _lse_range(flat, lo, hi)
        parts[r, k, 0] = m
        parts[r, k, 1] = c
        parts[r, k, 2] = rh
        parts[r, k, 3] = rl
    return 0


@jit
def lse_merge(x: Any, parts: Any, res: Any, bad: Any, ill: Any, state: Any) -> None:
    """Merge the partial sums of each row: ``res`` the log-sum-exp, ``state[r]`` the merged
    ``(m, c, r_hi, r_lo)``, ``bad`` rows for the plain path, ``ill`` float32 rows whose
    cheap sum cancels (see ``_cancels``), to be summed again with ``accurate=True``."""
    for r in range(parts.shape[0]):
        m, c, rh, rl = _merge(parts[r, :, 0], parts[r, :, 1], parts[r, :, 2], parts[r, :, 3])
        v, sign = _finish(m, c, rh, rl)
        res[r] = v
        bad[r] = sign != sign
        ill[r] = _cancels(x, v, m, c, rh, rl)
        state[r, 0] = m
        state[r, 1] = c
        state[r, 2] = rh
        state[r, 3] = rl


# ------------------------------------------------------------------ softmax and log-softmax


@jit(inline="always")
def _recip_dd(sh: float, sl: float) -> tuple[float, float]:
    # 1 / (sh + sl) as a double-double: one Newton correction of the rounded reciprocal
    ih = 1.0 / sh
    r = _fma(-ih, sh, 1.0) - ih * sl  # 1 - ih (sh + sl), the first term exact
    return ih, ih * r


@jit
def _softmax_row64(x: Any, lo: int, hi: int, out: Any, olo: int, buf: Any, ah: Any, al: Any, lanes: Any) -> bool:
    """softmax of ``x[lo:hi]`` into ``out[olo:olo + n]``, the row cached between passes.

    Pass 1 takes the maximum ``m``; pass 2 stores ``t_i = exp(x_i - m)`` (high part in
    ``out``, the low part in ``buf``) and sums it in double-double; pass 3 multiplies by
    ``1/S`` in double-double and rounds once: at most 0.5 ULP plus ``2**-58``.  Returns
    False for a row that needs the plain path (+inf or NaN).
    """
    _prefer_512()
    n = hi - lo
    m = _block_max(x, lo, hi, lanes)
    if m == _INF:
        return False
    if m == -_INF:  # all -inf (or NaN): zeros, as the plain path
        if _has_nan(x, lo, hi):
            return False
        for i in range(n):
            out[_U(olo + i)] = 0.0
        return True
    for j in range(L):
        ah[j] = 0.0
        al[j] = 0.0
    i = 0
    while i + L <= n:
        for j in range(L):
            dh, dl = _two_sum(x[_U(lo + i + j)], -m)
            if dh < -800.0:
                dh = -800.0
                dl = 0.0
            yh, yl = _exp_dd(dh)
            tl = yl + yh * dl
            out[_U(olo + i + j)] = yh
            buf[_U(i + j)] = tl
            s, err = _two_sum(ah[j], yh)
            ah[j] = s
            al[j] = al[j] + (err + tl)
        i += L
    sh = 0.0
    sl = 0.0
    for j in range(L):
        sh, e = _two_sum(sh, ah[j])
        sl = sl + (e + al[j])
    while i < n:
        dh, dl = _two_sum(x[_U(lo + i)], -m)
        if dh < -800.0:
            dh = -800.0
            dl = 0.0
        yh, yl = _exp_dd(dh)
        tl = yl + yh * dl
        out[_U(olo + i)] = yh
        buf[_U(i)] = tl
        sh, e = _two_sum(sh, yh)
        sl = sl + (e + tl)
        i += 1
    sh, sl = _fast_two_sum(sh, sl)
    if sh != sh:
        return False
    ih, il = _recip_dd(sh, sl)
    for i in range(n):
        th = out[_U(olo + i)]
        out[_U(olo + i)] = _fma(th, ih, th * il + buf[_U(i)] * ih)
    return True


@jit
def _softmax_row32(x: Any, lo: int, hi: int, out: Any, olo: int, buf: Any, ah: Any, al: Any, lanes: Any) -> bool:
    """As ``_softmax_row64`` for float32: ``t_i`` in the float64 buffer, rounded once."""
    _prefer_512()
    n = hi - lo
    m = np.float64(_block_max(x, lo, hi, lanes))
    if m == _INF:
        return False
    if m == -_INF:
        if _has_nan(x, lo, hi):
            return False
        for i in range(n):
            out[_U(olo + i)] = 0.0
        return True
    for j in range(L):
        ah[j] = 0.0
    i = 0
    while i + L <= n:
        for j in range(L):
            t = _exp_f(np.float64(x[_U(lo + i + j)]) - m)
            buf[_U(i + j)] = t
            ah[j] = ah[j] + t
        i += L
    s = 0.0
    for j in range(L):
        s = s + ah[j]
    while i < n:
        t = _exp_f(np.float64(x[_U(lo + i)]) - m)
        buf[_U(i)] = t
        s = s + t
        i += 1
    if s != s:
        return False
    inv = 1.0 / s
    for i in range(n):
        out[_U(olo + i)] = buf[_U(i)] * inv
    return True


def _softmax_row(x, lo, hi, out, olo, buf, ah, al, lanes):  # type: ignore[no-untyped-def]
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_softmax_row, jit_options=_JIT_OPTIONS)
def _softmax_row_impl(x, lo, hi, out, olo, buf, ah, al, lanes):  # type: ignore[no-untyped-def]
    if x.dtype == types.float64:
        return lambda x, lo, hi, out, olo, buf, ah, al, lanes: _softmax_row64(x, lo, hi, out, olo, buf, ah, al, lanes)
    return lambda x, lo, hi, out, olo, buf, ah, al, lanes: _softmax_row32(x, lo, hi, out, olo, buf, ah, al, lanes)


@jit
def softmax_rows(flat: Any, offsets: Any, n: int, out: Any, bad: Any, t0: int, t1: int) -> int:
    """softmax of rows ``t0..t1`` (rows that fit in cache); ``out`` is ``(rows * n,)``."""
    buf = np.empty(n)
    ah = np.empty(L)
    al = np.empty(L)
    lanes = np.empty(L)
    for r in range(t0, t1):
        o = offsets[r]
        bad[r] = not _softmax_row(flat, o, o + n, out, r * n, buf, ah, al, lanes)
    return 0


@jit(inline="always")
def _log_softmax_one(v: float, m: float, lh: float, ll: float) -> float:
    # log p = (x - m) - L, with x - m and the subtraction of L carried exactly and one final
    # rounding: the dominant component is -log1p(rest), not the 0 every peer returns.
    dh, dl = _two_sum(v, -m)
    yh, yl = _two_sum(dh, -lh)
    y = yh + (yl + (dl - ll))
    # x - m beyond the largest float (x near -max, m near +max): the exact log p is below
    # -max by more than half an ULP, so -inf is its correct rounding (TwoSum's low part
    # would be NaN there)
    return y if (v > -_INF and dh > -_INF) else -_INF


@jit
def _log_softmax_apply(x: Any, lo: int, hi: int, out: Any, olo: int, m: float, lh: float, ll: float) -> None:
    _prefer_512()
    if _is64(x):
        for i in range(hi - lo):
            out[_U(olo + i)] = _log_softmax_one(np.float64(x[_U(lo + i)]), m, lh, ll)
    else:
        # float32: x - m is exact in float64 and (x - m) - L, both terms <= 0 apart from L's
        # own error (2**-44 L), rounds once in float64, far below float32's half ULP
        lf = lh + ll
        for i in range(hi - lo):
            v = np.float64(x[_U(lo + i)])
            out[_U(olo + i)] = (v - m) - lf if v > -_INF else -_INF


@jit(inline="always")
def _lse_parts(m: float, c: float, rh: float, rl: float) -> tuple[float, float, bool]:
    """``L = log(c + r)`` as a double-double, and whether the slice suits the fast path."""
    if rh != rh:
        return 0.0, 0.0, False
    if m == -_INF:
        return _INF, 0.0, True
    lh, ll = _log_cr(c, rh, rl)
    return lh, ll, True


@jit
def log_softmax_rows(flat: Any, offsets: Any, n: int, out: Any, bad: Any, t0: int, t1: int) -> int:
    """log-softmax of rows ``t0..t1``: one pass for ``(m, S)``, one (from cache) for the output."""
    for r in range(t0, t1):
        o = offsets[r]
        m, c, rh, rl = _lse_range(flat, o, o + n)
        lh, ll, ok = _lse_parts(m, c, rh, rl)
        bad[r] = not ok
        if ok:
            _log_softmax_apply(flat, o, o + n, out, r * n, m, lh, ll)
    return 0


@jit
def log_softmax_chunks(flat: Any, offsets: Any, n: int, chunks: int, out: Any, ms: Any, lhs: Any, lls: Any, t0: int, t1: int) -> int:
    """Second pass for long rows, split in ``chunks`` pieces: ``out`` from ``(m, L)``."""
    for t in range(t0, t1):
        r = t // chunks
        c = t - r * chunks
        o = offsets[r]
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        _log_softmax_apply(flat, o + lo, o + hi, out, r * n + lo, ms[r], lhs[r], lls[r])
    return 0


@jit
def _softmax_apply(x: Any, lo: int, hi: int, out: Any, olo: int, m: float, ih: float, il: float) -> None:
    _prefer_512()
    if m == -_INF:  # an all -inf slice: zeros, as the plain path
        for i in range(hi - lo):
            out[_U(olo + i)] = 0.0
        return
    for i in range(hi - lo):
        v = np.float64(x[_U(lo + i)])
        dh, dl = _two_sum(v, -m)
        if dh < -800.0:
            dh = -800.0
            dl = 0.0
        yh, yl = _exp_dd(dh)
        out[_U(olo + i)] = _fma(yh, ih, yh * il + (yl + yh * dl) * ih)


@jit
def softmax_chunks(flat: Any, offsets: Any, n: int, chunks: int, out: Any, ms: Any, ihs: Any, ils: Any, t0: int, t1: int) -> int:
    """Second pass for long rows: ``exp(x - m) / S`` recomputed, from ``(m, 1/S)``."""
    for t in range(t0, t1):
        r = t // chunks
        c = t - r * chunks
        o = offsets[r]
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        _softmax_apply(flat, o + lo, o + hi, out, r * n + lo, ms[r], ihs[r], ils[r])
    return 0


@jit
def lse_finish_parts(state: Any, bad: Any, lhs: Any, lls: Any, ihs: Any, ils: Any) -> None:
    """Per row: ``L = log S`` and ``1/S`` in double-double from merged ``(m, c, r)``."""
    for r in range(state.shape[0]):
        m, c, rh, rl = state[r, 0], state[r, 1], state[r, 2], state[r, 3]
        lh, ll, ok = _lse_parts(m, c, rh, rl)
        bad[r] = not ok
        lhs[r] = lh
        lls[r] = ll
        if ok and m > -_INF:
            sh, sl = _dd_add(c, 0.0, rh * _R_UNSCALE, rl * _R_UNSCALE)
            ihs[r], ils[r] = _recip_dd(sh, sl)
        else:
            ihs[r] = 0.0
            ils[r] = 0.0


# ------------------------------------------------------------------ elementwise functions
# Elementwise kernels take a 1-D contiguous ``x`` and write ``out`` (its dtype).  float64 is
# evaluated in double-double and rounded once (0.5 ULP plus about 2**-58); float32 in
# float64 from the high parts, rounded once to float32.  +-inf, -0 and NaN give the plain
# path's answers (each kernel's comment says how).


@jit(inline="always")
def _div_dd(nh: float, nl: float, dh: float, dl: float) -> tuple[float, float]:
    # (nh + nl) / (dh + dl) as a double-double, dh in [1, 4]: a reciprocal by Newton's
    # method, then one exact residual (FMA) corrects the quotient
    ih = _recip14(dh)
    qh = nh * ih
    r = _fma(-qh, dh, nh) + (nl - qh * dl)
    return qh, r * ih


@jit(inline="always")
def _sigmoid64(v: float) -> float:
    # sigma(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, e = exp(-|x|) <= 1:
    # exp never overflows and the negative tail keeps its subnormal results.  +-inf give
    # 1 and 0 through e = 0; -0 gives 0.5; NaN propagates.
    eh, el = _exp_dd(-abs(v))
    dh, dl = _fast_two_sum(1.0, eh)  # 1 + e exactly
    dl = dl + el
    pos = v >= 0.0
    qh, ql = _div_dd(1.0 if pos else eh, 0.0 if pos else el, dh, dl)
    return qh + ql


@jit(inline="always")
def _sigmoid32(v: float) -> float:
    e = _exp_f(-abs(v))
    return (1.0 if v >= 0.0 else e) * _recip12(1.0 + e, 3)  # 1/(1 + e) to 2**-32


@jit(inline="always")
def _softplus_dd(v: float) -> tuple[float, float]:
    # softplus(x) = max(x, 0) + log1p(exp(-|x|)): exp never overflows, the tail below
    # about -36 keeps full relative accuracy (log1p(e) ~ e); +inf gives +inf, -inf gives 0.
    eh, el = _exp_dd(-abs(v))
    th, tl = _log1p_dd(eh)
    tl = tl + el * _recip12(1.0 + eh, 2)  # a correction: 2**-16 relative suffices
    pos = v if v > 0.0 else 0.0
    if pos == _INF:
        return _INF, 0.0
    sh, sl = _two_sum(pos, th)
    return sh, sl + tl


@jit(inline="always")
def _softplus32(v: float) -> float:
    t = _log1p_f(_exp_f(-abs(v)))
    pos = v if v > 0.0 else 0.0
    return pos + t


@jit(inline="always")
def _sech2_dd(a: float, scale: Any) -> float:
    # 2**scale e / (1 + e)^2 with e = exp(-a), a = |x| >= 0: sigma'(x) = sigma(x) sigma(-x)
    # without the cancellation of 1 - sigma, so the tails keep full relative accuracy.  The
    # factor 2**scale is applied before the one rounding (a subnormal result rounded first
    # and scaled after would be off by up to 2**scale / 2 ULP).
    yh, yl, k = _exp_parts(-a)
    eh = _ldexp(yh, k)
    el = _ldexp(yl, k)
    sh, sl = _fast_two_sum(1.0, eh)
    sl = sl + el
    dh, dl = _dd_mul(sh, sl, sh, sl)
    qh, ql = _div_dd(yh, yl, dh, dl)
    return _ldexp(qh + ql, k + scale)


@jit(inline="always")
def _sech2_32(a: float) -> float:
    e = _exp_f(-a)
    r = _recip12(1.0 + e, 3)
    return e * r * r


@jit
def elementwise(kind: int, x: Any, out: Any, t0: int, t1: int) -> int:
    """``out[t0:t1] = f(x[t0:t1])`` for ``kind`` 0 sigmoid, 1 softplus, 2 log_sigmoid,
    3 sigmoid_grad, 4 tanh_grad."""
    _elementwise_range(kind, x, out, t0, t1)
    return 0


@jit
def _elementwise_range64(kind: int, x: Any, out: Any, lo: int, hi: int) -> None:
    _prefer_512()
    if kind == 0:
        for i in range(lo, hi):
            out[_U(i)] = _sigmoid64(x[_U(i)])
    elif kind == 1:
        for i in range(lo, hi):
            h, l = _softplus_dd(x[_U(i)])
            out[_U(i)] = h + l
    elif kind == 2:
        # log sigma(x) = -softplus(-x): log(-inf) = -inf, log(+inf) = -0
        for i in range(lo, hi):
            h, l = _softplus_dd(-x[_U(i)])
            out[_U(i)] = -(h + l)
    elif kind == 3:
        for i in range(lo, hi):
            v = x[_U(i)]
            r = _sech2_dd(abs(v), np.int32(0))
            out[_U(i)] = r if v == v else v
    else:
        # tanh'(x) = 4 e / (1 + e)^2 with e = exp(-2|x|) = 4 sigma'(2x); |x| clipped at
        # 1000 (exp(-2000) is 0 in every dtype) so that 2|x| never overflows
        for i in range(lo, hi):
            v = x[_U(i)]
            a = min(abs(v), 1000.0)
            r = _sech2_dd(2.0 * a, np.int32(2))
            out[_U(i)] = r if v == v else v


@jit
def _elementwise_range32(kind: int, x: Any, out: Any, lo: int, hi: int) -> None:
    _prefer_512()
    if kind == 0:
        for i in range(lo, hi):
            out[_U(i)] = _sigmoid32(np.float64(x[_U(i)]))
    elif kind == 1:
        for i in range(lo, hi):
            out[_U(i)] = _softplus32(np.float64(x[_U(i)]))
    elif kind == 2:
        for i in range(lo, hi):
            out[_U(i)] = -_softplus32(-np.float64(x[_U(i)]))
    elif kind == 3:
        for i in range(lo, hi):
            v = np.float64(x[_U(i)])
            r = _sech2_32(abs(v))
            out[_U(i)] = r if v == v else v
    else:
        for i in range(lo, hi):
            v = np.float64(x[_U(i)])
            r = 4.0 * _sech2_32(2.0 * min(abs(v), 1000.0))
            out[_U(i)] = r if v == v else v


def _elementwise_range(kind, x, out, lo, hi):  # type: ignore[no-untyped-def]
    raise NotImplementedError  # pragma: no cover - only called from compiled code


@overload(_elementwise_range, jit_options=_JIT_OPTIONS)
def _elementwise_range_impl(kind, x, out, lo, hi):  # type: ignore[no-untyped-def]
    if x.dtype == types.float64:
        return lambda kind, x, out, lo, hi: _elementwise_range64(kind, x, out, lo, hi)
    return lambda kind, x, out, lo, hi: _elementwise_range32(kind, x, out, lo, hi)


# ------------------------------------------------------------------ binary cross-entropy


@jit(inline="always")
def _bce64(v: float, y: float, w: float, pw: float, has_pw: bool, s: float) -> tuple[float, float]:
    # loss = pw y softplus(-x) + (1 - y) softplus(x), times w: both terms >= 0 for y in
    # [0, 1], so nothing cancels (the sheet's max(x, 0) - x y + log1p(e^-|x|) loses the
    # digits of (1 - y) x for soft labels).  Every step in double-double; x finite.  The
    # loss comes out times s, a power of two applied to both softplus terms before the
    # coefficients multiply them (so that pw y softplus(-x) w, above the largest float for
    # |x| near it, still adds its scaled value to a mean that is finite).
    yh, yl, k = _exp_parts(-abs(v))
    eh = _ldexp(yh, k)
    el = _ldexp(yl, k)
    th, tl = _log1p_dd(eh)
    tl = tl + el * _recip12(1.0 + eh, 2)  # a correction: 2**-16 relative suffices
    pos = v if v > 0.0 else 0.0
    neg = pos - v  # max(-x, 0), exact
    ah, al = _two_sum(neg, th)
    al = al + tl
    bh, bl = _two_sum(pos, th)
    bl = bl + tl
    ah, al, bh, bl = ah * s, al * s, bh * s, bl * s
    if has_pw:
        c1h = y * pw
        c1l = _fma(y, pw, -c1h)
    else:
        c1h = y
        c1l = 0.0
    c2h, c2l = _two_sum(1.0, -y)  # 1 - y exactly
    p1h, p1l = _dd_mul(c1h, c1l, ah, al)
    p2h, p2l = _dd_mul(c2h, c2l, bh, bl)
    hh, hl = _dd_add(p1h, p1l, p2h, p2l)
    if w != 1.0:
        hh, hl = _dd_mul(hh, hl, w, 0.0)
    # Beyond |x| = 700 with the large term's coefficient 0 (y = 1 for x > 0, pw y = 0 for
    # x < 0) the loss is c w e^-|x|, subnormal from |x| = 708: formed from the unrounded
    # exponential and scaled once (a rounded subnormal e^-|x| times c would be off by c/2
    # ULP).  log1p(e) = e there to far below the last bit.
    if abs(v) > 700.0 and (c2h == 0.0 if v > 0.0 else c1h == 0.0):
        ch = c1h if v > 0.0 else c2h
        cl = c1l if v > 0.0 else c2l
        qh, ql = _dd_mul(ch, cl, yh, yl)
        if w != 1.0:
            qh, ql = _dd_mul(qh, ql, w, 0.0)
        hh = _ldexp(qh + ql, k) * s
        hl = 0.0
    return hh, hl


@jit(inline="always")
def _bce64_plain(v: float, y: float) -> tuple[float, float]:
    # Without weights pw = w = 1, the coefficients y and 1 - y add up to 1 and max(x, 0) and
    # max(-x, 0) are never both nonzero: loss = c |x| + softplus(-|x|), c = 1 - y for x > 0
    # and y otherwise: two terms >= 0, c |x| exact as a double-double (1 - y exact, the
    # product by FMA), one rounding at the end.  A subnormal loss (c = 0, |x| > 708) is the
    # once-rounded exp itself.
    a = abs(v)
    yh, yl, k = _exp_parts(-a)
    eh = _ldexp(yh, k)
    el = _ldexp(yl, k)
    th, tl = _log1p_dd(eh)
    tl = tl + el * _recip12(1.0 + eh, 2)  # a correction: 2**-16 relative suffices
    ch, cl = _two_sum(1.0, -y)
    ch = ch if v > 0.0 else y
    cl = cl if v > 0.0 else 0.0
    p = ch * a
    pe = _fma(ch, a, -p) + cl * a
    h, e = _two_sum(p, th)
    return h, e + (pe + tl)


@jit(inline="always")
def _bce32_plain(v: float, y: float) -> float:
    # as _bce64_plain in float64 for float32 data: c |x| is exact, one rounding to float32
    a = abs(v)
    return (1.0 - y if v > 0.0 else y) * a + _log1p_f(_exp_f(-a))


@jit(inline="always")
def _bce32(v: float, y: float, w: float, pw: float) -> float:
    t = _log1p_f(_exp_f(-abs(v)))
    pos = v if v > 0.0 else 0.0
    neg = pos - v
    return w * (y * pw * (neg + t) + (1.0 - y) * (pos + t))


@jit
def bce(x: Any, y: Any, wv: Any, pwv: Any, out: Any, write: bool, scale: float, t0: int, t1: int) -> tuple[float, float, float, float]:
    """Binary cross-entropy of the rows ``t0..t1`` of contiguous ``x``, ``y`` (same layout;
    a row is ``period`` entries, the length of the weights, or 1 without them).

    ``wv``, ``pwv``: the weight and positive weight, each empty (absent) or holding one
    value per position of the last axis (a scalar is given as such a row).  ``write``:
    store each loss in ``out`` (reduction 'none'); otherwise return the double-double sum
    of the losses times ``scale`` (a power of 2 below 1 where a plain sum overflowed
    although the mean is finite; each loss is formed at that scale).  The third value
    counts the special entries (non-finite logits, labels or weights), which the kernel
    leaves to the plain path; the fourth the losses of finite entries that overflowed at
    this scale (left out of the sum; written as they came out in ``out``).
    """
    period = max(wv.size, pwv.size, 1)
    lo = t0 * period
    hi = t1 * period
    if write:
        nspec, nover = _bce_write(x, y, wv, pwv, out, lo, hi)
        return 0.0, 0.0, nspec, nover
    return _bce_sum(x, y, wv, pwv, lo, hi, scale)


@jit(inline="always")
def _bce_one(v: float, yy: float, w: float, pw: float, has_pw: bool, wide: bool, s: float) -> tuple[float, float, bool, bool]:
    """``s`` times the loss, whether an input is not finite, whether the loss overflowed."""
    special = not (abs(v) < _INF and abs(yy) < _INF and abs(w) < _INF and abs(pw) < _INF)
    vs = 0.0 if special else v
    if wide:
        h, l = _bce64(vs, yy, w, pw, has_pw, s)
    else:
        h = _bce32(vs, yy, w, pw) * s  # in float64 from float32 data: no overflow
        l = 0.0
    return h, l, special, not special and not abs(h) < _INF


@jit(inline="always")
def _bce_one_plain(v: float, yy: float, wide: bool) -> tuple[float, float, bool]:
    # without weights a loss is at most |x| + log 2: it never overflows
    special = not (abs(v) < _INF and abs(yy) < _INF)
    vs = 0.0 if special else v
    if wide:
        h, l = _bce64_plain(vs, yy)
    else:
        h = _bce32_plain(vs, yy)
        l = 0.0
    return h, l, special


@jit
def _bce_write(x: Any, y: Any, wv: Any, pwv: Any, out: Any, lo: int, hi: int) -> tuple[float, float]:
    """Losses of ``x[lo:hi]`` into ``out``; returns the numbers of special entries and of
    overflowed losses (integer counts: a floating-point sum would keep the loop from
    vectorising)."""
    _prefer_512()
    wide = _is64(x)
    nspec = 0
    nover = 0
    if wv.size == 0 and pwv.size == 0:
        for i in range(lo, hi):
            h, l, special = _bce_one_plain(np.float64(x[_U(i)]), np.float64(y[_U(i)]), wide)
            out[_U(i)] = h + l
            nspec += np.int64(special)
        return float(nspec), 0.0
    period = max(wv.size, pwv.size)
    has_w = wv.size > 0
    has_pw = pwv.size > 0
    for start in range(lo, hi, period):
        for col in range(period):
            i = start + col
            w = np.float64(wv[_U(col)]) if has_w else 1.0
            pw = np.float64(pwv[_U(col)]) if has_pw else 1.0
            h, l, special, over = _bce_one(np.float64(x[_U(i)]), np.float64(y[_U(i)]), w, pw, has_pw, wide, 1.0)
            out[_U(i)] = h + l
            nspec += np.int64(special)
            nover += np.int64(over)
    return float(nspec), float(nover)


@jit
def bce_rescue(x: Any, y: Any, w: Any, pw: Any, has_pw: bool, out: Any) -> None:
    """float64 losses of finite entries that overflowed in an intermediate step, formed at
    scale 2**-64 and scaled back once (inf only where the exact loss exceeds the format);
    ``w`` and ``pw`` are the weights of each entry."""
    for i in range(x.size):
        h, l = _bce64(x[i], y[i], w[i], pw[i], has_pw, _RESCUE)
        out[i] = (h + l) * _UNRESCUE


@jit
def _bce_sum(x: Any, y: Any, wv: Any, pwv: Any, lo: int, hi: int, scale: float) -> tuple[float, float, float, float]:
    """Double-double sum of the finite losses of ``x[lo:hi]`` times ``scale``, the number
    of special entries and the number of overflowed losses; ``L`` lanes of TwoSum
    accumulators."""
    _prefer_512()
    wide = _is64(x)
    ah = np.zeros(L)
    al = np.zeros(L)
    ns = np.zeros(L)
    no = np.zeros(L)
    has_w = wv.size > 0
    has_pw = pwv.size > 0
    period = max(wv.size, pwv.size, 1)
    plain = not (has_w or has_pw)
    if plain:
        i = lo
        while i + L <= hi:
            for j in range(L):
                h, l, special = _bce_one_plain(np.float64(x[_U(i + j)]), np.float64(y[_U(i + j)]), wide)
                h = 0.0 if special else h * scale
                l = 0.0 if special else l * scale
                s, e = _two_sum(ah[j], h)
                ah[j] = s
                al[j] = al[j] + (e + l)
                ns[j] = ns[j] + (1.0 if special else 0.0)
            i += L
        for k in range(i, hi):
            h, l, special = _bce_one_plain(np.float64(x[_U(k)]), np.float64(y[_U(k)]), wide)
            h = 0.0 if special else h * scale
            l = 0.0 if special else l * scale
            s, e = _two_sum(ah[0], h)
            ah[0] = s
            al[0] = al[0] + (e + l)
            ns[0] = ns[0] + (1.0 if special else 0.0)
        lo = hi  # nothing left for the weighted loop below
    seg = max(1, period)  # whole rows: a weight varies along them
    for start in range(lo, hi, seg):
        stop = min(start + seg, hi)
        i = start
        while i + L <= stop:
            for j in range(L):
                col = i + j - start
                w = 1.0 if plain or not has_w else np.float64(wv[_U(col)])
                pw = 1.0 if plain or not has_pw else np.float64(pwv[_U(col)])
                h, l, special, over = _bce_one(np.float64(x[_U(i + j)]), np.float64(y[_U(i + j)]), w, pw, has_pw, wide, scale)
                skip = special or over
                h = 0.0 if skip else h
                l = 0.0 if skip else l
                s, e = _two_sum(ah[j], h)
                ah[j] = s
                al[j] = al[j] + (e + l)
                ns[j] = ns[j] + (1.0 if special else 0.0)
                no[j] = no[j] + (1.0 if over else 0.0)
            i += L
        for k in range(i, stop):
            col = k - start
            w = 1.0 if plain or not has_w else np.float64(wv[_U(col)])
            pw = 1.0 if plain or not has_pw else np.float64(pwv[_U(col)])
            h, l, special, over = _bce_one(np.float64(x[_U(k)]), np.float64(y[_U(k)]), w, pw, has_pw, wide, scale)
            skip = special or over
            h = 0.0 if skip else h
            l = 0.0 if skip else l
            s, e = _two_sum(ah[0], h)
            ah[0] = s
            al[0] = al[0] + (e + l)
            ns[0] = ns[0] + (1.0 if special else 0.0)
            no[0] = no[0] + (1.0 if over else 0.0)
    sh = 0.0
    sl = 0.0
    nspec = 0.0
    nover = 0.0
    for j in range(L):
        sh, e = _two_sum(sh, ah[j])
        sl = sl + (e + al[j])
        nspec = nspec + ns[j]
        nover = nover + no[j]
    return sh, sl, nspec, nover


# ------------------------------------------------------------------ softmax cross-entropy


@jit
def cross_entropy(
    flat: Any, offsets: Any, n: int, t: Any, wv: Any, ignore: int, use_ignore: bool,
    eps: float, out: Any, write: bool, bad: Any, scale: float, t0: int, t1: int,
) -> tuple[float, float, float, float]:
    """Cross-entropy of rows ``t0..t1`` against class index ``t[r]``.

    Per row: ``(m, c, r)`` in one pass (``_lse_range``), ``L = log(c + r)``, and
    ``loss = L - (x_t - m)`` with ``x_t - m`` carried exactly: at the argmax this is
    ``log1p(rest)``, which a rounded log-softmax returns as 0.  With label smoothing a
    second pass over the cached row adds ``eps/C sum_c w_c (L - (x_c - m))`` (terms >= 0).
    Returns the double-double sums of the losses (times ``scale``, as in ``bce``: every
    term is formed at that scale, so a loss above the largest float still adds its scaled
    value) and of their target weights.  ``bad[r]``: rows holding +inf or NaN, or with a
    ``-inf`` logit that makes the loss infinite, left to the plain path.
    """
    sh = 0.0
    sl = 0.0
    wh = 0.0
    wl = 0.0
    for r in range(t0, t1):
        bad[r] = False
        tr = t[r]
        if use_ignore and tr == ignore:
            if write:
                out[r] = 0.0
            continue
        o = offsets[r]
        m, c, rh, rl = _lse_range(flat, o, o + n)
        if rh != rh or m == -_INF or flat[_U(o + tr)] == -_INF:
            bad[r] = True
            continue
        lh, ll = _log_cr(c, rh, rl)
        w_t = np.float64(wv[0] if wv.size == 1 else wv[tr])
        h, l, minus_inf = _ce_loss(flat, o, n, tr, wv, eps, m, lh, ll, w_t, scale)
        if minus_inf:  # a -inf logit of nonzero weight under label smoothing: the limit
            bad[r] = True
            continue
        if not abs(h) < _INF:  # an intermediate overflow: again at 2**-64, scaled back
            h, l, _ = _ce_loss(flat, o, n, tr, wv, eps, m, lh, ll, w_t, scale * _RESCUE)
            h, l = h * _UNRESCUE, l * _UNRESCUE  # exact, or inf where the loss exceeds the format
            l = l if abs(h) < _INF else 0.0
        if write:
            out[r] = h + l
        sh, e = _two_sum(sh, h)
        if abs(sh) < _INF:  # an infinite sum keeps a finite low part (no inf - inf)
            sl = sl + (e + l)
        wh, e = _two_sum(wh, w_t)
        wl = wl + e
    return sh, sl, wh, wl


@jit(inline="always")
def _ce_loss(
    flat: Any, o: int, n: int, tr: int, wv: Any, eps: float, m: float, lh: float, ll: float, w_t: float, s: float
) -> tuple[float, float, bool]:
    """``s`` times the loss of one row (finite ``m``, finite target logit) as a
    double-double, and whether label smoothing met a ``-inf`` logit of nonzero weight.

    ``s`` is a power of two: ``x s`` and ``m s`` are exact (an underflowing product only
    where the term is far below the rest of a huge loss), so the scaled loss is the loss
    scaled, rounded once."""
    v = np.float64(flat[_U(o + tr)])
    dh, dl = _two_sum(v * s, -(m * s))
    h, l = _two_sum(lh * s, -dh)
    l = l + (ll * s - dl)
    h, l = _fast_two_sum(h, l)
    if eps != 0.0:
        h, l = _dd_mul(h, l, 1.0 - eps, 0.0)
    if w_t != 1.0:
        h, l = _dd_mul(h, l, w_t, 0.0)
    if eps == 0.0:
        return h, l, False
    # eps/C sum_c w_c (-log p_c), every term >= 0; a zero weight removes a class even where
    # -log p_c is infinite
    th = 0.0
    tl = 0.0
    for c in range(n):
        w = np.float64(wv[0] if wv.size == 1 else wv[c])
        x = np.float64(flat[_U(o + c)])
        if w == 0.0:
            continue
        if x == -_INF:
            return _INF, 0.0, True
        dh, dl = _two_sum(x * s, -(m * s))
        nh, nl = _two_sum(lh * s, -dh)
        nl = nl + (ll * s - dl)
        if w != 1.0:
            nh, nl = _dd_mul(nh, nl, w, 0.0)
        th, e = _two_sum(th, nh)
        tl = tl + (e + nl)
    th, tl = _dd_mul(th, tl, eps / n, 0.0)
    h, l = _dd_add(h, l, th, tl)
    return h, l, False
