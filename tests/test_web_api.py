"""The web page's API (nndl serve), through FastAPI's TestClient, on small generated data.

Every endpoint, its errors (422 naming the field, 404, 409, 413), names that try
to leave the models folder, the live training run's controls and its event
stream, and a schema-driven fuzz (schemathesis) that must never see a 5xx.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from nndl.activations import get_activation  # noqa: E402
from nndl.costs import get_cost  # noqa: E402
from nndl.data.images import preprocess  # noqa: E402
from nndl.data.mnist import load_mnist  # noqa: E402
from nndl.files.models import load_model, save_model  # noqa: E402
from nndl.network import Network  # noqa: E402
from nndl.app.web import server as web_server  # noqa: E402
from nndl.app.web.server import create_app  # noqa: E402

from conftest import write_fake_mnist  # noqa: E402

STEP_TIMEOUT = 30.0  # seconds to wait for a background run to reach a state (a hang fails, it is not timed)


def drawing(points=((140, 40), (140, 240)), blank: bool = False) -> str:
    """A 280×280 white PNG with a black stroke (a '1' by default), base64-encoded as the page sends it."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (280, 280), 255)
    if not blank:
        ImageDraw.Draw(image).line(list(points), fill=0, width=20)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    save_model(Network([784, 20, 10], cost="cross-entropy", seed=0), folder / "digits.npz")
    save_model(Network([16, 8, 10], seed=1), folder / "small.npz")
    (folder / "broken.npz").write_bytes(b"not a zip file")
    return folder


@pytest.fixture
def data_dir(tmp_path):
    """Fake MNIST with 5,000 training images of 4×4 pixels (the last 10,000 are validation images)."""
    return str(write_fake_mnist(tmp_path / "fake", n_train=15_000))


@pytest.fixture
def client(models_dir, data_dir):
    app = create_app(models_dir, data_dir, abandon_after=30.0)
    with TestClient(app) as test_client:
        yield test_client
    live = app.state.server.live
    if live is not None and live.alive:  # never leave a thread training after a test
        live.stop()
        live.thread.join(STEP_TIMEOUT)


