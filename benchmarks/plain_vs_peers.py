"""Plain array-API path of stablenn against SciPy and PyTorch (CPU) on the same data.

Usage: python benchmarks/plain_vs_peers.py [--repeat N] [--quick] [--only WORD]

Times logsumexp, softmax, log_softmax, binary and softmax cross-entropy with the fast paths
switched off (``stablenn._dispatch.plain_only``), on 1-D 10^7 and rows 4096 x 4096, float32
and float64, interleaving the implementations, and prints the median time of each and the
ratio of stablenn to each peer (below 1: stablenn is faster).  PyTorch runs with 2 threads.
The load average is printed before and after: on a shared machine every time grows with the
load, and the interleaving keeps the ratios comparable.  ``--only softmax`` keeps the
workloads whose label contains that word.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np


def _timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def workloads(quick: bool):
    n1 = 10**5 if quick else 10**7
    rows = (64, 512) if quick else (4096, 4096)
    rng = np.random.default_rng(0)
    for dtype in ("float32", "float64"):
        v = (rng.standard_normal(n1) * 10).astype(dtype)
        m = (rng.standard_normal(rows) * 10).astype(dtype)
        labels = rng.uniform(size=rows).astype(dtype)
        classes = rng.integers(0, rows[1], size=rows[0])
        yield f"logsumexp 1-D {n1:.0e} {dtype}", "logsumexp", (v,), {}
        yield f"logsumexp rows {rows[0]}x{rows[1]} {dtype}", "logsumexp", (m,), {"axis": -1}
        yield f"softmax rows {rows[0]}x{rows[1]} {dtype}", "softmax", (m,), {"axis": -1}
        yield f"log_softmax rows {rows[0]}x{rows[1]} {dtype}", "log_softmax", (m,), {"axis": -1}
        yield f"bce {rows[0]}x{rows[1]} {dtype}", "bce", (m, labels), {}
        yield f"cross_entropy {rows[0]}x{rows[1]} {dtype}", "ce", (m, classes), {}


def implementations(kind: str):
    import scipy.special as sp
    import torch
    import torch.nn.functional as F

    import stablenn as snn
    from stablenn import _dispatch

    def plain(f):
        def run(*a, **k):
            with _dispatch.plain_only():
                return f(*a, **k)

        return run

    ours = {
        "logsumexp": plain(snn.logsumexp),
        "softmax": plain(snn.softmax),
        "log_softmax": plain(snn.log_softmax),
        "bce": plain(lambda x, y: snn.binary_cross_entropy_with_logits(x, y)),
        "ce": plain(lambda x, t: snn.cross_entropy_with_logits(x, t)),
    }[kind]
    peers = {}
    if kind in ("logsumexp", "softmax", "log_softmax"):
        peers["scipy"] = {"logsumexp": sp.logsumexp, "softmax": sp.softmax, "log_softmax": sp.log_softmax}[kind]
    tf = {
        "logsumexp": lambda x, axis=None: torch.logsumexp(x, dim=tuple(range(x.ndim)) if axis is None else axis),
        "softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
        "log_softmax": lambda x, axis=-1: F.log_softmax(x, dim=axis),
        "bce": lambda x, y: F.binary_cross_entropy_with_logits(x, y),
        "ce": lambda x, t: F.cross_entropy(x, t),
    }[kind]
    peers["torch"] = tf
    return ours, peers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="run only workloads whose label contains this")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores; "
          f"numpy {np.__version__}, torch {torch.__version__}; median of {args.repeat}")
    print(f"load average at start: {_load()}")
    print(f"{'workload':<40} {'stablenn ms':>12} {'scipy ms':>10} {'torch ms':>10} {'/scipy':>8} {'/torch':>8}")
    for label, kind, arrays, kw in workloads(args.quick):
        if args.only not in label:
            continue
        ours, peers = implementations(kind)
        targs = tuple(torch.from_numpy(a) for a in arrays)
        runs: dict[str, list[float]] = {"stablenn": [], **{p: [] for p in peers}}
        calls = {"stablenn": lambda: ours(*arrays, **kw)}
        for name, f in peers.items():
            src = targs if name == "torch" else arrays
            calls[name] = (lambda f=f, src=src: f(*src, **kw))
        for name, fn in calls.items():
            fn()  # warm-up
        for _ in range(args.repeat):  # interleaved
            for name, fn in calls.items():
                t0 = time.perf_counter()
                fn()
                runs[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in runs.items()}
        ours_ms, torch_ms, sc = med["stablenn"], med["torch"], med.get("scipy")
        sc_text = "-" if sc is None else f"{sc:.1f}"
        ratio_sc = "-" if sc is None else f"{ours_ms / sc:.2f}"
        print(f"{label:<40} {ours_ms:>12.1f} {sc_text:>10} {torch_ms:>10.1f} {ratio_sc:>8} {ours_ms / torch_ms:>8.2f}")
    print(f"load average at end: {_load()}")


def _load() -> str:
    import os

    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


if __name__ == "__main__":
    main()
