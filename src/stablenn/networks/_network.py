"""A small, backend-neutral description of a feed-forward network.

A network is a chain of affine layers.  Layer ``k`` maps a row of ``n_in`` features to
``n_out`` features,

.. math:: a_k = f_k(a_{k-1} W_k + b_k), \\qquad W_k \\in \\mathbb{R}^{n_{in} \\times n_{out}},

the row-vector convention of scikit-learn and of batch-first arrays (PyTorch's ``Linear``
stores :math:`W_k^T`).  Parameters are held as read-only NumPy arrays: the description
belongs to no backend, and the forward pass moves them to the namespace, device and dtype
of its input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .. import _messages as msg

__all__ = ["ACTIVATIONS", "Layer", "Network"]

#: Activation names a layer accepts; ``"softmax"`` only on the output layer.
ACTIVATIONS: tuple[str, ...] = ("identity", "sigmoid", "tanh", "relu", "softmax")


def _describe_layer(name: str) -> str:
    return f"layer '{name}'" if name else "this layer"


def _as_parameter(value: Any, *, where: str, name: str) -> np.ndarray:
    """``value`` as a fresh, read-only NumPy floating array (integers become float64)."""
    if hasattr(value, "__dlpack__") and not isinstance(value, np.ndarray):
        try:
            value = np.from_dlpack(value)
        except (TypeError, RuntimeError, BufferError, ValueError):
            value = np.asarray(value)
    try:
        array = np.array(value, copy=True)
    except (TypeError, ValueError, RuntimeError):
        raise msg.networks_weight_kind(where, name, value) from None
    if array.dtype.kind in "iub":
        array = array.astype(np.float64)
    elif array.dtype.kind != "f":
        raise msg.networks_weight_kind(where, name, value)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise msg.networks_not_finite(where, name, len(bad), first, float(array[first]))
    array.flags.writeable = False
    return array


class Layer:
    """One affine layer ``activation(x @ weight + bias)``.

    Parameters
    ----------
    weight : array_like, shape (n_in, n_out)
        Real floating (or integer, promoted to float64) weights, finite.  Any array that
        NumPy can read (NumPy, CPU PyTorch tensors, array-api-strict, lists) is copied.
    bias : array_like, shape (n_out,), optional
        Finite biases; zeros if omitted.  Cast to the dtype of ``weight``.
    activation : {"identity", "sigmoid", "tanh", "relu", "softmax"}, default "identity"
        Element-wise activation, or ``"softmax"`` over the outputs (output layer only).
    name : str, optional
        Where the layer came from (a PyTorch module path, an ONNX node); used in messages.

    Raises
    ------
    TypeError
        If ``weight`` or ``bias`` is not a real or integer array.
    ValueError
        If ``weight`` is not 2-D, ``bias`` does not have shape ``(n_out,)``, a parameter is
        not finite, or ``activation`` is not one of the accepted names.

    Examples
    --------
    >>> from stablenn.networks import Layer
    >>> layer = Layer([[1.0, -1.0], [0.5, 2.0]], [0.0, 1.0], "tanh")
    >>> layer
    Layer(2 -> 2, 'tanh')
    >>> layer.weight.flags.writeable
    False
    """

    __slots__ = ("activation", "bias", "name", "weight")

    weight: np.ndarray
    bias: np.ndarray
    activation: str
    name: str

    def __init__(self, weight: Any, bias: Any = None, activation: str = "identity", *, name: str = "") -> None:
        where = _describe_layer(name)
        w = _as_parameter(weight, where=where, name="weight")
        if w.ndim != 2:
            raise msg.networks_weight_shape(where, weight)
        if bias is None:
            b = np.zeros(w.shape[1], dtype=w.dtype)
            b.flags.writeable = False
        else:
            b = _as_parameter(bias, where=where, name="bias")
            if b.shape != (w.shape[1],):
                raise msg.networks_bias_shape(where, w.shape[1], bias)
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise msg.networks_unknown_activation(where, activation, ACTIVATIONS)
        dtype = np.result_type(w, b)
        if w.dtype != dtype:
            w = w.astype(dtype)
            w.flags.writeable = False
        if b.dtype != dtype:
            b = b.astype(dtype)
            b.flags.writeable = False
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)
        object.__setattr__(self, "activation", activation)
        object.__setattr__(self, "name", str(name))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Layer is immutable; build a new Layer instead of setting `{key}`")

    @property
    def n_inputs(self) -> int:
        """Number of input features."""
        return int(self.weight.shape[0])

    @property
    def n_outputs(self) -> int:
        """Number of output features."""
        return int(self.weight.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the parameters."""
        return self.weight.dtype

    def __repr__(self) -> str:
        return f"Layer({self.n_inputs} -> {self.n_outputs}, {self.activation!r})"


