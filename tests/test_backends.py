"""Same kind of array out as in, on the same device, in the promised dtype; inputs never
modified; integers promoted; 16-bit floats never accumulate in 16 bits."""

from __future__ import annotations

import numpy as np
import pytest

import stablenn as snn

ELEMENTWISE = (
    "sigmoid", "log_sigmoid", "softplus", "logit", "tanh", "sigmoid_grad", "tanh_grad",
    "sigmoid_grad_from_output", "tanh_grad_from_output", "sigmoid_via_tanh", "tanh_via_sigmoid",
)

RNG = np.random.default_rng(7)
X = RNG.normal(size=(3, 5)) * 4
P = RNG.uniform(size=(3, 5))


def _calls():
    """(name, function of one backend array -> result) for every public function."""
    return [
        *[(n, (lambda f: lambda be, x: f(x))(getattr(snn, n))) for n in ELEMENTWISE],
        ("logsumexp", lambda be, x: snn.logsumexp(x, axis=1)),
        ("logsumexp b", lambda be, x: snn.logsumexp(x, axis=0, b=be.asarray(P), return_sign=True)[0]),
        ("logsumexp shift", lambda be, x: snn.logsumexp(x, axis=1, shift=be.asarray(np.ones(3)))),
        ("softmax", lambda be, x: snn.softmax(x)),
        ("log_softmax", lambda be, x: snn.log_softmax(x, axis=0)),
        ("bce", lambda be, x: snn.binary_cross_entropy_with_logits(x, be.asarray(P), reduction="none")),
        ("bce mean", lambda be, x: snn.binary_cross_entropy_with_logits(x, be.asarray(P), pos_weight=be.asarray(P[0]))),
        ("ce", lambda be, x: snn.cross_entropy_with_logits(x, be.asarray(np.array([0, 4, 2])), reduction="none")),
        ("ce probs", lambda be, x: snn.cross_entropy_with_logits(x, be.asarray(P / P.sum(1, keepdims=True)))),
    ]


@pytest.mark.parametrize("call", _calls(), ids=[c[0] for c in _calls()])
def test_same_library_dtype_and_untouched_input(backend, call):
    name, run = call
    data = P if "from_output" in name or name == "logit" else X
    x = backend.asarray(data)
    before = backend.numpy(x).copy()
    y = run(backend, x)
    assert backend.is_native(y), type(y)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(backend.numpy(x), before)
    out = backend.numpy(y)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("call", _calls(), ids=[c[0] for c in _calls()])
def test_read_only_numpy_input(np_backend, call):
    name, run = call
    data = (P if "from_output" in name or name == "logit" else X).copy()
    data.setflags(write=False)
    y = run(np_backend, data)
    assert not np.shares_memory(np.asarray(y), data)


def test_integer_and_boolean_inputs_are_promoted(backend):
    x = backend.asarray(np.array([0, 1, 2]))
    y = snn.sigmoid(x)
    default = {"torch": "float32", "jax": "float64"}.get(backend.name, "float64")
    assert str(y.dtype).endswith(default)
    z = snn.softplus(backend.asarray(np.array([True, False])))
    assert str(z.dtype).endswith(default)
    assert np.allclose(backend.numpy(snn.logsumexp(x)), np.log(np.exp(0) + np.exp(1) + np.exp(2)))


def test_float16_sums_are_not_accumulated_in_float16(backend):
    dtype = "float32" if backend.name == "array_api_strict" else "float16"
    x = backend.asarray(np.zeros(100_000), dtype)
    res = backend.numpy(snn.logsumexp(x))
    # log(100000) = 11.512925464970229 (mpmath.log(100000)), rounded to the dtype; float16
    # accumulation would have overflowed to inf at 65504
    assert float(res) == float(np.asarray(11.512925464970229).astype(dtype))


def test_torch_device_and_requires_grad_free_path():
    import torch

    x = torch.linspace(-5, 5, 7, dtype=torch.float64)
    y = snn.softmax(x)
    assert y.device == x.device
    assert isinstance(y, torch.Tensor)


def test_jax_under_jit_and_vmap():
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(X)
    f = jax.jit(lambda a: snn.logsumexp(a, axis=1))
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(snn.logsumexp(x, axis=1)), rtol=0, atol=0)
    g = jax.vmap(snn.log_softmax)
    np.testing.assert_allclose(np.asarray(g(x)), np.asarray(snn.log_softmax(x)), rtol=0, atol=0)
    h = jax.jit(lambda a, t: snn.cross_entropy_with_logits(a, t))
    val = h(x, jnp.asarray([0, 4, 2]))
    assert np.isfinite(float(val))


def test_dask_stays_lazy():
    import dask.array as da

    x = da.from_array(X, chunks=(1, 5))
    y = snn.logsumexp(x, axis=1)
    assert isinstance(y, da.Array)
    # Dask may take its own (one-pass) route: both results within 2 ULP of the exact value
    np.testing.assert_allclose(y.compute(), snn.logsumexp(X, axis=1), rtol=4 * np.finfo(float).eps, atol=0)
