"""The JSON bodies the web page sends, validated strictly at the edge (pydantic).

Strict types (``1`` is not ``true``, ``2.0`` is not an int), no unknown fields,
no NaN or infinity, and caps that keep one local page from asking the server for
hours of work or gigabytes of memory. A request that breaks a rule gets a 422
whose detail names the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from ...costs import COSTS
from ...initializers import INITIALIZERS
from ...regularization import L2_SCALES
from ...runs.spec import EXPANSIONS, MONITOR_CHOICES

MODEL_NAME_PATTERN = r"^[A-Za-z0-9._-]+\.(npz|json)$"  # a plain file name: no folders, nothing to escape with
SAVE_NAME_PATTERN = r"^[A-Za-z0-9._-]+\.npz$"
MAX_IMAGE_CHARS = 2_000_000  # a base64 PNG of the drawing canvas is a few kB; 2 MB is plenty
MAX_EPOCHS, MAX_HIDDEN_LAYERS, MAX_HIDDEN_NEURONS = 100, 3, 1000
MAX_TRAIN_SIZE, MAX_MINI_BATCH = 50_000, 1000
# chapter 6's shorthand within the page's caps: up to 6 layers, conv up to 99 maps of 9×9, pool up to 9, full up to 999
LAYERS_PATTERN = r"^(conv[1-9]\d?x[1-9]|pool[1-9]|full[1-9]\d{0,2})(,(conv[1-9]\d?x[1-9]|pool[1-9]|full[1-9]\d{0,2})){0,5}$"

ModelName = Annotated[str, Field(min_length=5, max_length=100, pattern=MODEL_NAME_PATTERN,
                                 description="a model file in the models folder, e.g. mnist.npz")]
Digit = Annotated[int, Field(ge=0, le=9)]
Dataset = Literal["test", "validation"]


class Strict(BaseModel):
    """Base of every request body: strict types, no unknown fields, finite numbers."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class DigitRef(Strict):
    """One image of the test or validation set."""

    dataset: Dataset
    index: int = Field(ge=0, le=1_000_000)


class DigitRequest(Strict):
    """A drawing (or an MNIST digit, exactly as the dataset holds it) to read, and optionally the label to score it against."""

    image: str | None = Field(None, min_length=1, max_length=MAX_IMAGE_CHARS,
                              description="the drawing as a PNG, base64-encoded (a data: URL prefix is allowed)")
    digit: DigitRef | None = Field(None, description="instead of a drawing: this MNIST image, as the network saw it")
    centre: bool = Field(True, description="shift the centre of mass to the frame's centre, as MNIST did")
    label: Digit | None = Field(None, description="the digit it should be, for the costs and BP1-BP4 (default: the guess)")

    @model_validator(mode="after")
    def one_source(self) -> "DigitRequest":
        if (self.image is None) == (self.digit is None):
            raise ValueError("send either image (a drawing) or digit (an MNIST image), not both or neither")
        return self


class AnalyseRequest(DigitRequest):
    """A digit to read with a model of the models folder."""

    model: ModelName


class TrainSettings(Strict):
    """One run's settings as the Train tab edits them (a subset of nndl.runs.spec.RunSpec, with caps)."""

    hidden: list[Annotated[int, Field(ge=1, le=MAX_HIDDEN_NEURONS)]] = Field(
        default_factory=lambda: [30], max_length=MAX_HIDDEN_LAYERS)
    layers: str | None = Field(None, max_length=80, pattern=LAYERS_PATTERN,
                               description="chapter 6's layers instead of hidden, e.g. conv20x5,pool2,full100")
    cost: Literal[tuple(COSTS)] = "quadratic"  # type: ignore[valid-type]
    activation: Literal[HIDDEN_ACTIVATIONS] = "sigmoid"  # type: ignore[valid-type]
    output_activation: Literal[OUTPUT_ACTIVATIONS] | None = None  # type: ignore[valid-type]
    init: Literal[tuple(INITIALIZERS)] = "large"  # type: ignore[valid-type]
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    eta: float = Field(3.0, gt=0.0, le=1000.0)
    lmbda: float = Field(0.0, ge=0.0, le=1000.0)
    l2_scale: Literal[L2_SCALES] = "training-set"  # type: ignore[valid-type]
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    epochs: int = Field(30, ge=1, le=MAX_EPOCHS)
    mini_batch_size: int = Field(10, ge=1, le=MAX_MINI_BATCH)
    train_size: int = Field(MAX_TRAIN_SIZE, ge=1, le=MAX_TRAIN_SIZE)
    expand: Literal[EXPANSIONS] | None = None  # type: ignore[valid-type]
    evaluate_on: Dataset = "test"
    monitor: list[Literal[MONITOR_CHOICES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["training-cost", "training-accuracy"], max_length=len(MONITOR_CHOICES))
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    save_as: str | None = Field(None, min_length=5, max_length=100, pattern=SAVE_NAME_PATTERN,
                                description="save the network into the models folder when the run ends (e.g. quick.npz)")

    def spec_fields(self) -> dict:
        """The settings a run spec holds (``save_as`` is what the page does with the result; layers replace hidden)."""
        return self.model_dump(exclude={"save_as", "hidden"} if self.layers else {"save_as", "layers"})


class StepRequest(Strict):
    """Release a paused run for one more mini-batch or one more epoch."""

    unit: Literal["batch", "epoch"]


class SaveRequest(Strict):
    """Save the finished run's network into the models folder."""

    name: str = Field(min_length=5, max_length=100, pattern=SAVE_NAME_PATTERN, description="e.g. my-run.npz")


class MistakesRequest(Strict):
    """The confusion matrix of a model on the test or validation set."""

    model: ModelName
    dataset: Dataset = "test"


class CellRequest(MistakesRequest):
    """The digits of one confusion-matrix cell: true ``label``, guessed ``guess``."""

    label: Digit
    guess: Digit
    limit: int = Field(60, ge=1, le=500)


class SlowdownRequest(Strict):
    """One sigmoid neuron, input 1, target 0, trained by gradient descent (chapter 3's first figures)."""

    cost: Literal["quadratic", "cross-entropy"]
    w: float = Field(0.6, ge=-10.0, le=10.0)
    b: float = Field(0.9, ge=-10.0, le=10.0)
    eta: float = Field(0.15, gt=0.0, le=10.0)
    epochs: int = Field(300, ge=1, le=1000)


class SoftmaxRequest(Strict):
    """The weighted inputs z_j of a softmax output layer (chapter 3's widget has four)."""

    z: list[Annotated[float, Field(ge=-50.0, le=50.0)]] = Field(min_length=1, max_length=10)
