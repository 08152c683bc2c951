"""The non-linearity demo (sheet problem 1): linear networks of any depth stay at or below
the best affine classifier; one tanh or sigmoid hidden layer solves XOR; each linear
network's collapse predicts what the network predicts; the figure is drawn without pyplot."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from stablenn.networks import nonlinearity_demo, plot_nonlinearity_demo
from stablenn.networks._demo import best_affine_accuracy


@pytest.fixture(scope="module")
def demo():
    return nonlinearity_demo(n_moons=80, depths=(1, 2, 5), grid_size=15)


def test_linear_networks_never_beat_one_affine_classifier(demo):
    xor, moons = demo.datasets
    assert (xor.name, moons.name) == ("XOR", "two moons")
    assert xor.best_affine_accuracy == 0.75  # 3 of the 4 XOR points: no line separates them
    for data in demo.datasets:
        linear = [m for m in data.models if m.activation == "identity"]
        assert [m.hidden_layer_sizes for m in linear] == [(8,), (8, 8), (8,) * 5]
        for m in linear:
            assert m.accuracy <= data.best_affine_accuracy
            assert m.collapse_agreement == 1.0
            assert m.collapse_max_difference < 1e-12


def test_one_nonlinear_hidden_layer_solves_xor_and_the_moons(demo):
    xor, moons = demo.datasets
    for data, at_least in ((xor, 1.0), (moons, 0.97)):
        nonlinear = {m.activation: m.accuracy for m in data.models if m.activation != "identity"}
        assert set(nonlinear) == {"tanh", "logistic"}
        assert min(nonlinear.values()) >= at_least
        assert min(nonlinear.values()) > data.best_affine_accuracy


def test_grids_and_plain_data(demo):
    data = demo.datasets[1]
    for m in data.models:
        assert m.grid_probability.shape == (15, 15)
        assert np.all((m.grid_probability >= 0) & (m.grid_probability <= 1))
    assert data.grid_x[0] < data.x[:, 0].min() and data.grid_x[-1] > data.x[:, 0].max()
    plain = demo.as_dict()
    text = json.dumps(plain)
    assert json.loads(text)["datasets"][0]["best_affine_accuracy"] == 0.75
    assert len(plain["datasets"][1]["models"][0]["grid_probability"]) == 15


@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_plot_writes_a_figure_without_pyplot(demo, tmp_path, suffix):
    path = tmp_path / f"demo.{suffix}"
    fig = plot_nonlinearity_demo(demo, path)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2 * 5
    head = path.read_bytes()[:64]
    assert head.startswith(b"\x89PNG") if suffix == "png" else b"<svg" in path.read_bytes()[:2000]
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()


def _brute_force_affine(x: np.ndarray, y: np.ndarray) -> float:
    """Best accuracy over a dense set of directions and every threshold between projections."""
    best = 0.0
    for angle in np.linspace(0, 2 * np.pi, 3601):
        p = x @ np.array([np.cos(angle), np.sin(angle)])
        values = np.unique(p)
        cuts = np.concatenate([[values[0] - 1], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])
        for c in cuts:
            best = max(best, float(np.mean((p > c) == y)))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_affine_accuracy_matches_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, 2))
    y = rng.integers(0, 2, size=12).astype(bool)
    assert best_affine_accuracy(x, y) == _brute_force_affine(x, y)


def test_best_affine_accuracy_special_sets():
    separable = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [1.0, 3.0]])
    assert best_affine_accuracy(separable, np.array([0, 0, 1, 1])) == 1.0
    assert best_affine_accuracy(separable[:1], np.array([1])) == 1.0
    # XOR labels on every ordering of the square's corners: always 3 of 4
    square = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    for perm in itertools.permutations(range(4)):
        assert best_affine_accuracy(square[list(perm)], np.array([0, 1, 1, 0])[list(perm)]) == 0.75


def test_equivalence_benchmark_quick_run(tmp_path):
    """The benchmark runs, and its measurements keep their meaning: the rewrite moves the exact
    function by under 1 eps of the output's terms, the float evaluations by a few eps."""
    import runpy

    out = tmp_path / "eq.json"
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "networks_equivalence.py"
    module = runpy.run_path(str(path))
    assert module["main"](["--quick", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 24
    assert max(r["rewrite_cond_eps"] for r in rows) < 1
    assert max(r["max_cond_eps"] for r in rows) < 16
    assert max(r["median_ulp"] for r in rows) <= 4
