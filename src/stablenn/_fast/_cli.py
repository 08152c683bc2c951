"""``stablenn bench``: stablenn's CPU paths against every installed peer, on the same data.

Each workload of issue 7 is run for stablenn (its dispatch: the fused CPU kernels where the
table takes them), SciPy, the NumPy textbook formulas, PyTorch (2 threads) and JAX (jit,
CPU), on the same arrays in one process.  The implementations are interleaved (one call
of each per round) after one warm-up call each, so that the machine's drift hits all of
them alike; the median, min and max of at least 7 rounds are reported, with throughput
(bytes read and written per second), the ratio to the fastest peer, the ratio to the
floor, and the peak extra memory of one call.

Peak extra memory is read from the kernel, not from Python: ``/proc/self/clear_refs`` is
written with ``5`` to reset the process's peak resident set size (``VmHWM``) to the current
one, the call runs, and the new ``VmHWM`` minus the resident size before the call is the
peak extra memory (result included).  That sees every allocation that touches memory,
NumPy, Numba, PyTorch and XLA alike (``tracemalloc`` sees only Python's).  glibc's dynamic
mmap threshold is pinned first (``mallopt``), so that freed blocks go back to the system
instead of hiding the next call's allocations.  On systems without ``clear_refs`` the
column is empty.

``--first-call`` starts fresh processes to time the first call of each family of fast
paths: with an empty Numba cache (compilation) and again with the cache it left (loading).

Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["main", "register", "run"]

# ------------------------------------------------------------------ workloads

# The floors of issue 7 for its full sizes, in milliseconds: max(bytes moved / memory
# bandwidth, transcendental calls / vectorised throughput) over both cores of the 2-core
# AVX-512 machine the project runs on (27 GB/s read, 18 GB/s write).  Other sizes scale by
# the number of elements.
FLOORS_MS: dict[str, float] = {
    "logsumexp 1-D float64": 32.0,
    "logsumexp 1-D float32": 13.0,
    "logsumexp rows float32": 19.0,
    "softmax rows float32": 45.0,
    "log_softmax rows float32": 42.0,
    "logsumexp rows float64": 7.0,
    "softmax rows float64": 10.0,
    "log_softmax rows float64": 11.0,
    "sigmoid float64": 32.0,
    "sigmoid float32": 16.0,
    "bce float64": 47.0,
    "bce float32": 14.0,
    "cross_entropy float32": 39.0,
}

_FULL = {
    "1d": 10**8,
    "rows32": (4096, 32768),
    "rows64": (2048, 8192),
    "elementwise": 5 * 10**7,
    "ce": (8192, 32000),
}
_QUICK = {
    "1d": 1 << 18,
    "rows32": (64, 4096),
    "rows64": (64, 2048),
    "elementwise": 1 << 18,
    "ce": (256, 1000),
}


@dataclass
class Workload:
    name: str
    kind: str  # logsumexp, softmax, log_softmax, sigmoid, bce, cross_entropy
    shape: tuple[int, ...]
    dtype: str
    full_elements: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


def workloads(quick: bool) -> list[Workload]:
    size = _QUICK if quick else _FULL
    full = {k: math.prod(v) if isinstance(v, tuple) else v for k, v in _FULL.items()}

    def shape(key: str) -> tuple[int, ...]:
        v = size[key]
        return v if isinstance(v, tuple) else (v,)

    out = [
        Workload("logsumexp 1-D float64", "logsumexp", shape("1d"), "float64", full["1d"]),
        Workload("logsumexp 1-D float32", "logsumexp", shape("1d"), "float32", full["1d"]),
    ]
    for kind in ("logsumexp", "softmax", "log_softmax"):
        out.append(Workload(f"{kind} rows float32", kind, shape("rows32"), "float32", full["rows32"]))
    for kind in ("logsumexp", "softmax", "log_softmax"):
        out.append(Workload(f"{kind} rows float64", kind, shape("rows64"), "float64", full["rows64"]))
    for dt in ("float64", "float32"):
        out.append(Workload(f"sigmoid {dt}", "sigmoid", shape("elementwise"), dt, full["elementwise"]))
    for dt in ("float64", "float32"):
        out.append(Workload(f"bce {dt}", "bce", shape("elementwise"), dt, full["elementwise"]))
    out.append(Workload("cross_entropy float32", "cross_entropy", shape("ce"), "float32", full["ce"]))
    return out


def _data(w: Workload, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(w.shape, dtype=np.float64 if w.dtype == "float64" else np.float32)
    x *= 4
    data: dict[str, Any] = {"x": x}
    if w.kind == "bce":
        data["y"] = rng.random(w.shape, dtype=x.dtype)
    if w.kind == "cross_entropy":
        data["t"] = rng.integers(0, w.shape[-1], size=w.shape[0])
    return data


def _bytes_moved(w: Workload) -> int:
    item = 8 if w.dtype == "float64" else 4
    n = w.elements
    if w.kind in ("softmax", "log_softmax", "sigmoid"):
        return 2 * n * item  # read x, write the result
    if w.kind == "bce":
        return 2 * n * item  # read logits and labels
    return n * item


# ------------------------------------------------------------------ implementations


def _stablenn(w: Workload, d: dict[str, Any]) -> Callable[[], Any]:
    import stablenn as snn

    x = d["x"]
    if w.kind == "logsumexp":
        return lambda: snn.logsumexp(x, axis=-1)
    if w.kind == "softmax":
        return lambda: snn.softmax(x, axis=-1)
    if w.kind == "log_softmax":
        return lambda: snn.log_softmax(x, axis=-1)
    if w.kind == "sigmoid":
        return lambda: snn.sigmoid(x)
    if w.kind == "bce":
        y = d["y"]
        return lambda: snn.binary_cross_entropy_with_logits(x, y)
    t = d["t"]
    return lambda: snn.cross_entropy_with_logits(x, t)


def _scipy(w: Workload, d: dict[str, Any]) -> Callable[[], Any]:
    import numpy as np
    from scipy import special

    x = d["x"]
    if w.kind == "logsumexp":
        return lambda: special.logsumexp(x, axis=-1)
    if w.kind == "softmax":
        return lambda: special.softmax(x, axis=-1)
    if w.kind == "log_softmax":
        return lambda: special.log_softmax(x, axis=-1)
    if w.kind == "sigmoid":
        return lambda: special.expit(x)
    if w.kind == "bce":
        y = d["y"]
        # -[y log sigma(x) + (1 - y) log sigma(-x)] with SciPy's log_expit
        return lambda: np.mean(-(y * special.log_expit(x) + (1 - y) * special.log_expit(-x)))
    t = d["t"]
    rows = np.arange(x.shape[0])
    return lambda: -np.mean(special.log_softmax(x, axis=-1)[rows, t])


def _textbook(w: Workload, d: dict[str, Any]) -> Callable[[], Any]:
    import numpy as np

    x = d["x"]

    def lse() -> Any:
        m = np.max(x, axis=-1, keepdims=True)
        return (m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))[..., 0]

    if w.kind == "logsumexp":
        return lse
    if w.kind == "softmax":

        def softmax() -> Any:
            e = np.exp(x - np.max(x, axis=-1, keepdims=True))
            return e / np.sum(e, axis=-1, keepdims=True)

        return softmax
    if w.kind == "log_softmax":
        return lambda: x - lse()[..., None]
    if w.kind == "sigmoid":
        return lambda: 1 / (1 + np.exp(-x))
    if w.kind == "bce":
        y = d["y"]
        # the sheet's form: max(x, 0) - x y + log1p(e^-|x|)
        return lambda: np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))
    t = d["t"]
    rows = np.arange(x.shape[0])
    return lambda: np.mean(lse() - x[rows, t])


def _torch(w: Workload, d: dict[str, Any]) -> Callable[[], Any]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    x = torch.from_numpy(d["x"])  # shares the NumPy array's memory
    if w.kind == "logsumexp":
        return lambda: torch.logsumexp(x, dim=-1)
    if w.kind == "softmax":
        return lambda: torch.softmax(x, dim=-1)
    if w.kind == "log_softmax":
        return lambda: torch.log_softmax(x, dim=-1)
    if w.kind == "sigmoid":
        return lambda: torch.sigmoid(x)
    if w.kind == "bce":
        y = torch.from_numpy(d["y"])
        return lambda: F.binary_cross_entropy_with_logits(x, y)
    t = torch.from_numpy(d["t"])
    return lambda: F.cross_entropy(x, t)


def _jax(w: Workload, d: dict[str, Any]) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(d["x"])
    if w.kind == "logsumexp":
        f = jax.jit(lambda a: jax.nn.logsumexp(a, axis=-1))
    elif w.kind == "softmax":
        f = jax.jit(lambda a: jax.nn.softmax(a, axis=-1))
    elif w.kind == "log_softmax":
        f = jax.jit(lambda a: jax.nn.log_softmax(a, axis=-1))
    elif w.kind == "sigmoid":
        f = jax.jit(jax.nn.sigmoid)
    elif w.kind == "bce":
        y = jnp.asarray(d["y"])
        g = jax.jit(lambda a, b: jnp.mean(-(b * jax.nn.log_sigmoid(a) + (1 - b) * jax.nn.log_sigmoid(-a))))
        return lambda: g(x, y).block_until_ready()
    else:
        t = jnp.asarray(d["t"])
        g = jax.jit(lambda a, i: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a, axis=-1), i[:, None], axis=-1)))
        return lambda: g(x, t).block_until_ready()
    return lambda: f(x).block_until_ready()


PEERS: dict[str, Callable[[Workload, dict[str, Any]], Callable[[], Any]]] = {
    "scipy": _scipy,
    "numpy textbook": _textbook,
    "pytorch": _torch,
    "jax jit": _jax,
}
_PEER_OPTIONS = {"scipy": "scipy", "numpy": "numpy textbook", "torch": "pytorch", "jax": "jax jit"}


# ------------------------------------------------------------------ memory


def _pin_malloc() -> None:
    """Fix glibc's mmap threshold at 128 KiB: large blocks are mapped and unmapped, so a
    call's allocations show in the resident size (no-op off glibc)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_extra_bytes(fn: Callable[[], Any]) -> float | None:
    """Peak resident memory above the current one during ``fn()`` (its result included)."""
    import gc

    gc.collect()
    before = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident size
    except OSError:
        return None
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    if before is None or peak is None:
        return None
    return max(0.0, (peak - before) * 1024.0)


