"""Every error message of the public functions: the built-in type, the argument's name,
what was received and what is accepted.  Inputs are never modified, even on failure."""

from __future__ import annotations

import inspect
import pathlib
import re

import numpy as np
import pytest

import stablenn as snn
from stablenn import _messages

X = np.linspace(-3.0, 3.0, 12).reshape(3, 4)
LABELS = np.full((3, 4), 0.5)
IDX = np.array([0, 1, 3])


def _raises(exc: type[Exception], pattern: str, func, *args, **kwargs) -> str:
    with pytest.raises(exc) as info:
        func(*args, **kwargs)
    text = str(info.value)
    assert re.search(pattern, text), text
    return text


ELEMENTWISE = [getattr(snn, n) for n in (
    "sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad",
    "sigmoid_grad_from_output", "tanh_grad_from_output", "sigmoid_via_tanh", "tanh_via_sigmoid",
)]


@pytest.mark.parametrize("func", ELEMENTWISE, ids=lambda f: f.__name__)
def test_elementwise_refuses_non_arrays_and_complex(func):
    argname = next(iter(inspect.signature(func).parameters))
    text = _raises(TypeError, rf"`{argname}` must be an array.*got list \[1\.0, 2\.0\].*numpy\.asarray", func, [1.0, 2.0])
    assert "NumPy" in text
    _raises(TypeError, r"got float 1\.5", func, 1.5)
    _raises(TypeError, rf"`{argname}` must have a real dtype.*complex128.*real part", func, np.array([1j]))
    _raises(TypeError, rf"`{argname}` must have a real numeric dtype.*<U1", func, np.array(["a"]))


def test_mixed_backends():
    import torch

    _raises(TypeError, r"one array library.*`x` is a numpy array.*`b` is a torch array", snn.logsumexp, X, b=torch.ones(3, 4))


@pytest.mark.parametrize("func", [snn.logsumexp, snn.softmax, snn.log_softmax], ids=lambda f: f.__name__)
def test_axis_errors(func):
    _raises(IndexError, r"`axis` 2 is out of range for an array with 2 dimensions; accepted: -2 to 1", func, X, axis=2)
    _raises(IndexError, r"`axis` -3 is out of range", func, X, axis=-3)
    _raises(TypeError, r"`axis` must be .*got float 1\.0", func, X, axis=1.0)
    _raises(TypeError, r"`axis` must be .*got bool True", func, X, axis=True)


def test_logsumexp_axis_tuple_errors():
    _raises(ValueError, r"`axis` must not name an axis twice; got \(0, -2\)", snn.logsumexp, X, axis=(0, -2))
    _raises(TypeError, r"got tuple \(0, 'a'\)", snn.logsumexp, X, axis=(0, "a"))
    _raises(IndexError, r"0-dimensional and has no axes", snn.logsumexp, np.float64(1.0) * np.ones(()), axis=0)


def test_softmax_needs_single_axis():
    _raises(TypeError, r"`axis` must be a single int.*got tuple \(0, 1\)", snn.softmax, X, axis=(0, 1))
    _raises(TypeError, r"`axis` must be a single int.*got NoneType None", snn.log_softmax, X, axis=None)


def test_logsumexp_argument_errors():
    _raises(ValueError, r"`b` must be broadcastable to the shape of `x` \(3, 4\); got shape \(3,\)", snn.logsumexp, X, b=np.ones(3))
    _raises(TypeError, r"`keepdims` must be True or False; got int 1", snn.logsumexp, X, keepdims=1)
    _raises(TypeError, r"`return_sign` must be True or False; got str 'yes'", snn.logsumexp, X, return_sign="yes")
    _raises(TypeError, r"`b` must be an array", snn.logsumexp, X, b=[1.0, 2.0])
    _raises(TypeError, r"`b` must have a real dtype", snn.logsumexp, X, b=np.ones((3, 4), dtype=complex))


def test_shift_errors():
    _raises(ValueError, r"`shift` must be finite.*got float inf.*shift=None", snn.logsumexp, X, shift=float("inf"))
    _raises(ValueError, r"`shift` must be finite.*holding a non-finite value", snn.softmax, X, shift=np.array([0.0, np.nan, 0.0]))
    text = _raises(ValueError, r"`shift` must be a scalar or an array broadcastable to the reduced shape \(3,\)", snn.logsumexp, X, axis=1, shift=np.zeros(4))
    assert "(3, 1)" in text and "got shape (4,)" in text
    _raises(TypeError, r"`shift` must be an array.*got str 'max'", snn.softmax, X, shift="max")
    _raises(TypeError, r"`shift` must be an array.*got bool True", snn.softmax, X, shift=True)


