"""The run specification: everything one training run needs, as one typed, serialisable object.

A :class:`RunSpec` has five sections: the network, the training hyperparameters
(:class:`nndl.training.TrainingConfig`), the data, monitoring and stopping, and
distortions. Each field is declared once (:func:`nndl.settings.setting`) with
its default, help and allowed values; from that declaration come the JSON form,
the validation, and every ``nndl train`` option. ``nndl train``, the
experiments, the sweeps and the web page all build a RunSpec and hand it to
:func:`nndl.runs.runner.run_spec`.

Every field name is unique across sections, so ``spec.replace(eta=0.5,
hidden=[100])`` changes fields without naming their section (``"training.eta"``
works too)::

    {"network": {"hidden": [30], "cost": "quadratic", ...},
     "training": {"epochs": 30, "mini_batch_size": 10, "eta": 3.0, ...},
     "data": {"source": null, "expand": null, "train_size": null, "evaluate_on": "test"},
     "monitoring": {...}, "distortions": {"augment": null, "workers": 2}}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Iterator

from ..activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, get_activation
from ..costs import COSTS, get_cost
from ..data.distortions import parse_distortion
from ..device import DEVICES
from ..errors import ConfigError
from ..initializers import INITIALIZERS
from ..layers import CONV_ACTIVATION_PLACES, parse_layers
from ..metrics import Measure
from ..network import Network
from ..schedules import SCHEDULES
from ..settings import check_fields, from_dict, setting, to_dict
from ..training import TrainingConfig

SHAPE_SETTINGS = {"hidden": [30], "sizes": None, "layers": None}  # three ways to give the layers, with their defaults
MONITOR_CHOICES = ("training-cost", "training-accuracy", "evaluation-cost")
EXPANSIONS = ("shift-one-pixel",)
SPEC_VERSION = 1


@dataclass(frozen=True)
class NetworkSpec:
    """The network's shape and behaviour (chapters 1 and 3)."""

    hidden: tuple[int, ...] = setting((30,), "hidden layer sizes, e.g. 100 or 100,30; input and output fit the data",
                                      kind="ints", minimum=1, maximum=100_000, metavar="H1,...")
    sizes: tuple[int, ...] | None = setting(None, "every layer, input to output, e.g. 784,30,10 (instead of --hidden)",
                                            kind="ints", minimum=1, maximum=100_000, optional=True,
                                            metavar="L0,L1,...")
    layers: str | None = setting(None, "chapter 6's hidden layers, e.g. conv20x5,pool2,conv40x5,pool2,full100: "
                                 "convCxK = C feature maps of K×K kernels, poolP = P×P max-pooling, fullN = N neurons "
                                 "(instead of --hidden; the input and output layers fit the data)", kind="str",
                                 optional=True, metavar="LAYERS")
    conv_activation: str = setting("after-pool", "where a convolutional layer's σ goes: after-pool = σ(pool(w⋆a) + b) "
                                   "as network3.py (the same numbers as before-pool, since σ is monotone, computed on "
                                   "1/P² as many values), before-pool = pool(σ(w⋆a + b))", kind="str",
                                   choices=CONV_ACTIVATION_PLACES)
    cost: str = setting("quadratic", "quadratic (chapter 1), cross-entropy (chapter 3: learns fast from saturated "
                        "sigmoid outputs) or log-likelihood (with softmax outputs)", kind="str", choices=tuple(COSTS))
    activation: str = setting("sigmoid", "hidden neurons: sigmoid, tanh or relu (rectified linear)", kind="str",
                              choices=HIDDEN_ACTIVATIONS)
    output_activation: str | None = setting(None, "output neurons: sigmoid, or softmax (default: softmax for "
                                            "log-likelihood, else sigmoid)", kind="str", choices=OUTPUT_ACTIVATIONS,
                                            optional=True)
    init: str = setting("large", "weight initialisation: large = N(0,1) as network.py, normalized = N(0,1/n_in) as "
                        "network2.py, he = N(0,2/n_in) for relu, network3 = N(0,1/n_out) and a zero softmax layer as "
                        "network3.py (chapter 6)", kind="str", choices=tuple(INITIALIZERS))
    dropout: float = setting(0.0, "dropout: remove a fraction P of hidden neurons for each mini-batch, e.g. 0.5",
                             kind="float", minimum=0.0, below=1.0, metavar="P")
    dtype: str = setting("float32", "floating-point precision (float32: as accurate, faster)", kind="str",
                         choices=("float32", "float64"))
    device: str = setting("cpu", "where the arithmetic runs: cpu (NumPy) or gpu (CuPy, pip install 'nndl[gpu]'); "
                          "the same seed gives the same run on both, up to rounding, and a model or checkpoint "
                          "from one resumes on the other", kind="str", choices=DEVICES, identity=False)

    def __post_init__(self) -> None:
        check_fields(self, "network")
        if self.sizes is not None and self.layers is not None:
            raise ConfigError("network.layers and network.sizes both give the layers; keep one")
        if self.sizes is not None:
            if len(self.sizes) < 2:
                raise ConfigError(f"network.sizes {list(self.sizes)}: give at least an input and an output layer")
            object.__setattr__(self, "hidden", self.sizes[1:-1])  # one shape: sizes decides the hidden layers
        if self.layers is not None:
            layers = ",".join(map(str, parse_layers(self.layers)))  # one canonical spelling
            object.__setattr__(self, "layers", layers)
            object.__setattr__(self, "hidden", ())  # one shape: layers decides the hidden layers
        cost = get_cost(self.cost)
        output = get_activation(self.output_activation or cost.output_activations[0], "output")
        cost.check_output(output)
        if self.dropout and not self.hidden and not self.layers:
            raise ConfigError("network.dropout: dropout removes hidden neurons, and this network has no hidden layer")

    def layer_sizes(self, n_inputs: int, n_outputs: int) -> list[int]:
        """Every layer's size for data with ``n_inputs`` pixels and ``n_outputs`` classes (fully connected nets)."""
        return list(self.sizes) if self.sizes is not None else [n_inputs, *self.hidden, n_outputs]

    def build(self, n_inputs: int, n_outputs: int, seed: int | None) -> Network:
        """The network for data with ``n_inputs`` pixels (a square image for convolutional layers) and ``n_outputs`` classes."""
        options = {k: v for k, v in to_dict(self).items() if k not in ("hidden", "sizes", "layers")}
        if self.layers is None:
            return Network(self.layer_sizes(n_inputs, n_outputs), **options, seed=seed)
        side = math.isqrt(n_inputs)
        if side * side != n_inputs:
            raise ConfigError(f"network.layers: feature maps need square images, and these have {n_inputs} pixels")
        return Network(layers=self.layers, input_shape=(1, side, side), outputs=n_outputs, **options, seed=seed)

    def describe(self) -> dict[str, Any]:
        """What :meth:`nndl.network.Network.describe` will say of this network (but its sizes)."""
        output = self.output_activation or get_cost(self.cost).output_activations[0]
        shape = ("hidden", "sizes", "device") if self.layers else ("hidden", "sizes", "layers", "conv_activation",
                                                                     "device")
        return {**{k: v for k, v in to_dict(self).items() if k not in shape}, "output_activation": output}


