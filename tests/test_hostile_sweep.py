"""`nndl sweep` fed hostile files: each case is one line naming the problem, exit code 2, little memory, nothing
written; and the sweep reader, fed generated JSON and TOML, gives a sweep or a ConfigError and nothing else.

The named cases run the real command line in a child process (its peak memory comes from the kernel); the
generated ones call the reader in this process, under the tracemalloc bound of test_hostile_readers.py.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import REPO
from hostile import JSON_VALUES, verdict
from nndl.runs.sweep import DISTRIBUTIONS, SWEEP_KEYS, Sweep

MB = 2**20
VALID = {"name": "t", "base": {"hidden": [6], "epochs": 1}, "grid": {"eta": [0.5, 1.0]}}


# The child's own peak, read at exit from /proc/self/status. Not wait4's ru_maxrss: a child started by
# vfork and exec inherits its parent's high-water mark, so it would report this pytest process's size.
PEAK_AT_EXIT = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["NNDL_TEST_PEAK"], "w") as out:
        out.write(peak)
atexit.register(report)
sys.argv = ["nndl", *sys.argv[1:]]
runpy.run_module("nndl", run_name="__main__")
"""


def nndl_sweep(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str,
                                                                                                          float]:
    """Run `nndl sweep ARGS` in a child: its exit code, stdout, stderr and peak resident memory in MB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OPENBLAS_NUM_THREADS": "1",
                       "NNDL_TEST_PEAK": peak.name, **(env or {})}
        child = subprocess.Popen([sys.executable, "-c", PEAK_AT_EXIT, "sweep", *args], cwd=cwd, env=environment,
                                 stdout=out, stderr=err)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            pytest.fail(f"nndl sweep {' '.join(args)} still ran after {timeout:g} s")
        out.seek(0), err.seek(0)
        return child.returncode, out.read().decode(), err.read().decode(), int(peak.read() or 0) / 1024


def everything_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def refused(folder: Path, spec: str, *options: str, env: dict[str, str] | None = None) -> str:
    """Run `nndl sweep SPEC OPTIONS` in ``folder``/work and check the refusal; returns the message."""
    work = folder / "work"
    work.mkdir(exist_ok=True)
    before = everything_under(folder)
    code, out, err, peak = nndl_sweep(spec, *options, cwd=work, env=env)
    assert code == 2, err
    assert err.startswith("nndl sweep: error: ") and err.count("\n") == 1, err
    assert out == "", out  # nothing started: no stage, no Dask, no trial
    assert peak < 200, f"{peak:.0f} MB"
    assert everything_under(folder) == before  # nothing written, here or in the folders a name could reach
    return err


def spec_file(folder: Path, text: str, suffix: str = ".json") -> str:
    path = folder / f"spec{suffix}"
    path.write_text(text)
    return str(path)


# -- the cases of issue 16, each named --------------------------------------------------------

@pytest.mark.parametrize("text, suffix, words", [
    ('{"random": {"trials": 2, "space": {"eta": {"uniform": [-1e308, 1e308]}}}}', ".json", "finite numbers within"),
    ('{"random": {"trials": 2, "space": {"eta": {"uniform": [NaN, 1]}}}}', ".json", "uniform [nan, 1]"),
    ('{"random": {"trials": 2, "space": {"epochs": {"int_uniform": [0, 1e30]}}}}', ".json", "whole numbers"),
    ('{"grid": {"eta": [0.5]}, "measure": 5}', ".json", "measure 5: give a dataset and a measure"),
    ('note = 1979-05-27T07:32:00Z\n[grid]\neta = [0.5]\n', ".toml", "note: a datetime is not a JSON value"),
    ("[grid]\neta = " + "[" * 5000 + "]" * 5000 + "\n", ".toml", "not a TOML sweep (nested too deeply)"),
])
def test_a_hostile_value_is_one_line_naming_it(tmp_path, text, suffix, words):
    assert words in refused(tmp_path, spec_file(tmp_path, text, suffix))


@pytest.mark.parametrize("seeds", [100_000, 100_000_000])
def test_seeds_multiply_the_trial_cap_and_are_counted_before_anything_is_built(tmp_path, seeds):
    started = time.monotonic()
    message = refused(tmp_path, spec_file(tmp_path, json.dumps({**VALID, "seeds": seeds})))
    assert f"{2 * seeds:,} trials (2 settings × {seeds:,} seeds); a sweep runs at most 10,000" in message
    assert time.monotonic() - started < 20  # it ran for minutes, or grew to 2.5 GB


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/nndl-absolute-sweep"])
def test_a_name_that_is_not_a_plain_name_is_refused_before_it_names_a_folder(tmp_path, name):
    message = refused(tmp_path, spec_file(tmp_path, json.dumps({**VALID, "name": name})))
    assert "give a plain name" in message
    assert not (tmp_path / "work" / "sweeps" / name).exists()


def test_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "spec.toml")  # opening it to read would wait for a writer forever
    assert "is a device, FIFO or socket" in refused(tmp_path, str(tmp_path / "spec.toml"))


def test_a_link_to_a_device_is_refused_without_reading_it(tmp_path):
    (tmp_path / "spec.toml").symlink_to("/dev/zero")  # read to its end, it never ends
    assert "is a device, FIFO or socket" in refused(tmp_path, str(tmp_path / "spec.toml"))


def test_a_file_over_the_size_cap_is_refused_without_reading_it(tmp_path):
    spec = spec_file(tmp_path, '{"note": "' + "x" * (2 * MB) + '"}')
    assert "larger than 1,048,576 bytes" in refused(tmp_path, spec)


def test_out_is_checked_before_anything_trains(tmp_path):
    (tmp_path / "a-file").write_text("")
    spec = spec_file(tmp_path, json.dumps(VALID))
    message = refused(tmp_path, spec, "--out", str(tmp_path / "a-file" / "out"), "--data", str(tmp_path))
    assert f"--out {tmp_path / 'a-file' / 'out'}: {tmp_path / 'a-file'} is a file, not a folder" in message


def test_a_worker_that_dies_while_the_cluster_starts_is_one_line(tmp_path):
    (tmp_path / "die.py").write_text("import os\nos._exit(1)\n")  # every worker process dies as it starts
    spec = spec_file(tmp_path, json.dumps(VALID))
    work = tmp_path / "work"
    work.mkdir()
    code, out, err, _ = nndl_sweep(spec, "--workers", "1", "--quiet", "--data", str(tmp_path), cwd=work,
                                   env={"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(tmp_path / "die.py")])})
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("nndl sweep: error: the local Dask cluster did not start (Nanny failed to start"), err


# -- generated sweeps -------------------------------------------------------------------------

#: Values no sweep should hold: any JSON, numbers at and past every bound, and TOML's dates and times.
HOSTILE = (JSON_VALUES | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, -1, 1e308, -1e308, 1e30, 10**30, 2**53 + 1, 2**70, 10_001, 10**8, "", "x" * 65])
           | st.deferred(lambda: st.datetimes() | st.dates() | st.times()))  # deferred: one branch, not three
#: A plausible value for each setting a generated sweep searches (the rest of nndl's settings stay at defaults).
PLAUSIBLE = {"eta": st.floats(0.01, 10), "lmbda": st.floats(0, 10), "mini_batch_size": st.integers(1, 50),
             "hidden": st.lists(st.integers(1, 8), min_size=1, max_size=2), "epochs": st.integers(1, 3),
             "cost": st.sampled_from(["quadratic", "cross-entropy"]), "train_size": st.integers(1, 1000)}
NUMERIC = ["eta", "lmbda", "mini_batch_size", "epochs", "train_size"]
ODD_SETTINGS = ["etta", "seed", "monitor", "evaluate_on", "training.eta", "data.evaluate_on", "x" * 70, "a\nb"]


def mostly(plausible: st.SearchStrategy) -> st.SearchStrategy:
    """``plausible`` five times in six, else a hostile value, so that most sweeps pass the first checks."""
    return st.integers(0, 5).flatmap(lambda i: plausible if i else HOSTILE)


@st.composite
def searches(draw) -> dict:
    """A grid and/or random draws over one or two settings, each value or bound plausible or hostile."""
    names = draw(st.lists(st.sampled_from(sorted(PLAUSIBLE)) | st.sampled_from(ODD_SETTINGS), min_size=1, max_size=2,
                          unique=True))
    search: dict = {}
    for name in names:
        values = PLAUSIBLE.get(name, HOSTILE)
        if name in NUMERIC and draw(st.booleans()):
            kind = draw(st.sampled_from(DISTRIBUTIONS + ("normal",)))
            bounds = st.lists(values, min_size=2, max_size=2).map(sorted) if kind != "choice" else \
                st.lists(mostly(values), min_size=1, max_size=3)
            law = {kind: draw(mostly(bounds) if kind != "normal" else HOSTILE)}
            search.setdefault("random", {"trials": draw(mostly(st.integers(1, 4))), "seed": draw(st.integers(0, 9)),
                                         "space": {}})["space"][name] = draw(mostly(st.just(law)))
        else:
            search.setdefault("grid", {})[name] = draw(mostly(st.lists(mostly(values), min_size=1, max_size=3)))
    return search


@st.composite
def sweeps(draw) -> dict:
    """A sweep of one or more stages, each part plausible or hostile, sometimes with a key too many."""
    stages = [{**draw(searches()), **draw(st.fixed_dictionaries({}, optional={
        "name": mostly(st.sampled_from(["a", "b-2", "c_3"])),
        "choose": mostly(st.sampled_from(["best", "eta-threshold"]))}))} for _ in range(draw(st.integers(1, 3)))]
    values = {"stages": stages} if len(stages) > 1 else stages[0]
    values.update(draw(st.fixed_dictionaries({}, optional={
        "name": mostly(st.sampled_from(["t", "ok-name_2"])), "note": mostly(st.text(max_size=20)),
        "base": mostly(st.fixed_dictionaries({"epochs": mostly(st.integers(1, 3))},
                                             optional={"monitor": mostly(st.just(["training-cost"]))})),
        "seeds": mostly(st.integers(1, 3) | st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True)),
        "measure": mostly(st.sampled_from(["validation accuracy", "validation cost", "training correct",
                                           "test accuracy", "validation speed", "validation"])),
        "top": mostly(st.integers(1, 5)), "extra": HOSTILE})))
    return values


SWEEPS = mostly(sweeps()) | st.dictionaries(st.sampled_from(SWEEP_KEYS) | st.integers(), HOSTILE, max_size=3)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def nested(depth: int) -> dict:
    """A valid-looking sweep whose grid holds a value nested ``depth`` lists deep."""
    return {"grid": {"eta": [json.loads("[" * depth + "]" * depth)]}}


@FUZZ
@given(values=SWEEPS | st.integers(13, 500).map(nested))
def test_the_sweep_reader_on_generated_values(values):
    outcome, message, peak = verdict(lambda: Sweep.from_dict(values))
    assert peak < 16 * MB


def toml_value(value) -> str:
    """``value`` as a TOML inline value (None, which TOML lacks, as 'null': a parse error to report)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    return "null"


@st.composite
def sweep_files(draw) -> tuple[str, str]:
    """(suffix, text): generated sweeps as JSON or TOML, sometimes cut short or wrapped in deep nesting."""
    values = draw(SWEEPS)
    if draw(st.booleans()):
        suffix = ".toml"
        table = values if isinstance(values, dict) else {"x": values}
        text = "\n".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in table.items())
    else:
        suffix, text = ".json", json.dumps(values, default=str)
    damage = draw(st.sampled_from(["none", "none", "cut", "deep"]))
    if damage == "cut":
        text = text[:draw(st.integers(0, len(text)))]
    elif damage == "deep":
        depth = draw(st.integers(10, 100_000))
        text = ("x = " if suffix == ".toml" else '{"x": ') + "[" * depth + "]" * depth + ("" if suffix == ".toml"
                                                                                          else "}")
    return suffix, text


@FUZZ
@given(file=sweep_files())
def test_the_sweep_reader_on_generated_files(file):
    suffix, text = file
    path = Path(tempfile.mkdtemp()) / f"sweep{suffix}"
    path.write_text(text)
    outcome, message, peak = verdict(lambda: Sweep.load(path))
    assert peak < 16 * MB + 40 * len(text)