# ------------------------------------------------------------------ measuring


@dataclass
class Row:
    workload: str
    implementation: str
    shape: tuple[int, ...]
    dtype: str
    median_ms: float
    min_ms: float
    max_ms: float
    gb_per_s: float
    vs_fastest_peer: float | None
    vs_floor: float
    peak_extra_mib: float | None
    fast_path: bool = False
    times_ms: list[float] = field(default_factory=list)


def _fast_path_taken(w: Workload, d: dict[str, Any]) -> bool:
    from stablenn import _dispatch

    x = d["x"]
    names = {"bce": "binary_cross_entropy_with_logits", "cross_entropy": "cross_entropy_with_logits"}
    name = names.get(w.kind, w.kind)
    args: tuple[Any, ...]
    if w.kind == "logsumexp":
        args = (x, None, False)
    elif w.kind == "bce":
        args = (x, d["y"], None, None, "mean")
    elif w.kind == "cross_entropy":
        args = (x, d["t"], None, None, 0.0, "mean")
    else:
        args = (x,)
    fn = _dispatch.lookup(name, "numpy", x.dtype, *args)
    return fn is not None and getattr(fn, "__module__", "").startswith("stablenn._fast.cpu")


def measure(w: Workload, peers: Sequence[str], repeat: int, memory: bool, log: Callable[[str], None]) -> list[Row]:
    d = _data(w)
    impls: dict[str, Callable[[], Any]] = {"stablenn": _stablenn(w, d)}
    for name in peers:
        impls[name] = PEERS[name](w, d)
    times: dict[str, list[float]] = {name: [] for name in impls}
    for name, fn in impls.items():  # warm-up: compilation, jit, first touch
        fn()
    for _ in range(repeat):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    mem = {name: (peak_extra_bytes(fn) if memory else None) for name, fn in impls.items()}
    floor = FLOORS_MS[w.name] * w.elements / w.full_elements
    med = {name: statistics.median(t) for name, t in times.items()}
    best_peer = min((med[n] for n in impls if n != "stablenn"), default=None)
    rows = []
    for name in impls:
        m = med[name]
        rows.append(
            Row(
                workload=w.name,
                implementation=name,
                shape=w.shape,
                dtype=w.dtype,
                median_ms=m,
                min_ms=min(times[name]),
                max_ms=max(times[name]),
                gb_per_s=_bytes_moved(w) / (m * 1e-3) / 1e9,
                vs_fastest_peer=None if best_peer is None else m / best_peer,
                vs_floor=m / floor,
                peak_extra_mib=None if mem[name] is None else mem[name] / 2**20,
                fast_path=name == "stablenn" and _fast_path_taken(w, d),
                times_ms=times[name],
            )
        )
    for r in rows:
        log(_format_row(r))
    return rows


