"""L2 and L1 regularisation (chapter 3): penalties on the weights, never the biases.

With training-set size n, the regularised cost is

    C = C0 + (λ/2n) Σ_w w²      (L2, eq. 85)      C = C0 + (λ/n) Σ_w |w|      (L1, eq. 95)

and each adds a term to ∂C/∂w: (λ/n) w for L2, (λ/n) sgn(w) for L1, with sgn(0) = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class Regularization:
    """Strengths λ of the L2 and L1 penalties (0 = off); ``n`` is the training-set size."""

    l2: float = 0.0
    l1: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("lmbda (L2)", self.l2), ("l1", self.l1)):
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{name} {value}: the regularisation strength λ must be ≥ 0")

    @property
    def active(self) -> bool:
        return self.l2 > 0 or self.l1 > 0

    def penalty(self, weights: list[np.ndarray], n: int) -> float:
        """The regularisation term added to the cost: (λ/2n) Σ w² + (λ₁/n) Σ |w|."""
        total = 0.0
        if self.l2:
            total += 0.5 * self.l2 / n * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in weights)
        if self.l1:
            total += self.l1 / n * sum(float(np.sum(np.abs(w), dtype=np.float64)) for w in weights)
        return total

    def gradient(self, w: np.ndarray, n: int) -> np.ndarray:
        """∂(penalty)/∂w: (λ/n) w + (λ₁/n) sgn(w)."""
        if not self.l1:
            return self.l2 / n * w
        if not self.l2:
            return self.l1 / n * np.sign(w)
        return self.l2 / n * w + self.l1 / n * np.sign(w)
