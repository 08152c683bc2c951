"""stablenn.streaming: the mergeable log-sum-exp state, streaming softmax, importance weights.

Truth comes from the mpmath oracle of ``stablenn.audit`` (correctly rounded references) and
the shared budget table; nothing is compared with stablenn's own one-shot functions.
"""

from __future__ import annotations

import math
import zlib
import re

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stablenn import streaming
from stablenn._kernels import _dd
from stablenn._kernels import mergeable as mg
from stablenn.audit import _budgets, _oracle
from stablenn.audit._ulp import ulp_distance
from stablenn.streaming import LogSumExp, importance_weights

import array_api_compat.numpy as xnp  # noqa: E402  (the NumPy namespace the kernels take)

DTYPES = ("float32", "float64")


# ---------------------------------------------------------------- helpers
def _lse_ok(got: float, x: np.ndarray, b: np.ndarray | None, dtype: str) -> None:
    """``got`` is within logsumexp's budget (and its near-0 allowance) of the oracle."""
    exact, _ = _oracle.logsumexp(x, dtype, b)
    tol = _budgets.logsumexp_tolerance(x, b, exact, dtype)
    if math.isnan(exact):
        assert math.isnan(got)
    elif math.isinf(exact):
        assert got == exact
    else:
        assert abs(got - exact) <= tol, (got, exact, tol)


def _components_ok(got: np.ndarray, exact: np.ndarray, function: str, dtype: str) -> None:
    budget = _budgets.budget(function, dtype)
    dist = ulp_distance(got.astype(dtype), exact.astype(dtype), dtype)
    assert float(dist.max(initial=0.0)) <= budget, (got, exact)


def _split(rng: np.random.Generator, n: int, pieces: int) -> list[np.ndarray]:
    """Index ranges cutting ``range(n)`` into ``pieces`` contiguous pieces (some may be empty)."""
    cuts = np.sort(rng.integers(0, n + 1, size=pieces - 1))
    return np.split(np.arange(n), cuts)


def _merge_tree(rng: np.random.Generator, states: list[LogSumExp]) -> LogSumExp:
    """Merge in a random order along a random binary tree."""
    states = list(states)
    rng.shuffle(states)
    while len(states) > 1:
        i = int(rng.integers(0, len(states) - 1))
        left, right = states.pop(i), states.pop(i)
        states.insert(i, left.merge(right) if rng.random() < 0.5 else right.merge(left))
    return states[0]


def _vector(rng: np.random.Generator, n: int, kind: str, dtype: str) -> np.ndarray:
    if kind == "normal":
        x = rng.normal(size=n)
    elif kind == "wide":  # terms spread over hundreds of e-folds: most underflow
        x = rng.normal(size=n) * 300.0
    elif kind == "dominant":  # one term dominates: the result is max + log1p(tiny)
        x = np.concatenate([[0.0], -40.0 - rng.uniform(0, 5, n - 1)])
    elif kind == "near_zero":  # log-probabilities: the result is near 0, ill-conditioned
        p = rng.dirichlet(np.ones(n))
        x = np.log(p)
    elif kind == "large":  # naive exp overflows
        x = 700.0 + rng.normal(size=n) * 20.0
    else:
        raise AssertionError(kind)
    return rng.permutation(x).astype(dtype)


KINDS = ("normal", "wide", "dominant", "near_zero", "large")


# ---------------------------------------------------------------- double-double exp
def test_exp_dd_matches_mpmath_to_1e_28() -> None:
    """The rescaling factor of a merge, exp(m_j - m), carries ~eps^2 relative error."""
    rng = np.random.default_rng(0)
    d = np.concatenate([-rng.exponential(60.0, 400), -rng.uniform(0, 1e-3, 100), [0.0, -745.0, -1e-300]])
    lo = np.where(d == 0, 0.0, d * rng.uniform(-1, 1, d.size) * 2.0**-54)
    d_hi, d_lo = _dd.two_sum(d, lo)
    e_hi, e_lo = mg.exp_dd(xnp, d_hi, d_lo)
    mpmath.mp.prec = 250
    for a, b, h, l in zip(d_hi, d_lo, e_hi, e_lo, strict=True):
        exact = mpmath.exp(mpmath.mpf(float(a)) + mpmath.mpf(float(b)))
        if exact < mpmath.mpf(2) ** -1000:  # subnormal factors: absolute error below 2^-1074
            assert abs(mpmath.mpf(float(h)) + mpmath.mpf(float(l)) - exact) <= mpmath.mpf(2) ** -1074
            continue
        assert abs(mpmath.mpf(float(h)) + mpmath.mpf(float(l)) - exact) / exact < 1e-28, (a, b)


