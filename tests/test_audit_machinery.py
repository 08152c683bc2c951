"""Tests of the measuring machinery: ULP distance, correct rounding, sampler, oracle.

Truth here is independent of the code under test: ULP distances are built from bit
patterns by hand, rounding is checked against exact `fractions.Fraction` arithmetic over
explicitly enumerated neighbours, and oracle values against closed forms evaluated with
mpmath's own high-level functions at thousands of bits.
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import mpmath
import mpmath.libmp as L
import numpy as np
import pytest

from stablenn.audit import _budgets, _measure, _oracle, _sampler
from stablenn.audit._ulp import (
    FORMATS,
    bits,
    from_ordinal,
    get_format,
    ordinal,
    round_ball,
    round_mpf,
    to_storage,
    ulp_distance,
    ulp_of,
)

DTYPES = ("float16", "bfloat16", "float32", "float64")


# ---------------------------------------------------------------- helpers independent of _ulp


def _from_bits(dtype: str, pattern: int) -> np.ndarray:
    """The value whose IEEE bit pattern is `pattern` (bfloat16: the top half of a float32)."""
    if dtype == "float16":
        return np.array([pattern], dtype=np.uint16).view(np.float16)
    if dtype == "bfloat16":
        return np.array([pattern << 16], dtype=np.uint32).view(np.float32)
    if dtype == "float32":
        return np.array([pattern], dtype=np.uint32).view(np.float32)
    return np.array([pattern], dtype=np.uint64).view(np.float64)


def _all_float16() -> list[float]:
    v = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    return sorted({float(x) for x in v[np.isfinite(v)]})  # every finite float16 (one zero)


_F16_VALUES = _all_float16()


def _reference_round(value: Fraction, dtype: str) -> float:
    """Round-to-nearest-even by brute force: exact distances to enumerated candidates.

    float16: every finite value is a candidate.  Wider formats: the float64 nearest to
    `value` (Python's correctly rounded Fraction -> float), narrowed, and its neighbours.
    Overflow: ``2**(emax + 1)`` stands for infinity (IEEE 754 rounds with an unbounded
    exponent first), with an even significand.
    """
    fmt = FORMATS[dtype]
    top = Fraction(2) ** (fmt.emax + 1)
    if dtype == "float16":
        # every finite float16 is a candidate; bisect finds the two around `value`
        i = bisect.bisect_left(_F16_VALUES, value)
        near = _F16_VALUES[max(0, i - 2) : i + 2]
        candidates = [(Fraction(v), v) for v in near]
    else:
        try:
            approx = float(value)  # Python converts a Fraction with correct rounding
        except OverflowError:
            approx = 1.7e308 if value > 0 else -1.7e308
        storage = {"bfloat16": np.float32, "float32": np.float32, "float64": np.float64}[dtype]
        with np.errstate(over="ignore"):
            centre = np.array([approx]).astype(storage)
        if dtype == "bfloat16":
            raw = int(centre.view(np.uint32)[0]) >> 16
            pats = [raw + k for k in range(-2, 3)]
            cands = [float(_from_bits("bfloat16", p & 0xFFFF)[0]) for p in pats if 0 <= p < 0x10000]
        else:
            c = centre[0]
            cands = [float(c)]
            lo = hi = c
            for _ in range(2):  # (the neighbour of the largest finite value is inf)
                with np.errstate(over="ignore"):
                    lo = np.nextafter(lo, storage(-np.inf))
                    hi = np.nextafter(hi, storage(np.inf))
                cands += [float(lo), float(hi)]
        candidates = [(Fraction(v), v) for v in cands if math.isfinite(v)]
    candidates.append((top, math.inf))
    candidates.append((-top, -math.inf))
    best = min(abs(value - exact) for exact, _ in candidates)
    ties = [(exact, v) for exact, v in candidates if abs(value - exact) == best]
    if len(ties) == 1:
        chosen = ties[0][1]
    else:
        # the even one: its significand's last bit is 0 (infinity counts as 2**(emax+1), even)
        def even(v: float) -> bool:
            if math.isinf(v):
                return True
            return int(ordinal(np.array([v]), dtype)[0]) % 2 == 0

        chosen = next(v for _, v in ties if even(v))
    if chosen == 0.0:
        return -0.0 if value < 0 else 0.0
    return chosen


def _as_tuple(value: Fraction) -> tuple:
    """An exact mpmath raw number for a dyadic rational."""
    den = value.denominator
    assert den & (den - 1) == 0
    return L.from_man_exp(value.numerator, -(den.bit_length() - 1))


# ---------------------------------------------------------------- ULP distance


@pytest.mark.parametrize(
    ("dtype", "a", "b", "expected"),
    [
        ("float32", 0x3F800000, 0x3F800001, 1),  # 1.0 and the next float32
        ("float32", 0x00000001, 0x80000001, 2),  # +-smallest subnormal: across both zeros
        ("float32", 0x00000000, 0x80000000, 0),  # +0 and -0
        ("float32", 0x7F7FFFFF, 0x7F800000, 1),  # largest finite and +inf (Herbie)
        ("float32", 0x007FFFFF, 0x00800000, 1),  # largest subnormal, smallest normal
        ("float32", 0x3F800000, 0xBF800000, 2 * 0x3F800000),  # 1 and -1
        ("float32", 0x7F800000, 0xFF800000, 2 * 0x7F800000),  # +inf and -inf
        ("float16", 0x3C00, 0x3C01, 1),
        ("float16", 0x7BFF, 0x7C00, 1),
        ("float16", 0x0001, 0x8001, 2),
        ("float16", 0x3C00, 0x3C10, 16),
        ("bfloat16", 0x3F80, 0x3F81, 1),
        ("bfloat16", 0x7F7F, 0x7F80, 1),
        ("bfloat16", 0x0001, 0x8002, 3),
        ("float64", 0x3FF0000000000000, 0x3FF0000000000001, 1),
        ("float64", 0x0000000000000001, 0x8000000000000001, 2),
        ("float64", 0x7FEFFFFFFFFFFFFF, 0x7FF0000000000000, 1),
        ("float64", 0x3FF0000000000000, 0x3FF0000000100000, 1 << 20),
    ],
)
def test_ulp_distance_of_bit_patterns(dtype: str, a: int, b: int, expected: int) -> None:
    x, y = _from_bits(dtype, a), _from_bits(dtype, b)
    assert ulp_distance(x, y, dtype).tolist() == [float(expected)]
    assert ulp_distance(y, x, dtype).tolist() == [float(expected)]


def test_ulp_distance_across_zero_in_float64_is_exact_enough() -> None:
    # largest finite positive and negative: 2 * 0x7FEFFFFFFFFFFFFF patterns apart
    x = _from_bits("float64", 0x7FEFFFFFFFFFFFFF)
    y = _from_bits("float64", 0xFFEFFFFFFFFFFFFF)
    assert ulp_distance(x, y, "float64")[0] == float(2 * 0x7FEFFFFFFFFFFFFF)


def test_ulp_distance_special_values() -> None:
    got = np.array([np.nan, np.nan, 1.0, np.inf, -np.inf, 0.0])
    exact = np.array([np.nan, 1.0, np.nan, np.inf, -np.inf, -0.0])
    assert ulp_distance(got, exact, "float64").tolist() == [0.0, math.inf, math.inf, 0.0, 0.0, 0.0]


def test_ulp_distance_refuses_values_not_in_the_format() -> None:
    with pytest.raises(ValueError, match="representable in float32"):
        ulp_distance(np.array([0.1]), np.array([0.1]), "float32")
    with pytest.raises(ValueError, match="representable in bfloat16"):
        ulp_distance(np.float32([1.0 + 2**-10]), np.float32([1.0]), "bfloat16")


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(TypeError, match="`dtype` must name a floating-point format"):
        get_format("float8")


@pytest.mark.parametrize("dtype", DTYPES)
def test_ordinal_round_trip_over_random_bit_patterns(dtype: str) -> None:
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(5)
    o = rng.integers(-fmt.max_ordinal, fmt.max_ordinal + 1, size=2000)
    assert (ordinal(from_ordinal(o, dtype), dtype) == o).all()


def test_bits_is_log2_of_one_plus_ulps() -> None:
    assert bits([0.0, 1.0, 3.0, 1023.0]).tolist() == [0.0, 1.0, 2.0, 10.0]


def test_ulp_of_matches_numpy_spacing() -> None:
    x = np.array([1.0, 3.5, 1e-310, 6.5e-3, 1e300])
    assert (ulp_of(x, "float64") == np.spacing(x)).all()
    y = np.array([1.0, 3.5, 1e-40, 6.5e-3], dtype=np.float32)
    assert (ulp_of(y, "float32") == np.spacing(y).astype(np.float64)).all()


# ---------------------------------------------------------------- correct rounding


def _random_fractions(dtype: str, n: int, seed: int) -> list[Fraction]:
    """Rationals of every magnitude of the format, plus exact midpoints and overflow edges."""
    fmt = FORMATS[dtype]
    rng = np.random.default_rng(seed)
    out: list[Fraction] = []
    for _ in range(n):
        e = int(rng.integers(fmt.emin - fmt.precision - 3, fmt.emax + 2))
        num = int(rng.integers(1, 1 << 62))
        den = int(rng.integers(1, 1 << 40))
        v = Fraction(num, den) / Fraction(num // den + 1) * Fraction(2) ** e
        out.append(-v if rng.random() < 0.5 else v)
    # exact midpoints between neighbours (ties), in the normal and subnormal ranges
    for _ in range(n // 4):
        o = int(rng.integers(0, fmt.max_ordinal - 1))
        a, b = from_ordinal([o, o + 1], dtype).astype(np.float64)
        out.append((Fraction(float(a)) + Fraction(float(b))) / 2)
    top = Fraction(fmt.max)
    half_ulp = Fraction(2) ** (fmt.emax - fmt.precision)
    out += [top + half_ulp, top + half_ulp - Fraction(1, 1 << 20), -(top + half_ulp), Fraction(0)]
    tiny = Fraction(fmt.smallest_subnormal)
    out += [tiny / 2, tiny / 2 + Fraction(2) ** (fmt.emin - 2 * fmt.precision), tiny * 3 / 2, -tiny / 4]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_mpf_against_exact_fraction_arithmetic(dtype: str) -> None:
    for v in _random_fractions(dtype, 300 if dtype == "float16" else 600, seed=11):
        expected = _reference_round(v, dtype)
        got_fraction = round_mpf(v, dtype)
        assert got_fraction == expected and math.copysign(1, got_fraction) == math.copysign(1, expected), v
        if v.denominator & (v.denominator - 1) == 0 and v != 0:  # dyadic: as an mpmath number too
            got_mpf = round_mpf(_as_tuple(v), dtype)
            assert got_mpf == expected, v


def test_round_mpf_special_values_and_signed_zero() -> None:
    assert math.isnan(round_mpf(mpmath.mpf("nan"), "float32"))
    assert round_mpf(mpmath.mpf("inf"), "float16") == math.inf
    assert round_mpf(mpmath.mpf("-inf"), "float16") == -math.inf
    assert math.copysign(1, round_mpf(-0.0, "float64")) == -1
    # -2**-30 rounds to -0 in float16 (below half the smallest subnormal, 2**-25)
    r = round_mpf(mpmath.mpf(-(2.0**-30)), "float16")
    assert r == 0 and math.copysign(1, r) == -1
    # an astronomically small number (exponent -10**30) rounds to 0 without big integers
    assert round_mpf(L.from_man_exp(3, -(10**30)), "float64") == 0.0
    assert round_mpf(L.from_man_exp(3, 10**30), "float64") == math.inf


def test_round_ball_fast_path_agrees_with_rounding_both_ends() -> None:
    rng = np.random.default_rng(3)
    for dtype in DTYPES:
        fmt = FORMATS[dtype]
        for _ in range(400):
            man = int(rng.integers(1, 1 << 62)) | 1
            exp = int(rng.integers(fmt.emin - 70, fmt.emax - 62))
            v = L.from_man_exp(-man if rng.random() < 0.5 else man, exp)
            err = L.from_man_exp(int(rng.integers(1, 1 << 20)), exp + int(rng.integers(-40, 44)))
            lo = round_mpf(L.mpf_sub(v, err), dtype)
            hi = round_mpf(L.mpf_add(v, err), dtype)
            expected = round_mpf(v, dtype) if lo == hi else None
            assert round_ball(v, err, fmt) == expected


# ---------------------------------------------------------------- sampler


@pytest.mark.parametrize("dtype", DTYPES)
def test_sampler_covers_every_exponent_sign_and_special_value(dtype: str) -> None:
    fmt = FORMATS[dtype]
    x = _sampler.sample_unary(dtype, 20000, seed=0)
    assert x.dtype == fmt.storage and x.size == 20000
    if dtype == "bfloat16":
        assert not (x.view(np.uint32) & 0xFFFF).any()
    finite = x[np.isfinite(x) & (x != 0)].astype(np.float64)
    # binade of each value; every subnormal shares the binade below emin
    binade = np.maximum(np.frexp(np.abs(finite))[1] - 1, fmt.emin - 1)
    expected = set(range(fmt.emin - 1, fmt.emax + 1))
    assert set(binade[finite > 0].tolist()) == expected
    assert set(binade[finite < 0].tolist()) == expected
    wide = x.astype(np.float64)
    for v in (0.0, fmt.smallest_subnormal, fmt.max, math.inf, 1.0):
        assert (wide == v).any() and (wide == -v).any(), v
    assert np.signbit(wide[wide == 0]).any() and (~np.signbit(wide[wide == 0])).any()
    assert np.isnan(wide).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sampler_sweeps_the_hard_regions(dtype: str) -> None:
    x = _sampler.sample_unary(dtype, 20000, seed=1).astype(np.float64)
    for name, c in _sampler.hard_points(dtype).items():
        if c >= FORMATS[dtype].max:
            continue
        for centre in (c, -c):
            near = np.abs(x - centre) <= 0.02 * abs(centre)
            assert near.sum() >= 20, (name, centre)


def test_sampler_is_deterministic_from_its_seed() -> None:
    a = _sampler.sample_unary("float32", 1000, seed=4)
    b = _sampler.sample_unary("float32", 1000, seed=4)
    c = _sampler.sample_unary("float32", 1000, seed=5)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    v1 = _sampler.sample_vectors("float64", 30, seed=2, weights=True)
    v2 = _sampler.sample_vectors("float64", 30, seed=2, weights=True)
    assert all(p.x.tobytes() == q.x.tobytes() for p, q in zip(v1, v2, strict=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_probability_samples_are_dense_near_zero_half_and_one(dtype: str) -> None:
    fmt = FORMATS[dtype]
    p = _sampler.sample_unary(dtype, 5000, seed=2, kind="probability").astype(np.float64)
    inside = p[(p >= 0) & (p <= 1)]
    assert inside.size >= 0.99 * (p.size - 20)
    close = 2.0 ** -(fmt.precision // 2)
    assert np.mean(np.abs(inside - 0.5) < close) > 0.1
    assert np.mean((1 - inside) < close) > 0.1
    assert np.mean(inside < close) > 0.1
    u = _sampler.sample_unary(dtype, 5000, seed=2, kind="unit").astype(np.float64)
    assert (u < -0.5).mean() > 0.2 and (u > 0.5).mean() > 0.2


def test_vector_samples_cover_lengths_kinds_and_weights() -> None:
    cases = _sampler.sample_vectors("float64", 600, seed=0, weights=True)
    lengths = np.array([c.x.size for c in cases])
    assert lengths.min() == 1 and lengths.max() > 300
    kinds = {c.kind.split("+")[0] for c in cases}
    assert kinds == set(_sampler._VECTOR_KINDS)
    gaps = []
    for c in cases:
        finite = np.sort(c.x[np.isfinite(c.x)])
        if c.kind == "dominant" and finite.size > 1:
            gaps.append(finite[-1] - finite[-2])
    assert min(gaps) >= 30 and max(gaps) <= 800
    assert any(np.isneginf(c.x).all() for c in cases)
    weighted = [c.b for c in cases if c.b is not None]
    assert any((b < 0).any() and (b > 0).any() for b in weighted)
    assert any(0 < np.abs(b[b != 0]).max() < 1e-250 for b in weighted if (b != 0).any())
    assert any((b == 0).any() for b in weighted)


@pytest.mark.parametrize("dtype", DTYPES)
def test_label_samples_are_hard_soft_and_within_1e8_of_the_ends(dtype: str) -> None:
    fmt = FORMATS[dtype]
    y = _sampler.sample_labels(dtype, 4000, seed=0).astype(np.float64)
    assert ((y >= 0) & (y <= 1)).all()
    assert (y == 0).any() and (y == 1).any()
    if fmt.eps <= 1e-8:
        assert ((y > 0) & (y <= 1e-8)).any() and ((y < 1) & (y >= 1 - 1e-8)).any()
    else:  # the representable values nearest 0 and 1
        assert (y == fmt.smallest_subnormal).any()
        assert (y == 1 - fmt.eps / 2).any()


def test_loss_batches_carry_every_option() -> None:
    bce = _sampler.sample_bce("float32", 3000, seed=0)
    assert sum(b.logits.size for b in bce) == 3000
    assert any(b.weight is not None for b in bce) and any(b.pos_weight is not None for b in bce)
    ce = _sampler.sample_cross_entropy("float32", 300, seed=0, max_classes=64)
    assert sum(b.logits.shape[0] for b in ce) == 300
    assert any(b.targets.ndim == 1 for b in ce) and any(b.targets.ndim == 2 for b in ce)
    assert any(b.ignore_index is not None and (b.targets == b.ignore_index).any() for b in ce)
    assert any(b.label_smoothing > 0 for b in ce) and any(b.weight is not None for b in ce)


# ---------------------------------------------------------------- oracle against closed forms


def _mp(dtype: str, fn, *args, prec: int = 3000) -> float:
    """Round a closed form evaluated with mpmath's high-level functions at `prec` bits."""
    with mpmath.workprec(prec):
        return round_mpf(fn(*[mpmath.mpf(float(a)) for a in args]), dtype)


# Closed forms in mpmath's high-level functions, written independently of the oracle's
# libmp formulas.
_CLOSED = {
    "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
    "log_sigmoid": lambda x: mpmath.log(1 / (1 + mpmath.exp(-x))),
    "softplus": lambda x: mpmath.log(1 + mpmath.exp(x)),
    "tanh": mpmath.tanh,
    "sigmoid_grad": lambda x: mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2,
    "tanh_grad": lambda x: mpmath.sech(x) ** 2,
    "sigmoid_via_tanh": lambda x: (1 + mpmath.tanh(x / 2)) / 2,
    "tanh_via_sigmoid": lambda x: 2 / (1 + mpmath.exp(-2 * x)) - 1,
}
_POINTS = [-800.0, -745.5, -100.0, -37.0, -20.0, -1.5, -1e-30, 1e-300, 0.25, 1.0, 9.5, 17.5, 40.0, 88.5, 710.0]


@pytest.mark.parametrize("name", sorted(_CLOSED))
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_oracle_elementwise_against_closed_forms(name: str, dtype: str) -> None:
    with np.errstate(over="ignore"):
        x = np.array(_POINTS).astype(dtype)
    x = x[np.isfinite(x)]
    got = _oracle.elementwise(name, x, dtype)
    expected = [_mp(dtype, _CLOSED[name], v) for v in x]
    assert got.astype(np.float64).tolist() == expected


def test_oracle_logit_near_one_half_and_the_ends() -> None:
    p = np.array([0.5 + 2**-53, 0.5 - 2**-54, 2**-1074, 1 - 2**-53, 0.25, 0.75])
    got = _oracle.elementwise("logit", p, "float64")
    assert got.tolist() == [_mp("float64", lambda v: mpmath.log(v / (1 - v)), v) for v in p]
    specials = _oracle.elementwise("logit", np.array([0.0, 1.0, -0.5, 1.5, np.nan, 0.5]), "float64")
    assert specials[:2].tolist() == [-math.inf, math.inf] and np.isnan(specials[2:5]).all() and specials[5] == 0


def test_oracle_from_output_functions_are_exact_products() -> None:
    y = np.array([0.25, 0.5 + 2**-24, 1 - 2**-24, 3e-45, -0.0], dtype=np.float32)
    got = _oracle.elementwise("sigmoid_grad_from_output", y, "float32").astype(np.float64)
    expected = [round_mpf(Fraction(float(v)) * (1 - Fraction(float(v))), "float32") for v in y]
    assert got.tolist() == expected
    assert math.copysign(1.0, got[-1]) == -1.0  # -0 * (1 - -0) = -0
    got = _oracle.elementwise("tanh_grad_from_output", y, "float32").astype(np.float64)
    assert got.tolist() == [round_mpf((1 - Fraction(float(v))) * (1 + Fraction(float(v))), "float32") for v in y]


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "softplus", "tanh", "sigmoid_grad", "tanh_grad", "logit"])
def test_oracle_derivatives_against_mpmath_diff(name: str) -> None:
    points = [0.3, 0.7, 0.05] if name == "logit" else [-30.0, -2.5, -1e-5, 0.75, 3.0, 25.0]
    got = _oracle.derivative(name, np.array(points), "float64")
    fn = {**_CLOSED, "logit": lambda v: mpmath.log(v / (1 - v))}[name]
    with mpmath.workprec(2000):
        expected = [round_mpf(mpmath.diff(fn, mpmath.mpf(v)), "float64") for v in points]
    assert got.tolist() == expected


