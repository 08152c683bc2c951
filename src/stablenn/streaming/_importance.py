"""Self-normalised importance sampling: normalised weights, normaliser and ESS from log-weights."""

from __future__ import annotations

from typing import Any, NamedTuple

from .._dtypes import floating, work_dtype
from .._kernels import mergeable as mg
from .._namespace import Array, backend_name, namespace, quiet
from .._validation import move_last, single_axis
from ..reductions import softmax

__all__ = ["ImportanceWeights", "importance_weights"]


class ImportanceWeights(NamedTuple):
    """What :func:`importance_weights` returns."""

    weights: Array
    """The normalised weights :math:`\\bar w_i = w_i / \\sum_j w_j`, shape of the input."""
    log_normalizer: Array
    """:math:`\\log \\sum_i w_i`, the input's shape without ``axis``."""
    ess: Array
    """Kish's effective sample size :math:`(\\sum_i w_i)^2 / \\sum_i w_i^2`, in :math:`[1, n]`."""


def importance_weights(log_weights: Array, /, *, axis: int = -1) -> ImportanceWeights:
    r"""Normalised importance weights, their log-normaliser and effective sample size.

    Self-normalised importance sampling estimates :math:`E_p[f] \approx \sum_i \bar w_i
    f(x_i)` from samples :math:`x_i \sim q` with weights :math:`w_i = p(x_i) / q(x_i)`
    known only up to a constant and only through their logarithms, which routinely lie
    far below :math:`\log(\text{smallest float})` or above :math:`\log(\text{largest})`.

    .. math:: \bar w_i = \frac{e^{\ell_i}}{\sum_j e^{\ell_j}},\qquad
              \log Z = \operatorname{LSE}(\ell),\qquad
              \mathrm{ESS} = e^{2\operatorname{LSE}(\ell) - \operatorname{LSE}(2\ell)}
              = \frac{(\sum_i w_i)^2}{\sum_i w_i^2}

    Parameters
    ----------
    log_weights : array
        Log-weights :math:`\ell_i` (any library; a Dask array gives lazy results computed
        by tree reductions, so it may be larger than memory).
    axis : int, optional
        The axis holding the samples (default -1); other axes are independent problems.

    Returns
    -------
    ImportanceWeights
        ``weights`` (the shape and dtype of ``log_weights``), ``log_normalizer`` and ``ess``
        (the shape without ``axis``).  The estimate of the target's normalising constant
        relative to the proposal's, :math:`\hat Z = \frac1n \sum_i w_i`, is
        ``log_normalizer - log(n)``.

    Raises
    ------
    TypeError
        If ``log_weights`` is not a real array, or ``axis`` is not an int.
    IndexError
        If ``axis`` is out of range.

    Notes
    -----
    - If a log-weight is NaN, all three results of its slice are NaN.
    - If :math:`k` log-weights are ``+inf``, they share the weight (:math:`1/k` each), the
      log-normaliser is ``+inf`` and the ESS is :math:`k`.
    - If all log-weights are ``-inf``, the weights are 0, the log-normaliser ``-inf`` and the
      ESS 0: no sample carries weight.

    The weights are :func:`stablenn.softmax` and the log-normaliser
    :func:`stablenn.logsumexp` (each within its error budget).  The ESS is not formed as the
    exponential of a difference of two large logarithms, which would lose
    :math:`\epsilon\,|\operatorname{LSE}(\ell)|` in relative accuracy: the log-sum-exp state
    of :math:`2\ell` has exactly twice the shift of that of :math:`\ell`, so the ESS is the
    ratio :math:`S_1^2 / S_2` of their shifted sums, formed in double-double; its error is a
    few ULP (each term of :math:`S_1` and :math:`S_2` carries one rounding of ``exp``).

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.streaming import importance_weights
    >>> log_w = np.array([-1000.0, -1000.0, -1001.0])
    >>> with np.errstate(invalid="ignore"):
    ...     np.exp(log_w) / np.exp(log_w).sum()  # naive: every weight underflows, 0 / 0
    array([nan, nan, nan])
    >>> result = importance_weights(log_w)
    >>> result.weights
    array([0.4223188, 0.4223188, 0.1553624])
    >>> float(result.log_normalizer)  # -1000 + log(2 + 1/e)
    -999.1380051959418
    >>> float(result.ess)  # (2 + 1/e)^2 / (2 + 1/e^2)
    2.6257483271778526
    """
    xp = namespace(log_weights=log_weights)
    lw = floating(xp, log_weights, "log_weights")
    if lw.ndim == 0:
        flat = importance_weights(xp.reshape(lw, (1,)), axis=0)
        return ImportanceWeights(xp.reshape(flat.weights, ()), flat.log_normalizer, flat.ess)
    ax = single_axis(axis, lw.ndim)
    weights = softmax(lw, axis=ax)
    dtype = lw.dtype
    xl, _ = move_last(xp, lw, (ax,))
    st1, st2 = _states(xp, xl)
    with quiet(xp):
        log_z, _ = mg.finish(xp, st1)
        ess = mg.effective_sample_size(xp, st1, st2)
        log_z = xp.astype(log_z, dtype)
        ess = xp.astype(ess, dtype)
    return ImportanceWeights(weights, log_z, ess)


def _states(xp: Any, xl: Array) -> tuple[mg.State, mg.State]:
    """Log-sum-exp states of ``xl`` and ``2 xl`` over the last axis (doubling is exact)."""
    if backend_name(xl) == "dask":
        from .._fast.dask import _graphs

        return _graphs.unpack_state(_graphs.state(xl)), _graphs.unpack_state(_graphs.state(2.0 * xl))
    work = work_dtype(xp, xl)
    exact = work == xl.dtype
    xw = xl if exact else xp.astype(xl, work)
    if xw.shape[-1] == 0:
        empty = mg.empty(xp, tuple(xw.shape[:-1]), xw)
        return empty, empty
    with quiet(xp):
        return mg.partial(xp, xw, None, exact), mg.partial(xp, 2.0 * xw, None, exact)
