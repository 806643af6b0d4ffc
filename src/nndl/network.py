"""The feedforward network: a stack of layers trained by backpropagation (chapters 1, 2 and 6).

``Network([784, 30, 10])`` is the book's chapter-1 network, fully connected
layers only, holding the book's objects: ``sizes``, ``weights[l]`` of shape
(n_out, n_in) and ``biases[l]`` of shape (n_out, 1). ``Network(layers=
"conv20x5,pool2,full100")`` is one of chapter 6's: convolutional, max-pooling
and fully connected layers (see :mod:`nndl.layers`), then the output layer.

Inputs are *columns*: a mini-batch of m images is a matrix x of shape (784, m),
so every equation is the book's with the vector a replaced by a matrix whose
columns are the examples (a stack of feature maps is (C, H, W, m), examples
last too). Public helpers such as :meth:`Network.predict` take images as rows,
shape (n, 784), the way datasets hold them.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np

from .activations import Activation, get_activation
from .costs import Cost, get_cost
from .device import array_module, check_device, to_host, to_module
from .errors import ConfigError
from .initializers import get_initializer, weights_of
from .layers import Layer, LayerSpec, build_layers, parse_layers, shorthand
from .pixels import unit_interval
from .rng import make_rng

Gradients = tuple[list[np.ndarray], list[np.ndarray]]
EVALUATION_CHUNK = 10_000  # images fed forward at once when evaluating a whole dataset
MNIST_SHAPE = (1, 28, 28)
MAX_PARAMETERS = 50_000_000  # weights and biases of one network (the book's largest has 636,010)
MAX_FLOATS_PER_EXAMPLE = 2**25  # numbers one example needs in a forward pass (chapter 6's largest: ~60,000)


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Validate layer sizes: at least an input and an output layer, each ≥ 1 neuron."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ConfigError(f"sizes {sizes}: a network needs at least an input and an output layer")
    if any(not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1 for n in sizes):
        raise ConfigError(f"sizes {sizes}: every layer needs a whole number of neurons, at least 1")
    return [int(n) for n in sizes]


def check_dtype(dtype: Any) -> np.dtype:
    """float32 or float64, or a ConfigError."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ConfigError(f"dtype {dtype!r}: choose float32 or float64") from None
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"dtype {dtype}: choose float32 or float64")
    return dtype


