"""The evidence the report shows beside the proofs, gathered through each feature's public API.

Every function here returns measured data, or a `Missing` that says which piece of which
feature is not available and why (a module not written yet, an exception it raised).
Nothing is ever filled in by hand: a number in the report was computed in this run.

* `sweep(key, sizes)`: a naive formula and stablenn against the input (`_sweeps`), for the
  sweeps listed in `SWEEPS`;
* `bce_forms`: stablenn's binary cross-entropy and Problem 6's form on soft labels, in ULP
  against the oracle;
* `gradient_sweep`, `saved_for_backward`, `memory_benchmark`: Problem 3's gradients;
* `network_demo`, `conversion`: Problems 1 and 2 on whole networks (`stablenn.networks`);
* `accuracy`, `peers`: the audit tables (`stablenn.audit`).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._sweeps import Impl, Sweep, elementwise_sweep, grid, vector_sweep

__all__ = [
    "AuditOutcome",
    "BceForms",
    "Missing",
    "SWEEPS",
    "Sizes",
    "audit",
    "bce_forms",
    "conversion",
    "gradient_sweep",
    "memory_benchmark",
    "network_demo",
    "saved_for_backward",
    "sweep",
]

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Sizes:
    """Sample sizes of one report build."""

    audit_samples: int = 4000  #: scalar inputs (and BCE elements) per function and dtype (audit tables)
    audit_vectors: int = 100  #: vectors (reductions) and rows (cross-entropy) per function and dtype
    sweep_points: int = 801  #: grid points per dtype of each error-against-input plot
    bce_pairs: int = 6000  #: (logit, soft label) pairs per dtype for the BCE comparison
    proof_points: int = 8  #: random points per proof part for mpmath
    moons: int = 200  #: points of the two-moons data set
    depths: tuple[int, ...] = (1, 2, 3, 4, 5)  #: depths of the linear networks of the demo
    demo_grid: int = 61  #: grid points per side of the decision-boundary plots
    network_inputs: int = 5000  #: inputs per network for the conversion differences
    memory_elements: int = 1 << 20  #: elements of the tensors whose saved bytes are counted
    processes: int | None = None  #: oracle worker processes (default: min(2, cores))
    seed: int = 0

    @classmethod
    def quick(cls, **kw: Any) -> Sizes:
        """Small sizes for tests (seconds)."""
        base = dict(
            audit_samples=150, audit_vectors=6, sweep_points=161, bce_pairs=600, proof_points=2, moons=40,
            depths=(1, 3), demo_grid=15, network_inputs=300, memory_elements=1 << 12, processes=1,
        )
        base.update(kw)
        return cls(**base)


@dataclass(frozen=True)
class Missing:
    """A piece of evidence that could not be produced: what it is, whose it is, and why."""

    feature: str  #: the feature that provides it ("audit: peer comparison")
    what: str  #: what the report would show
    reason: str  #: why it is not there (module missing, the error raised)

    def text(self) -> str:
        return f"{self.feature}: {self.what} — {self.reason}"


def _error_text(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)
    origin = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}{origin}"


def _module(name: str) -> Any:
    """The module, or None if it (not one of its own imports) does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            return None
        raise


# ---------------------------------------------------------------- implementations


def _formula(label: str, text: str, role: str = "naive", *, var: str = "x", **fixed: float) -> Impl:
    """A formula evaluated naively by the audit's evaluator, every operation rounded."""
    from stablenn.audit import _expr

    tree = _expr.parse(text)

    def fn(x: np.ndarray, dtype: str) -> np.ndarray:
        values: dict[str, Any] = {var: x}
        for k, v in fixed.items():
            values[k] = np.full(x.shape[: 1 if var == "v" else x.ndim], v)
        return _expr.evaluate_numpy(tree, values, dtype)

    return Impl(label, fn, role)


def _stablenn(label: str, name: str, role: str = "stablenn", **kw: Any) -> Impl:
    def fn(x: np.ndarray, dtype: str) -> np.ndarray:
        import stablenn

        return np.asarray(getattr(stablenn, name)(x, **kw))

    return Impl(label, fn, role)


def _oracle_elementwise(name: str) -> Callable[[np.ndarray, str], np.ndarray]:
    def exact(x: np.ndarray, dtype: str) -> np.ndarray:
        from stablenn.audit import _oracle

        return _oracle.elementwise(name, x, dtype)

    return exact


def _budget(name: str) -> Callable[[str], float]:
    def get(dtype: str) -> float:
        from stablenn.audit._budgets import budget

        b = budget(name, dtype)
        return 1.0 if b is None else b

    return get


def _grids(sizes: Sizes, f64: tuple[float, float], f32: tuple[float, float], kind: str = "linear") -> dict[str, np.ndarray]:
    return {
        "float32": grid(*f32, sizes.sweep_points, "float32", kind=kind),
        "float64": grid(*f64, sizes.sweep_points, "float64", kind=kind),
    }


