"""What the Draw tab shows for one drawn digit: MNIST's preprocessing, the network's activations, costs and BP1-BP4.

Everything is computed with the library's own maths: :func:`nndl.data.images.preprocess`
for the steps from a drawing to the 28×28 input, :meth:`nndl.network.Network.forward`
for z^l and a^l, :meth:`nndl.network.Network.backprop` for the gradients and each
cost's ``fn`` for C. Arrays come back as plain lists so the page can draw them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...activations import get_activation
from ...costs import COSTS, Cost
from ...data.images import Preprocessed, centre_of_mass, ink_box, preprocess
from ...errors import ConfigError
from ...network import Network

DIAGRAM_NEURONS = 40  # neurons drawn per layer in the network diagram (the first ones)
DIAGRAM_EDGES = 150  # weights drawn between two layers: the largest in size


def rounded(array: np.ndarray, digits: int = 4) -> list[Any]:
    """An array as nested lists of floats with ``digits`` decimals (small JSON, exact enough to draw)."""
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def floats(array: np.ndarray) -> list[float]:
    """A vector as plain floats at full precision (errors δ and σ'(z) can be far below 1e-4)."""
    return np.asarray(array, dtype=np.float64).ravel().tolist()


def preprocessing_steps(steps: Preprocessed) -> dict[str, Any]:
    """The steps the page draws: ink box (in the drawing's pixels), 20-px scaling, centring, the input."""
    box = steps.box
    return {
        "size": [int(steps.grey.shape[1]), int(steps.grey.shape[0])],
        "box": {"top": box.top, "left": box.left, "bottom": box.bottom, "right": box.right},
        "scaled": rounded(steps.scaled, 3),
        "framed": rounded(steps.framed, 3),
        "centre_of_mass": [round(c, 3) for c in steps.centre_of_mass],
        "shift": list(steps.shift),
        "centred": steps.centred_by_mass,
        "input": rounded(steps.input, 3),
    }


def cost_under(cost: Cost, network: Network, z: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """C for output z^L and target y under ``cost``, through the output activation that cost is defined for.

    A cost keeps the network's own output layer when it can; otherwise (the
    log-likelihood of a sigmoid network, the cross-entropy of a softmax one) the
    same z^L goes through the activation the cost needs, and the answer says so.
    """
    output = network.output_activation
    if output.name not in cost.output_activations:
        output = get_activation(cost.output_activations[0], "output")
    a = output.fn(z)
    return {"cost": cost.fn(z, a, y, output), "output_activation": output.name,
            "own_output": output.name == network.output_activation.name}


def backprop_for(network: Network, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """BP1-BP4 for one image and one label, from :meth:`Network.backprop` (δ^l = ∂C/∂b^l by BP3)."""
    nabla_b, nabla_w = network.backprop(x, y)
    return {
        "cost": network.cost.name,
        "delta_output": floats(nabla_b[-1]),  # BP1: δ^L
        "delta_hidden": floats(nabla_b[0]) if len(nabla_b) > 1 else [],  # BP2: δ^1 of the first hidden layer
        "grad_b_norms": [float(np.linalg.norm(nb)) for nb in nabla_b],  # BP3: ‖∂C/∂b^l‖ = ‖δ^l‖
        "grad_w_norms": [float(np.linalg.norm(nw)) for nw in nabla_w],  # BP4: ‖∂C/∂w^l‖ = ‖a^(l−1) δ^l‖
    }


def dataset_steps(image: np.ndarray) -> Preprocessed:
    """An MNIST image (28×28 ink in [0, 1]) as the steps: MNIST already boxed it to 20 px and centred it by mass,
    so the network's input is the image itself, exactly as the Mistakes tab judged it."""
    box = ink_box(image)
    cropped = image[box.top : box.bottom, box.left : box.right]
    return Preprocessed(luminance=1.0 - image, background=1.0, dark_ink=True, grey=image, box=box, cropped=cropped,
                        scaled=cropped, framed=image, centre_of_mass=centre_of_mass(image), shift=(0, 0),
                        centred_by_mass=True, input=image)


def analyse_digit(network: Network, image: bytes, centre: bool = True, label: int | None = None) -> dict[str, Any]:
    """Preprocess a drawing, feed it forward, and give each cost and BP1-BP4 for ``label`` (default: the guess)."""
    return read_digit(network, preprocess(image, centre=centre), label)


def read_digit(network: Network, steps: Preprocessed, label: int | None = None) -> dict[str, Any]:
    """Feed a preprocessed digit forward, and give each cost and BP1-BP4 for ``label`` (default: the guess)."""
    if network.sizes[0] != steps.input.size:
        raise ConfigError(f"this model takes {network.sizes[0]} inputs, not a 28×28 drawing's "
                          f"{steps.input.size}: pick a model trained on MNIST")
    x = steps.input_row.astype(network.dtype)[:, None]  # one image as a column, (784, 1)
    zs, activations = network.forward(x)
    result: dict[str, Any] = {
        "steps": preprocessing_steps(steps),
        "output": floats(activations[-1]),
        "guess": int(np.argmax(activations[-1])),
        "output_activation": network.output_activation.name,
        "hidden": None,
    }
    if not network.is_dense:
        result["convolution"] = feature_maps(network, activations)
    else:
        result["diagram"] = diagram(network, activations)
    if network.is_dense and network.num_layers > 2:
        z, a = zs[0], activations[1]
        result["hidden"] = {
            "activation": network.activation.name,
            "z": floats(z),
            "a": floats(a),
            "prime": floats(network.activation.prime(z, a)),  # σ'(z)
        }
    if label is not None and not 0 <= label < network.sizes[-1]:
        raise ConfigError(f"label {label}: this model's outputs are 0-{network.sizes[-1] - 1}")
    result["label"] = result["guess"] if label is None else label
    y = np.zeros((network.sizes[-1], 1), network.dtype)
    y[result["label"]] = 1.0  # the one-hot target y(x)
    result["costs"] = {name: cost_under(cost, network, zs[-1], y) for name, cost in COSTS.items()}
    result["backprop"] = backprop_for(network, x, y)
    return result


def diagram(network: Network, activations: list[np.ndarray]) -> dict[str, Any]:
    """A dense network as TensorFlow Playground draws it: each layer's activations for this digit (the first
    DIAGRAM_NEURONS), and between layers after the first the DIAGRAM_EDGES largest weights as [from, to, w]."""
    layers = [{"size": int(a.shape[0]), "a": floats(a[:DIAGRAM_NEURONS, 0]),
               "activation": (layer.activation or network.output_activation).name}
              for layer, a in zip(network.layers, activations[1:])]
    edges = []
    for w in network.weights[1:]:  # w[j, k]: from neuron k below to neuron j above
        shown = w[:DIAGRAM_NEURONS, :DIAGRAM_NEURONS]
        largest = np.argsort(-np.abs(shown), axis=None, kind="stable")[:DIAGRAM_EDGES]
        to, below = np.unravel_index(largest, shown.shape)
        edges.append([[int(k), int(j), round(float(shown[j, k]), 4)] for j, k in zip(to, below)])
    return {"inputs": network.sizes[0], "layers": layers, "edges": edges}


def feature_maps(network: Network, activations: list[np.ndarray]) -> list[dict[str, Any]]:
    """Each convolutional layer's filters and its feature maps for this digit, before and after the pooling after it.

    A filter over several input maps is drawn as the sum of its kernels over
    them (one picture per feature map); σ sits before or after pooling as the
    network has it (``layer.activation``), and each map says which it shows.
    """
    layers = network.layers
    shown = []
    for l, layer in enumerate(layers):
        if layer.kind != "conv":
            continue
        pool = layers[l + 1] if l + 1 < len(layers) and layers[l + 1].kind == "pool" else None
        entry: dict[str, Any] = {
            "layer": l, "kernel": layer.kernel, "input_maps": layer.input_shape[0],
            "filters": rounded(layer.w.sum(axis=1), 3), "biases": rounded(layer.b.ravel(), 4),
            "maps": rounded(activations[l + 1][..., 0], 3),
            "maps_activation": layer.activation.name if layer.activation else None,  # None: w ⋆ a + b, σ comes later
        }
        if pool is not None:
            entry.update({"pool": pool.p, "pooled": rounded(activations[l + 2][..., 0], 3),
                          "pooled_activation": pool.activation.name if pool.activation else None})
        shown.append(entry)
    return shown


def weight_image(network: Network, neuron: int) -> dict[str, Any]:
    """Hidden neuron ``neuron``'s incoming weights w^1_j as a 28×28 image, with its bias."""
    if network.num_layers < 3:
        raise ConfigError("this model has no hidden layer")
    if not network.is_dense:
        raise ConfigError("this model's first layer is convolutional: its kernels are drawn by nndl inspect")
    if not 0 <= neuron < network.sizes[1]:
        raise ConfigError(f"neuron {neuron}: the first hidden layer has neurons 0-{network.sizes[1] - 1}")
    weights = network.weights[0][neuron]
    side = int(round(weights.size ** 0.5))
    if side * side != weights.size:
        raise ConfigError(f"this model's {weights.size} inputs are not a square image")
    return {"neuron": neuron, "side": side, "weights": rounded(weights.reshape(side, side)),
            "bias": float(network.biases[0][neuron, 0])}
