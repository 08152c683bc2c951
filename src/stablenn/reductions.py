"""Log-sum-exp, softmax and log-softmax: SciPy's and JAX's conventions, more accurate."""

from __future__ import annotations

import math
from typing import Any

import array_api_compat as compat

from . import _autodiff, _blocking, _dispatch
from . import _messages as msg
from ._dtypes import floating, work_dtype
from ._kernels import reductions as k
from ._namespace import Array, Namespace, backend_name, device, namespace, quiet, scalar_if_numpy
from ._validation import (
    all_finite,
    axes,
    broadcast_to,
    finite_scalar_check,
    flag,
    keepdims_shape,
    move_last,
    restore_axis,
    single_axis,
)

__all__ = ["log_softmax", "logsumexp", "softmax"]


def logsumexp(
    x: Array,
    /,
    *,
    axis: int | tuple[int, ...] | None = None,
    b: Array | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
    shift: Array | float | None = None,
) -> Array | tuple[Array, Array]:
    r"""Logarithm of the sum of exponentials, without overflow and with every digit.

    .. math:: \operatorname{LSE}(x) = \log \sum_i b_i e^{x_i} = a + \log \sum_i b_i e^{x_i - a}

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).
    axis : int or tuple of ints, optional
        Axes to reduce; None (default, as in SciPy) reduces all.
    b : array, optional
        Weights broadcastable to ``x``; may be negative (then see ``return_sign``).  An entry
        with ``b == 0`` contributes nothing, even where ``x`` is inf or NaN.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    return_sign : bool, optional
        Also return the sign of the sum; the result is then :math:`\log|\sum_i b_i e^{x_i}|`.
    shift : scalar or array, optional
        The sheet's arbitrary :math:`a` (Problem 4): a finite number, or an array
        broadcastable to the reduced shape (or to the keepdims shape).  The result is
        computed as :math:`a + \log\sum_i b_i e^{x_i - a}` with that :math:`a`, so a shift far
        from the largest term overflows or underflows exactly as the identity predicts.
        Any shift other than the default also adds an absolute error of about
        :math:`\epsilon\,(1 + |a - \max_i x_i|)`: the dominant term is no longer exactly 1
        and the logarithm is rounded at the magnitude of the shift.
        Default: the largest term :math:`b_i e^{x_i}` (by magnitude), which cannot overflow.

    Returns
    -------
    res : array
        Same library and device as ``x``, the floating dtype of ``x`` and ``b``, shape of
        ``x`` without the reduced axes (with them as 1 if ``keepdims``).
    sign : array
        Only with ``return_sign``: +1, -1, or 0 for an exact cancellation.

    Raises
    ------
    TypeError
        If ``x``, ``b`` or ``shift`` is not an array (``shift`` may be a Python number) or
        is complex, or ``axis`` is not an int or tuple of ints.
    IndexError
        If an axis is out of range.
    ValueError
        If an axis is repeated, ``b`` or ``shift`` does not broadcast, or ``shift`` is
        not finite (checked where its values can be read cheaply).

    Notes
    -----
    - If any term of a slice is NaN, the result is NaN.
    - If a slice holds ``+inf`` (with positive weight), the result is ``+inf``.
    - If a slice is all ``-inf``, or empty, or all its weights are 0, the result is
      ``-inf`` (and the sign 0).
    - If the weighted sum is negative and ``return_sign`` is False, the result is NaN.

    With the pivot :math:`k` the largest term, :math:`S = \sum_i b_i e^{x_i - x_k} = b_k
    + r`, and the result is :math:`x_k + \log|S|`, evaluated as
    :math:`x_k + \operatorname{log1p}(|S| - 1)` when :math:`|S|` is near 1: the digits
    of a dominant term are not rounded away by forming :math:`1 + r` (Blanchard, Higham
    and Higham [1]_).  The rounding error of each :math:`x_i - x_k` is carried exactly
    (TwoSum) and the sum is accumulated in double-double in float64; narrower dtypes are
    computed in float64.  Measured error: at most 1 ULP in float16, bfloat16 and float32,
    2 ULP in float64.  Where the result is near 0 the problem itself is ill-conditioned
    (condition number :math:`\sum_i |x_i| p_i / |\operatorname{LSE}|`); the absolute
    error then stays below a few ULP of :math:`\max_i |x_i|`.

    Weights of both signs can cancel: the sum's own condition number is
    :math:`\kappa_b = \sum_i |b_i e^{x_i}| / |\sum_i b_i e^{x_i}|`.  Then (float64
    working dtype, default ``shift``) terms with equal ``x`` are merged first (their weights
    summed exactly in double-double), so an exact cancellation gives ``-inf`` with sign 0 and
    the pivot is the largest term that survives; each term is formed in double-double
    (``x_i - x_k`` exactly, a double-double ``exp``) and the terms summed in double-double.
    The absolute error is at most the bound above plus :math:`4096\,u^2 \kappa_b`
    (:math:`u^2 = 2^{-106}`): all digits up to :math:`\kappa_b \approx 10^{13}` in
    float64, where float64 terms would lose :math:`\log_{10}\kappa_b` digits
    (``stablenn.audit._budgets.logsumexp_tolerance`` states and the tests check this
    bound).  Weights of one sign take the faster path above.  On Dask, equal ``x`` in
    different chunks of the reduced axis are not merged: an exact cancellation across
    chunks may leave a residue of about :math:`u^2 \sum_i |b_i e^{x_i}|`.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the
       log-sum-exp and softmax functions", IMA J. Numer. Anal. 41 (2021),
       doi:10.1093/imanum/draa038.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([1000.0, 1000.0])
    >>> snn.logsumexp(x)
    np.float64(1000.6931471805599)
    >>> with np.errstate(over="ignore"):
    ...     np.log(np.sum(np.exp(x)))  # naive: overflow
    np.float64(inf)
    >>> snn.logsumexp(np.array([0.0, -40.0]))  # log1p keeps the small term: 1 + e^-40 would round to 1
    np.float64(4.248354255291589e-18)
    >>> snn.logsumexp(np.array([0.0, 0.0]), b=np.array([1.0, -1.0]), return_sign=True)
    (np.float64(-inf), np.float64(0.0))
    >>> x, b = np.array([1.0, 0.0]), np.array([1.0, -2.718281828459045])  # e - fl(e)
    >>> snn.logsumexp(x, b=b)  # mpmath: log(e - 2.718281828459045) = -36.47280459058011
    np.float64(-36.47280459058011)
    >>> with np.errstate(divide="ignore"):
    ...     float(np.log(np.sum(b * np.exp(x))))  # naive: e^1 rounds to fl(e), the sum to 0
    -inf
    """
    keepdims = flag(keepdims, "keepdims")
    return_sign = flag(return_sign, "return_sign")
    xp = namespace(x=x, b=b, shift=None if _is_number(shift) else shift)
    if _autodiff.wanted(x, b, shift):  # gradients: our rule (stablenn._autodiff)
        opts = {"axis": axis, "keepdims": keepdims, "return_sign": return_sign}
        return _autodiff.call("logsumexp", logsumexp, x, b, shift, **opts)  # type: ignore[no-any-return]
    xf = floating(xp, x, "x")
    bf = None if b is None else floating(xp, b, "b")
    dtype = xf.dtype if bf is None else xp.result_type(xf.dtype, bf.dtype)
    if xf.dtype != dtype:
        xf = xp.astype(xf, dtype)
    shape = tuple(xf.shape)
    if bf is not None:
        bf = broadcast_to(xp, xp.astype(bf, dtype), shape, "b", "x")
    red = axes(axis, xf.ndim)
    out_shape = tuple(s for i, s in enumerate(shape) if i not in red)
    keep_shape = keepdims_shape(shape, red)
    work = work_dtype(xp, xf)
    exact = work == dtype
    xl, kept = move_last(xp, xf, red)
    bl = None if bf is None else move_last(xp, bf, red)[0]
    sl = None
    if shift is not None:
        sl = _shift(xp, shift, red, out_shape, keep_shape, xf)
    with quiet(xp):
        fast = None
        if sl is None:
            fast = _dispatch.lookup("logsumexp", backend_name(xf), dtype, xl, bl, return_sign)
        if fast is not None:
            res, sign = fast(xl, bl, return_sign)
        elif bl is None and sl is None and _plain_numpy(xp, xl):  # tiled NumPy kernels
            from ._kernels import _numpy_fast

            res, sign = _numpy_fast.logsumexp(xl)
            res, sign = xp.astype(res, dtype), xp.astype(sign, dtype)
        else:
            xw = xl if exact else xp.astype(xl, work)
            bw = None if bl is None else xp.astype(bl, work)
            sw = None if sl is None else xp.astype(sl, work)
            if xl.shape[-1] == 0:  # an empty sum: log 0 = -inf, sign 0
                res = xp.full(kept, -xp.inf, dtype=work, device=device(xf))
                sign = xp.zeros(kept, dtype=work, device=device(xf))
            else:
                res, sign = _logsumexp_last(xp, xw, bw, sw, exact, kept)
            if not return_sign:
                res = xp.where(sign < 0, xp.nan, res)
            res = xp.astype(res, dtype)
            sign = xp.astype(sign, dtype)
    if keepdims:
        res = xp.reshape(res, keep_shape)
        sign = xp.reshape(sign, keep_shape)
    res, sign = scalar_if_numpy(xp, res), scalar_if_numpy(xp, sign)
    return (res, sign) if return_sign else res


