"""stablenn.networks: the network description, its forward pass on every backend, the exact
sigmoid/tanh rewrite (sheet problem 2) and the collapse of affine networks (problem 1).

Truth comes from outside stablenn: rational arithmetic (``fractions.Fraction``) for the
rewritten and collapsed parameters, mpmath at 60 digits for network outputs, SymPy for
the identity the rewrite rests on.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from stablenn.networks import Layer, Network, collapse, compare, sigmoid_to_tanh, tanh_to_sigmoid, ulp_distance

U64 = 2.0**-53  # unit roundoff of float64
U32 = 2.0**-24


# ---------------------------------------------------------------- references


def mp_activation(name: str, z: list) -> list:
    if name == "identity":
        return z
    if name == "sigmoid":
        return [1 / (1 + mpmath.exp(-v)) for v in z]
    if name == "tanh":
        return [mpmath.tanh(v) for v in z]
    if name == "relu":
        return [v if v > 0 else mpmath.mpf(0) for v in z]
    assert name == "softmax"
    top = max(z)
    e = [mpmath.exp(v - top) for v in z]
    s = mpmath.fsum(e)
    return [v / s for v in e]


def mp_forward(params: list[tuple[np.ndarray, np.ndarray, str]], x: np.ndarray) -> np.ndarray:
    """Outputs of the network with these exact parameters, at 60 digits, rounded to float64."""
    out = []
    with mpmath.workdps(60):
        for row in np.atleast_2d(x):
            h = [mpmath.mpf(float(v)) for v in row]
            for w, b, act in params:
                z = [
                    mpmath.fsum(h[i] * mpmath.mpf(float(w[i, j])) for i in range(w.shape[0])) + mpmath.mpf(float(b[j]))
                    for j in range(w.shape[1])
                ]
                h = mp_activation(act, z)
            out.append([float(v) for v in h])
    return np.array(out)


def params(net: Network) -> list[tuple[np.ndarray, np.ndarray, str]]:
    return [(layer.weight, layer.bias, layer.activation) for layer in net.layers]


def random_net(rng: np.random.Generator, widths: list[int], activations: list[str], dtype=np.float64) -> Network:
    return Network(
        [
            Layer(rng.normal(size=(m, n)).astype(dtype), rng.normal(size=n).astype(dtype), a)
            for m, n, a in zip(widths[:-1], widths[1:], activations)
        ]
    )


def frac(a: np.ndarray) -> list:
    return [[Fraction(float(v)) for v in row] for row in np.atleast_2d(a)]


def frac_matmul(a: list, b: list) -> list:
    return [[sum((a[i][k] * b[k][j] for k in range(len(b))), Fraction(0)) for j in range(len(b[0]))] for i in range(len(a))]


def assert_same_layers(a: Network, b: Network) -> None:
    assert len(a) == len(b)
    for la, lb in zip(a, b):
        assert la.activation == lb.activation
        np.testing.assert_array_equal(la.weight, lb.weight)
        np.testing.assert_array_equal(la.bias, lb.bias)


# ---------------------------------------------------------------- description


def test_layer_copies_and_freezes_its_parameters():
    w = np.array([[1.0, 2.0]])
    b = np.array([0.5, -0.5])
    layer = Layer(w, b, "tanh")
    w[0, 0] = 99.0
    assert layer.weight[0, 0] == 1.0
    assert not layer.weight.flags.writeable and not layer.bias.flags.writeable
    with pytest.raises(AttributeError, match="immutable"):
        layer.activation = "sigmoid"  # type: ignore[misc]
    net = Network([layer])
    with pytest.raises(AttributeError, match="immutable"):
        net.layers = ()  # type: ignore[misc]


def test_layer_defaults_and_promotion():
    layer = Layer([[1, 2], [3, 4]])
    assert layer.dtype == np.float64 and layer.activation == "identity"
    np.testing.assert_array_equal(layer.bias, [0.0, 0.0])
    assert Layer(np.ones((2, 3), np.float32), np.zeros(3, np.float32)).dtype == np.float32
    assert Layer(np.ones((2, 3), np.float32), np.zeros(3)).dtype == np.float64  # promoted together
    net = Network([Layer(np.ones((2, 3)), None, "relu"), Layer(np.ones((3, 1)), None, "softmax")])
    assert (net.n_inputs, net.n_outputs, net.n_parameters) == (2, 1, 6 + 3 + 3 + 1)
    assert net.activations == ("relu", "softmax")
    assert repr(net) == "Network(2 -> 3 (relu) -> 1 (softmax))"


@pytest.mark.parametrize(
    ("build", "exc", "pattern"),
    [
        (lambda: Layer(np.ones(3)), ValueError, r"`weight` of this layer must be 2-D .* shape \(3,\)"),
        (lambda: Layer(np.ones((2, 3)), np.ones(2), name="fc1"), ValueError, r"`bias` of layer 'fc1' must have shape \(3,\).*\(2,\)"),
        (lambda: Layer(np.ones((2, 2)) * 1j), TypeError, r"`weight` .* real floating.*complex"),
        (lambda: Layer([["a", "b"]]), TypeError, r"`weight` .* real floating"),
        (lambda: Layer(np.ones((2, 2)), ["x", "y"]), TypeError, r"`bias` .* real floating"),
        (lambda: Layer(np.array([[1.0, np.nan]]), name="fc2"), ValueError, r"`weight` of layer 'fc2' must be finite; got 1 non-finite entry \(the first at \[0, 1\] is nan\)"),
        (lambda: Layer(np.ones((1, 2)), [np.inf, -np.inf]), ValueError, r"`bias` of this layer must be finite; got 2 non-finite entries .*\[0\] is inf"),
        (lambda: Layer(np.ones((1, 2)), None, "gelu"), ValueError, r"`activation` .* 'identity', 'sigmoid', 'tanh', 'relu', 'softmax'; got str 'gelu'"),
        (lambda: Layer(np.ones((1, 2)), None, None), ValueError, r"`activation` .* got NoneType None"),  # type: ignore[arg-type]
        (lambda: Network([]), ValueError, r"`layers` must hold at least one Layer"),
        (lambda: Network([Layer(np.ones((2, 2))), "layer"]), TypeError, r"`layers\[1\]` must be a stablenn.networks.Layer; got str"),
        (
            lambda: Network([Layer(np.ones((2, 3)), name="a"), Layer(np.ones((4, 1)), name="b")]),
            ValueError,
            r"`layers\[1\]` \('b'\) takes 4 inputs but `layers\[0\]` \('a'\) gives 3 outputs; the shapes do not chain",
        ),
        (
            lambda: Network([Layer(np.ones((2, 3)), None, "softmax"), Layer(np.ones((3, 1)))]),
            ValueError,
            r"`layers\[0\]` is a hidden layer with activation 'softmax'",
        ),
    ],
)
def test_bad_descriptions_are_refused(build, exc, pattern):
    with pytest.raises(exc, match=pattern):
        build()


# ---------------------------------------------------------------- forward pass


NET_PARAMS = dict(widths=[3, 5, 4, 2], activations=["sigmoid", "relu", "softmax"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_mpmath_on_every_backend(backend, dtype):
    rng = np.random.default_rng(7)
    net = random_net(rng, NET_PARAMS["widths"], NET_PARAMS["activations"])
    x = rng.normal(scale=4.0, size=(6, 3))
    x_in = backend.asarray(x, dtype)
    y = net(x_in)
    assert backend.is_native(y)
    assert str(y.dtype).endswith(dtype)
    # the parameters are rounded to x's dtype first, so the reference uses rounded ones too
    rounded = [(w.astype(dtype), b.astype(dtype), a) for w, b, a in params(net)]
    ref = mp_forward(rounded, backend.numpy(x_in).astype(np.float64))
    tol = 64 * (U64 if dtype == "float64" else U32)
    np.testing.assert_allclose(backend.numpy(y), ref, rtol=tol, atol=tol)


def test_forward_promotes_integers_and_keeps_batch_shape(np_backend):
    net = Network([Layer([[1.0], [2.0]], [0.5], "tanh")])
    y = net(np.array([[[1, 0]], [[0, 1]]]))
    assert y.shape == (2, 1, 1) and y.dtype == np.float64
    ref = [float(mpmath.tanh(1.5)), float(mpmath.tanh(2.5))]
    np.testing.assert_allclose(y[:, 0, 0], ref, rtol=2 * U64, atol=0)
    assert net(np.array([1.0, 0.0])).shape == (1,)


def test_forward_float16_computes_in_float32():
    import torch

    net = Network([Layer(np.full((64, 1), 1.0 / 64))])
    x = torch.full((1, 64), 0.1, dtype=torch.float16)
    y = net(x)
    assert y.dtype == torch.float16
    # the float16 value nearest 0.1, times 64 terms of 1/64, summed in float32: exactly it
    assert y.item() == float(np.float16(0.1))


@pytest.mark.parametrize(
    ("x", "exc", "pattern"),
    [
        ([[1.0, 2.0]], TypeError, r"`x` must be an array .* got list"),
        (np.ones((4, 3)), ValueError, r"`x` must have shape \(\.\.\., 2\).*\(4, 3\)"),
        (np.asarray(1.0), ValueError, r"`x` must have shape \(\.\.\., 2\).*shape \(\)"),
        (np.float64(1.0), TypeError, r"`x` must be an array"),
        (np.ones((1, 2)) * 1j, TypeError, r"`x` must be a real \(or integer\) array.*complex128"),
    ],
)
def test_forward_refuses_bad_input(x, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Network([Layer(np.ones((2, 1)))])(x)


# ---------------------------------------------------------------- sigmoid <-> tanh


def test_the_identities_hold_symbolically():
    z = sympy.symbols("z", real=True)
    sigma = 1 / (1 + sympy.exp(-z))
    assert sympy.simplify((sigma - (1 + sympy.tanh(z / 2)) / 2).rewrite(sympy.exp)) == 0
    assert sympy.simplify((sympy.tanh(z) - (2 * sigma.subs(z, 2 * z) - 1)).rewrite(sympy.exp)) == 0
    # one hidden unit feeding an output: the rewritten parameters give the same function
    x, w, b, v, c = sympy.symbols("x w b v c", real=True)
    original = v * sigma.subs(z, w * x + b) + c
    rewritten = (v / 2) * sympy.tanh((w / 2) * x + b / 2) + (c + v / 2)
    assert sympy.simplify((original - rewritten).rewrite(sympy.exp)) == 0


def _check_sigmoid_to_tanh_parameters(net: Network, new: Network) -> None:
    """Each new parameter equals the exact rational formula, rounded once (Fraction -> float)."""
    act = [layer.activation for layer in net]
    converted = [k for k in range(len(net) - 1) if act[k] == "sigmoid"]
    for k, (old, layer) in enumerate(zip(net, new)):
        w = frac(old.weight)
        b = [Fraction(float(v)) for v in old.bias]
        scale = Fraction(1)
        if k - 1 in converted:
            b = [b[j] + sum((w[i][j] for i in range(len(w))), Fraction(0)) / 2 for j in range(len(b))]
            scale /= 2
        if k in converted:
            b_exact = [v / 2 for v in b]
            scale /= 2
            assert layer.activation == "tanh"
        else:
            b_exact = b
            assert layer.activation == old.activation
        for i in range(len(w)):
            for j in range(len(w[0])):
                assert Fraction(float(layer.weight[i, j])) == w[i][j] * scale  # exact: a power of two
        for j, value in enumerate(b_exact):
            if k - 1 in converted and k in converted:
                # rounded once, then halved (exact)
                assert float(layer.bias[j]) == float(value * 2) / 2
            else:
                assert float(layer.bias[j]) == float(value)  # correctly rounded


def test_sigmoid_to_tanh_parameters_are_the_exact_formula_rounded_once():
    rng = np.random.default_rng(1)
    net = random_net(rng, [4, 7, 6, 5, 3], ["sigmoid", "sigmoid", "relu", "sigmoid"])
    new = sigmoid_to_tanh(net)
    assert new.activations == ("tanh", "tanh", "relu", "sigmoid")  # output layer kept
    assert new.n_parameters == net.n_parameters and len(new) == len(net)
    _check_sigmoid_to_tanh_parameters(net, new)


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.integers(1, 6), min_size=2, max_size=6),
    activations=st.lists(st.sampled_from(["sigmoid", "tanh", "relu", "identity"]), min_size=5, max_size=5),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_sigmoid_to_tanh_parameters_property(widths, activations, seed, scale):
    rng = np.random.default_rng(seed)
    net = Network(
        [
            Layer(rng.normal(scale=scale, size=(m, n)), rng.normal(scale=scale, size=n), a)
            for m, n, a in zip(widths[:-1], widths[1:], activations)
        ]
    )
    _check_sigmoid_to_tanh_parameters(net, sigmoid_to_tanh(net))


def test_dyadic_networks_are_rewritten_without_any_rounding():
    # weights k/64 with small k: every sum in the rewrite is exact, so both networks compute
    # the same real function; mpmath at 60 digits must agree to ~1e-55
    rng = np.random.default_rng(2)
    widths = [3, 6, 5, 2]
    net = Network(
        [
            Layer(rng.integers(-64, 65, size=(m, n)) / 64, rng.integers(-64, 65, size=n) / 64, a)
            for m, n, a in zip(widths[:-1], widths[1:], ["sigmoid", "sigmoid", "softmax"])
        ]
    )
    new = sigmoid_to_tanh(net)
    x = rng.normal(scale=10.0, size=(5, 3))
    with mpmath.workdps(60):
        for row in x:
            h_old = [mpmath.mpf(float(v)) for v in row]
            h_new = list(h_old)
            for lo, ln in zip(net, new):
                for layer, h in ((lo, h_old), (ln, h_new)):
                    z = [
                        mpmath.fsum(h[i] * mpmath.mpf(float(layer.weight[i, j])) for i in range(layer.n_inputs))
                        + mpmath.mpf(float(layer.bias[j]))
                        for j in range(layer.n_outputs)
                    ]
                    h[:] = mp_activation(layer.activation, z)
            assert max(abs(a - b) for a, b in zip(h_old, h_new)) < mpmath.mpf(10) ** -55
    assert_same_layers(tanh_to_sigmoid(new), net)  # and back, exactly


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_converted_network_is_as_accurate_as_the_original(dtype):
    # both float evaluations against the exact output of the original parameters, including
    # inputs that saturate the hidden units
    rng = np.random.default_rng(3)
    net = random_net(rng, [4, 8, 8, 3], ["sigmoid", "sigmoid", "identity"], dtype)
    new = sigmoid_to_tanh(net)
    x = np.concatenate([rng.normal(size=(20, 4)), rng.normal(scale=50.0, size=(20, 4))]).astype(dtype)
    ref = mp_forward(params(net), x)
    eps = float(np.finfo(dtype).eps)
    scale = np.max(np.abs(ref), axis=1, keepdims=True)
    for model in (net, new):
        err = np.max(np.abs(model(x) - ref) / (eps * scale))
        assert err < 16, err  # a few eps of the output's size
    d = compare(net, new, x)
    assert d.max_normwise < 16 and d.dtype == np.dtype(dtype).name


def test_conversion_leaves_the_original_and_other_activations_alone():
    rng = np.random.default_rng(4)
    net = random_net(rng, [2, 3, 3, 1], ["relu", "tanh", "sigmoid"])
    before = [(layer.weight.copy(), layer.bias.copy()) for layer in net]
    assert_same_layers(sigmoid_to_tanh(net), net)  # no sigmoid hidden layer: same parameters
    new = tanh_to_sigmoid(net)
    assert new is not net and new.activations == ("relu", "sigmoid", "sigmoid")
    for (w, b), layer in zip(before, net):
        np.testing.assert_array_equal(w, layer.weight)
        np.testing.assert_array_equal(b, layer.bias)
    single = Network([Layer(np.ones((2, 2)), None, "sigmoid")])
    assert_same_layers(sigmoid_to_tanh(single), single)  # the output layer keeps its activation


def test_float32_parameters_stay_float32():
    rng = np.random.default_rng(5)
    net = random_net(rng, [3, 4, 2], ["sigmoid", "identity"], np.float32)
    new = sigmoid_to_tanh(net)
    assert all(layer.dtype == np.float32 for layer in new)
    # the float32 bias is the float64 correctly rounded sum, rounded to float32
    exact = [Fraction(float(b)) + sum(Fraction(float(w)) for w in col) / 2 for b, col in zip(net.layers[1].bias, net.layers[1].weight.T)]
    np.testing.assert_array_equal(new.layers[1].bias, np.array([float(v) for v in exact]).astype(np.float32))


@pytest.mark.parametrize(
    ("dtype", "big"),
    [(np.float64, 1e308), (np.float32, np.float32(3e38))],
)
def test_tanh_to_sigmoid_refuses_to_overflow(dtype, big):
    net = Network(
        [Layer(np.array([[big, 1.0]], dtype=dtype), None, "tanh", name="hidden"), Layer(np.ones((2, 1), dtype=dtype))]
    )
    with pytest.raises(ValueError, match=r"rewriting `layers\[0\]` \('hidden'\) makes `weight` overflow"):
        tanh_to_sigmoid(net)


def test_tanh_to_sigmoid_refuses_an_overflowing_bias_sum():
    big = np.finfo(np.float64).max
    # b - sum_i W_i = -max + max/2 is finite, and so is 2 W: accepted
    fine = Network([Layer(np.ones((1, 2)), None, "tanh"), Layer(np.array([[-big / 4], [-big / 4]]), [-big])])
    assert np.isfinite(tanh_to_sigmoid(fine).layers[1].bias).all()
    # b - sum_i W_i = -3 max overflows
    bad = Network([Layer(np.ones((1, 2)), None, "tanh"), Layer(np.array([[big], [big]]), [-big])])
    with pytest.raises(ValueError, match=r"rewriting `layers\[1\]` makes `bias` overflow"):
        tanh_to_sigmoid(bad)


# ---------------------------------------------------------------- collapse


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_collapse_is_the_exact_product_for_dyadic_weights(depth):
    # small integer weights: every float64 product and sum is exact, so the collapsed layer
    # must equal the rational product exactly
    rng = np.random.default_rng(depth)
    widths = [3] + list(rng.integers(1, 6, size=depth - 1)) + [2]
    layers = [
        Layer(rng.integers(-3, 4, size=(m, n)), rng.integers(-3, 4, size=n))
        for m, n in zip(widths[:-1], widths[1:])
    ]
    net = Network(layers)
    flat = collapse(net)
    assert len(flat) == 1 and flat.activations == ("identity",)
    w = frac(layers[0].weight)
    b = frac(layers[0].bias)
    for layer in layers[1:]:
        wl = frac(layer.weight)
        w = frac_matmul(w, wl)
        b = [[v + Fraction(float(c)) for v, c in zip(frac_matmul(b, wl)[0], layer.bias)]]
    assert frac(flat.layers[0].weight) == w
    assert frac(flat.layers[0].bias) == b


@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_collapse_of_a_deep_linear_network_computes_the_same_function(output):
    rng = np.random.default_rng(11)
    widths = [3, 6, 2, 7, 5, 4, 3]
    net = random_net(rng, widths, ["identity"] * 5 + [output])
    flat = collapse(net)
    assert flat.activations == (output,) and (flat.n_inputs, flat.n_outputs) == (3, 3)
    # the collapsed parameters against the rational product: within the float64 dot-product
    # bound, (inner dimension) * u * (|W1| |W2| ... |Wn|)_ij, a loose factor of 2 * depth
    w = frac(net.layers[0].weight)
    abs_w = np.abs(net.layers[0].weight)
    for layer in net.layers[1:]:
        w = frac_matmul(w, frac(layer.weight))
        abs_w = abs_w @ np.abs(layer.weight)
    err = np.abs(flat.layers[0].weight - np.array([[float(v) for v in row] for row in w]))
    assert np.all(err <= 2 * len(net) * max(widths) * U64 * abs_w)
    x = rng.normal(size=(10, 3))
    ref = mp_forward(params(net), x)
    np.testing.assert_allclose(flat(x), ref, rtol=1e-12, atol=1e-12)


def test_collapse_refuses_a_nonlinear_hidden_layer_and_names_it():
    net = Network([Layer(np.ones((2, 2))), Layer(np.ones((2, 2)), None, "relu", name="fc2"), Layer(np.ones((2, 1)))])
    with pytest.raises(ValueError, match=r"`layers\[1\]` \('fc2'\) has activation 'relu'"):
        collapse(net)
    single = Network([Layer(np.ones((2, 1)), [3.0], "sigmoid")])
    assert_same_layers(collapse(single), single)


def test_unsupported_models_are_refused():
    with pytest.raises(TypeError, match=r"`model` must be a stablenn.networks.Network, .* got dict"):
        sigmoid_to_tanh({"weights": []})
    with pytest.raises(TypeError, match=r"got numpy.ndarray of shape \(2, 2\)"):
        collapse(np.ones((2, 2)))


# ---------------------------------------------------------------- measuring


def test_ulp_distance_counts_representable_numbers():
    one = np.float64(1.0)
    after = np.nextafter(one, 2.0)
    tiny = np.float64(5e-324)
    d = ulp_distance(np.array([one, -tiny, 0.0, np.nan, np.nan, 1.0]), np.array([after, tiny, -0.0, np.nan, 1.0, 1.0 + 2**-49]))
    np.testing.assert_array_equal(d, [1.0, 2.0, 0.0, 0.0, np.inf, 8.0])
    f32 = ulp_distance(np.float32([1.0]), np.float32([1.0 + 2**-22]))
    np.testing.assert_array_equal(f32, [2.0])


def test_compare_refuses_different_output_shapes():
    a = Network([Layer(np.ones((2, 1)))])
    b = Network([Layer(np.ones((2, 3)))])
    with pytest.raises(ValueError, match=r"outputs of the same shape.*\(4, 1\).*\(4, 3\)"):
        compare(a, b, np.ones((4, 2)))


def test_public_names_are_exported():
    import stablenn.networks as nw

    public = {name for name in dir(nw) if not name.startswith("_")}
    public -= {"annotations"}  # from __future__
    assert set(nw.__all__) == {name for name in public if not type(getattr(nw, name)).__name__ == "module"}
    for name in nw.__all__:
        assert getattr(nw, name).__doc__ or name == "ACTIVATIONS"


def test_every_networks_message_is_raised_by_a_test():
    """Each message function of the networks section is matched, by its text, in a test."""
    import inspect
    import pathlib
    import re

    from stablenn import _messages

    here = pathlib.Path(__file__).parent
    sources = "".join(p.read_text() for p in sorted(here.glob("test_networks*.py")))
    sources = sources.replace(inspect.getsource(test_every_networks_message_is_raised_by_a_test), "")
    section = inspect.getsource(_messages).split("# ---------------------------------------------------------------- networks")[1]
    names = set(re.findall(r"^def (\w+)\(", section.split("\n# ----")[0], flags=re.M))
    phrases = {
        "networks_weight_kind": "real floating",
        "networks_weight_shape": "must be 2-D",
        "networks_bias_shape": "`bias` of layer 'fc1' must have shape",
        "networks_not_finite": "must be finite; got",
        "networks_unknown_activation": "'identity', 'sigmoid', 'tanh', 'relu', 'softmax'; got",
        "networks_softmax_hidden": "is a hidden layer with activation 'softmax'",
        "networks_no_layers": "must hold at least one Layer",
        "networks_not_a_layer": "must be a stablenn.networks.Layer",
        "networks_shapes_do_not_chain": "the shapes do not chain",
        "networks_input_not_array": "`x` must be an array",
        "networks_input_kind": "`x` must be a real",
        "networks_input_width": "`x` must have shape",
        "networks_collapse_nonlinear": "has activation 'relu'",
        "networks_rewrite_overflow": "makes `weight` overflow",
        "networks_unsupported_model": "`model` must be a stablenn.networks.Network",
        "networks_torch_container": "`model` must be a torch.nn.Sequential",
        "networks_torch_module": "which cannot be converted",
        "networks_torch_order": "comes before any Linear",
        "networks_sklearn_not_fitted": "got an unfitted MLPClassifier",
        "networks_sklearn_activation": "`model.activation` must be one of",
        "networks_onnx_structure": "not a feed-forward chain",
        "networks_onnx_node": "is not supported",
        "networks_onnx_dtype": "has element type INT64",
        "networks_compare_shapes": "outputs of the same shape",
        "networks_cli_missing": "does not exist",
        "networks_cli_pickle": "is a pickle file",
        "networks_cli_not_onnx": "is not a valid ONNX model",
        "networks_cli_same_path": "must differ from `MODEL`",
        "networks_cli_samples": "`--samples` must be a positive integer",
        "networks_cli_onnxruntime": "onnxruntime cannot run the models",
    }
    assert names == set(phrases)
    for name, phrase in phrases.items():
        assert phrase in sources, name