def field_named(response, name: str) -> bool:
    """Whether a 422's detail names ``name`` (pydantic's loc, or the message of a ConfigError)."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return name in detail
    return any(name in [str(part) for part in error["loc"]] for error in detail)


def wait_for(client, predicate, what: str) -> dict:
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        status = client.get("/api/train").json()
        if predicate(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"the run never reached {what}: {status}")


def events_until_end(client, last_event_id: str | None = None, with_ids: bool = False) -> list[tuple]:
    """Read the training event stream until the server closes it (after its final 'end' event)."""
    events, name, event_id = [], None, None
    headers = {"last-event-id": last_event_id} if last_event_id else {}
    with client.stream("GET", "/api/train/events", headers=headers) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                events.append((name, data, event_id) if with_ids else (name, data))
    return events


def folded(events: list[tuple[str, dict]]) -> dict:
    """What a page knows after these events: the snapshot it began with, plus every event after it."""
    state = dict(events[0][1])
    assert events[0][0] == "snapshot"
    state["points"], state["epochs"] = list(state["points"]), list(state["epochs"])
    for name, data in events[1:]:
        if name == "batch":
            state["points"].append([data["epoch"], data["batch"], data["cost"]])
        elif name == "epoch":
            state["epochs"].append(data)
        elif name in ("begin", "weights", "end"):
            state[name] = data
    return state


# -- the page ------------------------------------------------------------------------------


def test_page_and_its_files_are_served_from_the_package_with_nothing_from_a_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text
    for name in ("app.js", "draw.js", "train.js", "mistakes.js", "slowdown.js", "models.js", "paint.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200, name
        assert "http://" not in asset.text and "https://" not in asset.text, name
    assert "https://" not in page.text and "http://" not in page.text
    assert "touch-action: none" in client.get("/static/style.css").text


# -- models folder ---------------------------------------------------------------------------


def test_models_are_listed_with_their_shape_and_unusable_files_say_why(client):
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert models["digits.npz"]["network"]["sizes"] == [784, 20, 10]
    assert models["small.npz"]["valid"] is True
    assert models["broken.npz"]["valid"] is False and "broken.npz" in models["broken.npz"]["error"]


@pytest.mark.parametrize("name", ["../digits.npz", "..%2Fdigits.npz", "%2Fetc%2Fpasswd.npz", "digits.pkl",
                                  "a b.npz", ".hidden.npz"])
def test_model_names_cannot_leave_the_models_folder(client, name):
    response = client.get(f"/api/models/{name}/neurons/0")
    assert response.status_code in (404, 422)
    body = client.post("/api/draw", json={"model": name.replace("%2F", "/"), "image": drawing()})
    assert body.status_code in (404, 422)


def test_a_symbolic_link_out_of_the_folder_is_refused(client, models_dir, tmp_path):
    outside = tmp_path / "outside.npz"
    save_model(Network([784, 5, 10], seed=2), outside)
    (models_dir / "link.npz").symlink_to(outside)
    response = client.post("/api/draw", json={"model": "link.npz", "image": drawing()})
    assert response.status_code == 422 and "models folder" in response.json()["detail"]


def test_upload_keeps_valid_models_refuses_damaged_ones_and_never_overwrites(client, models_dir, tmp_path):
    save_model(Network([784, 12, 10], seed=3), tmp_path / "new.npz")
    data = (tmp_path / "new.npz").read_bytes()
    created = client.put("/api/models/new.npz", content=data, headers={"content-type": "application/octet-stream"})
    assert created.status_code == 201 and created.json()["network"]["sizes"] == [784, 12, 10]
    assert load_model(models_dir / "new.npz").sizes == [784, 12, 10]
    assert client.put("/api/models/new.npz", content=data).status_code == 409
    damaged = client.put("/api/models/bad.npz", content=data[: len(data) // 2])
    assert damaged.status_code == 422 and "bad.npz" in damaged.json()["detail"]
    assert not (models_dir / "bad.npz").exists()
    assert sorted(p.name for p in models_dir.iterdir() if p.name.startswith(".")) == []  # no staging file left


def test_upload_of_the_book_json_format_is_parsed_not_evaluated(client, models_dir):
    rng = np.random.default_rng(0)
    book = {"sizes": [784, 3, 10], "cost": "CrossEntropyCost",
            "weights": [rng.normal(size=(3, 784)).tolist(), rng.normal(size=(10, 3)).tolist()],
            "biases": [rng.normal(size=(3, 1)).tolist(), rng.normal(size=(10, 1)).tolist()]}
    assert client.put("/api/models/book.json", content=json.dumps(book).encode()).status_code == 201
    sneaky = {**book, "cost": "__import__('os').system('touch pwned')"}
    assert client.put("/api/models/sneaky.json", content=json.dumps(sneaky).encode()).status_code == 422
    assert not (models_dir / "sneaky.json").exists()


def test_an_upload_claiming_a_huge_network_is_refused_before_it_is_built(client, tmp_path):
    claims = io.BytesIO()
    np.savez(claims, sizes=np.array([100_000, 100_000, 10]), metadata=np.zeros(1, np.uint8))
    response = client.put("/api/models/huge.npz", content=claims.getvalue())
    assert response.status_code == 422 and "parameters" in response.json()["detail"]


def test_bodies_over_the_size_cap_get_413(models_dir, data_dir, monkeypatch):
    monkeypatch.setattr(web_server, "MAX_UPLOAD", 1000)
    client = TestClient(create_app(models_dir, data_dir))
    assert client.put("/api/models/big.npz", content=b"x" * 2000).status_code == 413
    oversized = json.dumps({"model": "digits.npz", "image": "A" * (web_server.MAX_BODY + 10)})
    assert client.post("/api/draw", content=oversized, headers={"content-type": "application/json"}).status_code == 413


# -- draw ------------------------------------------------------------------------------------------


def test_draw_reports_preprocessing_activations_costs_and_backprop_from_the_library(client, models_dir):
    response = client.post("/api/draw", json={"model": "digits.npz", "image": drawing(), "label": 1})
    assert response.status_code == 200
    r = response.json()
    network = load_model(models_dir / "digits.npz")
    png = base64.b64decode(drawing().split(",", 1)[1])
    x = preprocess(png).input_row[:, None].astype(network.dtype)
    zs, activations = network.forward(x)
    np.testing.assert_allclose(r["steps"]["input"], preprocess(png).input, atol=1e-3)
    np.testing.assert_allclose(r["output"], activations[-1].ravel(), rtol=1e-5)
    assert r["guess"] == int(np.argmax(activations[-1]))
    np.testing.assert_allclose(r["hidden"]["z"], zs[0].ravel(), rtol=1e-5, atol=1e-6)
    y = np.eye(10, dtype=network.dtype)[:, [1]]
    assert r["costs"]["cross-entropy"]["cost"] == pytest.approx(
        get_cost("cross-entropy").fn(zs[-1], activations[-1], y, network.output_activation), rel=1e-5)
    softmax = get_activation("softmax", "output")
    log_likelihood = r["costs"]["log-likelihood"]  # a sigmoid network: scored through softmax(z^L), and says so
    assert (log_likelihood["output_activation"], log_likelihood["own_output"]) == ("softmax", False)
    assert log_likelihood["cost"] == pytest.approx(
        get_cost("log-likelihood").fn(zs[-1], softmax.fn(zs[-1]), y, softmax), rel=1e-5)
    nabla_b, nabla_w = network.backprop(x, y)
    np.testing.assert_allclose(r["backprop"]["delta_output"], nabla_b[-1].ravel(), rtol=1e-5)
    np.testing.assert_allclose(r["backprop"]["delta_hidden"], nabla_b[0].ravel(), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(r["backprop"]["grad_w_norms"], [np.linalg.norm(w) for w in nabla_w], rtol=1e-5)


def test_draw_without_centring_leaves_the_digit_at_the_frame_centre(client):
    off_centre = drawing(points=((60, 40), (60, 240), (120, 240)))
    centred = client.post("/api/draw", json={"model": "digits.npz", "image": off_centre}).json()
    plain = client.post("/api/draw", json={"model": "digits.npz", "image": off_centre, "centre": False}).json()
    assert plain["steps"]["shift"] == [0, 0] and plain["steps"]["centred"] is False
    assert centred["steps"]["shift"] != [0, 0]
    assert plain["steps"]["input"] == plain["steps"]["framed"]
    assert centred["label"] == centred["guess"]  # without a label, the costs are for the guess


@pytest.mark.parametrize("body, field", [
    ({"model": "digits.npz", "image": drawing(), "label": 10}, "label"),
    ({"model": "digits.npz", "image": drawing(), "label": 1.0}, "label"),
    ({"model": "digits.npz", "image": drawing(), "centre": 1}, "centre"),
    ({"model": "digits.npz", "image": "not base64!"}, "image"),
    ({"model": "digits.npz", "image": drawing(blank=True)}, "blank"),
    ({"model": "digits.npz", "image": drawing(), "colour": "red"}, "colour"),
    ({"model": "small.npz", "image": drawing()}, "inputs"),
])
def test_draw_rejects_bad_requests_naming_the_problem(client, body, field):
    response = client.post("/api/draw", json=body)
    assert response.status_code == 422
    assert field_named(response, field), response.json()


def test_a_missing_model_is_404_and_a_damaged_one_422(client):
    assert client.post("/api/draw", json={"model": "nope.npz", "image": drawing()}).status_code == 404
    assert client.post("/api/draw", json={"model": "broken.npz", "image": drawing()}).status_code == 422


def test_a_hidden_neuron_weight_image_is_its_row_of_w1(client, models_dir):
    network = load_model(models_dir / "digits.npz")
    r = client.get("/api/models/digits.npz/neurons/7").json()
    np.testing.assert_allclose(np.array(r["weights"]).ravel(), network.weights[0][7], atol=1e-4)
    assert r["bias"] == pytest.approx(float(network.biases[0][7, 0]))
    assert client.get("/api/models/digits.npz/neurons/20").status_code == 422


# -- mistakes ----------------------------------------------------------------------------------------


def test_confusion_matrix_and_a_cell_show_the_right_digits(client, models_dir, data_dir):
    network = load_model(models_dir / "small.npz")
    test = load_mnist(data_dir).test
    guesses = network.predict(test.images)
    r = client.post("/api/mistakes", json={"model": "small.npz"}).json()
    matrix = np.array(r["matrix"])
    assert matrix.sum() == len(test) and r["correct"] == int(np.sum(guesses == test.labels))
    label, guess = np.unravel_index(np.argmax(matrix - np.diag(np.diag(matrix))), matrix.shape)
    cell = client.post("/api/mistakes/cell", json={"model": "small.npz", "label": int(label),
                                                   "guess": int(guess)}).json()
    assert cell["count"] == matrix[label, guess] == len(cell["digits"]) > 0
    for digit in cell["digits"]:
        assert test.labels[digit["index"]] == label and guesses[digit["index"]] == guess
        assert len(digit["pixels"]) == cell["side"] ** 2 == 16
    confidences = [d["confidence"] for d in cell["digits"]]
    assert confidences == sorted(confidences, reverse=True)  # surest mistakes first


def test_mistakes_of_a_model_that_does_not_fit_the_data_is_422(client):
    response = client.post("/api/mistakes", json={"model": "digits.npz", "dataset": "validation"})
    assert response.status_code == 422 and "784 inputs" in response.json()["detail"]


# -- learning slowdown -----------------------------------------------------------------------------------


def test_slowdown_the_saturated_neuron_learns_slowly_with_quadratic_fast_with_cross_entropy(client):
    quadratic = client.post("/api/slowdown", json={"cost": "quadratic", "w": 2.0, "b": 2.0}).json()
    cross = client.post("/api/slowdown", json={"cost": "cross-entropy", "w": 2.0, "b": 2.0}).json()
    assert len(quadratic["output"]) == len(quadratic["costs"]) == 301
    assert quadratic["output"][0] == pytest.approx(1 / (1 + np.exp(-4.0)))  # a = σ(wx + b) = σ(4) ≈ 0.98
    assert quadratic["costs"][0] == pytest.approx(0.5 * quadratic["output"][0] ** 2)  # C = (y − a)²/2
    assert quadratic["output"][50] > 0.95 and cross["output"][50] < 0.1
    easy = client.post("/api/slowdown", json={"cost": "quadratic", "w": 0.6, "b": 0.6}).json()
    assert easy["output"][50] < 0.5  # started unsaturated, the quadratic cost learns fine
    assert client.post("/api/slowdown", json={"cost": "log-likelihood"}).status_code == 422


def test_slowdown_starts_where_the_book_does_and_softmax_sums_to_one(client):
    book = client.post("/api/slowdown", json={"cost": "quadratic"}).json()
    assert book["start"] == {"w": 0.6, "b": 0.9}
    assert book["output"][0] == pytest.approx(1 / (1 + np.exp(-1.5)))  # σ(0.6 + 0.9) ≈ 0.82, the book's first start
    r = client.post("/api/softmax", json={"z": [2.5, -1, 3.2, 0.5]}).json()
    expected = np.exp([2.5, -1, 3.2, 0.5]) / np.exp([2.5, -1, 3.2, 0.5]).sum()
    np.testing.assert_allclose(r["a"], expected, rtol=1e-12)
    assert r["sum"] == pytest.approx(1.0)
    big = client.post("/api/softmax", json={"z": [50.0, -50.0]}).json()  # no overflow at the caps
    assert big["a"][0] == pytest.approx(1.0) and np.isfinite(big["a"][1])
    for bad in ({"z": []}, {"z": [51.0]}, {"z": [0.0] * 11}, {"z": ["1"]}):
        assert client.post("/api/softmax", json=bad).status_code == 422


# -- training ---------------------------------------------------------------------------------------------

SHORT_RUN = {"hidden": [8], "epochs": 2, "train_size": 200, "mini_batch_size": 10, "eta": 1.0, "seed": 1}


def test_a_run_streams_its_state_then_its_events_and_end_then_saves(client, models_dir):
    assert client.get("/api/train").json() == {"state": "idle"}
    assert client.post("/api/train", json=SHORT_RUN).status_code == 202
    events = events_until_end(client)
    names = [name for name, _ in events]
    assert names[0] == "snapshot" and names[-1] == "end" and names.count("snapshot") == 1
    state = folded(events)
    assert state["begin"]["sizes"] == [16, 8, 10] and state["begin"]["n_batches"] == 20
    assert [record["epoch"] for record in state["epochs"]] == [0, 1]  # counted from 0, as nndl train prints
    assert len(state["points"]) == 4  # mini-batches 1 and 11 of each epoch (every 10th)
    assert all(np.isfinite(cost) and cost > 0 for _, _, cost in state["points"])
    epoch = state["epochs"][-1]
    assert {"training", "test"} <= set(epoch["metrics"]) and "cost" in epoch["metrics"]["training"]
    weights = state["weights"]
    assert weights["side"] == 4 and len(weights["neurons"]) == 8  # 16 pixels: 4×4 images
    end = state["end"]
    assert end["state"] == "finished" and end["final"]["epoch"] == 1
    best = state["epochs"][end["best"]["epoch"]]  # "best at epoch k" is the record the chart plots at k
    assert best["epoch"] == end["best"]["epoch"] and best["metrics"]["test"]["accuracy"] == end["best"]["accuracy"]
    again = events_until_end(client)  # a reload after the end: the finished state at once, never "running"
    assert [name for name, _ in again] == ["snapshot", "end"]
    assert again[0][1]["state"] == "finished" and again[0][1]["epochs"] == state["epochs"]
    assert again[0][1]["points"] == state["points"] and again[0][1]["end"] == end
    saved = client.post("/api/train/save", json={"name": "trained.npz"})
    assert saved.status_code == 201 and saved.json()["epochs"] == 2
    assert load_model(models_dir / "trained.npz").metadata["spec"]["training"]["epochs"] == 2
    assert client.post("/api/train/save", json={"name": "trained.npz"}).status_code == 409
    assert client.post("/api/train/save", json={"name": "../x.npz"}).status_code == 422
    assert client.post("/api/train/pause").status_code == 409  # the run has ended


def test_a_stream_resumed_at_or_past_the_end_of_a_finished_run_closes(client):
    assert client.post("/api/train", json=SHORT_RUN).status_code == 202
    last_id = events_until_end(client, with_ids=True)[-1][2]
    run, number = last_id.split(":")
    for resumed in (last_id, f"{run}:{int(number) + 1}", f"{run}:999999999999"):
        assert [name for name, _ in events_until_end(client, resumed)] == ["end"]  # and the stream ended
    for foreign in ("0123456789ab:3", "garbage", f"{run}:-1", f"{run}:1e3"):
        assert [name for name, _ in events_until_end(client, foreign)] == ["snapshot", "end"]


def test_a_page_resuming_mid_run_gets_only_what_it_missed(client):
    assert client.post("/api/train", json={**SHORT_RUN, "epochs": 100, "train_size": 5000}).status_code == 202
    client.post("/api/train/pause")
    paused = wait_for(client, lambda s: s["state"] == "paused", "a pause")
    seen = f"{paused['run']}:{paused['events']}"
    client.post("/api/train/step", json={"unit": "batch"})
    wait_for(client, lambda s: s["state"] == "paused" and s["events"] >= paused["events"] + 2, "one more mini-batch")
    client.post("/api/train/stop")
    events = events_until_end(client, seen)
    assert events[0] == ("state", {"state": "running", "epoch": paused["epoch"], "batch": paused["batch"]})
    assert ("state", {"state": "paused", "epoch": paused["epoch"], "batch": paused["batch"] + 1}) in events
    assert "snapshot" not in [name for name, _ in events] and events[-1][0] == "end"


def test_a_long_run_keeps_a_bounded_state(data_dir):
    from nndl.app.web import live as live_module
    from nndl.runs.runner import DataCache
    from nndl.runs.spec import RunSpec

    spec = RunSpec.from_flat({**SHORT_RUN, "source": data_dir, "workers": 0}, where="test")
    live = live_module.LiveRun(spec, DataCache())
    for i in range(3 * live_module.MAX_POINTS):
        live.emit("batch", {"epoch": i // 500, "batch": i % 500 + 1, "n_batches": 500, "cost": 1.0 / (i + 1)})
        live.emit("weights", {"epoch": 0, "batch": i, "side": 4, "neurons": [[0.0] * 16] * 8})
    seq, snapshot = live.snapshot()
    assert seq == 6 * live_module.MAX_POINTS and len(live.recent) == live_module.RECENT_EVENTS
    assert live_module.MAX_POINTS // 2 <= len(snapshot["points"]) <= live_module.MAX_POINTS
    assert snapshot["points"][0][2] == 1.0 and snapshot["weights"]["batch"] == 3 * live_module.MAX_POINTS - 1
    assert live.events_after(1) is None  # forgotten: the page gets a snapshot instead
    assert [e[0] for e in live.events_after(seq - 2)] == [seq - 1, seq]


def test_the_live_cost_is_that_of_the_mini_batch_just_trained_on(data_dir):
    from nndl.app.web.live import LiveRun
    from nndl.callbacks import Callback
    from nndl.runs.runner import DataCache, run_spec
    from nndl.runs.spec import RunSpec
    from nndl.training import epoch_order

    class BatchCosts(Callback):
        """C₀ of each mini-batch after its step, on the images of that epoch's shuffle (as train() draws it)."""

        def __init__(self):
            self.costs = {}

        def on_batch_end(self, run, batch):
            m = run.config.mini_batch_size
            chosen = epoch_order(run.seed, run.epoch, len(training))[batch * m : (batch + 1) * m]
            self.costs[run.epoch, batch + 1] = run.network.total_cost(training.images[chosen], training.labels[chosen])

    cache = DataCache()
    spec = RunSpec.from_flat({**SHORT_RUN, "epochs": 3, "source": data_dir, "workers": 0}, where="test")
    training = cache.get(spec.data).training
    live, truth = LiveRun(spec, cache, abandon_after=STEP_TIMEOUT), BatchCosts()
    run_spec(spec, callbacks=[live, truth], cache=cache)  # in this thread: the page's run, watched alongside
    points = live.snapshot()[1]["points"]
    assert {epoch for epoch, _, _ in points} == {0, 1, 2}
    for epoch, batch, cost in points:
        assert cost == pytest.approx(truth.costs[epoch, batch], rel=1e-5)


