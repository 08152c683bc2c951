"""Floating-point formats, correct rounding of exact values, and ULP distance.

Everything here is exact: rounding works on the integer mantissa and exponent of an
mpmath number (``value = (-1)**sign * man * 2**exp``), never through ``float(mpf)``, and
the ULP distance counts representable values through the ordinal of the bit patterns.

Four formats are known: ``float16``, ``bfloat16``, ``float32`` and ``float64``.  NumPy has
no bfloat16 dtype, so a bfloat16 value is carried as a ``float32`` whose low 16 bits are
zero (every bfloat16 number is a float32 number with a shorter mantissa).

>>> import mpmath
>>> round_mpf(mpmath.mpf(1) / 3, "float16")
0.333251953125
>>> ulp_distance(np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0)), "float32")
array(1.)
>>> float(bits(1.0))
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath.libmp as _libmp
import numpy as np

from stablenn import _messages

__all__ = [
    "FORMATS",
    "Format",
    "bits",
    "from_ordinal",
    "get_format",
    "ordinal",
    "round_ball",
    "round_mpf",
    "round_tuple",
    "round_values",
    "to_storage",
    "ulp_distance",
    "ulp_of",
]


@dataclass(frozen=True)
class Format:
    """An IEEE-754-style binary format.

    Parameters
    ----------
    name : str
        ``"float16"``, ``"bfloat16"``, ``"float32"`` or ``"float64"``.
    precision : int
        Significand bits including the implicit leading bit (p).
    emin : int
        Exponent of the smallest normal number (``2**emin``).
    emax : int
        Exponent of the largest binade; the largest finite value is
        ``(2 - 2**(1 - p)) * 2**emax``.
    storage : numpy.dtype
        The NumPy dtype that holds values of the format exactly (float32 for bfloat16).
    width : int
        Bits per value.
    """

    name: str
    precision: int
    emin: int
    emax: int
    storage: np.dtype
    width: int

    @property
    def eps(self) -> float:
        """Distance from 1 to the next larger value, ``2**(1 - p)``."""
        return math.ldexp(1.0, 1 - self.precision)

    @property
    def unit_roundoff(self) -> float:
        """Half of `eps`: the largest relative error of one rounding to nearest."""
        return math.ldexp(1.0, -self.precision)

    @property
    def max(self) -> float:
        """Largest finite value."""
        return math.ldexp(2.0 - self.eps, self.emax)

    @property
    def tiny(self) -> float:
        """Smallest positive normal value."""
        return math.ldexp(1.0, self.emin)

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value."""
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def exponent_bits(self) -> int:
        """Width of the biased exponent field."""
        return self.width - self.precision

    @property
    def max_ordinal(self) -> int:
        """Ordinal of +inf: one more than that of the largest finite value."""
        return ((1 << self.exponent_bits) - 1) << (self.precision - 1)


FORMATS: dict[str, Format] = {
    "float16": Format("float16", 11, -14, 15, np.dtype(np.float16), 16),
    "bfloat16": Format("bfloat16", 8, -126, 127, np.dtype(np.float32), 16),
    "float32": Format("float32", 24, -126, 127, np.dtype(np.float32), 32),
    "float64": Format("float64", 53, -1022, 1023, np.dtype(np.float64), 64),
}


def get_format(dtype: Any) -> Format:
    """The `Format` named by `dtype`.

    Accepts a `Format`, a name (``"float32"``), a NumPy dtype or scalar type, or any
    object whose ``str`` ends with a format name (``torch.bfloat16``, a JAX dtype).

    >>> get_format(np.float32).precision
    24
    >>> get_format("bfloat16").emin
    -126
    """
    if isinstance(dtype, Format):
        return dtype
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    name = name.rsplit(".", 1)[-1]
    try:
        return FORMATS[name]
    except KeyError:
        raise _messages.audit_unknown_dtype(dtype, tuple(FORMATS)) from None


# ---------------------------------------------------------------- correct rounding