@dataclass(frozen=True)
class DataSpec:
    """Where the run's images come from, and which split scores it."""

    source: str | None = setting(None, "folder with the four MNIST-layout IDX files (default: $NNDL_DATA, else the "
                                 "cache, downloaded on first use)", kind="str", optional=True, flag="--data",
                                 metavar="DIR")
    expand: str | None = setting(None, "expand the training images in memory: shift-one-pixel is the book's "
                                 "50,000 → 250,000", kind="str", choices=EXPANSIONS, optional=True)
    train_size: int | None = setting(None, "train on the first N training images (default all 50,000)", kind="int",
                                     minimum=1, optional=True, metavar="N")
    evaluate_on: str = setting("test", "dataset scored after each epoch: test (as in chapter 1) or validation "
                               "(chapter 3)", kind="str", choices=("test", "validation"))
    score_size: int | None = setting(None, "score on the first N validation and test images (default all 10,000; "
                                     "the experiments' quick forms use fewer)", kind="int", minimum=1, optional=True,
                                     metavar="N")

    def __post_init__(self) -> None:
        check_fields(self, "data")


@dataclass(frozen=True)
class MonitoringSpec:
    """What is measured each epoch, and what stops training."""

    monitor: tuple[str, ...] = setting((), "also record each epoch any of: " + ", ".join(MONITOR_CHOICES) +
                                       " (evaluation accuracy is always recorded)", kind="strs",
                                       choices=MONITOR_CHOICES, metavar="LIST")
    evaluate_each_epoch: bool = setting(True, "score after every epoch (false: once, after training)", kind="bool",
                                        cli=False)
    early_stopping: int | None = setting(None, "stop when the validation accuracy has not improved in N epochs "
                                         "(no-improvement-in-N); the best epoch's weights are kept", kind="int",
                                         minimum=1, optional=True, metavar="N")
    schedule: str | None = setting(None, "learning-rate schedule: halve-on-plateau halves η after --patience epochs "
                                   "without improvement in validation accuracy and stops once η is 1/128 of its start "
                                   "(best weights kept); exponential η₀·γ^epoch; step η₀·γ^(epoch // --decay-every); "
                                   "cosine from η₀ down to γ·η₀", kind="str", choices=SCHEDULES, optional=True)
    decay: float = setting(0.98, "the factor γ of the exponential, step and cosine schedules", kind="float",
                           above=0.0, maximum=1.0, metavar="γ")
    decay_every: int = setting(10, "epochs between the step schedule's decays", kind="int", minimum=1, metavar="N")
    keep_best: bool = setting(False, "end with the weights of the epoch with the best validation accuracy (early "
                              "stopping and halve-on-plateau always do)", kind="bool")
    patience: int = setting(10, "epochs without improvement before the schedule halves η", kind="int", minimum=1,
                            metavar="N")
    time_limit: float | None = setting(None, "stop after the first epoch that ends past MINUTES of training",
                                       kind="float", above=0.0, optional=True, metavar="MINUTES")
    learning_speed: bool = setting(False, "record each layer's speed of learning ‖δ^l‖ per epoch (chapter 5)",
                                   kind="bool")

    def __post_init__(self) -> None:
        check_fields(self, "monitoring")

    @property
    def keeps_best(self) -> bool:
        """Whether the run ends with its best epoch's weights rather than its last."""
        return bool(self.keep_best or self.early_stopping or self.schedule == "halve-on-plateau")


