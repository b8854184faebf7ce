"""Exceptions shared by every pipeline; workers map them onto run states."""
from __future__ import annotations


class PipelineError(Exception):
    """Base class for errors a pipeline raises on purpose."""


class InvalidConfigError(PipelineError):
    """The config cannot run as given; the message names the field and the fix.

    `field` is the config field the error belongs to (a form shows the message beside that field;
    None when the error concerns several fields or the config as a whole).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidInputError(PipelineError):
    """Input data is malformed; the message names the file, line and field."""


class BackendUnavailableError(PipelineError):
    """The model server could not be reached; retrying later may succeed."""


class RunCancelled(PipelineError):
    """Raised between batches when the user asked the run to stop."""
