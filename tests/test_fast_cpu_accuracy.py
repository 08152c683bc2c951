"""The compiled CPU fast paths against the mpmath oracle on the accuracy sampler's inputs.

The audit's inputs (``stablenn.audit._sampler``: vectors of every kind, 'bits' included,
``-inf`` entries, dominant terms, log-probabilities, ties, +inf and NaN; the whole float
line for the elementwise functions; hard, soft and near-0/1 labels, weights, label
smoothing and ``ignore_index`` for the losses) are laid out as arrays above the dispatch
threshold (``_cpu_entries.MIN_ELEMENTS``), so that the public functions take the compiled
kernels exactly as a user's call would; each test checks that they did.  Every element of
every output is compared with the oracle (``stablenn.audit._oracle``) against the budget
table (``stablenn.audit._budgets``): ULP distance for finite exact values, the identical
special value (NaN, +-inf) otherwise.

A vector of length ``n`` is tiled into ``k`` identical rows, ``k`` a power of two with
``k n >= 4096``: every row has the vector's exact results, and a loss summed over the
tiled batch is ``k`` times the exact sum, exactly (a power of two commutes with rounding).
Long rows split into pieces merged in double-double (``_driver.MIN_CHUNK``) are covered by
lowering the piece size, so that the sampled vectors take that path too.

Also here: the special-value table (``tests/test_special_values.py``) and the error table
(``tests/test_errors.py``) run through every fast path (``_cpu_entries.forced()`` makes
the entries apply to their small arrays).

``python tests/test_fast_cpu_accuracy.py`` prints the largest ULP error of each function
and dtype through the fast paths (the figures in docs/performance.md).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import itertools
import math
import pathlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import stablenn as snn
from stablenn._fast import _cpu_entries as E
from stablenn._fast.cpu import _driver as D
from stablenn.audit import _measure, _oracle, _sampler
from stablenn.audit._budgets import budget, logsumexp_tolerance
from stablenn.audit._ulp import get_format, to_storage, ulp_distance

DTYPES = ("float32", "float64")
ELEMENTWISE = ("sigmoid", "softplus", "log_sigmoid", "sigmoid_grad", "tanh_grad")
THRESHOLD = 4096  # every entry's MIN_ELEMENTS (checked below)
HERE = pathlib.Path(__file__).parent

# sample sizes: about 40 s for the whole file on the shared 2-core machine
N_VECTORS = 720  # per dtype: 80 of each of the 9 kinds, lengths 1 to 1000
N_ELEMENTWISE = 8192  # per function and dtype, one array
N_BCE = 12000  # elements per dtype
N_CE_ROWS = 1200  # rows per dtype


class _Taken:
    """Counts the calls that reached the compiled driver (``_driver``'s entry points)."""

    NAMES = (*ELEMENTWISE, "logsumexp", "softmax", "log_softmax", "binary_cross_entropy_with_logits", "cross_entropy_with_logits")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = dict.fromkeys(self.NAMES, 0)
        for name in self.NAMES:
            monkeypatch.setattr(D, name, self._wrap(name, getattr(D, name)))

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return fn(*args, **kw)

        return counted


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> _Taken:
    return _Taken(monkeypatch)


def test_threshold_is_the_dispatch_tables():
    assert set(E.MIN_ELEMENTS.values()) == {THRESHOLD}


def _tile(n: int) -> int:
    """Rows ``k`` (a power of two) so that ``k n`` reaches the dispatch threshold."""
    return 1 << max(0, math.ceil(math.log2(THRESHOLD / max(n, 1))))


def _check(name: str, got: Any, exact: Any, dtype: str, where: str) -> float:
    """Largest ULP error over the finite exact values (asserted within the budget); the
    non-finite exact values must come out identical.  Returns the largest error."""
    got = np.asarray(got)
    exact = np.broadcast_to(np.asarray(exact, dtype=np.float64), got.shape)
    assert got.dtype == np.dtype(dtype), (name, where, got.dtype)
    fin = np.isfinite(exact)
    want_special = exact[~fin].astype(dtype)
    assert np.array_equal(got[~fin], want_special, equal_nan=True), (name, where, got[~fin][:8], want_special[:8])
    u = ulp_distance(got[fin], to_storage(exact[fin], dtype), dtype)
    worst = float(np.max(u, initial=0.0))
    if worst > budget(name, dtype):
        i = int(np.argmax(u))
        raise AssertionError(f"{name} {dtype} {where}: {worst} ULP, got {got[fin][i]!r}, exact {exact[fin][i]!r}")
    return worst


# ------------------------------------------------------------------ reductions


@functools.cache
def _vector_cases(dtype: str) -> list[tuple[_sampler.VectorCase, _oracle.VectorReference]]:
    return [(c, _oracle.vector(c.x.astype(np.float64), dtype)) for c in _sampler.sample_vectors(dtype, N_VECTORS, seed=71)]


def _lse_error(got: np.ndarray, x: np.ndarray, exact: float, dtype: str, where: str) -> float:
    """ULP error of each logsumexp result; where the problem is ill-conditioned (result
    near 0) the absolute bound its condition number allows (``logsumexp_tolerance``)."""
    fmt = get_format(dtype)
    got = np.asarray(got).reshape(-1)
    if not math.isfinite(exact):
        assert np.array_equal(got, np.full(got.shape, exact, dtype=dtype), equal_nan=True), (where, got, exact)
        return 0.0
    u = ulp_distance(got, to_storage(np.array(exact), dtype), dtype)
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(np.float64) - exact)
    tol = logsumexp_tolerance(x.astype(np.float64), None, exact, fmt)
    ok = (u <= budget("logsumexp", dtype)) | (err <= tol)
    assert np.all(ok), (where, got, exact)
    return float(np.max(np.where(u <= budget("logsumexp", dtype), u, 0.0)))