def softmax(x: Array, /, *, axis: int = -1, shift: Array | float | None = None) -> Array:
    r"""Softmax along one axis, shift-invariant and accurate to the last digit.

    .. math:: \operatorname{softmax}(x)_i = \frac{e^{x_i}}{\sum_j e^{x_j}}
              = \frac{e^{x_i - a}}{\sum_j e^{x_j - a}}

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).
    axis : int, optional
        The axis to normalise (default -1, as in JAX, Optax and TensorFlow).
    shift : scalar or array, optional
        The sheet's :math:`a` (Problem 5), broadcastable to ``x`` with ``axis`` removed (or
        kept as 1); default the largest entry.  The quotient is computed with that shift, so
        a shift far below the largest entry overflows as the identity predicts.

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``; each slice sums to 1.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex, or ``axis`` is not an int.
    IndexError
        If ``axis`` is out of range.
    ValueError
        If ``shift`` does not broadcast or is not finite.

    Notes
    -----
    - If a slice holds a NaN, the whole slice is NaN.
    - If a slice holds ``+inf`` entries, they share the mass evenly and the rest is 0.
    - If a slice is all ``-inf``, the result is all zeros (SciPy returns NaN).
    - An empty axis gives an empty result.

    The rounding of :math:`x_i - \max_j x_j`, which ``exp`` amplifies by up to
    :math:`|x_i - \max_j x_j|` (66 ULP in float32 and 512 in float64 for every peer), is
    carried exactly with TwoSum; the denominator is summed and divided in double-double.
    Measured error: at most 1 ULP in float32 and narrower, 2 ULP in float64, every component.

    References
    ----------
    .. [1] P. Blanchard, D. J. Higham and N. J. Higham, doi:10.1093/imanum/draa038.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([1000.0, 1000.0, -np.inf])
    >>> snn.softmax(x)
    array([0.5, 0.5, 0. ])
    >>> with np.errstate(over="ignore", invalid="ignore"):
    ...     np.exp(x) / np.sum(np.exp(x))  # naive: inf / inf
    array([nan, nan,  0.])
    """
    return _normalise("softmax", k.softmax, x, axis, shift)


