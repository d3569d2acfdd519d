"""One small error hierarchy for the whole inference package.

Every error that reaches a user is an :class:`Ldr2HdrError`; its ``str()`` is a
single line that names the file (when there is one) and the reason. The command
line prints exactly that line; Blender operators relay it with ``self.report``.
"""

from __future__ import annotations


class Ldr2HdrError(Exception):
    """Base class for all errors the tool reports to a user."""

    def __init__(self, reason: str, path: str | None = None):
        self.reason = " ".join(str(reason).split())  # always one line
        self.path = None if path is None else str(path)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class UnsupportedImageError(Ldr2HdrError):
    """The file cannot be read as an image (missing, empty, corrupt, unsupported, too large)."""


class OutputExistsError(Ldr2HdrError):
    """An output file already exists and overwriting was not requested."""


class WeightsError(Ldr2HdrError):
    """A weights file is missing, tampered with, not safetensors, or does not match the model."""


class KernelUnavailableError(Ldr2HdrError):
    """An explicitly requested compute kernel cannot run on this machine."""