def test_a_second_start_while_training_is_409_and_stop_ends_the_run(client):
    long_run = {**SHORT_RUN, "epochs": 100, "train_size": 5000}
    assert client.post("/api/train", json=long_run).status_code == 202
    second = client.post("/api/train", json=SHORT_RUN)
    assert second.status_code == 409 and "already training" in second.json()["detail"]
    assert client.post("/api/train/save", json={"name": "early.npz"}).status_code == 409
    assert client.post("/api/train/stop").status_code == 200
    end = events_until_end(client)[-1][1]
    assert end["state"] == "stopped" and end["reason"] == "stopped from the page"
    assert client.post("/api/train", json=SHORT_RUN).status_code == 202  # the slot is free again


def test_pause_one_more_batch_one_more_epoch_resume(client):
    assert client.post("/api/train", json={**SHORT_RUN, "epochs": 100, "train_size": 5000}).status_code == 202
    client.post("/api/train/pause")  # a long run, so the pause always lands before its end
    paused = wait_for(client, lambda s: s["state"] == "paused", "a pause")
    client.post("/api/train/step", json={"unit": "batch"})
    after = wait_for(client, lambda s: s["state"] == "paused" and (s["epoch"], s["batch"]) != (paused["epoch"],
                     paused["batch"]), "one more mini-batch")
    assert after["epoch"] * 500 + after["batch"] == paused["epoch"] * 500 + paused["batch"] + 1
    client.post("/api/train/step", json={"unit": "epoch"})
    epoch_end = wait_for(client, lambda s: s["state"] == "paused" and s["epoch"] > after["epoch"], "an epoch's end")
    assert epoch_end["epoch"] == after["epoch"] + 1 and epoch_end["batch"] == 0
    assert client.post("/api/train/resume").status_code == 200
    wait_for(client, lambda s: s["epoch"] > epoch_end["epoch"], "training again after resume")
    client.post("/api/train/stop")
    assert events_until_end(client)[-1][1]["state"] == "stopped"