@dataclass(frozen=True)
class DistortionSpec:
    """Fresh random distortions of the training images every epoch."""

    augment: str | None = setting(None, "train on fresh random distortions every epoch, e.g. rotate=10,skew=0.2,"
                                  "elastic (rotate=DEGREES, skew=FACTOR, shift=PIXELS, scale=FRACTION, elastic[=ALPHA], "
                                  "sigma=SIGMA)",
                                  kind="str", optional=True, metavar="SPEC")
    workers: int = setting(2, "processes preparing the next epoch's distortions while this one trains (0: none; "
                           "at most one per core starts; the result is the same with any number)",
                           kind="int", minimum=0, maximum=64, flag="--augment-workers", metavar="N", identity=False)

    def __post_init__(self) -> None:
        check_fields(self, "distortions")
        if self.augment is not None:
            object.__setattr__(self, "augment", str(parse_distortion(self.augment)))  # one canonical spelling


SECTIONS: dict[str, type] = {"network": NetworkSpec, "training": TrainingConfig, "data": DataSpec,
                             "monitoring": MonitoringSpec, "distortions": DistortionSpec}
FIELD_SECTION = {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class RunSpec:
    """One training run: network, training, data, monitoring and distortions (defaults: chapter 1's run)."""

    network: NetworkSpec = dataclasses.field(default_factory=NetworkSpec)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    data: DataSpec = dataclasses.field(default_factory=DataSpec)
    monitoring: MonitoringSpec = dataclasses.field(default_factory=MonitoringSpec)
    distortions: DistortionSpec = dataclasses.field(default_factory=DistortionSpec)

    @classmethod
    def from_dict(cls, values: Any, where: str = "run specification") -> "RunSpec":
        """Build from the JSON form (sections of settings), naming any unknown section or setting."""
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a JSON object with sections {', '.join(SECTIONS)}")
        values = {k: v for k, v in values.items() if k != "spec_version"}
        unknown = sorted(set(values) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{where}: unknown section {unknown[0]!r}; sections: {', '.join(SECTIONS)}")
        try:
            return cls(**{name: from_dict(SECTIONS[name], part, f"{where}, {name}") for name, part in values.items()})
        except TypeError as exc:  # e.g. a misspelt keyword reaching a constructor
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_flat(cls, values: dict[str, Any], where: str = "run") -> "RunSpec":
        """Build from flat settings ({"eta": 0.5, "hidden": [100]}), as experiments declare runs."""
        return cls().replace(where=where, **values)

    def replace(self, where: str = "run", **changes: Any) -> "RunSpec":
        """A copy with some settings changed, by name ("eta") or by section and name ("training.eta")."""
        parts = self.to_dict()
        for key, value in changes.items():
            section, _, name = key.rpartition(".")
            section = section or FIELD_SECTION.get(name)
            if section not in SECTIONS or name not in FIELD_SECTION or FIELD_SECTION[name] != section:
                raise ConfigError(f"{where}: unknown setting {key!r}; known settings: {', '.join(FIELD_SECTION)}")
            parts[section][name] = list(value) if isinstance(value, tuple) else value
            if name in SHAPE_SETTINGS:  # the new shape replaces the old one, unless another is also given
                for other in set(SHAPE_SETTINGS) - {name} - {k.rpartition(".")[2] for k in changes}:
                    parts["network"][other] = SHAPE_SETTINGS[other]
        return RunSpec.from_dict(parts, where)

    def to_dict(self, identity_only: bool = False) -> dict[str, Any]:
        """The JSON form: one object per section."""
        return {name: to_dict(getattr(self, name), identity_only) for name in SECTIONS}

    def to_json(self) -> str:
        return json.dumps({"spec_version": SPEC_VERSION, **self.to_dict()}, indent=2, ensure_ascii=False) + "\n"

    def flat(self) -> dict[str, Any]:
        """Every setting by its own name."""
        return {k: v for part in self.to_dict().values() for k, v in part.items()}

    def fingerprint(self) -> str:
        """A short hash of the settings that decide the result (not worker counts)."""
        canonical = json.dumps(self.to_dict(identity_only=True), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def differences(self, other: "RunSpec") -> Iterator[str]:
        """'training.eta: 3.0 → 0.5' for each result-deciding setting that differs."""
        mine, theirs = self.to_dict(identity_only=True), other.to_dict(identity_only=True)
        for section in SECTIONS:
            for name, value in mine[section].items():
                if theirs[section][name] != value:
                    yield f"{section}.{name}: {value!r} → {theirs[section][name]!r}"

    @property
    def watched(self) -> Measure:
        """The measure early stopping and schedules watch: validation accuracy, never the test set."""
        return Measure("validation", "accuracy")

    @property
    def evaluation(self) -> Measure:
        """The accuracy reported as the run's result, on the dataset ``data.evaluate_on`` names."""
        return Measure(self.data.evaluate_on, "accuracy")
