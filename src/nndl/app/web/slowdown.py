"""Chapter 3's widgets: one sigmoid neuron learning to output 0 from the input 1, and the softmax layer.

With the quadratic cost, δ = (a − y) σ'(z): started saturated (w = b = 2.0, a ≈ 0.98)
σ'(z) is tiny and the neuron hardly learns for many epochs; the book's other start
(w = 0.6, b = 0.9, a ≈ 0.82) learns at once. With the cross-entropy cost δ = a − y,
so the badly wrong neuron learns fastest. The costs and δ are the library's own
(:mod:`nndl.costs`), the neuron its sigmoid and the softmax layer its softmax
(:mod:`nndl.activations`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...activations import get_activation
from ...costs import get_cost

INPUT, TARGET = 1.0, 0.0  # the book's single training example: x = 1, y = 0
BOOK_STARTS = ((0.6, 0.9), (2.0, 2.0))  # the book's two starting (w, b): a ≈ 0.82 and a ≈ 0.98


def train_one_neuron(cost_name: str, weight: float, bias: float, eta: float = 0.15,
                     epochs: int = 300) -> dict[str, Any]:
    """Gradient descent on one example; the output a and cost C before each epoch and after the last."""
    cost, sigmoid = get_cost(cost_name), get_activation("sigmoid", "output")
    x, y = np.array([[INPUT]]), np.array([[TARGET]])
    w, b = weight, bias
    outputs, costs = [], []
    for _ in range(epochs + 1):
        z = w * x + b  # z = wx + b
        a = sigmoid.fn(z)  # a = σ(z)
        outputs.append(float(a[0, 0]))
        costs.append(cost.fn(z, a, y, sigmoid))
        delta = cost.delta(z, a, y, sigmoid)  # quadratic: (a − y)σ'(z); cross-entropy: a − y
        w, b = w - eta * float(delta[0, 0] * INPUT), b - eta * float(delta[0, 0])  # ∂C/∂w = xδ, ∂C/∂b = δ
    return {"cost": cost.name, "start": {"w": weight, "b": bias}, "eta": eta, "epochs": epochs,
            "output": outputs, "costs": costs, "final": {"w": w, "b": b}}


def softmax_outputs(z: list[float]) -> dict[str, Any]:
    """The softmax layer's outputs a_j = e^(z_j) / Σ_k e^(z_k) for the weighted inputs ``z`` (chapter 3's widget)."""
    a = get_activation("softmax", "output").fn(np.array(z, dtype=np.float64)[:, None])
    return {"z": z, "a": a[:, 0].tolist(), "sum": float(a.sum())}
