"""Fused CPU kernels for NumPy arrays (Numba), chosen by the dispatch table.

``_jit`` holds every compiled function: the vectorisable ``exp`` and ``log1p`` with their
error-free corrections, and the one-pass reductions, losses and elementwise kernels built
on them.  ``_driver`` is the NumPy side: it lays out the arrays, picks the chunking, runs
the kernels on both cores and sends the rare slices holding ``+inf`` or NaN to the plain
array-API kernels, so that special values are exactly the plain path's.

Importing this package imports Numba; ``stablenn._fast._cpu_entries`` only names it.
"""

from __future__ import annotations

__all__: list[str] = []
