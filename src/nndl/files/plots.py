"""Figures: learning curves like the book's, drawn headless with Matplotlib.

Matplotlib is imported only when a figure is drawn (``pip install 'nndl[plots]'``).
Each function writes a PNG (through a temporary file) and returns the series it
drew, so tests can check what a figure shows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import NndlError
from .atomic import atomic_output

Series = dict[str, tuple[list[float], list[float]]]


def pyplot():
    """Matplotlib's pyplot on the headless Agg backend, or an error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise NndlError("figures need Matplotlib: pip install 'nndl[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_series(series: Series, path: str | os.PathLike, title: str, xlabel: str, ylabel: str,
                xlog: bool = False, markers: bool = False) -> Series:
    """Draw one line per entry of ``series`` ({label: (x, y)}) and save it as a PNG."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, (x, y) in series.items():
        axes.plot(x, y, marker="o" if markers else None, markersize=4, label=label)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if xlog:
        axes.set_xscale("log")
    axes.grid(True, alpha=0.3)
    if len(series) > 1 or markers:
        axes.legend()
    figure.tight_layout()
    with atomic_output(Path(path)) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
    return series


METRIC_LABELS = {"accuracy": "accuracy (%)", "cost": "cost"}


def history_series(history: list[dict[str, Any]], kind: str) -> Series:
    """Every dataset's ``kind`` measure (accuracy or cost) in a history, as a series over epochs (accuracy in %)."""
    names = sorted({name for record in history for name, metrics in record.get("metrics", {}).items()
                    if isinstance(metrics, dict) and isinstance(metrics.get(kind), (int, float))})
    scale = 100.0 if kind == "accuracy" else 1.0
    series: Series = {}
    for name in names:
        points = [(r["epoch"], r["metrics"][name][kind]) for r in history
                  if isinstance(r.get("metrics", {}).get(name, {}).get(kind), (int, float))]
        series[name] = ([e for e, _ in points], [scale * v for _, v in points])
    return series


def plot_history(summary: dict[str, Any], out_dir: str | os.PathLike, stem: str = "history") -> list[Path]:
    """Redraw a saved run's learning curves: one PNG for accuracy, one for cost (when recorded)."""
    history = summary.get("history")
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise NndlError("no per-epoch history found: expected the JSON of 'nndl train --json' or an experiment")
    written = []
    for kind in ("accuracy", "cost"):
        series = history_series(history, kind)
        if series:
            path = Path(out_dir) / f"{stem}-{kind}.png"
            plot_series(series, path, f"{kind.capitalize()} per epoch", "epoch", METRIC_LABELS[kind])
            written.append(path)
    return written