def _round_parts(negative: bool, man: int, exp: int, fmt: Format) -> float:
    """Round ``(-1)**negative * man * 2**exp`` (``man > 0``) to `fmt`, ties to even.

    Exact integer arithmetic: the quantum of the result is ``2**q`` with
    ``q = max(e, emin) - (p - 1)`` where ``2**e <= |value| < 2**(e + 1)``; below the
    normal range ``q`` stays at ``emin - p + 1``, which gives the subnormals.  A result of
    ``2**(emax + 1)`` or more after rounding overflows to infinity, as IEEE 754 rounds
    with unbounded exponent first.
    """
    e = exp + man.bit_length() - 1
    if e > fmt.emax:
        return -math.inf if negative else math.inf
    if e < fmt.emin - fmt.precision:
        # |value| < 2**(e + 1) <= half the smallest subnormal: rounds to zero (a tie at
        # exactly half goes to the even neighbour, zero, too).
        return -0.0 if negative else 0.0
    q = max(e, fmt.emin) - (fmt.precision - 1)
    if exp >= q:
        n = man << (exp - q)
    else:
        shift = q - exp
        n = man >> shift
        rem = man - (n << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and n & 1):
            n += 1
    if n == 0:
        return -0.0 if negative else 0.0
    if n.bit_length() - 1 + q > fmt.emax:
        return -math.inf if negative else math.inf
    # n <= 2**p <= 2**53 converts exactly, and n * 2**q lies in float64's range.
    value = math.ldexp(float(n), q)
    return -value if negative else value


def _round_fraction(value: Fraction, fmt: Format) -> float:
    """Correct rounding of an exact rational (ties to even)."""
    if value == 0:
        return 0.0
    negative = value < 0
    num, den = abs(value.numerator), value.denominator
    # Scale so that the integer quotient carries p + 2 bits and the remainder decides.
    e = num.bit_length() - den.bit_length()
    if (num << max(0, -e)) < (den << max(0, e)):
        e -= 1
    q = max(e, fmt.emin) - (fmt.precision - 1)
    if q >= 0:
        n, rem = divmod(num, den << q)
        twice = 2 * rem
        denom = den << q
    else:
        n, rem = divmod(num << -q, den)
        twice = 2 * rem
        denom = den
    if twice > denom or (twice == denom and n & 1):
        n += 1
    if n == 0:
        return -0.0 if negative else 0.0
    if n.bit_length() - 1 + q > fmt.emax:
        return -math.inf if negative else math.inf
    result = math.ldexp(float(n), q)
    return -result if negative else result


def round_mpf(value: Any, dtype: Any) -> float:
    """The correctly rounded (to nearest, ties to even) value of `value` in `dtype`.

    Parameters
    ----------
    value : mpmath.mpf, mpmath raw tuple, fractions.Fraction, int or float
        The exact value.  An mpf's sign of zero is lost by mpmath itself; pass ``-0.0``
        as a Python float to keep it.
    dtype : str or dtype
        The target format.

    Returns
    -------
    float
        A Python float equal to the rounded value (every format is a subset of float64):
        signed zeros, subnormals of the format, ``inf`` for overflow, ``nan`` for NaN.

    >>> import mpmath
    >>> round_mpf(mpmath.mpf(2) ** -25, "float32")        # exactly half of 2**-24 ... representable
    2.9802322387695312e-08
    >>> round_mpf(mpmath.mpf(65520), "float16")            # halfway above the max: overflows
    inf
    >>> round_mpf(mpmath.mpf(2) ** -25, "float16")         # below half the smallest subnormal
    0.0
    """
    fmt = get_format(dtype)
    if isinstance(value, Fraction):
        return _round_fraction(value, fmt)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if value == 0.0 or not math.isfinite(value):
            return value
        tup = _libmp.from_float(value)
    elif isinstance(value, (int, np.integer)):
        tup = _libmp.from_int(int(value))
    elif isinstance(value, tuple):
        tup = value
    else:
        tup = getattr(value, "_mpf_", None)
        interval = getattr(value, "_mpi_", None)
        if tup is None and interval is not None and interval[0] == interval[1]:
            tup = interval[0]  # a point interval (mpmath.iv gives these for endpoints)
        if tup is None:
            raise _messages.audit_not_exact_value(value)
    sign, man, exp, _bc = tup
    if not man:
        if tup == _libmp.fnan:
            return math.nan
        if tup == _libmp.finf:
            return math.inf
        if tup == _libmp.fninf:
            return -math.inf
        return -0.0 if sign else 0.0
    return _round_parts(bool(sign), int(man), int(exp), fmt)


def round_tuple(t: tuple, fmt: Format) -> float:
    """`round_mpf` for an mpmath raw tuple and a `Format` (no checks: the oracle's hot path)."""
    sign, man, exp, _bc = t
    if not man:
        if t == _libmp.fnan:
            return math.nan
        if t == _libmp.finf:
            return math.inf
        if t == _libmp.fninf:
            return -math.inf
        return -0.0 if sign else 0.0
    return _round_parts(bool(sign), int(man), int(exp), fmt)