def _mp_lse(x, b=None, prec: int = 6000):
    with mpmath.workprec(prec):
        xs = [mpmath.mpf(float(v)) for v in x]
        bs = [mpmath.mpf(1)] * len(xs) if b is None else [mpmath.mpf(float(v)) for v in b]
        s = mpmath.fsum(bi * mpmath.exp(xi) for xi, bi in zip(xs, bs, strict=True))
        return s, xs


def test_oracle_logsumexp_closed_forms() -> None:
    # log(2), a + log(3), and an exact cancellation of the weights
    assert _oracle.logsumexp(np.zeros(2), "float64") == (_mp("float64", lambda: mpmath.log(2)), 1.0)
    assert _oracle.logsumexp(np.full(3, 2.5), "float32")[0] == _mp("float32", lambda: 2.5 + mpmath.log(3))
    assert _oracle.logsumexp(np.array([0.0, 0.0]), "float64", b=np.array([1.0, -1.0])) == (-math.inf, 0.0)
    # 2 e**1 - e**2 < 0: sign -1
    value, sign = _oracle.logsumexp(np.array([1.0, 2.0]), "float64", b=np.array([2.0, -1.0]))
    assert sign == -1.0 and value == _mp("float64", lambda: mpmath.log(mpmath.exp(2) - 2 * mpmath.e))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_oracle_vectors_against_brute_force_mpmath(dtype: str) -> None:
    # log-probabilities (logsumexp near 0), a dominant term, ties, mixed scales
    rng = np.random.default_rng(8)
    vectors = [
        np.log(rng.dirichlet(np.ones(7))),
        np.array([0.0, -40.0, -41.0]),
        np.array([3.0, 3.0, -2.0, 3.0]),
        rng.standard_normal(25) * 30,
    ]
    for x in vectors:
        x = x.astype(dtype)
        ref = _oracle.vector(x, dtype)
        s, xs = _mp_lse(x)
        with mpmath.workprec(6000):
            assert ref.logsumexp == round_mpf(mpmath.log(s), dtype)
            assert ref.softmax.astype(np.float64).tolist() == [round_mpf(mpmath.exp(v) / s, dtype) for v in xs]
            assert ref.log_softmax.astype(np.float64).tolist() == [round_mpf(v - mpmath.log(s), dtype) for v in xs]


