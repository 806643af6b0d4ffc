"""Many training runs at once, on Dask distributed: a local cluster, or one already running elsewhere.

The sweeps and the book's experiments hand an :class:`Engine` a batch of run
specifications; each becomes one Dask task (:func:`train_task`) that trains the
run on a worker and returns its summary. Every worker is one process with one
thread and one BLAS thread, so N workers train N runs side by side on N cores.
A task that raises is retried once, then reported with its error; a worker that
dies mid-run loses only that run, which the scheduler starts again elsewhere.

Dask is optional (``pip install 'nndl[sweep]'``) and imported only here, inside
functions, so ``import nndl`` needs NumPy alone.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from ..device import array_module, gpu_count, use_gpu
from ..errors import ConfigError, NndlError
from ..metrics import Measure
from ..text import first_line, plural
from .checkpoint import resumable
from .runner import DataCache, kept_scores, run_spec
from .spec import RunSpec

#: Seconds to wait for a scheduler's handshake before calling its address dead.
HANDSHAKE_SECONDS = 3.0
#: Seconds between refreshes of the progress bar while no task finishes.
REFRESH_SECONDS = 1.0
#: Datasets loaded by this worker process, kept for its next tasks (a task carries only a folder path).
WORKER_CACHE = DataCache()


def train_task(spec: dict[str, Any], keep_best: str | None = None, score_kept: bool = False,
               keep_network: bool = False, checkpoint: str | None = None) -> dict[str, Any]:
    """Worker side: train the run ``spec`` (its JSON form) and return its summary and the worker's name.

    ``keep_best`` ("validation accuracy") ends the run with the weights of its
    best epoch by that measure and returns the network under "network" (the
    sweep keeps the chosen run's model to test it once, at the end);
    ``score_kept`` adds the finished network's validation and test accuracy under
    "kept" (as the experiments report them); ``keep_network`` returns the finished
    network under "network" too (an experiment's ensemble scores it). With
    ``checkpoint`` (a folder on the worker's disk) the run checkpoints there
    every epoch and takes up where an earlier attempt stopped.
    """
    from ..schedules import KeepBest

    run = RunSpec.from_dict(spec)
    if multiprocessing.current_process().daemon and run.distortions.workers:
        run = run.replace(workers=0)  # a daemon may not start processes; the distortions are the same without them
    if run.network.device == "gpu":
        use_gpu(worker_index())
    keeper = [KeepBest(Measure.parse(keep_best), patience=run.training.epochs + 1)] if keep_best else []
    result = run_spec(run, callbacks=keeper, cache=WORKER_CACHE, blas_thread_limit=1, checkpoint=checkpoint,
                      resume=resumable(checkpoint))
    summary = {**result.summary, "worker": worker_name()}
    if score_kept:
        summary["kept"] = kept_scores(result.network, WORKER_CACHE.get(run.data))
    if keep_best or keep_network:
        summary["network"] = result.network.to_device("cpu")  # the client may have no GPU
    return summary


def worker_index() -> int:
    """This worker's number in a local cluster (0, 1, …; LocalCluster names its workers so), else 0."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    return name if isinstance(name, int) else 0


def worker_name() -> str:
    """This Dask worker's address (or "local" outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


@dataclass
class Outcome:
    """One finished task: its key and item, and its result or the error that ended it."""

    key: str
    item: Any
    result: Any = None
    error: str | None = None


def require_dask() -> None:
    """Fail with the install command when Dask distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise NndlError("sweeps and parallel experiments need Dask: pip install 'nndl[sweep]'") from None


def probe_scheduler(address: str, timeout: float = HANDSHAKE_SECONDS) -> None:
    """Check that a Dask scheduler answers at ``address`` (tcp://HOST:PORT) within ``timeout`` seconds.

    A live scheduler sends its handshake as soon as a client connects. Dask's own
    client waits forever on a server that accepts and never answers, so nndl
    reads the first byte itself before handing the address to Dask.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ConfigError(f"scheduler {address!r}: give tcp://HOST:PORT, as 'dask scheduler' prints it")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            if not connection.recv(1):
                raise ConfigError(f"scheduler {address}: closed the connection at once; is it a Dask scheduler?")
    except socket.timeout:
        raise ConfigError(f"scheduler {address}: accepted the connection but sent no Dask handshake within "
                          f"{timeout:g} s; is it a Dask scheduler?") from None
    except OSError as exc:
        raise ConfigError(f"scheduler {address}: nothing answers ({exc.strerror or exc}); start one with "
                          f"'dask scheduler' or check the address") from None


def bokeh_available() -> bool:
    """Whether Dask can serve its dashboard here (it needs bokeh)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


class Engine:
    """A Dask client: on a new local cluster (one single-threaded worker process per core, or per GPU for
    ``device`` "gpu") or on ``scheduler``.

    Use it as a context manager; leaving it closes the client and any cluster it
    started, also on Ctrl-C.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None, progress: bool = True,
                 device: str = "cpu"):
        if workers is not None and workers < 1:
            raise ConfigError(f"workers {workers}: must be at least 1")
        self.scheduler, self.workers, self.progress = scheduler, workers, progress
        self.gpus = gpu_count(array_module(device)) if device == "gpu" else 0  # one local worker per GPU
        self.client: Any = None
        self.cluster: Any = None
        self.settings: Any = None  # Dask configuration changed while the local cluster runs

    def __enter__(self) -> "Engine":
        require_dask()
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            probe_scheduler(self.scheduler)
            self.client = Client(self.scheduler, timeout=HANDSHAKE_SECONDS)
        else:  # Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which makes every weight-sized array a fresh mmap:
            # training then spends as long in page faults as in arithmetic (bench_sweep.py), so leave it unset
            # and let a worker start the processes that distort the next epoch's images (Dask's are daemons otherwise)
            self.settings = dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                                             "distributed.worker.daemon": False})
            try:
                self.cluster = LocalCluster(n_workers=self.workers or self.gpus or os.cpu_count() or 1,
                                            threads_per_worker=1,
                                            processes=True, dashboard_address=":0",  # any free port, never a clash
                                            silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster)
            except (RuntimeError, OSError, TimeoutError) as exc:  # a worker process died or hung while starting
                self.__exit__(None, None, None)  # the with statement never calls it when __enter__ raises
                raise NndlError(f"the local Dask cluster did not start ({root_cause(exc)}); run the command "
                                f"again, or with fewer --workers") from None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.settings is not None:
            self.settings.__exit__(None, None, None)
        self.client = self.cluster = self.settings = None

    @property
    def dashboard(self) -> str | None:
        """The dashboard's address, when the scheduler serves one (it needs bokeh)."""
        if self.cluster is not None and not bokeh_available():
            return None
        return self.client.dashboard_link if "dashboard" in self.client.scheduler_info().get("services", {}) else None

    def describe(self) -> str:
        """'2 workers, dashboard http://…' (the dashboard where the scheduler serves one), for the log."""
        dashboard = self.dashboard
        return plural(self.n_workers, "worker") + (f", dashboard {dashboard}" if dashboard else "")

    @property
    def n_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def run(self, function: Callable[..., Any], tasks: dict[str, tuple[Any, tuple[Any, ...]]],
            what: str = "trials", **keywords: Any) -> Iterator[Outcome]:
        """Run ``function(*args, **keywords)`` for every ``key: (item, args)``; yield each outcome as it finishes.

        A task that raises is retried once; if it fails again its outcome carries
        the error and the others go on. A progress bar on stderr counts done,
        running and left, with an estimate of the time to go.
        """
        from distributed import wait

        futures = {self.client.submit(function, *args, key=f"{what}-{key}", retries=1, pure=False, **keywords):
                   (key, item) for key, (item, args) in tasks.items()}
        bar = self.progress_bar(len(futures), what)
        pending = set(futures)
        try:
            with noticed_interrupts() as interrupted:
                while pending:
                    try:
                        done, pending = wait(pending, timeout=REFRESH_SECONDS, return_when="FIRST_COMPLETED")
                    except TimeoutError:  # nothing finished yet: refresh the running count and the estimate
                        done = set()
                    if interrupted.is_set():  # a Ctrl-C whose KeyboardInterrupt Python dropped
                        raise KeyboardInterrupt
                    for future in done:
                        key, item = futures[future]
                        if future.status == "finished":
                            yield Outcome(key, item, result=future.result())
                        else:
                            yield Outcome(key, item, error=describe_error(future))
                        future.release()
                    if bar is not None:
                        bar.update(len(done))
                        bar.set_postfix_str(self.running_text(len(pending)), refresh=True)
        finally:
            if bar is not None:
                bar.close()
            self.client.cancel(list(pending))

    def running_text(self, unfinished: int) -> str:
        """'running 2, left 5' for the progress bar."""
        assigned = sum(len(keys) for keys in self.client.processing().values())  # includes tasks queued on a worker
        running = min(unfinished, assigned, sum(self.client.nthreads().values()))
        return f"running {running}, left {unfinished - running}"

    def progress_bar(self, total: int, what: str) -> Any:
        """A tqdm bar on stderr, or None when asked for none, stderr is no terminal (a log file gets each finished
        run's line, not a bar redrawn every second for hours) or tqdm is missing."""
        if not self.progress or total == 0 or not sys.stderr.isatty():
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=total, desc=what, unit=what.rstrip("s") or "task", file=sys.stderr,
                    postfix=self.running_text(total))


@contextlib.contextmanager
def noticed_interrupts() -> Iterator[threading.Event]:
    """While inside, Ctrl-C raises KeyboardInterrupt as usual and also sets the event yielded, for the caller to check.

    Python drops an exception raised while a weakref callback or ``__del__`` runs
    (it prints "Exception ignored in ..."), and Dask's client runs many: a Ctrl-C
    that lands there would be lost and the run would go on to the end. Off the
    main thread, or where SIGINT has a handler of its own, nothing changes.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield interrupted
        return

    def interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost exception of a chain ('Nanny failed to start worker process')."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return first_line(exc)


def describe_error(future: Any) -> str:
    """A failed task's error as one line (the exception), the traceback's last frame kept for the log."""
    exc = future.exception()
    frames = traceback.extract_tb(future.traceback()) if future.traceback() is not None else []
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
