"""``nndl serve``: a local web page that shows inside the network (FastAPI, served by uvicorn).

The page (``static/``: plain HTML, JS modules and CSS, nothing from a CDN) has
tabs: Draw, Train, Mistakes, Learning slowdown, Universality, Unstable gradients and Models. Every number it
shows is computed here with the library's own maths. The API:

    GET  /api/models                      the models folder
    PUT  /api/models/{name}               upload a model file (checked like ``nndl evaluate``)
    GET  /api/models/{name}/neurons/{j}   hidden neuron j's weight image
    POST /api/draw                        preprocess a drawing, feed it forward, costs and BP1-BP4
    POST /api/mistakes, /api/mistakes/cell   confusion matrix, and one cell's digits
    POST /api/slowdown                    one sigmoid neuron learning (chapter 3's first figures)
    POST /api/softmax                     a softmax layer's outputs for its weighted inputs (chapter 3)
    POST /api/unstable                    each hidden layer's speed of learning per epoch (chapter 5)
    GET  /api/digits/{test,validation}    an MNIST digit (?index=N, else a random one) for the Draw tab
    GET  /api/presets                     the book's runs
    POST /api/train                       start a run (one at a time: 409 while one trains)
    GET  /api/train, /api/train/events    its state; the state in one message, then each new event (SSE)
    POST /api/train/{pause,resume,step,stop,save}
    POST /api/train/draw                  as /api/draw, with the live run's current weights
    GET  /api/train/neurons/{j}           as /api/models/{name}/neurons/{j}, with the live run's current weights

Every body is size-capped (413) and validated strictly (422 naming the field);
model names are plain file names inside the models folder. Memory is bounded:
one training dataset at a time, a capped model cache, a capped cache of verdicts,
a run's state thinned as it grows. A client that goes away is not an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
import threading
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Literal

from fastapi import Depends, FastAPI, Header, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.sse import format_sse_event
from fastapi.staticfiles import StaticFiles
import numpy as np

from ...data.mnist import MNIST, load_mnist
from ...errors import ConfigError, NndlError
from ...network import Network
from ...pixels import as_bytes, unit_interval
from ...runs.runner import DataCache
from ...runs.spec import RunSpec
from ..inspect import image_side
from ..reporting import finite_or_none
from .digits import analyse_digit, dataset_steps, read_digit, weight_image
from .live import LiveRun
from .mistakes import Verdicts, cell, confusion, judge
from .model_folder import ModelExists, ModelFolder, ModelMissing
from .presets import presets
from .schemas import (MODEL_NAME_PATTERN, AnalyseRequest, CellRequest, DigitRequest, MistakesRequest, SaveRequest,
                      SlowdownRequest, SoftmaxRequest, StepRequest, TrainSettings)
from .slowdown import softmax_outputs, train_one_neuron
from .unstable import SpeedRequest, speed_run

STATIC = Path(__file__).parent / "static"
MAX_BODY = 3_000_000  # bytes in any request: a drawing is a few kB
MAX_UPLOAD = 64_000_000  # bytes in an uploaded model: [784, 1000, 1000, 1000, 10] in float64 is 23 MB
EVENT_POLL = 0.1  # seconds between looks for new training events
KEEP_ALIVE = 10.0  # seconds between comments on an idle stream, so proxies and browsers keep it open
RECONNECT_MS = 1000  # how soon a browser's EventSource tries again after a dropped connection
MAX_VERDICTS = 8  # models × datasets whose guesses are remembered for the Mistakes tab

ModelNameParam = Annotated[str, PathParam(min_length=5, max_length=100, pattern=MODEL_NAME_PATTERN)]


class Conflict(ConfigError):
    """The request does not fit the training slot's state (a run already training, none to control)."""


