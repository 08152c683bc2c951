"""Elementwise activations and their derivatives: the sigmoid family, softplus, logit, tanh.

Error bounds quoted in the docstrings are the budgets of ``stablenn.audit`` (Herbie's ULP
distance against mpmath, every dtype), enforced by ``tests/test_accuracy.py``.
"""

from __future__ import annotations

from ._apply import elementwise
from ._kernels import elementwise as k
from ._namespace import Array

__all__ = [
    "log_sigmoid",
    "logit",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_grad_from_output",
    "sigmoid_via_tanh",
    "softplus",
    "tanh",
    "tanh_grad",
    "tanh_grad_from_output",
    "tanh_via_sigmoid",
]


def sigmoid(x: Array, /) -> Array:
    r"""Logistic sigmoid, accurate in both tails.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}}

    Parameters
    ----------
    x : array
        Any real array of a library the array API standard covers. Integers and booleans
        are promoted to the library's default floating dtype.

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    - If ``x_i`` is NaN, the result is NaN.
    - If ``x_i`` is ``+inf``, the result is 1; if ``-inf``, 0; ``-0`` gives 0.5.
    - In the negative tail the result is ``e^x`` to full relative accuracy, down to the
      subnormal range (about ``x > -745.1`` in float64), where peers flush to 0.

    With :math:`e = e^{-|x|} \le 1` the function is :math:`1/(1+e)` for :math:`x \ge 0`
    and :math:`e/(1+e)` for :math:`x < 0`, so ``exp`` never overflows.  In float64 the sum
    :math:`1 + e` is kept exactly (Fast2Sum) and the quotient is formed in double-double,
    leaving one rounding and the error of ``exp``: at most 1 ULP.  float16, bfloat16 and
    float32 are computed in float64 and rounded once: at most 1 ULP.

    References
    ----------
    .. [1] M. Maechler, "Accurately computing log(1 - exp(-|a|))", 2012.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([-740.0, 0.0, 40.0])
    >>> snn.sigmoid(x)
    array([4.19955798e-322, 5.00000000e-001, 1.00000000e+000])
    >>> with np.errstate(over="ignore"):
    ...     1 / (1 + np.exp(-x))  # the textbook formula overflows in exp and loses the tail
    array([0. , 0.5, 1. ])
    """
    return elementwise("sigmoid", x, "x", k.sigmoid)


def log_sigmoid(x: Array, /) -> Array:
    r"""Logarithm of the sigmoid, without overflow or cancellation.

    .. math:: \log\sigma(x) = -\log(1 + e^{-x}) = -\operatorname{softplus}(-x)

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``; values are ``<= 0``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    - If ``x_i`` is NaN, the result is NaN.
    - If ``x_i`` is ``-inf``, the result is ``-inf``; if ``+inf``, the result is ``-0``.

    Evaluated as :math:`-(\max(-x, 0) + \operatorname{log1p}(e^{-|x|}))`: the exponential
    never overflows, and for large ``x`` the result is :math:`-e^{-x}` to full relative
    accuracy.  At most 1 ULP in every dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([-1000.0, 0.0, 50.0])
    >>> snn.log_sigmoid(x)
    array([-1.00000000e+03, -6.93147181e-01, -1.92874985e-22])
    >>> with np.errstate(over="ignore", divide="ignore"):
    ...     np.log(1 / (1 + np.exp(-x)))  # naive: -inf at -1000, 0 at 50
    array([       -inf, -0.69314718,  0.        ])
    """
    return elementwise("log_sigmoid", x, "x", k.log_sigmoid)


def softplus(x: Array, /) -> Array:
    r"""Softplus, accurate in every dtype with no fixed threshold.

    .. math:: \operatorname{softplus}(x) = \log(1 + e^{x})

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``; values are ``>= 0``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    - If ``x_i`` is NaN, the result is NaN.
    - If ``x_i`` is ``+inf``, the result is ``+inf``; if ``-inf``, 0.

    Evaluated as :math:`\max(x, 0) + \operatorname{log1p}(e^{-|x|})`: ``exp`` never
    overflows, and the negative tail is :math:`e^{x}` to full relative accuracy.  Unlike
    implementations that return ``x`` above a threshold (PyTorch's 20), there is no
    threshold, so float64 does not lose 5.8e5 ULP just above it.  At most 1 ULP.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([-800.0, 0.0, 800.0])
    >>> snn.softplus(x)
    array([0.00000000e+000, 6.93147181e-001, 8.00000000e+002])
    >>> snn.softplus(np.array([-40.0]))  # e^-40, not the 0 of log(1 + tiny)
    array([4.24835426e-18])
    >>> with np.errstate(over="ignore"):
    ...     np.log(1 + np.exp(np.array([-40.0, 800.0])))
    array([ 0., inf])
    """
    return elementwise("softplus", x, "x", k.softplus)


