"""Figures: learning curves like the book's, drawn headless with Matplotlib.

Matplotlib is imported only when a figure is drawn (``pip install 'nndl[plots]'``).
Each function writes a PNG (through a temporary file) and returns the series it
drew, so tests can check what a figure shows.
"""

from __future__ import annotations

import math
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
                xlog: bool = False, markers: bool = False, ylog: bool = False) -> Series:
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
    if ylog:
        axes.set_yscale("log")
    if not xlog and all(float(v).is_integer() for x, _ in series.values() for v in x):
        axes.xaxis.get_major_locator().set_params(integer=True)  # epochs and layers: no 1.5
    axes.grid(True, alpha=0.3, which="both" if ylog else "major")
    if len(series) > 1 or markers:
        axes.legend()
    save_figure(plt, figure, path)
    return series


def save_figure(plt: Any, figure: Any, path: str | os.PathLike) -> None:
    figure.tight_layout()
    with atomic_output(Path(path)) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)


def plot_spread(panels: dict[str, dict[str, list[list[float]]]], reference: dict[str, list[float | None]],
                path: str | os.PathLike, title: str, xlabel: str, ylabel: str,
                reference_label: str = "reference") -> None:
    """Values spread over seeds, on a log scale: one panel per entry of ``panels`` ({panel: {series: [values at
    position 1, at position 2, …]}}), each series' values as dots in its own colour beside each position, and a
    panel's ``reference`` values (one per position) as black crosses."""
    plt = pyplot()
    figure, all_axes = plt.subplots(1, len(panels), figsize=(4 * len(panels) + 1, 4.5), dpi=100, sharey=True,
                                    squeeze=False)
    for axes, (panel, named) in zip(all_axes[0], panels.items()):
        width = 0.6 / max(len(named), 1)
        for index, (name, positions) in enumerate(named.items()):
            offset = (index - (len(named) - 1) / 2) * width
            xs = [p + 1 + offset for p, values in enumerate(positions) for _ in values]
            ys = [v for values in positions for v in values]
            axes.plot(xs, ys, "o", markersize=4, alpha=0.6, color=f"C{index}", label=name)
        marks = [(p + 1, v) for p, v in enumerate(reference.get(panel, [])) if v is not None]
        if marks:
            axes.plot(*zip(*marks), "x", color="black", markersize=9, mew=2, label=reference_label)
        axes.set_title(panel)
        axes.set_xlabel(xlabel)
        axes.set_xticks(range(1, max(len(p) for p in named.values()) + 1))
        axes.set_yscale("log")
        axes.grid(True, alpha=0.3, which="both")
    all_axes[0][0].set_ylabel(ylabel)
    shown = {}  # one legend for every panel's series, each named once
    for axes in all_axes[0]:
        shown.update(zip(*reversed(axes.get_legend_handles_labels())))
    all_axes[0][-1].legend(shown.values(), shown.keys(), fontsize=8)
    figure.suptitle(title)
    save_figure(plt, figure, path)


METRIC_LABELS = {"accuracy": "accuracy (%)", "cost": "cost"}


MAX_SERIES = 20  # lines in one figure: a history has training, validation and test


def as_number(value: Any) -> float | None:
    """A JSON number as a float (non-finite as NaN, drawn as a gap), or None for anything else."""
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def checked_history(summary: Any) -> list[dict[str, Any]]:
    """The per-epoch records of a run's JSON summary, each with a finite numeric 'epoch'.

    Anything else (the wrong JSON shape, an epoch that is not a number) is a
    one-line NndlError, before Matplotlib sees it.
    """
    history = summary.get("history") if isinstance(summary, dict) else None
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) and "epoch" in r for r in history):
        raise NndlError("no per-epoch history found: expected the JSON of 'nndl train --json' or an experiment")
    if any(epoch is None or math.isnan(epoch) for epoch in (as_number(r["epoch"]) for r in history)):
        raise NndlError("the history's 'epoch' values must be finite numbers")
    return history


def history_series(history: list[dict[str, Any]], kind: str) -> Series:
    """Every dataset's ``kind`` measure (accuracy or cost) in a history, as a series over epochs (accuracy in %).

    A value that is not a number is an NndlError; more than MAX_SERIES datasets is too.
    """
    def metrics_of(record: dict[str, Any]) -> dict[str, Any]:
        metrics = record.get("metrics", {})
        return metrics if isinstance(metrics, dict) else {}

    names = sorted({name for record in history for name, measures in metrics_of(record).items()
                    if isinstance(measures, dict) and kind in measures})
    if len(names) > MAX_SERIES:
        raise NndlError(f"the history has {len(names)} datasets with a {kind}; a figure shows at most {MAX_SERIES}")
    scale = 100.0 if kind == "accuracy" else 1.0
    series: Series = {}
    for name in names:
        recorded = [r for r in history if isinstance(metrics_of(r).get(name), dict) and kind in metrics_of(r)[name]]
        values = [as_number(metrics_of(r)[name][kind]) for r in recorded]
        if None in values:
            raise NndlError(f"the history's {name[:40]!r} {kind} values must be numbers")
        label = str(name)[:40].replace("$", r"\$")  # a '$' would start Matplotlib's maths
        scaled = [scale * v if math.isfinite(scale * v) else math.nan for v in values]
        series[label] = ([as_number(r["epoch"]) for r in recorded], scaled)
    return series


def plot_history(summary: dict[str, Any], out_dir: str | os.PathLike, stem: str = "history") -> list[Path]:
    """Redraw a saved run's learning curves: one PNG for accuracy, one for cost (when recorded)."""
    history = checked_history(summary)
    written = []
    for kind in ("accuracy", "cost"):
        series = history_series(history, kind)
        if series:
            path = Path(out_dir) / f"{stem}-{kind}.png"
            whose = f"{next(iter(series))} {kind}" if len(series) == 1 else kind  # one line has no legend: say whose
            plot_series(series, path, f"{whose[0].upper()}{whose[1:]} per epoch", "epoch", METRIC_LABELS[kind])
            written.append(path)
    return written


def plot_mistakes(images: Any, labels: Any, guesses: Any, path: str | os.PathLike, title: str) -> list[tuple[int, int]]:
    """Digits in a grid like the book's figure of its ensemble's mistakes: each image (side × side, values in
    [0, 1]) with its true digit at the top right and the guess at the bottom right. Returns the (true, guess)
    pairs drawn, in order."""
    plt = pyplot()
    columns = 11
    rows = max(1, math.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.95, rows * 0.9 + 0.8), dpi=100, squeeze=False)
    pairs = [(int(label), int(guess)) for label, guess in zip(labels, guesses)]
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(pairs):
            ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=1)
            ax.text(1.04, 1.0, str(pairs[k][0]), transform=ax.transAxes, ha="left", va="top", fontsize=9,
                    color="tab:blue")
            ax.text(1.04, 0.0, str(pairs[k][1]), transform=ax.transAxes, ha="left", va="bottom", fontsize=9,
                    color="tab:red")
    figure.suptitle(f"{title}\ntrue digit at the top right (blue), the guess at the bottom right (red)", fontsize=9)
    figure.tight_layout()
    with atomic_output(Path(path)) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
    return pairs
