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
import os
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


def _forget_pool() -> None:  # a forked child has the pool object but none of its threads
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _pool() -> Any:
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="stablenn"))
    return _POOL[0]


def run_each(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[fn(item) for item in items]`` on all cores, results in the order of ``items``.

    The calling thread works too; each worker takes the next item as it becomes free
    (dynamic scheduling: a core that another process slows down takes fewer tiles).  NumPy
    releases the GIL inside its loops, so tiles of a few hundred KiB run in parallel.  The
    caller's floating-point error state (``np.errstate``, per thread) is applied in every
    worker.
    """
    import itertools

    import numpy as np

    workers = min(_threads(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    results: list[Any] = [None] * len(items)
    counter = itertools.count()  # next() on a count is atomic under the GIL
    err = np.geterr()

    def work() -> None:
        with np.errstate(**err):
            while True:
                i = next(counter)
                if i >= len(items):
                    return
                results[i] = fn(items[i])

    pool = _pool()
    futures = [pool.submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:
        for f in futures:
            f.result()
    return results


def _run(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run the block tasks on all cores (NumPy releases the GIL inside its loops), in order."""
    return run_each(lambda t: t(), tasks)