def _rows(fn: Callable[[np.ndarray, str], Any]) -> Callable[[np.ndarray, str], np.ndarray]:
    """An exact value per row of a (n, k) array of vectors."""

    def exact(v: np.ndarray, dtype: str) -> np.ndarray:
        return np.array([fn(row, dtype) for row in v])

    return exact


def _lse_exact(row: np.ndarray, dtype: str) -> float:
    from stablenn.audit import _oracle

    return _oracle.logsumexp(row, dtype)[0]


def _softmax_exact(row: np.ndarray, dtype: str) -> np.ndarray:
    from stablenn.audit import _oracle

    return _oracle.softmax(row, dtype)


# ---------------------------------------------------------------- the sweeps


def _sweep_sigmoid_via_tanh(s: Sizes) -> Sweep:
    return elementwise_sweep(
        "p2-sigmoid-via-tanh", "σ(x) through the identity (1 + tanh(x/2))/2, and stablenn.sigmoid",
        _oracle_elementwise("sigmoid"),
        [_stablenn("(1 + tanh(x/2))/2 as written (stablenn.sigmoid_via_tanh)", "sigmoid_via_tanh", "naive"),
         _stablenn("stablenn.sigmoid", "sigmoid")],
        _grids(s, (-760.0, 40.0), (-110.0, 20.0)), _budget("sigmoid"),
    )


def _sweep_tanh_via_sigmoid(s: Sizes) -> Sweep:
    return elementwise_sweep(
        "p2-tanh-via-sigmoid", "tanh(x) through the identity 2σ(2x) − 1, and stablenn.tanh (x > 0; both are odd)",
        _oracle_elementwise("tanh"),
        [_stablenn("2σ(2x) − 1 as written (stablenn.tanh_via_sigmoid)", "tanh_via_sigmoid", "naive"),
         _stablenn("stablenn.tanh", "tanh")],
        _grids(s, (1e-300, 40.0), (1e-37, 20.0), kind="log"), _budget("tanh"), xscale="log",
    )


def _sweep_sigmoid_grad(s: Sizes) -> Sweep:
    def from_output(x: np.ndarray, dtype: str) -> np.ndarray:
        import stablenn

        return np.asarray(stablenn.sigmoid_grad_from_output(stablenn.sigmoid(x)))

    return elementwise_sweep(
        "p3-sigmoid-grad", "σ′(x): from the output y = σ(x) as y(1 − y), and from the input",
        _oracle_elementwise("sigmoid_grad"),
        [Impl("y(1 − y) from y = σ(x) (stablenn.sigmoid_grad_from_output)", from_output, "naive"),
         _stablenn("stablenn.sigmoid_grad(x), from the input", "sigmoid_grad")],
        _grids(s, (-50.0, 50.0), (-25.0, 25.0)), _budget("sigmoid_grad"),
    )


def _sweep_tanh_grad(s: Sizes) -> Sweep:
    def from_output(x: np.ndarray, dtype: str) -> np.ndarray:
        import stablenn

        return np.asarray(stablenn.tanh_grad_from_output(stablenn.tanh(x)))

    return elementwise_sweep(
        "p3-tanh-grad", "tanh′(x): from the output y = tanh(x) as (1 − y)(1 + y), and from the input",
        _oracle_elementwise("tanh_grad"),
        [Impl("(1 − y)(1 + y) from y = tanh(x) (stablenn.tanh_grad_from_output)", from_output, "naive"),
         _stablenn("stablenn.tanh_grad(x), from the input", "tanh_grad")],
        _grids(s, (-25.0, 25.0), (-12.0, 12.0)), _budget("tanh_grad"),
    )


_LSE_OFFSETS = np.array([0.0, -0.5, -1.0, -2.0, -4.0])


def _sweep_logsumexp_shift(s: Sizes) -> Sweep:
    shifts = {"float32": grid(-120.0, 120.0, s.sweep_points, "float32"),
              "float64": grid(-800.0, 800.0, s.sweep_points, "float64")}
    return vector_sweep(
        "p4-logsumexp-shift", "log Σ e^vᵢ for v = c + (0, −0.5, −1, −2, −4): naive, shifted by the maximum, stablenn",
        _rows(_lse_exact),
        [_formula("log(Σ exp(vᵢ)) as written", "log(sum(exp(v)))", var="v"),
         _formula("a + log(Σ exp(vᵢ − a)), a = max v (the sheet's identity)", "max(v) + log(sum(exp(v - max(v))))",
                  var="v"),
         Impl("stablenn.logsumexp", lambda v, d: _call_rows("logsumexp", v), "stablenn")],
        shifts, _LSE_OFFSETS, _budget("logsumexp"),
    )


def _dominant(t: np.ndarray, dtype: str) -> np.ndarray:
    return np.stack([np.zeros_like(t), -t, -t - 1], axis=1)


