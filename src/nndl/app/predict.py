"""``nndl predict MODEL IMAGE...``: read your own digits with a trained network.

Each image goes through :func:`nndl.data.images.preprocess` (MNIST's cropping,
20-px scaling and centring by mass), then through the network; the guess is
the most active output neuron. ``--show-input DIR`` writes the 28×28 image the
network saw, so a surprising answer can be looked at.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import FRAME_SIDE, Preprocessed, pillow, preprocess
from ..errors import ModelFileError
from ..files.atomic import atomic_output
from ..files.models import load_model
from ..network import Network
from ..pixels import as_bytes


@dataclass(frozen=True)
class Prediction:
    """One image's answer: the ``digit``, every output activation a^L, and a^L as probabilities for softmax."""

    digit: int
    outputs: list[float]
    probabilities: list[float] | None  # a softmax layer's outputs are probabilities; sigmoid outputs are not

    @property
    def confidence(self) -> float:
        """The guess's probability (softmax), else its output activation."""
        return (self.probabilities or self.outputs)[self.digit]


def check_takes_digits(network: Network, model: str) -> None:
    """A network reading images must take 28×28 = 784 inputs and have an output neuron per class."""
    if network.sizes[0] != FRAME_SIDE * FRAME_SIDE:
        raise ModelFileError(
            f"{model}: the network takes {network.sizes[0]} inputs; images are read as 28×28 = 784 pixels, "
            f"so use a model trained on MNIST-sized images"
        )
    if network.sizes[-1] < 2:
        raise ModelFileError(f"{model}: the network has one output neuron; a digit classifier needs one per class")


def predict_rows(network: Network, rows: np.ndarray) -> list[Prediction]:
    """The network's answer for each input row (n, 784)."""
    outputs = network.output_rows(rows).astype(np.float64)
    softmax = network.output_activation.name == "softmax"
    return [
        Prediction(int(np.argmax(a)), a.tolist(), a.tolist() if softmax else None)
        for a in outputs
    ]


def write_input_image(prepared: Preprocessed, path: Path) -> Path:
    """The 28×28 image the network saw, as an 8-bit PNG in MNIST's convention (ink white on black)."""
    Image = pillow()
    with atomic_output(path) as handle:
        Image.fromarray(as_bytes(prepared.input), mode="L").save(handle, format="PNG")
    return path


def input_image_paths(images: list[str], folder: Path) -> list[Path]:
    """'<stem>-input.png' for each image in ``folder``, numbered when two images share a name."""
    paths, seen = [], set()
    for image in images:
        stem, number = Path(image).stem, 1
        name = f"{stem}-input.png"
        while name in seen:
            number += 1
            name = f"{stem}-{number}-input.png"
        seen.add(name)
        paths.append(folder / name)
    return paths


def describe_prediction(image: str, prediction: Prediction, prepared: Preprocessed) -> str:
    """Two lines for a person: the guess, its confidence and the runner-up, then every output."""
    kind = "probability" if prediction.probabilities else "output activation"
    scores = prediction.probabilities or prediction.outputs
    runner_up = int(np.argsort(scores)[-2])
    outputs = "  ".join(f"{j}:{a:.3f}" for j, a in enumerate(prediction.outputs))
    return (f"{image}: {prediction.digit}  ({kind} {prediction.confidence:.3f}, next {runner_up} at "
            f"{scores[runner_up]:.3f}; {'dark' if prepared.dark_ink else 'light'} ink, moved {prepared.shift} "
            f"to centre its mass)\n    a^L  {outputs}")


def run_predict(args: argparse.Namespace) -> int:
    network = load_model(args.model)
    check_takes_digits(network, args.model)
    prepared = [preprocess(image, centre=not args.no_centre) for image in args.images]
    predictions = predict_rows(network, np.stack([p.input_row for p in prepared]))
    written: list[Path] = []
    if args.show_input:
        written = [write_input_image(p, path) for p, path in
                   zip(prepared, input_image_paths(args.images, Path(args.show_input)))]
    if args.json:
        records: list[dict[str, Any]] = []
        for i, (image, p, prediction) in enumerate(zip(args.images, prepared, predictions)):
            records.append({
                "image": image, "digit": prediction.digit, "confidence": prediction.confidence,
                "outputs": prediction.outputs, "probabilities": prediction.probabilities,
                "box": p.box._asdict(), "shift": list(p.shift), "dark_ink": p.dark_ink,
                "input_image": str(written[i]) if written else None,
            })
        print(json.dumps({"model": args.model, "network": network.describe(), "predictions": records}))
        return 0
    for image, p, prediction in zip(args.images, prepared, predictions):
        print(describe_prediction(image, prediction, p))
    if written:
        folder = os.path.join(args.show_input, "")  # one slash after it, however it was typed
        print(f"Wrote the 28×28 inputs the network saw to {folder} (ink white, as in MNIST)")
    return 0


def register(commands: Any) -> None:
    """Add ``nndl predict`` to the command line's subcommands."""
    p = commands.add_parser(
        "predict", help="read digits in your own image files with a trained model",
        description="Prepare each image as MNIST's digits were (greyscale, cropped to the ink, scaled to "
        "20 px, centred by mass in 28×28; dark-on-light or light-on-dark found from the border) and print "
        "the network's digit and its output activations (probabilities for a softmax output layer).")
    p.add_argument("model", metavar="MODEL", help="a model from 'nndl train --save' (.npz) or network2.py (.json)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files with one digit each (PNG, JPEG, GIF, BMP, TIFF, WebP, ...)")
    p.add_argument("--show-input", metavar="DIR",
                   help="write the 28×28 image the network saw for each file to DIR as <name>-input.png")
    p.add_argument("--no-centre", action="store_true",
                   help="skip centring by mass (the digit's box is placed in the middle), to see why it matters")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    p.set_defaults(run=run_predict)