def measure_reductions(dtype: str, taken: _Taken | None = None, long_rows: bool = False) -> dict[str, float]:
    """Every sampled vector tiled into rows above the threshold (or, ``long_rows``, the 1-D
    vector itself under ``forced()`` and split in pieces); returns the largest errors."""
    worst = dict.fromkeys(("logsumexp", "softmax", "log_softmax"), 0.0)
    for case, ref in _vector_cases(dtype):
        x = case.x
        where = f"{case.kind} n={x.size}"
        if long_rows:
            if x.size < 64:  # not split: the row kernels, as tiled above
                continue
            with E.forced():
                outs = {name: getattr(snn, name)(x) for name in worst}
        else:
            data = np.tile(x, (_tile(x.size), 1))
            assert data.size >= THRESHOLD
            outs = {"logsumexp": snn.logsumexp(data, axis=-1), "softmax": snn.softmax(data), "log_softmax": snn.log_softmax(data)}
        worst["logsumexp"] = max(worst["logsumexp"], _lse_error(outs["logsumexp"], x, ref.logsumexp, dtype, where))
        for name in ("softmax", "log_softmax"):
            worst[name] = max(worst[name], _check(name, outs[name], getattr(ref, name), dtype, where))
    if taken is not None:
        assert all(taken.calls[name] >= N_VECTORS // 3 for name in worst), taken.calls
    return worst


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_on_the_sampled_vectors(dtype, taken):
    measure_reductions(dtype, taken)


@pytest.fixture
def pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows from 64 entries on are split in pieces of 32 (the long-row path of 10**8)."""
    monkeypatch.setattr(D, "MIN_CHUNK", 32)
    monkeypatch.setattr(D, "ROW_IN_CACHE", 64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_on_the_sampled_vectors_split_in_pieces(dtype, taken, pieces):
    measure_reductions(dtype, taken, long_rows=True)


def test_vectors_spanning_the_whole_float64_range(taken):
    # x - max beyond the largest float: log_softmax is -inf there (its exact value is below
    # -max by far), softmax 0, the dominant entry's log-probability -0 or a tiny negative
    # number (never positive), the cross-entropy at that entry inf, elsewhere exact
    big = np.finfo(np.float64).max
    x = np.array([1.5e308, -1.6e308, 5.0, -big, 1e300, big, -1e-300, 0.0])
    ref = _oracle.vector(x, "float64")
    data = np.tile(x, (512, 1))
    _check("log_softmax", snn.log_softmax(data), ref.log_softmax, "float64", "spanning")
    _check("softmax", snn.softmax(data), ref.softmax, "float64", "spanning")
    assert not np.any(snn.log_softmax(data) > 0)
    t = np.tile(np.arange(x.size), 64)
    none, _, _ = _oracle.cross_entropy_all(data[: x.size], t[: x.size], "float64")
    _check("cross_entropy_with_logits", snn.cross_entropy_with_logits(data, t, reduction="none"), np.tile(none, 64), "float64", "spanning")
    assert taken.calls["log_softmax"] and taken.calls["cross_entropy_with_logits"]


# ------------------------------------------------------------------ elementwise


def measure_elementwise(name: str, dtype: str) -> float:
    x = _sampler.sample_unary(dtype, N_ELEMENTWISE, seed=72)
    assert x.size >= THRESHOLD
    return _check(name, getattr(snn, name)(x), _oracle.elementwise(name, x, dtype), dtype, "sample_unary")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_on_the_sampled_line(name, dtype, taken):
    measure_elementwise(name, dtype)
    assert taken.calls[name] == 1


# ------------------------------------------------------------------ losses


def _tiled_loss_check(name: str, fn: Callable[..., Any], logits: np.ndarray, targets: np.ndarray, kw: dict[str, Any], exact: tuple[Any, Any, Any], dtype: str, where: str) -> float:
    """The loss on ``k`` stacked copies of a batch: each loss, the mean (unchanged by the
    copies) and the sum (``k`` times the exact sum, a power of two)."""
    none, mean, total = exact
    k = _tile(logits.size)
    xs = np.stack([logits] * k)
    ts = np.stack([targets] * k)
    worst = 0.0
    for reduction in ("none", "mean", "sum"):
        got = fn(xs, ts, reduction=reduction, **kw)
        if reduction == "none":
            want = np.broadcast_to(np.asarray(none, dtype=np.float64), got.shape)
        elif reduction == "mean":
            want = np.asarray(mean, dtype=np.float64)
        else:  # k times the correctly rounded sum, in the dtype: inf beyond its range
            if 0.0 < abs(float(total)) < np.finfo(dtype).tiny:
                continue  # a subnormal sum times k is not the rounding of k times the exact sum
            with np.errstate(over="ignore"):
                want = (np.asarray(total, dtype=dtype) * np.asarray(k, dtype=dtype)).astype(np.float64)
        worst = max(worst, _check(name, np.atleast_1d(got), np.atleast_1d(want), dtype, f"{where} {reduction} k={k}"))
    return worst


def measure_bce(dtype: str) -> float:
    worst = 0.0
    for b in _sampler.sample_bce(dtype, N_BCE, seed=73):
        kw = {"weight": b.weight, "pos_weight": b.pos_weight}  # 1-D: one per position of the last axis
        exact = _measure._task_bce(b, dtype)
        where = f"n={b.logits.size} weight={b.weight is not None} pos_weight={b.pos_weight is not None}"
        worst = max(worst, _tiled_loss_check("binary_cross_entropy_with_logits", snn.binary_cross_entropy_with_logits, b.logits, b.targets, kw, exact, dtype, where))
    return worst


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_on_the_sampled_batches(dtype, taken):
    measure_bce(dtype)
    assert taken.calls["binary_cross_entropy_with_logits"] > 0


def measure_cross_entropy(dtype: str) -> float:
    worst = 0.0
    for b in _sampler.sample_cross_entropy(dtype, N_CE_ROWS, seed=74):
        if b.targets.ndim != 1:  # class probabilities: no fast path (plain path)
            continue
        kw = {"weight": b.weight, "label_smoothing": b.label_smoothing, "ignore_index": b.ignore_index}
        exact = _measure._task_ce(b, dtype)
        where = f"{b.logits.shape} {_short(kw)}"
        worst = max(worst, _tiled_loss_check("cross_entropy_with_logits", snn.cross_entropy_with_logits, b.logits, b.targets, kw, exact, dtype, where))
    return worst


def _short(kw: dict[str, Any]) -> str:
    return ", ".join(f"{k}={'array' if isinstance(v, np.ndarray) else v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_on_the_sampled_batches(dtype, taken):
    measure_cross_entropy(dtype)
    assert taken.calls["cross_entropy_with_logits"] > 0


def test_loss_means_beyond_the_sum_range(taken):
    # weighted losses near the largest float: single losses and their sum exceed the
    # format while the mean does not (exact values from the oracle)
    rng = np.random.default_rng(75)
    x = rng.standard_normal((8, 1024)) * 1e300
    x[3, 5] = 1.7e308
    x[6, 7] = -1.6e308
    y = rng.integers(0, 2, x.shape).astype(np.float64)
    y[3, 5], y[6, 7] = 0.0, 1.0
    w = rng.uniform(0.1, 10.0, x.shape[-1])
    w[5] = w[7] = 8.0
    none, mean, total = _oracle.bce_all(x, y, "float64", weight=np.broadcast_to(w, x.shape))
    assert math.isfinite(mean) and not math.isfinite(total) and not np.all(np.isfinite(none))
    for reduction, want in (("none", none), ("mean", mean), ("sum", total)):
        got = snn.binary_cross_entropy_with_logits(x, y, weight=w, reduction=reduction)
        _check("binary_cross_entropy_with_logits", np.atleast_1d(got), np.atleast_1d(want), "float64", reduction)
    logits = np.zeros((4096, 3))
    logits[:, 0] = 1.5e308
    logits[::2, 1] = -1.6e308
    t = np.tile([1, 2], 2048)
    cw = np.array([1.0, 0.5, 4.0])
    for eps in (0.0, 0.1, 1.0):
        none, mean, total = _oracle.cross_entropy_all(logits[:2], t[:2], "float64", weight=cw, label_smoothing=eps)
        for reduction, want in (("none", np.tile(none, 2048)), ("mean", mean), ("sum", float(total) * 2048)):
            with np.errstate(over="ignore"):
                got = snn.cross_entropy_with_logits(logits, t, weight=cw, label_smoothing=eps, reduction=reduction)
            _check("cross_entropy_with_logits", np.atleast_1d(got), np.atleast_1d(want), "float64", f"eps={eps} {reduction}")
    assert taken.calls["binary_cross_entropy_with_logits"] == 3 and taken.calls["cross_entropy_with_logits"] == 9


# ------------------------------------------------------------------ the special-value and error tables


def _load_test_module(name: str) -> Any:
    """A sibling test module, by path (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location(f"_fast_cpu_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parametrized_calls(fn: Callable[..., Any], fixtures: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every parameter combination of a test function's ``parametrize`` marks, with the
    named fixtures filled in; float16 and bfloat16 (no fast path) left out."""
    grids: list[list[dict[str, Any]]] = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        grid = [dict(zip(names, v if len(names) > 1 else (v,))) for v in values]
        grids.append([g for g in grid if g.get("dtype", "float64") in DTYPES])
    params = inspect.signature(fn).parameters
    for combo in itertools.product(*grids):
        kw = {k: v for g in combo for k, v in g.items()}
        kw.update({k: v for k, v in fixtures.items() if k in params})
        if set(kw) == set(params):
            yield kw


def _run_table(module_name: str, fixtures: dict[str, Any], taken: _Taken) -> int:
    module = _load_test_module(module_name)
    ran = 0
    for name, fn in sorted(vars(module).items()):
        if not name.startswith("test_") or not callable(fn):
            continue
        for kw in _parametrized_calls(fn, fixtures):
            with E.forced():
                fn(**kw)
            ran += 1
    return ran


def test_special_value_table_through_the_fast_paths(np_backend, taken):
    # tests/test_special_values.py on NumPy float32/float64 with every entry forced: the
    # elementwise functions, logsumexp, softmax, log_softmax, BCE and cross-entropy
    assert _run_table("test_special_values", {"backend": np_backend}, taken) >= 40
    for name in ("sigmoid", "softplus", "log_sigmoid", "sigmoid_grad", "tanh_grad", "logsumexp", "softmax",
                 "log_softmax", "binary_cross_entropy_with_logits", "cross_entropy_with_logits"):
        assert taken.calls[name] > 0, name


def test_error_table_through_the_fast_paths(taken):
    # tests/test_errors.py with every entry forced: the same exceptions and messages (the
    # arguments are checked before the dispatch table is consulted; this pins that order)
    assert _run_table("test_errors", {}, taken) >= 15


# ------------------------------------------------------------------ figures


def main() -> None:  # pragma: no cover - prints the figures of docs/performance.md
    rows = []
    for dtype in DTYPES:
        rows += [(k, dtype, v) for k, v in measure_reductions(dtype).items()]
        rows += [(name, dtype, measure_elementwise(name, dtype)) for name in ELEMENTWISE]
        rows.append(("binary_cross_entropy_with_logits", dtype, measure_bce(dtype)))
        rows.append(("cross_entropy_with_logits", dtype, measure_cross_entropy(dtype)))
    print("| function | dtype | max ULP (fast path) | budget |")
    print("|---|---|---|---|")
    for name, dtype, v in sorted(rows):
        print(f"| {name} | {dtype} | {v:g} | {budget(name, dtype):g} |")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
