"""``nndl inspect MODEL``: see inside a trained network.

Four views, each computed by a plain function returning NumPy arrays or dicts
(so the web page shows the same numbers) and drawn to a PNG:

- the confusion matrix: how often each true digit (row) got each guess (column);
- the misclassified digits, surest mistakes first, with true label, guess and confidence;
- each first-layer neuron's weights w^1_j as an image: the pattern it responds to;
- the speed of learning of each layer, ‖∂C/∂b^l‖ per epoch (chapter 5), when the
  model's history recorded it.

Everything is gathered in one self-contained page, ``index.html``, with the
PNGs beside it (no scripts, nothing fetched from elsewhere).
"""

from __future__ import annotations

import argparse
import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.mnist import Dataset, load_mnist
from ..errors import ConfigError, DataError
from ..files.atomic import atomic_output, write_bytes_atomically
from ..files.models import load_model
from ..files.plots import Series, plot_series, pyplot
from ..layers import shorthand
from ..network import Network
from ..pixels import unit_interval
from .options import add_data_option, whole_number

GALLERY_SIZE = 40  # misclassified digits shown
WEIGHT_IMAGES = 100  # first-layer neurons drawn at most (an 800-neuron layer would be unreadable)
COUNTED_COLUMNS = 30  # a confusion figure with more output neurons is drawn in colour only, without its counts


# -- the computational core: plain arrays, shared with the web page ----------------------------


def confusion_matrix(labels: np.ndarray, guesses: np.ndarray, n_outputs: int) -> np.ndarray:
    """C[i, j] = how many images of true digit i the network called j; where i = j the guess is right.

    A row for each class of the data (0 to the largest label) and a column for
    each output neuron, so a network with 5 outputs read on digits 0-9 gives a
    10×5 matrix and one with 12 outputs a 10×12 one.
    """
    n_labels = int(labels.max(initial=-1)) + 1
    return np.bincount(labels * n_outputs + guesses, minlength=n_labels * n_outputs).reshape(n_labels, n_outputs)


def guess_confidence(outputs: np.ndarray, guesses: np.ndarray) -> np.ndarray:
    """How sure each guess is: its softmax probability, or for sigmoid outputs its activation a^L_j."""
    return outputs[np.arange(len(guesses)), guesses].astype(np.float64)


def misclassified(labels: np.ndarray, guesses: np.ndarray, confidence: np.ndarray,
                  limit: int | None = None) -> dict[str, np.ndarray]:
    """The wrongly classified examples, surest mistakes first: their index, label, guess and confidence."""
    wrong = np.flatnonzero(labels != guesses)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    return {"index": wrong, "label": labels[wrong], "guess": guesses[wrong], "confidence": confidence[wrong]}


def image_side(n_pixels: int) -> int:
    """The side of a square image of ``n_pixels`` pixels, or a ConfigError if it is not square."""
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ConfigError(f"the network takes {n_pixels} inputs, which is not a square image")
    return side


def weight_images(network: Network, limit: int | None = None) -> np.ndarray:
    """Each first-layer neuron's incoming weights w^1_j as an image: shape (neurons, side, side).

    For a convolutional first layer, each feature map's K×K kernel (its input
    maps' kernels one above the other): shape (maps, C·K, K).
    """
    weights = network.weights[0][:limit]
    if weights.ndim == 4:
        maps, c, k, _ = weights.shape
        return weights.reshape(maps, c * k, k).astype(np.float64)
    side = image_side(network.sizes[0])
    return weights.reshape(len(weights), side, side).astype(np.float64)


def layer_names(network: Network) -> list[str]:
    """'hidden layer 1', ..., 'output layer' for the layers with biases, as a reader calls them.

    A convolutional network's hidden layers are named by their shorthand: 'conv20x5 (layer 1)'.
    """
    count = len(network.parameter_layers)
    if network.is_dense:
        return [f"hidden layer {l}" for l in range(1, count)] + ["output layer"]
    names = shorthand(network.layers).split(",")
    return [f"{names[l]} (layer {l + 1})" for l, layer in enumerate(network.layers[:-1]) if layer.has_parameters] \
        + ["output layer"]


def learning_speed(history: Any, network: Network) -> Series:
    """Each layer's speed of learning per epoch, from the epoch records' ``learning_speed`` lists.

    The speed of layer l is ‖∂C/∂b^l‖ = ‖δ^l‖ (chapter 5), averaged over the
    epoch's mini-batches; {layer name: (epochs, speeds)}, empty when the history
    does not hold it.
    """
    if not isinstance(history, list):
        return {}
    names = layer_names(network)
    records = [r for r in history if isinstance(r, dict) and isinstance(r.get("learning_speed"), list)
               and len(r["learning_speed"]) == len(names)]
    return {name: ([r["epoch"] for r in records], [float(r["learning_speed"][l]) for r in records])
            for l, name in enumerate(names) if records}