def log_softmax(x: Array, /, *, axis: int = -1, shift: Array | float | None = None) -> Array:
    r"""Log of the softmax along one axis, with the dominant component kept exactly.

    .. math:: \log\operatorname{softmax}(x)_i = x_i - \log\sum_j e^{x_j}

    Parameters
    ----------
    x : array
        Real array (integers and booleans promoted).
    axis : int, optional
        The axis to normalise (default -1).
    shift : scalar or array, optional
        The sheet's :math:`a`, as in :func:`softmax`.  A shift other than the default adds
        an absolute error of up to about :math:`\epsilon\,|a - \max_j x_j|`: the log of
        the shifted sum is rounded at that magnitude.

    Returns
    -------
    array
        Same library, device, shape and floating dtype as ``x``; values ``<= 0``.

    Raises
    ------
    TypeError
        If ``x`` is not an array or is complex, or ``axis`` is not an int.
    IndexError
        If ``axis`` is out of range.
    ValueError
        If ``shift`` does not broadcast or is not finite.

    Notes
    -----
    - If a slice holds a NaN, the whole slice is NaN.
    - If a slice holds :math:`k` ``+inf`` entries, they get :math:`-\log k` and the rest
      ``-inf``.
    - If a slice is all ``-inf``, the result is all ``-inf`` (a masked row contributes
      nothing; SciPy returns NaN).
    - An empty axis gives an empty result.

    Computed as :math:`(x_i - m) - \operatorname{log1p}(r)` with :math:`m` the maximum
    and :math:`r` the sum of the other shifted exponentials, the subtraction carried
    exactly: the dominant component is :math:`-\operatorname{log1p}(r)` (about
    :math:`-4 \cdot 10^{-18}` for a gap of 40), where every peer returns 0.  At most 1 ULP
    in float32 and narrower, 2 ULP in float64.

    Examples
    --------
    >>> import numpy as np
    >>> import stablenn as snn
    >>> x = np.array([0.0, -40.0])
    >>> snn.log_softmax(x)
    array([-4.24835426e-18, -4.00000000e+01])
    >>> x - np.log(np.sum(np.exp(x)))  # naive: the dominant component is 0
    array([  0., -40.])
    """
    return _normalise("log_softmax", k.log_softmax, x, axis, shift)


