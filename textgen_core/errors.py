"""Errors of the training side; all derive from `runtime.errors.TextgenError` so one `except`
in each CLI turns them into a one-line message."""

from runtime.errors import ModelFileError, SamplingError, TextgenError, TokenizerError

__all__ = [
    "CheckpointError",
    "ConfigError",
    "CorpusError",
    "ModelFileError",
    "SamplingError",
    "TextgenError",
    "TokenizerError",
    "TrainingDivergedError",
]


class ConfigError(TextgenError):
    """A flag, preset or config-file value is impossible (negative size, unknown field, ...)."""


class CorpusError(TextgenError):
    """The corpus is missing, empty, binary, undecodable, or could not be fetched."""


class CheckpointError(TextgenError):
    """A checkpoint is missing, corrupt, unsafe, of another kind, or cannot be written."""


class TrainingDivergedError(TextgenError):
    """A training loss became NaN or infinite; the last saved checkpoint is kept."""
