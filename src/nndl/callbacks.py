"""Callbacks: the one way anything watches or steers training.

Printing, progress bars, early stopping, η schedules, checkpoints and live
streaming to the web page are all :class:`Callback` objects, so the training
loop never grows a flag for any of them. A callback that remembers something
between epochs (the best weights so far, how long training has run) returns it
from :meth:`Callback.get_state` and takes it back in :meth:`Callback.set_state`,
so a checkpoint can restore it and a resumed run behaves exactly as an
uninterrupted one.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

if TYPE_CHECKING:
    from .training import TrainingRun


class Callback:
    """Something that watches or steers training; override the hooks you need.

    Every hook receives the :class:`~nndl.training.TrainingRun`, which holds the
    network, the settings, the history so far, the current ``eta`` (which a
    callback may change) and ``stop_training`` (set it to end training after this
    epoch). ``on_interrupt`` runs when a stop was requested (Ctrl-C), before
``on_train_end``, which runs however training ends.
    """

    def on_train_begin(self, run: "TrainingRun") -> None: ...

    def on_epoch_begin(self, run: "TrainingRun", epoch: int) -> None: ...

    def on_batch_end(self, run: "TrainingRun", batch: int) -> None: ...

    def on_epoch_end(self, run: "TrainingRun", record: dict[str, Any]) -> None: ...

    def on_interrupt(self, run: "TrainingRun") -> None:
        """Training was asked to stop (``run.request_stop()``) and stopped after ``run.batch`` mini-batches."""

    def on_train_end(self, run: "TrainingRun") -> None: ...

    def get_state(self) -> dict[str, Any]:
        """What this callback must remember across a checkpoint: JSON values and NumPy arrays."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`get_state` returned."""


class LearningSpeed(Callback):
    """Record each layer's speed of learning, ‖∂C/∂b^l‖ = ‖δ^l‖ averaged over the mini-batch (chapter 5).

    Each epoch record gets ``"learning_speed"``: one number per layer after the
    input, the mean over the epoch's mini-batches. It shows hidden layers learning
    at very different speeds, which is why deep sigmoid networks are hard to train.
    """

    def on_train_begin(self, run: "TrainingRun") -> None:
        if not hasattr(self, "totals"):
            self.reset(len(run.network.biases))

    def reset(self, layers: int) -> None:
        self.totals, self.batches = np.zeros(layers), 0

    def on_batch_end(self, run: "TrainingRun", batch: int) -> None:
        nabla_b, m = run.gradients[0], run.batch_size
        self.totals += [float(np.linalg.norm(nb) / m) for nb in nabla_b]  # ‖δ^l‖ for the mean over the batch
        self.batches += 1

    def on_epoch_end(self, run: "TrainingRun", record: dict[str, Any]) -> None:
        record["learning_speed"] = (self.totals / max(self.batches, 1)).tolist()
        self.reset(len(self.totals))

    def get_state(self) -> dict[str, Any]:
        return {"totals": self.totals.copy(), "batches": self.batches}

    def set_state(self, state: dict[str, Any]) -> None:
        self.totals, self.batches = np.asarray(state["totals"], dtype=float), int(state["batches"])


class EpochPrinter(Callback):
    """Print the book's line after each epoch, ``Epoch 0: 9129 / 10000 (test, 91.29%)  0.30 s``, to ``stream``.

    ``train(..., callbacks=[EpochPrinter()])`` prints what ``nndl train`` prints
    (η too, once a schedule has changed it); the default stream is stdout.
    """

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def on_epoch_end(self, run: "TrainingRun", record: dict[str, Any]) -> None:
        changed = record["eta"] != run.config.eta
        print(format_epoch(record, show_eta=changed), file=self.stream or sys.stdout, flush=True)


def format_epoch(record: dict[str, Any], show_eta: bool = False) -> str:
    """'Epoch 0: 9129 / 10000 (test, 91.29%)  0.30 s', like the book, plus any cost and the time."""
    parts = [f"Epoch {record['epoch']}:"]
    for name, metrics in record["metrics"].items():
        if "correct" in metrics:
            parts.append(f"{metrics['correct']} / {metrics['total']} ({name}, {100 * metrics['accuracy']:.2f}%)")
        if "cost" in metrics:
            parts.append(f"{name} cost {metrics['cost']:.4f}")
    if not record["metrics"]:
        parts.append("complete")
    if show_eta:
        parts.append(f"η {record['eta']:g}")
    parts.append(f" {record['seconds']:.2f} s")
    return " ".join(parts)
