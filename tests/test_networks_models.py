"""stablenn.networks on real models: PyTorch nn.Sequential, scikit-learn MLPs, ONNX graphs.

Each converted model is run by its own library (PyTorch, scikit-learn, onnxruntime) and
compared with the exact output of the original parameters (mpmath, 60 digits).
"""

from __future__ import annotations

import copy
import warnings

import mpmath
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import stablenn
from stablenn.networks import collapse, compare, evaluate, sigmoid_to_tanh, tanh_to_sigmoid

U64 = 2.0**-53


def mp_forward(params: list[tuple[np.ndarray, np.ndarray, str]], x: np.ndarray) -> np.ndarray:
    """Exact outputs (60 digits, rounded to float64) of ``act(h @ w + b)`` layers."""
    out = []
    with mpmath.workdps(60):
        for row in np.atleast_2d(x):
            h = [mpmath.mpf(float(v)) for v in row]
            for w, b, act in params:
                z = [
                    mpmath.fsum(h[i] * mpmath.mpf(float(w[i, j])) for i in range(w.shape[0])) + mpmath.mpf(float(b[j]))
                    for j in range(w.shape[1])
                ]
                if act == "sigmoid":
                    z = [1 / (1 + mpmath.exp(-v)) for v in z]
                elif act == "tanh":
                    z = [mpmath.tanh(v) for v in z]
                elif act == "relu":
                    z = [v if v > 0 else mpmath.mpf(0) for v in z]
                elif act == "softmax":
                    e = [mpmath.exp(v - max(z)) for v in z]
                    z = [v / mpmath.fsum(e) for v in e]
                h = z
            out.append([float(v) for v in h])
    return np.array(out)


def assert_close_to_exact(y: np.ndarray, ref: np.ndarray, eps: float, bound: float = 16) -> None:
    """Row-wise: max |y - ref| <= bound * eps * max |ref| (a few roundings of the output's size)."""
    y = y.reshape(ref.shape)
    scale = np.max(np.abs(ref), axis=1)
    err = np.max(np.abs(y - ref), axis=1) / (eps * scale)
    assert np.all(err <= bound), err.max()


# ---------------------------------------------------------------- PyTorch