def test_a_run_nobody_watches_stops_by_itself(models_dir, data_dir):
    app = create_app(models_dir, data_dir, abandon_after=0.2)
    client = TestClient(app)
    client.post("/api/train", json={**SHORT_RUN, "epochs": 100, "train_size": 5000})
    status = wait_for(client, lambda s: s["state"] in ("stopped", "finished"), "an end")
    assert status["state"] == "stopped" and "no page watched" in status["reason"]


@pytest.mark.parametrize("settings, field", [
    ({"epochs": 101}, "epochs"), ({"epochs": 2.0}, "epochs"), ({"epochs": True}, "epochs"),
    ({"hidden": [1001]}, "hidden"), ({"hidden": [10, 10, 10, 10]}, "hidden"), ({"train_size": 50_001}, "train_size"),
    ({"mini_batch_size": 0}, "mini_batch_size"), ({"mini_batch_size": 1001}, "mini_batch_size"),
    ({"eta": "fast"}, "eta"), ({"cost": "hinge"}, "cost"), ({"tea": 1}, "tea"), ({"augment": "elastic"}, "augment"),
    ({"hidden": [], "dropout": 0.5}, "dropout"), ({"cost": "log-likelihood", "output_activation": "sigmoid"}, "cost"),
])
def test_training_settings_are_validated_naming_the_field(client, settings, field):
    response = client.post("/api/train", json={**SHORT_RUN, **settings})
    assert response.status_code == 422 and field_named(response, field), response.json()


