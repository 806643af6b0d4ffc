"""The Train tab's presets: the book's runs, taken from the experiment registry where it has them.

Each preset is a flat set of :class:`~nndl.app.web.schemas.TrainSettings`, so
every hyperparameter shows in the form and can be edited. Runs longer than the
page's caps (the overfitting runs' 400 epochs) are shortened to the cap, and
the preset says so.
"""

from __future__ import annotations

from typing import Any

from ...runs.experiments import get_experiment
from ...runs.spec import RunSpec
from .schemas import MAX_EPOCHS, MAX_TRAIN_SIZE, TrainSettings

LIVE_MONITOR = ["training-cost", "training-accuracy"]  # the page's curves: training cost and accuracy per epoch

# (key, title, experiment and run in the registry, or flat settings of a run the registry does not hold)
BOOK_RUNS: tuple[tuple[str, str, tuple[str, str] | dict[str, Any]], ...] = (
    ("chapter1", "Chapter 1: [784, 30, 10], quadratic cost, η = 3.0", ("chapter1-30", "[784, 30, 10]")),
    ("overfitting", "Overfitting: 1,000 training images", ("overfitting", "1,000 images")),
    ("l2", "L2 regularisation, λ = 0.1, 1,000 images", ("regularized", "λ = 0.1")),
    ("cross-entropy", "Cross-entropy cost, [784, 30, 10], η = 0.5", ("cross-entropy-30", "[784, 30, 10]")),
    ("softmax", "Softmax outputs + log-likelihood cost, [784, 100, 10]",
     {"hidden": [100], "cost": "log-likelihood", "init": "normalized", "eta": 0.5, "lmbda": 5.0}),
    ("relu", "Rectified linear hidden neurons, [784, 100, 10]",
     {"hidden": [100], "activation": "relu", "init": "he", "cost": "log-likelihood", "eta": 0.1, "lmbda": 5.0}),
    ("dropout", "Dropout p = 0.5, [784, 100, 10]", ("dropout", "[784, 100, 10] dropout")),
    ("expanded", "Expanded data: 250,000 one-pixel shifts", ("expanded", "250,000 shifted images")),
    ("ch6-full100", "Chapter 6 #1: [784, 100, 10], softmax + log-likelihood (network3)",
     ("chapter6-full100", "#1 full100")),
    ("ch6-conv1", "Chapter 6 #2: conv20x5, pool2, full100 (about 7 s an epoch)",
     ("chapter6-conv1", "#2 conv20x5,pool2,full100")),
    ("ch6-conv2", "Chapter 6 #3: conv20x5, pool2, conv40x5, pool2, full100 (about 13 s an epoch)",
     ("chapter6-conv2", "#3 conv20x5,pool2,conv40x5,pool2,full100")),
    ("ch6-relu", "Chapter 6 #4: the same with rectified linear units, λ = 0.1",
     ("chapter6-relu", "#4 ReLU")),
)


def preset_settings(source: tuple[str, str] | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A book run as the form's settings, within the page's caps; and a note on what was shortened."""
    flat = RunSpec.from_flat(get_experiment(source[0]).runs[source[1]] if isinstance(source, tuple) else source).flat()
    settings = {name: flat[name] for name in TrainSettings.model_fields if name in flat}
    settings["train_size"] = settings["train_size"] or MAX_TRAIN_SIZE
    settings["monitor"] = sorted(set(settings["monitor"]) | set(LIVE_MONITOR))
    note = ""
    if settings["epochs"] > MAX_EPOCHS:
        note = f"the book trains {settings['epochs']} epochs; the page stops at {MAX_EPOCHS}"
        settings["epochs"] = MAX_EPOCHS
    return TrainSettings.model_validate(settings, strict=False).model_dump(), note


def presets() -> list[dict[str, Any]]:
    """Every preset: key, title, settings and note."""
    listed = []
    for key, title, source in BOOK_RUNS:
        settings, note = preset_settings(source)
        listed.append({"key": key, "title": title, "settings": settings, "note": note})
    return listed
