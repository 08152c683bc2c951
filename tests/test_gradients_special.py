"""Item 3 of issue 4: finite gradients wherever the limit exists, on PyTorch and JAX.

Each expected gradient is the limit of the derivative, written out from the closed form
in a comment; NaN is expected only where the input slice holds a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import stablenn as snn

INF, NAN = math.inf, math.nan
FRAMEWORKS = ["torch", "jax"]


def grad(framework: str, fn: Callable[..., Any], x: Any, *rest: Any, cotangent: Any = None) -> np.ndarray:
    """d/dx of sum(cotangent * fn(x, *rest)) (cotangent 1 by default), as float64 NumPy."""
    x = np.asarray(x, dtype=np.float64)
    if framework == "torch":
        xt = torch.tensor(x, requires_grad=True)
        out = fn(xt, *(torch.tensor(np.asarray(r)) if isinstance(r, np.ndarray) else r for r in rest))
        c = torch.ones_like(out) if cotangent is None else torch.tensor(np.asarray(cotangent, dtype=np.float64))
        (g,) = torch.autograd.grad(out, (xt,), grad_outputs=c)
        return g.numpy()
    rest_j = [jnp.asarray(r) if isinstance(r, np.ndarray) else r for r in rest]

    def scalar(v: Any) -> Any:
        out = fn(v, *rest_j)
        return jnp.sum(out if cotangent is None else out * jnp.asarray(cotangent, dtype=jnp.float64))

    return np.asarray(jax.grad(scalar)(jnp.asarray(x)))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        # sigma'(+-inf) = 0; tanh'(+-inf) = 0; d/dx log sigma(x) = sigma(-x): 1 at -inf, 0 at +inf;
        # softplus' = sigma(x): 0 at -inf, 1 at +inf; logit'(p) = 1/(p(1-p)): +inf at 0 and 1
        ("sigmoid", [INF, -INF, 0.0, 1e308, -1e308], [0.0, 0.0, 0.25, 0.0, 0.0]),
        ("tanh", [INF, -INF, 0.0, 1e308, -1e308], [0.0, 0.0, 1.0, 0.0, 0.0]),
        ("log_sigmoid", [INF, -INF, 0.0, 1e308, -1e308], [0.0, 1.0, 0.5, 0.0, 1.0]),
        ("softplus", [INF, -INF, 0.0, 1e308, -1e308], [1.0, 0.0, 0.5, 1.0, 0.0]),
        ("logit", [0.0, 1.0, 0.5, -0.5, 1.5], [INF, INF, 4.0, NAN, NAN]),
        ("sigmoid_grad", [INF, -INF, 0.0], [0.0, 0.0, 0.0]),
        ("tanh_grad", [INF, -INF, 0.0], [0.0, 0.0, 0.0]),
        ("sigmoid_via_tanh", [INF, -INF], [0.0, 0.0]),
        ("tanh_via_sigmoid", [INF, -INF], [0.0, 0.0]),
    ],
)
def test_elementwise_limits(framework: str, name: str, x: list[float], expected: list[float]) -> None:
    g = grad(framework, getattr(snn, name), x)
    np.testing.assert_array_equal(g, np.array(expected))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "log_sigmoid", "softplus", "sigmoid_grad", "tanh_grad"])
def test_nan_only_where_the_input_is_nan(framework: str, name: str) -> None:
    g = grad(framework, getattr(snn, name), [NAN, 1.0, -INF, INF])
    assert np.isnan(g[0]) and not np.isnan(g[1:]).any()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_sigmoid_tanh_tails_from_saved_output(framework: str) -> None:
    # float(mpmath.exp(-40) / (1 + mpmath.exp(-40))**2) = 4.248354255291589e-18
    # float(4 * mpmath.exp(-40) / (1 + mpmath.exp(-40))**2) = 1.6993417021166355e-17
    assert grad(framework, snn.sigmoid, [40.0])[0] == 4.248354255291589e-18
    assert grad(framework, snn.tanh, [20.0])[0] == 1.6993417021166355e-17


# ---------------------------------------------------------------- reductions


LSE = [
    # rows: all -inf; -inf beside finite; two +inf entries; a NaN row
    [-INF, -INF, -INF],
    [0.0, -INF, 0.0],
    [INF, 1.0, INF],
    [NAN, 0.0, 1.0],
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_logsumexp_special_slices(framework: str) -> None:
    g = grad(framework, lambda a: snn.logsumexp(a, axis=1), LSE)
    # d/dx_i logsumexp = softmax_i: all -inf -> 0 (not NaN); the -inf entry -> 0 and the two
    # zeros share 1/2 each; the +inf entries share the gradient evenly; the NaN row is NaN
    np.testing.assert_array_equal(g[:3], [[0.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.5, 0.0, 0.5]])
    assert np.isnan(g[3]).all()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_logsumexp_weights_special(framework: str) -> None:
    # b = 0 removes an entry: its x gets gradient 0 even where x is +inf
    g = grad(framework, lambda a, b: snn.logsumexp(a, b=b), [INF, 0.0, 0.0], np.array([0.0, 1.0, 1.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5])


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_normalisers_special_slices(framework: str, name: str) -> None:
    fn = getattr(snn, name)
    c = np.array([[0.3, -1.0, 2.0]] * 4)
    g = grad(framework, lambda a: fn(a, axis=1), LSE, cotangent=c)
    assert not np.isnan(g[:3]).any() and np.isnan(g[3]).all()
    np.testing.assert_array_equal(g[0], [0.0, 0.0, 0.0])  # all -inf: 0, not NaN
    assert g[1, 1] == 0.0  # the -inf entry beside finite ones
    if name == "softmax":
        # y = (1/2, 0, 1/2); dx = y (g - <y, g>) = (1/2)(0.3 - 1.15), 0, (1/2)(2 - 1.15)
        np.testing.assert_allclose(g[1], [-0.425, 0.0, 0.425], rtol=1e-15)
        np.testing.assert_allclose(g[2], [-0.425, 0.0, 0.425], rtol=1e-15)  # +inf entries share
    else:
        # p = (1/2, 0, 1/2); dx = g - p sum(g) = (0.3 - 0.65, 0, 2 - 0.65)
        np.testing.assert_allclose(g[1], [-0.35, 0.0, 1.35], rtol=1e-15)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_softmax_gradient_of_dominant_component(framework: str) -> None:
    # d softmax_0 / dx_0 = p0 (1 - p0) = p0 p1 with p1 = sigma(-40), p0 = sigma(40):
    # float(mpmath.exp(-40) / (1 + mpmath.exp(-40))**2) = 4.248354255291589e-18, where the
    # peers' p0 (1 - p0) is 0
    g = grad(framework, lambda a: snn.softmax(a), [40.0, 0.0], cotangent=[1.0, 0.0])
    assert g[0] == 4.248354255291589e-18 and g[1] == -4.248354255291589e-18
    # d log_softmax_0 / dx_0 = 1 - p0 = sigma(-40) = float(1 / (1 + mpmath.exp(40)))
    h = grad(framework, lambda a: snn.log_softmax(a), [40.0, 0.0], cotangent=[1.0, 0.0])
    assert h[0] == 4.248354255291589e-18 and h[1] == -4.248354255291589e-18


# ---------------------------------------------------------------- losses


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bce_at_infinite_logits(framework: str) -> None:
    x = [INF, -INF, INF, -INF, INF]
    y = np.array([1.0, 1.0, 0.0, 0.3, 0.3])
    w = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    pw = np.array([3.0, 3.0, 3.0, 3.0, 3.0])
    # d/dx = w [(1 - y) sigma(x) - pw y sigma(-x)]: at +inf w (1 - y), at -inf -w pw y
    g = grad(framework, lambda a, t: snn.binary_cross_entropy_with_logits(a, t, reduction="sum"), x, y)
    np.testing.assert_allclose(g, [0.0, -1.0, 1.0, -0.3, 0.7], rtol=1e-15)
    g = grad(
        framework,
        lambda a, t, ww, pp: snn.binary_cross_entropy_with_logits(a, t, weight=ww, pos_weight=pp, reduction="none"),
        x,
        y,
        w,
        pw,
    )
    np.testing.assert_allclose(g, [0.0, -6.0, 2.0, -1.8, 1.4], rtol=1e-15)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bce_gradient_soft_label_tail(framework: str) -> None:
    # d/dx at x = 40, y = 1: sigma(40) - 1 = -sigma(-40) = -float(1 / (1 + mpmath.exp(40)))
    g = grad(framework, lambda a, t: snn.binary_cross_entropy_with_logits(a, t, reduction="sum"), [40.0], np.array([1.0]))
    assert g[0] == -4.248354255291589e-18


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cross_entropy_special_logits(framework: str) -> None:
    t = np.array([0, 1, 0])
    x = [[0.0, -INF, 0.0], [0.0, -INF, 0.0], [INF, 0.0, INF]]
    g = grad(framework, lambda a, tt: snn.cross_entropy_with_logits(a, tt, reduction="none"), x, t)
    # d/dx = p - onehot(t): row 0: (1/2 - 1, 0, 1/2); row 1: target at -inf: (1/2, -1, 1/2);
    # row 2: +inf entries share p: (1/2 - 1, 0, 1/2)
    np.testing.assert_array_equal(g, [[-0.5, 0.0, 0.5], [0.5, -1.0, 0.5], [-0.5, 0.0, 0.5]])


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cross_entropy_argmax_keeps_its_gradient(framework: str) -> None:
    # d/dx_0 at the target = p0 - 1 = -p1 = -float(1 / (1 + mpmath.exp(40))); peers give 0
    g = grad(framework, lambda a, tt: snn.cross_entropy_with_logits(a, tt, reduction="sum"), [[40.0, 0.0]], np.array([0]))
    assert g[0, 0] == -4.248354255291589e-18 and g[0, 1] == 4.248354255291589e-18
