"""The worked example of docs/gradients.md: a small classifier, PyTorch's functions vs stablenn's.

1. Ordinary data: the same two-layer classifier (tanh hidden layer, binary cross-entropy
   with logits) trained with ``torch.nn`` and with ``stablenn.torch`` from the same start
   gives the same losses, step by step.
2. Saturated hidden units: scale the inputs so that most tanh pre-activations exceed 9
   (float32): PyTorch's gradient w.r.t. the first layer's weights is exactly 0 for those
   units; stablenn's is tiny and within a few ULP of the exact value (mpmath, 50 digits).
3. Confident predictions: logits of 20 to 80 on correct labels: the gradient of the loss is
   ``sigma(x) - 1 = -sigma(-x)`` (e^-40 ~ 4e-18); PyTorch returns 0, stablenn the value.
4. Infinite logits and fully masked rows: PyTorch's loss is NaN and poisons the batch;
   stablenn's loss is finite where the limit is, and so are its gradients.

Everything runs in float32 on the CPU, deterministic; exact values come from mpmath.
Run: ``python benchmarks/gradient_example.py``.
"""

from __future__ import annotations

import sys

import mpmath
import numpy as np
import torch
from torch import nn

import stablenn.torch as snt

mpmath.mp.dps = 50


def model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    tanh = nn.Tanh() if kind == "torch" else snt.Tanh()
    return nn.Sequential(nn.Linear(2, 16), tanh, nn.Linear(16, 1))


