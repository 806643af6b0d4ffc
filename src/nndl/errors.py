"""The exceptions nndl raises for problems a user can fix.

The command line turns every :class:`NndlError` into a one-line message and exit
code 2; anything else is a bug in nndl and keeps its traceback.
"""

from __future__ import annotations


class NndlError(Exception):
    """A problem with the user's input, data or files, explained in the message."""


class DataError(NndlError):
    """A dataset file is missing, truncated, corrupt or of the wrong kind."""


class ModelFileError(NndlError):
    """A saved model cannot be read or does not describe a consistent network."""


class ConfigError(NndlError, ValueError):
    """A setting (network shape, learning rate, ...) has a value nndl cannot use."""
