"""Atomic writes: a file appears complete under its final name or not at all."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)


def blocking_file(path: Path) -> Path | None:
    """``path`` itself, or its nearest existing ancestor, when that is a file: then no folder can be made there."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _make_parent(path: Path) -> None:
    """Create the folder of ``path``, or raise one BengaliaiError saying why it cannot be."""
    blocker = blocking_file(path.parent)
    if blocker is not None:
        raise BengaliaiError(f"cannot write {path}: {blocker} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BengaliaiError(
            f"cannot write {path}: cannot create the folder {error.filename or path.parent} ({error.strerror or error})"
        ) from None


def check_folder(path: Path) -> None:
    """Raise BengaliaiError when ``path`` cannot be an output folder: it, or a folder above it, is a file.

    Creates nothing, so a command can check its ``--out`` folder before its other checks.
    """
    path = Path(path)
    blocker = blocking_file(path)
    if blocker == path:
        raise BengaliaiError(f"cannot write to {path}: it is a file, not a folder")
    if blocker is not None:
        raise BengaliaiError(f"cannot write to {path}: {blocker} is a file, not a folder")


def make_folder(path: Path) -> Path:
    """Create the output folder ``path`` and its parents, or raise one BengaliaiError saying why not."""
    path = Path(path)
    check_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BengaliaiError(
            f"cannot write to {path}: cannot create the folder {error.filename or path} ({error.strerror or error})"
        ) from None
    return path


def ensure_writable(path: Path) -> None:
    """Raise BengaliaiError unless a file can be written at ``path``, before any work is done.

    Creates the parent folder and writes, then removes, a temporary file beside ``path``: the
    same operations atomic_path needs at the end, so a read-only disk, a parent that is a file
    or a missing permission fails in a second instead of after an hour of inference.
    """
    path = Path(path)
    _make_parent(path)
    if path.is_dir():
        raise BengaliaiError(f"cannot write {path}: it is a folder; expected a file name")
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{path.stem}.probe", dir=path.parent)
    except OSError as error:
        raise BengaliaiError(
            f"cannot write {path}: {path.parent} does not accept new files ({error.strerror or error})"
        ) from None
    os.close(handle)
    _discard(Path(probe))


def _discard(tmp: Path) -> None:
    """Remove a temporary file; a failure is only logged, so it never hides the error that matters."""
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("could not remove the temporary file %s: %s", tmp, error.strerror or error)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name keeps the real suffix (some writers choose the format from it) and
    starts with a dot so that globbing for outputs never picks it up. When the block fails, its
    error is what propagates (the temporary file is removed on a best-effort basis); an OS error
    writing the temporary file itself, or renaming it into place, becomes one BengaliaiError
    naming ``path``.
    """
    path = Path(path)
    _make_parent(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
    except OSError as error:
        _discard(tmp)
        if error.filename is not None and Path(os.fsdecode(error.filename)) == tmp:
            raise BengaliaiError(f"cannot write {path}: {error.strerror or error}") from error
        raise
    except BaseException:
        _discard(tmp)
        raise
    try:
        os.replace(tmp, path)
    except OSError as error:
        _discard(tmp)
        raise BengaliaiError(f"cannot write {path}: renaming {tmp.name} into place failed ({error.strerror or error})") from error


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV without the index, atomically, UTF-8 with Unix newlines."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")


def write_json(data: Any, path: Path) -> None:
    """Write JSON (indented, UTF-8, non-ASCII kept readable), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
