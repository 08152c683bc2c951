"""stablenn: numerically stable neural-network math, proved and measured.

The public functions take any array the Python array API standard covers (NumPy, PyTorch,
JAX, CuPy, Dask, array-api-strict) and return the same kind of array on the same device.
"""

from ._version import __version__
from .activations import (
    log_sigmoid,
    logit,
    sigmoid,
    sigmoid_grad,
    sigmoid_grad_from_output,
    sigmoid_via_tanh,
    softplus,
    tanh,
    tanh_grad,
    tanh_grad_from_output,
    tanh_via_sigmoid,
)
from .losses import binary_cross_entropy_with_logits, cross_entropy_with_logits
from .reductions import log_softmax, logsumexp, softmax

__all__ = [
    "__version__",
    "binary_cross_entropy_with_logits",
    "cross_entropy_with_logits",
    "log_sigmoid",
    "log_softmax",
    "logit",
    "logsumexp",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_grad_from_output",
    "sigmoid_via_tanh",
    "softmax",
    "softplus",
    "tanh",
    "tanh_grad",
    "tanh_grad_from_output",
    "tanh_via_sigmoid",
]