class Server:
    """What the endpoints share: the models folder, the data, the one training slot."""

    def __init__(self, models: Path, data: str | None, abandon_after: float, device: str = "cpu"):
        self.models, self.data, self.abandon_after, self.device = ModelFolder(models), data, abandon_after, device
        self.cache = DataCache()
        self.mnist: MNIST | None = None
        self.verdicts: collections.OrderedDict[tuple[str, int, str], Verdicts] = collections.OrderedDict()
        self.live: LiveRun | None = None
        self.lock = threading.Lock()

    def dataset(self, name: str):
        """The validation or test images (loaded once)."""
        if self.mnist is None:
            self.mnist = load_mnist(self.data)
        return self.mnist.split(name)

    def judged(self, model: str, dataset: str) -> Verdicts:
        """The model's guesses on a dataset, remembered while the model file is unchanged."""
        network = self.models.load(model)
        key = (model, id(network), dataset)
        if key not in self.verdicts:
            for old in [k for k in self.verdicts if k[0] == model]:
                del self.verdicts[old]
            self.verdicts[key] = judge(network, self.dataset(dataset))
            while len(self.verdicts) > MAX_VERDICTS:
                self.verdicts.popitem(last=False)
        self.verdicts.move_to_end(key)
        return self.verdicts[key]

    def start(self, settings: TrainSettings) -> LiveRun:
        """Start a run from the page's settings, unless one is training."""
        flat = {**settings.spec_fields(), "source": self.data, "workers": 0, "device": self.device}
        spec = RunSpec.from_flat(flat, where="training settings")
        with self.lock:
            if self.live is not None and self.live.alive:
                raise Conflict("a run is already training on this server: stop it (or wait for it to finish) "
                               "before starting another")
            if settings.save_as:
                self.models.new_path(settings.save_as)  # a name already taken answers 409 before training
            keep_only(self.cache, spec)  # one training set in memory: the previous run's goes
            on_end = (lambda live: self.save_result(live, settings.save_as)) if settings.save_as else None
            self.live = LiveRun(spec, self.cache, self.abandon_after, on_end=on_end)
            self.live.start()
        return self.live

    def save_result(self, live: LiveRun, name: str) -> str | None:
        """Save a run's network, with its record, as model ``name``; or say why it could not be saved."""
        if live.result is None:
            return "the run ended without a network to save"
        network, summary = live.result.network, live.result.summary
        network.metadata = {key: summary[key] for key in ("spec", "history", "best", "final")}
        try:
            self.models.save(network, name)
        except NndlError as exc:
            return str(exc)
        return None

    def read(self, network: Network, request: DigitRequest) -> dict[str, Any]:
        """The Draw tab's analysis of a drawing, or of an MNIST digit exactly as the dataset holds it."""
        if request.digit is not None:
            steps = dataset_steps(self.digit_image(request.digit.dataset, request.digit.index))
            return read_digit(network, steps, request.label)
        return analyse_digit(network, decode_png(request.image), request.centre, request.label)

    def live_network(self) -> tuple[Network, dict[str, int]]:
        """The live run's network with its current weights (copied between mini-batches), and when they were copied."""
        now = self.running().network_now()
        if now is None:
            raise Conflict("the run has no weights to read just now (it is loading its data, or has just ended): "
                           "try again in a moment")
        return now

    def digit(self, dataset: str, index: int | None) -> dict[str, Any]:
        """Image ``index`` (random if None) of the test or validation set, as 0-255 pixels, with its label."""
        images = self.dataset(dataset)
        if index is None:
            index = int(np.random.default_rng().integers(len(images)))
        self.check_index(dataset, index)
        side = image_side(images.n_features)
        return {"dataset": dataset, "index": index, "label": int(images.labels[index]), "side": side,
                "pixels": as_bytes(images.images[index : index + 1])[0].tolist()}

    def digit_image(self, dataset: str, index: int) -> np.ndarray:
        """Image ``index`` of a dataset as a square of ink in [0, 1], as the network reads it."""
        images = self.dataset(dataset)
        self.check_index(dataset, index)
        side = image_side(images.n_features)
        return unit_interval(images.images[index : index + 1], np.float32)[0].reshape(side, side)

    def check_index(self, dataset: str, index: int) -> None:
        if not 0 <= index < len(self.dataset(dataset)):
            raise ConfigError(f"index {index}: the {dataset} set has images 0-{len(self.dataset(dataset)) - 1}")

    def current(self) -> LiveRun:
        if self.live is None:
            raise Conflict("no training run: start one first")
        return self.live

    def running(self) -> LiveRun:
        live = self.current()
        if not live.alive:
            raise Conflict(f"the run has ended ({live.state}); start a new one")
        return live


def keep_only(cache: DataCache, spec: RunSpec) -> None:
    """Drop every dataset from ``cache`` but the one ``spec`` trains on (each may be 50-200 MB)."""
    cache.get(spec.data)  # loaded first: a refused data section leaves the old data in place
    key = next(key for key, value in cache.loaded.items() if value is cache.get(spec.data))
    cache.loaded = {key: cache.loaded[key]}