def test_nan_and_malformed_json_are_422_not_500(client):
    headers = {"content-type": "application/json"}
    assert client.post("/api/train", content='{"eta": NaN}', headers=headers).status_code == 422
    assert client.post("/api/train", content='{"eta": ', headers=headers).status_code == 422
    assert client.post("/api/slowdown", content="[]", headers=headers).status_code == 422


def test_controls_without_a_run_are_409(client):
    for action in ("pause", "resume", "stop"):
        assert client.post(f"/api/train/{action}").status_code == 409
    assert client.post("/api/train/step", json={"unit": "batch"}).status_code == 409
    assert client.get("/api/train/events").status_code == 409


def test_presets_are_the_book_runs_within_the_caps(client):
    presets = {p["key"]: p for p in client.get("/api/presets").json()["presets"]}
    assert {"chapter1", "overfitting", "l2", "cross-entropy", "softmax", "relu", "dropout", "expanded"} <= set(presets)
    assert presets["chapter1"]["settings"]["eta"] == 3.0 and presets["chapter1"]["settings"]["cost"] == "quadratic"
    assert presets["overfitting"]["settings"]["train_size"] == 1000 and presets["overfitting"]["settings"]["epochs"] == 100
    assert "400" in presets["overfitting"]["note"]
    assert presets["l2"]["settings"]["lmbda"] == 0.1 and presets["dropout"]["settings"]["dropout"] == 0.5
    assert presets["expanded"]["settings"]["expand"] == "shift-one-pixel"