def data(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    y = (torch.rand(n, generator=g) < 0.5).float()
    x = torch.randn(n, 2, generator=g) + (2 * y[:, None] - 1) * torch.tensor([1.0, 0.5])
    return x, y


def train(kind: str, x: torch.Tensor, y: torch.Tensor, steps: int = 200) -> list[float]:
    net = model(kind)
    loss_fn = nn.BCEWithLogitsLoss() if kind == "torch" else snt.BCEWithLogitsLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(net(x)[:, 0], y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def exact_first_layer_grad(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """d(mean BCE)/dW1 in mpmath: (sigma(z2) - y) w2 tanh'(z1) x^T, averaged."""
    w1, b1 = (p.detach().double().numpy() for p in (net[0].weight, net[0].bias))
    w2, b2 = (p.detach().double().numpy() for p in (net[2].weight, net[2].bias))
    n = x.shape[0]
    out = [[mpmath.mpf(0)] * w1.shape[1] for _ in range(w1.shape[0])]
    for xi, yi in zip(x.double().numpy(), y.double().numpy()):
        xm = [mpmath.mpf(float(v)) for v in xi]
        z1 = [sum(mpmath.mpf(float(w1[h, k])) * xm[k] for k in range(2)) + mpmath.mpf(float(b1[h])) for h in range(w1.shape[0])]
        a1 = [mpmath.tanh(z) for z in z1]
        z2 = sum(mpmath.mpf(float(w2[0, h])) * a1[h] for h in range(len(a1))) + mpmath.mpf(float(b2[0]))
        d2 = 1 / (1 + mpmath.exp(-z2)) - mpmath.mpf(float(yi))
        for h in range(w1.shape[0]):
            d1 = d2 * mpmath.mpf(float(w2[0, h])) * (1 / mpmath.cosh(z1[h]) ** 2)
            for k in range(2):
                out[h][k] += d1 * xm[k] / n
    return np.array([[float(v) for v in row] for row in out])


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    g32 = got.astype(np.float32)
    e32 = exact.astype(np.float32)
    spacing = np.spacing(np.abs(e32)).astype(np.float64)
    return np.abs(g32.astype(np.float64) - e32.astype(np.float64)) / spacing


def main() -> int:
    torch.set_num_threads(1)
    x, y = data()

    print("## 1. Ordinary data: the same losses\n")
    lt, ls = train("torch", x, y), train("stablenn", x, y)
    print("| step | PyTorch loss | stablenn loss | relative difference |")
    print("|---:|---:|---:|---:|")
    for step in (0, 1, 10, 50, 100, 199):
        print(f"| {step} | {lt[step]:.7f} | {ls[step]:.7f} | {abs(lt[step] - ls[step]) / lt[step]:.1e} |")
    worst = max(abs(a - b) / a for a, b in zip(lt, ls))
    print(f"\nlargest relative difference over {len(lt)} steps: {worst:.1e}\n")

    print("## 2. Saturated hidden units: first-layer gradients\n")
    xs = x[:8] * 40.0  # most |tanh pre-activations| now exceed 9: tanh rounds to +-1 in float32
    ys = y[:8]
    exact = exact_first_layer_grad(model("torch"), xs, ys)
    rows = []
    grads_w1 = {}
    for kind in ("torch", "stablenn"):
        net = model(kind)
        loss_fn = nn.BCEWithLogitsLoss() if kind == "torch" else snt.BCEWithLogitsLoss()
        loss_fn(net(xs)[:, 0], ys).backward()
        g = net[0].weight.grad.double().numpy()
        grads_w1[kind] = g
        zero = int(np.sum((g == 0) & (exact != 0)))
        rows.append((kind, zero, float(np.max(ulps(g, exact)))))
    alive = grads_w1["torch"] != 0  # where PyTorch's gradient survived: both see the float32 matmuls
    rows = [(k, z, e, float(np.max(ulps(grads_w1[k][alive], exact[alive])))) for k, z, e in rows]
    with torch.no_grad():
        z1 = model("torch")[0](xs)
    print(f"pre-activations with |z| > 9: {int((z1.abs() > 9).sum())} of {z1.numel()}\n")
    print("| implementation | weight gradients exactly 0 (exact value non-zero) | max error vs mpmath, all (ULP) "
          "| max error where PyTorch's is non-zero (ULP) |")
    print("|---|---:|---:|---:|")
    for kind, zero, err, err_alive in rows:
        label = "PyTorch nn.Tanh" if kind == "torch" else "stablenn.torch.Tanh"
        print(f"| {label} | {zero} of {exact.size} | {err:.3g} | {err_alive:.3g} |")

    print("\n## 3. Confident predictions: d(loss)/d(logit) at large logits, label 1\n")
    logits = torch.tensor([20.0, 40.0, 60.0, 80.0])
    labels = torch.ones(4)
    print("| logit | exact sigma(x) - 1 | PyTorch | stablenn |")
    print("|---:|---:|---:|---:|")
    grads = {}
    for kind in ("torch", "stablenn"):
        v = logits.clone().requires_grad_()
        fn = nn.BCEWithLogitsLoss(reduction="sum") if kind == "torch" else snt.BCEWithLogitsLoss(reduction="sum")
        fn(v, labels).backward()
        grads[kind] = v.grad.numpy()
    for i, lg in enumerate(logits.tolist()):
        e = -1 / (1 + mpmath.exp(mpmath.mpf(lg)))  # sigma(x) - 1 = -sigma(-x)
        print(f"| {lg:.0f} | {float(e):.7e} | {grads['torch'][i]:.7e} | {grads['stablenn'][i]:.7e} |")
    # cross-entropy at the argmax: d/dx_t = p_t - 1 = -sum_{j != t} p_j
    row = torch.tensor([[30.0, 0.0, -5.0]])
    ce = {}
    for kind in ("torch", "stablenn"):
        v = row.clone().requires_grad_()
        (nn.CrossEntropyLoss() if kind == "torch" else snt.CrossEntropyLoss())(v, torch.tensor([0])).backward()
        ce[kind] = v.grad[0, 0].item()
    ex = -(mpmath.exp(-30) + mpmath.exp(-35)) / (1 + mpmath.exp(-30) + mpmath.exp(-35))
    print(f"\ncross-entropy, logits (30, 0, -5), target 0: d/dx_0 exact {float(ex):.7e}, "
          f"PyTorch {ce['torch']:.7e}, stablenn {ce['stablenn']:.7e}\n")

    print("## 4. Infinite logits and a fully masked row\n")
    inf = float("inf")
    cases = {
        "BCE, logits (+inf, -inf, 2) labels (1, 0, 1)": (
            lambda f: f(torch.tensor([inf, -inf, 2.0]).requires_grad_(), torch.tensor([1.0, 0.0, 1.0])),
            nn.BCEWithLogitsLoss(),
            snt.BCEWithLogitsLoss(),
        ),
        "CE, rows (0, 1, 2) and (-inf, -inf, -inf) masked, targets (2, -100)": (
            lambda f: f(torch.tensor([[0.0, 1.0, 2.0], [-inf, -inf, -inf]]).requires_grad_(), torch.tensor([2, -100])),
            nn.CrossEntropyLoss(),
            snt.CrossEntropyLoss(),
        ),
    }
    print("| case | PyTorch loss | PyTorch gradient | stablenn loss | stablenn gradient |")
    print("|---|---:|---|---:|---|")
    for label, (run, theirs, ours) in cases.items():
        cells = []
        for fn in (theirs, ours):
            leaf: list[torch.Tensor] = []

            def call(v: torch.Tensor, t: torch.Tensor, _fn: nn.Module = fn) -> torch.Tensor:
                leaf.append(v)
                return _fn(v, t)

            loss = run(call)
            loss.backward()
            g = leaf[0].grad.double().numpy().round(4).tolist()
            cells += [f"{float(loss.detach()):.4f}", f"{g}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
