"""GPU benchmark of the Triton kernels: correctness first, then speed against PyTorch.

Usage (on a machine with an NVIDIA GPU; about 5 minutes on an H100 or H200)::

    python benchmarks/gpu_bench.py [--json out.json] [--budget 420] [--quick] [--no-compile] [--tune 90]

For every kernel, shape and dtype it

1. checks correctness: fresh random inputs; every output buffer poisoned with NaN before
   the kernel writes it; every element compared with a float64 reference computed by
   PyTorch on the GPU from the same inputs.  An element passes when it lies within 1.5
   ULPs of the float64 value (a result within 1 ULP of the correctly rounded one always
   does); the maximum error is printed, and any failure fails the run (exit code 1);
2. times it with ``triton.testing.do_bench`` (median), and times PyTorch eager and
   ``torch.compile`` on the same tensors;
3. prints the bytes moved per second (inputs read once plus outputs written once), the
   fraction of the device-to-device copy rate measured in the same run, and the ratio of
   each peer's time to ours (above 1: ours is faster); and writes everything as JSON.

Shapes: rows 8192 x 32768, 32768 x 4096 and 2048 x 131072 in float32 and bfloat16 for the
row-wise kernels; 2**28 elements for the elementwise ones.  ``--budget`` (seconds) stops
starting new measurements once spent, so the whole run stays inside a short device slot.
The correctness checks are importable (``check``, ``run_case``) and are tested on tiny
CPU shapes under ``TRITON_INTERPRET=1`` by ``tests/test_triton_kernels.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from stablenn._fast.triton import _launch as L

ROW_SHAPES = [(8192, 32768), (32768, 4096), (2048, 131072)]
ELEMENTWISE = 2**28
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_FORMAT = {torch.float32: (24, -126), torch.bfloat16: (8, -126), torch.float16: (11, -14)}


# ---------------------------------------------------------------- correctness


def ulps(got: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """|got - ref| in units of the last place of ``ref`` in ``got``'s format (float64).

    NaN against NaN and equal infinities count 0; a NaN, an infinity or a finite value
    where the reference has something else counts inf.
    """
    p, emin = _FORMAT[got.dtype]
    g = got.detach().to(torch.float64)
    r = ref.detach().to(torch.float64)
    _, e = torch.frexp(r)  # |r| = m 2^e, m in [0.5, 1)
    e = torch.where(r == 0, torch.full_like(e, emin + 1), e)  # 0: the subnormal spacing
    quantum = torch.ldexp(torch.ones_like(r), torch.clamp(e - 1, min=emin) - (p - 1))
    err = (g - r).abs() / quantum
    both_nan = torch.isnan(g) & torch.isnan(r)
    same_inf = torch.isinf(r) & (g == r)
    err = torch.where(both_nan | same_inf, torch.zeros_like(err), err)
    special = ~torch.isfinite(g) | ~torch.isfinite(r)
    err = torch.where(special & ~(both_nan | same_inf), torch.full_like(err, math.inf), err)
    return err


def check(name: str, got: torch.Tensor, ref: torch.Tensor, budget: float = 1.5) -> dict[str, Any]:
    """Compare every element of ``got`` with the float64 ``ref``."""
    assert got.shape == ref.shape, (name, tuple(got.shape), tuple(ref.shape))
    err = ulps(got, ref).reshape(-1)
    bad = err > budget
    n_bad = int(bad.sum())
    worst = int(torch.argmax(torch.nan_to_num(err, posinf=1e300)))
    out = {
        "name": name,
        "elements": err.numel(),
        "max_ulps": float(err[worst]) if err.numel() else 0.0,
        "failed": n_bad,
        "ok": n_bad == 0,
    }
    if n_bad:
        out["worst"] = {
            "index": worst,
            "got": float(got.reshape(-1)[worst]),
            "want": float(ref.reshape(-1)[worst]),
        }
    return out


def poisoned(shape: tuple[int, ...], dtype: torch.dtype, device: Any) -> torch.Tensor:
    """An output buffer full of NaN: an element the kernel forgets to write fails the check."""
    return torch.full(shape, math.nan, dtype=dtype, device=device)


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    """One kernel: inputs, ours (writing into poisoned buffers), the float64 reference,
    PyTorch's own computation, and the bytes a single pass must move."""

    name: str
    kind: str  # "rows" or "elementwise"
    make: Callable[[tuple[int, ...], torch.dtype, Any, torch.Generator], dict[str, Any]]
    ours: Callable[[dict[str, Any], dict[str, torch.Tensor] | None], dict[str, torch.Tensor]]
    outputs: Callable[[dict[str, Any]], dict[str, tuple[tuple[int, ...], torch.dtype]]]
    reference: Callable[[dict[str, Any]], dict[str, torch.Tensor]]
    peer: Callable[[dict[str, Any]], Any]
    bytes: Callable[[dict[str, Any]], int]


