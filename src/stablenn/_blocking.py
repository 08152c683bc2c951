"""Cache blocking of the plain path for NumPy arrays.

The kernels are chains of whole-array operations: on a large array each operation streams
the data from memory and writes a full-size temporary.  Run on blocks of about 16 Ki
elements instead, the temporaries stay in the L2 cache and each operation runs at compute
speed.  Rows are independent, so blocks of rows give exactly the same numbers as the whole
array; a single long reduced axis is cut into pieces whose partial log-sum-exp states merge
exactly as in ``_kernels/mergeable.py``.  Used for NumPy only (``xp`` is NumPy's namespace
and the array is large); every other backend runs the kernels whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat as compat

from ._namespace import Array, Namespace

__all__: list[str] = []

BLOCK = 1 << 14  # elements per block: 128 KiB of float64 per temporary


def wanted(xp: Namespace, x: Array) -> bool:
    return bool(compat.is_numpy_namespace(xp)) and math.prod(x.shape) >= 4 * BLOCK


def map_rows(fn: Callable[..., Any], arrays: list[Array | None], n: int) -> Any:
    """``fn`` over blocks of rows of 2-D arrays sharing their first axis; results joined.

    ``fn`` returns an array or a tuple of arrays whose first axis is the rows.
    """
    import numpy as np

    rows = next(a for a in arrays if a is not None).shape[0]
    step = max(1, BLOCK // max(n, 1))
    parts = _run([lambda i=i: fn(*[None if a is None else a[i : i + step] for a in arrays]) for i in range(0, rows, step)])
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))
    return np.concatenate(parts)


def flat(xp: Namespace, fn: Callable[..., Array], arrays: list[Array | None]) -> Array:
    """An elementwise ``fn`` over blocks of the flattened arrays (all of one shape)."""
    shape = next(a for a in arrays if a is not None).shape
    size = math.prod(shape)
    flat_arrays = [None if a is None else xp.reshape(a, (size, 1)) for a in arrays]
    step_rows = BLOCK
    import numpy as np

    parts = _run([lambda i=i: fn(*[None if a is None else a[i : i + step_rows, 0] for a in flat_arrays]) for i in range(0, size, step_rows)])
    if isinstance(parts[0], tuple):
        return tuple(np.reshape(np.concatenate([p[k] for p in parts]), shape) for k in range(len(parts[0])))
    return np.reshape(np.concatenate(parts), shape)


def flat_parts(fn: Callable[..., Any], arrays: list[Array | None]) -> Any:
    """``fn`` over blocks of the flattened arrays, its tuple results stacked along axis 0
    (partial sums of a reduction, one per block)."""
    import numpy as np

    shape = next(a for a in arrays if a is not None).shape
    size = math.prod(shape)
    flat_arrays = [None if a is None else np.reshape(a, (size,)) for a in arrays]
    parts = _run([lambda i=i: fn(*[None if a is None else a[i : i + BLOCK] for a in flat_arrays]) for i in range(0, size, BLOCK)])
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))


_POOL: list[Any] = []


def _threads() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _run(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run the block tasks on all cores (NumPy releases the GIL inside its loops), in order.

    Each thread takes a contiguous run of blocks, so results come back in block order.
    """
    workers = min(_threads(), len(tasks))
    if workers <= 1:
        return [t() for t in tasks]
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="stablenn"))
    pool = _POOL[0]
    per = -(-len(tasks) // workers)
    runs = [tasks[i : i + per] for i in range(0, len(tasks), per)]
    futures = [pool.submit(lambda run=run: [t() for t in run]) for run in runs]
    return [r for f in futures for r in f.result()]