def torch_params(model: torch.nn.Module, acts: list[str]) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(W, b, act) of each Linear, read directly from the modules (W as inputs x outputs)."""
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    out = []
    for lin, act in zip(linears, acts):
        w = lin.weight.detach().double().numpy().T
        b = np.zeros(w.shape[1]) if lin.bias is None else lin.bias.detach().double().numpy()
        out.append((w, b, act))
    return out


def nested_sigmoid_model(dtype=torch.float64) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.Sigmoid(),
        torch.nn.Sequential(
            torch.nn.Identity(),
            torch.nn.Linear(8, 6, bias=False),
            torch.nn.Sigmoid(),
            torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU()),
        ),
        torch.nn.Linear(5, 3, bias=False),
    ).to(dtype)


def test_torch_nested_sequential_sigmoid_to_tanh():
    model = nested_sigmoid_model()
    state = copy.deepcopy(model.state_dict())
    new = sigmoid_to_tanh(model)
    # same nesting, Sigmoid modules replaced, the original untouched
    assert [type(m).__name__ for m in new.modules()] == [
        "Sequential", "Linear", "Tanh", "Sequential", "Identity", "Linear", "Tanh", "Sequential", "Linear", "ReLU", "Linear",
    ]
    assert [type(m).__name__ for m in model.modules()].count("Sigmoid") == 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    # the bias-free Linear after a sigmoid layer needs a bias now; the ReLU layer does not
    assert new[2][1].bias is not None and new[2][3][0].bias is not None
    assert new[3].bias is None  # follows a ReLU layer: unchanged
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(30, 4)), rng.normal(scale=40.0, size=(30, 4))])
    ref = mp_forward(torch_params(model, ["sigmoid", "sigmoid", "relu", "identity"]), x)
    for m in (model, new):
        assert_close_to_exact(evaluate(m, x), ref, U64)
    assert compare(model, new, x).max_normwise < 16


def test_torch_tanh_to_sigmoid_float32_and_gradients():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2), torch.nn.Sigmoid())
    new = tanh_to_sigmoid(model)
    assert [type(m).__name__ for m in new] == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    assert all(p.dtype == torch.float32 and p.requires_grad for p in new.parameters())
    x = torch.randn(50, 3)
    np.testing.assert_allclose(new(x).detach().numpy(), model(x).detach().numpy(), rtol=0, atol=8 * 2.0**-24)
    new(x).sum().backward()  # still trainable
    assert new[0].weight.grad is not None
    ref = mp_forward(torch_params(model, ["tanh", "sigmoid"]), x.double().numpy())
    assert_close_to_exact(new(x).detach().double().numpy(), ref, 2.0**-24)


def test_torch_stablenn_modules_are_recognised_by_name():
    class Sigmoid(torch.nn.Module):
        """Stand-in for stablenn.torch.Sigmoid (recognised by module and class name)."""

        def forward(self, x):
            return stablenn.sigmoid(x)

    Sigmoid.__module__ = "stablenn.torch"
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), Sigmoid(), torch.nn.Linear(4, 1)).double()
    new = sigmoid_to_tanh(model)
    assert type(new[1]).__name__ == "Tanh"
    x = np.random.default_rng(1).normal(scale=5.0, size=(40, 2))
    ref = mp_forward(torch_params(model, ["sigmoid", "identity"]), x)
    assert_close_to_exact(evaluate(new, x), ref, U64)


def test_torch_collapse_of_a_deep_linear_model():
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 7),
        torch.nn.Identity(),
        torch.nn.Sequential(torch.nn.Linear(7, 7, bias=False), torch.nn.Linear(7, 4)),
        torch.nn.Linear(4, 2),
        torch.nn.Sigmoid(),
    ).double()
    flat = collapse(model)
    assert [type(m).__name__ for m in flat] == ["Linear", "Sigmoid"]
    assert flat[0].weight.shape == (2, 3)
    x = np.random.default_rng(2).normal(size=(20, 3))
    ref = mp_forward(torch_params(model, ["identity", "identity", "identity", "sigmoid"]), x)
    assert_close_to_exact(evaluate(flat, x), ref, U64)
    with pytest.raises(ValueError, match=r"`layers\[0\]` \('model\[0\]'\) has activation 'sigmoid'"):
        collapse(nested_sigmoid_model())


@pytest.mark.parametrize(
    ("model", "exc", "pattern"),
    [
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Sigmoid(), torch.nn.Dropout())),
            TypeError,
            r"module `model\[1\]\[1\]` is a torch.nn.modules.dropout.Dropout, which cannot be converted",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)),
            TypeError,
            r"module `model\[0\]` is a torch.nn.modules.conv.Conv1d",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=-1)),
            TypeError,
            r"module `model\[1\]` is a torch.nn.modules.activation.Softmax",
        ),
        (lambda: torch.nn.Linear(2, 2), TypeError, r"`model` must be a torch.nn.Sequential .* got Linear"),
        (lambda: torch.nn.Sequential(), TypeError, r"`model` must be a torch.nn.Sequential"),
        (
            lambda: torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(2, 2)),
            ValueError,
            r"module `model\[0\]` \(Tanh\) comes before any Linear",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Tanh()),
            ValueError,
            r"module `model\[2\]` \(Tanh\) follows another activation \(model\[1\]\)",
        ),
        (
            lambda: torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Sigmoid(), torch.nn.Linear(2, 1)),
            ValueError,
            r"`layers\[1\]` \('model\[2\]'\) takes 2 inputs but `layers\[0\]` \('model\[0\]'\) gives 3 outputs",
        ),
    ],
)
def test_torch_models_that_cannot_be_converted(model, exc, pattern):
    with pytest.raises(exc, match=pattern):
        sigmoid_to_tanh(model())


def test_torch_non_finite_weights_are_refused():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        model[2].weight[0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"`weight` of layer 'model\[2\]' must be finite; got 1 non-finite entry \(the first at \[1, 0\]"):
        sigmoid_to_tanh(model)


def test_torch_float16_overflow_is_refused():
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Tanh(), torch.nn.Linear(1, 1)).half()
    with torch.no_grad():
        model[0].weight.fill_(40000.0)  # doubled: above float16's 65504
    with pytest.raises(ValueError, match=r"rewriting module `model\[0\]` makes `weight` overflow"):
        tanh_to_sigmoid(model)


# ---------------------------------------------------------------- scikit-learn


def _fit(estimator, x, y):
    with warnings.catch_warnings():
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)  # a short fit is enough here
        return estimator.fit(x, y)


def sklearn_params(model) -> list[tuple[np.ndarray, np.ndarray, str]]:
    hidden = {"logistic": "sigmoid", "tanh": "tanh", "identity": "identity", "relu": "relu"}[model.activation]
    out = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity"}[model.out_activation_]
    n = len(model.coefs_)
    return [(w, b, hidden if k < n - 1 else out) for k, (w, b) in enumerate(zip(model.coefs_, model.intercepts_))]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sklearn_classifier_sigmoid_to_tanh_and_back(n_classes):
    from sklearn.datasets import make_classification
    from sklearn.neural_network import MLPClassifier

    x, y = make_classification(300, n_features=5, n_informative=4, n_redundant=0, n_classes=n_classes, random_state=0)
    model = _fit(MLPClassifier(hidden_layer_sizes=(16, 8), activation="logistic", max_iter=200, random_state=0), x, y)
    coefs = [c.copy() for c in model.coefs_]
    new = sigmoid_to_tanh(model)
    assert new.activation == "tanh" and model.activation == "logistic"
    assert all(np.array_equal(a, b) for a, b in zip(model.coefs_, coefs))  # untouched
    assert np.array_equal(new.predict(x), model.predict(x))
    ref = mp_forward(sklearn_params(model), x[:40])
    for m in (model, new):
        assert_close_to_exact(m.predict_proba(x[:40]), ref if n_classes > 2 else np.column_stack([1 - ref, ref]), U64)
    assert compare(model, new, x).max_normwise < 16
    back = tanh_to_sigmoid(new)
    assert back.activation == "logistic"
    assert np.array_equal(back.predict(x), model.predict(x))
    for a, b in zip(back.coefs_, model.coefs_):
        np.testing.assert_array_equal(a, b)  # scaling by 1/2 then 2 is exact
    for a, b in zip(back.intercepts_, model.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=4 * U64 * max(1.0, np.abs(b).max()))


def test_sklearn_regressor_tanh_to_sigmoid():
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2]
    model = _fit(MLPRegressor(hidden_layer_sizes=(12,), activation="tanh", max_iter=300, random_state=0), x, y)
    new = tanh_to_sigmoid(model)
    assert new.activation == "logistic"
    ref = mp_forward(sklearn_params(model), x[:40])[:, 0]
    scale = np.abs(ref).max()
    for m in (model, new):
        assert np.max(np.abs(m.predict(x[:40]) - ref)) <= 16 * U64 * scale
    _fit(new, x, y)  # the copy is a working estimator


def test_sklearn_collapse_of_linear_networks():
    from sklearn.datasets import make_moons
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    x, y = make_moons(100, noise=0.2, random_state=0)
    clf = _fit(MLPClassifier(hidden_layer_sizes=(5, 5, 5), activation="identity", max_iter=200, random_state=0), x, y)
    flat = collapse(clf)
    assert flat.hidden_layer_sizes == () and len(flat.coefs_) == 1 and flat.coefs_[0].shape == (2, 1)
    assert np.array_equal(flat.predict(x), clf.predict(x))
    ref = mp_forward(sklearn_params(clf), x[:20])
    assert_close_to_exact(flat.predict_proba(x[:20])[:, 1:], ref, U64)
    reg = _fit(MLPRegressor(hidden_layer_sizes=(4, 4), activation="identity", max_iter=200, random_state=0), x, y.astype(float))
    np.testing.assert_allclose(collapse(reg).predict(x), reg.predict(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"`layers\[0\]` \('coefs_\[0\]'\) has activation 'sigmoid'"):
        collapse(_fit(MLPClassifier(hidden_layer_sizes=(3,), activation="logistic", max_iter=20, random_state=0), x, y))


def test_sklearn_unfitted_and_unknown_activation_are_refused():
    from sklearn.neural_network import MLPClassifier
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match=r"fitted scikit-learn MLP .* got an unfitted MLPClassifier"):
        sigmoid_to_tanh(MLPClassifier())
    model = _fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0), np.eye(4), [0, 1, 0, 1])
    model.activation = "gelu"
    with pytest.raises(ValueError, match=r"`model.activation` must be one of 'identity', 'logistic', 'tanh', 'relu'; got str 'gelu'"):
        sigmoid_to_tanh(model)
    with pytest.raises(TypeError, match=r"`model` must be .* got LogisticRegression"):
        sigmoid_to_tanh(LogisticRegression())


# ---------------------------------------------------------------- ONNX

OPSET = [helper.make_opsetid("", 17)]


def onnx_model(style: str, dtype=np.float64, seed: int = 0, activation: str = "Sigmoid", output: str | None = None):
    """A 3-layer chain 3 -> 6 -> 5 -> 2 built with onnx.helper.

    style "gemm": Gemm nodes (transB=1 on the first, alpha/beta on the second, no C on the
    third); style "matmul": MatMul+Add, the second MatMul without an Add.
    Returns (model, [(W, b, act)] in row convention).
    """
    rng = np.random.default_rng(seed)
    et = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    sizes = [3, 6, 5, 2]
    ws = [rng.normal(size=(m, n)).astype(dtype) for m, n in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=n).astype(dtype) for n in sizes[1:]]
    nodes, inits, params = [], [], []
    current = "x"
    for k, (w, b) in enumerate(zip(ws, bs)):
        out = f"z{k}"
        if style == "gemm":
            if k == 0:
                inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"W{k}"), numpy_helper.from_array(b, f"b{k}")]
                nodes.append(helper.make_node("Gemm", [current, f"W{k}", f"b{k}"], [out], transB=1, name=f"fc{k}"))
                params.append((w.astype(np.float64), b.astype(np.float64)))
            elif k == 1:
                inits += [numpy_helper.from_array(w, f"W{k}"), numpy_helper.from_array(b.reshape(1, -1), f"b{k}")]
                nodes.append(helper.make_node("Gemm", [current, f"W{k}", f"b{k}"], [out], alpha=0.5, beta=2.0, name=f"fc{k}"))
                params.append((0.5 * w.astype(np.float64), 2.0 * b.astype(np.float64)))
            else:
                inits.append(numpy_helper.from_array(w, f"W{k}"))
                nodes.append(helper.make_node("Gemm", [current, f"W{k}"], [out], name=f"fc{k}"))
                params.append((w.astype(np.float64), np.zeros(w.shape[1])))
        else:
            inits.append(numpy_helper.from_array(w, f"W{k}"))
            if k == 1:
                nodes.append(helper.make_node("MatMul", [current, f"W{k}"], [out], name=f"mm{k}"))
                params.append((w.astype(np.float64), np.zeros(w.shape[1])))
            else:
                inits.append(numpy_helper.from_array(b, f"b{k}"))
                nodes.append(helper.make_node("MatMul", [current, f"W{k}"], [f"p{k}"], name=f"mm{k}"))
                nodes.append(helper.make_node("Add", [f"b{k}", f"p{k}"], [out], name=f"add{k}"))  # bias first
                params.append((w.astype(np.float64), b.astype(np.float64)))
        current = out
        if k < 2:
            nodes.append(helper.make_node(activation, [current], [f"a{k}"], name=f"act{k}"))
            current = f"a{k}"
    acts = [{"Sigmoid": "sigmoid", "Tanh": "tanh"}[activation]] * 2 + ["identity"]
    if output == "Softmax":
        nodes.append(helper.make_node("Softmax", [current], ["y"], axis=-1, name="softmax"))
        acts[-1] = "softmax"
    else:
        nodes.append(helper.make_node("Identity", [current], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", et, ["N", 3])], [helper.make_tensor_value_info("y", et, ["N", 2])], initializer=inits
    )
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8, producer_name="stablenn-tests")
    onnx.checker.check_model(model, full_check=True)
    return model, [(w, b, a) for (w, b), a in zip(params, acts)]


@pytest.mark.parametrize("style", ["gemm", "matmul"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_onnx_sigmoid_to_tanh_runs_in_onnxruntime(style, dtype, tmp_path):
    model, params = onnx_model(style, dtype, output="Softmax" if style == "gemm" else None)
    before = model.SerializeToString()
    new = sigmoid_to_tanh(model)
    assert model.SerializeToString() == before  # the original is untouched
    onnx.checker.check_model(new, full_check=True)
    path = tmp_path / "tanh.onnx"
    onnx.save(new, str(path))
    new = onnx.load(str(path))
    ops = [n.op_type for n in new.graph.node]
    assert ops.count("Tanh") == 2 and "Sigmoid" not in ops
    if style == "matmul":
        assert ops.count("Add") == 3  # the MatMul without Add got one: the rewrite needs a bias there
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(40, 3)), rng.normal(scale=30.0, size=(40, 3))])
    ref = mp_forward(params, x)
    eps = float(np.finfo(dtype).eps)
    for m in (model, new):
        y = evaluate(m, x)
        assert y.dtype == dtype
        # onnxruntime's float32 sigmoid and tanh are fast approximations: a looser bound there
        assert_close_to_exact(y.astype(np.float64), ref, eps, bound=16 if dtype == np.float64 else 64)
    assert compare(model, new, x).max_normwise < (16 if dtype == np.float64 else 64)


def test_onnx_tanh_to_sigmoid_and_back():
    model, params = onnx_model("gemm", activation="Tanh")
    sig = tanh_to_sigmoid(model)
    assert [n.op_type for n in sig.graph.node].count("Sigmoid") == 2
    back = sigmoid_to_tanh(sig)
    x = np.random.default_rng(2).normal(scale=3.0, size=(50, 3))
    ref = mp_forward(params, x)
    for m in (sig, back):
        assert_close_to_exact(evaluate(m, x), ref, U64)
    # alpha and beta were folded into the rewritten initializers
    gemm = next(n for n in sig.graph.node if n.name == "fc1")
    assert {a.name for a in gemm.attribute} == set()


@pytest.mark.parametrize("style", ["gemm", "matmul"])
def test_onnx_collapse(style):
    model, params = onnx_model(style, activation="Sigmoid")
    linear = onnx.ModelProto()
    linear.CopyFrom(model)
    for node in linear.graph.node:
        if node.op_type == "Sigmoid":
            node.op_type = "Identity"
    flat = collapse(linear)
    onnx.checker.check_model(flat, full_check=True)
    ops = [n.op_type for n in flat.graph.node]
    assert ops == (["Gemm"] if style == "gemm" else ["MatMul", "Add"])
    x = np.random.default_rng(3).normal(size=(30, 3))
    ref = mp_forward([(w, b, "identity") for w, b, _ in params], x)
    assert_close_to_exact(evaluate(flat, x), ref, U64)
    with pytest.raises(ValueError, match=r"`layers\[0\]` \('node 0 'fc0' \(Gemm\)'\) has activation 'sigmoid'"):
        collapse(onnx_model("gemm")[0])


def _edit(model, fn):
    out = onnx.ModelProto()
    out.CopyFrom(model)
    fn(out.graph)
    return out


def _replace_node(graph, index, node):
    graph.node[index].CopyFrom(node)


@pytest.mark.parametrize(
    ("edit", "exc", "pattern"),
    [
        (
            lambda g: _replace_node(g, 1, helper.make_node("LeakyRelu", ["z0"], ["a0"], name="act0")),
            ValueError,
            r"ONNX node 1 'act0' \(LeakyRelu\) is not supported",
        ),
        (
            lambda g: _replace_node(g, 0, helper.make_node("Gemm", ["x", "W0", "b0"], ["z0"], transA=1, name="fc0")),
            ValueError,
            r"ONNX node 0 'fc0' \(Gemm\) has transA=1",
        ),
        (
            lambda g: g.input.append(helper.make_tensor_value_info("x2", TensorProto.DOUBLE, ["N", 3])),
            ValueError,
            r"not a feed-forward chain .* it has 2 data inputs",
        ),
        (
            lambda g: g.output.append(helper.make_tensor_value_info("a0", TensorProto.DOUBLE, ["N", 6])),
            ValueError,
            r"it has 2 outputs",
        ),
        (
            lambda g: _replace_node(g, 2, helper.make_node("Gemm", ["a0", "W0"], ["z1"], name="fc1")),
            ValueError,
            r"shares initializer 'W0' with node 0",
        ),
        (
            lambda g: g.node.append(helper.make_node("Relu", ["z0"], ["dead"], name="branch")),
            ValueError,
            r"tensor 'z0' is used by 2 nodes",
        ),
        (
            lambda g: g.node.append(helper.make_node("Relu", ["elsewhere"], ["dead"], name="dangling")),
            ValueError,
            r"ONNX node 6 'dangling' \(Relu\) is not on the chain",
        ),
        (
            lambda g: _replace_node(g, 5, helper.make_node("Softmax", ["z2"], ["y"], axis=0, name="sm")),
            ValueError,
            r"\(Softmax\) normalises over axis 0; expected the last axis",
        ),
        (
            lambda g: (
                _replace_node(g, 0, helper.make_node("Gemm", ["x", "Wdyn", "b0"], ["z0"], name="fc0")),
                g.node.insert(0, helper.make_node("Identity", ["W0"], ["Wdyn"], name="copy")),
            ),
            ValueError,
            r"takes its weight 'Wdyn' from another node, not from an initializer",
        ),
        (
            lambda g: _replace_node(g, 1, helper.make_node("Relu", ["z0"], ["a0"], name="act0"))
            or g.node.insert(2, helper.make_node("Tanh", ["a0"], ["a0b"], name="twice"))
            or g.node[3].input.__setitem__(0, "a0b"),
            ValueError,
            r"ONNX node 2 'twice' \(Tanh\) follows another activation",
        ),
        (
            lambda g: g.initializer[0].CopyFrom(numpy_helper.from_array(np.ones((6, 3), np.int64), "W0")),
            TypeError,
            r"ONNX tensor 'W0' has element type INT64; accepted: FLOAT16, FLOAT, DOUBLE",
        ),
        (
            lambda g: g.initializer[1].CopyFrom(numpy_helper.from_array(np.array([1.0, np.inf, 0, 0, 0, 0]), "b0")),
            ValueError,
            r"`bias` of layer 'node 0 'fc0' \(Gemm\)' must be finite",
        ),
    ],
)
def test_onnx_graphs_that_cannot_be_converted(edit, exc, pattern):
    model, _ = onnx_model("gemm")
    with pytest.raises(exc, match=pattern):
        sigmoid_to_tanh(_edit(model, edit))


def test_onnx_shapes_that_do_not_chain():
    model, _ = onnx_model("matmul")
    bad = _edit(model, lambda g: g.initializer[2].CopyFrom(numpy_helper.from_array(np.ones((5, 5)), "W1")))
    with pytest.raises(ValueError, match=r"`layers\[1\]` \('node 3 'mm1' \(MatMul\)'\) takes 5 inputs but `layers\[0\]`.* gives 6 outputs"):
        sigmoid_to_tanh(bad)