def logit(p: Array, /) -> Array:
    r"""Log-odds, the inverse of the sigmoid.

    .. math:: \operatorname{logit}(p) = \log\frac{p}{1 - p}

    Parameters
    ----------
    p : array
        Probabilities (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``p``.

    Raises
    ------
    TypeError
        If ``p`` is not an array or is complex.

    Notes
    -----
    - If ``p_i`` is NaN or outside :math:`[0, 1]`, the result is NaN (no warning).
    - If ``p_i`` is 0, the result is ``-inf``; if 1, ``+inf``; 1/2 gives 0.

    Three pieces keep every digit: :math:`\log p - \operatorname{log1p}(-p)` below 1/4,
    :math:`\operatorname{log1p}((2p - 1)/(1 - p))` between 1/4 and 3/4 (where the
    result is near 0 and :math:`2p - 1` is exact), and :math:`\log p - \log(1 - p)` above
    3/4 (where :math:`1 - p` is exact).  At most 1 ULP.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> p = np.array([0.0, 0.5 + 2.0**-40, 1.0])
    >>> snn.logit(p)
    array([          -inf, 3.63797881e-12,            inf])
    >>> with np.errstate(divide="ignore"):
    ...     np.log(p / (1 - p))  # naive: the middle value keeps only 2 digits
    array([          -inf, 3.63797881e-12,            inf])
    """
    return elementwise("logit", p, "p", k.logit)


def tanh(x: Array, /) -> Array:
    r"""Hyperbolic tangent: the backend's own where it meets the budget, ours elsewhere.

    .. math:: \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    - If ``x_i`` is NaN, the result is NaN; ``+-inf`` give ``+-1``; ``-0`` gives ``-0``.

    The backend's ``tanh`` is used in float64 where the audit measured it within 1 ULP
    (NumPy, PyTorch, CuPy, Dask); elsewhere (JAX, whose tanh is 4 to 6 ULP off) and in
    the narrower dtypes our kernel runs: :math:`-m/(2+m)` with :math:`m =
    \operatorname{expm1}(-2|x|)` below 0.55, :math:`(1-e)/(1+e)` with :math:`e =
    e^{-2|x|}` above.  At most 1 ULP.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> snn.tanh(np.array([-1000.0, 1e-300, 20.0]))
    array([-1.e+000,  1.e-300,  1.e+000])
    """
    return elementwise("tanh", x, "x", k.tanh)


def sigmoid_grad(x: Array, /) -> Array:
    r"""Derivative of the sigmoid, computed from the input: accurate in the tails.

    .. math:: \sigma'(x) = \sigma(x)\,\sigma(-x) = \frac{e^{-|x|}}{(1 + e^{-|x|})^2}

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``; values in :math:`[0, 1/4]`.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    - If ``x_i`` is NaN, the result is NaN; ``+-inf`` give 0.

    The form :math:`\sigma(x)(1 - \sigma(x))` used by autograd in every peer rounds
    :math:`1 - \sigma(x)` to 0 from :math:`x \approx 36.7` (float64) and 16.6 (float32);
    the symmetric form above has no subtraction.  In float64 the square and the quotient
    are formed in double-double.  At most 1 ULP.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([0.0, 40.0])
    >>> snn.sigmoid_grad(x)
    array([2.50000000e-01, 4.24835426e-18])
    >>> s = 1 / (1 + np.exp(-x))
    >>> s * (1 - s)  # from the output: every digit lost at 40
    array([0.25, 0.  ])
    """
    return elementwise("sigmoid_grad", x, "x", k.sigmoid_grad)


def tanh_grad(x: Array, /) -> Array:
    r"""Derivative of tanh, computed from the input: accurate in the tails.

    .. math:: \tanh'(x) = 1 - \tanh^2(x) = \frac{4 e^{-2|x|}}{(1 + e^{-2|x|})^2}

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``; values in :math:`[0, 1]`.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    - If ``x_i`` is NaN, the result is NaN; ``+-inf`` give 0.

    :math:`1 - \tanh^2(x)` loses every digit once :math:`\tanh(x)` rounds to 1 (about
    :math:`|x| > 19` in float64, 9 in float32); this form has no subtraction.  At most
    1 ULP.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([0.0, 20.0])
    >>> snn.tanh_grad(x)
    array([1.00000000e+00, 1.69934170e-17])
    >>> 1 - np.tanh(x) ** 2
    array([1., 0.])
    """
    return elementwise("tanh_grad", x, "x", k.tanh_grad)


