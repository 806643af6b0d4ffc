"""A training run as data: the run specification, its runner, checkpoints, experiments."""

from .runner import RunResult, run_spec  # noqa: F401
from .spec import RunSpec  # noqa: F401

__all__ = ["RunResult", "RunSpec", "run_spec"]