# -- fuzzing over the OpenAPI schema --------------------------------------------------------------------------


def test_no_request_the_schema_allows_or_nearly_allows_gets_a_5xx(models_dir, data_dir):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error

    app = create_app(models_dir, data_dir, abandon_after=0.2)  # runs the fuzzer starts stop on their own
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def no_server_error(case) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    try:
        for operation in schema.get_all_operations():
            given(operation.ok().as_strategy())(no_server_error)()
            try:  # requests that nearly fit: wrong types, values out of range, missing fields
                given(operation.ok().as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))(no_server_error)()
            except Unsatisfiable:  # an operation without parameters or body: nothing to get wrong
                pass
    finally:
        live = app.state.server.live
        if live is not None and live.alive:
            live.stop()
            live.thread.join(STEP_TIMEOUT)


def test_a_convolutional_model_is_listed_drawn_and_judged_without_a_server_error(client, models_dir):
    save_model(Network(layers="conv4x5,pool2,full10", cost="log-likelihood", seed=3), models_dir / "conv.npz")
    save_model(Network(layers="conv2x3,full6", input_shape=(1, 4, 4), seed=3), models_dir / "tiny-conv.npz")
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert "conv.npz" in models and "tiny-conv.npz" in models
    drawn = client.post("/api/draw", json={"model": "conv.npz", "image": drawing(), "label": 1})
    assert drawn.status_code == 200 and len(drawn.json()["output"]) == 10
    network = load_model(models_dir / "conv.npz")
    assert drawn.json()["guess"] == int(np.argmax(drawn.json()["output"]))
    assert len(drawn.json()["backprop"]["grad_w_norms"]) == len(network.weights)
    neuron = client.get("/api/models/conv.npz/neurons/0")
    assert neuron.status_code == 422 and "convolutional" in neuron.json()["detail"]
    judged = client.post("/api/mistakes", json={"model": "tiny-conv.npz"})
    assert judged.status_code == 200 and np.array(judged.json()["matrix"]).shape == (10, 10)


# -- the server's own errors and memory (issue 19, item 7) -------------------------------------------------


