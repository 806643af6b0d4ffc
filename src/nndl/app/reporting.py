"""Callbacks that show ``nndl train`` to a person (the opening line, a progress bar; the book's epoch lines are
:class:`nndl.EpochPrinter`), stop it cleanly on Ctrl-C or SIGTERM, and strict JSON for machines."""

from __future__ import annotations

import json
import math
import signal
import sys
from typing import Any, TextIO

from ..callbacks import Callback
from ..text import plural
from ..training import TrainingRun


class ProgressBar(Callback):
    """A tqdm progress bar over each epoch's mini-batches (on stderr)."""

    def __init__(self, update_every: int = 50):
        self.update_every = update_every
        self.bar = None

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=run.n_batches, initial=run.batch, desc=f"Epoch {epoch}", unit="batch", leave=False,
                        file=sys.stderr)

    def on_batch_end(self, run: TrainingRun, batch: int) -> None:
        if (batch + 1) % self.update_every == 0:
            self.bar.update(self.update_every)

    def on_train_end(self, run: TrainingRun) -> None:
        if self.bar is not None:
            self.bar.close()

    on_epoch_end = on_train_end  # type: ignore[assignment]


class Announce(Callback):
    """Print what is about to be trained, from the network and settings the run really uses, and where a
    resumed run takes up again."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def on_train_begin(self, run: TrainingRun) -> None:
        d, config = run.network.describe(), run.config
        settings = [f"η={config.eta}", f"m={config.mini_batch_size}"]
        settings += [f"{name}={value}" for name, value in (("λ", config.lmbda), ("λ1", config.l1),
                                                           ("μ", config.momentum), ("dropout", d["dropout"])) if value]
        print(f"Training {d['sizes']} ({d['activation']} neurons, {d['output_activation']} outputs, {d['cost']} cost, "
              f"{d['init']} init, {d['dtype']}) on {run.optimizer.n} images: {', '.join(settings)}, "
              f"{plural(config.epochs, 'epoch')}, seed {run.seed}{resuming_at(run)}", file=self.stream or sys.stdout,
              flush=True)


def resuming_at(run: TrainingRun) -> str:
    """', resuming at epoch 3 after mini-batch 120 of 5000' for a resumed run (it counts epochs from 0), else ''."""
    if run.batch:
        return f", resuming at epoch {run.epoch} after mini-batch {run.batch} of {run.n_batches}"
    return f", resuming at epoch {run.epoch}" if run.epoch else ""


class StopOnSignal(Callback):
    """Ctrl-C or SIGTERM: finish the current mini-batch, then stop (a second Ctrl-C stops at once)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def on_train_begin(self, run: TrainingRun) -> None:
        self.previous = {}

        def stop(signum: int, frame: Any) -> None:
            for number, handler in self.previous.items():
                signal.signal(number, handler)  # a second signal acts at once
            run.request_stop()

        for number in self.SIGNALS:
            self.previous[number] = signal.signal(number, stop)

    def on_train_end(self, run: TrainingRun) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}


def finite_or_none(value: Any) -> Any:
    """The value with every NaN or infinite float replaced by None, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def strict_json(value: Any) -> str:
    """One line of standard JSON (NaN and infinities, which JSON has not, become null)."""
    return json.dumps(finite_or_none(value), allow_nan=False)
