"""How equal is a sigmoid network to its tanh rewrite?  Measured, not assumed (issue 5, item 6).

For random networks with sigmoid hidden layers (depth = number of hidden layers, all of the
same width, 10 identity outputs) the script builds ``sigmoid_to_tanh(net)`` and runs both
with stablenn's own forward pass (``Network.forward``: ``stablenn.sigmoid``,
``stablenn.tanh``) on the same inputs, in float64 and in float32, in two regimes:

- ``typical``: inputs N(0, 1), weights N(0, 1/fan_in), biases N(0, 1): pre-activations of
  order 1;
- ``saturated``: inputs N(0, 30^2), weights N(0, 64/fan_in): every hidden layer's
  pre-activations are tens to hundreds, deep in the flat tails of the sigmoid.

Reported per network: the largest difference between the two outputs in ULP (element-wise,
and its 99.9th percentile), and normwise (max |y - y'| over a row, in units of eps times the
row's largest |y|).  On a subset of inputs a higher-precision reference (80-bit long double
for float64, float64 for float32) splits the difference into its sources:

- ``err orig`` / ``err tanh``: each network's own rounding error against the exact output
  of the ORIGINAL parameters (ULP);
- ``rewrite``: the difference of the two networks' exact functions, i.e. what the one
  rounding of each new bias ``fl(b + 1/2 sum_i W_ij)`` changes (ULP, fractional).

Usage (2 CPU cores: about 10 minutes for the default grid; --quick takes seconds)::

    .venv/bin/python benchmarks/networks_equivalence.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from stablenn.networks import Layer, Network, sigmoid_to_tanh, ulp_distance

OUTPUTS = 10
REGIMES = {"typical": (1.0, 1.0), "saturated": (30.0, 8.0)}  # input scale, weight gain


def build(rng: np.random.Generator, depth: int, width: int, gain: float) -> Network:
    layers = []
    fan_in = width
    for _ in range(depth):
        layers.append(Layer(rng.normal(scale=gain / np.sqrt(fan_in), size=(fan_in, width)), rng.normal(size=width), "sigmoid"))
        fan_in = width
    layers.append(Layer(rng.normal(scale=1 / np.sqrt(width), size=(width, OUTPUTS)), rng.normal(size=OUTPUTS)))
    return Network(layers)


def as_dtype(net: Network, dtype: type) -> Network:
    return Network([Layer(layer.weight.astype(dtype), layer.bias.astype(dtype), layer.activation) for layer in net])


def reference(net: Network, x: np.ndarray, wide: type) -> np.ndarray:
    """The network's exact function, approximated in the wider type ``wide``."""
    h = x.astype(wide)
    with np.errstate(over="ignore"):
        for layer in net:
            z = h @ layer.weight.astype(wide) + layer.bias.astype(wide)
            h = 1 / (1 + np.exp(-z)) if layer.activation == "sigmoid" else (np.tanh(z) if layer.activation == "tanh" else z)
    return h


def ulp_of(ref: np.ndarray, dtype: type) -> np.ndarray:
    """Spacing of ``dtype`` at the reference values (for fractional ULP errors)."""
    return np.spacing(np.abs(ref).astype(dtype)).astype(ref.dtype)