def test_concurrent_uploads_to_one_name_keep_exactly_one(models_dir, tmp_path):
    import threading

    from nndl.app.web.model_folder import ModelExists, ModelFolder

    folder, uploads = ModelFolder(models_dir), []
    for i in range(6):
        save_model(Network([784, 5 + i, 10], seed=i), tmp_path / f"{i}.npz")
        uploads.append((tmp_path / f"{i}.npz").read_bytes())
    barrier, outcomes = threading.Barrier(len(uploads)), []

    def upload(data: bytes) -> None:
        barrier.wait()
        try:
            outcomes.append(folder.upload("race.npz", data)["network"]["sizes"])
        except ModelExists:
            outcomes.append("409")

    threads = [threading.Thread(target=upload, args=(data,)) for data in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [o for o in outcomes if o != "409"]
    assert len(accepted) == 1 and outcomes.count("409") == len(uploads) - 1
    assert load_model(models_dir / "race.npz").sizes == accepted[0]  # the file is the one upload that was told 201
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no staging file left behind


def test_odd_entries_in_the_models_folder_are_skipped_not_fatal(client, models_dir, tmp_path):
    (models_dir / "dangling.npz").symlink_to(tmp_path / "nowhere.npz")
    (models_dir / "elsewhere.npz").symlink_to(models_dir / "digits.npz")
    (models_dir / "folder.npz").mkdir()
    os.mkfifo(models_dir / "pipe.npz")
    (models_dir / "notes.txt").write_text("not a model")
    listed = client.get("/api/models")
    assert listed.status_code == 200
    assert sorted(m["name"] for m in listed.json()["models"]) == ["broken.npz", "digits.npz", "small.npz"]


def test_the_model_cache_is_capped_least_recently_used_first(models_dir, monkeypatch):
    from nndl.app.web import model_folder

    monkeypatch.setattr(model_folder, "MAX_CACHED_MODELS", 3)
    for i in range(6):
        save_model(Network([784, 10, 10], seed=i), models_dir / f"m{i}.npz")
    folder = model_folder.ModelFolder(models_dir)
    for i in range(6):
        folder.load(f"m{i}.npz")
        folder.load("m0.npz")  # used again and again: it stays
    assert list(folder.loaded) == ["m4.npz", "m5.npz", "m0.npz"]
    monkeypatch.setattr(model_folder, "MAX_CACHED_BYTES", 1)
    folder.load("m1.npz")
    assert list(folder.loaded) == ["m1.npz"]  # over the byte cap only the model in use is kept


def test_only_the_latest_runs_training_data_stays_in_memory(client):
    server = client.app.state.server
    for size in (100, 200, 300):
        assert client.post("/api/train", json={**SHORT_RUN, "train_size": size}).status_code == 202
        events_until_end(client)
        assert [len(mnist.training) for mnist in server.cache.loaded.values()] == [size]
    assert client.post("/api/train", json={**SHORT_RUN, "train_size": 10**9}).status_code == 422
    assert [len(mnist.training) for mnist in server.cache.loaded.values()] == [300]


def test_a_busy_port_is_one_line_naming_the_port_and_the_option(tmp_path, capsys):
    import socket

    from nndl.app.cli import main

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        assert main(["serve", "--port", str(port), "--models", str(tmp_path)]) == 2
    finally:
        busy.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err and "--port" in err and "Errno" not in err


def test_clients_that_go_away_mid_stream_leave_no_traceback(tmp_path, data_dir):
    """A real nndl serve: pages that close their event stream at any moment, and pages resuming past the end."""
    import re
    import socket
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-m", "nndl", "serve", "--port", "0", "--models", str(tmp_path),
                               "--data", data_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)/", server.stdout.readline()).group(1))

        def request(text: str, read: int) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as connection:
                connection.sendall(text.encode())
                received = b""
                while len(received) < read:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return received  # closed with a reset, as a killed browser tab does

        body = json.dumps({**SHORT_RUN, "epochs": 100, "train_size": 5000})
        started = request(f"POST /api/train HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n{body}", 10)
        assert b" 202 " in started
        for read in (1, 200, 5000, 20000, 60000):
            assert request("GET /api/train/events HTTP/1.1\r\nHost: x\r\n\r\n", read).startswith(b"HTTP/1.1 200")
        stopped = request("POST /api/train/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 10)
        assert b" 200 " in stopped
    finally:
        server.terminate()
        _, err = server.communicate(timeout=STEP_TIMEOUT)
    assert "Traceback" not in err and "Error" not in err, err


def test_a_convolutional_model_shows_its_filters_and_feature_maps_before_and_after_pooling(client, models_dir):
    network = Network(layers="conv3x5,pool2,conv2x3,full10", cost="log-likelihood", seed=4)
    save_model(network, models_dir / "conv3.npz")
    drawn = client.post("/api/draw", json={"model": "conv3.npz", "image": drawing()}).json()
    first, second = drawn["convolution"]
    png = base64.b64decode(drawing().split(",", 1)[1])
    _, activations = network.forward(preprocess(png).input_row[:, None].astype(network.dtype))
    np.testing.assert_allclose(first["filters"], network.layers[0].w[:, 0], atol=1e-3)
    np.testing.assert_allclose(first["maps"], activations[1][..., 0], atol=1e-3)  # w ⋆ a + b: σ comes after pooling
    np.testing.assert_allclose(first["pooled"], activations[2][..., 0], atol=1e-3)
    assert (first["maps_activation"], first["pooled_activation"], first["pool"]) == (None, "sigmoid", 2)
    assert np.array(second["filters"]).shape == (2, 3, 3) and second["input_maps"] == 3 and "pooled" not in second
    np.testing.assert_allclose(second["filters"], network.layers[2].w.sum(axis=1), atol=1e-3)
    assert drawn["hidden"] is None


def test_chapter_6_networks_train_from_the_page(client):
    presets = {p["key"]: p["settings"] for p in client.get("/api/presets").json()["presets"]}
    assert presets["ch6-conv1"]["layers"] == "conv20x5,pool2,full100" and presets["ch6-conv1"]["init"] == "network3"
    assert presets["ch6-relu"]["l2_scale"] == "mini-batches" and presets["ch6-relu"]["activation"] == "relu"
    run = {**SHORT_RUN, "layers": "conv2x3,pool2,full6", "cost": "log-likelihood"}  # 4×4 images: 2×2 maps, then 1×1
    assert client.post("/api/train", json=run).status_code == 202
    state = folded(events_until_end(client))
    assert state["end"]["state"] == "finished" and state["begin"]["layers"] == ["conv", "pool", "full", "full"]
    assert state["weights"] is None  # no 28×28 weight images for a convolutional first layer
    for bad in ("conv100x5", "conv20x5,pool2,full1000", "conv20x5;rm", "full1,full1,full1,full1,full1,full1,full1"):
        response = client.post("/api/train", json={**SHORT_RUN, "layers": bad})
        assert response.status_code == 422 and field_named(response, "layers"), bad


def test_a_run_started_with_save_as_is_saved_when_it_finishes_and_only_then(client, models_dir):
    assert client.post("/api/train", json={**SHORT_RUN, "save_as": "quick.npz"}).status_code == 202
    end = events_until_end(client)[-1][1]
    assert end["state"] == "finished" and end["error"] is None
    saved = load_model(models_dir / "quick.npz")
    assert saved.sizes == [16, 8, 10] and saved.metadata["best"] == end["best"]
    taken = client.post("/api/train", json={**SHORT_RUN, "save_as": "quick.npz"})
    assert taken.status_code == 409 and "quick.npz" in taken.json()["detail"]  # refused before training
    assert client.post("/api/train", json={**SHORT_RUN, "epochs": 100, "train_size": 5000,
                                           "save_as": "stopped.npz"}).status_code == 202
    client.post("/api/train/stop")
    assert events_until_end(client)[-1][1]["state"] == "stopped"
    assert not (models_dir / "stopped.npz").exists()  # half-trained: not saved as if it were done


def test_the_network_diagram_has_each_layers_activations_and_its_largest_weights(client, models_dir):
    from nndl.app.web import digits

    network = Network([784, 50, 20, 10], seed=5)
    save_model(network, models_dir / "deep.npz")
    d = client.post("/api/draw", json={"model": "deep.npz", "image": drawing()}).json()["diagram"]
    png = base64.b64decode(drawing().split(",", 1)[1])
    _, activations = network.forward(preprocess(png).input_row[:, None].astype(network.dtype))
    assert [layer["size"] for layer in d["layers"]] == [50, 20, 10] and d["inputs"] == 784
    np.testing.assert_allclose(d["layers"][0]["a"], activations[1][: digits.DIAGRAM_NEURONS, 0], rtol=1e-5)
    np.testing.assert_allclose(d["layers"][2]["a"], activations[3][:, 0], rtol=1e-5)
    shown = network.weights[1][:, : digits.DIAGRAM_NEURONS]  # 20 × 40 shown of 20 × 50
    assert len(d["edges"][0]) == digits.DIAGRAM_EDGES and len(d["edges"][1]) == digits.DIAGRAM_EDGES
    smallest_drawn = min(abs(w) for _, _, w in d["edges"][0])
    assert np.sum(np.abs(shown) > smallest_drawn + 1e-4) < digits.DIAGRAM_EDGES  # none larger left out
    for k, j, w in d["edges"][0]:
        assert w == pytest.approx(shown[j, k], abs=1e-4)


def test_the_live_run_reads_a_digit_with_its_current_weights_and_without_a_run_is_409(client):
    from nndl.app.web.digits import dataset_steps, read_digit

    digit = {"digit": {"dataset": "test", "index": 3}}
    nothing = client.post("/api/train/draw", json=digit)
    assert nothing.status_code == 409 and "start one first" in nothing.json()["detail"]
    assert client.get("/api/train/neurons/0").status_code == 409
    assert client.post("/api/train", json={**SHORT_RUN, "epochs": 100, "train_size": 5000}).status_code == 202
    live = client.app.state.server.live

    def read_paused() -> dict:
        """The live analysis of a paused run, beside the same digit read through the training network itself."""
        wait_for(client, lambda s: s["state"] == "paused", "a pause")
        answer = client.post("/api/train/draw", json=digit)
        assert answer.status_code == 200, answer.json()
        truth = read_digit(live.run.network, dataset_steps(client.app.state.server.digit_image("test", 3)))
        assert answer.json()["output"] == pytest.approx(truth["output"], abs=1e-6)  # the weights it stopped at
        return answer.json()

    client.post("/api/train/pause")
    first = read_paused()
    client.post("/api/train/step", json={"unit": "epoch"})
    second = read_paused()
    assert (second["weights_at"]["epoch"], second["weights_at"]["batch"]) == (first["weights_at"]["epoch"] + 1, 0)
    assert max(abs(a - b) for a, b in zip(first["output"], second["output"])) > 1e-4  # an epoch later, new outputs
    neuron = client.get("/api/train/neurons/2").json()
    assert neuron["weights"] == pytest.approx(live.run.network.weights[0][2].reshape(4, 4), abs=1e-4)
    client.post("/api/train/resume")
    wait_for(client, lambda s: s["epoch"] > second["weights_at"]["epoch"], "training again")
    assert client.post("/api/train/draw", json=digit).status_code == 200  # read while training goes on
    assert client.post("/api/train/draw", json={**digit, "model": "digits.npz"}).status_code == 422  # no model here
    client.post("/api/train/stop")
    events_until_end(client)
    ended = client.post("/api/train/draw", json=digit)
    assert ended.status_code == 409 and "has ended" in ended.json()["detail"]
