"""Read and write fitted scikit-learn ``MLPClassifier`` and ``MLPRegressor`` estimators.

scikit-learn stores ``coefs_[k]`` with shape (inputs, outputs), the convention of
:class:`~stablenn.networks.Layer`, and applies one activation to every hidden layer.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .. import _messages as msg
from ._network import Layer, Network

__all__: list[str] = []

_HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUTPUT = {"identity": "identity", "logistic": "sigmoid", "softmax": "softmax"}
_BACK = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


def is_model(obj: Any) -> bool:
    if not type(obj).__module__.startswith("sklearn."):
        return False
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return isinstance(obj, (MLPClassifier, MLPRegressor))


def to_network(model: Any) -> Network:
    """The fitted estimator as a float64 Network."""
    if not hasattr(model, "coefs_"):
        raise msg.networks_sklearn_not_fitted(model)
    hidden = _HIDDEN.get(model.activation) if isinstance(model.activation, str) else None
    if hidden is None:
        raise msg.networks_sklearn_activation("activation", model.activation, tuple(_HIDDEN))
    output = _OUTPUT.get(model.out_activation_) if isinstance(model.out_activation_, str) else None
    if output is None:
        raise msg.networks_sklearn_activation("out_activation_", model.out_activation_, tuple(_OUTPUT))
    n = len(model.coefs_)
    layers = [
        Layer(
            np.asarray(w, dtype=np.float64),
            np.asarray(b, dtype=np.float64),
            hidden if k < n - 1 else output,
            name=f"coefs_[{k}]",
        )
        for k, (w, b) in enumerate(zip(model.coefs_, model.intercepts_))
    ]
    return Network(layers)


def _write(model: Any, net: Network) -> None:
    dtype = model.coefs_[0].dtype
    model.coefs_ = [np.array(layer.weight, dtype=dtype) for layer in net.layers]
    model.intercepts_ = [np.array(layer.bias, dtype=dtype) for layer in net.layers]
    for k, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        for name, value in (("weight", w), ("bias", b)):
            if not np.isfinite(value).all():
                raise msg.networks_rewrite_overflow(f"`coefs_[{k}]`", name)


def rewritten(model: Any, new: Network, converted: tuple[int, ...]) -> Any:
    """A deep copy of ``model`` with ``new``'s parameters and hidden activation.

    The optimiser's state (``_optimizer``, ``_best_coefs``) describes the old parameters and
    is dropped: the copy predicts; calling ``fit`` again trains it from scratch.
    """
    copied = copy.deepcopy(model)
    _write(copied, new)
    if converted:
        copied.activation = _BACK[new.layers[0].activation]
    for stale in ("_optimizer", "_best_coefs", "_best_intercepts"):
        if hasattr(copied, stale):
            delattr(copied, stale)
    return copied


def collapsed(model: Any, new: Network) -> Any:
    """An estimator with no hidden layer (``hidden_layer_sizes=()``) and ``new``'s layer."""
    copied = rewritten(model, new, ())
    copied.hidden_layer_sizes = ()
    copied.n_layers_ = 2
    return copied