def round_ball(v: tuple, err: tuple, fmt: Format) -> float | None:
    """The rounding of every point of ``[v - err, v + err]`` if they agree, else None.

    `v` and `err` (``>= 0``) are mpmath raw tuples.  Fast path, in integers: when `v` is
    a normal number at least one binade away from the ends of the format's range, the
    only rounding boundaries near it are midpoints between neighbours, and the nearest
    one is this quantum cell's midpoint (or, in the first cell of a binade, the
    finer-spaced midpoint ``2**(q-2)`` below it, which ``err < 2**(q-2)`` keeps out of
    reach).  Otherwise both ends are rounded and compared; rounding is monotone, so the
    ends decide for the whole interval.
    """
    sign, man, exp, bc = v
    if man and err[1]:
        man = int(man)
        exp = int(exp)
        e = exp + int(bc) - 1
        if fmt.emin < e < fmt.emax:
            q = e - fmt.precision + 1
            shift = q - exp
            if shift >= 2:
                r = man & ((1 << shift) - 1)
                half = 1 << (shift - 1)
                dist = abs(r - half)  # distance to the midpoint, in units of 2**exp
                eman, eexp = int(err[1]), int(err[2])
                # err < dist * 2**exp and err < 2**(q-2) = 2**(shift - 2) * 2**exp
                limit = min(dist, 1 << (shift - 2))
                if eexp >= exp:
                    ok = (eman << (eexp - exp)) < limit
                else:
                    ok = eman < (limit << (exp - eexp))
                if ok:
                    n = (man >> shift) + (1 if r > half else 0)
                    value = math.ldexp(float(n), q)
                    return -value if sign else value
    lo = round_tuple(_libmp.mpf_sub(v, err), fmt)
    hi = round_tuple(_libmp.mpf_add(v, err), fmt)
    if lo != hi:
        return None
    return round_tuple(v, fmt)


def round_values(values: Any, dtype: Any) -> np.ndarray:
    """`round_mpf` over an iterable, as an array of the format's storage dtype."""
    fmt = get_format(dtype)
    out = np.array([round_mpf(v, fmt) for v in values], dtype=np.float64)
    return out.astype(fmt.storage)


def to_storage(values: Any, dtype: Any) -> np.ndarray:
    """Values of `dtype` as a NumPy array of its storage dtype, checked to be representable.

    >>> to_storage([1.0, 0.5], "bfloat16").dtype
    dtype('float32')
    """
    fmt = get_format(dtype)
    a = np.asarray(values)
    if a.dtype == fmt.storage and fmt.name != "bfloat16":
        return a
    wide = a.astype(np.float64)
    narrow = wide.astype(fmt.storage)
    if fmt.name == "bfloat16":
        low = narrow.view(np.uint32) & np.uint32(0xFFFF)
        bad = (low != 0) & ~np.isnan(narrow)
    else:
        with np.errstate(invalid="ignore"):
            bad = (narrow.astype(np.float64) != wide) & ~np.isnan(wide)
    if np.any(bad):
        first = wide[bad].ravel()[0]
        raise _messages.audit_not_representable(float(first), fmt.name)
    return narrow


# ---------------------------------------------------------------- ordinals and ULPs


def ordinal(values: Any, dtype: Any) -> np.ndarray:
    """Signed ordinal of each value's bit pattern: consecutive values differ by 1.

    ``+0`` and ``-0`` both map to 0, the smallest positive subnormal to 1, ``+inf`` to
    one more than the largest finite value; negative values mirror positive ones.
    NaN has no ordinal (its slot holds an arbitrary number: mask it first).

    >>> ordinal([0.0, -0.0, 1.0], "float16").tolist()
    [0, 0, 15360]
    """
    fmt = get_format(dtype)
    a = to_storage(values, fmt)
    if fmt.name == "float64":
        raw = a.view(np.int64)
        negative = raw < 0
        mag = raw & np.int64(0x7FFF_FFFF_FFFF_FFFF)
    else:
        uint = {16: np.uint16, 32: np.uint32}[a.dtype.itemsize * 8]
        raw = a.view(uint).astype(np.int64)
        if fmt.name == "bfloat16":
            raw = raw >> 16
        sign_bit = np.int64(1) << (fmt.width - 1)
        negative = (raw & sign_bit) != 0
        mag = raw & (sign_bit - 1)
    return np.where(negative, -mag, mag)