def _normalise(name: str, kernel: Any, x: Array, axis: Any, shift: Any) -> Array:
    xp = namespace(x=x, shift=None if _is_number(shift) else shift)
    if _autodiff.wanted(x, shift):  # gradients: our rule (stablenn._autodiff)
        return _autodiff.call(name, softmax if name == "softmax" else log_softmax, x, shift, axis=axis)  # type: ignore[no-any-return]
    xf = floating(xp, x, "x")
    shape = tuple(xf.shape)
    ndim = xf.ndim
    if ndim == 0:
        xf = xp.reshape(xf, (1,))
        out = _normalise(name, kernel, xf, 0 if axis in (0, -1) else axis, shift)
        return xp.reshape(out, ())
    ax = single_axis(axis, ndim)
    red = (ax,)
    out_shape = tuple(s for i, s in enumerate(shape) if i != ax)
    sl = None
    if shift is not None:
        sl = _shift(xp, shift, red, out_shape, keepdims_shape(shape, red), xf)
    if shape[ax] == 0:
        return xp.empty_like(xf)
    dtype = xf.dtype
    work = work_dtype(xp, xf)
    exact = work == dtype
    xl, _ = move_last(xp, xf, red)
    with quiet(xp):
        fast = None if sl is not None else _dispatch.lookup(name, backend_name(xf), dtype, xl)
        if fast is not None:
            y = fast(xl)
        elif sl is None and _plain_numpy(xp, xl):  # tiled NumPy kernels
            from ._kernels import _numpy_fast

            y = getattr(_numpy_fast, name)(xl)
        else:
            def run(xb: Array, sb: Array | None) -> Array:
                xw = xb if exact else xp.astype(xb, work)
                sw = None if sb is None else xp.astype(sb, work)
                y = kernel(xp, xw, sw, exact, all_finite(xp, xw))
                return y if exact else xp.astype(y, dtype)

            n = xl.shape[-1]
            if _blocking.wanted(xp, xl):
                rows = math.prod(xl.shape[:-1])
                y = _blocking.map_rows(run, [xp.reshape(xl, (rows, n)), None if sl is None else xp.reshape(sl, (rows, 1))], n)
                y = xp.reshape(y, xl.shape)
            else:
                y = run(xl, sl)
    return restore_axis(xp, y, ax, ndim)