def test_oracle_weighted_logsumexp_against_brute_force_mpmath() -> None:
    rng = np.random.default_rng(9)
    for _ in range(30):
        n = int(rng.integers(1, 12))
        x = rng.standard_normal(n) * 10
        b = rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 3)
        s, _ = _mp_lse(x, b)
        with mpmath.workprec(6000):
            expected = (round_mpf(mpmath.log(abs(s)), "float64"), float(mpmath.sign(s)))
        assert _oracle.logsumexp(x, "float64", b=b) == expected


def test_oracle_decides_an_exact_midpoint_minus_a_tiny_correction() -> None:
    # log_softmax_1 = (2**-15 - 1000) - log(1 + e**(2**-15 - 1000)): the first part is
    # exactly the float32 midpoint between -1000 and -1000 + 2**-14, the correction
    # about e**-1000 = 2**-1443 pushes it below: -1000.  A ball needs > 1443 bits.
    x = np.array([1000.0, 2.0**-15], dtype=np.float32)
    ref = _oracle.vector(x, "float32")
    s, xs = _mp_lse(x, prec=4000)
    with mpmath.workprec(4000):
        expected = round_mpf(xs[1] - mpmath.log(s), "float32")
    assert expected == -1000.0
    assert ref.log_softmax[1] == expected
    # the same value as a cross-entropy loss with the target on class 1
    assert _oracle.cross_entropy_row(x, 1, "float32") == 1000.0


