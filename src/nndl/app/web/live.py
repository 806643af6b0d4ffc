"""One training run in a background thread, watched and steered by the page (Train tab).

:class:`LiveRun` is a :class:`~nndl.callbacks.Callback` handed to
:func:`nndl.runs.runner.run_spec`, which runs in a thread of its own so the
server keeps answering the Draw tab. The run is kept as *state*, not as a log to
replay: what the page draws (the begin record, the mini-batch costs thinned to a
bounded number of points, each epoch's record, the latest weight images, where
the run stands, how it ended) is one :meth:`LiveRun.snapshot` that a page
joining late (a reload, a second tab, a phone) gets in one message. After it,
the page hears each new event (a mini-batch cost, an epoch, weights, a state
change, the final ``end``); the last few hundred are kept, numbered, so a
dropped connection resumes where it broke off. Memory stays bounded however
long the run. About once a second, and when it pauses, the run copies its w and
b between mini-batches (:class:`Parameters`), so the Draw tab reads the pad with
the current weights without ever meeting a half-done update. It pauses by blocking in ``on_batch_end`` (waking often, so a stop
still gets through), releases one more mini-batch or epoch on request, and stops
a run nobody has watched for ``abandon_after`` seconds.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import uuid
from typing import Any, NamedTuple

import numpy as np

from ...callbacks import Callback
from ...device import to_host
from ...errors import NndlError
from ...network import Network
from ...runs.runner import DataCache, RunResult, run_spec
from ...runs.spec import RunSpec
from ...training import TrainingRun, epoch_order
from ..reporting import finite_or_none
from .digits import rounded

COST_EVERY = 10  # the mini-batch cost is measured on every 10th mini-batch: about 3% of a step's work ...
MAX_COST_POINTS = 100  # ... and at most 100 times per epoch (a point every pixel or two of the chart)
MAX_POINTS = 4000  # mini-batch costs a snapshot keeps: beyond, every other one is dropped (the curve's shape stays)
RECENT_EVENTS = 400  # numbered events kept for a page resuming after a dropped connection
WEIGHT_IMAGES = 16  # hidden neurons whose weight images the page shows
WEIGHTS_EVERY = 1.0  # seconds between weight-image updates (and copies of the parameters for the Draw tab)
PAUSE_POLL = 0.1  # seconds a paused run sleeps between looks at stop requests and watchers


class Parameters(NamedTuple):
    """A copy of the network's w and b taken between mini-batches: the training thread never writes to it again."""

    epoch: int
    batch: int
    weights: list[np.ndarray]
    biases: list[np.ndarray]


