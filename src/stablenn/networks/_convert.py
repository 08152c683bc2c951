"""The exact rewrites of sheet problems 1 and 2, on stablenn networks and on real models.

Problem 2.  Every sigmoid unit is an affine image of a tanh unit with halved input,

.. math:: \\sigma(z) = \\tfrac12 + \\tfrac12 \\tanh(z/2), \\qquad
          \\tanh(z) = 2\\sigma(2z) - 1,

so a hidden layer ``a = f(x W + b)`` with ``f(z) = p g(c z) + q`` becomes
``g(x (cW) + cb)``, and the next layer absorbs ``p`` and ``q``:

.. math:: a W' + b' = (p\\,g + q) W' + b' = g\\,(p W') + (b' + q\\,\\mathbf 1^T W').

For sigmoid to tanh ``c = p = q = 1/2``; for tanh to sigmoid ``c = p = 2, q = -1``.
Scaling by a power of two is exact in binary floating point; the one rounding is that of
``b' + q 1^T W'``, which is computed as a correctly rounded sum (``math.fsum``).

Problem 1.  Affine maps compose to an affine map,
``(x W_1 + b_1) W_2 + b_2 = x (W_1 W_2) + (b_1 W_2 + b_2)``, so a network whose hidden
layers are all affine is one layer, whatever its depth.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import numpy as np

from .. import _messages as msg
from ._network import Layer, Network, _where

__all__ = ["collapse", "sigmoid_to_tanh", "tanh_to_sigmoid"]


class _Rule(NamedTuple):
    """``source(z) = outer * target(inner * z) + offset``."""

    source: str
    target: str
    inner: float
    outer: float
    offset: float


# sigma(z) = 1/2 tanh(z/2) + 1/2
_SIGMOID_TO_TANH = _Rule("sigmoid", "tanh", 0.5, 0.5, 0.5)
# tanh(z) = 2 sigma(2z) - 1
_TANH_TO_SIGMOID = _Rule("tanh", "sigmoid", 2.0, 2.0, -1.0)


def _bias_plus_column_sums(bias: np.ndarray, weight: np.ndarray, offset: float, where: str) -> np.ndarray:
    """``bias + offset * weight.sum(axis=0)``, each entry rounded once.

    ``offset * weight`` is exact (``offset`` is +-1/2 or -1), and ``math.fsum`` returns the
    correctly rounded sum: a plain ``sum`` would round once per term, an error that grows with
    the width of the layer.
    """
    scaled = (weight * offset).T.tolist()
    out = np.empty(bias.shape, dtype=np.float64)
    try:
        for j, column in enumerate(scaled):
            out[j] = math.fsum(itertools.chain((float(bias[j]),), column))
    except OverflowError:
        raise msg.networks_rewrite_overflow(where, "bias") from None
    return out


def _finite_in(values: np.ndarray, dtype: np.dtype, where: str, name: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    if not np.isfinite(cast).all():
        raise msg.networks_rewrite_overflow(where, name)
    return cast


def _rewrite_network(net: Network, rule: _Rule) -> tuple[Network, tuple[int, ...]]:
    """Apply ``rule`` to every hidden layer whose activation is ``rule.source``.

    Returns the new network and the indices of the converted layers.  Parameters are
    widened to float64 (exactly), rewritten, and rounded once to their own dtype.
    """
    layers = net.layers
    last = len(layers) - 1
    converted = tuple(i for i in range(last) if layers[i].activation == rule.source)
    new_layers = []
    for k, layer in enumerate(layers):
        if k - 1 not in converted and k not in converted:
            new_layers.append(layer)
            continue
        where = _where(layers, k)
        weight = layer.weight.astype(np.float64)
        bias = layer.bias.astype(np.float64)
        activation = layer.activation
        # doubling may overflow: that is detected (and refused) by _finite_in below
        with np.errstate(over="ignore"):
            if k - 1 in converted:
                # input side: a = outer*g + offset, so a W + b = g (outer W) + (b + offset 1^T W)
                bias = _bias_plus_column_sums(bias, weight, rule.offset, where)
                weight = weight * rule.outer
            if k in converted:
                # output side: source(z) = outer*target(inner z) + offset; inner is a power of two
                weight = weight * rule.inner
                bias = bias * rule.inner
                activation = rule.target
        new_layers.append(
            Layer(
                _finite_in(weight, layer.dtype, where, "weight"),
                _finite_in(bias, layer.dtype, where, "bias"),
                activation,
                name=layer.name,
            )
        )
    return Network(new_layers), converted


def _collapse_network(net: Network) -> Network:
    """One affine layer with the function of ``net`` (whose hidden layers are affine)."""
    layers = net.layers
    for i, layer in enumerate(layers[:-1]):
        if layer.activation != "identity":
            raise msg.networks_collapse_nonlinear(_where(layers, i), layer.activation)
    weight = layers[0].weight.astype(np.float64)
    bias = layers[0].bias.astype(np.float64)
    for layer in layers[1:]:
        # (x W + b) W2 + b2 = x (W W2) + (b W2 + b2)
        w2 = layer.weight.astype(np.float64)
        bias = bias @ w2 + layer.bias
        weight = weight @ w2
    dtype = np.result_type(*(layer.dtype for layer in layers))
    where = f"the collapse of {len(layers)} layers"
    names = [layer.name for layer in layers if layer.name]
    name = f"collapse({', '.join(names)})" if names else ""
    return Network(
        [
            Layer(
                _finite_in(weight, dtype, where, "weight"),
                _finite_in(bias, dtype, where, "bias"),
                layers[-1].activation,
                name=name,
            )
        ]
    )


def _adapter(model: Any) -> Any:
    """The module that reads and writes ``model``'s kind (None for a Network)."""
    if isinstance(model, Network):
        return None
    from . import _onnx, _sklearn, _torch

    for adapter in (_torch, _sklearn, _onnx):
        if adapter.is_model(model):
            return adapter
    raise msg.networks_unsupported_model(model)


