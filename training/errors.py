"""Errors raised by the training CLI.

TrainingError        base class
├── DataError        bad input data: names the file, the line (1-based, header = line 1) and the field
├── OptionError      a command-line option's value is unusable: names the option (and the file at fault)
└── ExportError      an exported ONNX graph disagrees with the fitted model, or --out is unusable
"""

from __future__ import annotations

from pathlib import Path


class TrainingError(Exception):
    """Base class of every error `pureai train` / `pureai evaluate` raise."""


class DataError(TrainingError, ValueError):
    def __init__(
        self, file: Path | str, message: str, line: int | None = None, field: str | None = None
    ) -> None:
        where = str(file) + (f":{line}" if line is not None else "")
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")
        self.file, self.line, self.field = str(file), line, field


class OptionError(TrainingError, ValueError):
    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


class ExportError(TrainingError):
    pass