class LiveRun(Callback):
    """A run the page started: its state, its recent events, and the controls pause, step, resume and stop."""

    def __init__(self, spec: RunSpec, cache: DataCache, abandon_after: float = 60.0, on_end: Any = None):
        self.spec, self.cache, self.abandon_after, self.on_end = spec, cache, abandon_after, on_end
        self.id = uuid.uuid4().hex[:12]  # event ids name the run, so a resumed stream never mixes two runs
        self.lock = threading.Lock()  # the training thread writes the state; streams read it
        self.seq = 0  # the number of the last event
        self.recent: collections.deque[tuple[int, str, dict[str, Any]]] = collections.deque(maxlen=RECENT_EVENTS)
        self.begin: dict[str, Any] | None = None
        self.points: list[list[float]] = []  # [epoch, mini-batch, cost]
        self.epochs: list[dict[str, Any]] = []
        self.weights: dict[str, Any] | None = None
        self.parameters: Parameters | None = None  # replaced whole, never changed: the Draw tab reads it unlocked
        self.end: dict[str, Any] | None = None
        self.state = "starting"
        self.go = threading.Event()  # set: train; clear: paused
        self.go.set()
        self.pending: tuple[str, int] | None = None  # ("batch", n left) or ("epoch", epochs to complete)
        self.stop_reason: str | None = None
        self.run: TrainingRun | None = None
        self.result: RunResult | None = None
        self.watchers, self.last_watched = 0, time.monotonic()
        self.thread = threading.Thread(target=self.train, name="nndl-web-training", daemon=True)

    def __repr__(self) -> str:
        return f"LiveRun({self.id}, {self.state}, at {self.position()}, {self.seq} events)"

    # -- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def train(self) -> None:
        """The thread's body: run the spec with this callback; the last event says how it ended."""
        error = None
        try:
            self.result = run_spec(self.spec, callbacks=[self], cache=self.cache)
        except NndlError as exc:
            error = str(exc)
        except Exception as exc:  # the page must hear that the run died, whatever killed it
            error = f"training failed: {type(exc).__name__}: {exc}"
        self.training = self.order = None  # the images are the cache's to keep or drop
        self.parameters = None  # an ended run is read through its saved model, not its live weights
        if self.spec.data.expand and self.result is not None:  # 200 MB of shifted images: a new run loads them again
            expanded = self.cache.get(self.spec.data)
            self.cache.loaded = {k: v for k, v in self.cache.loaded.items() if v is not expanded}
        summary = self.result.summary if self.result else {}
        state = "failed" if error else "stopped" if self.stop_reason or summary.get("interrupted") else "finished"
        if self.on_end is not None and state == "finished":
            error = self.on_end(self) or error  # e.g. the page's quick model, saved into the models folder
        self.emit("end", {"state": state, "error": error or summary.get("diverged"), "reason": self.stop_reason,
                          **{k: summary.get(k) for k in ("best", "final", "seconds", "interrupted")}})

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Fold an event into the run's state and number it for the pages watching."""
        data = finite_or_none(data)
        with self.lock:
            if event == "begin":
                self.begin = data
            elif event == "batch":
                self.points.append([data["epoch"], data["batch"], data["cost"]])
                if len(self.points) > MAX_POINTS:
                    self.points = self.points[::2]
            elif event == "epoch":
                self.epochs.append(data)
            elif event == "weights":
                self.weights = data
            elif event == "end":
                self.end = data
            self.state = data["state"] if "state" in data else self.state
            self.seq += 1
            self.recent.append((self.seq, event, data))

    # -- what a page reads ----------------------------------------------------------------

    def position(self) -> dict[str, int]:
        """Where the run stands: the epoch it is in (counted from 0, as ``nndl train`` prints) and mini-batches done."""
        run = self.run
        return {"epoch": run.epoch if run else 0, "batch": run.batch if run else 0}

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """Everything the page draws, in one message, and the number of the last event it includes."""
        with self.lock:
            return self.seq, {"run": self.id, "state": self.state, "reason": self.stop_reason, **self.position(),
                              "begin": self.begin, "points": list(self.points), "epochs": list(self.epochs),
                              "weights": self.weights, "end": self.end}

    def events_after(self, seq: int) -> list[tuple[int, str, dict[str, Any]]] | None:
        """The events numbered after ``seq``, or None when some of them are no longer kept (send a snapshot)."""
        with self.lock:
            if seq >= self.seq:
                return []
            if not self.recent or self.recent[0][0] > seq + 1:
                return None
            return [e for e in self.recent if e[0] > seq]

    def network_now(self) -> tuple[Network, dict[str, int]] | None:
        """The network with the weights last copied in training, and when they were copied; None before training."""
        kept = self.parameters
        if kept is None or self.run is None:
            return None
        on_cpu = dataclasses.replace(self.spec.network, device="cpu")  # the Draw tab's views read host arrays
        network = on_cpu.build(self.run.network.sizes[0], self.run.network.sizes[-1], seed=0)
        network.set_parameters(kept.weights, kept.biases)
        return network, {"epoch": kept.epoch, "batch": kept.batch}

    def status(self) -> dict[str, Any]:
        """Where the run stands, for a page that asks rather than listens."""
        return {"run": self.id, "state": self.state, **self.position(),
                "n_batches": self.run.n_batches if self.run else None, "events": self.seq, "reason": self.stop_reason}

    # -- watchers (open event streams) ----------------------------------------------------

    def watched(self, joining: bool) -> None:
        """A page opened (``joining``) or closed its event stream."""
        self.watchers += 1 if joining else -1
        self.last_watched = time.monotonic()

    def abandoned(self) -> bool:
        return self.watchers <= 0 and time.monotonic() - self.last_watched > self.abandon_after

    # -- controls, called from the server ------------------------------------------------

    def pause(self) -> None:
        self.pending = None
        self.go.clear()

    def resume(self) -> None:
        self.pending = None
        self.go.set()

    def step(self, unit: str) -> None:
        """Train one more mini-batch, or to the end of the current epoch, then pause again."""
        self.pending = ("batch", 1) if unit == "batch" else ("epoch", (self.run.epoch if self.run else 0) + 1)
        self.go.set()

    def stop(self, reason: str = "stopped from the page") -> None:
        self.stop_reason = reason
        if self.run is not None:
            self.run.request_stop()  # ends after the current mini-batch
        self.go.set()

    # -- the callback hooks, called in the training thread --------------------------------

    def on_train_begin(self, run: TrainingRun) -> None:
        self.run = run
        if self.stop_reason:
            run.request_stop()
        self.training = self.cache.get(self.spec.data).training  # the images run_spec trains on (cached)
        self.targets = run.network.xp.eye(run.network.sizes[-1], dtype=run.network.dtype)
        self.cost_every = max(COST_EVERY, run.n_batches // MAX_COST_POINTS)
        self.weights_sent = 0.0
        self.emit("begin", {"state": "running", "spec": self.spec.flat(), "seed": run.seed, "sizes": run.network.sizes,
                            "layers": [layer.kind for layer in run.network.layers],
                            "n_train": len(self.training), "n_batches": run.n_batches, "epochs": run.config.epochs,
                            "cost_every": self.cost_every, "evaluate_on": self.spec.data.evaluate_on})
        self.keep_weights(run)

    def on_epoch_begin(self, run: TrainingRun, epoch: int) -> None:
        self.order = epoch_order(run.seed, epoch, len(self.training))  # the shuffle train() uses this epoch

    def on_batch_end(self, run: TrainingRun, batch: int) -> None:
        if batch % self.cost_every == 0:
            self.emit("batch", {"epoch": run.epoch, "batch": batch + 1, "n_batches": run.n_batches,
                                "cost": self.batch_cost(run.network, batch, run.config.mini_batch_size)})
        if time.monotonic() - self.weights_sent > WEIGHTS_EVERY:
            self.keep_weights(run)
        if self.pending and self.pending[0] == "batch":
            self.pending = ("batch", self.pending[1] - 1)
            if self.pending[1] <= 0:
                self.pause()
        self.wait_while_paused(run)

    def on_epoch_end(self, run: TrainingRun, record: dict[str, Any]) -> None:
        self.emit("epoch", record)
        self.keep_weights(run)
        if self.pending and self.pending[0] == "epoch" and run.epoch >= self.pending[1]:
            self.pause()
        self.wait_while_paused(run)

    def on_train_end(self, run: TrainingRun) -> None:
        self.run = run

    # -- helpers ------------------------------------------------------------------------

    def batch_cost(self, network: Network, batch: int, m: int) -> float:
        """C₀ of mini-batch ``batch`` (without regularisation), measured after its gradient step."""
        chosen = self.order[batch * m : (batch + 1) * m]
        x = network.inputs(self.training.images[chosen])
        zs, activations = network.forward(x, keep=False)
        y = self.targets[:, network.xp.asarray(self.training.labels[chosen])]
        return network.cost.fn(zs[-1], activations[-1], y, network.output_activation) / len(chosen)  # C₀ = (1/m) Σ_x C_x

    def keep_weights(self, run: TrainingRun) -> None:
        """Copy w and b for the Draw tab, and send the first hidden neurons' incoming weights as images.

        Called in the training thread between mini-batches, so the copy never
        meets a half-done update; the Draw tab reads it while training goes on.
        """
        network = run.network
        self.weights_sent = time.monotonic()
        self.parameters = Parameters(run.epoch, run.batch, [to_host(w).copy() for w in network.weights],
                                     [to_host(b).copy() for b in network.biases])  # the page reads host copies
        side = int(round(network.sizes[0] ** 0.5))
        if network.num_layers < 3 or not network.is_dense or side * side != network.sizes[0]:
            return
        weights = self.parameters.weights[0][:WEIGHT_IMAGES]
        self.emit("weights", {"epoch": run.epoch, "batch": run.batch, "side": side,
                              "neurons": rounded(weights, 3)})

    def wait_while_paused(self, run: TrainingRun) -> None:
        """Block while paused, waking every PAUSE_POLL seconds for a stop or an abandoned page."""
        if not self.go.is_set():
            self.keep_weights(run)  # a paused run is read with exactly the weights it stopped at
            self.emit("state", {"state": "paused", "epoch": run.epoch, "batch": run.batch})
            while not self.go.wait(PAUSE_POLL):
                if self.abandoned():
                    self.stop(f"no page watched the run for {self.abandon_after:g} s")
            self.emit("state", {"state": "running", "epoch": run.epoch, "batch": run.batch})
        elif self.abandoned():
            self.stop(f"no page watched the run for {self.abandon_after:g} s")
