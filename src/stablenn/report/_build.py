"""Build the report: prove, measure, draw, then write the HTML page and its Markdown twin.

`build(out, sizes=...)` runs every step with a progress bar on stderr and returns a
`BuildResult` (the files written, the times, the verdicts).  Each step catches its own
failure and records it as a `Missing`, so one broken feature never stops the page.
"""

from __future__ import annotations

import datetime
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ._content import ReportData, _stablenn_rows, build_document, summary_line
from ._doc import Figure, to_html, to_markdown
from ._evidence import SWEEPS, Missing, Sizes, _error_text
from ._machine import Clock, machine, versions
from ._progress import Progress

__all__ = ["BuildResult", "build"]


@dataclass
class BuildResult:
    html: Path
    markdown: Path
    manifest: Path
    wall: float
    cpu: float  #: this process and its worker processes
    proofs_ok: bool
    budgets_ok: bool
    missing: list[Missing]
    summary: str

    @property
    def ok(self) -> bool:
        """Every proof verified and every budgeted function within budget."""
        return self.proofs_ok and self.budgets_ok


def _functions() -> tuple[str, ...]:
    from stablenn.audit._measure import FUNCTIONS

    return FUNCTIONS


def _draw(data: ReportData, key: str, make: Callable[[], Any]) -> None:
    from ._svg import figure_svg, plot_style

    try:
        with plot_style():
            data.figures[key] = figure_svg(make(), key)
    except Exception as exc:
        data.sweeps.setdefault(f"figure {key}", Missing("report", f"the figure {key}", _error_text(exc)))


def _steps(data: ReportData, sizes: Sizes) -> list[tuple[str, Callable[[], None]]]:
    """The build as (label, action) pairs, in order; each action fills `data`."""
    from . import _evidence as ev
    from ._sweeps import plot_sweep

    steps: list[tuple[str, Callable[[], None]]] = []

    def load_proofs() -> None:
        try:
            from stablenn import proofs

            data.proofs = [(p, None) for p in proofs.all_proofs()]
        except Exception as exc:
            data.proof_error = Missing("proofs", "the proofs of the sheet's identities", _error_text(exc))

    steps.append(("proofs: building", load_proofs))

    def verify(i: int) -> Callable[[], None]:
        def run() -> None:
            if i >= len(data.proofs):
                return
            proof, _ = data.proofs[i]
            try:
                data.proofs[i] = (proof, proof.verify(points=sizes.proof_points, seed=sizes.seed))
            except Exception as exc:
                data.proofs[i] = (proof, Missing("proofs", f"the check of {proof.name}", _error_text(exc)))

        return run

    from stablenn.proofs import names

    for i, name in enumerate(names()):
        steps.append((f"proofs: {name}", verify(i)))

    def sheet() -> None:
        try:
            from stablenn.proofs import sheet_attempts

            data.sheet = [(p, p.verify(points=sizes.proof_points, seed=sizes.seed)) for p in sheet_attempts()]
        except Exception as exc:
            data.sheet = Missing("proofs", "the sheet's handwritten derivations", _error_text(exc))

    steps.append(("proofs: the sheet's own derivations", sheet))

    def sweep(key: str) -> Callable[[], None]:
        def run() -> None:
            result = ev.sweep(key, sizes)
            data.sweeps[key] = result
            if not isinstance(result, Missing):
                _draw(data, key, lambda: plot_sweep(result))

        return run

    for key in SWEEPS:
        steps.append((f"error plots: {key}", sweep(key)))

    def gradient(name: str) -> Callable[[], None]:
        def run() -> None:
            result = ev.gradient_sweep(name, sizes)
            key = f"p3-autograd-{name}"
            data.gradients[key] = result
            if not isinstance(result, Missing):
                _draw(data, key, lambda: plot_sweep(result))
            data.gradient_audits[name] = {d: ev.gradient_audit(name, d, sizes) for d in ("float32", "float64")}

        return run

    steps.append(("gradients: sigmoid through autograd", gradient("sigmoid")))
    steps.append(("gradients: tanh through autograd", gradient("tanh")))

    def saved() -> None:
        data.saved = ev.saved_for_backward(sizes)

    steps.append(("gradients: bytes saved for backward", saved))

    def memory() -> None:
        data.memory = ev.memory_benchmark(sizes)

    steps.append(("gradients: memory benchmark", memory))

    def bce() -> None:
        data.bce = ev.bce_forms(sizes)
        if isinstance(data.bce, ev.BceForms):
            forms = data.bce
            _draw(data, "bce-forms", lambda: ev.plot_bce_forms(forms))

    steps.append(("BCE: stablenn's form against Problem 6's", bce))

    def demo() -> None:
        result = ev.network_demo(sizes)
        if isinstance(result, Missing):
            data.demo = result
        else:
            data.demo, fig = result
            _draw(data, "demo", lambda: fig)

    steps.append(("networks: XOR and two moons", demo))

    def conversion() -> None:
        try:
            data.conversion = ev.conversion(sizes)
        except Exception as exc:
            data.conversion = [Missing("networks", "the sigmoid-to-tanh conversions", _error_text(exc))]

    steps.append(("networks: sigmoid to tanh on real models", conversion))

    def audit(function: str) -> Callable[[], None]:
        def run() -> None:
            per: dict[str, Any] = {}
            for dtype in ("float16", "bfloat16", "float32", "float64"):
                wide = dtype in ("float32", "float64")
                outcome = ev.audit(function, dtype, sizes, peers=wide, plot=wide)
                per[dtype] = outcome
                if not isinstance(outcome, Missing) and outcome.svg:
                    data.figures[f"audit-{function}-{dtype}"] = outcome.svg
            data.audits[function] = per

        return run

    try:
        functions = _functions()
    except Exception as exc:
        functions = ()
        data.audits["audit"] = {"all": Missing("audit", "the audit tables", _error_text(exc))}
    for f in functions:
        steps.append((f"audit: {f} against the peers", audit(f)))
    return steps


