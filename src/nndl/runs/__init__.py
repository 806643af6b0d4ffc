"""A training run as data: the run specification, its runner, checkpoints, experiments."""
