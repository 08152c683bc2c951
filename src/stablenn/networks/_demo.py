"""Why non-linear activations (sheet problem 1): XOR and two moons, measured and drawn.

:func:`nonlinearity_demo` trains scikit-learn ``MLPClassifier`` networks (identity
activations at depths 1 to 5, and one hidden tanh or sigmoid layer) and returns plain
data: accuracies, the best accuracy any affine classifier reaches on the same points, the
agreement between each linear network and its :func:`~stablenn.networks.collapse`, and
probability grids for the decision boundaries.  :func:`plot_nonlinearity_demo` draws them.
Nothing here keeps global state: matplotlib is used through ``Figure`` objects, never
``pyplot``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._convert import collapse
from ._compare import evaluate

__all__ = ["nonlinearity_demo", "plot_nonlinearity_demo"]


@dataclass(frozen=True)
class ModelResult:
    """One trained network of the demo."""

    label: str  #: e.g. "linear, 3 hidden layers" or "tanh, 1 hidden layer"
    activation: str  #: scikit-learn's name: identity, tanh, logistic
    hidden_layer_sizes: tuple[int, ...]
    accuracy: float  #: fraction of training points classified right
    collapse_agreement: float | None  #: fraction of points where collapse(net) predicts the same (linear only)
    collapse_max_difference: float | None  #: largest |p - p'| of the probabilities on points and grid (linear only)
    grid_probability: np.ndarray  #: P(class 1) on the grid, shape (len(grid_y), len(grid_x))


@dataclass(frozen=True)
class DatasetResult:
    """One data set of the demo, with every network trained on it."""

    name: str
    x: np.ndarray  #: points, shape (n, 2)
    y: np.ndarray  #: labels 0 or 1, shape (n,)
    best_affine_accuracy: float  #: the most any affine classifier gets right on these points
    grid_x: np.ndarray
    grid_y: np.ndarray
    models: tuple[ModelResult, ...]


@dataclass(frozen=True)
class NonlinearityDemo:
    """Everything :func:`plot_nonlinearity_demo` and the report need."""

    datasets: tuple[DatasetResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """The results as JSON-ready nested dicts and lists."""

        def plain(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                return value.tolist()
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            if hasattr(value, "__dataclass_fields__"):
                return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
            return value

        return plain(self)


def best_affine_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """The largest fraction of 2-D points any affine classifier ``[w.x + c > 0]`` gets right.

    An optimal line can be moved, without changing the side of any point, until it passes
    through two data points; those two can then be put on either side by a small
    translation or rotation.  So trying every line through two points, with the points on
    it assigned freely, finds the optimum (an upper bound if three points are collinear).

    Examples
    --------
    >>> import numpy as np
    >>> from stablenn.networks._demo import best_affine_accuracy
    >>> xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    >>> best_affine_accuracy(xor, np.array([0, 1, 1, 0]))
    0.75
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    n = len(y)
    best = max(int(y.sum()), n - int(y.sum()))  # a constant classifier
    i, j = np.triu_indices(n, k=1)
    for start in range(0, len(i), 2048):
        a, b = i[start : start + 2048], j[start : start + 2048]
        d = x[b] - x[a]
        # side of each point k relative to the line through x_a and x_b: cross(d, x_k - x_a)
        side = d[:, :1] * (x[None, :, 1] - x[a, None, 1]) - d[:, 1:] * (x[None, :, 0] - x[a, None, 0])
        on = side == 0
        pos, neg = side > 0, side < 0
        # class 1 on the positive side, or on the negative side; points on the line count as right
        right_pos = (pos & y).sum(1) + (neg & ~y).sum(1) + on.sum(1)
        right_neg = (neg & y).sum(1) + (pos & ~y).sum(1) + on.sum(1)
        best = max(best, int(right_pos.max()), int(right_neg.max()))
    return best / n


def _xor() -> tuple[np.ndarray, np.ndarray]:
    return np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([0, 1, 1, 0])