def sse(event: str | None = None, data: Any = None, id: str | None = None, **fields: Any) -> bytes:
    """One server-sent event, its data as JSON (the run's state is plain lists, dicts and numbers already)."""
    return format_sse_event(data_str=None if data is None else json.dumps(data, default=plain),
                            event=event, id=id, **fields)


def plain(value: Any) -> Any:
    """A NumPy number or array as the Python value JSON can hold."""
    if isinstance(value, (np.generic, np.ndarray)):
        return finite_or_none(value.tolist())
    raise TypeError(f"{type(value).__name__} is not JSON")


def resume_point(live: LiveRun, last_event_id: str | None) -> int | None:
    """The event number a reconnecting page last saw of this run (from Last-Event-ID 'run:number'), else None."""
    run, _, number = (last_event_id or "").partition(":")
    if run != live.id or not (number.isascii() and number.isdigit()) or len(number) > 12:
        return None
    if int(number) > live.seq and live.end is None:  # beyond what this run has said: start afresh
        return None
    return int(number)


async def run_events(live: LiveRun, last_event_id: str | None) -> AsyncIterator[bytes]:
    """The run's state in one 'snapshot' event (or the events a resuming page missed), then each new event.

    The stream ends after the run's 'end' event: at once for a run that has
    ended, also for a page resuming at or past its end; and when the client
    goes away (Starlette cancels the stream then).
    """
    seq = resume_point(live, last_event_id)
    yield sse(retry=RECONNECT_MS, comment="nndl training events")
    quiet = 0.0
    while True:
        events = None if seq is None else live.events_after(seq)
        if events is None:  # a new page, or one that missed more than the server keeps
            seq, snapshot = live.snapshot()
            yield sse("snapshot", snapshot, f"{live.id}:{seq}")
            if snapshot["end"] is not None:
                yield sse("end", snapshot["end"], f"{live.id}:{seq}")
                return
            continue
        if events:  # one write for all that happened since the last look
            yield b"".join(sse(event, data, f"{live.id}:{n}") for n, event, data in events)
            seq = events[-1][0]
        if live.end is not None and seq >= live.seq:  # the run has ended and this page has heard all of it
            if not events:
                yield sse("end", live.end, f"{live.id}:{seq}")
            return
        quiet = 0.0 if events else quiet + EVENT_POLL
        if quiet >= KEEP_ALIVE:
            quiet = 0.0
            yield sse(comment="still training")
        await asyncio.sleep(EVENT_POLL)


def decode_png(text: str) -> bytes:
    """The bytes of a base64 image, with or without a ``data:image/png;base64,`` prefix."""
    try:
        return base64.b64decode(text.split(",", 1)[1] if text.startswith("data:") else text, validate=True)
    except (binascii.Error, ValueError, IndexError):
        raise ConfigError("image: not base64 data; send the canvas as a base64 PNG") from None


def error_status(exc: NndlError) -> int:
    """404 for a missing model, 409 for a conflict with what exists or runs, else 422."""
    if isinstance(exc, ModelMissing):
        return 404
    if isinstance(exc, (ModelExists, Conflict)):
        return 409
    return 422