def test_oracle_special_vectors() -> None:
    r = _oracle.vector(np.array([-np.inf, -np.inf]), "float64")
    assert (r.logsumexp, r.sign) == (-math.inf, 0.0)
    assert r.softmax.tolist() == [0.0, 0.0] and r.log_softmax.tolist() == [-math.inf, -math.inf]
    r = _oracle.vector(np.array([np.inf, 1.0, np.inf]), "float32")
    assert r.logsumexp == math.inf and r.softmax.tolist() == [0.5, 0.0, 0.5]
    assert r.log_softmax.tolist() == [_mp("float32", lambda: -mpmath.log(2)), -math.inf, _mp("float32", lambda: -mpmath.log(2))]
    r = _oracle.vector(np.array([1.0, np.nan]), "float64")
    assert math.isnan(r.logsumexp) and np.isnan(r.softmax).all()
    # b = 0 removes an entry even if it is inf or NaN
    assert _oracle.logsumexp(np.array([0.0, np.inf, np.nan]), "float64", b=np.array([1.0, 0.0, 0.0])) == (0.0, 1.0)
    r = _oracle.vector(np.zeros(0), "float64")
    assert (r.logsumexp, r.sign, r.softmax.size) == (-math.inf, 0.0, 0)


def test_oracle_binary_cross_entropy_closed_forms() -> None:
    x = np.array([0.0, np.inf, -np.inf, -np.inf, 30.0, -30.0])
    y = np.array([0.25, 1.0, 0.0, 0.5, 1 - 1e-8, 1e-8])
    got = _oracle.bce(x, y, "float64", pos_weight=np.full(6, 2.0), weight=np.full(6, 0.5))

    def loss(xv, yv):  # -w [pw y log sigma(x) + (1 - y) log(1 - sigma(x))], w = 0.5, pw = 2
        s = 1 / (1 + mpmath.exp(-xv))
        return -mpmath.mpf(0.5) * (2 * yv * mpmath.log(s) + (1 - yv) * mpmath.log(1 - s))

    assert got[0] == _mp("float64", loss, 0.0, 0.25)
    assert got[1:4].tolist() == [0.0, 0.0, math.inf]  # limits at infinite logits
    assert got[4] == _mp("float64", loss, 30.0, 1 - 1e-8)
    assert got[5] == _mp("float64", loss, -30.0, 1e-8)
    mean = _oracle.bce_reduced(x[[0, 4, 5]], y[[0, 4, 5]], "float64", reduction="mean")
    with mpmath.workprec(3000):
        s = sum(
            -(yv * mpmath.log(1 / (1 + mpmath.exp(-xv))) + (1 - yv) * mpmath.log(1 - 1 / (1 + mpmath.exp(-xv))))
            for xv, yv in ((mpmath.mpf(x[i]), mpmath.mpf(y[i])) for i in (0, 4, 5))
        )
        assert mean == round_mpf(s / 3, "float64")


