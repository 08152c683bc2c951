"""Dispatch entries for Dask arrays (the graphs live in ``stablenn._fast.dask``).

Registering imports nothing: each loader imports Dask the first time a Dask array reaches
the function.  The entries replace the generic array-API path, which on Dask builds a graph
of several passes (a max, then an exp-sum) and a pairwise double-double tree of slicing
steps; the entries read each chunk once (twice for softmax) and meet the same error budgets
because they evaluate the same kernels on each chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._dispatch import register

__all__: list[str] = []

# float16 (and bfloat16 where a chunk type has it) are computed in float64 and rounded once
_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _loader(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        from .dask import _graphs

        return getattr(_graphs, name)

    return load


register("logsumexp", "dask", _DTYPES, _loader("logsumexp"))
register("softmax", "dask", _DTYPES, _loader("softmax"))
register("log_softmax", "dask", _DTYPES, _loader("log_softmax"))
register("binary_cross_entropy_with_logits", "dask", _DTYPES, _loader("binary_cross_entropy"))
register("cross_entropy_with_logits", "dask", _DTYPES, _loader("cross_entropy"))
register("cross_entropy_with_logits_probs", "dask", _DTYPES, _loader("cross_entropy_probs"))