def _sweep_logsumexp_dominant(s: Sizes) -> Sweep:
    from ._sweeps import _measure, _panel

    panels = []
    for dtype, hi in (("float32", 30.0), ("float64", 60.0)):
        t = grid(0.0, hi, s.sweep_points, dtype)
        v = _dominant(t, dtype).astype(t.dtype)
        impls = [
            _formula("log(Σ exp(vᵢ)) as written", "log(sum(exp(v)))", var="v"),
            _formula("a + log(Σ exp(vᵢ − a)), a = max v", "max(v) + log(sum(exp(v - max(v))))", var="v"),
            Impl("stablenn.logsumexp (log1p of the rest)", lambda v, d: _call_rows("logsumexp", v), "stablenn"),
        ]
        ref = _rows(_lse_exact)(v, dtype)
        series = _measure(t, ref, impls, dtype, lambda impl, v=v, dtype=dtype: impl.fn(v, dtype))
        panels.append(_panel(dtype, t, series, _budget("logsumexp")(dtype)))
    return Sweep("p4-logsumexp-dominant", "log(e⁰ + e^(−t) + e^(−t−1)): one dominant term, the rest underflowing in 1 + …",
                 "t", panels)


def _call_rows(name: str, v: np.ndarray) -> np.ndarray:
    import stablenn

    fn = getattr(stablenn, name)
    return np.asarray(fn(v, axis=-1))


def _sweep_softmax_shift(s: Sizes) -> Sweep:
    shifts = {"float32": grid(-120.0, 120.0, s.sweep_points, "float32"),
              "float64": grid(-800.0, 800.0, s.sweep_points, "float64")}
    return vector_sweep(
        "p5-softmax-shift", "softmax(v) for v = c + (0, −1, −2, −30): the worst component, naive, shifted, stablenn",
        _rows(_softmax_exact),
        [_formula("exp(vᵢ)/Σ exp(vⱼ) as written", "exp(v)/sum(exp(v))", var="v"),
         _formula("exp(vᵢ − a)/Σ exp(vⱼ − a), a = max v (the sheet's identity)",
                  "exp(v - max(v))/sum(exp(v - max(v)))", var="v"),
         Impl("stablenn.softmax", lambda v, d: _call_rows("softmax", v), "stablenn")],
        shifts, np.array([0.0, -1.0, -2.0, -30.0]), _budget("softmax"),
    )


def _bce_impls(y: float) -> list[Impl]:
    def stable(x: np.ndarray, dtype: str) -> np.ndarray:
        import stablenn

        return np.asarray(stablenn.binary_cross_entropy_with_logits(x, np.full_like(x, y), reduction="none"))

    return [
        _formula("−(y log σ(x) + (1 − y) log(1 − σ(x))), σ(x) = 1/(1 + e⁻ˣ), as written",
                 "-(y*log(1/(1 + exp(-x))) + (1 - y)*log(1 - 1/(1 + exp(-x))))", y=y),
        _formula("max(x, 0) − xy + log(1 + e^(−|x|)) (Problem 6's form)", "max(x, 0) - x*y + log(1 + exp(-abs(x)))",
                 "peer", y=y),
        Impl("stablenn.binary_cross_entropy_with_logits", stable, "stablenn"),
    ]


def _sweep_bce(s: Sizes) -> Sweep:
    y = 0.25

    def exact(x: np.ndarray, dtype: str) -> np.ndarray:
        from stablenn.audit import _oracle

        return _oracle.bce(x, np.full(x.shape, y), dtype)

    return elementwise_sweep(
        "p6-bce", f"binary cross-entropy at label y = {y}: the definition, Problem 6's form, stablenn",
        exact, _bce_impls(y), _grids(s, (-800.0, 800.0), (-120.0, 120.0)), _budget("binary_cross_entropy_with_logits"),
    )


def _sweep_softplus(s: Sizes) -> Sweep:
    return elementwise_sweep(
        "stable-softplus", "softplus(x) = log(1 + eˣ): naive and stablenn.softplus",
        _oracle_elementwise("softplus"),
        [_formula("log(1 + exp(x)) as written", "log(1 + exp(x))"),
         _formula("log1p(exp(x)) (overflow fixed, not the tail)", "log1p(exp(x))"),
         _stablenn("stablenn.softplus", "softplus")],
        _grids(s, (-800.0, 800.0), (-120.0, 120.0)), _budget("softplus"),
    )


def _sweep_log_sigmoid(s: Sizes) -> Sweep:
    return elementwise_sweep(
        "stable-log-sigmoid", "log σ(x): naive log(1/(1 + e⁻ˣ)) and stablenn.log_sigmoid",
        _oracle_elementwise("log_sigmoid"),
        [_formula("log(1/(1 + exp(−x))) as written", "log(1/(1 + exp(-x)))"),
         _stablenn("stablenn.log_sigmoid", "log_sigmoid")],
        _grids(s, (-800.0, 800.0), (-120.0, 120.0)), _budget("log_sigmoid"),
    )


