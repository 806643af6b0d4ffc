"""The layers a network is a stack of: fully connected (chapters 1-3), convolutional and max-pooling (chapter 6).

Every layer takes the activations of the layer below, an array of shape
``input_shape + (m,)`` (examples last), computes its weighted input z and
hands a = σ(z) up. Backpropagation splits the same way across layers:

- BP1, δ^L = ∇_a C ⊙ σ'(z^L), belongs to the cost at the output (network.py);
- BP2, δ^l = ((w^(l+1))ᵀ δ^(l+1)) ⊙ σ'(z^l): the layer above computes the
  first factor (:meth:`Layer.error_below`), the layer itself applies its σ'
  (:meth:`Layer.delta`);
- BP3 and BP4 are each layer's own parameter gradients (:meth:`Layer.gradients`).

A network is written in a shorthand: ``conv20x5,pool2,conv40x5,pool2,full100``
is 20 feature maps of 5×5 kernels, 2×2 max-pooling, 40 maps of 5×5 kernels,
2×2 pooling and 100 fully connected neurons; the input (1×28×28 for MNIST) and
the output layer come from the data and the cost.

Where the activation of a convolutional layer goes is a choice: network3.py
computes σ(pool(w ⋆ a) + b), the common order is pool(σ(w ⋆ a + b)). For a
monotone σ (sigmoid, tanh and ReLU all are) and a bias shared by the whole map
the two give the same numbers, and the first applies σ to 1/P² as many of them,
so it is the default: the convolutional layer then has no σ of its own and the
pooling layer above it applies it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Sequence

import numpy as np

from . import convolution
from .activations import Activation
from .errors import ConfigError

Shape = tuple[int, ...]
CONV_ACTIVATION_PLACES = ("after-pool", "before-pool")
MAX_KERNEL = 64
MAX_POOL = 16  # pooling records where each window's maximum was in one byte


class Layer:
    """One stage of a network: z from the activations below, then a = σ(z) (no σ when ``activation`` is None)."""

    kind = "layer"
    has_parameters = True  # weights and biases; max-pooling has none
    spec: LayerSpec  # how the shorthand names it
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    xp: ModuleType = np  # the array module, numpy or cupy: the network sets it (nndl.device)

    def __init__(self, input_shape: Shape, output_shape: Shape, activation: Activation | None):
        self.input_shape, self.output_shape, self.activation = input_shape, output_shape, activation

    @property
    def size(self) -> int:
        """Neurons in this layer (its output's size)."""
        return math.prod(self.output_shape)

    def weight_shape(self) -> Shape | None:
        """The shape of ``w`` (its first axis is the bias count); None for a layer without parameters."""
        return None

    def floats_per_example(self) -> int:
        """Numbers one example needs in this layer's forward pass (z, a and anything kept for the backward pass)."""
        return 2 * self.size

    def multiply_adds(self) -> int:
        """Multiply-adds of this layer's product for one example (0 without weights)."""
        shape = self.weight_shape()
        return 0 if shape is None else math.prod(shape) * math.prod(self.output_shape[1:])

    def forward(self, a: np.ndarray, input_scale: float | None = None) -> tuple[np.ndarray, Any]:
        """z for the activations ``a`` below, and what the backward pass needs to keep."""
        raise NotImplementedError

    def delta(self, error: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """BP2's last factor, in the layer itself: δ^l = (∂C/∂a^l) ⊙ σ'(z^l)."""
        if error.shape != z.shape:
            error = error.reshape(z.shape)  # from a fully connected layer above: columns back into maps
        return error if self.activation is None else error * self.activation.prime(z, a)

    def error_below(self, delta: np.ndarray, kept: Any) -> np.ndarray:
        """∂C/∂a^(l−1), the (w^l)ᵀ δ^l of BP2, for the layer below to multiply by its own σ'."""
        raise NotImplementedError

    def gradients(self, delta: np.ndarray, a_below: np.ndarray, kept: Any) -> tuple[np.ndarray, np.ndarray]:
        """(∂C/∂b, ∂C/∂w) summed over the mini-batch: BP3 and BP4 for this layer."""
        raise NotImplementedError

    def __repr__(self) -> str:
        sigma = f", {self.activation.name}" if self.activation is not None else ""
        return f"{type(self).__name__}({'×'.join(map(str, self.input_shape))} → {'×'.join(map(str, self.output_shape))}{sigma})"


def columns(a: np.ndarray) -> np.ndarray:
    """Activations as one column per example: a stack of maps (C, H, W, m) flattened to (C·H·W, m), free."""
    return a if a.ndim == 2 else a.reshape(-1, a.shape[-1])


class FullyConnected(Layer):
    """Every neuron sees every activation below: w has shape (n_out, n_in), b (n_out, 1)."""

    kind = "full"

    def __init__(self, input_shape: Shape, n: int, activation: Activation):
        super().__init__(input_shape, (n,), activation)
        self.n_in = math.prod(input_shape)

    def weight_shape(self) -> Shape:
        return (self.output_shape[0], self.n_in)

    def forward(self, a: np.ndarray, input_scale: float | None = None) -> tuple[np.ndarray, None]:
        w = self.w if input_scale is None else self.w * input_scale  # dropout at evaluation: weights × (1 − p)
        z = self.xp.dot(w, columns(a))
        z += self.b  # z^l = w^l a^(l−1) + b^l   (eq. 25)
        return z, None

    def error_below(self, delta: np.ndarray, kept: None) -> np.ndarray:
        return self.xp.dot(self.w.T, delta)  # (w^l)ᵀ δ^l   (BP2)

    def gradients(self, delta: np.ndarray, a_below: np.ndarray, kept: None) -> tuple[np.ndarray, np.ndarray]:
        nabla_b = self.xp.add.reduce(delta, axis=1, keepdims=True)  # BP3: ∂C/∂b^l_j = δ^l_j
        nabla_w = self.xp.dot(delta, columns(a_below).T)  # BP4: ∂C/∂w^l_jk = a^(l−1)_k δ^l_j
        return nabla_b, nabla_w


class Convolutional(Layer):
    """``maps`` feature maps, each one K×K kernel (shared weights) and one bias slid over the input ("valid", stride 1).

    w has shape (maps, C, K, K) for C input maps, b (maps, 1).
    """

    kind = "conv"

    def __init__(self, input_shape: Shape, maps: int, kernel: int, activation: Activation | None):
        c, h, w = input_shape
        super().__init__(input_shape, (maps, h - kernel + 1, w - kernel + 1), activation)
        self.kernel = kernel

    def weight_shape(self) -> Shape:
        return (self.output_shape[0], self.input_shape[0], self.kernel, self.kernel)

    def floats_per_example(self) -> int:
        return 2 * self.size + self.input_shape[0] * self.kernel**2 * math.prod(self.output_shape[1:])  # + patches

    def forward(self, a: np.ndarray, input_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        a = a.reshape(*self.input_shape, -1)
        a_patches = convolution.patches(a, self.kernel)
        w = self.w if input_scale is None else self.w * input_scale
        z = convolution.correlate(a_patches, w, self.b, (*self.output_shape, a.shape[-1]))  # z = w ⋆ a + b (eq. 125)
        return z, a_patches

    def error_below(self, delta: np.ndarray, kept: np.ndarray) -> np.ndarray:
        # BP2 through shared weights: δ convolved ("full") with the flipped kernel
        return convolution.full_convolution(delta, self.w, (*self.input_shape, delta.shape[-1]))

    def gradients(self, delta: np.ndarray, a_below: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nabla_b = convolution.map_bias_gradient(delta)  # BP3 with a shared bias: Σ of δ over the map
        nabla_w = convolution.kernel_gradient(delta, kept, self.w.shape)  # BP4 with shared weights: a ⋆ δ
        return nabla_b, nabla_w


class MaxPooling(Layer):
    """Each P×P window (non-overlapping) of every map is replaced by its largest value; no parameters."""

    kind = "pool"
    has_parameters = False

    def __init__(self, input_shape: Shape, p: int, activation: Activation | None):
        c, h, w = input_shape
        super().__init__(input_shape, (c, h // p, w // p), activation)
        self.p = p

    def forward(self, a: np.ndarray, input_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        return convolution.max_pool(a.reshape(*self.input_shape, -1), self.p)  # z = max over each window

    def error_below(self, delta: np.ndarray, kept: np.ndarray) -> np.ndarray:
        return convolution.route_to_max(delta, kept, self.p)  # δ goes to the input that was the window's max


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the shorthand: ``conv20x5`` (20 maps of 5×5 kernels), ``pool2`` (2×2) or ``full100``."""

    kind: str
    size: int  # maps, pool side or neurons
    kernel: int = 0

    def __str__(self) -> str:
        return f"conv{self.size}x{self.kernel}" if self.kind == "conv" else f"{self.kind}{self.size}"


SHORTHAND = re.compile(r"(conv)(\d{1,6})x(\d{1,3})|(pool)(\d{1,3})|(full)(\d{1,6})")


def parse_layers(text: str | Sequence[str]) -> tuple[LayerSpec, ...]:
    """``"conv20x5,pool2,full100"`` (or its pieces as a list) as LayerSpecs, or a ConfigError naming the piece."""
    pieces = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p).strip() for p in text]
    specs = []
    for piece in pieces:
        match = SHORTHAND.fullmatch(piece)
        if not match:
            raise ConfigError(f"layer {piece!r}: write convCxK (C maps of K×K kernels), poolP (P×P max-pooling) "
                              "or fullN (N neurons), e.g. conv20x5,pool2,full100")
        kind = next(g for g in match.groups() if g is not None and not g.isdigit())
        numbers = [int(g) for g in match.groups() if g is not None and g.isdigit()]
        specs.append(LayerSpec(kind, *numbers))
    return tuple(specs)


def check_layer_numbers(spec: LayerSpec) -> None:
    if spec.size < 1 or (spec.kind == "conv" and spec.kernel < 1):
        raise ConfigError(f"layer {spec}: sizes must be at least 1")
    if spec.kind == "conv" and spec.kernel > MAX_KERNEL:
        raise ConfigError(f"layer {spec}: kernels are at most {MAX_KERNEL}×{MAX_KERNEL}")
    if spec.kind == "pool" and spec.size > MAX_POOL:
        raise ConfigError(f"layer {spec}: pooling windows are at most {MAX_POOL}×{MAX_POOL}")


def layer_shapes(specs: Sequence[LayerSpec], input_shape: Shape) -> list[Shape]:
    """Each layer's output shape, checked: a kernel no larger than its input, a pool that divides, maps before full.

    Pure arithmetic on the shapes, so a network that cannot be built is refused
    before anything is allocated.
    """
    shapes, shape = [], tuple(input_shape)
    for spec in specs:
        check_layer_numbers(spec)
        if spec.kind in ("conv", "pool") and len(shape) != 3:
            where = "a fully connected layer" if shapes else f"the {shape[0]}-value input"
            raise ConfigError(f"layer {spec}: needs feature maps as input, and {where} gives a flat list; "
                              "put convolutional and pooling layers before the fully connected ones")
        if spec.kind == "conv":
            c, h, w = shape
            if spec.kernel > min(h, w):
                raise ConfigError(f"layer {spec}: a {spec.kernel}×{spec.kernel} kernel is larger than its {h}×{w} input")
            shape = (spec.size, h - spec.kernel + 1, w - spec.kernel + 1)
        elif spec.kind == "pool":
            c, h, w = shape
            if h % spec.size or w % spec.size:
                raise ConfigError(f"layer {spec}: {spec.size}×{spec.size} windows do not divide its {h}×{w} input; "
                                  "choose a pool size that divides it")
            shape = (c, h // spec.size, w // spec.size)
        else:
            shape = (spec.size,)
        shapes.append(shape)
    return shapes


def build_layers(specs: Sequence[LayerSpec], input_shape: Shape, activation: Activation,
                 conv_activation: str = "after-pool") -> list[Layer]:
    """The layers for ``specs`` (the last one is the output layer), without parameters yet.

    ``activation`` is σ for every layer (the network swaps the output layer's);
    ``conv_activation`` "after-pool" moves a convolutional layer's σ onto the
    pooling layer right above it (network3.py's σ(pool(w ⋆ a) + b)).
    """
    if conv_activation not in CONV_ACTIVATION_PLACES:
        raise ConfigError(f"conv_activation {conv_activation!r}: choose from {', '.join(CONV_ACTIVATION_PLACES)}")
    shapes = layer_shapes(specs, input_shape)
    layers: list[Layer] = []
    below = tuple(input_shape)
    for i, (spec, shape) in enumerate(zip(specs, shapes)):
        pooled_next = i + 1 < len(specs) and specs[i + 1].kind == "pool"
        if spec.kind == "conv":
            sigma = None if conv_activation == "after-pool" and pooled_next else activation
            layers.append(Convolutional(below, spec.size, spec.kernel, sigma))
        elif spec.kind == "pool":
            after_conv = i > 0 and specs[i - 1].kind == "conv"
            layers.append(MaxPooling(below, spec.size, activation if conv_activation == "after-pool" and after_conv
                                     else None))
        else:
            layers.append(FullyConnected(below, spec.size, activation))
        layers[-1].spec = spec
        below = shape
    return layers


def shorthand(layers: Sequence[Layer]) -> str:
    """The hidden layers of a network as the shorthand (``conv20x5,pool2,full100``), the output layer left out."""
    return ",".join(str(layer.spec) for layer in layers[:-1])
