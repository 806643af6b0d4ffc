"""nndl: the neural networks of Michael Nielsen's *Neural Networks and Deep Learning*, in NumPy.

The main objects, as the book names them::

    from nndl import EpochPrinter, Network, TrainingConfig, load_mnist, train
    from nndl.metrics import Monitor

    mnist = load_mnist()                       # --data DIR / NNDL_DATA / beside the checkout / cache / download
    net = Network([784, 30, 10], seed=1)       # chapter 1: sigmoid neurons, quadratic cost
    run = train(net, mnist.training, TrainingConfig(epochs=30, mini_batch_size=10, eta=3.0, seed=1),
                evaluation=[Monitor(mnist.test)], callbacks=[EpochPrinter()])   # 'Epoch 0: 9129 / 10000'

or, as one serialisable run specification (what ``nndl train`` does)::

    from nndl.runs import RunSpec, run_spec
    result = run_spec(RunSpec().replace(eta=3.0, seed=1))
"""

__version__ = "0.2.0"

from .callbacks import Callback, EpochPrinter  # noqa: E402
from .data.mnist import MNIST, Dataset, load_mnist  # noqa: E402
from .errors import ConfigError, DataError, ModelFileError, NndlError  # noqa: E402
from .files.models import load_model, save_model  # noqa: E402
from .metrics import History, Measure, Monitor  # noqa: E402
from .network import Network  # noqa: E402
from .training import TrainingConfig, TrainingRun, train  # noqa: E402

__all__ = [
    "__version__",
    "Callback",
    "ConfigError",
    "DataError",
    "Dataset",
    "EpochPrinter",
    "History",
    "MNIST",
    "Measure",
    "ModelFileError",
    "Monitor",
    "NndlError",
    "Network",
    "TrainingConfig",
    "TrainingRun",
    "load_mnist",
    "load_model",
    "save_model",
    "train",
]