# ------------------------------------------------------------------ first-call latency

_FIRST_CALL = {
    "logsumexp": "snn.logsumexp(x, axis=-1)",
    "softmax": "snn.softmax(x)",
    "log_softmax": "snn.log_softmax(x)",
    "sigmoid": "snn.sigmoid(x)",
    "bce": "snn.binary_cross_entropy_with_logits(x, np.full_like(x, 0.5))",
    "cross_entropy": "snn.cross_entropy_with_logits(x, np.zeros(x.shape[0], dtype=np.int64))",
}

_FIRST_CALL_SCRIPT = """
import time, json
t0 = time.perf_counter()
import numpy as np
import stablenn as snn
t1 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((256, 1024)).astype({dtype!r})
t2 = time.perf_counter()
{call}
t3 = time.perf_counter()
{call}
t4 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_s": t3 - t2, "second_s": t4 - t3}}))
"""


def first_call(dtypes: Sequence[str], log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Each function family in a fresh process: empty Numba cache, then the cache it left."""
    out = []
    with tempfile.TemporaryDirectory(prefix="stablenn-bench-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for dtype in dtypes:
            for family, call in _FIRST_CALL.items():
                script = _FIRST_CALL_SCRIPT.format(dtype=dtype, call=call)
                for state in ("cold cache (compiles)", "warm cache (loads)"):
                    done = subprocess.run(
                        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
                    )
                    rec = json.loads(done.stdout.strip().splitlines()[-1])
                    rec.update(family=family, dtype=dtype, cache=state)
                    out.append(rec)
                    log(
                        f"  first call {family:14s} {dtype:8s} {state:22s} "
                        f"{rec['first_s'] * 1e3:9.1f} ms   (steady {rec['second_s'] * 1e3:7.2f} ms, "
                        f"import stablenn {rec['import_s'] * 1e3:6.0f} ms)"
                    )
    return out


# ------------------------------------------------------------------ design check: tiles


def tile_comparison(log: Callable[[str], None]) -> list[dict[str, Any]]:
    """CPU time per element, one thread, one cache-resident tile of 32,768 entries: the
    plain array-API kernels (what blocked NumPy ufuncs in a thread pool would run) against
    the Numba kernels, and a bare ``np.exp`` for scale."""
    import numpy as np

    from .._kernels import elementwise as plain_elementwise
    from .._kernels import reductions as plain_reductions
    from .cpu import _jit as J

    def cpu(fn: Callable[[], Any], n: int) -> float:
        fn()
        best = math.inf
        for _ in range(7):
            t0 = time.process_time()
            fn()
            best = min(best, time.process_time() - t0)
        return best / n * 1e9

    # the kernels called directly run on this thread alone
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1 << 15)
    x32 = x.astype(np.float32)
    out = np.empty_like(x)
    n = x.size
    rows = [
        ("logsumexp float64", cpu(lambda: plain_reductions.logsumexp(np, x[None], None, None, True), n),
         cpu(lambda: J._lse_range(x, 0, n), n)),
        ("logsumexp float32", cpu(lambda: plain_reductions.logsumexp(np, x32[None].astype(np.float64), None, None, False), n),
         cpu(lambda: J._lse_range(x32, 0, n), n)),
        ("sigmoid float64", cpu(lambda: plain_elementwise.sigmoid(np, x, True), n),
         cpu(lambda: J._elementwise_range64(0, x, out, 0, n), n)),
    ]
    bare = cpu(lambda: np.exp(x), n)
    out_rows = []
    log("one tile of 32768 entries, 1 thread, CPU time per element:")
    for name, blocked, fused in rows:
        log(f"  {name:18s} blocked NumPy {blocked:7.2f} ns   Numba {fused:6.2f} ns   ratio {blocked / fused:5.1f}")
        out_rows.append({"workload": name, "blocked_numpy_ns": blocked, "numba_ns": fused})
    log(f"  np.exp alone (float64)  {bare:7.2f} ns")
    out_rows.append({"workload": "np.exp float64", "blocked_numpy_ns": bare, "numba_ns": None})
    return out_rows


# ------------------------------------------------------------------ output

_HEADER = (
    f"{'workload':26s} {'implementation':15s} {'median ms':>10s} {'min':>9s} {'max':>9s} "
    f"{'GB/s':>7s} {'x fastest':>9s} {'x floor':>8s} {'peak MiB':>9s}"
)


def _format_row(r: Row) -> str:
    vs = "" if r.vs_fastest_peer is None else f"{r.vs_fastest_peer:9.2f}"
    mem = "" if r.peak_extra_mib is None else f"{r.peak_extra_mib:9.1f}"
    name = r.implementation + (" *" if r.fast_path else "")
    return (
        f"{r.workload:26s} {name:15s} {r.median_ms:10.2f} {r.min_ms:9.2f} {r.max_ms:9.2f} "
        f"{r.gb_per_s:7.2f} {vs:>9s} {r.vs_floor:8.2f} {mem:>9s}"
    )


def _machine() -> dict[str, Any]:
    import platform

    import numpy as np

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        import numba

        from .cpu import _driver

        info["numba"] = numba.__version__
        info["stablenn_threads"] = _driver.threads()
    except ImportError:  # pragma: no cover - numba is part of the fast extra
        pass
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:  # pragma: no cover
        pass
    return info


# ------------------------------------------------------------------ command line


def register(subparsers: Any) -> None:
    """Add the ``bench`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "bench",
        help="time stablenn's CPU paths against SciPy, NumPy, PyTorch and JAX on the same data",
        description=(
            "Run the workloads of issue 7 (logsumexp 1-D and by rows, softmax, log_softmax, "
            "sigmoid, binary and softmax cross-entropy) for stablenn and every installed peer "
            "on the same arrays, interleaved, and print the median, min and max time, "
            "throughput, ratio to the fastest peer, ratio to the memory/compute floor and "
            "peak extra memory. The full sizes need about 8 GB of memory and some minutes; "
            "--quick runs small sizes in seconds."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (CI, tests)")
    parser.add_argument("--repeat", type=int, default=9, help="timed rounds per workload (at least 7; default 9)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
    parser.add_argument(
        "--only", nargs="*", metavar="WORD", default=None,
        help="run only the workloads whose name contains one of these words (e.g. --only sigmoid bce)",
    )
    parser.add_argument(
        "--peers", nargs="*", choices=sorted(_PEER_OPTIONS), default=None,
        help="peers to run (default: every installed one)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument(
        "--first-call", action="store_true",
        help="also time the first call of each fast path in fresh processes (cold and warm Numba cache)",
    )
    parser.add_argument(
        "--tiles", action="store_true",
        help="also compare, on one cache-resident tile, the plain kernels (blocked NumPy) with the Numba kernels",
    )
    parser.set_defaults(func=run)


def _installed(peers: Sequence[str] | None) -> list[str]:
    import importlib.util

    names = sorted(_PEER_OPTIONS) if peers is None else list(peers)
    modules = {"scipy": "scipy", "numpy": "numpy", "torch": "torch", "jax": "jax"}
    out = []
    for key in ("scipy", "numpy", "torch", "jax"):
        if key in names and importlib.util.find_spec(modules[key]) is not None:
            out.append(_PEER_OPTIONS[key])
    return out


def run(args: argparse.Namespace) -> int:
    from .. import _messages

    if args.repeat < 7:
        print(f"stablenn bench: error: {_messages.bench_repeat(args.repeat)}", file=sys.stderr)
        return 2
    chosen = workloads(args.quick)
    if args.only:
        chosen = [w for w in chosen if any(word in w.name for word in args.only)]
        if not chosen:
            names = [w.name for w in workloads(args.quick)]
            print(f"stablenn bench: error: {_messages.bench_no_workload(args.only, names)}", file=sys.stderr)
            return 2
    peers = _installed(args.peers)
    if "jax jit" in peers:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 workloads stay float64
    _pin_malloc()
    to_stdout = args.json == "-"
    log = (lambda s: print(s, file=sys.stderr)) if to_stdout else print
    machine = _machine()
    log(f"stablenn bench ({'quick' if args.quick else 'full'} sizes, median of {args.repeat} interleaved rounds)")
    log(f"machine: {machine}")
    log("* = stablenn took its fused CPU fast path; ratios below 1 mean faster; floor: issue 7's memory/compute limit")
    log(_HEADER)
    rows: list[Row] = []
    for w in chosen:
        rows.extend(measure(w, peers, args.repeat, not args.no_memory, log))
    calls = first_call(("float32", "float64"), log) if args.first_call else []
    tiles = tile_comparison(log) if args.tiles else []
    if args.json:
        doc = {"machine": machine, "quick": args.quick, "repeat": args.repeat,
               "rows": [asdict(r) for r in rows], "first_call": calls, "tiles": tiles}
        text = json.dumps(doc, indent=1)
        if to_stdout:
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``stablenn bench`` with ``argv`` (for ``benchmarks/bench.py``)."""
    parser = argparse.ArgumentParser(prog="stablenn")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *(argv or [])])
    return int(args.func(args))
