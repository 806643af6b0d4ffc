"""nndl on a GPU (issue 21): agreement with the CPU, seconds per epoch against the CPU and PyTorch CUDA, memory.

Not a test: it prints figures, and PASS/FAIL against the agreement bounds. It is made to run once, in a few
minutes, on a lent GPU machine. From the repository root:

    bash benchmarks/gpu_check.sh                    # installs CuPy (PyTorch only if absent), finds MNIST, runs this
    python benchmarks/gpu_check.py --budget 300     # when nndl, CuPy and MNIST (NNDL_DATA) are in place
    PYTHONPATH=tests/stand_in python benchmarks/gpu_check.py --quick   # smoke test without a GPU: the CuPy stand-in

- machine: the GPU, CUDA runtime and driver, CuPy, NumPy and PyTorch versions, CPU count, load average.
- agreement: one SGD step (10 MNIST training images, m = 10, η = 0.1, seed 1) of [784, 100, 10] and of
  conv20x5,pool2,conv40x5,pool2,full100 (ReLU, He initialisation, softmax + log-likelihood), trained with
  :func:`nndl.training.train` on device="cpu" and on device="gpu", in float32 and in float64. Printed: the
  largest over the parameter arrays of max|gpu − cpu| / max(max|cpu|, tiny), of the parameters after the
  step and of the step's change Δp alone (the sharper of the two); PASS when both are within 1e-5 (float32)
  and 1e-10 (float64).
- speed: seconds per 50,000-image epoch, float32, timed on a slice after a warm-up and scaled (the slice sizes
  are printed): nndl on the GPU (synchronised before the clock stops), nndl on the CPU (a smaller slice, BLAS
  threads as ``nndl train`` chooses them), and the same network in PyTorch CUDA (Linear/Conv2d/max_pool2d, σ
  after pooling as network3.py, plain SGD with lr = η/m on summed costs, the slice already on the GPU as a float
  tensor, a Python loop over mini-batches, TF32 off as in CuPy), and the ratio nndl GPU / PyTorch CUDA.
- memory: the bytes CuPy's memory pool holds after each nndl GPU row (the pool is emptied before each row, and
  keeps what it allocated, so this is the row's peak).

Each figure is printed as soon as it is measured, so a timeout still leaves figures, and the whole table is
printed at the end (also on SIGTERM). A figure that was not measured (no GPU, no PyTorch CUDA, the budget
spent, an error) says so in its cell; none is estimated or filled in. With the stand-in, "gpu" is NumPy:
its figures say nothing about a GPU, and the output says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
import traceback
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Callable

import numpy as np

from nndl.data.mnist import Dataset, load_mnist
from nndl.device import array_module, to_host
from nndl.errors import ConfigError
from nndl.network import Network
from nndl.runs.blas import blas_threads, default_threads
from nndl.training import TrainingConfig, train

EPOCH = 50_000
TINY = np.finfo(np.float64).tiny
BOUNDS = {"float32": 1e-5, "float64": 1e-10}
CONV1, CONV2 = "conv20x5,pool2,full100", "conv20x5,pool2,conv40x5,pool2,full100"
SLICES = {"full": {"gpu": 10_000, "cpu": 5_000, "warm-up": 1_000},
          "quick": {"gpu": 100, "cpu": 50, "warm-up": 20}}


@dataclass(frozen=True)
class Case:
    """One network to train: its shape (sizes or chapter 6's layers), neurons, cost, m and η."""

    name: str
    sizes: tuple[int, ...] | None = None
    layers: str | None = None
    activation: str = "relu"
    cost: str = "log-likelihood"
    eta: float = 0.1
    m: int = 10

    def network(self, device: str, dtype: Any = np.float32) -> Network:
        init = "he" if self.activation == "relu" else "large"  # N(0, 1) weights make deep ReLU nets overflow
        return Network(None if self.sizes is None else list(self.sizes), layers=self.layers, cost=self.cost,
                       activation=self.activation, init=init, seed=1, dtype=dtype, device=device)

    def config(self) -> TrainingConfig:
        return TrainingConfig(epochs=1, mini_batch_size=self.m, eta=self.eta, seed=1)


AGREEMENT = (Case("[784, 100, 10]", sizes=(784, 100, 10)), Case(CONV2, layers=CONV2))
BIG = Case("[784, 1000, 500, 10]", sizes=(784, 1000, 500, 10))
SPEED = (Case("[784, 30, 10]", sizes=(784, 30, 10), activation="sigmoid", cost="quadratic", eta=3.0),
         BIG, replace(BIG, m=100),
         Case(CONV1, layers=CONV1), Case(CONV1, layers=CONV1, m=100),
         Case(CONV2, layers=CONV2), Case(CONV2, layers=CONV2, m=100))


class Budget:
    """Seconds left for measuring; once spent, every later figure is "skipped (budget)"."""

    def __init__(self, seconds: float):
        self.seconds, self.deadline, self.announced = seconds, time.perf_counter() + seconds, False

    def spent(self) -> bool:
        if time.perf_counter() < self.deadline:
            return False
        if not self.announced:
            print(f"--budget {self.seconds:.0f} s spent: the remaining figures are skipped")
            self.announced = True
        return True


class Checker:
    """Runs each measurement, turning the budget and any error into a cell that says what happened."""

    def __init__(self, budget: Budget):
        self.budget, self.tracebacks_shown = budget, set()

    def measure(self, label: str, how: Callable[[], Any], budgeted: bool = True) -> Any:
        if budgeted and self.budget.spent():
            return "skipped (budget)"
        try:
            return how()
        except Exception as error:  # one broken path must not cost the other figures of a one-call check
            message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            print(f"  {label}: error: {message}")
            if message not in self.tracebacks_shown:
                self.tracebacks_shown.add(message)
                traceback.print_exc(file=sys.stdout)
            return "error"


# -- the machine ---------------------------------------------------------------------------------


def gpu_module() -> tuple[ModuleType | None, str]:
    """CuPy (or the stand-in) when nndl can use a GPU, else None and nndl's own reason."""
    try:
        return array_module("gpu"), ""
    except ConfigError as error:
        return None, str(error)


def is_stand_in(cupy: ModuleType | None) -> bool:
    return getattr(cupy, "STAND_IN", False)


def torch_cuda() -> tuple[ModuleType | None, str]:
    """PyTorch when it can use CUDA, else None and a description of what it has."""
    try:
        import torch
    except ImportError:
        return None, "PyTorch not installed"
    if not torch.cuda.is_available():
        return None, f"PyTorch {torch.__version__}, no CUDA"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # full float32, as CuPy
    return torch, f"PyTorch {torch.__version__} (CUDA {torch.version.cuda})"


def cuda_version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def describe_gpu(cupy: ModuleType | None, reason: str) -> str:
    if cupy is None:
        return f"none usable ({reason})"
    if is_stand_in(cupy):
        return "the CuPy STAND-IN (tests/stand_in: NumPy underneath, no GPU): its 'GPU' figures are the CPU's"
    runtime = cupy.cuda.runtime
    properties = runtime.getDeviceProperties(0)
    name = properties["name"].decode() if isinstance(properties["name"], bytes) else properties["name"]
    return (f"{name}, {properties['totalGlobalMem'] / 2**30:.0f} GiB; CUDA runtime "
            f"{cuda_version(runtime.runtimeGetVersion())}, driver {cuda_version(runtime.driverGetVersion())}; "
            f"CuPy {cupy.__version__}")


def load_average() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def print_machine(gpu: str, torch_note: str) -> None:
    print(f"GPU: {gpu}")
    print(f"NumPy {np.__version__}; {torch_note}; Python {platform.python_version()}; "
          f"{os.cpu_count()} CPUs; {load_average()}")


# -- agreement -------------------------------------------------------------------------------------


def one_step(case: Case, device: str, dtype: Any, data: Dataset) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Host copies of every parameter array after training ``case`` on ``data`` (one mini-batch), and of the step."""
    network = case.network(device, dtype)
    before = [to_host(p).astype(np.float64) for p in network.parameters()]  # copies: training works in place
    train(network, data, case.config())
    after = [to_host(p).astype(np.float64) for p in network.parameters()]
    return after, [a - b for a, b in zip(after, before)]


def relative_difference(gpu: list[np.ndarray], cpu: list[np.ndarray]) -> float:
    """The largest over arrays of max|gpu − cpu| / max(max|cpu|, tiny): the rounding against each array's size."""
    return max(float(np.max(np.abs(g - c))) / max(float(np.max(np.abs(c))), TINY) for g, c in zip(gpu, cpu))


AGREEMENT_HEADER = (f"{'agreement after one step':40s} {'dtype':8s} {'parameters':>16s} {'bound':>8s} {'':12s} "
                    f"{'the step Δp':>24s}")


def agreement(checker: Checker, data: Dataset, gpu_ready: bool, lines: list[str]) -> None:
    print("\nAgreement after one SGD step (10 training images, m = 10, η = 0.1): the largest over parameter "
          "arrays of max|gpu − cpu| / max|cpu|, of the parameters and of the step's change Δp alone")
    print(AGREEMENT_HEADER)
    for case in AGREEMENT:
        for dtype, bound in BOUNDS.items():
            def compare(case: Case = case, dtype: str = dtype) -> tuple[float, float]:
                (gpu, gpu_step), (cpu, cpu_step) = (one_step(case, device, dtype, data) for device in ("gpu", "cpu"))
                return relative_difference(gpu, cpu), relative_difference(gpu_step, cpu_step)

            measured = checker.measure(f"{case.name} {dtype}", compare) if gpu_ready else "no GPU"
            if isinstance(measured, tuple):
                verdict = "PASS" if max(measured) <= bound else "FAIL"  # the parameters and the step itself
                shown, step = f"{measured[0]:.2e}", f"{measured[1]:.2e}"
            else:
                verdict, shown, step = "not measured", measured, ""
            lines.append(f"{case.name:40s} {dtype:8s} {shown:>16s} {bound:>8.0e} {verdict:12s} {step:>24s}")
            print(lines[-1])


# -- speed -----------------------------------------------------------------------------------------


def synchronize(xp: ModuleType) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()  # CuPy returns before the GPU has finished


@dataclass(frozen=True)
class Timing:
    """Seconds per epoch, and for nndl the bytes CuPy's pool held and the BLAS threads on the CPU."""

    seconds: float
    pool_bytes: int | None = None
    threads: int | None = None

    def __str__(self) -> str:
        pool = "" if self.pool_bytes is None else f", pool {self.pool_bytes / 2**20:.0f} MB"
        threads = "" if self.threads is None else f" on {self.threads} BLAS threads"
        return f"{self.seconds:.2f} s/epoch{threads}{pool}"


def nndl_timing(case: Case, device: str, data: Dataset, images: int, warm_up: int) -> Timing:
    """nndl's seconds per epoch on ``device``, timed on ``images`` images after training on ``warm_up``."""
    network = case.network(device)
    xp = network.xp
    pool = xp.get_default_memory_pool() if xp is not np else None
    if pool is not None:
        pool.free_all_blocks()  # what the last row left cached is not this row's
    threads = default_threads(network, case.m, distorting=False) if xp is np else None  # as `nndl train` chooses
    with blas_threads(threads):
        train(network, data.head(warm_up), case.config())  # CuPy compiles its kernels on first use
        synchronize(xp)
        started = time.perf_counter()
        train(network, data.head(images), case.config())
        synchronize(xp)
    seconds = (time.perf_counter() - started) * EPOCH / images
    return Timing(seconds, None if pool is None else pool.total_bytes(), threads)


def torch_network(network: Network, torch: ModuleType) -> Any:
    """``network``'s layers in PyTorch: Conv2d, MaxPool2d then σ (network3's order), Linear; output σ in the cost."""
    nn = torch.nn
    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    stack: list[Any] = []
    for layer in network.layers:
        if layer.kind == "conv":
            stack.append(nn.Conv2d(layer.input_shape[0], layer.output_shape[0], layer.w.shape[-1]))
        elif layer.kind == "pool":
            stack.append(nn.MaxPool2d(layer.input_shape[1] // layer.output_shape[1]))
        else:
            stack += [nn.Flatten(), nn.Linear(int(np.prod(layer.input_shape)), layer.size)]
        if layer.activation is not None and layer is not network.layers[-1]:
            stack.append(activations[layer.activation.name]())
    return nn.Sequential(*stack)


def torch_timing(case: Case, torch: ModuleType, data: Dataset, images: int, warm_up: int) -> Timing:
    """The same network's seconds per epoch in PyTorch CUDA: plain SGD in a Python loop, timed on ``images``."""
    functional = torch.nn.functional
    torch.manual_seed(1)
    network = case.network("cpu")
    model = torch_network(network, torch).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=case.eta / case.m)  # w → w − (η/m) Σ_x ∂C_x/∂w as nndl
    pixels = (data.images[:images] / np.float32(255)).astype(np.float32)
    x = torch.from_numpy(pixels.reshape(-1, *network.input_shape)).cuda()
    labels = torch.from_numpy(data.labels[:images].astype(np.int64)).cuda()
    targets = functional.one_hot(labels, network.sizes[-1]).float()

    def cost(outputs: Any, chosen: Any) -> Any:
        if case.cost == "log-likelihood":
            return functional.cross_entropy(outputs, labels[chosen], reduction="sum")  # softmax, then −ln a_y
        return 0.5 * ((torch.sigmoid(outputs) - targets[chosen]) ** 2).sum()  # quadratic cost of sigmoid outputs

    def epoch(n: int) -> None:
        order = torch.randperm(n, device="cuda")
        for start in range(0, n, case.m):
            chosen = order[start:start + case.m]
            optimizer.zero_grad()
            cost(model(x[chosen]), chosen).backward()
            optimizer.step()

    epoch(warm_up)
    torch.cuda.synchronize()
    started = time.perf_counter()
    epoch(images)
    torch.cuda.synchronize()
    return Timing((time.perf_counter() - started) * EPOCH / images)


def timed(checker: Checker, label: str, how: Callable[[], Timing], missing: str | None = None) -> Timing | str:
    """A contender's timing, printed at once; ``missing`` (why it cannot run) instead when given."""
    if missing is not None:
        return missing
    result = checker.measure(label, how)
    if isinstance(result, Timing):
        print(f"  {label}: {result}   {load_average()}")
    return result


def cell(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def quotient(a: Timing | str, b: Timing | str, digits: int = 2) -> str:
    return cell(a.seconds / b.seconds, digits) if isinstance(a, Timing) and isinstance(b, Timing) else ""


SPEED_HEADER = (f"{'network':40s} {'m':>4s} {'nndl GPU':>16s} {'nndl CPU':>16s} {'threads':>7s} {'PyTorch CUDA':>16s} "
                f"{'GPU/PyTorch':>11s} {'CPU/GPU':>8s} {'GPU pool MB':>11s}")


def speed_row(case: Case, checker: Checker, data: Dataset, slices: dict[str, int], gpu_ready: bool,
              torch: ModuleType | None) -> str:
    label = f"{case.name} m={case.m}"
    gpu = timed(checker, f"{label}: nndl GPU", lambda: nndl_timing(case, "gpu", data, slices["gpu"], slices["warm-up"]),
                None if gpu_ready else "no GPU")
    cpu = timed(checker, f"{label}: nndl CPU",
                lambda: nndl_timing(case, "cpu", data, slices["cpu"], slices["warm-up"] // 10))
    reference = timed(checker, f"{label}: PyTorch CUDA",
                      lambda: torch_timing(case, torch, data, slices["gpu"], slices["warm-up"]),
                      None if torch is not None else "not available")

    def seconds(t: Timing | str) -> str:
        return cell(t.seconds) if isinstance(t, Timing) else t

    return (f"{case.name:40s} {case.m:4d} {seconds(gpu):>16s} {seconds(cpu):>16s} "
            f"{cpu.threads if isinstance(cpu, Timing) else '':>7} {seconds(reference):>16s} "
            f"{quotient(gpu, reference):>11s} {quotient(cpu, gpu, 1):>8s} "
            f"{cell(gpu.pool_bytes / 2**20, 0) if isinstance(gpu, Timing) else '':>11s}")


def speed(checker: Checker, data: Dataset, slices: dict[str, int], gpu_ready: bool, torch: ModuleType | None,
          rows: list[str]) -> None:
    print(f"\nSeconds per epoch of {EPOCH:,} images, float32: nndl GPU and PyTorch CUDA timed on {slices['gpu']:,} "
          f"images, nndl CPU on {slices['cpu']:,}, each after a warm-up, scaled")
    print(SPEED_HEADER)
    for case in SPEED:
        rows.append(speed_row(case, checker, data, slices, gpu_ready, torch))
        print(rows[-1])


# -- the whole check -------------------------------------------------------------------------------


def stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # `timeout` sends SIGTERM: the finally prints the table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny slices: a smoke test (e.g. on the CuPy stand-in)")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds for measuring; later rows are skipped")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each line reaches the log at once, even if the run is killed
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    checker = Checker(Budget(args.budget))
    slices = SLICES["quick" if args.quick else "full"]

    cupy, reason = gpu_module()
    torch, torch_note = torch_cuda()
    gpu = checker.measure("GPU details", lambda: describe_gpu(cupy, reason), budgeted=False)
    print_machine(gpu, torch_note)
    if torch is None:
        print(f"PyTorch CUDA: not available ({torch_note})")
    data = load_mnist().training
    agreed: list[str] = []
    rows: list[str] = []  # filled as figures come, so the table below holds them even if the run is stopped
    try:
        agreement(checker, data.head(10), cupy is not None, agreed)
        speed(checker, data, slices, cupy is not None, torch, rows)
    finally:
        print("\n== nndl GPU check" + (" (QUICK: tiny slices)" if args.quick else "")
              + (" -- 'GPU' is the CuPy STAND-IN, NumPy on the CPU" if is_stand_in(cupy) else "") + " ==")
        print_machine(gpu, torch_note)
        print(AGREEMENT_HEADER)
        print("\n".join(agreed))
        print(f"seconds per epoch (GPU/PyTorch slices {slices['gpu']:,} images, CPU {slices['cpu']:,}); "
              "cells not measured say why")
        print(SPEED_HEADER)
        print("\n".join(rows))


if __name__ == "__main__":
    main()
