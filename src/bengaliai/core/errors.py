"""Errors that the CLI turns into one clear message on stderr and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class BengaliaiError(Exception):
    """A failure the user can fix: bad input, missing credentials, a wrong option."""


class DataError(BengaliaiError):
    """A data file that does not match the competition format.

    The message names the file, the row where one is known, what was found and what was
    expected, so the user can find the problem without a debugger.
    """

    def __init__(self, path: Path | str, problem: str, row: int | None = None) -> None:
        where = f"{path}" if row is None else f"{path}, row {row}"
        super().__init__(f"{where}: {problem}")
        self.path = Path(path)
        self.problem = problem
        self.row = row
