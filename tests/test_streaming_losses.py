"""Streamed binary and softmax cross-entropy: the one-shot loss of the concatenated batches.

References are the mpmath oracle's correctly rounded losses of the concatenated batches;
budgets come from the shared table.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from stablenn import streaming
from stablenn.audit import _budgets, _oracle
from stablenn.audit._ulp import ulp_distance
from stablenn.streaming import BinaryCrossEntropyWithLogits, CrossEntropyWithLogits

DTYPES = ("float32", "float64")


def _within(got: object, exact: float, function: str, dtype: str) -> None:
    budget = _budgets.budget(function, dtype)
    assert float(ulp_distance(np.asarray(got, dtype=dtype), np.asarray(exact, dtype=dtype), dtype)) <= budget, (
        got,
        exact,
    )


def _batches(rng: np.random.Generator, n: int, k: int) -> list[np.ndarray]:
    cuts = np.sort(rng.integers(0, n + 1, size=k - 1))
    return np.split(np.arange(n), cuts)


# ---------------------------------------------------------------- binary cross-entropy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_streamed_equals_oracle_on_concatenation(dtype: str, reduction: str) -> None:
    rng = np.random.default_rng(1)
    for trial in range(4):
        n = int(rng.integers(5, 300))
        x = (rng.normal(size=(n, 3)) * [1.0, 30.0, 800.0][trial % 3]).astype(dtype)
        y = rng.uniform(size=(n, 3)).astype(dtype)  # soft labels
        w = rng.uniform(0.5, 2.0, size=(n, 3)).astype(dtype)
        pw = np.array([0.5, 1.0, 3.0], dtype=dtype)
        acc = BinaryCrossEntropyWithLogits(pos_weight=pw)
        for idx in _batches(rng, n, 5):
            acc.update(x[idx], y[idx], weight=w[idx])
        got = acc.result(reduction=reduction)
        assert got.dtype == np.dtype(dtype) and got.shape == ()
        exact = _oracle.bce_reduced(x, y, dtype, weight=w, pos_weight=pw, reduction=reduction)
        _within(got, exact, "binary_cross_entropy_with_logits", dtype)
        assert acc.count == 3 * n


def test_bce_function_form_and_merge() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=40) * 5
    y = (rng.uniform(size=40) > 0.5).astype(np.float64)
    exact = _oracle.bce_reduced(x, y, "float64", reduction="mean")
    got = streaming.binary_cross_entropy_with_logits(iter([(x[:10], y[:10]), (x[10:], y[10:], np.ones(30))]))
    _within(got, exact, "binary_cross_entropy_with_logits", "float64")
    left = BinaryCrossEntropyWithLogits().update(x[:25], y[:25])
    right = BinaryCrossEntropyWithLogits().update(x[25:], y[25:])
    _within(right.merge(left).result(), exact, "binary_cross_entropy_with_logits", "float64")
    assert left.count == 25 and right.count == 40


def test_bce_none_yields_each_batch() -> None:
    x = np.array([np.inf, -np.inf, 800.0, 0.0])
    y = np.array([1.0, 1.0, 1.0 - 2.0**-30, 0.5])
    out = list(streaming.binary_cross_entropy_with_logits([(x[:1], y[:1]), (x[1:], y[1:])], reduction="none"))
    assert [o.shape for o in out] == [(1,), (3,)]
    exact = _oracle.bce(x, y, "float64")
    np.testing.assert_array_equal(np.concatenate(out), exact)


def test_bce_infinite_losses_and_empty_batches() -> None:
    acc = BinaryCrossEntropyWithLogits()
    acc.update(np.array([]), np.array([]))
    assert math.isnan(float(acc.result()))  # the mean of nothing: 0 / 0, as PyTorch
    assert float(acc.result(reduction="sum")) == 0.0
    acc.update(np.array([-np.inf]), np.array([1.0]))
    assert float(acc.result()) == np.inf


# ---------------------------------------------------------------- softmax cross-entropy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ce_index_targets_weighted_ignored_smoothed(dtype: str, reduction: str) -> None:
    rng = np.random.default_rng(3)
    for trial in range(3):
        n, c = int(rng.integers(4, 120)), 6
        x = (rng.normal(size=(n, c)) * [1.0, 20.0, 60.0][trial]).astype(dtype)
        t = rng.integers(0, c, size=n)
        t[rng.uniform(size=n) < 0.2] = -100
        w = rng.uniform(0.1, 2.0, size=c).astype(dtype)
        eps = [0.0, 0.1, 0.0][trial]
        acc = CrossEntropyWithLogits(weight=w, ignore_index=-100, label_smoothing=eps)
        for idx in _batches(rng, n, 4):
            acc.update(x[idx], t[idx])
        exact = _oracle.cross_entropy(x, t, dtype, weight=w, label_smoothing=eps, ignore_index=-100, reduction=reduction)
        _within(acc.result(reduction=reduction), exact, "cross_entropy_with_logits", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ce_probability_targets_class_axis_first(dtype: str) -> None:
    rng = np.random.default_rng(4)
    n, c = 50, 5
    x = (rng.normal(size=(n, c)) * 10).astype(dtype)
    p = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    acc = CrossEntropyWithLogits(axis=0)
    for idx in _batches(rng, n, 3):
        acc.update(x[idx].T, p[idx].T)  # classes along axis 0
    exact = _oracle.cross_entropy(x, p, dtype, reduction="mean")
    _within(acc.result(), exact, "cross_entropy_with_logits", dtype)
    assert acc.count == n


def test_ce_mean_counts_only_rows_not_ignored_across_batches() -> None:
    # batch 1: one row at its argmax with a gap of 40, one ignored; batch 2: a uniform row
    batches = [(np.array([[40.0, 0.0], [0.0, 0.0]]), np.array([0, -100])), (np.zeros((1, 2)), np.array([1]))]
    got = streaming.cross_entropy_with_logits(batches, ignore_index=-100)
    x = np.concatenate([b[0] for b in batches])
    t = np.concatenate([b[1] for b in batches])
    exact = _oracle.cross_entropy(x, t, "float64", ignore_index=-100, reduction="mean")
    _within(got, exact, "cross_entropy_with_logits", "float64")
    rows = list(streaming.cross_entropy_with_logits(batches, ignore_index=-100, reduction="none"))
    np.testing.assert_array_equal(
        np.concatenate(rows), _oracle.cross_entropy(x, t, "float64", ignore_index=-100, reduction="none")
    )


def test_ce_merge() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 4))
    t = rng.integers(0, 4, size=30)
    a = CrossEntropyWithLogits().update(x[:7], t[:7])
    b = CrossEntropyWithLogits().update(x[7:], t[7:])
    _within(a.merge(b).result(reduction="sum"), _oracle.cross_entropy(x, t, "float64", reduction="sum"),
            "cross_entropy_with_logits", "float64")
    assert a.merge(CrossEntropyWithLogits()).count == 30


# ---------------------------------------------------------------- errors
def _raises(exc: type[Exception], pattern: str):  # noqa: ANN202
    return pytest.raises(exc, match=re.escape(pattern))


def test_loss_errors_name_what_differs() -> None:
    bce = BinaryCrossEntropyWithLogits().update(np.zeros(3), np.zeros(3))
    with _raises(TypeError, "`logits` must have the dtype float64 of the earlier chunks"):
        bce.update(np.zeros(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    import torch

    with _raises(TypeError, "`logits` must be a numpy array like the earlier chunks"):
        bce.update(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    with _raises(ValueError, "`targets` must have the shape of `logits` (3,)"):
        bce.update(np.zeros(3), np.zeros(2))
    with _raises(ValueError, "`targets` must hold probabilities in [0, 1]"):
        bce.update(np.zeros(2), np.array([0.0, 2.0]))
    with _raises(ValueError, "must be 'mean' or 'sum'; got 'none'"):
        bce.result(reduction="none")
    with _raises(ValueError, "BinaryCrossEntropyWithLogits has seen no chunk yet"):
        BinaryCrossEntropyWithLogits().result()
    with _raises(TypeError, "`pos_weight` must be an array"):
        BinaryCrossEntropyWithLogits(pos_weight=2.0)  # type: ignore[arg-type]
    with _raises(TypeError, "different dtype: this one has float64, `other` has float32"):
        bce.merge(BinaryCrossEntropyWithLogits().update(np.zeros(1, np.float32), np.zeros(1, np.float32)))
    with _raises(TypeError, "different array library: this one has numpy, `other` has torch"):
        bce.merge(BinaryCrossEntropyWithLogits().update(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)))
    with _raises(TypeError, "`other` must be a BinaryCrossEntropyWithLogits"):
        bce.merge(CrossEntropyWithLogits())  # type: ignore[arg-type]


def test_ce_errors_name_what_differs() -> None:
    ce = CrossEntropyWithLogits().update(np.zeros((2, 3)), np.array([0, 1]))
    with _raises(ValueError, "(3 classes)"):
        ce.update(np.zeros((2, 4)), np.array([0, 1]))
    with _raises(TypeError, "`targets` must have the dtype of the earlier batches' kind"):
        ce.update(np.zeros((2, 3)), np.full((2, 3), 1 / 3))
    with _raises(ValueError, "`targets` must hold class indices in [0, 2]"):
        ce.update(np.zeros((2, 3)), np.array([0, 3]))
    with _raises(ValueError, "different numbers of classes: this one has 3, `other` has 2"):
        ce.merge(CrossEntropyWithLogits().update(np.zeros((1, 2)), np.array([0])))
    with _raises(ValueError, "different kinds of target: this one has class-index targets"):
        ce.merge(CrossEntropyWithLogits().update(np.zeros((1, 3)), np.full((1, 3), 1 / 3)))
    with _raises(TypeError, "`ignore_index` must be None or an int"):
        CrossEntropyWithLogits(ignore_index=1.5)  # type: ignore[arg-type]
    with _raises(ValueError, "`label_smoothing` must be a real number in [0, 1]"):
        CrossEntropyWithLogits(label_smoothing=2.0)
    with _raises(TypeError, "`weight` must be an array"):
        CrossEntropyWithLogits(weight=[1.0, 2.0])  # type: ignore[arg-type]
    with _raises(TypeError, "`targets` must be an array"):
        ce.update(np.zeros((2, 3)), [0, 1])  # type: ignore[arg-type]


def test_loss_stream_items_are_checked() -> None:
    with _raises(TypeError, "each item of `chunks` must be a tuple (logits, targets); item 1 is"):
        streaming.cross_entropy_with_logits([(np.zeros((1, 2)), np.array([0])), np.zeros((1, 2))])
    with _raises(TypeError, "(logits, targets) or (logits, targets, weight); item 0 is"):
        streaming.binary_cross_entropy_with_logits([(np.zeros(1),)])
    with _raises(ValueError, "`chunks` must yield at least one chunk"):
        streaming.binary_cross_entropy_with_logits([])
    with _raises(ValueError, "`reduction` must be one of"):
        streaming.cross_entropy_with_logits([], reduction="avg")