def _fit(x: np.ndarray, y: np.ndarray, sizes: tuple[int, ...], activation: str, seed: int) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=sizes, activation=activation, solver="lbfgs", alpha=1e-5, max_iter=2000, random_state=seed
    )
    with warnings.catch_warnings():
        # lbfgs on a linear network or on four points may stop at max_iter: the accuracy
        # reported is what the model reached, which is the point of the demo
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def nonlinearity_demo(
    *,
    seed: int = 0,
    n_moons: int = 200,
    noise: float = 0.1,
    depths: tuple[int, ...] = (1, 2, 3, 4, 5),
    width: int = 8,
    grid_size: int = 101,
) -> NonlinearityDemo:
    """Train linear and non-linear networks on XOR and two moons, and measure them.

    Parameters
    ----------
    seed : int, default 0
        Seeds the moons and every network's initialisation.
    n_moons : int, default 200
        Points in the two-moons data set.
    noise : float, default 0.1
        Standard deviation of the moons' noise.
    depths : tuple of int, default (1, 2, 3, 4, 5)
        Numbers of hidden identity layers of the linear networks.
    width : int, default 8
        Units per hidden layer.
    grid_size : int, default 101
        Points per side of the decision-boundary grid.

    Returns
    -------
    NonlinearityDemo
        Per data set: the points, the best affine accuracy, and per network its accuracy,
        the agreement of its collapse (linear networks), and a probability grid.

    Examples
    --------
    >>> from stablenn.networks import nonlinearity_demo
    >>> demo = nonlinearity_demo(n_moons=60, depths=(1, 3), grid_size=11)
    >>> xor = demo.datasets[0]
    >>> xor.best_affine_accuracy
    0.75
    >>> [(m.label, m.accuracy) for m in xor.models if m.activation != "identity"]
    [('tanh, 1 hidden layer', 1.0), ('sigmoid, 1 hidden layer', 1.0)]
    >>> linear = [m for m in xor.models if m.activation == "identity"]
    >>> [m.label for m in linear]
    ['linear, 1 hidden layer', 'linear, 3 hidden layers']
    >>> all(m.accuracy <= xor.best_affine_accuracy and m.collapse_agreement == 1.0 for m in linear)
    True
    """
    from sklearn.datasets import make_moons

    moons_x, moons_y = make_moons(n_moons, noise=noise, random_state=seed)
    datasets = []
    for name, (x, y) in (("XOR", _xor()), ("two moons", (moons_x, moons_y))):
        lo, hi = x.min(axis=0), x.max(axis=0)
        pad = 0.25 * (hi - lo)
        grid_x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid_size)
        grid_y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid_size)
        gx, gy = np.meshgrid(grid_x, grid_y)
        grid = np.column_stack([gx.ravel(), gy.ravel()])
        specs = [(f"linear, {d} hidden layer{'s' if d > 1 else ''}", "identity", (width,) * d) for d in depths]
        specs += [("tanh, 1 hidden layer", "tanh", (width,)), ("sigmoid, 1 hidden layer", "logistic", (width,))]
        models = []
        for label, activation, sizes in specs:
            model = _fit(x, y, sizes, activation, seed)
            agreement = max_diff = None
            if activation == "identity":
                flat = collapse(model)
                agreement = float(np.mean(flat.predict(x) == model.predict(x)))
                both = np.vstack([x, grid])
                max_diff = float(np.max(np.abs(evaluate(model, both) - evaluate(flat, both))))
            models.append(
                ModelResult(
                    label=label,
                    activation=activation,
                    hidden_layer_sizes=sizes,
                    accuracy=float(model.score(x, y)),
                    collapse_agreement=agreement,
                    collapse_max_difference=max_diff,
                    grid_probability=model.predict_proba(grid)[:, 1].reshape(grid_size, grid_size),
                )
            )
        datasets.append(
            DatasetResult(
                name=name,
                x=x,
                y=y,
                best_affine_accuracy=best_affine_accuracy(x, y),
                grid_x=grid_x,
                grid_y=grid_y,
                models=tuple(models),
            )
        )
    return NonlinearityDemo(tuple(datasets))


def plot_nonlinearity_demo(demo: NonlinearityDemo, path: str | Path | None = None, /) -> Any:
    """Draw every network's decision boundary: one row per data set, one panel per network.

    Parameters
    ----------
    demo : NonlinearityDemo
        The result of :func:`nonlinearity_demo`.
    path : str or pathlib.Path, optional
        Where to save the figure; the format follows the suffix (``.svg``, ``.png``, ``.pdf``).

    Returns
    -------
    matplotlib.figure.Figure
        A figure not registered with ``pyplot`` (no global state).

    Examples
    --------
    >>> from stablenn.networks import nonlinearity_demo, plot_nonlinearity_demo
    >>> fig = plot_nonlinearity_demo(nonlinearity_demo(n_moons=40, depths=(2,), grid_size=9))
    >>> len(fig.axes)
    6
    """
    from matplotlib.figure import Figure

    columns = max(len(d.models) for d in demo.datasets)
    fig = Figure(figsize=(2.6 * columns, 2.7 * len(demo.datasets)), layout="constrained")
    axes = fig.subplots(len(demo.datasets), columns, squeeze=False)
    for row, data in zip(axes, demo.datasets):
        for ax, model in zip(row, data.models):
            ax.contourf(data.grid_x, data.grid_y, model.grid_probability, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.7)
            ax.contour(data.grid_x, data.grid_y, model.grid_probability, levels=[0.5], colors="k", linewidths=1)
            ax.scatter(data.x[:, 0], data.x[:, 1], c=data.y, cmap="RdBu_r", edgecolors="k", s=18 if len(data.y) > 10 else 60)
            title = f"{model.label}\naccuracy {model.accuracy:.0%}"
            if model.collapse_agreement is not None:
                title += f" (affine best {data.best_affine_accuracy:.0%})"
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[len(data.models) :]:
            ax.set_visible(False)
        row[0].set_ylabel(data.name)
    if path is not None:
        fig.savefig(path)
    return fig