def _logits(shape: tuple[int, ...], dtype: torch.dtype, device: Any, g: torch.Generator) -> torch.Tensor:
    # mixed scales: most rows N(0, 1), some wide (N(0, 30)), so that exp spans many binades
    x = torch.randn(shape, generator=g, device=device, dtype=torch.float32)
    wide = torch.rand(shape[:-1] + (1,), generator=g, device=device) < 0.25
    return torch.where(wide, x * 30, x).to(dtype)


def _rows(shape: tuple[int, ...], dtype: torch.dtype, device: Any, g: torch.Generator) -> dict[str, Any]:
    x = _logits(shape, dtype, device, g)
    t = torch.randint(0, shape[-1], shape[:-1], generator=g, device=device)
    dy = torch.randn(shape, generator=g, device=device, dtype=torch.float32).to(dtype)
    return {"x": x, "t": t, "dy": dy}


def _elems(shape: tuple[int, ...], dtype: torch.dtype, device: Any, g: torch.Generator) -> dict[str, Any]:
    x = (torch.randn(shape, generator=g, device=device, dtype=torch.float32) * 8).to(dtype)
    y = torch.rand(shape, generator=g, device=device, dtype=torch.float32).to(dtype)
    return {"x": x, "y": y}


def _size(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _softmax_y(inp: dict[str, Any]) -> torch.Tensor:
    if "y" not in inp:
        inp["y"] = L.softmax(inp["x"], False)
    return inp["y"]


def _bce64(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # y softplus(-x) + (1 - y) softplus(x), in float64: both terms >= 0
    x, y = x.double(), y.double()
    zero = torch.zeros_like(x)
    return y * torch.logaddexp(zero, -x) + (1 - y) * torch.logaddexp(zero, x)


CASES: list[Case] = [
    Case(
        "logsumexp", "rows", _rows,
        lambda i, o: {"out": L.logsumexp(i["x"], out=None if o is None else o["out"])},
        lambda i: {"out": (tuple(i["x"].shape[:-1]), i["x"].dtype)},
        lambda i: {"out": torch.logsumexp(i["x"].double(), -1)},
        lambda i: torch.logsumexp(i["x"], -1),
        lambda i: _size(i["x"]) + _size(i["x"]) // i["x"].shape[-1],
    ),
    Case(
        "softmax", "rows", _rows,
        lambda i, o: {"out": L.softmax(i["x"], False, out=None if o is None else o["out"])},
        lambda i: {"out": (tuple(i["x"].shape), i["x"].dtype)},
        lambda i: {"out": torch.softmax(i["x"].double(), -1)},
        lambda i: torch.softmax(i["x"], -1),
        lambda i: 2 * _size(i["x"]),
    ),
    Case(
        "log_softmax", "rows", _rows,
        lambda i, o: {"out": L.softmax(i["x"], True, out=None if o is None else o["out"])},
        lambda i: {"out": (tuple(i["x"].shape), i["x"].dtype)},
        lambda i: {"out": torch.log_softmax(i["x"].double(), -1)},
        lambda i: torch.log_softmax(i["x"], -1),
        lambda i: 2 * _size(i["x"]),
    ),
    Case(
        "softmax_backward", "rows", _rows,
        lambda i, o: {"out": L.softmax_backward(_softmax_y(i), i["dy"], False, out=None if o is None else o["out"])},
        lambda i: {"out": (tuple(i["x"].shape), i["x"].dtype)},
        lambda i: {"out": _softmax_y(i).double() * (i["dy"].double() - (_softmax_y(i).double() * i["dy"].double()).sum(-1, keepdim=True))},
        lambda i: torch._softmax_backward_data(i["dy"], _softmax_y(i), -1, i["x"].dtype),
        lambda i: 3 * _size(i["x"]),
    ),
    Case(
        "cross_entropy", "rows", _rows,
        lambda i, o: {"out": L.cross_entropy(i["x"], i["t"], None, None, 0.0, "none", False)[0]},
        lambda i: {},
        lambda i: {"out": F.cross_entropy(i["x"].double(), i["t"], reduction="none")},
        lambda i: F.cross_entropy(i["x"], i["t"], reduction="none"),
        lambda i: _size(i["x"]) + _size(i["t"]) + _size(i["x"]) // i["x"].shape[-1],
    ),
    Case(
        "cross_entropy_fwd_bwd", "rows", _rows,
        lambda i, o: dict(zip(("loss", "grad"), L.cross_entropy(
            i["x"], i["t"], None, None, 0.0, "mean", True, grad_out=None if o is None else o["grad"]))),
        lambda i: {"grad": (tuple(i["x"].shape), i["x"].dtype)},
        lambda i: {
            "loss": F.cross_entropy(i["x"].double(), i["t"]),
            "grad": (torch.softmax(i["x"].double(), -1)
                     - F.one_hot(i["t"], i["x"].shape[-1]).double()) / i["x"].shape[0],
        },
        lambda i: _peer_ce_fwd_bwd(i["x"], i["t"]),
        lambda i: 2 * _size(i["x"]) + _size(i["t"]),
    ),
    Case(
        "bce_none", "elementwise", _elems,
        lambda i, o: {"out": L.bce(i["x"], i["y"], None, None, "none", out=None if o is None else o["out"])},
        lambda i: {"out": (tuple(i["x"].shape), i["x"].dtype)},
        lambda i: {"out": _bce64(i["x"], i["y"])},
        lambda i: F.binary_cross_entropy_with_logits(i["x"], i["y"], reduction="none"),
        lambda i: 3 * _size(i["x"]),
    ),
    Case(
        "bce_mean", "elementwise", _elems,
        lambda i, o: {"out": L.bce(i["x"], i["y"], None, None, "mean")},
        lambda i: {},
        lambda i: {"out": _bce64(i["x"], i["y"]).mean()},
        lambda i: F.binary_cross_entropy_with_logits(i["x"], i["y"]),
        lambda i: 2 * _size(i["x"]),
    ),
    Case(
        "bce_backward_mean", "elementwise", _elems,
        lambda i, o: {"out": L.bce_backward(
            i["x"], i["y"], None, None, "mean", torch.ones((), dtype=i["x"].dtype, device=i["x"].device), False,
            out=None if o is None else o["out"])[0]},
        lambda i: {"out": (tuple(i["x"].shape), i["x"].dtype)},
        lambda i: {"out": (torch.sigmoid(i["x"].double()) - i["y"].double()) / i["x"].numel()},
        lambda i: _peer_bce_bwd(i["x"], i["y"]),
        lambda i: 3 * _size(i["x"]),
    ),
]
for _op, _peer, _ref in (
    ("sigmoid", torch.sigmoid, torch.sigmoid),
    ("softplus", F.softplus, lambda a: torch.logaddexp(torch.zeros_like(a), a)),
    ("log_sigmoid", F.logsigmoid, lambda a: -torch.logaddexp(torch.zeros_like(a), -a)),
    ("tanh", torch.tanh, torch.tanh),
):
    CASES.append(Case(
        _op, "elementwise", _elems,
        (lambda op: lambda i, o: {"out": L.unary(i["x"], op, out=None if o is None else o["out"])})(_op),
        lambda i: {"out": (tuple(i["x"].shape), i["x"].dtype)},
        (lambda ref: lambda i: {"out": ref(i["x"].double())})(_ref),
        (lambda peer: lambda i: peer(i["x"]))(_peer),
        lambda i: 2 * _size(i["x"]),
    ))


def _peer_ce_fwd_bwd(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    xr = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(xr, t), xr)
    return g


def _peer_bce_bwd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xr = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.binary_cross_entropy_with_logits(xr, y), xr)
    return g


def run_case(case: Case, shape: tuple[int, ...], dtype: torch.dtype, device: Any, seed: int = 0) -> list[dict[str, Any]]:
    """Correctness of one case: fresh inputs, poisoned outputs, every element checked."""
    g = torch.Generator(device=device).manual_seed(seed)
    inp = case.make(shape, dtype, device, g)
    bufs = {k: poisoned(s, d, device) for k, (s, d) in case.outputs(inp).items()}
    got = case.ours(inp, bufs or None)
    for k, buf in bufs.items():  # the kernel must have written into the poisoned buffer
        assert got[k].data_ptr() == buf.data_ptr(), f"{case.name}: output {k} not written in place"
    ref = case.reference(inp)
    return [check(f"{case.name}:{k}", got[k], ref[k]) for k in ref]


# ---------------------------------------------------------------- timing


def copy_rate(device: Any) -> float:
    """Device-to-device copy of 1 GiB, bytes read plus written per second."""
    from triton.testing import do_bench

    src = torch.empty(2**28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), warmup=25, rep=100, return_mode="median")
    return 2 * _size(src) / (ms * 1e-3)