def test_exp_dd_below_underflow_is_zero() -> None:
    e_hi, e_lo = mg.exp_dd(xnp, np.array([-800.0, -1e308]), np.zeros(2))
    assert e_hi.tolist() == [0.0, 0.0] and e_lo.tolist() == [0.0, 0.0]


def test_sum_dd_long_axis_matches_mpmath_despite_cancellation() -> None:
    """The lane-wise TwoSum of long chunks is as exact as the pairwise double-double tree."""
    rng = np.random.default_rng(1)
    n = 5 * (1 << 14) + 37  # several rows of lanes and a tail
    hi = rng.normal(size=n) * np.exp(rng.uniform(-30, 30, size=n))
    lo = hi * rng.uniform(-1, 1, n) * 2.0**-54
    hi = np.concatenate([hi, -hi[: n // 2]])  # half of it cancels exactly
    lo = np.concatenate([lo, np.zeros(n // 2)])
    s_hi, s_lo = mg.sum_dd(xnp, hi, lo)
    mpmath.mp.prec = 4000  # exact: every float64 of this range fits
    exact = mpmath.fsum([mpmath.mpf(float(v)) for v in hi] + [mpmath.mpf(float(v)) for v in lo])
    scale = mpmath.fsum(abs(mpmath.mpf(float(v))) for v in hi)
    # Sum2 bound: |error| <= eps |sum| + (n eps)^2 sum|x|, with nothing left of eps |sum| in
    # the pair (hi, lo): far below one rounding of the sum itself
    assert abs(mpmath.mpf(float(s_hi)) + mpmath.mpf(float(s_lo)) - exact) <= 1e-30 * scale
    assert float(s_hi) == float(exact)


# ---------------------------------------------------------------- LogSumExp: accuracy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_streamed_equals_oracle_for_any_chunking_and_merge_tree(dtype: str, kind: str) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{dtype}{kind}".encode()))
    for trial in range(6):
        n = int(rng.integers(1, 400))
        x = _vector(rng, n, kind, dtype)
        states = [LogSumExp().update(x[idx]) for idx in _split(rng, n, int(rng.integers(1, 12)))]
        got = float(_merge_tree(rng, states).result())
        _lse_ok(got, x, None, dtype)


@pytest.mark.parametrize("kind", ["normal", "dominant", "near_zero"])
def test_long_chunks_within_budget(kind: str) -> None:
    """Chunks long enough for the lane-wise double-double sum (more than 4 * 2^14 terms)."""
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    x = _vector(rng, 90_000, kind, "float64")
    got = float(LogSumExp().update(x[:70_000]).update(x[70_000:]).result())
    _lse_ok(got, x, None, "float64")


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.one_of(st.floats(-1e4, 1e4), st.sampled_from([0.0, -40.0, 709.0, -745.0, -np.inf])),
        min_size=1,
        max_size=40,
    ),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
    weighted=st.booleans(),
)
def test_property_any_chunks_any_tree_within_budget(data: list[float], seed: int, dtype: str, weighted: bool) -> None:
    """Random data, random chunkings, random merge trees: the one-shot answer within budget."""
    rng = np.random.default_rng(seed)
    x = np.asarray(data, dtype=dtype)
    b = rng.uniform(0.01, 10.0, x.size).astype(dtype) if weighted else None
    pieces = _split(rng, x.size, int(rng.integers(1, 8)))
    states = [LogSumExp().update(x[i], b=None if b is None else b[i]) for i in pieces]
    got = float(_merge_tree(rng, states).result())
    _lse_ok(got, x, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_signed_weights_with_return_sign(dtype: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(2, 60))
        x = (rng.normal(size=n) * 5).astype(dtype)
        b = rng.normal(size=n).astype(dtype)
        states = [LogSumExp().update(x[i], b=b[i]) for i in _split(rng, n, 4)]
        res, sign = _merge_tree(rng, states).result(return_sign=True)
        exact, exact_sign = _oracle.logsumexp(x, dtype, b)
        assert float(sign) == exact_sign
        _lse_ok(float(res), x, b, dtype)
        no_sign = LogSumExp().update(x, b=b).result()
        assert math.isnan(float(no_sign)) if exact_sign < 0 else not math.isnan(float(no_sign))


@pytest.mark.parametrize("dtype", DTYPES)
def test_axis_and_keepdims_with_chunks_along_two_axes(dtype: str) -> None:
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(6, 3, 10)) * 50).astype(dtype)
    state = LogSumExp(axis=(0, 2))
    for rows in _split(rng, 6, 3):
        for cols in _split(rng, 10, 3):
            state.update(a[rows][:, :, cols])
    got = state.result(keepdims=True)
    assert got.shape == (1, 3, 1) and got.dtype == np.dtype(dtype)
    for j in range(3):
        _lse_ok(float(got[0, j, 0]), a[:, j, :].ravel(), None, dtype)
    assert state.count == 60


def test_float16_chunks_round_once() -> None:
    rng = np.random.default_rng(4)
    x = (rng.normal(size=300) * 4).astype(np.float16)
    state = LogSumExp()
    for idx in _split(rng, 300, 7):
        state.update(x[idx])
    got = state.result()
    assert got.dtype == np.float16
    exact, _ = _oracle.logsumexp(x, "float16")
    assert ulp_distance(np.float16(got), np.float16(exact), "float16") <= _budgets.budget("logsumexp", "float16")


# ---------------------------------------------------------------- LogSumExp: special cases
SPECIAL_STREAMS = [
    ("all -inf in every chunk", [[-np.inf], [-np.inf, -np.inf]], None),
    ("empty chunk then a term", [[], [-1000.0]], None),
    ("all -inf chunk beside a low max", [[-np.inf], [-1000.0, -1001.0]], None),
    ("only empty chunks", [[], []], None),
    ("NaN in one chunk", [[1.0], [np.nan], [2.0]], None),
    ("+inf in one chunk", [[1.0], [np.inf]], None),
    ("+inf and NaN", [[np.inf], [np.nan]], None),
    ("weighted +inf and -inf terms", [[np.inf], [np.inf]], [[1.0], [-1.0]]),
    ("zero weight hides inf and NaN", [[np.inf, np.nan], [3.0]], [[0.0, 0.0], [1.0]]),
    ("exact cancellation beside a small term", [[0.0, 0.0], [-1000.0]], [[1.0, -1.0], [1.0]]),
    ("the largest term last", [[-5.0, -6.0], [800.0]], None),
]


@pytest.mark.parametrize(("name", "chunks", "weights"), SPECIAL_STREAMS, ids=[s[0] for s in SPECIAL_STREAMS])
def test_special_streams_give_the_oracle_answer(name: str, chunks: list, weights: list | None) -> None:
    x = np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])
    b = None if weights is None else np.concatenate([np.asarray(w, dtype=np.float64) for w in weights])
    exact, exact_sign = _oracle.logsumexp(x, "float64", b)
    for order in (1, -1):  # either order of the chunks
        state = LogSumExp()
        pairs = list(zip(chunks, weights or [None] * len(chunks), strict=True))[::order]
        for c, w in pairs:
            state.update(np.asarray(c, dtype=np.float64), b=None if w is None else np.asarray(w, dtype=np.float64))
        res, sign = state.result(return_sign=True)
        if math.isnan(exact):
            assert math.isnan(float(res)) and math.isnan(float(sign))
        else:
            assert float(sign) == exact_sign
            if math.isinf(exact):
                assert float(res) == exact
            else:
                _lse_ok(float(res), x, b, "float64")


def test_special_stream_emits_no_warning() -> None:
    # pytest turns warnings into errors: -inf - -inf or log(0) would fail here
    state = LogSumExp().update(np.array([-np.inf, -np.inf])).update(np.array([-np.inf]))
    assert float(state.result()) == -np.inf


# ---------------------------------------------------------------- LogSumExp: merging
def test_merge_leaves_other_unchanged_and_empty_states_are_neutral() -> None:
    a = LogSumExp(axis=0).update(np.array([1.0, 2.0]))
    b = LogSumExp(axis=0).update(np.array([3.0]))
    before = float(b.result())
    a.merge(b)
    assert float(b.result()) == before
    assert b.count == 1 and a.count == 3
    empty = LogSumExp(axis=0)
    assert float(empty.merge(a).result()) == float(a.result())
    assert float(a.copy().merge(LogSumExp(axis=0)).result()) == float(a.result())
    _lse_ok(float(a.result()), np.array([1.0, 2.0, 3.0]), None, "float64")


def test_copy_is_independent() -> None:
    a = LogSumExp().update(np.array([0.0]))
    c = a.copy()
    c.update(np.array([0.0]))
    assert float(a.result()) == 0.0 and c.count == 2


def test_logsumexp_over_an_iterable_of_pairs() -> None:
    x = np.array([0.0, 1.0, 2.0])
    b = np.array([1.0, 2.0, 3.0])
    got = streaming.logsumexp([(x[:1], b[:1]), (x[1:], b[1:])])
    _lse_ok(float(got), x, b, "float64")
    res, sign = streaming.logsumexp(iter([x[:2], x[2:]]), keepdims=True, return_sign=True)
    assert res.shape == (1,) and float(sign[0]) == 1.0


def test_works_in_each_backends_namespace(backend) -> None:  # noqa: ANN001
    rng = np.random.default_rng(9)
    a = (rng.normal(size=(3, 8)) * 100).astype(np.float64)
    state = LogSumExp(axis=1)
    for idx in _split(rng, 8, 3):
        state.update(backend.asarray(a[:, idx]))
    got = state.result()
    assert backend.is_native(got)
    out = backend.numpy(got)
    for i in range(3):
        _lse_ok(float(out[i]), a[i], None, "float64")


# ---------------------------------------------------------------- streaming softmax
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_streamed_softmax_components_within_budget(dtype: str, function: str) -> None:
    rng = np.random.default_rng(11)
    oracle = _oracle.softmax if function == "softmax" else _oracle.log_softmax
    for kind in KINDS:
        rows = [_vector(rng, 50, kind, dtype) for _ in range(3)]
        a = np.stack(rows, axis=1)  # (50, 3): normalise along axis 0
        pieces = [a[idx] for idx in _split(rng, 50, 5)]
        out = np.concatenate(list(getattr(streaming, function)(pieces, axis=0)), axis=0)
        assert out.dtype == np.dtype(dtype) and out.shape == a.shape
        for j in range(3):
            _components_ok(out[:, j], oracle(a[:, j], dtype), function, dtype)


@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_streamed_softmax_long_chunks(function: str) -> None:
    """Chunks long enough for the cache-blocked normalisation."""
    rng = np.random.default_rng(12)
    x = _vector(rng, 80_000, "wide", "float64")
    x[::1001] = -np.inf
    out = np.concatenate(list(getattr(streaming, function)([x[:70_000], x[70_000:]])))
    oracle = _oracle.softmax if function == "softmax" else _oracle.log_softmax
    _components_ok(out, oracle(x, "float64"), function, "float64")


@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_streamed_softmax_special_slices_span_chunks(function: str) -> None:
    rows = [
        [0.0, np.inf, 1.0, np.inf],  # two +inf entries in different chunks share the mass
        [-np.inf, -np.inf, -np.inf, -np.inf],  # all -inf
        [1.0, 2.0, np.nan, 3.0],  # a NaN in the second chunk poisons the first
        [-1000.0, -np.inf, -1001.0, -1000.0],
    ]
    a = np.array(rows)
    oracle = _oracle.softmax if function == "softmax" else _oracle.log_softmax
    out = np.concatenate(list(getattr(streaming, function)([a[:, :2], a[:, 2:]], axis=1)), axis=1)
    for i in range(len(rows)):
        _components_ok(out[i], oracle(a[i], "float64"), function, "float64")


def test_streamed_softmax_accepts_a_function_and_a_reiterable() -> None:
    a = np.array([[0.0, 1.0, 2.0]])

    class Reader:
        def __iter__(self):  # noqa: ANN204
            return iter([a[:, :1], a[:, 1:]])

    exact = _oracle.softmax(a[0], "float64")
    for source in (Reader(), lambda: iter([a[:, :1], a[:, 1:]]), (a[:, :1], a[:, 1:])):
        out = np.concatenate(list(streaming.softmax(source)), axis=1)
        _components_ok(out[0], exact, "softmax", "float64")


# ---------------------------------------------------------------- importance sampling
def _ess_exact(lw: np.ndarray) -> float:
    """(sum e^l)^2 / sum e^(2l) at 300 bits, rounded to float64."""
    mpmath.mp.prec = 300
    terms = [mpmath.exp(mpmath.mpf(float(v))) for v in lw if v != -np.inf]
    if not terms:
        return 0.0
    s1 = mpmath.fsum(terms)
    s2 = mpmath.fsum(t * t for t in terms)
    return float(s1 * s1 / s2)


# The ESS is S1^2 / S2 in double-double: each of the shifted sums carries one rounding of
# exp per term (at most about 1 ULP of relative error between them, with S1 counted twice),
# plus the final rounding; measured 1 ULP over 200 random vectors.  Bound: 4 ULP.
ESS_ULPS = 4


@pytest.mark.parametrize("scale", [1.0, 10.0, 300.0])
def test_importance_weights_match_mpmath(scale: float) -> None:
    rng = np.random.default_rng(int(scale))
    for _ in range(10):
        lw = rng.normal(size=int(rng.integers(1, 200))) * scale - 1000.0
        r = importance_weights(lw)
        _components_ok(r.weights, _oracle.softmax(lw, "float64"), "softmax", "float64")
        _lse_ok(float(r.log_normalizer), lw, None, "float64")
        assert ulp_distance(float(r.ess), _ess_exact(lw), "float64") <= ESS_ULPS
        assert 1.0 <= float(r.ess) <= lw.size


def test_importance_weights_naive_form_fails_where_the_stable_one_holds() -> None:
    lw = np.array([-1000.0, -1000.0, -1001.0])
    with np.errstate(under="ignore"):
        assert np.exp(lw).sum() == 0.0  # the naive normaliser underflows: weights 0/0
    r = importance_weights(lw)
    assert float(r.ess) == _ess_exact(lw)  # mpmath: (2 + e^-1)^2 / (2 + e^-2) = 2.6257483271778526


def test_importance_weights_special_cases_and_axes() -> None:
    r = importance_weights(np.array([[0.0, np.inf, np.inf], [-np.inf, -np.inf, -np.inf], [0.0, np.nan, 1.0]]))
    assert r.weights[0].tolist() == [0.0, 0.5, 0.5]
    assert r.ess.tolist()[:2] == [2.0, 0.0] and math.isnan(r.ess[2])
    assert r.log_normalizer.tolist()[:2] == [np.inf, -np.inf]
    col = importance_weights(np.array([[0.0], [0.0]]), axis=0)
    assert col.weights.tolist() == [[0.5], [0.5]] and col.ess.tolist() == [2.0]
    one = importance_weights(np.float32(3.0) + np.zeros((), dtype=np.float32))
    assert one.weights.shape == () and float(one.ess) == 1.0 and one.ess.dtype == np.float32


# ---------------------------------------------------------------- errors
def _raises(exc: type[Exception], pattern: str):  # noqa: ANN202
    return pytest.raises(exc, match=re.escape(pattern))


def test_chunk_mismatches_name_what_differs() -> None:
    state = LogSumExp(axis=1).update(np.zeros((2, 3)))
    with _raises(TypeError, "must have the dtype float64 of the earlier chunks"):
        state.update(np.zeros((2, 3), dtype=np.float32))
    with _raises(ValueError, "whose other dimensions are (2,)"):
        state.update(np.zeros((4, 3)))
    with _raises(ValueError, "must have 2 dimensions like the earlier chunks"):
        state.update(np.zeros((2, 3, 1)))
    import torch

    with _raises(TypeError, "must be a numpy array like the earlier chunks"):
        state.update(torch.zeros((2, 3), dtype=torch.float64))
    with pytest.raises(IndexError, match="out of range"):
        LogSumExp(axis=2).update(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="`axis` must be None, an int or a tuple of ints"):
        LogSumExp(axis=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`b` must be broadcastable"):
        LogSumExp().update(np.zeros(3), b=np.ones(2))


def test_empty_stream_is_refused() -> None:
    with _raises(ValueError, "LogSumExp has seen no chunk yet"):
        LogSumExp().result()
    with _raises(ValueError, "`chunks` must yield at least one chunk"):
        streaming.logsumexp([])
    with _raises(ValueError, "`chunks` must yield at least one chunk"):
        streaming.softmax([])


def test_merge_mismatches_name_what_differs() -> None:
    a = LogSumExp(axis=1).update(np.zeros((2, 3)))
    with _raises(ValueError, "different axis: this one has axis=1, `other` has axis=0"):
        a.merge(LogSumExp(axis=0).update(np.zeros((2, 3))))
    with _raises(TypeError, "different dtype: this one has float64, `other` has float32"):
        a.merge(LogSumExp(axis=1).update(np.zeros((2, 3), dtype=np.float32)))
    with _raises(ValueError, "different shapes outside the reduced axes: this one has (2,), `other` has (5,)"):
        a.merge(LogSumExp(axis=1).update(np.zeros((5, 3))))
    import torch

    with _raises(TypeError, "different array library: this one has numpy, `other` has torch"):
        a.merge(LogSumExp(axis=1).update(torch.zeros((2, 3), dtype=torch.float64)))
    with _raises(TypeError, "`other` must be a LogSumExp"):
        a.merge(np.zeros(3))  # type: ignore[arg-type]


def test_streamed_softmax_refuses_one_shot_iterators_and_changed_chunks() -> None:
    with _raises(TypeError, "`chunks` must be readable twice"):
        streaming.softmax(iter([np.zeros(3)]))
    with _raises(TypeError, "must be a single int"):
        streaming.softmax([np.zeros(3)], axis=(0,))  # type: ignore[arg-type]
    calls = []

    def shrinking():  # noqa: ANN202
        calls.append(1)
        return iter([np.zeros(3)] if len(calls) > 1 else [np.zeros(3), np.zeros(2)])

    out = streaming.log_softmax(shrinking)
    with _raises(ValueError, "the second pass over `chunks` gave 3 values along the axis but the first gave 5"):
        list(out)


def test_every_streaming_message_is_raised_by_a_test() -> None:
    """Each message function of the streaming section is exercised (found by its text)."""
    import inspect
    import pathlib

    from stablenn import _messages

    here = pathlib.Path(__file__).parent
    source = "".join(p.read_text() for p in (here / "test_streaming.py", here / "test_streaming_losses.py", here / "test_dask.py"))
    section = inspect.getsource(_messages).split("# ---------------------------------------------------------------- streaming")[1]
    section = section.split("\n# ----")[0]
    names = re.findall(r"^def (\w+)\(", section, flags=re.M)
    phrases = {
        "streaming_no_chunk": "has seen no chunk yet",
        "streaming_empty_iterable": "must yield at least one chunk",
        "streaming_chunk_backend": "array like the earlier chunks",
        "streaming_chunk_dtype": "of the earlier chunks",
        "streaming_chunk_ndim": "dimensions like the earlier chunks",
        "streaming_chunk_shape": "whose other dimensions are",
        "streaming_merge_kind": "`other` must be a",
        "streaming_merge_mismatch": "different dtype: this one has",
        "streaming_not_reiterable": "must be readable twice",
        "streaming_second_pass": "the second pass over `chunks`",
        "streaming_loss_item": "each item of `chunks` must be a tuple",
        "streaming_loss_reduction": "must be 'mean' or 'sum'",
        "dask_unknown_chunks": "has unknown chunk sizes along axis",
    }
    assert set(names) == set(phrases)
    for name in names:
        assert phrases[name] in source, name


def test_public_names_are_exported() -> None:
    public = {n for n in dir(streaming) if not n.startswith("_")}
    assert set(streaming.__all__) == public - {"annotations"}
