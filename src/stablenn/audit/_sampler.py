"""Inputs for accuracy measurement: float bit patterns, hard regions, special values.

Every sampler is deterministic from its seed and returns values of the requested format
in its storage dtype (float32 for bfloat16, whose low 16 bits are then zero).

* `sample_unary`: scalars.  Uniform over the finite bit patterns (every exponent, both
  signs, subnormals included, equally likely), dense sweeps of the regions where naive
  formulas fail (exp overflow and underflow thresholds, sigmoid and tanh saturation,
  where ``1 + e**x`` rounds to 1, near 0 and 1), and the special values.  A
  ``"probability"`` flavour covers [0, 1] (dense near 0, 1/2 and 1) and a ``"unit"``
  flavour [-1, 1], for `logit` and the ``_from_output`` derivatives.
* `sample_vectors`: 1-D vectors of lengths 1 to 1000 (log-uniform) for the reductions.
* `sample_labels`: binary targets; `sample_bce` and `sample_cross_entropy`: whole loss
  batches with weights, smoothing and ignored targets.

>>> x = sample_unary("float16", 1000, seed=0)
>>> x.dtype, x.size, bool(np.isnan(x).any()), bool(np.isinf(x).any())
(dtype('float16'), 1000, True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._ulp import Format, from_ordinal, get_format, ordinal

__all__ = [
    "BceBatch",
    "CrossEntropyBatch",
    "VectorCase",
    "hard_points",
    "sample_bce",
    "sample_cross_entropy",
    "sample_labels",
    "sample_unary",
    "sample_vectors",
    "special_values",
]


# ---------------------------------------------------------------- helpers


def _narrow(values: Any, fmt: Format) -> np.ndarray:
    """Round float64 values to the format (storage dtype), without overflow warnings."""
    a = np.asarray(values, dtype=np.float64)
    if fmt.name == "bfloat16":
        # round to nearest even on the float32 bits, after a (exact for our inputs or
        # harmless) rounding to float32: keep the top 16 bits.
        with np.errstate(over="ignore"):
            f = a.astype(np.float32)
        bits = f.view(np.uint32).astype(np.uint64)
        rounding = np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))
        nan = np.isnan(f)
        out = ((bits + rounding) >> np.uint64(16)) << np.uint64(16)
        out = out.astype(np.uint32).view(np.float32)
        return np.where(nan, np.float32(np.nan), out)
    with np.errstate(over="ignore"):
        return a.astype(fmt.storage)


def special_values(dtype: Any) -> np.ndarray:
    """The special inputs: +-0, +-smallest subnormal, +-largest subnormal, +-smallest
    normal, +-1, +-largest finite, +-inf and NaN.

    >>> special_values("float16").tolist()[:4]
    [0.0, -0.0, 5.960464477539063e-08, -5.960464477539063e-08]
    """
    fmt = get_format(dtype)
    largest_sub = fmt.tiny - fmt.smallest_subnormal
    vals = [0.0, -0.0]
    for v in (fmt.smallest_subnormal, largest_sub, fmt.tiny, 1.0, fmt.max, math.inf):
        vals += [v, -v]
    vals.append(math.nan)
    return _narrow(vals, fmt)


def hard_points(dtype: Any) -> dict[str, float]:
    """Where naive formulas fail in `dtype`, by name (positive values; sweeps use both signs).

    * ``exp_overflow``: ``log(max)``, where ``e**x`` overflows;
    * ``exp_underflow``: ``-log(smallest subnormal)``, where ``e**-x`` underflows to 0;
    * ``exp_subnormal``: ``-log(tiny)``, where ``e**-x`` becomes subnormal;
    * ``sigmoid_saturation``: ``log(2**(p+1))``, where ``sigmoid(x)`` rounds to 1;
    * ``tanh_saturation``: ``log(2**(p+2)) / 2``, where ``tanh(x)`` rounds to 1;
    * ``one_plus_exp``: ``p log 2``, where ``1 + e**-x`` rounds to 1 (naive softplus of
      ``-x`` returns 0);
    * ``softplus_threshold``: 20, the fixed threshold some peers switch to ``x`` at.

    >>> round(hard_points("float32")["exp_overflow"], 3)
    88.723
    """
    fmt = get_format(dtype)
    p = fmt.precision
    return {
        "exp_overflow": math.log(fmt.max),
        "exp_underflow": -math.log(fmt.smallest_subnormal),
        "exp_subnormal": -math.log(fmt.tiny),
        "sigmoid_saturation": (p + 1) * math.log(2.0),
        "tanh_saturation": (p + 2) * math.log(2.0) / 2,
        "one_plus_exp": p * math.log(2.0),
        "softplus_threshold": 20.0,
    }


def _uniform_bits(fmt: Format, n: int, rng: np.random.Generator, *, signed: bool = True) -> np.ndarray:
    """Uniform over the finite bit patterns: every exponent (and subnormals) equally likely.

    Stratified: the biased exponents cycle through all finite values (then shuffled), so
    ``n`` at least the number of exponents covers every one; mantissas are uniform.
    """
    n_exp = (1 << fmt.exponent_bits) - 1  # finite biased exponents 0 .. 2**k - 2
    i = np.arange(n, dtype=np.int64) + rng.integers(0, 2 * n_exp)
    e = i % n_exp
    negative = (i // n_exp) % 2 == 1  # each exponent with both signs once n >= 2 * n_exp
    order = rng.permutation(n)
    e, negative = e[order], negative[order]
    mant = rng.integers(0, 1 << (fmt.precision - 1), size=n, dtype=np.int64)
    o = (e << (fmt.precision - 1)) + mant
    if signed:
        o = np.where(negative, -o, o)
    return from_ordinal(o, fmt)


def _sweep(fmt: Format, centres: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """Dense samples around each centre: relative jitter of up to 1/8 and bit neighbours."""
    if n <= 0 or not centres:
        return np.zeros(0, dtype=fmt.storage)
    c = np.asarray(centres, dtype=np.float64)[rng.integers(0, len(centres), size=n)]
    half = n // 2
    jitter = c[:half] * (1.0 + rng.uniform(-0.125, 0.125, size=half))
    base = _narrow(c[half:], fmt)
    o = ordinal(base, fmt) + rng.integers(-64, 65, size=n - half)
    neighbours = from_ordinal(o, fmt)
    return np.concatenate([_narrow(jitter, fmt), neighbours])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size: Any = None) -> Any:
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=size))


def _probabilities(fmt: Format, n: int, rng: np.random.Generator) -> np.ndarray:
    """Values in [0, 1], dense near 0 (every exponent), near 1/2 and near 1."""
    parts = []
    k = n // 5
    # every exponent below 1 equally likely (subnormals included)
    top = ordinal(_narrow([1.0], fmt), fmt)[0]
    parts.append(from_ordinal(rng.integers(0, top, size=k), fmt))
    # near 1: 1 - j ULPs, j log-uniform over the binade
    j = np.floor(_log_uniform(rng, 1.0, 2.0 ** (fmt.precision - 1), size=k)).astype(np.int64)
    parts.append(from_ordinal(top - j, fmt))
    # near 1/2, both sides
    half = ordinal(_narrow([0.5], fmt), fmt)[0]
    j = np.floor(_log_uniform(rng, 1.0, 2.0 ** (fmt.precision - 2), size=k)).astype(np.int64)
    parts.append(from_ordinal(half + np.where(rng.random(k) < 0.5, -j, j), fmt))
    # uniform on [0, 1]
    parts.append(_narrow(rng.random(k), fmt))
    # 1 - 2**-e and 2**-e for every e (where 1 - p cancels, and the tails)
    e = rng.integers(1, fmt.precision + 2, size=n - 4 * k)
    powers = np.ldexp(1.0, -e)
    parts.append(_narrow(np.where(rng.random(n - 4 * k) < 0.5, 1.0 - powers, powers), fmt))
    return np.concatenate(parts)


def _shuffle_keep_front(front: np.ndarray, rest: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    rest = rest[rng.permutation(rest.size)]
    out = np.concatenate([front, rest])[:n]
    return out


# ---------------------------------------------------------------- scalars


def sample_unary(dtype: Any, n: int, seed: int = 0, *, kind: str = "real") -> np.ndarray:
    """`n` scalar inputs of `dtype` (storage dtype), deterministic from `seed`.

    Parameters
    ----------
    dtype : str or dtype
        The format.
    n : int
        How many values (the special values come first and are always included when
        ``n`` allows).
    seed : int
        Seed of ``numpy.random.default_rng``.
    kind : {"real", "probability", "unit"}
        ``"real"``: the whole line.  45% uniform over finite bit patterns, 30% sweeps
        around the `hard_points` (both signs), 10% uniform on [-2 T, 2 T] with ``T`` the
        exp overflow threshold, 10% near 0 (subnormals and tiny normals), 5% near +-1.
        ``"probability"``: [0, 1] dense near 0, 1/2 and 1, plus values just outside
        (NaN expected there from `logit`).  ``"unit"``: the same on [-1, 1] with both
        signs.

    >>> p = sample_unary("float32", 500, seed=1, kind="probability")
    >>> bool(((p >= 0) & (p <= 1)).mean() > 0.9)
    True
    """
    fmt = get_format(dtype)
    rng = np.random.default_rng([seed, 0x5A3])
    if kind == "real":
        front = special_values(fmt)
        m = max(0, n - front.size)
        n_bits = int(m * 0.45)
        n_sweep = int(m * 0.30)
        n_mid = int(m * 0.10)
        n_zero = int(m * 0.10)
        n_one = m - n_bits - n_sweep - n_mid - n_zero
        pts = hard_points(fmt)
        centres = [v for v in pts.values() if v < fmt.max]
        centres += [-v for v in centres]
        bound = pts["exp_overflow"] * 2
        near0 = from_ordinal(
            rng.integers(0, ordinal(_narrow([fmt.tiny * 4], fmt), fmt)[0], size=n_zero)
            * np.where(rng.random(n_zero) < 0.5, -1, 1),
            fmt,
        )
        rest = np.concatenate(
            [
                _uniform_bits(fmt, n_bits, rng),
                _sweep(fmt, centres, n_sweep, rng),
                _narrow(rng.uniform(-bound, bound, size=n_mid), fmt),
                near0,
                _sweep(fmt, [1.0, -1.0], n_one, rng),
            ]
        )
    elif kind in ("probability", "unit"):
        outside = [
            -fmt.smallest_subnormal,
            float(from_ordinal(ordinal(_narrow([1.0], fmt), fmt) + 1, fmt)[0]),
            0.0,
            -0.0,
            0.5,
            1.0,
            2.0,
            math.inf,
            -math.inf,
            math.nan,
        ]
        if kind == "unit":
            outside += [-1.0, -0.5, -2.0, float(-from_ordinal(ordinal(_narrow([1.0], fmt), fmt) + 1, fmt)[0])]
        front = _narrow(outside, fmt)
        m = max(0, n - front.size)
        rest = _probabilities(fmt, m, rng)
        if kind == "unit":
            rest = np.where(rng.random(m) < 0.5, -rest, rest).astype(fmt.storage)
    else:
        raise ValueError(f"`kind` must be 'real', 'probability' or 'unit'; got {kind!r}.")
    return _shuffle_keep_front(front.astype(fmt.storage), rest.astype(fmt.storage), n, rng)


# ---------------------------------------------------------------- vectors


@dataclass
class VectorCase:
    """One vector for the reductions: ``x``, optional weights ``b``, and how it was made."""

    x: np.ndarray
    b: np.ndarray | None
    kind: str


_VECTOR_KINDS = (
    "scale",  # N(mu, s) with s from 1e-3 to 1e4 and mu of any sign and size
    "bits",  # entries uniform over bit patterns (huge spread)
    "dominant",  # one term above the others by 30 to 800
    "neg_inf",  # some (or all) entries -inf
    "near_zero",  # log of probabilities rounded to the dtype: logsumexp near 0
    "tiny_rest",  # [0, -a_1, ..., -a_k] with large a_i: logsumexp a tiny positive number
    "ties",  # few distinct values, repeated
    "pos_inf",  # +inf entries among finite ones
    "nan",  # a NaN entry
)


def _length(rng: np.random.Generator, max_len: int, menu: tuple[int, ...] | None = None) -> int:
    if menu:
        return int(menu[int(rng.integers(0, len(menu)))])
    return int(np.floor(_log_uniform(rng, 1.0, max_len + 1.0)))


#: Few distinct shapes, for backends that compile for every new shape (JAX) or pay per
#: call (Dask builds a graph): vector lengths, loss batch sizes, cross-entropy rows and
#: classes, label smoothing.
FEW_LENGTHS = (100,)
FEW_SIZES = (500,)
FEW_ROWS = (16,)
FEW_CLASSES = (100,)
FEW_SMOOTHING = (0.125,)


def _vector_x(fmt: Format, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    limit = min(fmt.max / 4, 1e300)
    if kind == "scale":
        s = _log_uniform(rng, 1e-3, min(1e4, limit))
        mu = rng.choice([0.0, 1.0, -1.0]) * _log_uniform(rng, 1e-3, min(1e4, limit))
        x = mu + s * rng.standard_normal(n)
    elif kind == "bits":
        x = _uniform_bits(fmt, n, rng).astype(np.float64)
    elif kind == "dominant":
        s = _log_uniform(rng, 1e-2, 30.0)
        x = s * rng.standard_normal(n)
        k = int(rng.integers(0, n))
        others = np.delete(x, k)
        top = float(others.max()) if others.size else 0.0
        x[k] = top + rng.uniform(30.0, min(800.0, fmt.max / 2))
    elif kind == "neg_inf":
        s = _log_uniform(rng, 1e-2, 100.0)
        x = s * rng.standard_normal(n)
        frac = rng.choice([0.1, 0.5, 0.9, 1.0])
        x[rng.random(n) < frac] = -math.inf
    elif kind == "near_zero":
        conc = _log_uniform(rng, 0.05, 10.0)
        p = rng.dirichlet(np.full(n, conc))
        with np.errstate(divide="ignore"):
            x = np.log(_narrow(p, fmt).astype(np.float64))
        x = np.where(np.isfinite(x), x, -math.inf)
    elif kind == "tiny_rest":
        x = -_log_uniform(rng, 10.0, 2.0 * (fmt.precision + 10), size=n)
        x[int(rng.integers(0, n))] = 0.0
    elif kind == "ties":
        vals = rng.standard_normal(int(rng.integers(1, 4))) * _log_uniform(rng, 1e-2, 100.0)
        x = vals[rng.integers(0, vals.size, size=n)]
    elif kind == "pos_inf":
        x = rng.standard_normal(n) * 10
        x[rng.random(n) < 0.2] = math.inf
        x[int(rng.integers(0, n))] = math.inf
    elif kind == "nan":
        x = rng.standard_normal(n)
        x[int(rng.integers(0, n))] = math.nan
    else:  # pragma: no cover - internal
        raise AssertionError(kind)
    return _narrow(x, fmt)


def _weights(fmt: Format, n: int, rng: np.random.Generator) -> np.ndarray:
    """Weights of both signs and tiny magnitude, some exactly zero."""
    style = rng.choice(["positive", "signed", "tiny", "zeros", "cancel"])
    if style == "positive":
        b = _log_uniform(rng, 1e-3, 1e3, size=n)
    elif style == "signed":
        b = _log_uniform(rng, 1e-3, 1e3, size=n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    elif style == "tiny":
        lo = max(fmt.smallest_subnormal * 4, 1e-300)
        b = _log_uniform(rng, lo, max(lo * 16, fmt.tiny * 1e3), size=n) * np.where(rng.random(n) < 0.3, -1.0, 1.0)
    elif style == "zeros":
        b = _log_uniform(rng, 1e-2, 1e2, size=n)
        b[rng.random(n) < 0.5] = 0.0
    else:  # cancel: b = +1 and -1 on entries that are (nearly) equal
        b = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return _narrow(b, fmt)


def sample_vectors(
    dtype: Any,
    n: int,
    seed: int = 0,
    *,
    weights: bool = False,
    max_len: int = 1000,
    lengths: tuple[int, ...] | None = None,
) -> list[VectorCase]:
    """`n` vectors of `dtype` for logsumexp, softmax and log_softmax.

    Lengths are log-uniform on 1 .. `max_len`; kinds cycle through scales from 1e-3 to
    1e4 with any offset, entries uniform over bit patterns, one term dominating by 30 to
    800, ``-inf`` entries (sometimes all), log-probabilities (logsumexp near 0), a 0 with
    much smaller others (logsumexp tiny), ties, ``+inf`` entries and NaN.  With
    ``weights=True`` about half the vectors carry weights ``b``: positive, of both signs,
    of tiny magnitude, with zeros, or +1/-1 pairs that cancel.  ``lengths`` replaces the
    log-uniform lengths by a menu (e.g. `FEW_LENGTHS`).

    >>> cases = sample_vectors("float32", 20, seed=3)
    >>> len(cases), cases[0].x.dtype, {c.kind for c in cases} >= {"dominant", "neg_inf"}
    (20, dtype('float32'), True)
    """
    fmt = get_format(dtype)
    rng = np.random.default_rng([seed, 0x7EC])
    out = []
    for i in range(n):
        kind = _VECTOR_KINDS[i % len(_VECTOR_KINDS)]
        length = _length(rng, max_len, lengths)
        if kind in ("ties", "near_zero", "pos_inf") and length == 1:
            length = 2
        x = _vector_x(fmt, kind, length, rng)
        b = None
        if weights and rng.random() < 0.5:
            b = _weights(fmt, length, rng)
            if (b == -1.0).any() and rng.random() < 0.5:
                x = np.repeat(x[: (length + 1) // 2], 2)[:length]  # equal x under +1/-1: exact cancellations
        out.append(VectorCase(x=x, b=b, kind=kind + ("+b" if b is not None else "")))
    return out


# ---------------------------------------------------------------- labels and loss batches


def sample_labels(dtype: Any, n: int, seed: int = 0) -> np.ndarray:
    """`n` binary-classification targets in [0, 1] of `dtype`.

    A quarter each: hard labels (0 and 1), soft labels uniform on [0, 1], soft labels
    within 1e-8 of 0, and within 1e-8 of 1; in a format too coarse for 1e-8 (float16,
    bfloat16) the latter two are the representable values nearest 0 and 1 (a few
    ULPs from them).

    >>> y = sample_labels("float16", 8, seed=0)
    >>> bool(((y >= 0) & (y <= 1)).all())
    True
    """
    fmt = get_format(dtype)
    rng = np.random.default_rng([seed, 0x1AB])
    k = n // 4
    hard = rng.integers(0, 2, size=k).astype(np.float64)
    soft = rng.random(k)
    delta = 1e-8 * rng.random(n - 3 * k)
    m = n - 3 * k
    one = ordinal(_narrow([1.0], fmt), fmt)[0]
    if fmt.eps > 1e-8:
        near0 = from_ordinal(rng.integers(1, 8, size=m), fmt).astype(np.float64)
        near1 = from_ordinal(one - rng.integers(1, 8, size=k), fmt).astype(np.float64)
    else:
        near0 = _narrow(delta, fmt).astype(np.float64)
        near1 = _narrow(1.0 - 1e-8 * rng.random(k), fmt).astype(np.float64)
    y = np.concatenate([hard, soft, near1, near0])
    return _narrow(y[rng.permutation(n)], fmt)


@dataclass
class BceBatch:
    """Arguments of one `binary_cross_entropy_with_logits` call."""

    logits: np.ndarray
    targets: np.ndarray
    weight: np.ndarray | None
    pos_weight: np.ndarray | None


def sample_bce(
    dtype: Any, n: int, seed: int = 0, *, max_len: int = 1000, sizes: tuple[int, ...] | None = None
) -> list[BceBatch]:
    """Batches for binary cross-entropy holding about `n` elements in all.

    Logits from `sample_unary` (the whole line, special values included), targets from
    `sample_labels`; a third of the batches carry ``weight``, a third ``pos_weight``
    (positive, log-uniform on [0.1, 10]).

    >>> batches = sample_bce("float32", 2000, seed=0)
    >>> sum(b.logits.size for b in batches) >= 2000
    True
    """
    fmt = get_format(dtype)
    rng = np.random.default_rng([seed, 0xBCE])
    logits = sample_unary(fmt, n, seed=seed + 1)
    targets = sample_labels(fmt, n, seed=seed + 2)
    out = []
    start = 0
    i = 0
    while start < n:
        size = min(_length(rng, max_len, sizes), n - start)
        x = logits[start : start + size]
        y = targets[start : start + size]
        w = pw = None
        if i % 3 == 1:
            w = _narrow(_log_uniform(rng, 0.1, 10.0, size=size), fmt)
        elif i % 3 == 2:
            pw = _narrow(_log_uniform(rng, 0.1, 10.0, size=size), fmt)
        out.append(BceBatch(x, y, w, pw))
        start += size
        i += 1
    return out


@dataclass
class CrossEntropyBatch:
    """Arguments of one `cross_entropy_with_logits` call (logits ``(N, C)``)."""

    logits: np.ndarray
    targets: np.ndarray  # (N,) int64 class indices or (N, C) probabilities
    weight: np.ndarray | None
    label_smoothing: float
    ignore_index: int | None


def sample_cross_entropy(
    dtype: Any,
    n_rows: int,
    seed: int = 0,
    *,
    max_classes: int = 1000,
    rows: tuple[int, ...] | None = None,
    classes: tuple[int, ...] | None = None,
    smoothing: tuple[float, ...] | None = None,
) -> list[CrossEntropyBatch]:
    """Batches for softmax cross-entropy holding `n_rows` rows in all.

    Rows are `sample_vectors` kinds (no NaN batches are mixed with finite ones: a NaN row
    is its own batch); classes log-uniform on 1 .. `max_classes` per batch, 1 to 16 rows.
    Targets: class indices (half of them at the row's argmax, where peers return 0 for
    a tiny loss), or probabilities (one-hot, Dirichlet, or within 1e-8 of 0 and 1).
    Options: class weights (a third), label smoothing (a third, uniform on [0, 1), or
    from the `smoothing` menu), ``ignore_index`` (a quarter of the index batches, with
    some rows ignored).  ``rows`` and ``classes`` replace the batch shapes by menus.

    >>> batches = sample_cross_entropy("float64", 40, seed=0, max_classes=50)
    >>> sum(b.logits.shape[0] for b in batches)
    40
    """
    fmt = get_format(dtype)
    rng = np.random.default_rng([seed, 0xCE])
    out = []
    done = 0
    i = 0
    while done < n_rows:
        n_batch = int(rng.integers(1, 17)) if rows is None else _length(rng, 1, rows)
        n_batch = min(n_batch, n_rows - done)
        n_classes = _length(rng, max_classes, classes)
        kind = _VECTOR_KINDS[i % len(_VECTOR_KINDS)]
        if n_classes == 1 and kind in ("ties", "near_zero", "pos_inf"):
            n_classes = 2
        x = np.stack([_vector_x(fmt, kind, n_classes, rng) for _ in range(n_batch)])
        style = i % 4
        if style in (0, 1):
            argmax = np.argmax(np.where(np.isnan(x), -np.inf, x.astype(np.float64)), axis=1)
            t = np.where(rng.random(n_batch) < 0.5, argmax, rng.integers(0, n_classes, size=n_batch)).astype(np.int64)
        elif style == 2:
            t = _narrow(rng.dirichlet(np.full(n_classes, _log_uniform(rng, 0.05, 5.0)), size=n_batch), fmt)
        else:
            hot = rng.integers(0, n_classes, size=n_batch)
            t = np.zeros((n_batch, n_classes))
            near = 1e-8 if fmt.eps <= 1e-8 else fmt.eps
            t[np.arange(n_batch), hot] = 1.0 - (near * rng.random(n_batch) if rng.random() < 0.5 else 0.0)
            t = _narrow(t, fmt)
        weight = _narrow(_log_uniform(rng, 0.1, 10.0, size=n_classes), fmt) if i % 3 == 1 else None
        eps = float(rng.random()) if smoothing is None else smoothing[int(rng.integers(0, len(smoothing)))]
        eps = eps if i % 3 == 2 else 0.0
        ignore = None
        if t.ndim == 1 and i % 4 == 0:
            ignore = -100
            t = np.where(rng.random(n_batch) < 0.3, ignore, t)
        out.append(CrossEntropyBatch(x, t, weight, eps, ignore))
        done += n_batch
        i += 1
    return out