def forward_with_terms(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of ``net`` and, per output, the size of the terms its last layer sums,
    ``S = |a| |W| + |b|`` (``a``: the last hidden layer's values)."""
    h = x
    for layer in net.layers[:-1]:
        h = Network([layer])(h)
    last = net.layers[-1]
    y = Network([last])(h)
    terms = np.abs(h.astype(np.float64)) @ np.abs(last.weight.astype(np.float64)) + np.abs(last.bias.astype(np.float64))
    return y, terms


def measure(net64: Network, dtype: type, x: np.ndarray, n_ref: int, chunk: int) -> dict:
    net = net64 if dtype is np.float64 else as_dtype(net64, dtype)
    new = sigmoid_to_tanh(net)
    ulps, normwise, cond = [], [], []
    eps = float(np.finfo(dtype).eps)
    first = None
    for start in range(0, len(x), chunk):
        xs = x[start : start + chunk].astype(dtype)
        (y, terms), z = forward_with_terms(net, xs), new(xs)
        if first is None:
            first = (y[:n_ref], z[:n_ref], terms[:n_ref])
        diff = np.abs(y.astype(np.float64) - z)
        ulps.append(ulp_distance(y, z).ravel())
        normwise.append(np.max(diff, axis=1) / (eps * np.max(np.abs(y), axis=1)))
        cond.append((diff / (eps * terms)).ravel())
    u = np.concatenate(ulps)
    wide = np.longdouble if dtype is np.float64 else np.float64
    xr = x[:n_ref].astype(dtype)
    ref = reference(net, xr, wide)
    ref_new = reference(new, xr, wide)
    y0, z0, terms0 = first
    unit = eps * terms0.astype(wide)
    return {
        "max_ulp": float(u.max()),
        "p999_ulp": float(np.quantile(u, 0.999)),
        "median_ulp": float(np.median(u)),
        "max_normwise_eps": float(np.concatenate(normwise).max()),
        "max_cond_eps": float(np.concatenate(cond).max()),
        "err_orig_cond_eps": float(np.max(np.abs(y0.astype(wide) - ref) / unit)),
        "err_tanh_cond_eps": float(np.max(np.abs(z0.astype(wide) - ref) / unit)),
        "rewrite_cond_eps": float(np.max(np.abs(ref_new - ref) / unit)),
        "err_orig_ulp": float(np.max(np.abs(y0.astype(wide) - ref) / ulp_of(ref, dtype))),
        "err_tanh_ulp": float(np.max(np.abs(z0.astype(wide) - ref) / ulp_of(ref, dtype))),
        "rewrite_ulp": float(np.max(np.abs(ref_new - ref) / ulp_of(ref, dtype))),
        "n_inputs": int(len(x)),
        "n_reference": int(n_ref),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid, 2,000 inputs: seconds")
    parser.add_argument("--samples", type=int, default=100_000, help="inputs per network, widths below --large-width")
    parser.add_argument("--large-width", type=int, default=1024)
    parser.add_argument("--large-samples", type=int, default=20_000, help="inputs per network at --large-width")
    parser.add_argument("--reference-samples", type=int, default=1000, help="inputs checked against the wider reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    if args.quick:
        grid = [(d, w) for w in (16, 64) for d in (1, 2, 4)]
        samples = {16: 2000, 64: 2000}
        n_ref = 200
    else:
        grid = [(d, w) for w in (16, 64) for d in range(1, 9)]
        grid += [(d, w) for w in (256, args.large_width) for d in (1, 2, 4, 8)]
        samples = {w: args.samples for w in (16, 64, 256)} | {args.large_width: args.large_samples}
        n_ref = args.reference_samples

    rng = np.random.default_rng(args.seed)
    rows = []
    header = (
        f"{'dtype':8} {'regime':9} {'depth':>5} {'width':>5} {'inputs':>7} | {'max ULP':>8} {'p99.9':>7} {'median':>6} "
        f"{'normwise':>8} {'cond':>6} | {'err orig':>8} {'err tanh':>8} {'rewrite':>8} | {'orig ULP':>9} {'rewr ULP':>9}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for regime, (scale, gain) in REGIMES.items():
        for depth, width in grid:
            net = build(rng, depth, width, gain)
            x = rng.normal(scale=scale, size=(samples[width], width))
            refs = min(n_ref, 250) if width >= args.large_width else n_ref
            for dtype in (np.float64, np.float32):
                r = measure(net, dtype, x, refs, chunk=max(1000, 2_000_000 // width))
                r |= {"dtype": np.dtype(dtype).name, "regime": regime, "depth": depth, "width": width}
                rows.append(r)
                print(
                    f"{r['dtype']:8} {regime:9} {depth:5d} {width:5d} {r['n_inputs']:7d} | {r['max_ulp']:8.3g} "
                    f"{r['p999_ulp']:7.1f} {r['median_ulp']:6.1f} {r['max_normwise_eps']:8.2f} {r['max_cond_eps']:6.2f} | "
                    f"{r['err_orig_cond_eps']:8.2f} {r['err_tanh_cond_eps']:8.2f} {r['rewrite_cond_eps']:8.3f} | "
                    f"{r['err_orig_ulp']:9.3g} {r['rewrite_ulp']:9.3g}",
                    flush=True,
                )
    elapsed = time.perf_counter() - started
    print(f"\n{len(rows)} measurements in {elapsed:.0f} s")
    for dtype in ("float64", "float32"):
        sel = [r for r in rows if r["dtype"] == dtype]
        top = {k: max(r[k] for r in sel) for k in sel[0] if k.endswith(("_ulp", "_eps"))}
        print(
            f"{dtype}: element-wise max {top['max_ulp']:.3g} ULP (p99.9 at most {top['p999_ulp']:.1f}); "
            f"normwise at most {top['max_normwise_eps']:.2f} eps; conditioned at most {top['max_cond_eps']:.2f} eps; "
            f"own errors at most {top['err_orig_cond_eps']:.2f} (orig) / {top['err_tanh_cond_eps']:.2f} (tanh) eps; "
            f"exact-function change at most {top['rewrite_cond_eps']:.3f} eps"
        )
    if args.json:
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
        meta = {
            "commit": commit,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "machine": platform.machine(),
            "processor": platform.processor(),
            "seconds": elapsed,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