def test_oracle_cross_entropy_follows_pytorch_formulas() -> None:
    rng = np.random.default_rng(12)
    n, c = 4, 5
    x = rng.standard_normal((n, c)) * 4
    t = np.array([0, 3, -100, 3])
    w = rng.uniform(0.5, 2.0, size=c)
    eps = 0.2

    def row_loss(i):  # (1 - eps) (-w_t log p_t) + eps / C sum_c (-w_c log p_c)
        xs = [mpmath.mpf(v) for v in x[i]]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in xs))
        lp = [v - lse for v in xs]
        nll = -mpmath.mpf(w[t[i]]) * lp[t[i]]
        smooth = -mpmath.fsum(mpmath.mpf(w[k]) * lp[k] for k in range(c))
        return (1 - mpmath.mpf(eps)) * nll + mpmath.mpf(eps) / c * smooth

    with mpmath.workprec(3000):
        rows = {i: row_loss(i) for i in (0, 1, 3)}
        none = _oracle.cross_entropy(x, t, "float64", weight=w, label_smoothing=eps, ignore_index=-100, reduction="none")
        assert none.tolist() == [round_mpf(rows[0], "float64"), round_mpf(rows[1], "float64"), 0.0, round_mpf(rows[3], "float64")]
        mean = _oracle.cross_entropy(x, t, "float64", weight=w, label_smoothing=eps, ignore_index=-100, reduction="mean")
        # PyTorch: both terms divided by the sum of the weights of the non-ignored targets
        assert mean == round_mpf(mpmath.fsum(rows.values()) / mpmath.fsum(mpmath.mpf(w[t[i]]) for i in rows), "float64")
    # probabilities: a -inf logit with probability 0 contributes 0; mean divides by N
    probs = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    logits = np.array([[1.0, 2.0, -np.inf], [0.0, 0.0, 0.0]])
    with mpmath.workprec(3000):
        l0 = -(mpmath.mpf(0.5) * (1 - mpmath.log(mpmath.e + mpmath.e**2)) + mpmath.mpf(0.5) * (2 - mpmath.log(mpmath.e + mpmath.e**2)))
        l1 = mpmath.log(3)
        assert _oracle.cross_entropy(logits, probs, "float64", reduction="mean") == round_mpf((l0 + l1) / 2, "float64")
    assert _oracle.cross_entropy(logits, probs, "float64", reduction="none", label_smoothing=0.1)[0] == math.inf
    assert math.isnan(_oracle.cross_entropy(x[:1], np.array([-100]), "float64", ignore_index=-100))


