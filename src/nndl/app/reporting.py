"""Callbacks that show training to a person: the book's epoch lines and a progress bar."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..training import Callback, TrainingRun


def format_epoch(record: dict[str, Any], show_eta: bool = False) -> str:
    """'Epoch 0: 9129 / 10000 (test, 91.29%)  0.30 s', like the book, plus any cost and the time."""
    parts = [f"Epoch {record['epoch']}:"]
    names = dict.fromkeys(key.rsplit("_", 1)[0] for key in record if key.endswith(("_correct", "_cost")))
    for name in names:
        if name + "_correct" in record:
            parts.append(
                f"{record[name + '_correct']} / {record[name + '_total']} "
                f"({name}, {100 * record[name + '_accuracy']:.2f}%)"
            )
        if name + "_cost" in record:
            parts.append(f"{name} cost {record[name + '_cost']:.4f}")
    if not names:
        parts.append("complete")
    if show_eta:
        parts.append(f"η {record['eta']:g}")
    parts.append(f" {record['seconds']:.2f} s")
    return " ".join(parts)


class EpochPrinter(Callback):
    """Print one line per epoch (with η once a schedule has changed it)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        changed = record["eta"] != run.config.eta
        print(format_epoch(record, show_eta=changed), file=self.stream or sys.stdout, flush=True)


class ProgressBar(Callback):
    """A tqdm progress bar over each epoch's mini-batches (on stderr)."""

    def __init__(self, update_every: int = 50):
        self.update_every = update_every
        self.bar = None

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=run.n_batches, desc=f"Epoch {epoch}", unit="batch", leave=False, file=sys.stderr)

    def on_batch_end(self, run: TrainingRun, batch: int) -> None:
        if (batch + 1) % self.update_every == 0:
            self.bar.update(self.update_every)

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        self.bar.close()