def _rewrite(model: Any, rule: _Rule) -> Any:
    adapter = _adapter(model)
    if adapter is None:
        return _rewrite_network(model, rule)[0]
    net = adapter.to_network(model)
    new, converted = _rewrite_network(net, rule)
    return adapter.rewritten(model, new, converted)


def sigmoid_to_tanh(model: Any, /) -> Any:
    """The equivalent model whose sigmoid hidden units are tanh units (sheet problem 2).

    .. math:: \\sigma(z) = \\tfrac12 + \\tfrac12 \\tanh(z/2)

    Each hidden layer with activation sigmoid gets half its weights and bias and activation
    tanh; the layer after it gets half its weights and, added to its bias, half the sums of
    its weights over their inputs.  The output layer keeps its activation.

    Parameters
    ----------
    model : Network, torch.nn.Sequential, sklearn MLPClassifier or MLPRegressor, onnx.ModelProto
        The network.  PyTorch: a Sequential (nested allowed) of Linear, Sigmoid, Tanh, ReLU,
        Identity (and stablenn.torch Sigmoid, Tanh) modules.  scikit-learn: a fitted MLP.
        ONNX: a chain of Gemm or MatMul+Add nodes with Sigmoid, Tanh, Relu, Identity between
        them.

    Returns
    -------
    same kind as `model`
        A new model computing the same function; ``model`` is not changed.  No layer and no
        parameter is added, except a bias where the original layer had none and the
        rewrite needs one (PyTorch ``Linear(bias=False)``, ONNX Gemm without C, MatMul
        without Add).

    Raises
    ------
    TypeError
        If ``model`` is of another kind, or a PyTorch module cannot be converted.
    ValueError
        If the model's parameters are not finite, its shapes do not chain, an ONNX node is
        not supported, or a rewritten parameter overflows its dtype.

    See Also
    --------
    tanh_to_sigmoid : the converse.
    collapse : the rewrite of sheet problem 1.

    Notes
    -----
    Halving a weight is exact, unless it is subnormal (its last bit may be lost, an
    absolute change below 5e-324 in float64).  Each new bias is one correctly rounded sum,
    ``fl(b + 1/2 * sum_i W_ij)``, computed in float64 and rounded once more to float32 or
    float16 parameters: that rounding is the only difference between the two networks'
    exact functions.  Evaluated in floating point, the networks' outputs differ further
    because ``sigma(z)`` near 0 carries more digits than ``(1 + tanh(z/2)) / 2``;
    ``benchmarks/networks_equivalence.py`` measures the difference (docs/networks.md).

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.networks import Layer, Network, sigmoid_to_tanh
    >>> net = Network([Layer([[2.0, -1.0]], [0.0, 0.5], "sigmoid"), Layer([[1.0], [3.0]], [-2.0])])
    >>> tanh_net = sigmoid_to_tanh(net)
    >>> tanh_net
    Network(1 -> 2 (tanh) -> 1 (identity))
    >>> tanh_net.layers[0].weight, tanh_net.layers[0].bias
    (array([[ 1. , -0.5]]), array([0.  , 0.25]))
    >>> tanh_net.layers[1].weight, tanh_net.layers[1].bias
    (array([[0.5],
           [1.5]]), array([0.]))
    >>> x = np.linspace(-30.0, 30.0, 7)[:, None]
    >>> bool(np.allclose(net(x), tanh_net(x), rtol=1e-15, atol=0))
    True
    """
    return _rewrite(model, _SIGMOID_TO_TANH)


