"""The Unstable gradients view (chapter 5): how fast each hidden layer learns, as the book measured it.

The run is the registry's ``chapter5-speed`` run (fig/generate_gradient.py):
[784, 30, …, 30, 10], cross-entropy, full-batch gradient descent with η = 0.1
and λ = 5.0 on the first 1,000 training images, ‖∂C/∂b^l‖ recorded by the
library's LearningSpeed callback before each update, so epoch 0 holds the
speeds at the initial weights (the book's numbers). The page chooses the depth
and, to see the remedies, the neurons and the initial weights.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ...runs.experiments import SPEED, SPEED_BOOK
from ...runs.runner import DataCache, run_spec
from ...runs.spec import RunSpec
from .schemas import Strict

MAX_SPEED_EPOCHS = 500  # the book's run; about 2 s for four hidden layers on one core


class SpeedRequest(Strict):
    """One speed-of-learning run: 1-4 hidden layers of 30, the book's settings otherwise unless changed."""

    layers: int = Field(4, ge=1, le=4, description="hidden layers of 30 neurons")
    activation: Literal["sigmoid", "relu"] = "sigmoid"
    init: Literal["normalized", "large"] = Field("normalized", description="N(0, 1/n_in) (the book's) or N(0, 1)")
    epochs: int = Field(200, ge=1, le=MAX_SPEED_EPOCHS)
    seed: int = Field(1, ge=0, le=2**31 - 1)


def speed_run(request: SpeedRequest, cache: DataCache, source: str | None) -> dict[str, Any]:
    """Train the run; each epoch's ‖∂C/∂b^l‖ for the hidden layers, the book's values at the start, the accuracy."""
    settings = {**SPEED, **request.model_dump(exclude={"layers"}), "hidden": [30] * request.layers,
                "source": source, "workers": 0}
    result = run_spec(RunSpec.from_flat(settings, where="speed-of-learning run"), cache=cache, blas_thread_limit=1)
    history = result.summary["history"]
    return {"layers": request.layers, "epochs": [r["epoch"] for r in history],
            "speeds": [r["learning_speed"][:-1] for r in history],  # the last is the output layer's
            "book": SPEED_BOOK.get(request.layers) if request.activation == "sigmoid" and request.init == "normalized"
            else None,
            "test_accuracy": result.summary["final"]["accuracy"]}
