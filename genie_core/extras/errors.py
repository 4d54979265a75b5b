"""Error types that carry enough context for a user to fix their input."""

from __future__ import annotations


class GenieError(Exception):
    """Base class for errors caused by user input (configs, datasets, paths)."""


class ConfigError(GenieError):
    """A config key or value is wrong; the message names the key and what to change."""


class DataError(GenieError):
    """A dataset is malformed; the message names the file, the record index and the field."""

    def __init__(self, message: str, file: str | None = None, index: int | None = None, field: str | None = None):
        where = ""
        if file is not None:
            where = f"{file}"
            if index is not None:
                where += f":{index}"
            where += ": "
        if field is not None:
            message = f"field '{field}': {message}"
        super().__init__(where + message)
        self.file, self.index, self.field = file, index, field
