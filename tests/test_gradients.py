"""Gradients through stablenn's own rules: gradcheck, check_grads, transformations, routing.

Item 1 of issue 4: on a PyTorch tensor that requires grad, and under ``jax.grad``,
``jax.jit`` and ``jax.vmap``, every function differentiates through its rule, and the
rules pass ``torch.autograd.gradcheck``/``gradgradcheck`` (float64, random points) and
``jax.test_util.check_grads`` in forward and reverse mode, to second order.  The truth here
is numerical differentiation (central differences), not stablenn.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads

import stablenn as snn
from stablenn import _autodiff

ELEMENTWISE = [
    "sigmoid",
    "tanh",
    "log_sigmoid",
    "softplus",
    "sigmoid_grad",
    "tanh_grad",
    "sigmoid_via_tanh",
    "tanh_via_sigmoid",
    "sigmoid_grad_from_output",
    "tanh_grad_from_output",
]


def _points(shape: tuple[int, ...], seed: int, scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _probs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    # away from 0 and 1, where finite differences of 1/(p(1-p)) need tiny steps
    return 0.15 + 0.7 * np.random.default_rng(seed).random(shape)


def _t(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


# ---------------------------------------------------------------- PyTorch: gradcheck


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_torch_gradcheck_elementwise(name: str) -> None:
    f = getattr(snn, name)
    x = _t(_points((9,), 1))
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_torch_gradcheck_logit() -> None:
    p = _t(_probs((9,), 2))
    assert torch.autograd.gradcheck(snn.logit, (p,))
    assert torch.autograd.gradgradcheck(snn.logit, (p,))


@pytest.mark.parametrize("residual", ["full", "half", "none"])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax", "log_softmax"])
def test_torch_gradcheck_every_residual(name: str, residual: str) -> None:
    # the output-saving rules are right whatever the residual kept (it only adds digits)
    x = _t(_points((3, 4), 3))
    fn = getattr(snn, name)

    def f(a: torch.Tensor) -> torch.Tensor:
        if name in ("softmax", "log_softmax"):
            return _autodiff.call(name, fn, a, None, axis=-1, residual=residual)  # type: ignore[no-any-return]
        return _autodiff.call(name, fn, a, residual=residual)  # type: ignore[no-any-return]

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


REDUCTIONS = {
    "logsumexp_all": lambda a: snn.logsumexp(a),
    "logsumexp_axis0_keepdims": lambda a: snn.logsumexp(a, axis=0, keepdims=True),
    "logsumexp_axes": lambda a: snn.logsumexp(a, axis=(0, 2)),
    "logsumexp_shift": lambda a: snn.logsumexp(a, axis=1, shift=0.5),
    "softmax_last": lambda a: snn.softmax(a),
    "softmax_axis1": lambda a: snn.softmax(a, axis=1),
    "softmax_shift": lambda a: snn.softmax(a, axis=0, shift=1.0),
    "log_softmax_last": lambda a: snn.log_softmax(a),
    "log_softmax_axis0": lambda a: snn.log_softmax(a, axis=0),
}


@pytest.mark.parametrize("case", sorted(REDUCTIONS))
def test_torch_gradcheck_reductions(case: str) -> None:
    x = _t(_points((2, 3, 4), 4))
    f = REDUCTIONS[case]
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_torch_gradcheck_logsumexp_weights() -> None:
    x = _t(_points((3, 4), 5))
    b = _t(_points((4,), 6))  # both signs, broadcast over the rows

    def f(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return snn.logsumexp(a, b=w, axis=1, return_sign=True)[0]  # type: ignore[no-any-return]

    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_gradcheck_bce(reduction: str) -> None:
    x = _t(_points((3, 4), 7))
    y = _t(np.random.default_rng(8).random((3, 4)))
    w = _t(np.random.default_rng(9).random(4) + 0.5)
    pw = _t(np.random.default_rng(10).random(4) + 0.5)

    def f(*a: torch.Tensor) -> torch.Tensor:
        return snn.binary_cross_entropy_with_logits(a[0], a[1], weight=a[2], pos_weight=a[3], reduction=reduction)  # type: ignore[no-any-return]

    assert torch.autograd.gradcheck(f, (x, y, w, pw))
    assert torch.autograd.gradgradcheck(f, (x, y, w, pw))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_torch_gradcheck_cross_entropy(reduction: str, smoothing: float) -> None:
    x = _t(_points((4, 5), 11))
    w = torch.tensor(np.random.default_rng(12).random(5) + 0.5)
    t = torch.tensor([0, 3, 4, 1])

    def by_index(a: torch.Tensor) -> torch.Tensor:
        return snn.cross_entropy_with_logits(a, t, weight=w, ignore_index=3, label_smoothing=smoothing, reduction=reduction)  # type: ignore[no-any-return]

    assert torch.autograd.gradcheck(by_index, (x,))
    assert torch.autograd.gradgradcheck(by_index, (x,))
    q = _t(np.random.default_rng(13).dirichlet(np.ones(5), size=4))

    def by_probs(a: torch.Tensor, qq: torch.Tensor) -> torch.Tensor:
        return snn.cross_entropy_with_logits(a, qq, weight=w, label_smoothing=smoothing, reduction=reduction)  # type: ignore[no-any-return]

    assert torch.autograd.gradcheck(by_probs, (x, q))
    assert torch.autograd.gradgradcheck(by_probs, (x, q))


def test_torch_cross_entropy_class_axis_one() -> None:
    # PyTorch's layout (N, C, d): classes on axis 1
    x = _t(_points((2, 3, 4), 14))
    t = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]])
    assert torch.autograd.gradcheck(lambda a: snn.cross_entropy_with_logits(a, t, axis=1), (x,))


# ---------------------------------------------------------------- JAX: check_grads


def _j(a: np.ndarray) -> jax.Array:
    return jnp.asarray(a, dtype=jnp.float64)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_jax_check_grads_elementwise(name: str) -> None:
    check_grads(getattr(snn, name), (_j(_points((9,), 15)),), order=2, modes=("fwd", "rev"))


def test_jax_check_grads_logit() -> None:
    check_grads(snn.logit, (_j(_probs((9,), 16)),), order=2, modes=("fwd", "rev"))


JAX_REDUCTIONS = ["logsumexp_all", "logsumexp_axes", "softmax_axis1", "softmax_shift", "log_softmax_last", "log_softmax_axis0"]


@pytest.mark.parametrize("case", JAX_REDUCTIONS)
def test_jax_check_grads_reductions(case: str) -> None:
    # under jit: JAX compiles each operation of an eager call separately, and the
    # double-double kernels have many (the rules under jit are what users run)
    f = REDUCTIONS[case]
    check_grads(jax.jit(f), (_j(_points((2, 3, 4), 17)),), order=1, modes=("fwd", "rev"))


def test_jax_check_grads_second_order_softmax() -> None:
    check_grads(jax.jit(REDUCTIONS["softmax_last"]), (_j(_points((2, 3), 26)),), order=2, modes=("fwd", "rev"))


def test_jax_check_grads_logsumexp_weights() -> None:
    x, b = _j(_points((3, 4), 18)), _j(_points((4,), 19))

    def f(a: jax.Array, w: jax.Array) -> jax.Array:
        return snn.logsumexp(a, b=w, axis=1, return_sign=True)[0]

    check_grads(jax.jit(f), (x, b), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("reduction", ["mean"])  # the others: gradcheck on PyTorch, same rules
def test_jax_check_grads_losses(reduction: str) -> None:
    rng = np.random.default_rng(20)
    x, y = _j(_points((3, 4), 21)), _j(rng.random((3, 4)))
    w, pw = _j(rng.random(4) + 0.5), _j(rng.random(4) + 0.5)

    def bce(*a: jax.Array) -> jax.Array:
        return snn.binary_cross_entropy_with_logits(a[0], a[1], weight=a[2], pos_weight=a[3], reduction=reduction)

    check_grads(jax.jit(bce), (x, y, w, pw), order=1, modes=("fwd", "rev"))
    t = jnp.asarray([0, 3, 1])
    cw = _j(rng.random(4) + 0.5)

    def ce(a: jax.Array) -> jax.Array:
        return snn.cross_entropy_with_logits(a, t, weight=cw, ignore_index=3, label_smoothing=0.1, reduction=reduction)

    check_grads(jax.jit(ce), (x,), order=1, modes=("fwd", "rev"))
    q = _j(rng.dirichlet(np.ones(4), size=3))

    def ce_probs(a: jax.Array, qq: jax.Array) -> jax.Array:
        return snn.cross_entropy_with_logits(a, qq, weight=cw, reduction=reduction)

    check_grads(jax.jit(ce_probs), (x, q), order=1, modes=("fwd", "rev"))


def test_jax_grad_under_jit_and_vmap() -> None:
    x = _j(_points((3, 5), 22))
    # jit of grad, grad of jit, vmap of grad: the rule is in the traced program
    g1 = jax.jit(jax.grad(lambda a: snn.logsumexp(a)))(x)
    g2 = jax.grad(jax.jit(lambda a: snn.logsumexp(a)))(x)
    g3 = jax.vmap(jax.grad(lambda r: snn.logsumexp(r)))(x)
    # d/dx logsumexp over all entries is softmax over all entries; over a row, per row
    e = np.exp(np.asarray(x) - np.max(np.asarray(x)))
    np.testing.assert_allclose(np.asarray(g1), e / e.sum(), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(g2), e / e.sum(), rtol=1e-14)
    rows = np.exp(np.asarray(x) - np.max(np.asarray(x), axis=1, keepdims=True))
    np.testing.assert_allclose(np.asarray(g3), rows / rows.sum(axis=1, keepdims=True), rtol=1e-14)


# ---------------------------------------------------------------- routing and values


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "log_sigmoid"])
def test_same_values_with_and_without_gradients(name: str) -> None:
    f = getattr(snn, name)
    a = _points((50,), 23, scale=30.0)
    # PyTorch: the rule's forward is the plain path, bit for bit
    np.testing.assert_array_equal(f(torch.tensor(a, requires_grad=True)).detach().numpy(), f(torch.tensor(a)).numpy())
    # JAX under jit: the same program as before the rules existed (routing switched off)
    with _autodiff.disabled():
        before = np.asarray(jax.jit(f)(_j(a)))
    np.testing.assert_array_equal(np.asarray(jax.jit(f)(_j(a))), before)
    value = jax.jit(jax.value_and_grad(lambda v: jnp.sum(f(v))))(_j(a))[0]
    with _autodiff.disabled():
        plain_sum = jax.jit(lambda v: jnp.sum(f(v)))(_j(a))
    assert float(value) == float(plain_sum)


def test_same_values_reductions_and_losses() -> None:
    a = _points((4, 6), 24, scale=20.0)
    t = np.array([0, 5, 2, 1])
    for f in (
        lambda v: snn.logsumexp(v, axis=1),
        lambda v: snn.softmax(v, axis=0),
        lambda v: snn.log_softmax(v),
        lambda v: snn.cross_entropy_with_logits(v, t if isinstance(v, np.ndarray) else torch.tensor(t), reduction="none"),
    ):
        # the autograd Function's forward is the public function on the same backend (NumPy
        # may take its tiled kernels instead, within the same budget but not bit for bit)
        np.testing.assert_array_equal(f(torch.tensor(a, requires_grad=True)).detach().numpy(), f(torch.tensor(a)).numpy())


def test_routing_only_where_needed() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert _autodiff.wanted(x)
    with torch.no_grad():
        assert not _autodiff.wanted(x)
    assert not _autodiff.wanted(torch.tensor([1.0]))
    assert _autodiff.wanted(jnp.asarray([1.0]))  # a concrete JAX array: one compiled program
    assert not _autodiff.wanted(np.ones(2), None, 1.5)
    seen = []
    jax.grad(lambda v: (seen.append(_autodiff.wanted(v)), jnp.sum(v))[1])(jnp.ones(2))
    assert seen == [True]
    with _autodiff.disabled():
        assert not _autodiff.wanted(x)


def test_concrete_jax_arrays_run_one_cached_program() -> None:
    from stablenn._autodiff import _jax as rules_jax

    x = jnp.asarray(np.linspace(-30.0, 30.0, 7))
    before = {k for k in rules_jax._COMPILED if k[0] == "sigmoid"}
    first, second = snn.sigmoid(x), snn.sigmoid(x + 1.0)
    added = {k for k in rules_jax._COMPILED if k[0] == "sigmoid"} - before
    assert len(added) <= 1 and len({k for k in rules_jax._COMPILED if k[0] == "sigmoid"}) == max(1, len(before))
    with _autodiff.disabled():  # the same function run operation by operation (XLA may fuse
        # a product into an FMA in one and not the other: both within the budget of 1 ULP)
        np.testing.assert_array_max_ulp(np.asarray(first), np.asarray(snn.sigmoid(x)), maxulp=1)
        np.testing.assert_array_max_ulp(np.asarray(second), np.asarray(snn.sigmoid(x + 1.0)), maxulp=1)


def test_no_grad_mode_takes_the_plain_path() -> None:
    x = torch.tensor([0.5], requires_grad=True)
    with torch.no_grad():
        y = snn.sigmoid(x)
    assert y.grad_fn is None
    assert snn.sigmoid(x).grad_fn is not None
    assert type(snn.sigmoid(x).grad_fn).__name__ == "_RuleFunctionBackward"


def test_gradient_dtype_and_half_precision() -> None:
    # 16-bit tensors compute in float64 inside and return their own dtype, gradients too
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        x = torch.tensor([-30.0, 0.0, 5.0], dtype=dtype, requires_grad=True)
        snn.sigmoid(x).sum().backward()
        assert x.grad is not None and x.grad.dtype == dtype
        # float(mpmath.exp(-30) / (1 + mpmath.exp(-30))**2) = 9.357622968839299e-14
        assert float(x.grad[0]) == pytest.approx(9.357622968839299e-14, rel=2**-7)


def test_integer_and_complex_inputs_follow_the_frameworks() -> None:
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match="complex"):
        snn.sigmoid(torch.tensor([1 + 1j], requires_grad=True))
    with pytest.raises(TypeError, match="grad requires real- or complex-valued inputs"):
        jax.grad(lambda v: snn.sigmoid(v).sum())(jnp.asarray([1, 2]))


def test_non_differentiable_arguments_are_refused_with_our_message() -> None:
    x = torch.zeros(2, 3, requires_grad=True)
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"`weight` of `cross_entropy_with_logits` is not differentiable"):
        snn.cross_entropy_with_logits(x, torch.tensor([0, 1]), weight=w)
    with pytest.raises(TypeError, match=r"`weight` of `cross_entropy_with_logits` is not differentiable"):
        jax.grad(lambda v: snn.cross_entropy_with_logits(jnp.zeros((2, 3)), jnp.asarray([0, 1]), weight=v))(jnp.ones(3))
    # class-index targets are integers: no gradient flows to them, on either framework
    loss = snn.cross_entropy_with_logits(x, torch.tensor([0, 1]))
    (gx,) = torch.autograd.grad(loss, (x,))
    assert gx.shape == (2, 3)


def test_ignore_index_rows_get_zero_gradient() -> None:
    x = _t(_points((3, 4), 25))
    loss = snn.cross_entropy_with_logits(x, torch.tensor([1, -100, 2]), ignore_index=-100)
    (g,) = torch.autograd.grad(loss, (x,))
    assert torch.all(g[1] == 0) and torch.all(g[0] != 0)
    gj = jax.grad(lambda v: snn.cross_entropy_with_logits(v, jnp.asarray([1, -100, 2]), ignore_index=-100))(_j(np.asarray(x.detach())))
    assert np.all(np.asarray(gj)[1] == 0)


def test_residual_mode_is_validated() -> None:
    from stablenn import _messages as msg

    err = msg.grad_residual_mode("residual", "some")
    assert isinstance(err, ValueError) and "'full', 'half' or 'none'" in str(err)


def test_unknown_function_and_jax_without_x64_messages() -> None:
    with pytest.raises(ValueError, match=r"`function_name` must name a differentiable stablenn function"):
        _autodiff.gradient_impls("sqrt")
    impl = _autodiff.gradient_impls("sigmoid")["jax"]
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(TypeError, match=r"jax_enable_x64"):
            impl(np.array([1.0]))
    finally:
        jax.config.update("jax_enable_x64", True)


def test_fast_rule_plugs_in_per_device() -> None:
    # the plug the GPU kernels use: a forward/backward pair for one device type
    calls: list[str] = []

    def forward(args: list, opts: dict) -> tuple:
        calls.append("forward")
        y = torch.sigmoid(args[0])
        return y, {"y": y}

    def backward(saved: dict, grads: list, opts: dict, needs: list) -> list:
        calls.append("backward")
        y = saved["y"]
        return [grads[0] * y * (1 - y)]

    _autodiff.register_fast("sigmoid", "cpu", forward=forward, backward=backward)
    try:
        with pytest.raises(ValueError, match="already registered"):
            _autodiff.register_fast("sigmoid", "cpu", forward=forward, backward=backward)
        x = torch.tensor([0.0, 1.0], requires_grad=True)
        snn.sigmoid(x).sum().backward()
        assert calls == ["forward", "backward"]
        # float(mpmath.mpf(1) / 4) and float(e / (1 + e)**2 at 1) = 0.19661193324148185
        assert x.grad.tolist() == pytest.approx([0.25, 0.19661193324148185], rel=1e-6)
    finally:
        _autodiff.unregister_fast("sigmoid", "cpu")
    x = torch.tensor([0.0], requires_grad=True)
    snn.sigmoid(x).sum().backward()
    assert calls == ["forward", "backward"]  # the array-API rule again
