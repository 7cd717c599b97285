"""Where things are under /kaggle/input: the folders that hold a marker, a few levels deep.

Kaggle mounts each attached source (the competition, a dataset, an earlier kernel's output) in a
folder of its own under /kaggle/input, named by its slug, and has changed that layout before; so the
kernels look for what they need by a file or folder it holds, not by a fixed path.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

SEARCH_DEPTH = 4


def find_all(input_root: Path, marker: str) -> list[Path]:
    """The paths matching ``marker`` (a name or a relative path) at the shallowest depth under ``input_root``."""
    for depth in range(SEARCH_DEPTH):
        found = sorted(Path(input_root).glob("/".join(["*"] * depth + [marker])))
        if found:
            return found
    return []


def find_one(
    input_root: Path, marker: str, what: str, hint: str = "attach it to the kernel", files_only: bool = False
) -> Path:
    """The first path under ``input_root`` (a few levels deep) matching ``marker``, a file where ``files_only``;
    one clear error, naming what ``input_root`` holds and ending with ``hint``, if none does."""
    found = [path for path in find_all(input_root, marker) if not files_only or path.is_file()]
    if not found:
        present = ", ".join(sorted(p.name for p in input_root.iterdir())) if input_root.is_dir() else "nothing"
        raise BengaliaiError(f"no {what} under {input_root} (no {marker} found; it holds: {present}); {hint}")
    if len(found) > 1:
        log.warning("several %s: %s; using the first", what, ", ".join(map(str, found)))
    return found[0]


def find_dir(input_root: Path, marker: str, what: str) -> Path:
    """The folder under ``input_root`` (a few levels deep) that holds ``marker``; one clear error if none does."""
    return find_one(input_root, marker, what).parent
