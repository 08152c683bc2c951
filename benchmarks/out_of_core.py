"""Log-sum-exp of an array larger than memory, on a LocalCluster (issue 8, item 4).

Usage::

    .venv/bin/python benchmarks/out_of_core.py [--n 4e9] [--chunk 1e7] [--zarr DIR]
                                               [--skip-zarr] [--skip-reference] [--keep]

The array: ``n`` float64 values ``3 * N(0, 1)`` (default 4 x 10^9: 32 GB, more than this
machine's memory), generated chunk by chunk from a seed by ``dask.array.random``, so it
never exists whole.  Then, on a ``dask.distributed.LocalCluster`` of 2 worker processes with
one thread each:

1. ``stablenn.logsumexp`` over the generated array: one tree reduction over the mergeable
   state (each chunk generated, reduced to its state, dropped);
2. the reference: the same chunks generated again and reduced in 80-bit long double
   (``benchmarks/_reference.py``, error bound printed), merged on the client;
3. where the disk under ``--zarr`` has room (``--skip-zarr`` to leave it out): the array
   written to an uncompressed chunked Zarr store, then ``stablenn.logsumexp`` over
   ``dask.array.from_zarr``, and the store deleted (``--keep`` keeps it).

Reported for each run: wall time, throughput (GB of float64 input per second), the peak
resident memory of each worker (sampled every 50 ms) and the error of the result in ULPs
against the reference.  Peak memory is bounded by a few chunks per worker, whatever ``n``.
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cloudpickle
import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _memory  # noqa: E402
import _reference  # noqa: E402

import stablenn as snn  # noqa: E402

cloudpickle.register_pickle_by_value(_reference)  # the workers run its chunk function

SEED = 20261126
SCALE = 3.0


def generated(n: int, chunk: int) -> da.Array:
    return da.random.default_rng(SEED).normal(size=n, chunks=chunk) * SCALE


def _ref_block(x: np.ndarray) -> np.ndarray:
    m, s, gap = _reference.chunk_state(x)
    return np.array([m, s, gap], dtype=np.longdouble)


def reference(x: da.Array, client: Client) -> tuple[float, float, np.longdouble]:
    parts = da.map_blocks(_ref_block, x, chunks=((3,) * x.numblocks[0],), dtype=np.longdouble)
    flat = np.asarray(client.compute(parts).result()).reshape(-1, 3)
    states = [(row[0], row[1], float(row[2])) for row in flat]
    return _reference.merge(states, x.shape[0])


def report(name: str, seconds: float, n: int, peak: dict[str, int], value: float, ref: np.longdouble | None) -> None:
    gb = n * 8 / 1e9
    workers = ", ".join(_memory.mib(v) for v in peak.values())
    err = "" if ref is None else f", error {_reference.ulps(value, ref):.2f} ULP"
    print(f"{name}: {seconds:.1f} s, {gb / seconds:.2f} GB/s, peak worker RSS [{workers}], result {value!r}{err}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=4e9)
    parser.add_argument("--chunk", type=float, default=1e7)
    parser.add_argument("--zarr", default=None, help="directory for the Zarr store (default: a temporary one under /work)")
    parser.add_argument("--skip-zarr", action="store_true")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the Zarr store")
    args = parser.parse_args(argv)
    n, chunk = int(args.n), int(args.chunk)
    gb = n * 8 / 1e9
    print(f"# {platform.machine()}, numpy {np.__version__}, dask {dask.__version__}, stablenn {snn.__version__}")
    print(f"# n = {n:.3g} float64 = {gb:.1f} GB in {math.ceil(n / chunk)} chunks of {chunk:.3g} ({chunk * 8 / 2**20:.0f} MiB)")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(
        cluster
    ) as client:
        x = generated(n, chunk)
        _, _, base, _ = _memory.measure(lambda: None, client)
        print(f"# idle worker RSS [{', '.join(_memory.mib(v) for v in base.values())}]", flush=True)

        lse = snn.logsumexp(x)
        value, sec, _, peak = _memory.measure(lambda: float(client.compute(lse).result()), client)
        ref = None
        if not args.skip_reference:
            t0 = time.perf_counter()
            _, bound, ref = reference(generated(n, chunk), client)
            print(
                f"reference (long double, same chunks regenerated): {time.perf_counter() - t0:.1f} s, "
                f"{float(ref)!r}, error bound {bound:.2e} = {bound / np.spacing(abs(float(ref))):.4f} ULP",
                flush=True,
            )
        report("stablenn.logsumexp, generated chunks", sec, n, peak, value, ref)

        if args.skip_zarr:
            return 0
        root = Path(args.zarr) if args.zarr else Path(tempfile.mkdtemp(prefix="stablenn-ooc-", dir="/work"))
        root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(root).free
        if free < 1.2 * n * 8:
            print(f"zarr: skipped, {free / 1e9:.0f} GB free under {root}, {1.2 * gb:.0f} GB needed")
            return 0
        import zarr

        path = root / "x.zarr"
        try:
            store = zarr.create_array(str(path), shape=(n,), chunks=(chunk,), dtype="f8", compressors=None, overwrite=True)
            t0 = time.perf_counter()
            da.to_zarr(generated(n, chunk), store)
            wsec = time.perf_counter() - t0
            print(f"zarr write (uncompressed, {gb:.1f} GB): {wsec:.1f} s, {gb / wsec:.2f} GB/s", flush=True)
            z = da.from_zarr(str(path))
            lse_z = snn.logsumexp(z)
            value_z, sec_z, _, peak_z = _memory.measure(lambda: float(client.compute(lse_z).result()), client)
            report("stablenn.logsumexp, Zarr on disk", sec_z, n, peak_z, value_z, ref)
            print(f"same result as the generated run: {value_z == value}")
        finally:
            if not args.keep:
                shutil.rmtree(path, ignore_errors=True)
                if not args.zarr:
                    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