def test_oracle_gradients_against_mpmath_closed_forms() -> None:
    x = np.array([0.5, -1.0, 2.0])
    g = np.array([1.0, -2.0, 0.5])
    with mpmath.workprec(2000):
        xs = [mpmath.mpf(v) for v in x]
        s = [mpmath.exp(v) / mpmath.fsum(mpmath.exp(u) for u in xs) for v in xs]
        dot = mpmath.fsum(mpmath.mpf(gi) * si for gi, si in zip(g, s, strict=True))
        assert _oracle.logsumexp_grad(x, "float64").tolist() == [round_mpf(v, "float64") for v in s]
        assert _oracle.softmax_vjp(x, g, "float64").tolist() == [round_mpf(si * (mpmath.mpf(gi) - dot), "float64") for gi, si in zip(g, s, strict=True)]
        assert _oracle.log_softmax_vjp(x, g, "float64").tolist() == [round_mpf(mpmath.mpf(gi) - si * mpmath.fsum(map(mpmath.mpf, g)), "float64") for gi, si in zip(g, s, strict=True)]
        assert _oracle.cross_entropy_grad(x, 2, "float64").tolist() == [round_mpf(si - (1 if i == 2 else 0), "float64") for i, si in enumerate(s)]
        sig = 1 / (1 + mpmath.exp(-mpmath.mpf(0.5)))
        assert _oracle.bce_grad(np.array([0.5]), np.array([0.25]), "float64").tolist() == [round_mpf(sig - mpmath.mpf(0.25), "float64")]


