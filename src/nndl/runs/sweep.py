"""Hyperparameter sweeps (chapter 3, "How to choose a neural network's hyper-parameters?"), run on Dask.

A sweep is data: a base run (flat run-specification settings), the values to
search (a grid, random draws, or a grid crossed with random draws), the seeds,
and the measure that ranks the trials (validation accuracy unless told
otherwise: a sweep never chooses on the test set, so every trial is scored on
the validation data). A sweep may have stages, each searching some settings
with the choices of the stages before it: the book's broad strategy (find the
η threshold, then λ, then the mini-batch size) is :data:`BOOK_STRATEGY`::

    {"name": "eta-lambda", "base": {"cost": "cross-entropy", "epochs": 10},
     "grid": {"eta": [0.1, 0.5, 2.5], "lmbda": [0.1, 1, 10]},
     "random": {"trials": 4, "seed": 0, "space": {"mini_batch_size": {"int_log_uniform": [5, 50]}}},
     "seeds": [1, 2], "measure": "validation accuracy"}

Each trial is named by its run specification's fingerprint (settings and seed).
Its summary and history are written to ``OUT/trials/<fingerprint>.json`` the
moment it finishes, so running the same sweep again skips what is done. The
chosen trial's test accuracy is measured once, at the end, from its saved model.

A sweep file is read like nndl's other inputs: a regular file of at most
:data:`MAX_SPEC_BYTES`, plain JSON values nested at most :data:`MAX_DEPTH` deep,
every value of the type it needs, at most :data:`MAX_TRIALS` trials (settings ×
seeds) counted before any is built, and a name that can only name a folder of
its own. Anything else is one :class:`ConfigError` naming the problem.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.mnist import load_mnist, resolve_data_dir
from ..errors import ConfigError, NndlError
from ..files.atomic import atomic_output, parse_json, parse_toml, read_capped, read_json, write_bytes_atomically
from ..files.models import load_model, save_model
from ..files.plots import MAX_SERIES, plot_series, pyplot
from ..metrics import History, Measure, Monitor, evaluate
from .engine import Engine, train_task
from .spec import FIELD_SECTION, RunSpec

#: How a random search draws one setting: {"log_uniform": [0.01, 10]} and the like.
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int_uniform", "int_log_uniform")
#: How a stage turns its trials into the settings the next stages keep.
RULES = ("best", "eta-threshold")
#: The monitor setting that records each measure a sweep may rank by.
MONITOR_FOR = {("validation", "cost"): "evaluation-cost", ("training", "cost"): "training-cost",
               ("training", "accuracy"): "training-accuracy", ("training", "correct"): "training-accuracy"}
#: The most trials (settings × seeds, every stage together) one sweep may run: counted before anything is built,
#: so a typo cannot take the machine.
MAX_TRIALS = 10_000
#: The largest sweep file: a grid of thousands of values is a few hundred kB.
MAX_SPEC_BYTES = 2**20
#: How deep a sweep's values may nest (stages, a stage, random, space, a setting, choice, a value, its list: 8).
MAX_DEPTH = 12
#: The largest whole number in a sweep: far beyond any setting (a seed is below 2³²), and exact as a float.
MAX_WHOLE = 2**53
#: A sweep's and a stage's name: it names a folder and files, so no separator, no '..', nothing hidden.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SWEEP_KEYS = ("name", "note", "base", "grid", "random", "stages", "seeds", "measure", "top")
STAGE_KEYS = ("name", "base", "grid", "random", "choose")


# -- the sweep as data -----------------------------------------------------------------------

def check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Refuse what no sweep file holds: nesting deeper than MAX_DEPTH, keys that are not short names, values JSON
    cannot hold (a TOML date), whole numbers beyond ±MAX_WHOLE. Later checks can then trust the types they test."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where}: nested more than {MAX_DEPTH} deep; a sweep needs far less")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isprintable() or len(key) > 64:
                raise ConfigError(f"{where}: key {str(key)[:64]!r} is not a setting or a sweep's key")
            check_plain(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WHOLE:
        raise ConfigError(f"{where}: a whole number of {value.bit_length()} bits; no setting is beyond ±2^53")
    elif not isinstance(value, (str, int, float, type(None))):
        raise ConfigError(f"{where}: a {type(value).__name__} is not a JSON value; give a number, text, true or "
                          f"false, a list or a table")


@dataclass(frozen=True)
class RandomSearch:
    """``trials`` random draws of the settings in ``space`` (each {distribution: arguments}), from ``seed``."""

    trials: int
    seed: int
    space: dict[str, dict[str, Any]]

    @classmethod
    def from_dict(cls, values: Any, where: str) -> "RandomSearch":
        if not isinstance(values, dict) or set(values) - {"trials", "seed", "space"}:
            raise ConfigError(f"{where}: expected {{\"trials\": N, \"seed\": S, \"space\": {{setting: "
                              f"{{distribution: arguments}}}}}}")
        trials, seed, space = values.get("trials"), values.get("seed", 0), values.get("space")
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise ConfigError(f"{where}.trials {trials!r}: give a whole number of draws, at least 1")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"{where}.seed {seed!r}: give a whole number from 0")
        if not isinstance(space, dict) or not space:
            raise ConfigError(f"{where}.space: give at least one setting to draw")
        for name, law in space.items():
            check_distribution(f"{where}.space.{name}", law)
        return cls(trials, seed, space)

    def draws(self) -> list[dict[str, Any]]:
        """The drawn settings, the same for the same seed (floats kept to 4 significant digits)."""
        rng = np.random.default_rng(self.seed)
        return [{name: draw(rng, self.space[name]) for name in sorted(self.space)} for _ in range(self.trials)]


def check_distribution(where: str, law: Any) -> None:
    """Refuse anything but {"choice": [values]} or {"uniform" | "log_uniform" | "int_...": [low, high]}, with
    low < high, both within ±MAX_WHOLE (so every draw is finite), whole for int_..., low > 0 on a log scale."""
    if not isinstance(law, dict) or len(law) != 1 or next(iter(law)) not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: give one of {', '.join(DISTRIBUTIONS)}, e.g. {{\"log_uniform\": [0.01, 10]}}")
    kind, arguments = next(iter(law.items()))
    if not isinstance(arguments, list) or not arguments:
        raise ConfigError(f"{where}.{kind}: give a non-empty list")
    if kind == "choice":
        return
    number = int if kind.startswith("int") else (int, float)
    bounds = len(arguments) == 2 and all(isinstance(a, number) and not isinstance(a, bool) and abs(a) <= MAX_WHOLE
                                         for a in arguments)  # abs(nan) <= MAX_WHOLE is False: NaN is refused too
    if not bounds or arguments[0] >= arguments[1] or ("log" in kind and arguments[0] <= 0):
        raise ConfigError(f"{where}.{kind} {arguments}: give [low, high], {'whole' if number is int else 'finite'} "
                          f"numbers within ±{MAX_WHOLE:.0e} with {'0 < ' if 'log' in kind else ''}low < high")


def draw(rng: np.random.Generator, law: dict[str, Any]) -> Any:
    """One value of a distribution (see :data:`DISTRIBUTIONS`)."""
    kind, arguments = next(iter(law.items()))
    if kind == "choice":
        return arguments[int(rng.integers(len(arguments)))]
    low, high = arguments
    if kind == "int_uniform":
        return int(rng.integers(low, high + 1))
    if "log" in kind:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))  # uniform in log η: every decade alike
    else:
        value = rng.uniform(low, high)
    return int(round(value)) if kind.startswith("int") else float(f"{value:.4g}")


def check_name(name: Any, where: str) -> None:
    """Refuse a name that could not be a folder of its own (a separator, '..', a leading dot or dash)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"{where}.name {name!r}: give a plain name: up to 64 letters, digits, - and _, "
                          f"starting with a letter or digit")