class Network:
    """A feedforward network of fully connected, convolutional and max-pooling layers.

    ``Network([784, 30, 10])`` is the book's chapter-1 network: sigmoid neurons,
    the quadratic cost, weights and biases drawn from N(0, 1). Chapter 3's
    choices are arguments: ``cost`` ("quadratic", "cross-entropy",
    "log-likelihood"), the hidden ``activation`` ("sigmoid", "tanh", "relu"),
    the ``output_activation`` ("sigmoid", or "softmax", the default for the
    log-likelihood cost), ``init`` ("large", "normalized", "he", "network3") and
    ``dropout``, the fraction p of the neurons feeding each fully connected
    layer that are removed for each mini-batch in training. ``seed`` makes the
    initial weights reproducible; ``dtype`` is float32 (fast) or float64.

    Chapter 6's networks give ``layers`` instead of ``sizes``: the hidden layers
    in the shorthand of :mod:`nndl.layers` (``"conv20x5,pool2,full100"``), for
    inputs of ``input_shape`` (maps, height, width; MNIST's 1×28×28 by default)
    and ``outputs`` output neurons. ``conv_activation`` says where a
    convolutional layer's σ goes: "after-pool" (network3.py's σ(pool(w ⋆ a) + b),
    the default) or "before-pool".

    ``device`` is where the numbers live and the arithmetic runs: "cpu"
    (NumPy) or "gpu" (CuPy, see :mod:`nndl.device`); ``xp`` is that array
    module. The weights are drawn on the host either way, so a seed gives the
    same network on both.

    ``metadata`` is a free-form, JSON-serialisable record of how the network
    was trained; it is saved with the model.
    """

    def __init__(
        self,
        sizes: Sequence[int] | None = None,
        *,
        layers: str | Sequence[str] | None = None,
        input_shape: Sequence[int] = MNIST_SHAPE,
        outputs: int = 10,
        cost: str | Cost = "quadratic",
        activation: str | Activation = "sigmoid",
        output_activation: str | Activation | None = None,
        conv_activation: str = "after-pool",
        init: str = "large",
        dropout: float = 0.0,
        seed: int | None = None,
        dtype: Any = np.float32,
        device: str = "cpu",
    ):
        specs, input_shape = layer_specs(sizes, layers, input_shape, outputs)
        self.cost = get_cost(cost)
        if output_activation is None:
            output_activation = self.cost.output_activations[0]  # sigmoid, or softmax for log-likelihood
        self.activation = get_activation(activation, "hidden")
        self.output_activation = get_activation(output_activation, "output")
        self.cost.check_output(self.output_activation)
        self.conv_activation = conv_activation
        self.layers: list[Layer] = build_layers(specs, input_shape, self.activation, conv_activation)
        self.layers[-1].activation = self.output_activation
        check_size(self.layers)
        self.parameter_layers = [layer for layer in self.layers if layer.has_parameters]  # all but max-pooling
        self.input_shape = input_shape
        self.sizes = [math.prod(input_shape)] + [layer.size for layer in self.layers]
        self.num_layers = len(self.sizes)
        # dropout thins the neurons that feed a fully connected layer: every hidden layer of chapters 1-3
        self.dropped = [upper.kind == "full" for upper in self.layers[1:]]
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout {dropout}: the fraction p of hidden neurons removed must be in [0, 1)")
        if dropout and not any(self.dropped):
            raise ConfigError("dropout removes hidden neurons, and this network has no hidden layer")
        self.dropout = float(dropout)
        self.init = init
        self.dtype = check_dtype(dtype)
        self.use_device(device)
        biases, weights = get_initializer(init)(weights_of(self.layers), make_rng(seed, "init"), self.dtype)
        self.set_parameters(weights, biases)  # drawn on the host, then moved to the device
        self.metadata: dict[str, Any] = {}

    # -- the book's objects ---------------------------------------------------------------

    @property
    def weights(self) -> list[np.ndarray]:
        """w for each layer that has weights, in order (the layers' own arrays)."""
        return [layer.w for layer in self.parameter_layers]

    @property
    def biases(self) -> list[np.ndarray]:
        """b for each layer that has weights, in order: shape (neurons or maps, 1)."""
        return [layer.b for layer in self.parameter_layers]

    def set_parameters(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> None:
        """Replace every layer's w and b (each checked against the layer's shape), in the network's dtype and device."""
        layers = self.parameter_layers
        if len(weights) != len(layers) or len(biases) != len(layers):
            raise ConfigError(f"{len(weights)} weight and {len(biases)} bias arrays for {len(layers)} layers")
        for layer, w, b in zip(layers, weights, biases):
            if w.shape != layer.weight_shape() or b.shape != (layer.weight_shape()[0], 1):
                raise ConfigError(f"{layer}: weights {w.shape} and biases {b.shape} do not fit it")
        for layer, w, b in zip(layers, weights, biases):
            layer.w = to_module(w, self.xp).astype(self.dtype, copy=False)
            layer.b = to_module(b, self.xp).astype(self.dtype, copy=False)
        self._parameters = self.weights + self.biases  # listed once: the update rule asks every mini-batch

    def use_device(self, device: str) -> None:
        """Compute on ``device`` ("cpu" or "gpu") from now on: the array module of the network and of every layer."""
        self.device, self.xp = check_device(device), array_module(device)
        for layer in self.layers:
            layer.xp = self.xp

    def to_device(self, device: str) -> "Network":
        """Move the weights and biases to ``device``; returns the network."""
        self.use_device(device)
        self.set_parameters(self.weights, self.biases)
        return self

    @property
    def is_dense(self) -> bool:
        """Fully connected layers only (chapters 1-3): ``sizes`` says everything about the shape."""
        return all(layer.kind == "full" for layer in self.layers)

    @property
    def layer_activations(self) -> list[Activation | None]:
        """σ for each layer after the input (None where a layer applies none)."""
        return [layer.activation for layer in self.layers]

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network's shape and behaviour (not its weights)."""
        shape = {} if self.is_dense else {"layers": shorthand(self.layers), "input_shape": list(self.input_shape),
                                          "conv_activation": self.conv_activation}
        return {
            "sizes": self.sizes,
            **shape,
            "cost": self.cost.name,
            "activation": self.activation.name,
            "output_activation": self.output_activation.name,
            "init": self.init,
            "dropout": self.dropout,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        d = self.describe()
        shape = d["sizes"] if self.is_dense else f"layers={d['layers']!r}, input_shape={tuple(self.input_shape)}"
        dropout = f", dropout={d['dropout']}" if d["dropout"] else ""
        return (
            f"Network({shape}, cost={d['cost']!r}, activation={d['activation']!r}, "
            f"output_activation={d['output_activation']!r}{dropout}, dtype={d['dtype']})"
        )

    def parameters(self) -> list[np.ndarray]:
        """The arrays training changes: every weight array, then every bias column (the same objects)."""
        return self._parameters

    # -- feedforward ----------------------------------------------------------------------

    def forward(
        self,
        x: np.ndarray,
        masks: Sequence[np.ndarray | None] | None = None,
        keep: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Feed ``x`` (input columns, shape (sizes[0], m)) forward; return ``(zs, activations)``.

        ``activations[0] = x``, and backpropagation needs every z^l and a^l; with
        ``keep`` False only the output layer's are returned. ``masks`` (one 0/1
        column per layer whose neurons dropout thins, None for the others)
        removes the neurons dropout deleted for this mini-batch; without masks a
        dropout network runs with every neuron present and the weights of the
        layers they feed scaled by (1 − p).
        """
        return self.forward_kept(x, masks, keep)[:2]

    def forward_kept(
        self, x: np.ndarray, masks: Sequence[np.ndarray | None] | None = None, keep: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[Any]]:
        """:meth:`forward`, and what each layer keeps for its backward pass (patches, where the maxima were)."""
        scale = 1.0 - self.dropout if masks is None and self.dropout else None
        activations, zs, kept = [x], [], []
        for l, layer in enumerate(self.layers):
            thinned_below = scale is not None and l > 0 and self.dropped[l - 1]
            z, layer_kept = layer.forward(activations[-1], scale if thinned_below else None)
            a = z if layer.activation is None else layer.activation.fn(z)  # a^l = σ(z^l)   (eq. 26)
            if masks is not None and l < len(masks) and masks[l] is not None:
                a *= masks[l].reshape(*layer.output_shape, 1)  # dropout: deleted neurons output nothing
            if keep:
                zs.append(z)
                activations.append(a)
                kept.append(layer_kept)
            else:
                zs, activations = [z], [a]
        return zs, activations, kept

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        """Return the output a^L for input columns ``a`` of shape (sizes[0], m)."""
        return self.forward(a, keep=False)[1][-1]

    def draw_dropout_masks(self, rng: np.random.Generator) -> list[np.ndarray | None] | None:
        """For each layer dropout thins, a 0/1 column deleting a random fraction p of its neurons (else None)."""
        if not self.dropout:
            return None
        masks: list[np.ndarray | None] = []
        for layer, dropped in zip(self.layers, self.dropped):
            if dropped:
                deleted = rng.permutation(layer.size) < round(self.dropout * layer.size)
                masks.append(self.xp.asarray((~deleted).astype(self.dtype)[:, None]))  # drawn on the host
            else:
                masks.append(None)
        return masks

    # -- backpropagation ------------------------------------------------------------------

    def backprop(self, x: np.ndarray, y: np.ndarray, masks: Sequence[np.ndarray | None] | None = None) -> Gradients:
        """Return ``(nabla_b, nabla_w)``: Σ_x ∂C_x/∂b and Σ_x ∂C_x/∂w over the columns of x.

        The four equations of chapter 2, each applied to a whole mini-batch at
        once: δ is a matrix with one column per example, and the sums over
        examples in BP3 and BP4 become a row sum and a matrix product. Each
        layer owns its part (see :mod:`nndl.layers`); with dropout ``masks``
        both passes go through the thinned network. The lists hold one array
        per layer with weights (max-pooling has none).
        """
        zs, activations, kept = self.forward_kept(x, masks)
        last = len(self.layers) - 1
        nabla_b: list[np.ndarray] = []
        nabla_w: list[np.ndarray] = []
        delta = self.cost.delta(zs[-1], activations[-1], y, self.output_activation)  # BP1: δ^L = ∇_a C ⊙ σ'(z^L)
        for l in range(last, -1, -1):
            layer = self.layers[l]
            if l < last:
                upper = self.layers[l + 1]
                # BP2: δ^l = ((w^(l+1))ᵀ δ^(l+1)) ⊙ σ'(z^l), the product from the layer above, σ' from this one
                delta = layer.delta(upper.error_below(delta, kept[l + 1]), zs[l], activations[l + 1])
                if masks is not None and masks[l] is not None:
                    delta *= masks[l].reshape(*layer.output_shape, 1)  # a deleted neuron has no error to pass back
            if layer.has_parameters:
                nb, nw = layer.gradients(delta, activations[l], kept[l])  # BP3 and BP4
                nabla_b.append(nb)
                nabla_w.append(nw)
        return nabla_b[::-1], nabla_w[::-1]  # found from the output back; listed from the input on

    def backprop_per_example(
        self, x: np.ndarray, y: np.ndarray, masks: Sequence[np.ndarray | None] | None = None
    ) -> Gradients:
        """The same sums as :meth:`backprop`, computed one example at a time.

        This is chapter 2's algorithm as the book's network.py runs it: backpropagate
        a single image, add its gradient to the total, move to the next. It is the
        reference the matrix form is tested against, and benchmarks show what the
        loop costs.
        """
        dtype = np.result_type(x.dtype, y.dtype, self.dtype)
        nabla_b = [self.xp.zeros(b.shape, dtype) for b in self.biases]
        nabla_w = [self.xp.zeros(w.shape, dtype) for w in self.weights]
        for i in range(x.shape[1]):
            delta_nabla_b, delta_nabla_w = self.backprop(x[:, i : i + 1], y[:, i : i + 1], masks)
            for nb, dnb in zip(nabla_b, delta_nabla_b):
                nb += dnb
            for nw, dnw in zip(nabla_w, delta_nabla_w):
                nw += dnw
        return nabla_b, nabla_w

    # -- whole datasets (images as rows) --------------------------------------------------

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """``images`` as an array of rows that fit the input layer, or a ConfigError."""
        images = np.asarray(images)
        if images.ndim != 2 or images.shape[1] != self.sizes[0]:
            raise ConfigError(
                f"images of shape {images.shape}: the network expects rows of {self.sizes[0]} values"
            )
        return images

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """Image rows (bytes 0-255 or values in [0, 1]) as input columns x in [0, 1], in the network's dtype and device."""
        return unit_interval(self.xp.asarray(images), self.dtype).T  # moved as bytes, a quarter of the floats

    def chunks(self, images: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """Consecutive slices of ``images`` as input columns (one chunk in floats at a time)."""
        for start in range(0, len(images), self.evaluation_chunk):
            part = slice(start, start + self.evaluation_chunk)
            yield part, self.inputs(images[part])

    @property
    def evaluation_chunk(self) -> int:
        """Images fed forward at once: 10,000, or for convolutional nets as many as fit in about 64 MB."""
        if self.is_dense:
            return EVALUATION_CHUNK
        floats = sum(layer.floats_per_example() for layer in self.layers)
        return max(1, min(EVALUATION_CHUNK, 2**24 // floats))

    def output_rows(self, images: np.ndarray) -> np.ndarray:
        """The output activations for ``images`` given as rows (n, sizes[0]); returns (n, sizes[-1]) on the host."""
        images = self.check_images(images)
        outputs = np.empty((len(images), self.sizes[-1]), self.dtype)
        for part, x in self.chunks(images):
            outputs[part] = to_host(self.feedforward(x).T)
        return outputs

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The network's guess for each image: the index of the most active output neuron."""
        return np.argmax(self.output_rows(images), axis=1)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> int:
        """How many images the network classifies correctly (the book's ``evaluate``), counted on its device."""
        images = self.check_images(images)
        correct = 0
        for part, x in self.chunks(images):
            guesses = self.feedforward(x).argmax(axis=0)  # the most active output neuron, per column
            correct += (guesses == self.xp.asarray(labels[part])).sum()
        return int(correct)  # one copy to the host

    def total_cost(self, images: np.ndarray, labels: np.ndarray) -> float:
        """The mean cost C0 = (1/n) Σ_x C_x over a dataset with integer labels (no regularisation)."""
        images = self.check_images(images)
        targets = self.xp.eye(self.sizes[-1], dtype=self.dtype)
        total = 0.0
        for part, x in self.chunks(images):
            zs, activations = self.forward(x, keep=False)
            y = targets[:, self.xp.asarray(labels[part])]
            total += self.cost.fn(zs[-1], activations[-1], y, self.output_activation)
        return total / max(len(labels), 1)


def parameter_count(layers: Sequence[Layer]) -> int:
    """Weights and biases of these layers, from their shapes alone."""
    return sum(math.prod(shape) + shape[0] for shape in (layer.weight_shape() for layer in layers) if shape)


def check_size(layers: Sequence[Layer]) -> None:
    """Refuse, before anything is allocated, a network too large to hold or to feed an example through."""
    count = parameter_count(layers)
    if count > MAX_PARAMETERS:
        raise ConfigError(f"this network has {count:,} weights and biases, more than the {MAX_PARAMETERS:,} nndl "
                          "builds; choose fewer or smaller layers")
    floats = sum(layer.floats_per_example() for layer in layers)
    if floats > MAX_FLOATS_PER_EXAMPLE:
        raise ConfigError(f"this network needs {floats:,} numbers per example in its forward pass, more than the "
                          f"{MAX_FLOATS_PER_EXAMPLE:,} nndl allows; choose fewer feature maps or smaller layers")


def layer_specs(sizes: Sequence[int] | None, layers: str | Sequence[str] | None, input_shape: Sequence[int],
                outputs: int) -> tuple[list[LayerSpec], tuple[int, ...]]:
    """The layers of a network given by ``sizes`` (fully connected) or ``layers`` (shorthand), and its input shape."""
    if (sizes is None) == (layers is None):
        raise ConfigError("give a network either sizes (e.g. [784, 30, 10]) or layers (e.g. 'conv20x5,pool2,full100')")
    if sizes is not None:
        sizes = check_sizes(sizes)
        return [LayerSpec("full", n) for n in sizes[1:]], (sizes[0],)
    input_shape = tuple(check_sizes([*input_shape, 1])[:-1])
    if len(input_shape) not in (1, 3):
        raise ConfigError(f"input_shape {input_shape}: give (values,) or (maps, height, width)")
    check_sizes([1, outputs])
    return [*parse_layers(layers), LayerSpec("full", outputs)], input_shape