@dataclass(frozen=True)
class Inspection:
    """What :func:`inspect_network` finds: accuracy, confusion matrix, mistakes, weight images, speeds."""

    dataset: str
    accuracy: float
    confusion: np.ndarray
    mistakes: dict[str, np.ndarray]
    mistake_images: np.ndarray
    confidence_kind: str
    weights: np.ndarray
    speed: Series = field(default_factory=dict)


def inspect_network(network: Network, dataset: Dataset, gallery_size: int = GALLERY_SIZE,
                    weight_limit: int = WEIGHT_IMAGES) -> Inspection:
    """Run ``network`` on ``dataset`` and gather every view of :class:`Inspection`."""
    if network.sizes[0] != dataset.n_features:
        raise DataError(f"the network takes {network.sizes[0]} inputs but the {dataset.name} images have "
                        f"{dataset.n_features} pixels; inspect it with the data it was trained on (--data)")
    outputs = network.output_rows(dataset.images)
    guesses = np.argmax(outputs, axis=1)
    confidence = guess_confidence(outputs, guesses)
    mistakes = misclassified(dataset.labels, guesses, confidence, gallery_size)
    side = image_side(dataset.n_features)
    return Inspection(
        dataset=dataset.name,
        accuracy=float(np.mean(guesses == dataset.labels)),
        confusion=confusion_matrix(dataset.labels, guesses, network.sizes[-1]),
        mistakes=mistakes,
        mistake_images=unit_interval(dataset.images[mistakes["index"]]).reshape(-1, side, side),
        confidence_kind="probability" if network.output_activation.name == "softmax" else "output activation",
        weights=weight_images(network, weight_limit),
        speed=learning_speed(network.metadata.get("history"), network),
    )


def confusion_text(matrix: np.ndarray) -> str:
    """The confusion matrix as aligned text: rows the true digit, columns the guess."""
    width = max(5, len(str(matrix.max())) + 1)
    header = "true\\guess" + "".join(f"{j:>{width}}" for j in range(matrix.shape[1]))
    rows = [f"{i:>10}" + "".join(f"{n:>{width}}" for n in row) for i, row in enumerate(matrix)]
    return "\n".join([header, *rows])


def top_confusions(matrix: np.ndarray, count: int = 5) -> list[tuple[int, int, int]]:
    """The most frequent mistakes as (true digit, guess, how often), most frequent first."""
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    order = np.argsort(-errors, axis=None, kind="stable")[:count]
    return [(int(i), int(j), int(errors[i, j])) for i, j in zip(*np.unravel_index(order, errors.shape)) if errors[i, j]]


# -- figures ------------------------------------------------------------------------------------