def test_parallel_map_matches_the_serial_map() -> None:
    items = [(name, np.array([0.5, -3.0, 40.0]), "float32") for name in ("sigmoid", "softplus", "tanh", "logit")]
    serial = _oracle.parallel_map(_oracle.elementwise, items, processes=1)
    forked = _oracle.parallel_map(_oracle.elementwise, items, processes=2, min_items=1)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(serial, forked, strict=True))


def test_unknown_function_is_refused_by_the_oracle() -> None:
    with pytest.raises(ValueError, match="`function` must be a public function"):
        _oracle.elementwise("relu", np.zeros(1), "float32")


# ---------------------------------------------------------------- budgets


def test_budget_table_matches_the_issue() -> None:
    for f in ("sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad", "binary_cross_entropy_with_logits"):
        assert [_budgets.budget(f, d) for d in DTYPES] == [1.0, 1.0, 1.0, 1.0]
    for f in ("logsumexp", "softmax", "log_softmax", "cross_entropy_with_logits"):
        assert [_budgets.budget(f, d) for d in DTYPES] == [1.0, 1.0, 1.0, 2.0]
    for f in _budgets.DOCUMENTATION_ONLY:
        assert _budgets.budget(f, "float32") is None
    assert _budgets.budget("softmax", "float32", kind="grad") == 2.0  # issue 4: 2 ULP for every gradient


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("function", ["sigmoid_grad_from_output", "tanh_grad_from_output"])
def test_from_output_limit_is_where_the_rounded_output_reaches_one(function: str, dtype: str) -> None:
    # From the limit on, fl(f(x)) = 1 and the derivative from the output is exactly 0;
    # just below it, fl(f(x)) < 1.  Checked with the oracle's correctly rounded f.
    fmt = get_format(dtype)
    f = "sigmoid" if function.startswith("sigmoid") else "tanh"
    limit = _budgets.from_output_limit(function, dtype)
    first = to_storage(np.array([round_mpf(mpmath.mpf(limit), dtype)]), dtype)
    o = ordinal(first, dtype)[0]
    around = from_ordinal([o - 2, o - 1, o, o + 1, o + 2], dtype)
    y = _oracle.elementwise(f, around, dtype).astype(np.float64)
    exact_limit = mpmath.log(2 ** (fmt.precision + 1) - 1) if f == "sigmoid" else mpmath.log(2 ** (fmt.precision + 2) - 1) / 2
    for xv, yv in zip(around.astype(np.float64), y, strict=True):
        assert (yv == 1.0) == (mpmath.mpf(float(xv)) >= exact_limit), (xv, yv)


