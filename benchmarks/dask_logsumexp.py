"""Dask log-sum-exp: stablenn's one tree reduction against Dask's own two passes and SciPy.

Usage::

    .venv/bin/python benchmarks/dask_logsumexp.py [--n 2e8] [--chunk 1e7] [--repeat 3]
                                                   [--source memory|generated]

Same data for every implementation, in the same run (float64, ``3 * N(0, 1)`` from a fixed
seed):

- ``stablenn dask``: ``stablenn.logsumexp(x)`` on the Dask array: each chunk is read once
  into a partial state (largest term, double-double sum), the states merged in a tree;
- ``dask two-pass``: Dask's own ``log(exp(x - m).sum()) + m`` with ``m = x.max()``, the
  textbook shift: a max pass, then an exp-sum pass;
- ``scipy``: ``scipy.special.logsumexp`` on the whole array in memory;
- ``stablenn numpy``: ``stablenn.logsumexp`` on the whole array in memory, for reference.

``--source memory`` (default) wraps one NumPy array (``da.from_array``); ``--source
generated`` builds the Dask array chunk by chunk from a seed (``dask.array.random``), so the
whole array exists only for SciPy, which gets the same values computed once.  With
generated data the two-pass form must hold every chunk until the maximum is known (or
generate them twice); the one-pass form holds a few.

Both Dask forms run on the threaded scheduler with 2 threads.  Times are medians over the
repeats (implementations interleaved); peak memory is the largest resident-set growth of
this process during a call (sampled every 20 ms); error is in float64 ULPs against an
80-bit long-double reference over the same chunks, whose own error bound is printed
(``benchmarks/_reference.py``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import scipy.special

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _memory  # noqa: E402
import _reference  # noqa: E402

import stablenn as snn  # noqa: E402

SEED = 20261126
SCALE = 3.0


def _two_pass(x: da.Array) -> da.Array:
    m = x.max()
    return da.log(da.exp(x - m).sum()) + m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=2e8, help="number of float64 values (default 2e8)")
    parser.add_argument("--chunk", type=float, default=1e7, help="chunk length (default 1e7)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", choices=("memory", "generated"), default="memory")
    args = parser.parse_args(argv)
    n, chunk = int(args.n), int(args.chunk)
    dask.config.set(scheduler="threads", num_workers=2)

    if args.source == "memory":
        x_np = np.random.default_rng(SEED).normal(size=n) * SCALE
        x_da = da.from_array(x_np, chunks=chunk)
    else:
        x_da = da.random.default_rng(SEED).normal(size=n, chunks=chunk) * SCALE
        x_np = None

    impls: dict[str, Callable[[], float]] = {
        "stablenn dask (1 pass)": lambda: float(snn.logsumexp(x_da).compute()),
        "dask two-pass": lambda: float(_two_pass(x_da).compute()),
    }
    dask_only = dict(impls)
    times: dict[str, list[float]] = {k: [] for k in impls}
    peaks: dict[str, int] = dict.fromkeys(impls, 0)
    values: dict[str, float] = {}

    def run(name: str, fn: Callable[[], float]) -> None:
        out, sec, base, peak = _memory.measure(fn)
        times[name].append(sec)
        peaks[name] = max(peaks[name], peak["process"] - base["process"])
        values[name] = out

    for _ in range(args.repeat):  # the Dask forms first, before the whole array exists
        for name, fn in dask_only.items():
            run(name, fn)
    if x_np is None:
        x_np = x_da.compute()
    more = {
        "scipy (in memory)": lambda: float(scipy.special.logsumexp(x_np)),
        "stablenn numpy (in memory)": lambda: float(snn.logsumexp(x_np)),
    }
    times.update({k: [] for k in more})
    peaks.update(dict.fromkeys(more, 0))
    for _ in range(args.repeat):
        for name, fn in more.items():
            run(name, fn)

    states = (_reference.chunk_state(x_np[i : i + chunk]) for i in range(0, n, chunk))
    _, bound, ref = _reference.merge(states, n)

    gb = n * 8 / 1e9
    base = statistics.median(times["stablenn dask (1 pass)"])
    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, dask {dask.__version__}, "
          f"scipy {scipy.__version__}, stablenn {snn.__version__}")
    print(f"# n = {n:.3g} float64 ({gb:.2f} GB), chunks of {chunk:.3g}, source = {args.source}, "
          f"median of {args.repeat}, threaded scheduler with 2 threads")
    print(f"# reference: long double, bound {bound:.2e} = {bound / np.spacing(abs(float(ref))):.4f} ULP of the result")
    print(f"{'implementation':28s} {'time s':>8s} {'GB/s':>6s} {'vs stablenn':>11s} {'peak extra':>11s} {'error ULP':>10s}")
    for name in times:
        t = statistics.median(times[name])
        print(
            f"{name:28s} {t:8.3f} {gb / t:6.2f} {t / base:11.2f} {_memory.mib(peaks[name]):>11s} "
            f"{_reference.ulps(values[name], ref):10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