def test_bce_errors():
    f = snn.binary_cross_entropy_with_logits
    _raises(ValueError, r"`targets` must have the shape of `logits` \(3, 4\); got \(4,\)", f, X, np.ones(4))
    _raises(ValueError, r"`reduction` must be one of 'none', 'mean', 'sum'; got 'avg'", f, X, LABELS, reduction="avg")
    _raises(ValueError, r"`weight` must be broadcastable to the shape of `logits` \(3, 4\); got shape \(3,\)", f, X, LABELS, weight=np.ones(3))
    _raises(ValueError, r"`pos_weight` must be broadcastable.*got shape \(5,\)", f, X, LABELS, pos_weight=np.ones(5))
    _raises(ValueError, r"`targets` must hold probabilities in \[0, 1\]; got values from -0\.5 to -0\.5", f, X, LABELS - 1.0)
    _raises(TypeError, r"`logits` must be an array", f, [0.0], np.ones(1))
    _raises(TypeError, r"`targets` must have a real dtype", f, X, LABELS.astype(complex))


def test_cross_entropy_errors():
    f = snn.cross_entropy_with_logits
    text = _raises(ValueError, r"`targets` must have the shape of `logits` \(3, 4\) \(class probabilities\) or \(3,\) \(class indices\); got \(4,\)", f, X, np.array([0, 1, 2, 3]))
    assert "class indices" in text
    _raises(ValueError, r"`targets` must hold class indices in \[0, 3\]; got values from 0 to 4", f, X, np.array([0, 1, 4]))
    _raises(ValueError, r"class indices in \[0, 3\] \(or `ignore_index` -100\); got values from -100 to 7", f, X, np.array([-100, 7, 1]), ignore_index=-100)
    _raises(ValueError, r"`label_smoothing` must be a real number in \[0, 1\]; got 1\.5", f, X, IDX, label_smoothing=1.5)
    _raises(ValueError, r"`label_smoothing`.*got True", f, X, IDX, label_smoothing=True)
    _raises(ValueError, r"`weight` must have shape \(4,\), one weight per class; got \(3,\)", f, X, IDX, weight=np.ones(3))
    _raises(TypeError, r"`ignore_index` must be None or an int; got float 1\.0", f, X, IDX, ignore_index=1.0)
    _raises(ValueError, r"`ignore_index` applies to integer class-index targets only", f, X, LABELS / 2, ignore_index=0)
    _raises(TypeError, r"`targets` must hold integer class indices or floating class probabilities; got .*bool", f, X, np.ones(3, dtype=bool))
    _raises(ValueError, r"`logits` must have at least one class along axis 1; got shape \(3, 0\)", f, np.zeros((3, 0)), np.zeros(3, dtype=int))
    _raises(IndexError, r"`axis` 2 is out of range", f, X, IDX, axis=2)
    _raises(ValueError, r"`reduction` must be one of", f, X, IDX, reduction=None)
    _raises(ValueError, r"`targets` must hold probabilities in \[0, 1\]; got values from 0\.0 to 2\.0", f, X, np.full((3, 4), 2.0) * (X > 0))


def test_every_core_message_is_raised_by_a_test():
    """Each message function of the core section is exercised above (by its text)."""
    source = pathlib.Path(__file__).read_text()
    core = inspect.getsource(_messages).split("# ---------------------------------------------------------------- core")[1]
    core = core.split("\n# ----")[0]
    names = re.findall(r"^def (\w+)\(", core, flags=re.M)
    phrases = {
        "not_an_array": "must be an array",
        "mixed_backends": "one array library",
        "complex_not_supported": "must have a real dtype",
        "not_numeric": "real numeric dtype",
        "axis_type": "must be None, an int",
        "axis_single": "must be a single int",
        "axis_out_of_range": "is out of range",
        "axis_repeated": "name an axis twice",
        "not_broadcastable": "must be broadcastable",
        "shift_shape": "broadcastable to the reduced shape",
        "shift_not_finite": "must be finite",
        "flag_type": "must be True or False",
        "reduction_value": "must be one of 'none'",
        "label_smoothing_value": "label_smoothing",
        "targets_shape": "(class probabilities)",
        "targets_same_shape": "must have the shape of `logits` \\(3, 4\\); got",
        "targets_dtype": "integer class indices or floating",
        "prob_targets_ignore_index": "applies to integer class-index targets only",
        "class_index_range": "must hold class indices",
        "labels_range": "must hold probabilities",
        "weight_shape": "one weight per class",
        "ignore_index_type": "must be None or an int",
        "no_classes": "at least one class",
    }
    assert set(names) == set(phrases), set(names) ^ set(phrases)
    for name in names:
        assert phrases[name] in source, name


def test_failed_calls_leave_inputs_untouched():
    x = X.copy()
    x.setflags(write=False)
    with pytest.raises(ValueError):
        snn.binary_cross_entropy_with_logits(x, np.ones(4))
    np.testing.assert_array_equal(x, X)
