"""Run any supported model on NumPy inputs and measure how far two models' outputs are."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _messages as msg
from ._network import Network

__all__ = ["Difference", "compare", "evaluate", "ulp_distance"]


def evaluate(model: Any, x: Any, /) -> np.ndarray:
    """The outputs of ``model`` on the rows of ``x``, as a NumPy array.

    Parameters
    ----------
    model : Network, torch.nn.Module, sklearn MLPClassifier or MLPRegressor, onnx.ModelProto
        ONNX models run in onnxruntime (CPU); scikit-learn classifiers give
        ``predict_proba``, regressors ``predict``; PyTorch modules run without gradients in
        the dtype and on the device of their first parameter.
    x : array_like, shape (n, n_inputs)
        Inputs; cast to the model's dtype (ONNX: its input's element type).

    Returns
    -------
    numpy.ndarray
        The outputs, in the model's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.networks import Layer, Network, evaluate
    >>> evaluate(Network([Layer([[1.0], [1.0]], [0.5])]), np.array([[1.0, 2.0]]))
    array([[3.5]])
    """
    from ._convert import _adapter
    from . import _onnx, _sklearn, _torch

    x = np.asarray(x)
    adapter = _adapter(model)
    if adapter is None:
        return np.asarray(model(x))
    if adapter is _torch:
        import torch

        first = next(model.parameters())
        with torch.no_grad():
            return model(torch.from_numpy(np.array(x, copy=True)).to(dtype=first.dtype, device=first.device)).cpu().numpy()
    if adapter is _sklearn:
        dtype = model.coefs_[0].dtype
        predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
        return np.asarray(predict(x.astype(dtype)))
    assert adapter is _onnx
    import onnxruntime
    from onnx import helper

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (data,) = session.get_inputs()
    inits = {t.name for t in model.graph.initializer}
    elem = next(v for v in model.graph.input if v.name not in inits).type.tensor_type.elem_type
    return np.asarray(session.run(None, {data.name: x.astype(helper.tensor_dtype_to_np_dtype(elem))})[0])


def ulp_distance(a: Any, b: Any, /) -> np.ndarray:
    """Number of floating-point values between ``a`` and ``b`` (same dtype), elementwise.

    ``+0`` and ``-0`` are 0 apart; two NaNs are 0 apart, a NaN and a number infinitely far.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.networks import ulp_distance
    >>> ulp_distance(np.array([1.0, -0.0, 1.0]), np.array([np.nextafter(1.0, 2.0), 0.0, 1.0 + 2**-50]))
    array([1., 0., 4.])
    """
    a = np.asarray(a)
    b = np.asarray(b)
    dtype = np.result_type(a, b)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dtype.itemsize]
    a, b = np.broadcast_arrays(a.astype(dtype), b.astype(dtype))
    bits_a = np.ascontiguousarray(a).view(uint)
    bits_b = np.ascontiguousarray(b).view(uint)
    sign = uint(1) << uint(8 * dtype.itemsize - 1)
    mag_a, mag_b = bits_a & ~sign, bits_b & ~sign
    same_sign = (bits_a & sign) == (bits_b & sign)
    # magnitudes as unsigned integers are ordered like the floats; opposite signs add up
    far = np.where(same_sign, np.maximum(mag_a, mag_b) - np.minimum(mag_a, mag_b), mag_a + mag_b)
    out = far.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    out[nan_a & nan_b] = 0.0
    out[nan_a ^ nan_b] = np.inf
    return out


class Difference(NamedTuple):
    """How far apart two models' outputs are, over the same inputs."""

    max_abs: float  #: largest absolute difference
    max_ulp: float  #: largest distance in units in the last place of the outputs' dtype
    max_normwise: float  #: largest max|y - y'| / (eps * max|y|) over the rows, in units of eps
    n_inputs: int  #: number of input rows
    dtype: str  #: dtype of the outputs


def compare(original: Any, converted: Any, x: Any, /) -> Difference:
    """Run two models on the same inputs and measure the difference of their outputs.

    Parameters
    ----------
    original, converted : models accepted by :func:`evaluate`
    x : array_like, shape (n, n_inputs)

    Returns
    -------
    Difference

    Raises
    ------
    ValueError
        If the two models' outputs do not have the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.networks import Layer, Network, compare, sigmoid_to_tanh
    >>> net = Network([Layer([[1.0, -2.0]], [0.5, 0.0], "sigmoid"), Layer([[1.0], [1.0]])])
    >>> d = compare(net, sigmoid_to_tanh(net), np.linspace(-5, 5, 101)[:, None])
    >>> d.max_ulp <= 4
    True
    """
    y = evaluate(original, x)
    z = evaluate(converted, x)
    if y.shape != z.shape:
        raise msg.networks_compare_shapes(y, z)
    dtype = np.result_type(y, z)
    y, z = y.astype(dtype), z.astype(dtype)
    rows = y.reshape(y.shape[0], -1) if y.ndim else y.reshape(1, 1)
    diff = np.abs(rows - z.reshape(rows.shape))
    scale = np.max(np.abs(rows), axis=1)
    eps = float(np.finfo(dtype).eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        normwise = np.where(scale > 0, np.max(diff, axis=1) / (eps * scale), np.where(np.max(diff, axis=1) > 0, np.inf, 0.0))
    return Difference(
        max_abs=float(diff.max()) if diff.size else 0.0,
        max_ulp=float(ulp_distance(y, z).max()) if y.size else 0.0,
        max_normwise=float(normwise.max()) if normwise.size else 0.0,
        n_inputs=int(rows.shape[0]),
        dtype=str(dtype),
    )