def create_app(models: str | Path = "models", data: str | None = None, abandon_after: float = 60.0,
               device: str = "cpu") -> FastAPI:
    """The web application: the page, its static files and its API; the page's training runs on ``device``."""
    app = FastAPI(title="nndl: see inside the network", version="1", max_body_size=MAX_BODY)
    server = app.state.server = Server(Path(models), data, abandon_after, device)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": finite_or_none(jsonable_encoder(exc.errors()))}, status_code=422)  # NaN input

    @app.exception_handler(NndlError)
    async def nndl_error(request: Request, exc: NndlError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=error_status(exc))

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- models --------------------------------------------------------------------------

    @app.get("/api/models")
    def list_models() -> dict[str, Any]:
        return {"folder": str(server.models.folder),
                "models": [server.models.describe(name) for name in server.models.names()]}

    @app.put("/api/models/{name}", status_code=201, max_body_size=MAX_UPLOAD,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload_model(name: ModelNameParam, request: Request) -> dict[str, Any]:
        body = await request.body()
        return await run_in_threadpool(server.models.upload, name, body)

    @app.get("/api/models/{name}/neurons/{neuron}")
    def neuron_weights(name: ModelNameParam, neuron: Annotated[int, PathParam(ge=0, le=100_000)]) -> dict[str, Any]:
        return weight_image(server.models.load(name), neuron)

    # -- draw, mistakes, slowdown -----------------------------------------------------------

    @app.post("/api/draw")
    def draw(request: AnalyseRequest) -> dict[str, Any]:
        return server.read(server.models.load(request.model), request)

    @app.post("/api/mistakes")
    def mistakes(request: MistakesRequest) -> dict[str, Any]:
        network = server.models.load(request.model)
        return confusion(server.judged(request.model, request.dataset), network.sizes[-1])

    @app.post("/api/mistakes/cell")
    def mistakes_cell(request: CellRequest) -> dict[str, Any]:
        return cell(server.judged(request.model, request.dataset), request.label, request.guess, request.limit)

    @app.get("/api/digits/{dataset}")
    def mnist_digit(dataset: Literal["test", "validation"],
                    index: Annotated[int | None, Query(ge=0, le=1_000_000)] = None) -> dict[str, Any]:
        """One MNIST digit (random without ``index``) for the Draw tab."""
        return server.digit(dataset, index)

    @app.post("/api/slowdown")
    def slowdown(request: SlowdownRequest) -> dict[str, Any]:
        return finite_or_none(train_one_neuron(request.cost, request.w, request.b, request.eta, request.epochs))

    @app.post("/api/softmax")
    def softmax(request: SoftmaxRequest) -> dict[str, Any]:
        return softmax_outputs(request.z)

    @app.post("/api/unstable")
    def unstable(request: SpeedRequest) -> dict[str, Any]:
        return finite_or_none(speed_run(request, server.cache, server.data))

    # -- training ----------------------------------------------------------------------------

    @app.get("/api/presets")
    def list_presets() -> dict[str, Any]:
        return {"presets": presets()}

    @app.post("/api/train", status_code=202)
    def start_training(settings: TrainSettings) -> dict[str, Any]:
        return server.start(settings).status()

    @app.get("/api/train")
    def training_status() -> dict[str, Any]:
        return server.live.status() if server.live else {"state": "idle"}

    @app.post("/api/train/pause")
    def pause_training() -> dict[str, Any]:
        live = server.running()
        live.pause()
        return live.status()

    @app.post("/api/train/resume")
    def resume_training() -> dict[str, Any]:
        live = server.running()
        live.resume()
        return live.status()

    @app.post("/api/train/step")
    def step_training(request: StepRequest) -> dict[str, Any]:
        live = server.running()
        live.step(request.unit)
        return live.status()

    @app.post("/api/train/stop")
    def stop_training() -> dict[str, Any]:
        live = server.running()
        live.stop()
        return live.status()

    @app.post("/api/train/save", status_code=201)
    def save_trained(request: SaveRequest) -> dict[str, Any]:
        live = server.current()
        if live.alive or live.result is None:
            raise Conflict("no finished run to save: wait for the run to end (or stop it) first")
        server.models.new_path(request.name)  # 409 for a name taken
        problem = server.save_result(live, request.name)
        if problem:
            raise ConfigError(problem)
        return server.models.describe(request.name)

    @app.post("/api/train/draw")
    def draw_live(request: DigitRequest) -> dict[str, Any]:
        """The Draw tab's analysis through the live (or paused) run's weights, saying when they were copied."""
        network, copied = server.live_network()
        return {**server.read(network, request), "weights_at": copied}

    @app.get("/api/train/neurons/{neuron}")
    def live_neuron_weights(neuron: Annotated[int, PathParam(ge=0, le=100_000)]) -> dict[str, Any]:
        return weight_image(server.live_network()[0], neuron)

    @app.get("/api/train/events", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}})
    async def training_events(last_event_id: Annotated[str | None, Header(max_length=100)] = None,
                              live: LiveRun = Depends(server.current)) -> StreamingResponse:
        """The run's state as one 'snapshot' event, then its events as they happen; a final 'end' closes the stream."""
        async def watched() -> AsyncIterator[bytes]:
            live.watched(joining=True)
            try:
                async for chunk in run_events(live, last_event_id):
                    yield chunk
            finally:
                live.watched(joining=False)

        return StreamingResponse(watched(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app