def _unique_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    seen: dict[str, None] = {}
    for w in caught:
        where = f"{Path(w.filename).name}:{w.lineno}"
        seen[f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]} ({where})"] = None
    return list(seen)


def _figure_keys(doc: Any) -> list[str]:
    return [b.key for b in doc.blocks if isinstance(b, Figure)]


def build(
    out: str | os.PathLike[str],
    *,
    sizes: Sizes | None = None,
    mode: str = "default",
    progress: bool = True,
    stream: TextIO | None = None,
) -> BuildResult:
    """Prove, measure and write ``report.html``, ``report.md`` (figures in ``figures/``) and
    ``report.json`` (the verdicts and counts) into `out`.
    """
    sizes = sizes or Sizes()
    clock = Clock.start()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data = ReportData(sizes=sizes, mode=mode, machine=machine(), versions=versions(), started=started)
    steps = _steps(data, sizes)
    bar = Progress(len(steps) + 1, stream=stream, enabled=progress)
    with warnings.catch_warnings(record=True) as caught:
        # warnings raised by the libraries measured are recorded and listed on the page,
        # neither hidden nor allowed to stop the build
        warnings.simplefilter("always")
        step_times = []
        for label, action in steps:
            bar.step(label)
            before = clock.read()
            action()
            after = clock.read()
            step_times.append((label, after[0] - before[0], after[1] + after[2] - before[1] - before[2]))
        bar.step("writing the page")
        data.warnings = _unique_warnings(caught)
        wall, cpu, children = clock.read()
        data.times = {"wall": wall, "cpu": cpu, "children": children}
        doc = build_document(data)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(exist_ok=True)
    fig_paths = {}
    for key in _figure_keys(doc):
        svg = data.figures[key]
        path = figures_dir / f"{key}.svg"
        path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + svg + "\n", encoding="utf-8")
        fig_paths[key] = f"figures/{key}.svg"
    html_path = out_dir / "report.html"
    md_path = out_dir / "report.md"
    html_path.write_text(to_html(doc), encoding="utf-8")
    md_path.write_text(to_markdown(doc, figures=fig_paths), encoding="utf-8")
    bar.close()

    ok_proofs = bool(data.proofs) and all(not isinstance(r, Missing) and r.ok for _, r in data.proofs)
    results = [(f, d, r) for f, d, r in _stablenn_rows(data) if r.get("budget") is not None]
    ok_budgets = bool(results) and all(r.get("within_budget") for _, _, r in results)
    missing = data.missing()
    manifest = {
        "summary": summary_line(data),
        "mode": mode,
        "sizes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(sizes).items()},
        "times": data.times,
        "proofs": {p.name: (None if isinstance(r, Missing) else bool(r.ok)) for p, r in data.proofs},
        "proof_steps": sum(len(p.lines()) for p, _ in data.proofs),
        "budgets": [{"function": f, "dtype": d, "max_ulp": r.get("max_ulp"), "budget": r.get("budget"),
                     "ok": bool(r.get("within_budget"))} for f, d, r in results],
        "figures": _figure_keys(doc),
        "missing": [m.text() for m in missing],
        "warnings": data.warnings,
        "steps": [{"step": label, "wall": w, "cpu": c} for label, w, c in step_times],
        "machine": data.machine,
        "versions": data.versions,
    }
    manifest_path = out_dir / "report.json"
    manifest_path.write_text(json.dumps(manifest, indent=1, default=str), encoding="utf-8")
    return BuildResult(html_path, md_path, manifest_path, data.times["wall"], data.times["cpu"] + data.times["children"],
                       ok_proofs, ok_budgets, missing, summary_line(data))