def time_case(case: Case, inp: dict[str, Any], use_compile: bool) -> dict[str, float | None]:
    from triton.testing import do_bench

    out: dict[str, float | None] = {}
    out["ours_ms"] = do_bench(lambda: case.ours(inp, None), warmup=10, rep=50, return_mode="median")
    out["eager_ms"] = do_bench(lambda: case.peer(inp), warmup=10, rep=50, return_mode="median")
    out["compile_ms"] = None
    if use_compile:
        try:
            compiled = torch.compile(lambda: case.peer(inp), dynamic=False)
            compiled()  # compile outside the timing
            out["compile_ms"] = do_bench(compiled, warmup=10, rep=50, return_mode="median")
        except Exception as exc:  # a peer that does not compile is reported, not fatal
            out["compile_error"] = repr(exc)[:300]  # type: ignore[assignment]
    return out


TUNE_GRID = {
    # the tuning limits of stablenn._fast.triton._launch, tried one at a time around the defaults
    "single_wide": [2048, 4096, 8192],
    "block_wide": [1024, 2048, 4096],
    "block_half": [2048, 4096, 8192],
    "elementwise_wide": [512, 1024, 2048],
    "elementwise_half": [1024, 2048, 4096],
    "elements_per_warp": [128, 256, 512],
}
TUNE_CASES = [("softmax", "float32"), ("softmax", "bfloat16"), ("logsumexp", "float32"),
              ("cross_entropy_fwd_bwd", "float32"), ("sigmoid", "float32"), ("bce_none", "float32")]


