"""The feedforward network of chapters 1 and 2.

The class holds the book's objects: ``sizes`` (e.g. [784, 30, 10]), ``weights[l]``
of shape (n_out, n_in) and ``biases[l]`` of shape (n_out, 1). Inputs are
*columns*: a mini-batch of m images is a matrix x of shape (784, m), so every
equation below is the book's equation with the vector a replaced by a matrix
whose columns are the examples. (Public helpers such as :meth:`Network.predict`
take images as rows, shape (n, 784), the way datasets hold them.)
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from .activations import Activation, get_activation
from .costs import Cost, get_cost
from .errors import ConfigError
from .initializers import get_initializer
from .pixels import unit_interval
from .rng import make_rng

Gradients = tuple[list[np.ndarray], list[np.ndarray]]
EVALUATION_CHUNK = 10_000  # images fed forward at once when evaluating a whole dataset
WORKSPACES_KEPT = 3  # mini-batch sizes whose arrays a network keeps (full, last short one, one spare)


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


class Workspace:
    """The arrays one step of training writes into, for mini-batches of ``m`` examples.

    Training runs thousands of small steps a second; a workspace lets each step
    write z^l, δ^l and the gradients into the same arrays instead of new ones
    (for large layers, a weight-sized allocation per step and layer). It holds
    ``zs[l]`` and ``deltas[l]`` of shape (n_l, m) for
    each layer after the input, and ``nabla_b``, ``nabla_w`` shaped like the
    biases and weights, all of ``dtype`` (the network's by default). Every
    forward or backward pass given a workspace overwrites its arrays, so a
    caller that keeps results copies them first.
    """

    def __init__(self, network: Network, m: int, dtype: Any = None):
        self.dtype = network.dtype if dtype is None else np.dtype(dtype)
        self.m = m
        self.zs = [np.empty((n, m), self.dtype) for n in network.sizes[1:]]
        self.deltas = [np.empty((n, m), self.dtype) for n in network.sizes[1:]]
        self.nabla_b = [np.empty(b.shape, self.dtype) for b in network.biases]
        self.nabla_w = [np.empty(w.shape, self.dtype) for w in network.weights]

    def __repr__(self) -> str:
        return f"Workspace(m={self.m}, layers={[z.shape[0] for z in self.zs]})"


class Network:
    """A fully connected feedforward network trained by backpropagation.

    ``Network([784, 30, 10])`` is the book's chapter-1 network: sigmoid neurons,
    the quadratic cost, weights and biases drawn from N(0, 1). Chapter 3's
    choices are arguments: ``cost`` ("quadratic", "cross-entropy",
    "log-likelihood"), the hidden ``activation`` ("sigmoid", "tanh", "relu"),
    the ``output_activation`` ("sigmoid", or "softmax", the default for the
    log-likelihood cost), ``init`` ("large", "normalized", "he") and
    ``dropout``, the fraction p of hidden neurons removed for each mini-batch
    in training. ``seed`` makes the initial weights reproducible; ``dtype`` is
    float32 (fast) or float64. ``metadata`` is a free-form, JSON-serialisable
    record of how the network was trained; it is saved with the model.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        cost: str | Cost = "quadratic",
        activation: str | Activation = "sigmoid",
        output_activation: str | Activation | None = None,
        init: str = "large",
        dropout: float = 0.0,
        seed: int | None = None,
        dtype: Any = np.float32,
    ):
        self.sizes = check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.cost = get_cost(cost)
        if output_activation is None:
            output_activation = self.cost.output_activations[0]  # sigmoid, or softmax for log-likelihood
        self.activation = get_activation(activation, "hidden")
        self.output_activation = get_activation(output_activation, "output")
        self.cost.check_output(self.output_activation)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout {dropout}: the fraction p of hidden neurons removed must be in [0, 1)")
        if dropout and self.num_layers < 3:
            raise ConfigError("dropout removes hidden neurons, and this network has no hidden layer")
        self.dropout = float(dropout)
        self.init = init
        self.dtype = check_dtype(dtype)
        self.biases, self.weights = get_initializer(init)(self.sizes, make_rng(seed, "init"), self.dtype)
        self.metadata: dict[str, Any] = {}
        self._workspaces: dict[int, Workspace] = {}  # by mini-batch size, see workspace()

    # -- the book's objects ---------------------------------------------------------------

    @property
    def layer_activations(self) -> list[Activation]:
        """σ for each layer after the input: the hidden activation, then the output one."""
        return [self.activation] * (self.num_layers - 2) + [self.output_activation]

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network's shape and behaviour (not its weights)."""
        return {
            "sizes": self.sizes,
            "cost": self.cost.name,
            "activation": self.activation.name,
            "output_activation": self.output_activation.name,
            "init": self.init,
            "dropout": self.dropout,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        d = self.describe()
        dropout = f", dropout={d['dropout']}" if d["dropout"] else ""
        return (
            f"Network({d['sizes']}, cost={d['cost']!r}, activation={d['activation']!r}, "
            f"output_activation={d['output_activation']!r}{dropout}, dtype={d['dtype']})"
        )

    # -- feedforward ----------------------------------------------------------------------

    def parameters(self) -> list[np.ndarray]:
        """The arrays training changes: every weight matrix, then every bias column (the same objects)."""
        return self.weights + self.biases

    # -- feedforward ----------------------------------------------------------------------

    def forward(
        self,
        x: np.ndarray,
        masks: Sequence[np.ndarray] | None = None,
        keep: bool = True,
        workspace: Workspace | None = None,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Feed ``x`` (input columns, shape (sizes[0], m)) forward; return ``(zs, activations)``.

        ``activations[0] = x``, and backpropagation needs every z^l and a^l; with
        ``keep`` False only the output layer's are returned. ``masks`` (one 0/1
        column per hidden layer) removes the neurons dropout deleted for this
        mini-batch; without masks a dropout network runs with every neuron present
        and its outgoing weights scaled by (1 − p). With a ``workspace`` each z^l
        is written into its arrays (overwritten by the next call that uses it).
        """
        scale = 1.0 - self.dropout if masks is None and self.dropout else None
        activations, zs = [x], []
        for l, (b, w, act) in enumerate(zip(self.biases, self.weights, self.layer_activations)):
            if scale is not None and l > 0:
                w = w * scale  # dropout at evaluation: all neurons back, outgoing weights × (1 − p)
            out = None if workspace is None else workspace.zs[l]
            z = np.add(np.dot(w, activations[-1], out=out), b, out=out)  # z^l = w^l a^(l−1) + b^l   (eq. 25)
            a = act.fn(z)  # a^l = σ(z^l)   (eq. 26)
            if masks is not None and l < len(masks):
                a *= masks[l]  # dropout: deleted neurons output nothing
            if keep:
                zs.append(z)
                activations.append(a)
            else:
                zs, activations = [z], [a]
        return zs, activations

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        """Return the output a^L for input columns ``a`` of shape (sizes[0], m)."""
        return self.forward(a, keep=False)[1][-1]

    def draw_dropout_masks(self, rng: np.random.Generator) -> list[np.ndarray] | None:
        """For each hidden layer, a 0/1 column deleting a random fraction p of its neurons."""
        if not self.dropout:
            return None
        masks = []
        for n in self.sizes[1:-1]:
            deleted = rng.permutation(n) < round(self.dropout * n)
            masks.append((~deleted).astype(self.dtype)[:, None])
        return masks

    # -- backpropagation ------------------------------------------------------------------

    def workspace(self, m: int) -> Workspace:
        """The arrays reused by every mini-batch of ``m`` examples (see :class:`Workspace`).

        A training run meets at most two sizes, its mini-batch size and a shorter
        last mini-batch, so the few most recently used workspaces are kept.
        """
        cache = self._workspaces
        if m not in cache:
            if len(cache) >= WORKSPACES_KEPT:
                del cache[next(iter(cache))]  # the least recently created
            cache[m] = Workspace(self, m)
        return cache[m]

    def fresh_workspace(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, Workspace]:
        """A new workspace for x and y, and both in its dtype: the network's, or theirs where that is more precise."""
        dtype = np.result_type(x, y, self.dtype)
        return x.astype(dtype, copy=False), y.astype(dtype, copy=False), Workspace(self, x.shape[1], dtype)

    def backprop(
        self,
        x: np.ndarray,
        y: np.ndarray,
        masks: Sequence[np.ndarray] | None = None,
        workspace: Workspace | None = None,
    ) -> Gradients:
        """Return ``(nabla_b, nabla_w)``: Σ_x ∂C_x/∂b and Σ_x ∂C_x/∂w over the columns of x.

        The four equations of chapter 2, each applied to a whole mini-batch at once:
        δ is a matrix with one column per example, and the sums over examples in
        BP3 and BP4 become a row sum and a matrix product. With dropout ``masks``,
        both passes go through the thinned network. Without a ``workspace`` the
        gradients are new arrays; with one (training passes ``self.workspace(m)``,
        and x and y in the network's dtype) they are the workspace's, overwritten
        by its next use. Products are ``np.dot``: for these small matrices it
        costs less per call than ``@``, with the same result.
        """
        if workspace is None:
            x, y, workspace = self.fresh_workspace(x, y)
        ws = workspace
        zs, activations = self.forward(x, masks, workspace=ws)
        acts = self.layer_activations
        last = len(self.weights) - 1
        delta = self.cost.delta(zs[-1], activations[-1], y, acts[-1])  # BP1: δ^L = ∇_a C ⊙ σ'(z^L)
        for l in range(last, -1, -1):
            if l < last:
                sigma_prime = acts[l].prime(zs[l], activations[l + 1])  # σ'(z^l)
                # BP2: δ^l = ((w^(l+1))ᵀ δ^(l+1)) ⊙ σ'(z^l), written into this layer's δ array
                delta = np.multiply(np.dot(self.weights[l + 1].T, delta), sigma_prime, out=ws.deltas[l])
                if masks is not None:
                    delta *= masks[l]  # a deleted neuron has no error to pass back
            np.add.reduce(delta, axis=1, keepdims=True, out=ws.nabla_b[l])  # BP3: ∂C/∂b^l_j = δ^l_j
            np.dot(delta, activations[l].T, out=ws.nabla_w[l])  # BP4: ∂C/∂w^l_jk = a^(l−1)_k δ^l_j
        return ws.nabla_b, ws.nabla_w

    def backprop_per_example(
        self,
        x: np.ndarray,
        y: np.ndarray,
        masks: Sequence[np.ndarray] | None = None,
        workspace: Workspace | None = None,
    ) -> Gradients:
        """The same sums as :meth:`backprop`, computed one example at a time.

        This is chapter 2's algorithm as the book's network.py runs it: backpropagate
        a single image, add its gradient to the total, move to the next. It is the
        reference the matrix form is tested against, and benchmarks show what the
        loop costs. ``workspace`` receives the totals, as in :meth:`backprop`.
        """
        if workspace is None:
            x, y, workspace = self.fresh_workspace(x, y)
        totals, single = workspace, Workspace(self, 1, workspace.dtype)  # single: one image's arrays, reused
        nabla_b, nabla_w = totals.nabla_b, totals.nabla_w
        for total in nabla_b + nabla_w:
            total.fill(0)
        for i in range(x.shape[1]):
            delta_nabla_b, delta_nabla_w = self.backprop(x[:, i : i + 1], y[:, i : i + 1], masks, single)
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
        """Image rows (bytes 0-255 or values in [0, 1]) as input columns x in [0, 1], in the network's dtype."""
        return unit_interval(images, self.dtype).T

    def chunks(self, images: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """Consecutive slices of ``images`` as input columns (one chunk in floats at a time)."""
        for start in range(0, len(images), EVALUATION_CHUNK):
            part = slice(start, start + EVALUATION_CHUNK)
            yield part, self.inputs(images[part])

    def output_rows(self, images: np.ndarray) -> np.ndarray:
        """The output activations for ``images`` given as rows (n, sizes[0]); returns (n, sizes[-1])."""
        images = self.check_images(images)
        outputs = np.empty((len(images), self.sizes[-1]), self.dtype)
        for part, x in self.chunks(images):
            outputs[part] = self.feedforward(x).T
        return outputs

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The network's guess for each image: the index of the most active output neuron."""
        return np.argmax(self.output_rows(images), axis=1)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> int:
        """How many images the network classifies correctly (the book's ``evaluate``)."""
        return int(np.sum(self.predict(images) == labels))

    def total_cost(self, images: np.ndarray, labels: np.ndarray) -> float:
        """The mean cost C0 = (1/n) Σ_x C_x over a dataset with integer labels (no regularisation)."""
        images = self.check_images(images)
        targets = np.eye(self.sizes[-1], dtype=self.dtype)
        total = 0.0
        for part, x in self.chunks(images):
            zs, activations = self.forward(x, keep=False)
            total += self.cost.fn(zs[-1], activations[-1], targets[:, labels[part]], self.output_activation)
        return total / max(len(labels), 1)