def save_figure(figure: Any, path: Path) -> Path:
    """Write a Matplotlib figure as PNG through a temporary file, and close it."""
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png")
    pyplot().close(figure)
    return path


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> Path:
    """The matrix with counts in every cell: mistakes shaded red by count, the correct diagonal green.

    A network with more than :data:`COUNTED_COLUMNS` outputs gets the shading
    and Matplotlib's own ticks only: thousands of numbers would be unreadable
    and slow to draw.
    """
    plt = pyplot()
    rows, columns = matrix.shape
    right = np.eye(rows, columns, dtype=bool)
    off_diagonal = np.ma.masked_array(matrix, mask=right)
    counted = columns <= COUNTED_COLUMNS
    aspect = "equal" if counted else "auto"  # square cells, or a strip filling the figure
    figure, axes = plt.subplots(figsize=(7.5, 6.5), dpi=100)
    axes.imshow(np.where(right, 1.0, np.nan), cmap="Greens", vmin=0, vmax=4, aspect=aspect)
    shading = axes.imshow(off_diagonal, cmap="Reds", vmin=0, vmax=max(int(off_diagonal.max() or 0), 1), aspect=aspect)
    if counted:
        for i, j in np.ndindex(rows, columns):
            dark = i != j and matrix[i, j] > 0.6 * (off_diagonal.max() or 1)
            axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                      color="white" if dark else "black", fontweight="bold" if i == j else "normal")
        axes.set_xticks(range(columns))
        axes.set_yticks(range(rows))
    axes.set_xlabel("the network's guess")
    axes.set_ylabel("true digit")
    axes.set_title(title)
    figure.colorbar(shading, ax=axes, label="mistakes (off the diagonal)", shrink=0.8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_gallery(images: np.ndarray, mistakes: dict[str, np.ndarray], path: Path, confidence_kind: str) -> Path:
    """The misclassified digits in a grid, each titled 'true → guess' and the guess's confidence."""
    plt = pyplot()
    columns = 10
    rows = max(1, math.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.35 + 0.6), dpi=100, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"{mistakes['label'][k]} → {mistakes['guess'][k]}\n{mistakes['confidence'][k]:.2f}",
                         fontsize=8)
    figure.suptitle(f"Misclassified, surest first: true → guess, and the guess's {confidence_kind}", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_weights(weights: np.ndarray, path: Path, title: str) -> Path:
    """Each neuron's weights as an image on one diverging scale centred at 0 (red +, blue −), with its legend."""
    plt = pyplot()
    columns = math.ceil(math.sqrt(len(weights)))
    rows = math.ceil(len(weights) / columns)
    limit = float(np.percentile(np.abs(weights), 99.5)) or 1.0  # a few outliers must not wash the rest out
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.0 + 1.4, rows * 1.05 + 0.6), dpi=100,
                                squeeze=False, gridspec_kw={"wspace": 0.08, "hspace": 0.3})
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(weights):
            shown = ax.imshow(weights[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(k), fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.colorbar(shown, ax=axes.ravel().tolist(), label="weight: red excites, blue inhibits", shrink=0.8,
                    extend="both")
    return save_figure(figure, path)


# -- the page -----------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nndl inspect: {model}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
td, th {{ padding: 2px 7px; text-align: right; border: 1px solid #eee; }}
td.right {{ background: #e3f4e3; font-weight: bold; }} td.wrong {{ background: #fde2e2; }}
p.note {{ color: #555; }}
</style></head><body>
<h1>Inside {model}</h1>
<p>{network}</p>
<p><b>{accuracy:.2f}%</b> of the {n} {dataset} images classified correctly ({wrong} mistakes).</p>
<h2>Confusion matrix</h2>
<p class="note">Row: the true digit; column: the network's guess. The diagonal holds the correct answers; every
other cell is a kind of mistake. Most frequent: {top}.</p>
<img src="confusion.png" alt="confusion matrix">
{confusion_table}
<h2>Misclassified digits</h2>
<p class="note">The mistakes the network is surest of, drawn dark on light; above each, the true digit,
the guess, and the guess's {confidence_kind}.</p>
<img src="misclassified.png" alt="misclassified digits">
{mistake_table}
<h2>What the first-layer neurons look for</h2>
<p class="note">{weights_note}</p>
<img src="weights.png" alt="first-layer weights">
<h2>Speed of learning</h2>
{speed}
</body></html>
"""


def html_cell(value: Any, css: str = "") -> str:
    """One table cell, its value escaped, with a CSS class when given."""
    opening = f'<td class="{css}">' if css else "<td>"
    return f"{opening}{html.escape(str(value))}</td>"


def html_table(header: list[str], rows: list[list[Any]], classes: list[list[str]] | None = None) -> str:
    """A plain HTML table; ``classes`` gives each cell's CSS class."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(html_cell(v, classes[r][c] if classes else "") for c, v in enumerate(row))
                   + "</tr>" for r, row in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def confusion_table(matrix: np.ndarray) -> str:
    """The confusion matrix as an HTML table, correct answers green and mistakes red."""
    n_rows, n_columns = matrix.shape
    rows = [[i, *matrix[i]] for i in range(n_rows)]
    classes = [["", *("right" if i == j else "wrong" if matrix[i, j] else "" for j in range(n_columns))]
               for i in range(n_rows)]
    return html_table(["true \\ guess", *range(n_columns)], rows, classes)


def weights_title(network: Network, shown: int) -> str:
    """The weight figure's title: what each small image is, and how many of them are drawn."""
    first = network.weights[0]
    total = first.shape[0]
    note = f" (the first {shown} of {total})" if shown < total else ""
    if first.ndim == 4:
        return f"First-layer feature maps' {first.shape[2]}×{first.shape[3]} kernels{note}"
    side = math.isqrt(first.shape[1])
    return f"First-layer neurons' weights w¹ⱼ as {side}×{side} images{note}"


def weights_note(network: Network) -> str:
    """What the weight images show, for a fully connected or a convolutional first layer."""
    if network.weights[0].ndim == 4:
        maps, c, k, _ = network.weights[0].shape
        return (f"Each of the {maps} feature maps of the first, convolutional layer slides one {k}×{k} kernel over "
                "the image (shared weights, chapter 6): a map is bright where the image looks like its kernel. "
                "Each kernel is drawn as an image: red weights push the map on, blue ones off, on one colour scale "
                "centred at 0.")
    n = network.sizes[0]
    side = math.isqrt(n)
    return (f"Each neuron j of the first layer after the input computes σ(w¹ⱼ · x + b¹ⱼ); drawing its {n} weights "
            f"w¹ⱼ as a {side}×{side} image shows which pixels push it on (red) and which push it off (blue), on one "
            "colour scale centred at 0.")


def write_page(out: Path, model: str, network: Network, found: Inspection, speed_figure: bool) -> Path:
    """index.html: every view of ``found`` with its explanation, the PNGs beside it."""
    mistakes = found.mistakes
    n = int(found.confusion.sum())
    if speed_figure:
        speed = ('<p class="note">The length ‖∂C/∂b^l‖ = ‖δ^l‖ of each layer\'s bias gradient, averaged over '
                 "each epoch's mini-batches (chapter 5): how fast that layer's neurons are learning. Layers "
                 'far from the output often learn much more slowly.</p><img src="learning-speed.png" '
                 'alt="speed of learning per layer">')
    else:
        speed = ('<p class="note">Not recorded: this model\'s saved history holds no per-layer learning speed '
                 "(train with <code>nndl train --learning-speed</code> to record it).</p>")
    page = PAGE.format(
        model=html.escape(model), network=html.escape(repr(network)), accuracy=100 * found.accuracy, n=f"{n:,}",
        dataset=found.dataset, wrong=f"{n - int(np.trace(found.confusion)):,}",
        top=html.escape(", ".join(f"{i} taken for {j} ({k}×)" for i, j, k in top_confusions(found.confusion))
                        or "none"),
        confusion_table=confusion_table(found.confusion), confidence_kind=found.confidence_kind,
        mistake_table=html_table(
            ["#", f"{found.dataset} index", "true digit", "guess", found.confidence_kind],
            [[k, i, t, g, f"{c:.3f}"] for k, (i, t, g, c) in
             enumerate(zip(mistakes["index"], mistakes["label"], mistakes["guess"], mistakes["confidence"]))]),
        speed=speed, weights_note=weights_note(network),
    )
    path = out / "index.html"
    write_bytes_atomically(path, page.encode("utf-8"))
    return path


def run_inspect(args: argparse.Namespace) -> int:
    network = load_model(args.model)
    dataset = load_mnist(args.data, train_size=1).split(args.on)
    found = inspect_network(network, dataset, args.gallery)
    out = Path(args.out)
    name = os.path.basename(args.model)
    written = [
        plot_confusion(found.confusion, out / "confusion.png",
                       f"{name} on {found.dataset}: {100 * found.accuracy:.2f}% correct"),
        plot_gallery(found.mistake_images, found.mistakes, out / "misclassified.png", found.confidence_kind),
        plot_weights(found.weights, out / "weights.png", weights_title(network, len(found.weights))),
    ]
    if found.speed:
        written.append(out / "learning-speed.png")
        plot_series(found.speed, written[-1], "Speed of learning per layer", "epoch",
                    r"mean $\Vert\partial C/\partial b^l\Vert$ over the mini-batches", markers=True)
    written.append(write_page(out, name, network, found, bool(found.speed)))
    print(f"{args.model}: {network}")
    print(f"{found.dataset}: {100 * found.accuracy:.2f}% correct of {int(found.confusion.sum()):,} images")
    print(confusion_text(found.confusion))
    mistakes = ", ".join(f"{i}→{j} ({k})" for i, j, k in top_confusions(found.confusion))
    print(f"Most frequent mistakes (true→guess): {mistakes or 'none'}")
    if not found.speed:
        print("No per-layer learning speed in this model's history (train with --learning-speed): that figure is left out.")
    print("Wrote " + ", ".join(str(p) for p in written))
    return 0


def register(commands: Any) -> None:
    """Add ``nndl inspect`` to the command line's subcommands."""
    i = commands.add_parser(
        "inspect", help="see inside a trained model: confusion matrix, mistakes, weights, learning speed",
        description="Write to OUT (default ./inspect) a page index.html with PNGs beside it: the confusion "
        "matrix on the test (or validation) data, the misclassified digits, every first-layer neuron's weights "
        "as an image, and each layer's speed of learning when the model's history recorded it. The confusion "
        "matrix is also printed.")
    i.add_argument("model", metavar="MODEL", help="a model from 'nndl train --save' (.npz) or network2.py (.json)")
    i.add_argument("--out", default="inspect", metavar="DIR", help="where to write the page (default ./inspect)")
    add_data_option(i)
    i.add_argument("--on", choices=("test", "validation"), default="test", help="the images to score (default test)")
    i.add_argument("--gallery", type=whole_number(0, 10_000), default=GALLERY_SIZE, metavar="N",
                   help=f"misclassified digits shown, surest first (default {GALLERY_SIZE})")
    i.set_defaults(run=run_inspect)