def _sweep_sigmoid(s: Sizes) -> Sweep:
    return elementwise_sweep(
        "stable-sigmoid", "σ(x): naive 1/(1 + e⁻ˣ) and the two-branch stablenn.sigmoid",
        _oracle_elementwise("sigmoid"),
        [_formula("1/(1 + exp(−x)) as written", "1/(1 + exp(-x))"), _stablenn("stablenn.sigmoid", "sigmoid")],
        _grids(s, (-760.0, 40.0), (-110.0, 20.0)), _budget("sigmoid"),
    )


def _sweep_sqrt(s: Sizes) -> Sweep:
    return elementwise_sweep(
        "notes-sqrt", "√(x²) against |x| (x > 0): the square overflows and underflows",
        lambda x, dtype: np.abs(x),  # |x| is exact in every format: the exact value
        [_formula("sqrt(x**2) as written", "sqrt(x**2)"), _formula("abs(x)", "abs(x)", "stablenn")],
        _grids(s, (1e-300, 1e300), (1e-44, 3e38), kind="log"), lambda dtype: 1.0, xscale="log",
    )


#: key -> (problem section, builder)
SWEEPS: dict[str, tuple[str, Callable[[Sizes], Sweep]]] = {
    "p2-sigmoid-via-tanh": ("p2", _sweep_sigmoid_via_tanh),
    "p2-tanh-via-sigmoid": ("p2", _sweep_tanh_via_sigmoid),
    "p3-sigmoid-grad": ("p3", _sweep_sigmoid_grad),
    "p3-tanh-grad": ("p3", _sweep_tanh_grad),
    "p4-logsumexp-shift": ("p4", _sweep_logsumexp_shift),
    "p4-logsumexp-dominant": ("p4", _sweep_logsumexp_dominant),
    "p5-softmax-shift": ("p5", _sweep_softmax_shift),
    "p6-bce": ("p6", _sweep_bce),
    "stable-sigmoid": ("stable", _sweep_sigmoid),
    "stable-softplus": ("stable", _sweep_softplus),
    "stable-log-sigmoid": ("stable", _sweep_log_sigmoid),
    "notes-sqrt": ("notes", _sweep_sqrt),
}


def sweep(key: str, sizes: Sizes) -> Sweep | Missing:
    """Run the sweep `key` of `SWEEPS`."""
    try:
        return SWEEPS[key][1](sizes)
    except Exception as exc:
        return Missing("audit machinery", f"the error-against-input plot {key}", _error_text(exc))


# ---------------------------------------------------------------- Problem 6: the two BCE forms


@dataclass
class FormStats:
    label: str
    max_ulp: float
    p999_ulp: float
    median_ulp: float
    above_1ulp: float  #: fraction of pairs above 1 ULP
    nonfinite: int  #: NaN or infinity where the exact loss is finite
    worst: tuple[float, float, float, float]  #: x, y, got, exact at the largest error


@dataclass
class BceForms:
    pairs: dict[str, int]  #: per dtype
    stats: dict[str, list[FormStats]]  #: per dtype, one per form
    binned: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=dict)


_BCE_FORMS = (
    ("stablenn.binary_cross_entropy_with_logits: y·softplus(−x) + (1 − y)·softplus(x)", None),
    ("Problem 6's form: max(x, 0) − x·y + log(1 + e^(−|x|))", "max(x, 0) - x*y + log(1 + exp(-abs(x)))"),
    ("Problem 6's form with log1p: max(x, 0) − x·y + log1p(e^(−|x|))", "max(x, 0) - x*y + log1p(exp(-abs(x)))"),
)


def bce_forms(sizes: Sizes) -> BceForms | Missing:
    """stablenn's BCE and Problem 6's form on soft labels, in ULP against the oracle.

    Logits: the audit sampler's whole line (finite values); labels: its soft labels
    (uniform on [0, 1], and within 1e-8 of 0 and of 1; hard labels 0 and 1 left out).
    """
    try:
        import stablenn
        from stablenn.audit import _expr, _oracle, _sampler
        from stablenn.audit._ulp import ulp_distance

        out = BceForms({}, {})
        for dtype in DTYPES:
            n = sizes.bce_pairs
            x = _sampler.sample_unary(dtype, 2 * n, sizes.seed + 11)
            x = x[np.isfinite(x.astype(np.float64))][:n]
            y = _sampler.sample_labels(dtype, 3 * n, sizes.seed + 12)
            y = y[(y > 0) & (y < 1)][: x.size]
            x = x[: y.size]
            chunks = [(x[i : i + 500], y[i : i + 500], dtype) for i in range(0, x.size, 500)]
            exact = np.concatenate(
                _oracle.parallel_map(_bce_chunk, chunks, processes=sizes.processes, min_items=4)
            ).astype(x.dtype)
            finite = np.isfinite(exact.astype(np.float64))
            rows = []
            curves = {}
            for label, text in _BCE_FORMS:
                if text is None:
                    got = np.asarray(stablenn.binary_cross_entropy_with_logits(x, y, reduction="none"))
                else:
                    got = _expr.evaluate_numpy(_expr.parse(text), {"x": x, "y": y}, dtype)
                with np.errstate(all="ignore"):
                    u = ulp_distance(got, exact, dtype)
                    nonfinite = int(np.sum(~np.isfinite(got.astype(np.float64)) & finite))
                k = int(np.argmax(np.where(np.isnan(u), -1, u)))
                rows.append(FormStats(
                    label, float(u.max()), float(np.percentile(u, 99.9, method="higher")), float(np.median(u)),
                    float(np.mean(u > 1)), nonfinite, (float(x[k]), float(y[k]), float(got[k]), float(exact[k])),
                ))
                curves[label] = u
            out.pairs[dtype] = int(x.size)
            out.stats[dtype] = rows
            out.binned[dtype] = _bin_by_label(y, curves)
        return out
    except Exception as exc:
        return Missing("audit oracle", "the measured difference between stablenn's BCE and Problem 6's form",
                       _error_text(exc))


