"""Exception types shared by every package of textgen.

They live in the torch-free runtime so that `textgen_core` and `export` can subclass them while the
runtime stays importable with numpy + onnxruntime + rich alone. Every CLI catches `TextgenError`
and prints its message as one line, so each message must say what went wrong and what to do.
"""


class TextgenError(Exception):
    """Base class of every error a user can cause; CLIs print it as one line and exit non-zero."""


class TokenizerError(TextgenError):
    """Text cannot be encoded (unknown characters) or tokenizer data is malformed."""


class ModelFileError(TextgenError):
    """An exported model file is missing, unreadable, corrupt, or does not follow our contract."""


class SamplingError(TextgenError):
    """Sampling settings are out of range (negative temperature, top-p outside (0, 1], ...)."""


class MarkupError(TextgenError):
    """The corpus for verbatim-copy markup cannot be found or read, or a markup setting is invalid."""