@dataclass(frozen=True)
class Stage:
    """Settings searched together (a grid, random draws, or each grid point with each draw), and the rule
    that picks what later stages keep: "best" (the best mean measure over the seeds) or "eta-threshold"."""

    name: str
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: RandomSearch | None = None
    choose: str = "best"

    @classmethod
    def from_dict(cls, values: Any, where: str) -> "Stage":
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected an object with keys {', '.join(STAGE_KEYS)}")
        unknown = sorted(set(values) - set(STAGE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(STAGE_KEYS)}")
        name, base, grid = values.get("name", "sweep"), values.get("base", {}), values.get("grid", {})
        check_name(name, where)
        if not isinstance(base, dict):
            raise ConfigError(f"{where}.base: give flat run settings, e.g. {{\"eta\": 0.5}}")
        if not isinstance(grid, dict):
            raise ConfigError(f"{where}.grid: give lists of values, e.g. {{\"eta\": [0.1, 1.0]}}")
        for setting, values_ in grid.items():
            if not isinstance(values_, list) or not values_:
                raise ConfigError(f"{where}.grid.{setting}: give a non-empty list of values to try")
        random = RandomSearch.from_dict(values["random"], f"{where}.random") if "random" in values else None
        stage = cls(name, base, grid, random, values.get("choose", "best"))
        if not stage.searched:
            raise ConfigError(f"{where}: nothing to search; give a grid or random draws")
        for setting in stage.searched:
            if setting.rpartition(".")[2] not in FIELD_SECTION:
                raise ConfigError(f"{where}: unknown setting {setting!r}; known settings: {', '.join(FIELD_SECTION)}")
        both = sorted(set(grid) & set(random.space if random else {}))
        if both:
            raise ConfigError(f"{where}: {both[0]!r} is both in the grid and drawn at random; keep one")
        if stage.choose not in RULES:
            raise ConfigError(f"{where}.choose {stage.choose!r}: choose from {', '.join(RULES)}")
        if stage.choose == "eta-threshold" and (list(grid) != ["eta"] or random):
            raise ConfigError(f"{where}: the eta-threshold rule needs a grid of eta alone")
        return stage

    @property
    def searched(self) -> tuple[str, ...]:
        return tuple(self.grid) + tuple(sorted(self.random.space) if self.random else ())

    @property
    def size(self) -> int:
        """How many settings this stage tries, counted without building them."""
        return math.prod(len(v) for v in self.grid.values()) * (self.random.trials if self.random else 1)

    def points(self) -> list[dict[str, Any]]:
        """Every combination of settings this stage tries: each grid point with each random draw."""
        grid = [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]
        draws = self.random.draws() if self.random else [{}]
        return [{**point, **drawn} for point in grid for drawn in draws]


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its stage, the searched settings it tries, and its full run specification."""

    stage: str
    settings: dict[str, Any]
    spec: RunSpec

    @property
    def seed(self) -> int:
        return self.spec.training.seed  # type: ignore[return-value]

    @property
    def fingerprint(self) -> str:
        return self.spec.fingerprint()


@dataclass(frozen=True)
class Sweep:
    """A whole sweep: a base run, its stages, the seeds, the ranking measure (see the module docstring)."""

    name: str
    base: dict[str, Any]
    stages: tuple[Stage, ...]
    seeds: tuple[int, ...] = (1,)
    measure: Measure = Measure("validation", "accuracy")
    top: int = 3
    note: str = ""

    @classmethod
    def from_dict(cls, values: Any, where: str = "sweep") -> "Sweep":
        """Build and check a sweep; every trial's specification is validated here, before anything runs."""
        check_plain(values, where)
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected an object with keys {', '.join(SWEEP_KEYS)}")
        unknown = sorted(set(values) - set(SWEEP_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(SWEEP_KEYS)}")
        if "stages" in values:
            if any(key in values for key in ("grid", "random")):
                raise ConfigError(f"{where}: give the search in 'stages' or in 'grid'/'random', not both")
            if not isinstance(values["stages"], list) or not values["stages"]:
                raise ConfigError(f"{where}.stages: give a non-empty list of stages")
            stages = tuple(Stage.from_dict({"name": f"stage{i + 1}", **s} if isinstance(s, dict) else s,
                                           f"{where}.stages[{i}]") for i, s in enumerate(values["stages"]))
        else:
            stages = (Stage.from_dict({k: values[k] for k in ("grid", "random") if k in values}, where),)
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.stages: give each stage its own name")
        seeds = checked_seeds(values.get("seeds", [1]), sum(stage.size for stage in stages), where)
        name, note = values.get("name", "sweep"), values.get("note", "")
        measure = values.get("measure", "validation accuracy")
        check_name(name, where)
        if not isinstance(note, str):
            raise ConfigError(f"{where}.note: give a sentence of text")
        if not isinstance(measure, str):
            raise ConfigError(f"{where}.measure {measure!r}: give a dataset and a measure, e.g. 'validation accuracy'")
        measure = Measure.parse(measure)
        if measure.dataset not in ("validation", "training"):
            raise ConfigError(f"{where}.measure {str(measure)!r}: a sweep ranks on validation or training data, "
                              f"never on the test set (it is measured once, on the chosen run)")
        base, top = values.get("base", {}), values.get("top", 3)
        if not isinstance(base, dict):
            raise ConfigError(f"{where}.base: give flat run settings, e.g. {{\"cost\": \"cross-entropy\"}}")
        if base.get("evaluate_on", "validation") != "validation" or base.get("data.evaluate_on", "validation") \
                != "validation":
            raise ConfigError(f"{where}.base.evaluate_on: a sweep scores every trial on the validation data; "
                              f"leave evaluate_on out")
        monitor = base.get("monitor", [])
        if not isinstance(monitor, list) or not all(isinstance(m, str) for m in monitor):
            raise ConfigError(f"{where}.base.monitor {monitor!r}: give a list, e.g. [\"training-cost\"]")
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_SERIES:
            raise ConfigError(f"{where}.top {top!r}: give how many of the best trials to draw, 1 to {MAX_SERIES}")
        sweep = cls(name, base, stages, seeds, measure, top, note)
        sweep.check_trials()
        return sweep

    @classmethod
    def load(cls, path: str | Path) -> "Sweep":
        """Read a sweep from a JSON or TOML file."""
        return cls.from_dict(read_sweep_file(path), str(path))

    def with_base(self, **settings: Any) -> "Sweep":
        """The same sweep with some base settings changed (``--data DIR`` sets the source)."""
        sweep = Sweep(self.name, {**self.base, **settings}, self.stages, self.seeds, self.measure, self.top, self.note)
        sweep.check_trials()
        return sweep

    def monitors(self, stage: Stage) -> list[str]:
        """The base's monitors and those that record the ranking measure (and the training cost the η rule reads)."""
        wanted = list(self.base.get("monitor", []))
        needed = [MONITOR_FOR.get((self.measure.dataset, self.measure.name))]
        if stage.choose == "eta-threshold":
            needed.append("training-cost")
        return wanted + [m for m in needed if m and m not in wanted]

    def trials(self, stage: Stage, kept: dict[str, Any]) -> list[Trial]:
        """Every (point, seed) of ``stage``, with the settings the earlier stages ``kept``."""
        trials = []
        for point in stage.points():
            for seed in self.seeds:
                settings = {**self.base, **kept, **stage.base, **point, "seed": seed, "evaluate_on": "validation",
                            "monitor": self.monitors(stage), "workers": 0}  # Dask workers may not start processes
                where = f"sweep {self.name!r}, stage {stage.name!r}, trial {json.dumps(point)}"
                trials.append(Trial(stage.name, point, RunSpec.from_flat(settings, where=where)))
        return trials

    def check_trials(self) -> None:
        """Validate every stage's trials, with the first grid point standing in for each earlier stage's choice."""
        kept: dict[str, Any] = {}
        for stage in self.stages:
            self.trials(stage, kept)
            kept.update(stage.points()[0])


def checked_seeds(seeds: Any, settings: int, where: str) -> tuple[int, ...]:
    """The seeds (a list, or how many: N for 1…N), refused before they are listed if ``settings`` × seeds (the
    sweep's trials) exceed MAX_TRIALS."""
    whole = isinstance(seeds, int) and not isinstance(seeds, bool)
    if not (whole and seeds >= 1 or isinstance(seeds, list) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError(f"{where}.seeds {seeds!r}: give a list of seeds (whole numbers from 0) or how many (1…N)")
    count = seeds if whole else len(seeds)
    if settings * count > MAX_TRIALS:
        raise ConfigError(f"{where}: {settings * count:,} trials ({settings:,} settings × {count:,} seeds); a sweep "
                          f"runs at most {MAX_TRIALS:,}: search fewer values or seeds, or split it into sweeps")
    seeds = list(range(1, count + 1)) if whole else seeds
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}.seeds: give each seed once")
    return tuple(seeds)


def read_sweep_file(path: str | Path) -> Any:
    """The contents of a sweep file (TOML when it ends in .toml, else JSON): a regular file of at most
    MAX_SPEC_BYTES, so a FIFO, a device or a huge file is refused before it is read."""
    path = Path(path)
    data = read_capped(path, "a sweep", MAX_SPEC_BYTES, ConfigError)
    if path.suffix == ".toml":
        return parse_toml(data, str(path), "a TOML sweep", ConfigError)
    return parse_json(data, str(path), "a JSON sweep", ConfigError)


# -- running ---------------------------------------------------------------------------------

@dataclass
class StageResult:
    """A stage's trial records (in trial order), its ranked groups of seeds, and what it chose."""

    stage: Stage
    records: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    choice: dict[str, Any]
    reason: str
    chosen: dict[str, Any] | None


def trial_path(out: Path, fingerprint: str) -> Path:
    return out / "trials" / f"{fingerprint}.json"


def model_path(out: Path, fingerprint: str) -> Path:
    return out / "models" / f"{fingerprint}.npz"


def finished_trial(out: Path, trial: Trial) -> dict[str, Any] | None:
    """The saved record of ``trial`` if it finished before (with its model), else None."""
    path = trial_path(out, trial.fingerprint)
    if not path.is_file() or not model_path(out, trial.fingerprint).is_file():
        return None
    try:
        record = read_json(path, "a trial record")
        same = record["fingerprint"] == trial.fingerprint
    except (NndlError, KeyError, TypeError):
        return None
    return {**record, "stage": trial.stage, "settings": trial.settings} if same else None  # a later stage may
    # try the very run an earlier one did: it counts for both, under each stage's own settings


def trial_record(trial: Trial, summary: dict[str, Any], measure: Measure) -> dict[str, Any]:
    """What the sweep keeps of a finished trial: its settings, measure, best epoch, wall time, worker, history."""
    best = History(summary["history"]).best(measure)
    return {"fingerprint": trial.fingerprint, "stage": trial.stage, "settings": trial.settings, "seed": trial.seed,
            "measure": str(measure), "value": measure.of(best) if best else None,
            "best_epoch": best["epoch"] if best else None, "epochs": len(summary["history"]),
            "seconds": summary["seconds"], "worker": summary.get("worker"), "diverged": summary.get("diverged"),
            "summary": summary}


def run_sweep(sweep: Sweep, out: str | Path, *, scheduler: str | None = None, workers: int | None = None,
              progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every stage of ``sweep`` (skipping finished trials), then write the table, figures and report.

    Trials are sent to a Dask cluster (a local one unless ``scheduler`` names
    one), which is started only if some trial is left to run. Returns the
    results (also written to ``OUT/results.json``).
    """
    out = Path(out)
    if sweep.base.get("source") is None:  # workers load the folder the client resolves
        sweep = sweep.with_base(source=str(resolve_data_dir(None)))
    started = time.perf_counter()
    stages: list[StageResult] = []
    failed: list[dict[str, Any]] = []
    kept: dict[str, Any] = {}
    ran = 0
    with contextlib.ExitStack() as cleanup:
        engines: list[Engine] = []

        def engine() -> Engine:  # started only when some trial is left to run
            if not engines:
                device = sweep.base.get("device", "cpu")
                engines.append(cleanup.enter_context(Engine(scheduler, workers, progress, device)))
                log(f"Dask: {engines[0].describe()}")
            return engines[0]

        for stage in sweep.stages:
            trials = sweep.trials(stage, kept)
            records, errors, ran_now = run_trials(trials, out, sweep.measure, engine, log)
            ran += ran_now
            failed += [{"fingerprint": t.fingerprint, "stage": stage.name, "settings": t.settings, "seed": t.seed,
                        "error": errors[t.fingerprint]} for t in trials if t.fingerprint in errors]
            result = decide(stage, [records[t.fingerprint] for t in trials if t.fingerprint in records],
                            sweep.measure)
            log(f"Stage {stage.name}: {result.reason}")
            stages.append(result)
            kept.update(result.choice)
    final = stages[-1].chosen
    results = {"sweep": sweep.name, "measure": str(sweep.measure), "seeds": list(sweep.seeds),
               "kept": kept, "chosen": final and summary_row(final, sweep.measure),
               "test_accuracy": chosen_test_accuracy(out, final) if final else None,
               "stages": [{"name": s.stage.name, "rule": s.stage.choose, "searched": list(s.stage.searched),
                           "choice": s.choice, "reason": s.reason, "groups": s.groups} for s in stages],
               "trials": [summary_row(r, sweep.measure) for s in stages for r in s.records],
               "failed": failed, "ran": ran, "seconds": time.perf_counter() - started}
    write_outputs(sweep, out, stages, results)
    return results


def run_trials(trials: list[Trial], out: Path, measure: Measure, engine: Callable[[], Engine],
               log: Callable[[str], None]) -> tuple[dict[str, dict[str, Any]], dict[str, str], int]:
    """The records of ``trials``, the errors of those that failed, and how many ran now.

    Finished trials are read from ``out``; the others run on ``engine()``, and
    each is saved (model, then record) the moment it arrives.
    """
    records = {t.fingerprint: r for t in trials if (r := finished_trial(out, t)) is not None}
    todo = {t.fingerprint: (t, (t.spec.to_dict(),)) for t in trials if t.fingerprint not in records}
    log(f"Stage {trials[0].stage}: {len(trials)} trials, {len(trials) - len(todo)} finished before, "
        f"{len(todo)} to run")
    errors: dict[str, str] = {}
    for outcome in engine().run(train_task, todo, what="trials", keep_best=str(measure)) if todo else ():
        trial = outcome.item
        if outcome.error is not None:
            errors[outcome.key] = outcome.error
            log(f"  trial {json.dumps(trial.settings)} seed {trial.seed} failed: {outcome.error}")
            continue
        network = outcome.result.pop("network")
        record = trial_record(trial, outcome.result, measure)
        save_model(network, model_path(out, outcome.key))  # the record, written last, marks it done
        write_bytes_atomically(trial_path(out, outcome.key), json.dumps(record).encode())
        records[outcome.key] = record
    return records, errors, len(todo) - len(errors)


def chosen_test_accuracy(out: Path, chosen: dict[str, Any]) -> float:
    """The chosen trial's test accuracy: its saved model (best epoch by the measure) scored once, here."""
    network = load_model(model_path(out, chosen["fingerprint"]))
    spec = RunSpec.from_dict(chosen["summary"]["spec"])
    mnist = load_mnist(spec.data.source, train_size=spec.data.train_size)
    return evaluate(network, Monitor(mnist.test))["accuracy"]


# -- choosing --------------------------------------------------------------------------------

def setting_key(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def group_by_settings(records: list[dict[str, Any]], measure: Measure) -> list[dict[str, Any]]:
    """The trials of each setting (its seeds) with their mean measure, best first (first tried wins ties)."""
    groups: dict[str, dict[str, Any]] = {}
    for record in records:
        group = groups.setdefault(setting_key(record["settings"]), {"settings": record["settings"], "trials": []})
        group["trials"].append(record)
    ranked = []
    for group in groups.values():
        values = [r["value"] for r in group["trials"] if r["value"] is not None]
        best = (max if measure.higher_is_better else min)(group["trials"], key=lambda r: sort_value(r, measure))
        ranked.append({"settings": group["settings"], "mean": statistics.mean(values) if values else None,
                       "values": [r["value"] for r in group["trials"]], "seeds": [r["seed"] for r in group["trials"]],
                       "best_trial": best["fingerprint"], "best_epoch": best["best_epoch"]})
    worst = -math.inf if measure.higher_is_better else math.inf
    ranked.sort(key=lambda g: worst if g["mean"] is None else g["mean"], reverse=measure.higher_is_better)
    return ranked


def sort_value(record: dict[str, Any], measure: Measure) -> float:
    """A record's measure for ranking, the worst possible when it has none."""
    if record["value"] is None:
        return -math.inf if measure.higher_is_better else math.inf
    return record["value"]


def decide(stage: Stage, records: list[dict[str, Any]], measure: Measure) -> StageResult:
    """Rank the stage's settings and apply its rule (see :class:`Stage`)."""
    groups = group_by_settings(records, measure)
    if not groups:
        raise NndlError(f"stage {stage.name}: every trial failed; see the errors above")
    by_fingerprint = {r["fingerprint"]: r for r in records}
    if stage.choose == "eta-threshold":
        choice, reason = eta_threshold(records)
        for group in groups:
            group["training_cost_falls"] = all(cost_falls(r) for r in records if r["settings"] == group["settings"])
    else:
        choice = groups[0]["settings"]
        reason = (f"best mean {measure} {format_measure(groups[0]['mean'], measure)} over "
                  f"{len(groups[0]['values'])} seed(s) with {describe(choice)}")
    chosen_group = next((g for g in groups if setting_key(g["settings"]) == setting_key(choice)), groups[0])
    return StageResult(stage, records, groups, choice, reason, by_fingerprint[chosen_group["best_trial"]])


def cost_falls(record: dict[str, Any]) -> bool:
    """Whether the training cost fell after every epoch of a trial (chapter 3: no oscillation, no rise)."""
    costs = [r["metrics"].get("training", {}).get("cost") for r in record["summary"]["history"]]
    return all(c is not None and math.isfinite(c) for c in costs) and all(b < a for a, b in zip(costs, costs[1:])) \
        and not record.get("diverged")


def eta_threshold(records: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The book's first step: the threshold η is the largest η whose training cost falls from the first epochs,
    in every seed, with every smaller η falling too; use η = threshold / 2 (a factor of two below it)."""
    falls: dict[float, bool] = {}
    for record in records:
        eta = record["settings"]["eta"]
        falls[eta] = falls.get(eta, True) and cost_falls(record)
    threshold = None
    for eta in sorted(falls):
        if not falls[eta]:
            break
        threshold = eta
    if threshold is None:
        raise NndlError(f"the training cost rises or oscillates even for η = {min(falls):g}; try smaller values")
    above = [eta for eta in sorted(falls) if eta > threshold]
    where = f"it oscillates or rises from η = {above[0]:g}" if above else "every η tried falls: try larger values"
    eta = float(f"{threshold / 2:.4g}")
    return {"eta": eta}, f"the training cost falls every epoch up to η = {threshold:g} ({where}); η = {eta:g}"


# -- writing the results ---------------------------------------------------------------------

def describe(settings: dict[str, Any]) -> str:
    """'η = 0.5, λ = 5' for a report."""
    symbols = {"eta": "η", "lmbda": "λ", "mini_batch_size": "m", "l1": "λ₁", "momentum": "μ"}
    return ", ".join(f"{symbols.get(k, k)} = {format_value(v)}" for k, v in settings.items())


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def format_measure(value: float | None, measure: Measure) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if measure.name == "accuracy" else f"{value:.4g}"


def summary_row(record: dict[str, Any], measure: Measure) -> dict[str, Any]:
    """A trial's line of the results table (no history)."""
    return {"stage": record["stage"], "trial": record["fingerprint"], "settings": record["settings"],
            "seed": record["seed"], str(measure): record["value"], "best_epoch": record["best_epoch"],
            "epochs": record["epochs"], "seconds": round(record["seconds"], 3), "worker": record["worker"],
            "diverged": record["diverged"]}


def results_csv(results: dict[str, Any], searched: list[str], measure: Measure) -> str:
    """The trials as CSV: one column per searched setting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["stage", "trial", *searched, "seed", str(measure), "best_epoch", "epochs", "seconds", "worker"])
    for row in results["trials"]:
        settings = [json.dumps(row["settings"][k]) if k in row["settings"] else "" for k in searched]
        writer.writerow([row["stage"], row["trial"], *settings, row["seed"], row[str(measure)], row["best_epoch"],
                         row["epochs"], row["seconds"], row["worker"]])
    return buffer.getvalue()


def write_outputs(sweep: Sweep, out: Path, stages: list[StageResult], results: dict[str, Any]) -> None:
    """results.json, results.csv, one history file per trial (in trials/), figures and report.md."""
    searched = list(dict.fromkeys(s for stage in sweep.stages for s in stage.searched))
    write_bytes_atomically(out / "results.json", (json.dumps(results, indent=1) + "\n").encode())
    write_bytes_atomically(out / "results.csv", results_csv(results, searched, sweep.measure).encode())
    figures = {stage.stage.name: stage_figures(stage, sweep, out) for stage in stages}
    write_bytes_atomically(out / "report.md", sweep_report(sweep, stages, results, figures).encode("utf-8"))


def stage_figures(result: StageResult, sweep: Sweep, out: Path) -> list[str]:
    """The measure against each searched setting, the η×λ map, the learning curves of the best few."""
    stage, measure, files = result.stage, sweep.measure, []
    for setting in stage.searched:
        name = f"{stage.name}-{setting}.png"
        plot_measure_by_setting(result.records, setting, measure, out / name, f"{measure} against {setting}")
        files.append(name)
    if {"eta", "lmbda"} <= set(stage.searched):
        name = f"{stage.name}-eta-lmbda.png"
        plot_heat_map(result.groups, measure, out / name)
        files.append(name)
    by_fingerprint = {r["fingerprint"]: r for r in result.records}
    curves = {describe(g["settings"]): by_fingerprint[g["best_trial"]]["summary"]["history"]
              for g in result.groups[:sweep.top]}
    name = f"{stage.name}-curves.png"
    plot_series({label: ([r["epoch"] for r in history], [scale(measure) * (measure.of(r) or math.nan)
                                                           for r in history])
                 for label, history in curves.items()}, out / name, f"{measure}, the best {len(curves)}",
                "epoch", ylabel(measure))
    files.append(name)
    if "mini_batch_size" in stage.searched:  # the book picks m by how fast accuracy rises in wall-clock time
        name = f"{stage.name}-against-time.png"
        every = {describe(g["settings"]): by_fingerprint[g["best_trial"]]["summary"]["history"] for g in result.groups}
        plot_series({label: (list(itertools.accumulate(r["seconds"] for r in history)),
                             [scale(measure) * (measure.of(r) or math.nan) for r in history])
                     for label, history in every.items()}, out / name,
                    f"{measure} against training time (best seed of each)", "seconds of training", ylabel(measure))
        files.append(name)
    if stage.choose == "eta-threshold":
        name = f"{stage.name}-training-cost.png"
        plot_training_cost([r for r in result.records if r["seed"] == sweep.seeds[0]], out / name)
        files.append(name)
    return files


def scale(measure: Measure) -> float:
    return 100.0 if measure.name == "accuracy" else 1.0


def ylabel(measure: Measure) -> str:
    return f"{measure} (%)" if measure.name == "accuracy" else str(measure)


def plot_measure_by_setting(records: list[dict[str, Any]], setting: str, measure: Measure, path: Path,
                            title: str) -> None:
    """Every trial as a point (measure against the setting's value), and the mean over seeds as a line."""
    plt = pyplot()
    values = [r["settings"][setting] for r in records]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    labels = sorted({format_value(v) for v in values}, key=lambda t: [format_value(v) for v in values].index(t))
    position = (lambda v: v) if numeric else (lambda v: labels.index(format_value(v)))
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
    points = [(position(r["settings"][setting]), scale(measure) * r["value"])
              for r in records if r["value"] is not None]
    axes.scatter([p[0] for p in points], [p[1] for p in points], s=18, alpha=0.6, label="each trial")
    means: dict[Any, list[float]] = {}
    for x, y in points:
        means.setdefault(x, []).append(y)
    if len(means) < len(points):  # repeated values (seeds, a grid, a choice): show their mean
        xs = sorted(means)
        axes.plot(xs, [statistics.mean(means[x]) for x in xs], marker="o", label="mean at each value")
    if numeric and min(values) > 0 and max(values) / min(values) >= 20:
        axes.set_xscale("log")
    if not numeric:
        axes.set_xticks(range(len(labels)), labels)
    axes.set(title=title, xlabel=setting, ylabel=ylabel(measure))
    axes.grid(True, alpha=0.3)
    axes.legend()
    save_figure(plt, figure, path)


def plot_training_cost(records: list[dict[str, Any]], path: Path) -> None:
    """The training cost per epoch of each trial (the η threshold's evidence), on a log scale: it spans decades."""
    plt = pyplot()
    cost = Measure("training", "cost")
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(records)))
    for record, colour in zip(records, colours):
        history = record["summary"]["history"]
        style = "-" if cost_falls(record) else "--"
        axes.plot([h["epoch"] for h in history], [cost.of(h) for h in history], style, color=colour, marker="o",
                  markersize=3, label=describe(record["settings"]) + ("" if style == "-" else " (does not fall)"))
    axes.set_yscale("log")
    axes.set(title="Training cost per epoch for each η", xlabel="epoch", ylabel="training cost (log scale)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    save_figure(plt, figure, path)


def plot_heat_map(groups: list[dict[str, Any]], measure: Measure, path: Path) -> None:
    """The mean measure for each (η, λ) pair tried (blank where a pair was not tried)."""
    plt = pyplot()
    etas = sorted({g["settings"]["eta"] for g in groups})
    lmbdas = sorted({g["settings"]["lmbda"] for g in groups})
    grid = np.full((len(lmbdas), len(etas)), np.nan)
    for group in groups:  # with other settings searched too, a cell shows the best of them
        i, j = lmbdas.index(group["settings"]["lmbda"]), etas.index(group["settings"]["eta"])
        if group["mean"] is not None:
            value = scale(measure) * group["mean"]
            better = max if measure.higher_is_better else min
            grid[i, j] = value if np.isnan(grid[i, j]) else better(grid[i, j], value)
    figure, axes = plt.subplots(figsize=(7, 5), dpi=100)
    image = axes.imshow(grid, origin="lower", cmap="viridis" if measure.higher_is_better else "viridis_r",
                        aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            red, green, blue, _ = image.cmap(image.norm(value))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # dark text on light cells
            axes.text(j, i, f"{value:.4g}", ha="center", va="center", color="black" if light else "white", fontsize=9)
    axes.set_xticks(range(len(etas)), [f"{e:g}" for e in etas])
    axes.set_yticks(range(len(lmbdas)), [f"{l:g}" for l in lmbdas])
    axes.set(title=f"Mean {measure} for each η and λ", xlabel="η", ylabel="λ")
    figure.colorbar(image, ax=axes, label=ylabel(measure))
    save_figure(plt, figure, path)


def save_figure(plt: Any, figure: Any, path: Path) -> None:
    figure.tight_layout()
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)


def sweep_report(sweep: Sweep, stages: list[StageResult], results: dict[str, Any],
                 figures: dict[str, list[str]]) -> str:
    """The Markdown report: what was searched, each stage's ranking and choice, the best setting's test accuracy."""
    measure = sweep.measure
    chosen = results["chosen"]
    invocation = (f"this invocation ran {results['ran']} of them in {results['seconds']:.0f} s." if results["ran"]
                  else "all had finished before this invocation, which wrote the results.")
    lines = [f"# Sweep: {sweep.name}", ""]
    if sweep.note:
        lines += [sweep.note, ""]
    lines += [f"Ranked by the **{measure}** (every trial scored on the validation data; the test set is used "
              f"once, on the chosen run). Seeds: {', '.join(map(str, sweep.seeds))}. "
              f"{len(results['trials'])} trials finished, {len(results['failed'])} failed; their training took "
              f"{sum(t['seconds'] for t in results['trials']) / 60:.1f} minutes in all (on workers sharing the "
              f"cores); {invocation}", "",
              f"Base run: {describe({k: v for k, v in sweep.base.items() if k != 'source'})}.", "",
              f"**Best setting:** {describe(results['kept'])}: {measure} "
              f"{format_measure(chosen[str(measure)], measure)} (seed {chosen['seed']}, epoch {chosen['best_epoch']}); "
              f"**test accuracy {100 * results['test_accuracy']:.2f}%** (that run's best-epoch weights).", ""]
    for result in stages:
        lines += [f"## Stage {result.stage.name}", "",
                  f"Searched: {', '.join(result.stage.searched)}. Rule: {result.stage.choose}. "
                  f"Base of this stage: {describe(result.stage.base) or 'the sweep base'}.", "",
                  f"Choice: {result.reason}.", ""]
        threshold = result.stage.choose == "eta-threshold"
        groups = sorted(result.groups, key=lambda g: g["settings"]["eta"]) if threshold else result.groups
        extra = " training cost falls every epoch |" if threshold else ""
        first = "η order" if threshold else "rank"
        lines += [f"| {first} | setting | mean {measure} | per seed | best epoch |{extra}",
                  "|---|---|---|---|---|" + ("---|" if threshold else "")]
        for rank, group in enumerate(groups, 1):
            per_seed = " / ".join(format_measure(v, measure) for v in group["values"])
            falls = f" {'yes' if group['training_cost_falls'] else 'no'} |" if threshold else ""
            lines.append(f"| {rank} | {describe(group['settings'])} | {format_measure(group['mean'], measure)} | "
                         f"{per_seed} | {group['best_epoch']} |{falls}")
        lines.append("")
        lines += [f"![{name}]({name})" for name in figures[result.stage.name]] + [""]
    if results["failed"]:
        lines += ["## Failed trials", ""] + [f"- {describe(f['settings'])}, seed {f['seed']}: {f['error']}"
                                             for f in results["failed"]] + [""]
    return "\n".join(lines)


# -- the built-in example --------------------------------------------------------------------

def book_strategy(hidden: int) -> dict[str, Any]:
    """Chapter 3's broad strategy as a staged sweep on [784, ``hidden``, 10]: the η threshold from the training
    cost of a few epochs on 10,000 images, then λ with η = threshold / 2, then the mini-batch size."""
    return {
        "name": "book-strategy" if hidden == 30 else f"book-strategy-{hidden}",
        "note": (f"Chapter 3's broad strategy, as sweeps, on [784, {hidden}, 10] with cross-entropy cost and "
                 "N(0, 1/n_in) weights. Stage eta: λ = 0, 5 epochs on the first 10,000 training images, η on a "
                 "grid about a factor of 2 apart; the threshold is the largest η whose training cost falls after "
                 "every epoch (in every seed, and for every smaller η), and the sweep goes on with half of it, as "
                 "the book suggests. Stage lambda: that η, 10 epochs on all 50,000 images, λ a factor of 10 apart "
                 "around the book's 1.0 (and the book's 5.0). Stage mini-batch: η and λ kept, 10 epochs. The runs "
                 "are shorter than the book's 30 epochs so the whole sweep takes minutes on two cores, not hours "
                 "(3.1 on [784, 30, 10], 7.5 on [784, 100, 10], on a shared 2-core machine); the book's later "
                 "refinements (re-tuning η after λ, early stopping to choose the epochs, η schedules) are left "
                 "out."),
        "base": {"cost": "cross-entropy", "hidden": [hidden], "init": "normalized", "epochs": 10},
        "seeds": [1, 2],
        "stages": [
            {"name": "eta", "base": {"train_size": 10_000, "epochs": 5},
             "grid": {"eta": [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0]},
             "choose": "eta-threshold"},
            {"name": "lambda", "grid": {"lmbda": [0.0, 0.01, 0.1, 1.0, 5.0, 10.0, 100.0]}},
            {"name": "mini-batch", "grid": {"mini_batch_size": [1, 5, 10, 20, 50, 100]}},
        ],
    }


BOOK_STRATEGY = book_strategy(30)
EXAMPLES = {"book-strategy": BOOK_STRATEGY, "book-strategy-100": book_strategy(100)}