def _bce_chunk(x: np.ndarray, y: np.ndarray, dtype: str) -> np.ndarray:
    from stablenn.audit import _oracle

    return _oracle.bce(x, y, dtype)


def _bin_by_label(y: np.ndarray, curves: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Max error in bins of the label's distance to the nearer hard label (log scale)."""
    d = np.minimum(y.astype(np.float64), 1 - y.astype(np.float64))
    edges = np.logspace(-12, np.log10(0.5), 23)
    centres = np.sqrt(edges[:-1] * edges[1:])
    idx = np.clip(np.searchsorted(edges, d) - 1, 0, len(centres) - 1)
    out = {}
    for label, u in curves.items():
        m = np.full(len(centres), np.nan)
        for b in range(len(centres)):
            sel = idx == b
            if sel.any():
                m[b] = np.max(u[sel])
        out[label] = m
    return centres, out


def plot_bce_forms(forms: BceForms) -> Any:
    from ._svg import new_figure

    fig, axes = new_figure(9.2, 2.9, cols=len(forms.binned))
    colors = ("#0969da", "#d1242f", "#e16f24")
    for ax, (dtype, (centres, curves)) in zip(axes[0], forms.binned.items()):
        for color, (label, m) in zip(colors, curves.items()):
            y = np.where(np.isinf(m), 1e20, m)  # NaN results at the top; empty bins (NaN) left out
            ax.plot(centres, y, "o-", ms=3, lw=1.2, color=color, label=label.split(":")[0])
        ax.axhline(1.0, color="k", ls="--", lw=0.8, label="1 ULP")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(0, 8e20)
        ax.set_yticks([0, 1, 1e3, 1e6, 1e9, 1e12, 1e15, 1e20], ["0", "1", "1e3", "1e6", "1e9", "1e12", "1e15", "NaN/inf"])
        ax.set_xlabel("min(y, 1 − y): distance of the soft label to 0 or 1")
        ax.set_ylabel("max error (ULP)")
        ax.set_title(dtype, fontsize=9)
        ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------- Problem 3: gradients


def _torch_grad(name: str, ours: bool) -> Callable[[np.ndarray, str], np.ndarray]:
    def fn(x: np.ndarray, dtype: str) -> np.ndarray:
        import torch

        import stablenn

        t = torch.from_numpy(np.array(x, copy=True)).requires_grad_(True)
        f = getattr(stablenn, name) if ours else getattr(torch, name)
        (g,) = torch.autograd.grad(f(t).sum(), t)
        return g.detach().numpy()

    return fn


def _jax_grad(name: str, ours: bool) -> Callable[[np.ndarray, str], np.ndarray]:
    def fn(x: np.ndarray, dtype: str) -> np.ndarray:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 needs it; without it JAX computes in float32
        import jax.numpy as jnp

        import stablenn

        f = getattr(stablenn, name) if ours else {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}[name]
        return np.asarray(jax.grad(lambda v: jnp.sum(f(v)))(jnp.asarray(x)))

    return fn


_GRAD_LABELS = {
    "torch": "torch.{name} + autograd",
    "jax": "{jax} + jax.grad",
    "stablenn-jax": "stablenn.{name} + jax.grad",
    "stablenn-torch": "stablenn.{name} + PyTorch autograd",
}


def _grad_impls(name: str) -> tuple[list[Impl], str]:
    """The gradient feature's implementations (`stablenn._autodiff.gradient_impls`), peers first.

    Falls back to calling PyTorch autograd and jax.grad here when the feature does not
    provide them; the second value says which was used.
    """
    jax_own = "jax.nn.sigmoid" if name == "sigmoid" else "jax.numpy.tanh"
    try:
        from stablenn._autodiff import gradient_impls

        provided = gradient_impls(name)
    except (ImportError, AttributeError, KeyError, ValueError):
        provided = None
    if provided:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 needs it; without it JAX computes in float32
        impls = []
        for key in ("torch", "jax", "stablenn-jax", "stablenn-torch"):
            if key in provided:
                label = _GRAD_LABELS[key].format(name=name, jax=jax_own)
                fn = provided[key]
                impls.append(Impl(label, lambda x, d, fn=fn: np.asarray(fn(x)), "stablenn" if "stablenn" in key else "naive"))
        return impls, "stablenn._autodiff.gradient_impls"
    return [
        Impl(f"torch.{name} + autograd", _torch_grad(name, False), "naive"),
        Impl(f"{jax_own} + jax.grad", _jax_grad(name, False), "naive"),
        Impl(f"stablenn.{name} + jax.grad", _jax_grad(name, True), "stablenn"),
        Impl(f"stablenn.{name} + PyTorch autograd", _torch_grad(name, True), "stablenn"),
    ], "the report's own calls of torch.autograd and jax.grad (stablenn._autodiff.gradient_impls not available)"


def gradient_sweep(name: str, sizes: Sizes) -> Sweep | Missing:
    """d/dx of `name` (sigmoid or tanh) through PyTorch autograd and jax.grad, ours and theirs."""
    try:
        def exact(x: np.ndarray, dtype: str) -> np.ndarray:
            from stablenn.audit import _oracle

            return _oracle.derivative(name, x, dtype)

        title = "σ′" if name == "sigmoid" else "tanh′"
        impls, source = _grad_impls(name)
        lim = {"sigmoid": ((-60.0, 760.0), (-30.0, 110.0)), "tanh": ((-30.0, 380.0), (-15.0, 60.0))}[name]
        sweep = elementwise_sweep(
            f"p3-autograd-{name}", f"{title}(x) as the frameworks' automatic differentiation computes it",
            exact, impls, _grids(sizes, *lim), _budget(name),
        )
        sweep.note = f"gradients from {source}"
        return sweep
    except Exception as exc:
        return Missing("gradients", f"the accuracy of {name}'s gradient through autograd", _error_text(exc))


def gradient_audit(name: str, dtype: str, sizes: Sizes) -> AuditOutcome | Missing:
    """The audit engine's gradient audit (`audit_gradient`): sampled inputs, bad intervals."""
    try:
        engine = _module("stablenn.audit._engine")
        report = _module("stablenn.audit._report")
        if engine is None or report is None or not hasattr(engine, "audit_gradient"):
            return Missing("audit", f"the gradient audit of {name} in {dtype}",
                           "stablenn.audit._engine.audit_gradient is not available")
        a = engine.audit_gradient(name, dtype, samples=sizes.audit_samples, seed=sizes.seed,
                                  processes=sizes.processes, intervals=True)
        return AuditOutcome(f"d/dx {name}", dtype, report.audit_dict(a))
    except Exception as exc:
        return Missing("audit", f"the gradient audit of {name} in {dtype}", _error_text(exc))


@dataclass
class SavedRow:
    label: str
    saved_bytes: int
    input_bytes: int
    what: str  #: which tensors: "input", "output", "other"


def saved_for_backward(sizes: Sizes) -> list[SavedRow] | Missing:
    """Bytes each forward call keeps for backward, counted with PyTorch's saved-tensor hooks."""
    try:
        import torch

        import stablenn

        n = sizes.memory_elements
        cols = 1024 if n >= 1024 else n
        cases: list[tuple[str, Callable[[Any], Any]]] = [
            ("torch.sigmoid", torch.sigmoid),
            ("stablenn.sigmoid", stablenn.sigmoid),
            ("1/(1 + torch.exp(−x)) written out", lambda t: 1 / (1 + torch.exp(-t))),
            ("torch.tanh", torch.tanh),
            ("stablenn.tanh", stablenn.tanh),
            ("torch.softmax(x, −1)", lambda t: torch.softmax(t, -1)),
            ("stablenn.softmax", stablenn.softmax),
            ("torch.log_softmax(x, −1)", lambda t: torch.log_softmax(t, -1)),
            ("stablenn.log_softmax", stablenn.log_softmax),
        ]
        rows = []
        for label, fn in cases:
            x = torch.randn(n // cols, cols, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
            x.requires_grad_(True)
            saved: list[Any] = []

            def pack(t: Any, saved: list[Any] = saved) -> Any:
                saved.append(t)
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                y = fn(x)
            seen: dict[int, tuple[int, str]] = {}
            for t in saved:
                ptr = t.untyped_storage().data_ptr()
                kind = "input" if ptr == x.untyped_storage().data_ptr() else (
                    "output" if ptr == y.untyped_storage().data_ptr() else "other")
                seen[ptr] = (t.untyped_storage().nbytes(), kind)
            total = sum(b for b, _ in seen.values())
            kinds = sorted({k for _, k in seen.values()}) or ["nothing"]
            rows.append(SavedRow(label, total, x.numel() * x.element_size(), ", ".join(kinds)))
            del y
        return rows
    except Exception as exc:
        return Missing("gradients", "the bytes saved for backward", _error_text(exc))


def memory_benchmark(sizes: Sizes) -> Any:
    """The gradients feature's peak-memory measurement (``benchmarks/backprop_memory.py``).

    The script is loaded from the checkout and its ``report_data(quick=...)`` called when it
    provides one; otherwise the report says what is missing.
    """
    root = Path(__file__).resolve().parents[3]
    path = root / "benchmarks" / "backprop_memory.py"
    if not path.exists():
        return Missing("gradients", "peak memory of a training step with and without saving only outputs",
                       "benchmarks/backprop_memory.py is not in this checkout")
    try:
        spec = importlib.util.spec_from_file_location("_stablenn_backprop_memory", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        entry = getattr(module, "report_data", None)
        if entry is None:
            return Missing("gradients", "peak memory of a training step",
                           "benchmarks/backprop_memory.py has no report_data(quick=...) function for the report to call")
        return entry(quick=True)  # the full-size table (minutes) is the benchmark's own output
    except Exception as exc:
        return Missing("gradients", "peak memory of a training step", _error_text(exc))


# ---------------------------------------------------------------- Problems 1 and 2: networks


def network_demo(sizes: Sizes) -> Any:
    """`stablenn.networks.nonlinearity_demo` and its figure, or Missing."""
    try:
        from stablenn.networks import nonlinearity_demo, plot_nonlinearity_demo

        demo = nonlinearity_demo(seed=sizes.seed, n_moons=sizes.moons, depths=sizes.depths,
                                 grid_size=sizes.demo_grid)
        return demo, plot_nonlinearity_demo(demo)
    except Exception as exc:
        return Missing("networks", "the XOR and two-moons demo", _error_text(exc))


@dataclass
class ConversionRow:
    model: str
    regime: str
    dtype: str
    inputs: int
    max_abs: float
    max_ulp: float
    max_normwise: float
    hidden: str


def _random_network(rng: np.random.Generator, depth: int, width: int, gain: float, dtype: Any) -> Any:
    from stablenn.networks import Layer, Network

    layers, fan_in = [], 4
    for _ in range(depth):
        w = rng.normal(scale=gain / math.sqrt(fan_in), size=(fan_in, width))
        layers.append(Layer(w.astype(dtype), rng.normal(size=width).astype(dtype), "sigmoid"))
        fan_in = width
    layers.append(Layer(rng.normal(scale=1 / math.sqrt(width), size=(width, 3)).astype(dtype),
                        rng.normal(size=3).astype(dtype)))
    return Network(layers)


def conversion(sizes: Sizes) -> list[ConversionRow | Missing]:
    """`sigmoid_to_tanh` on stablenn, PyTorch, scikit-learn and ONNX models; output differences."""
    from stablenn import networks

    rng = np.random.default_rng(sizes.seed)
    n = sizes.network_inputs
    rows: list[ConversionRow | Missing] = []

    def add(model: str, regime: str, original: Any, x: np.ndarray, hidden: str) -> None:
        converted = networks.sigmoid_to_tanh(original)
        d = networks.compare(original, converted, x)
        rows.append(ConversionRow(model, regime, d.dtype, d.n_inputs, d.max_abs, d.max_ulp, d.max_normwise, hidden))

    for dtype in (np.float64, np.float32):
        for regime, scale, gain in (("typical", 1.0, 1.0), ("saturated", 30.0, 8.0)):
            for depth, width in ((1, 16), (4, 64)):
                try:
                    net = _random_network(rng, depth, width, gain, dtype)
                    x = rng.normal(scale=scale, size=(n, 4)).astype(dtype)
                    add("stablenn Network", regime, net, x, f"{depth} × {width} sigmoid")
                except Exception as exc:
                    rows.append(Missing("networks", "a stablenn Network conversion", _error_text(exc)))
    x = rng.normal(size=(n, 4))
    try:
        import torch

        torch.manual_seed(sizes.seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 32), torch.nn.Sigmoid(), torch.nn.Linear(32, 3)
        ).double()
        add("PyTorch nn.Sequential", "typical", model, x, "2 × 32 sigmoid")
    except Exception as exc:
        rows.append(Missing("networks", "the PyTorch conversion", _error_text(exc)))
    try:
        import warnings

        from sklearn.datasets import make_moons
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        mx, my = make_moons(200, noise=0.1, random_state=sizes.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the fit is not the point here
            clf = MLPClassifier((16,), activation="logistic", solver="lbfgs", max_iter=300,
                                random_state=sizes.seed).fit(mx, my)
        add("scikit-learn MLPClassifier", "fitted on two moons", clf, rng.normal(size=(n, 2)), "1 × 16 logistic")
    except Exception as exc:
        rows.append(Missing("networks", "the scikit-learn conversion", _error_text(exc)))
    try:
        rows.append(_onnx_row(rng, n, add))
    except Exception as exc:
        rows.append(Missing("networks", "the ONNX conversion", _error_text(exc)))
    return [r for r in rows if r is not None]


def _onnx_row(rng: np.random.Generator, n: int, add: Callable[..., None]) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1 = rng.normal(size=(4, 16)).astype(np.float32)
    b1 = rng.normal(size=16).astype(np.float32)
    w2 = rng.normal(scale=0.25, size=(16, 3)).astype(np.float32)
    b2 = rng.normal(size=3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["z1"], name="fc1"),
            helper.make_node("Sigmoid", ["z1"], ["h1"], name="act1"),
            helper.make_node("Gemm", ["h1", "w2", "b2"], ["y"], name="fc2"),
        ],
        "report",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(a, name) for a, name in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)  # what the installed onnxruntime reads
    onnx.checker.check_model(model)
    add("ONNX graph (onnxruntime)", "typical", model, rng.normal(size=(n, 4)).astype(np.float32), "1 × 16 Sigmoid")
    return None


# ---------------------------------------------------------------- the audit tables


@dataclass
class AuditOutcome:
    """One audit of one function in one dtype, as the audit's JSON object, and its plot."""

    function: str
    dtype: str
    data: dict[str, Any]  #: `stablenn.audit._report.audit_dict` (schema stablenn-audit/1)
    svg: str = ""  #: the audit's own plot (`stablenn.audit._plot.plot_audit`), inline-ready
    source: str = "stablenn.audit"

    def stablenn(self) -> dict[str, Any] | None:
        """The result row of stablenn itself."""
        return next((r for r in self.data.get("results", []) if r.get("implementation") == "stablenn"), None)


def _sample_count(function: str, sizes: Sizes) -> int:
    from stablenn.audit import _oracle

    if function in _oracle.ELEMENTWISE or function == "binary_cross_entropy_with_logits":
        return sizes.audit_samples
    return sizes.audit_vectors


def audit(function: str, dtype: str, sizes: Sizes, *, peers: bool = True, plot: bool = False) -> AuditOutcome | Missing:
    """Audit `function` in `dtype` with the audit engine: stablenn, the naive formula and the
    installed peers (SciPy, PyTorch, JAX...) on the same inputs, with the bad intervals;
    ``peers=False`` audits stablenn alone.  Falls back to `stablenn.audit._measure` for
    stablenn alone when the engine is not available.
    """
    n = _sample_count(function, sizes)
    try:
        engine = _module("stablenn.audit._engine")
        report = _module("stablenn.audit._report")
    except Exception as exc:
        engine = report = None
        reason = _error_text(exc)
    else:
        reason = "stablenn.audit._engine is not available"
    if engine is None or report is None:
        if peers:
            return Missing("audit", f"{function} in {dtype} against the naive formula, SciPy, PyTorch and JAX", reason)
        return _measured_alone(function, dtype, sizes, n)
    try:
        a = engine.audit_function(function, dtype, samples=n, seed=sizes.seed, impls=None if peers else ["stablenn"],
                                  processes=sizes.processes, intervals=peers)
        outcome = AuditOutcome(function, dtype, report.audit_dict(a))
    except Exception as exc:
        return Missing("audit", f"the audit of {function} in {dtype}", _error_text(exc))
    if plot:
        outcome.svg = _audit_plot(a, f"audit-{function}-{dtype}")
    return outcome


def _audit_plot(a: Any, key: str) -> str:
    import os
    import tempfile

    from ._svg import inline_svg

    try:
        from stablenn.audit._plot import plot_audit

        fd, path = tempfile.mkstemp(suffix=".svg", prefix="stablenn-report-")
        os.close(fd)
        try:
            plot_audit(a, path)
            with open(path, encoding="utf-8") as f:
                return inline_svg(f.read(), key)
        finally:
            os.unlink(path)
    except Exception:
        return ""


def _measured_alone(function: str, dtype: str, sizes: Sizes, n: int) -> AuditOutcome | Missing:
    try:
        from stablenn.audit._measure import accuracy_table

        (r,) = accuracy_table(n, functions=(function,), dtypes=(dtype,), vector_samples=n, seed=sizes.seed,
                              processes=sizes.processes)
    except Exception as exc:
        return Missing("audit", f"the accuracy of {function} in {dtype}", _error_text(exc))
    row = r.to_dict() | {"implementation": "stablenn", "label": f"stablenn.{function}",
                         "max_ulp": r.max_ulp_checked, "within_budget": None if r.budget is None else r.ok,
                         "intervals": [], "failed": None}
    data = {"subject": function, "dtype": dtype, "samples": n, "results": [row], "skipped": []}
    return AuditOutcome(function, dtype, data, source="stablenn.audit._measure")
