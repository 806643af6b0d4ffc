"""L2 and L1 regularisation (chapter 3): penalties on the weights, never the biases.

With training-set size n, the regularised cost is

    C = C0 + (λ/2n) Σ_w w²      (L2, eq. 85)      C = C0 + (λ/n) Σ_w |w|      (L1, eq. 95)

and each adds a term to ∂C/∂w: (λ/n) w for L2, (λ/n) sgn(w) for L1, with sgn(0) = 0.

network3.py (chapter 6) divides its L2 term by the number of mini-batches n/m
instead of n: (λ/2) Σ w² / (n/m), m times the decay of network2.py at the same
λ. ``l2_scale="mini-batches"`` is that convention; "training-set" is the book's
eq. 85. Only the L2 divisor changes: network3.py has no L1 term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

L2_SCALES = ("training-set", "mini-batches")


@dataclass(frozen=True)
class Regularization:
    """Strengths λ of the L2 and L1 penalties (0 = off), and what the L2 term is divided by.

    ``l2_scale`` "training-set" divides by the training-set size n (network2.py),
    "mini-batches" by the number of mini-batches n // ``mini_batch_size`` (network3.py).
    """

    l2: float = 0.0
    l1: float = 0.0
    l2_scale: str = "training-set"
    mini_batch_size: int = 1

    def __post_init__(self) -> None:
        for name, value in (("lmbda (L2)", self.l2), ("l1", self.l1)):
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{name} {value}: the regularisation strength λ must be ≥ 0")
        if self.l2_scale not in L2_SCALES:
            raise ConfigError(f"l2_scale {self.l2_scale!r}: choose from {', '.join(L2_SCALES)}")

    @property
    def active(self) -> bool:
        return self.l2 > 0 or self.l1 > 0

    def l2_divisor(self, n: int) -> int:
        """The n of λ/2n for a training set of ``n``: n itself, or network3.py's number of mini-batches n // m."""
        return n if self.l2_scale == "training-set" else max(n // self.mini_batch_size, 1)

    def penalty(self, weights: list[np.ndarray], n: int) -> float:
        """The regularisation term added to the cost: (λ/2n) Σ w² + (λ₁/n) Σ |w| (n: the L2 divisor for L2)."""
        total = 0.0
        if self.l2:
            total += 0.5 * self.l2 / self.l2_divisor(n) * sum(float(np.sum(w.astype(np.float64) ** 2))
                                                              for w in weights)
        if self.l1:
            total += self.l1 / n * sum(float(np.sum(np.abs(w), dtype=np.float64)) for w in weights)
        return total

    def gradient(self, w: np.ndarray, n: int) -> np.ndarray:
        """∂(penalty)/∂w: (λ/n) w + (λ₁/n) sgn(w) (n: the L2 divisor for L2)."""
        if not self.l1:
            return self.l2 / self.l2_divisor(n) * w
        if not self.l2:
            return self.l1 / n * np.sign(w)
        return self.l2 / self.l2_divisor(n) * w + self.l1 / n * np.sign(w)