def sigmoid_grad_from_output(y: Array, /) -> Array:
    r"""Derivative of the sigmoid from its output, as backprop computes it.

    .. math:: \sigma'(x) = y (1 - y), \qquad y = \sigma(x)

    Parameters
    ----------
    y : array
        Sigmoid outputs (values in :math:`[0, 1]`; others are computed by the same formula).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``y``.

    Raises
    ------
    TypeError
        If ``y`` is not an array or is complex.

    Notes
    -----
    - If ``y_i`` is NaN, the result is NaN.

    Cheap: it needs only the saved output, which is why backprop uses it (Problem 3 of the
    sheet).  It is exact for the given ``y`` below 1/2 in float32 and narrower (computed in
    float64) and within 1 ULP of :math:`y(1-y)` in float64, but as a derivative of
    :math:`\sigma` at :math:`x` it inherits the rounding of ``y``: once :math:`y` is within
    half an ULP of 1 (:math:`x > 36.7` in float64, :math:`x > 16.6` in float32, :math:`x >
    7.6` in float16) it returns 0, and its relative error grows like :math:`e^{x}\epsilon`
    from about :math:`x > 1`.  Use :func:`sigmoid_grad` when the input is available.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([0.0, 40.0])
    >>> snn.sigmoid_grad_from_output(snn.sigmoid(x))
    array([0.25, 0.  ])
    >>> snn.sigmoid_grad(x)
    array([2.50000000e-01, 4.24835426e-18])
    """
    return elementwise("sigmoid_grad_from_output", y, "y", k.sigmoid_grad_from_output)


def tanh_grad_from_output(y: Array, /) -> Array:
    r"""Derivative of tanh from its output, as backprop computes it.

    .. math:: \tanh'(x) = (1 - y)(1 + y), \qquad y = \tanh(x)

    Parameters
    ----------
    y : array
        tanh outputs (values in :math:`[-1, 1]`).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``y``.

    Raises
    ------
    TypeError
        If ``y`` is not an array or is complex.

    Notes
    -----
    - If ``y_i`` is NaN, the result is NaN.

    Written as :math:`(1-y)(1+y)` rather than :math:`1 - y^2` (one exact subtraction for
    :math:`|y| \ge 1/2` instead of a rounded square).  As a derivative at :math:`x` it
    returns 0 once :math:`\tanh(x)` rounds to :math:`\pm 1` (:math:`|x| > 19.1` in
    float64, :math:`|x| > 9.0` in float32) and loses relative accuracy like
    :math:`e^{2|x|}\epsilon` beyond :math:`|x| \approx 1`.  Use :func:`tanh_grad` when
    the input is available.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> snn.tanh_grad_from_output(snn.tanh(np.array([0.0, 20.0])))
    array([1., 0.])
    """
    return elementwise("tanh_grad_from_output", y, "y", k.tanh_grad_from_output)


def sigmoid_via_tanh(x: Array, /) -> Array:
    r"""The sheet's identity :math:`\sigma(x) = (1 + \tanh(x/2))/2`, evaluated as written.

    .. math:: \sigma(x) = \tfrac{1}{2}\bigl(1 + \tanh(x/2)\bigr)

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    Exact on paper (Problem 2 of the sheet) and accurate for :math:`x \ge 0` (within 1 ULP
    of the correctly rounded sigmoid, computed here in float64 with an accurate tanh), but
    :math:`1 + \tanh(x/2)` cancels for negative ``x``: the relative error grows like
    :math:`e^{-x}\epsilon` and the result is exactly 0 below about :math:`x = -37`
    (float64) where :func:`sigmoid` is still :math:`e^{x}`.  Float32 and narrower are
    computed in float64, which moves that edge to where float64 loses it: all digits of a
    float32 result are lost below about :math:`x = -20`.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([-40.0, 0.0, 3.0])
    >>> snn.sigmoid_via_tanh(x)
    array([0.        , 0.5       , 0.95257413])
    >>> snn.sigmoid(x)
    array([4.24835426e-18, 5.00000000e-01, 9.52574127e-01])
    """
    return elementwise("sigmoid_via_tanh", x, "x", k.sigmoid_via_tanh, tanh_fn=_tanh_kernel)


def tanh_via_sigmoid(x: Array, /) -> Array:
    r"""The sheet's identity :math:`\tanh(x) = 2\sigma(2x) - 1`, evaluated as written.

    .. math:: \tanh(x) = 2\,\sigma(2x) - 1

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex.

    Notes
    -----
    Accurate for :math:`|x| \gtrsim 0.3` but :math:`2\sigma(2x) - 1` cancels near 0: the
    absolute error stays near :math:`\epsilon`, so the relative error grows like
    :math:`\epsilon/|x|`, and tiny inputs give 0 instead of :math:`x` (the price of
    tinygrad's one-line tanh).  In float64, :math:`|x| < 10^{-17}` returns 0; float32 and
    narrower are computed in float64 and lose accuracy below about :math:`|x| = 10^{-9}`.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([1e-20, 0.5])
    >>> snn.tanh_via_sigmoid(x)
    array([0.        , 0.46211716])
    >>> snn.tanh(x)
    array([1.00000000e-20, 4.62117157e-01])
    """
    return elementwise("tanh_via_sigmoid", x, "x", k.tanh_via_sigmoid)


def _tanh_kernel(x: Array) -> Array:
    # the public tanh (native or ours, as the dispatch decides) on the working array
    return tanh(x)
