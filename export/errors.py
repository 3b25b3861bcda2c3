"""Errors of the exporter."""

from runtime.errors import TextgenError


class ExportMismatchError(TextgenError):
    """The exported file's outputs differ from the torch model's beyond the tolerance."""


class ExportError(TextgenError):
    """The file could not be exported or written."""