def from_ordinal(ordinals: Any, dtype: Any) -> np.ndarray:
    """Inverse of `ordinal`: the values (storage dtype) with the given ordinals.

    Ordinal 0 gives ``+0``.  Ordinals beyond ``+-inf`` are clipped to ``+-inf``.

    >>> from_ordinal([1, -1], "float32").tolist()
    [1.401298464324817e-45, -1.401298464324817e-45]
    """
    fmt = get_format(dtype)
    o = np.asarray(ordinals, dtype=np.int64)
    o = np.clip(o, -fmt.max_ordinal, fmt.max_ordinal)
    mag = np.abs(o)
    negative = o < 0
    if fmt.name == "float64":
        raw = np.where(negative, mag | np.int64(-0x8000_0000_0000_0000), mag)
        return raw.astype(np.int64).view(np.float64)
    sign_bit = np.int64(1) << (fmt.width - 1)
    raw = np.where(negative, mag | sign_bit, mag)
    if fmt.name == "bfloat16":
        return (raw << 16).astype(np.uint32).view(np.float32)
    uint = {16: np.uint16, 32: np.uint32}[fmt.width]
    return raw.astype(uint).view(fmt.storage)


def ulp_distance(got: Any, exact: Any, dtype: Any) -> np.ndarray:
    """Herbie's error measure: how many representable values lie from `got` to `exact`.

    Parameters
    ----------
    got, exact : array_like
        Values representable in `dtype` (for bfloat16: float32 values with bfloat16
        bits); `exact` is the correctly rounded exact result.  They broadcast.
    dtype : str or dtype
        The format whose representable values are counted.

    Returns
    -------
    numpy.ndarray of float64
        The ordinal distance: 0 when equal (``+0`` and ``-0`` are equal, so are equal
        infinities and two NaNs), 1 between neighbours, ``inf`` between a NaN and a
        number.  An infinity counts as the neighbour of the largest finite value, as in
        Herbie.  Distances above 2**53 are rounded to float64.

    >>> ulp_distance([0.0, np.nan, np.nan, np.inf], [-0.0, np.nan, 1.0, np.inf], "float64").tolist()
    [0.0, 0.0, inf, 0.0]
    """
    fmt = get_format(dtype)
    g = to_storage(got, fmt)
    e = to_storage(exact, fmt)
    g, e = np.broadcast_arrays(g, e)
    og = ordinal(g, fmt)
    oe = ordinal(e, fmt)
    same_side = (og >= 0) == (oe >= 0)
    # Same side of zero: the difference fits in int64 exactly.  Opposite sides: the sum of
    # magnitudes fits in uint64 (each is below 2**63).
    diff_same = np.abs(np.where(same_side, og - oe, 0)).astype(np.float64)
    diff_cross = (np.abs(og).astype(np.uint64) + np.abs(oe).astype(np.uint64)).astype(np.float64)
    dist = np.where(same_side, diff_same, diff_cross)
    nan_g = np.isnan(g)
    nan_e = np.isnan(e)
    dist = np.where(nan_g | nan_e, np.inf, dist)
    dist = np.where(nan_g & nan_e, 0.0, dist)
    return dist


def bits(ulps: Any) -> np.ndarray:
    """Herbie's bits of error: ``log2(1 + ulps)`` (0 when exact, 1 at one ULP).

    >>> bits([0.0, 1.0, 3.0]).tolist()
    [0.0, 1.0, 2.0]
    """
    return np.log2(1.0 + np.asarray(ulps, dtype=np.float64))


def ulp_of(values: Any, dtype: Any) -> np.ndarray:
    """Spacing of `dtype` at each value: ``2**(max(e, emin) - p + 1)`` for ``2**e <= |v|``.

    Defined for finite values (zero gives the smallest subnormal); for infinities and
    NaN it is NaN.

    >>> ulp_of([1.0, 0.0, 1.5], "float32").tolist()
    [1.1920928955078125e-07, 1.401298464324817e-45, 1.1920928955078125e-07]
    """
    fmt = get_format(dtype)
    v = np.abs(np.asarray(values, dtype=np.float64))
    finite = np.isfinite(v)
    safe = np.where(finite & (v > 0), v, 1.0)
    _, e = np.frexp(safe)  # safe = f * 2**e with f in [0.5, 1)
    e = np.maximum(e - 1, fmt.emin)
    out = np.ldexp(1.0, e - fmt.precision + 1)
    out = np.where(v == 0, fmt.smallest_subnormal, out)
    return np.where(finite, out, np.nan)