def _logsumexp_last(
    xp: Namespace, xw: Array, bw: Array | None, sw: Array | None, exact: bool, kept: tuple[int, ...]
) -> tuple[Array, Array]:
    """The log-sum-exp kernel over the last axis, cache-blocked for large NumPy arrays."""

    def run(xb: Array, bb: Array | None, sb: Array | None) -> tuple[Array, Array]:
        clean = bb is None and all_finite(xp, xb)
        return k.logsumexp(xp, xb, bb, sb, exact, clean)

    if not _blocking.wanted(xp, xw):
        return run(xw, bw, sw)
    n = xw.shape[-1]
    rows = math.prod(kept)
    x2 = xp.reshape(xw, (rows, n))
    b2 = None if bw is None else xp.reshape(bw, (rows, n))
    s2 = None if sw is None else xp.reshape(sw, (rows, 1))
    if n <= _blocking.BLOCK or sw is not None or k.signed_path(xp, xw, bw, sw):
        # weights of both signs: whole rows (their terms are grouped by x before summing)
        res, sign = _blocking.map_rows(run, [x2, b2, s2], n)
    else:
        # one long axis: partial states of pieces along it, merged exactly (Problem 4's
        # identity with each piece's own shift)
        from ._kernels import mergeable as mg

        step = _blocking.BLOCK
        states = [
            mg.partial(xp, x2[:, j : j + step], None if b2 is None else b2[:, j : j + step], exact)
            for j in range(0, n, step)
        ]
        res, sign = mg.finish(xp, mg.merge(xp, mg.stack(xp, states)))
    return xp.reshape(res, kept), xp.reshape(sign, kept)


def _plain_numpy(xp: Namespace, x: Array) -> bool:
    """Large NumPy arrays without weights or shift take ``_kernels/_numpy_fast.py``."""
    if not compat.is_numpy_namespace(xp):
        return False
    from ._kernels import _numpy_fast

    return _numpy_fast.applies(x)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shift(
    xp: Namespace,
    shift: Any,
    red: tuple[int, ...],
    out_shape: tuple[int, ...],
    keep_shape: tuple[int, ...],
    like: Array,
) -> Array:
    """The caller's shift as an array of shape ``(*kept, 1)`` in ``like``'s dtype."""
    if isinstance(shift, bool) or not (_is_number(shift) or hasattr(shift, "shape")):
        raise msg.not_an_array("shift", shift)
    if _is_number(shift):
        if not math.isfinite(shift):
            raise msg.shift_not_finite(shift)
        a = xp.asarray(shift, dtype=like.dtype, device=device(like))
    else:
        a = xp.astype(floating(xp, shift, "shift"), like.dtype)
        finite_scalar_check(xp, a)
    shape = tuple(a.shape)
    reduced_ok = _broadcasts(shape, out_shape)
    keep_ok = len(shape) == len(keep_shape) and _broadcasts(shape, keep_shape)
    if keep_ok and not (reduced_ok and len(shape) <= len(out_shape)):
        full = xp.broadcast_to(a, keep_shape)
        full = xp.reshape(move_last(xp, full, red)[0], out_shape + (1,))
    elif reduced_ok:
        full = xp.broadcast_to(a, out_shape)
        full = xp.reshape(full, out_shape + (1,))
    else:
        raise msg.shift_shape(shape, out_shape, keep_shape)
    return full


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    for s, t in zip(reversed(shape), reversed(target)):
        if s not in (1, t):
            return False
    return True