class Network:
    """A feed-forward network: a chain of :class:`Layer` objects.

    Parameters
    ----------
    layers : iterable of Layer
        At least one layer.  Each layer's ``n_inputs`` must equal the previous layer's
        ``n_outputs``; only the last layer may use ``"softmax"``.

    Raises
    ------
    TypeError
        If an element of ``layers`` is not a :class:`Layer`.
    ValueError
        If ``layers`` is empty, the shapes do not chain, or a hidden layer uses softmax.

    Notes
    -----
    A network is immutable; the conversions return new networks.  Calling it runs
    :meth:`forward`.

    Examples
    --------
    The sheet's network with one sigmoid hidden layer, evaluated on NumPy and PyTorch:

    >>> import numpy as np
    >>> from stablenn.networks import Layer, Network
    >>> net = Network([
    ...     Layer([[2.0, -1.0]], [0.0, 0.5], "sigmoid"),
    ...     Layer([[1.0], [3.0]], [-2.0]),
    ... ])
    >>> net
    Network(1 -> 2 (sigmoid) -> 1 (identity))
    >>> net(np.array([[0.0], [1.0]]))
    array([[0.36737799],
           [0.01341908]])
    >>> import torch
    >>> net(torch.tensor([[0.0], [1.0]], dtype=torch.float64))
    tensor([[0.3674],
            [0.0134]], dtype=torch.float64)
    """

    __slots__ = ("layers",)

    layers: tuple[Layer, ...]

    def __init__(self, layers: Iterable[Layer]) -> None:
        given = layers
        layers = tuple(layers)
        if not layers:
            raise msg.networks_no_layers(given)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise msg.networks_not_a_layer(i, layer)
        for i in range(1, len(layers)):
            if layers[i].n_inputs != layers[i - 1].n_outputs:
                raise msg.networks_shapes_do_not_chain(
                    _where(layers, i), layers[i].n_inputs, _where(layers, i - 1), layers[i - 1].n_outputs
                )
        for i in range(len(layers) - 1):
            if layers[i].activation == "softmax":
                raise msg.networks_softmax_hidden(_where(layers, i))
        object.__setattr__(self, "layers", layers)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Network is immutable; build a new Network instead of setting `{key}`")

    @property
    def n_inputs(self) -> int:
        """Number of input features."""
        return self.layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        """Number of outputs."""
        return self.layers[-1].n_outputs

    @property
    def activations(self) -> tuple[str, ...]:
        """The activation of each layer, input to output."""
        return tuple(layer.activation for layer in self.layers)

    @property
    def n_parameters(self) -> int:
        """Number of weights and biases."""
        return sum(layer.weight.size + layer.bias.size for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        parts = [str(self.n_inputs)] + [f"{layer.n_outputs} ({layer.activation})" for layer in self.layers]
        return f"Network({' -> '.join(parts)})"

    def __call__(self, x: Any, /) -> Any:
        return self.forward(x)

    def forward(self, x: Any, /) -> Any:
        """Evaluate the network on ``x``, in ``x``'s array library, device and dtype.

        Parameters
        ----------
        x : array, shape (..., n_inputs)
            Any array the array API standard covers.  Integer and boolean inputs are
            promoted to the namespace's default floating dtype.

        Returns
        -------
        array, shape (..., n_outputs)
            Same library, device and (floating) dtype as ``x``.  The parameters are
            rounded to that dtype; float16 and bfloat16 are computed in float32.

        Raises
        ------
        TypeError
            If ``x`` is not an array, or is complex.
        ValueError
            If the last axis of ``x`` does not have ``n_inputs`` entries.
        """
        import array_api_compat

        import stablenn  # public functions, one layer below; imported late to keep imports light

        try:
            xp = array_api_compat.array_namespace(x)
        except TypeError:
            raise msg.networks_input_not_array(x) from None
        if isinstance(x, (bool, int, float, complex)):
            raise msg.networks_input_not_array(x)
        if x.ndim < 1 or x.shape[-1] != self.n_inputs:
            raise msg.networks_input_width(self.n_inputs, x)
        device = array_api_compat.device(x)
        if xp.isdtype(x.dtype, "real floating"):
            dtype = x.dtype
        elif xp.isdtype(x.dtype, ("integral", "bool")):
            dtype = xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
        else:
            raise msg.networks_input_kind(x)
        # float16 and bfloat16 are computed in float32: no sum accumulates in a 16-bit type.
        work = xp.float32 if dtype not in (xp.float32, xp.float64) else dtype
        h = xp.astype(x, work) if x.dtype != work else x
        for layer in self.layers:
            # fresh writable copies: some libraries (PyTorch) refuse to wrap read-only memory
            weight = xp.asarray(np.array(layer.weight), dtype=work, device=device)
            bias = xp.asarray(np.array(layer.bias), dtype=work, device=device)
            z = xp.matmul(h, weight) + bias
            h = _activate(xp, layer.activation, z, stablenn)
        return xp.astype(h, dtype) if dtype != work else h


def _activate(xp: Any, name: str, z: Any, sn: Any) -> Any:
    if name == "identity":
        return z
    if name == "sigmoid":
        return sn.sigmoid(z)
    if name == "tanh":
        return sn.tanh(z)
    if name == "relu":
        # z < 0 rather than z > 0 keeps NaN a NaN
        return xp.where(z < 0, xp.zeros_like(z), z)
    return sn.softmax(z, axis=-1)


def _where(layers: tuple[Layer, ...], i: int) -> str:
    """How a message names layer ``i``: ``layers[i]`` and, if known, its origin."""
    name = layers[i].name
    return f"`layers[{i}]`" + (f" ('{name}')" if name else "")
