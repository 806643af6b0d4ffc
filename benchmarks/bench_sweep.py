"""How fast sweeps run on the Dask engine: trials per minute with 1 and 2 workers, and the engine's cost per trial.

The same trials ([784, 30, 10], cross-entropy, a few epochs on part of MNIST,
each with its own η and seed) run three ways: in a plain loop in this process,
then as Dask tasks on a local cluster of 1 and of 2 single-threaded worker
processes. Every worker has loaded the data before the clock starts (a sweep
pays that once per worker), and the cluster's start-up is timed apart.
The engine's overhead per trial is (time on 1 worker − time of the loop) / trials.

    PYTHONPATH=src python benchmarks/bench_sweep.py [--trials 16] [--epochs 2] [--train-size 10000]
"""

from __future__ import annotations

import argparse
import os
import time

from nndl.data.mnist import resolve_data_dir
from nndl.runs.engine import Engine, train_task
from nndl.runs.runner import DataCache, run_spec
from nndl.runs.spec import RunSpec


def trial_specs(trials: int, epochs: int, train_size: int, source: str) -> list[RunSpec]:
    """``trials`` runs that differ in η and seed, as a sweep's would."""
    etas = [0.1, 0.25, 0.5, 1.0]
    return [RunSpec.from_flat({"source": source, "cost": "cross-entropy", "init": "normalized", "hidden": [30],
                               "epochs": epochs, "train_size": train_size, "evaluate_on": "validation",
                               "eta": etas[i % len(etas)], "seed": 1 + i // len(etas), "workers": 0})
            for i in range(trials)]


def time_loop(specs: list[RunSpec]) -> tuple[float, float]:
    """(seconds to train every run one after another in this process, seconds spent inside training)."""
    cache = DataCache()
    cache.get(specs[0].data)
    started = time.perf_counter()
    training = sum(run_spec(spec, cache=cache, blas_thread_limit=1).summary["seconds"] for spec in specs)
    return time.perf_counter() - started, training


def time_engine(specs: list[RunSpec], workers: int) -> tuple[float, float, float]:
    """(seconds to start the cluster, seconds to run every trial once each worker holds the data,
    seconds the workers spent inside training)."""
    started = time.perf_counter()
    with Engine(workers=workers, progress=False) as engine:
        startup = time.perf_counter() - started
        warm_up = {f"warm-{i}": (None, (specs[0].replace(epochs=1).to_dict(),)) for i in range(workers)}
        list(engine.run(train_task, warm_up, what="warm-up"))  # each worker loads the data once
        started = time.perf_counter()
        tasks = {f"{i}": (spec, (spec.to_dict(),)) for i, spec in enumerate(specs)}
        outcomes = list(engine.run(train_task, tasks, what="trials", keep_best="validation accuracy"))
        seconds = time.perf_counter() - started
    failed = [o.error for o in outcomes if o.error]
    if failed:
        raise SystemExit(f"a trial failed: {failed[0]}")
    return startup, seconds, sum(o.result["seconds"] for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--data", help="MNIST folder (default $NNDL_DATA or the cache)")
    args = parser.parse_args()
    specs = trial_specs(args.trials, args.epochs, args.train_size, str(resolve_data_dir(args.data)))
    print(f"{args.trials} trials: [784, 30, 10], {args.epochs} epochs on {args.train_size:,} images each; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    loop, loop_training = time_loop(specs)
    print(f"plain loop, 1 process:   {loop:6.1f} s  {60 * args.trials / loop:6.1f} trials/min  "
          f"(inside training {loop_training:.1f} s)")
    timings = {}
    for workers in (1, 2):
        startup, seconds, training = time_engine(specs, workers)
        timings[workers] = seconds, training
        print(f"Dask, {workers} worker{'s' if workers > 1 else ' '}:         {seconds:6.1f} s  "
              f"{60 * args.trials / seconds:6.1f} trials/min  (inside training {training:.1f} s; cluster start "
              f"{startup:.1f} s)")
    print(f"speed-up, 2 workers over 1: {timings[1][0] / timings[2][0]:.2f}x")
    seconds, training = timings[1]
    print(f"1 worker − loop, per trial: {1000 * (seconds - loop) / args.trials:.0f} ms, of which training itself "
          f"slower on the worker: {1000 * (training - loop_training) / args.trials:.0f} ms; engine overhead "
          f"(outside training): {1000 * ((seconds - training) - (loop - loop_training)) / args.trials:.0f} ms")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