def test_logsumexp_tolerance_is_the_budget_without_cancellation() -> None:
    exact, _ = _oracle.logsumexp(np.array([5.0, 5.0, 1.0]), "float64")
    tol = _budgets.logsumexp_tolerance([5.0, 5.0, 1.0], None, exact, "float64")
    assert tol == 2 * np.spacing(exact)


def test_logsumexp_tolerance_grows_with_the_cancelled_magnitude() -> None:
    # x = log(p) for p summing to about 1: exact result near 0, |x_max| about 1.2
    x = np.log(np.array([0.3, 0.3, 0.4]))
    exact, _ = _oracle.logsumexp(x, "float64")
    tol = _budgets.logsumexp_tolerance(x, None, exact, "float64")
    x_max = float(np.max(x))
    assert abs(exact) < 1e-15
    # x_max + L = exact with L = exact - x_max: |x_max| + |L| - |exact| = 2 |x_max| cancels
    excess = abs(x_max) + abs(exact - x_max) - abs(exact)
    assert tol == pytest.approx(2 * np.spacing(abs(exact)) + 2 * 2.0**-53 * excess, rel=1e-12)
    assert tol > 2.0**-53 * 3 * abs(x_max)


# ---------------------------------------------------------------- measure


def _naive_softplus(x):
    with np.errstate(over="ignore"):
        return np.log(1 + np.exp(x))


def test_measure_catches_a_naive_formula_and_names_its_worst_input() -> None:
    r = _measure.measure("softplus", "float32", samples=2000, seed=0, impl=_naive_softplus, processes=1)
    assert not r.ok and r.violations > 0
    assert r.inf_where_finite > 0  # exp overflows above 88.7
    assert "x" in r.worst_input
    x = np.float32(r.worst_input["x"])
    assert r.worst_exact == float(_oracle.elementwise("softplus", np.array([x]), "float32")[0])
    assert "OVER BUDGET" in _measure.format_table([r])


def test_measure_reports_zero_error_for_the_oracle_itself() -> None:
    def oracle_sigmoid(x):
        return _oracle.elementwise("sigmoid", np.asarray(x), "float64")

    r = _measure.measure("sigmoid", "float64", samples=500, seed=3, impl=oracle_sigmoid, processes=1)
    assert (r.max_ulp, r.violations, r.wrong_special, r.count) == (0.0, 0, 0, 500)


def test_measure_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="`function`"):
        _measure.measure("relu", "float32")
    with pytest.raises(TypeError, match="bfloat16 is not available on the numpy backend"):
        _measure.measure("sigmoid", "bfloat16", backend="numpy")
    with pytest.raises(ValueError, match="`samples`"):
        _measure.measure("sigmoid", "float32", samples=0)
    with pytest.raises(ValueError, match="`backend`"):
        _measure.measure("sigmoid", "float32", backend="cupyx")