def tune(device: Any, budget_s: float) -> list[dict[str, Any]]:
    """Time a few kernels while varying one tuning limit at a time (correctness is checked
    by the main run, which uses the defaults)."""
    from triton.testing import do_bench

    start = time.time()
    rows: list[dict[str, Any]] = []
    by_name = {c.name: c for c in CASES}
    for case_name, dname in TUNE_CASES:
        case = by_name[case_name]
        shape = ROW_SHAPES[0] if case.kind == "rows" else (ELEMENTWISE,)
        inp = case.make(shape, DTYPES[dname], device, torch.Generator(device=device).manual_seed(2))
        for key, values in TUNE_GRID.items():
            default = L.LIMITS[key]
            for value in values:
                if time.time() - start > budget_s:
                    return rows
                L.LIMITS[key] = value
                try:
                    ms = do_bench(lambda: case.ours(inp, None), warmup=10, rep=40, return_mode="median")
                    rows.append(dict(kernel=case_name, dtype=dname, limit=key, value=value, ms=ms))
                    print(f"tune {case_name:22} {dname:8} {key:18} {value:6} {ms:8.3f} ms", flush=True)
                finally:
                    L.LIMITS[key] = default
        del inp
        torch.cuda.empty_cache()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="gpu_bench.json")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds; no new measurement after")
    parser.add_argument("--quick", action="store_true", help="first row shape and 2**26 elements only")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile peers")
    parser.add_argument("--tune", type=float, default=0.0, metavar="SECONDS",
                        help="after the main run, spend up to SECONDS timing other tuning limits")
    parser.add_argument("--compile-all", action="store_true",
                        help="torch.compile every shape (default: the first shape of each kernel and dtype)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_bench: no CUDA device", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    start = time.time()
    props = torch.cuda.get_device_properties(device)
    report: dict[str, Any] = {
        "device": props.name, "torch": torch.__version__, "correctness": [], "timing": [], "skipped": [],
    }
    import triton

    report["triton"] = triton.__version__
    rate = copy_rate(device)
    report["copy_GBps"] = rate / 1e9
    print(f"{props.name}: device-to-device copy {rate / 1e9:.0f} GB/s (read + write)")
    rows = ROW_SHAPES[:1] if args.quick else ROW_SHAPES
    n_elem = 2**26 if args.quick else ELEMENTWISE
    plan = [(c, s, d) for d in DTYPES.values() for c in CASES
            for s in (rows if c.kind == "rows" else [(n_elem,)])]
    ok = True
    compiled_once: set[tuple[str, str]] = set()
    header = f"{'kernel':24} {'shape':>14} {'dtype':>8} {'max ULP':>8} {'ours ms':>8} {'GB/s':>6} {'copy':>5} {'eager x':>8} {'compile x':>9}"
    print(header)
    for case, shape, dtype in plan:
        if time.time() - start > args.budget:
            report["skipped"].append({"kernel": case.name, "shape": shape, "dtype": str(dtype)})
            continue
        name = str(dtype).rsplit(".", 1)[-1]
        try:
            results = run_case(case, shape, dtype, device, seed=len(report["correctness"]))
        except torch.cuda.OutOfMemoryError:
            report["skipped"].append({"kernel": case.name, "shape": shape, "dtype": name, "why": "out of memory"})
            torch.cuda.empty_cache()
            continue
        except Exception as exc:  # a kernel that fails to compile or run: a failure, and go on
            ok = False
            report["correctness"].append({"name": case.name, "shape": list(shape), "dtype": name, "ok": False,
                                          "error": repr(exc)[:2000]})
            print(f"{case.name:24} {str(shape):>14} {name:>8} ERROR: {exc!r}"[:400], flush=True)
            continue
        for r in results:
            r.update(shape=list(shape), dtype=name)
        report["correctness"] += results
        worst = max(r["max_ulps"] for r in results)
        if not all(r["ok"] for r in results):
            ok = False
            print(f"{case.name:24} {str(shape):>14} {name:>8} FAILED: {[r for r in results if not r['ok']]}")
            continue
        torch.cuda.empty_cache()
        inp = case.make(shape, dtype, device, torch.Generator(device=device).manual_seed(1))
        # torch.compile costs seconds per shape: by default once per kernel and dtype, while
        # the budget leaves a minute
        first = (case.name, name) not in compiled_once
        use_compile = not args.no_compile and (args.compile_all or first) and time.time() - start < args.budget - 60
        if use_compile:
            compiled_once.add((case.name, name))
        t = time_case(case, inp, use_compile=use_compile)
        nbytes = case.bytes(inp)
        gbps = nbytes / (t["ours_ms"] * 1e-3) / 1e9
        entry = dict(kernel=case.name, shape=list(shape), dtype=name, bytes=nbytes, GBps=gbps,
                     copy_fraction=gbps * 1e9 / rate, **t)
        entry["eager_ratio"] = t["eager_ms"] / t["ours_ms"]
        entry["compile_ratio"] = None if t["compile_ms"] is None else t["compile_ms"] / t["ours_ms"]
        report["timing"].append(entry)
        comp = "-" if entry["compile_ratio"] is None else f"{entry['compile_ratio']:.2f}"
        print(f"{case.name:24} {str(shape):>14} {name:>8} {worst:8.2f} {t['ours_ms']:8.3f} {gbps:6.0f}"
              f" {entry['copy_fraction']:5.0%} {entry['eager_ratio']:8.2f} {comp:>9}", flush=True)
        del inp
        torch.cuda.empty_cache()
    if args.tune > 0:
        report["tuning"] = tune(device, args.tune)
    report["seconds"] = time.time() - start
    report["ok"] = ok
    with open(args.json, "w") as fh:
        json.dump(report, fh, indent=1)
    print(f"correctness: {'all passed' if ok else 'FAILURES'}; {len(report['skipped'])} skipped; "
          f"{report['seconds']:.0f} s; JSON in {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