def tanh_to_sigmoid(model: Any, /) -> Any:
    """The equivalent model whose tanh hidden units are sigmoid units (the converse).

    .. math:: \\tanh(z) = 2\\sigma(2z) - 1

    Each hidden layer with activation tanh gets twice its weights and bias and activation
    sigmoid; the layer after it gets twice its weights and, subtracted from its bias, the
    sums of its weights over their inputs.  The output layer keeps its activation.

    Parameters
    ----------
    model : Network, torch.nn.Sequential, sklearn MLPClassifier or MLPRegressor, onnx.ModelProto
        As for :func:`sigmoid_to_tanh`.

    Returns
    -------
    same kind as `model`
        A new model computing the same function; ``model`` is not changed.

    Raises
    ------
    TypeError
        If ``model`` is of another kind, or a PyTorch module cannot be converted.
    ValueError
        As for :func:`sigmoid_to_tanh`, and if doubling a parameter overflows its dtype.

    Notes
    -----
    Doubling is exact unless it overflows, which is refused.  Each new bias
    ``fl(b - sum_i W_ij)`` is one correctly rounded sum.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.networks import Layer, Network, sigmoid_to_tanh, tanh_to_sigmoid
    >>> net = Network([Layer([[2.0, -1.0]], [0.0, 0.5], "tanh"), Layer([[1.0], [3.0]], [-2.0])])
    >>> back = tanh_to_sigmoid(net)
    >>> back
    Network(1 -> 2 (sigmoid) -> 1 (identity))
    >>> back.layers[1].bias
    array([-6.])
    >>> x = np.linspace(-3.0, 3.0, 7)[:, None]
    >>> bool(np.allclose(net(x), back(x), rtol=1e-14, atol=1e-15))
    True

    The two rewrites undo each other exactly here (every sum is exact):

    >>> again = sigmoid_to_tanh(back)
    >>> all((a.weight == b.weight).all() and (a.bias == b.bias).all() for a, b in zip(again, net))
    True
    """
    return _rewrite(model, _TANH_TO_SIGMOID)


def collapse(model: Any, /) -> Any:
    """One affine layer computing exactly what a network with affine hidden layers computes.

    .. math:: (x W_1 + b_1) W_2 + b_2 = x\\,(W_1 W_2) + (b_1 W_2 + b_2)

    Without a non-linear activation, depth buys nothing (sheet problem 1): any number of
    affine layers, of any widths, is one affine map.  The output activation (sigmoid,
    softmax, ...) is kept, so a "deep linear" classifier collapses to logistic regression.

    Parameters
    ----------
    model : Network, torch.nn.Sequential, sklearn MLPClassifier or MLPRegressor, onnx.ModelProto
        Every hidden layer must have activation identity.

    Returns
    -------
    same kind as `model`
        A one-layer model (PyTorch: ``Sequential(Linear[, output activation])``;
        scikit-learn: an MLP with ``hidden_layer_sizes=()``; ONNX: one Gemm or MatMul+Add
        and the output activation).  ``model`` is not changed.

    Raises
    ------
    ValueError
        If a hidden layer has a non-linear activation (the message names the layer).
    TypeError
        If ``model`` is of another kind, or a PyTorch module cannot be converted.

    Notes
    -----
    The function is the same exactly; the collapsed parameters are the products
    ``W_1 W_2 ... W_n`` computed in float64, so each entry carries the rounding error of a
    float64 dot product (relative to the product of the absolute values, at most about
    ``n u`` for inner dimension ``n`` and ``u = 2**-53``), and is then rounded to the
    parameters' dtype.

    Examples
    --------
    Ten identity layers of width 5 are one affine map from 3 inputs to 2 outputs:

    >>> import numpy as np
    >>> from stablenn.networks import Layer, Network, collapse
    >>> rng = np.random.default_rng(0)
    >>> widths = [3] + [5] * 9 + [2]
    >>> deep = Network([Layer(rng.normal(size=(m, n)), rng.normal(size=n))
    ...                 for m, n in zip(widths[:-1], widths[1:])])
    >>> len(deep), len(collapse(deep))
    (10, 1)
    >>> x = rng.normal(size=(4, 3))
    >>> bool(np.allclose(deep(x), collapse(deep)(x), rtol=1e-12))
    True
    """
    adapter = _adapter(model)
    if adapter is None:
        return _collapse_network(model)
    return adapter.collapsed(model, _collapse_network(adapter.to_network(model)))
