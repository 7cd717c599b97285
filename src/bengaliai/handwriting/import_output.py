"""An import's output folder: refused when it holds files no import wrote, written all or nothing.

``bengaliai import`` builds its files in a temporary folder (``<OUT>.tmp-<pid>`` beside a new OUT,
``OUT/.import-tmp-<pid>`` inside an existing one) and moves them into place only once every file is
complete, so a failure (an unusable source, a full disk, Ctrl-C) leaves OUT as it was. OUT may be
missing, empty, or hold an earlier import: its own files and the ``cache/`` that ``bengaliai
prepare`` adds. An earlier import of the same dataset, source, seed, limit and placement is replaced
(the rerun of a command); one made otherwise only with ``force``; a folder holding anything else is
never written into.
Replacing an import removes its ``cache/`` too: prepared from the old images, it would be stale.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import blocking_file

log = logging.getLogger(__name__)

IMPORT_JSON = "import.json"
SOURCES_CSV = "sources.csv"
DERIVED = ("cache",)  # what `bengaliai prepare` writes into a folder it reads
LEFTOVER = ".import-"  # the names of the hidden folders an import makes inside an existing OUT
# The manifest fields that decide an import's output, with the words an error names them by.
IDENTITY = {
    "dataset": "dataset", "source": "source", "seed": "seed", "limit_per_class": "--limit-per-class",
    "settings": "placement settings",
}


def as_json(value: Any) -> Any:
    """``value`` as it reads back from import.json (tuples become lists), so that the two compare."""
    return json.loads(json.dumps(value))


def _earlier_import(out: Path) -> dict[str, Any] | None:
    """OUT's import.json when it is an import's manifest; None when there is none."""
    path = out / IMPORT_JSON
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BengaliaiError(
            f"--out {out}: {path} is not readable ({type(error).__name__}), so whatever is in {out} may not be an "
            "import's; choose another --out or empty it"
        ) from None
    if not isinstance(manifest, dict) or "dataset" not in manifest or not isinstance(manifest.get("files"), list):
        raise BengaliaiError(
            f"--out {out}: {path} is not an import's manifest (no dataset and files fields); choose another --out "
            "or empty it"
        )
    return manifest


def check_out(out: Path, identity: Mapping[str, Any], force: bool = False) -> None:
    """Raise BengaliaiError, before any work, unless the import described by ``identity`` (the
    IDENTITY fields of its manifest) may write OUT: missing, empty, or holding an earlier import
    of the same identity, or of another one when ``force``."""
    out = Path(out)
    blocker = blocking_file(out)
    if blocker == out:
        raise BengaliaiError(f"--out {out} is a file; expected a folder (new, empty, or an earlier import's)")
    if blocker is not None:
        raise BengaliaiError(f"--out {out}: {blocker} is a file, not a folder; choose another --out")
    if not out.exists():
        return
    try:
        entries = sorted(p.name for p in out.iterdir() if not p.name.startswith(LEFTOVER))
    except OSError as error:
        raise BengaliaiError(f"--out {out}: cannot list the folder ({error.strerror or error})") from None
    if not entries:
        return
    earlier = _earlier_import(out)
    own = set()
    if earlier is not None:
        files = [f.get("name") for f in earlier["files"] if isinstance(f, dict)]
        own = {IMPORT_JSON, TRAIN_CSV, SOURCES_CSV, *DERIVED, *files}
    foreign = [name for name in entries if name not in own]
    if foreign:
        what = "image files" if any(name.endswith(".parquet") for name in foreign) else "files"
        shown = ", ".join(foreign[:3]) + (f", ... ({len(foreign)} in all)" if len(foreign) > 3 else "")
        raise BengaliaiError(
            f"--out {out} holds {what} that no import wrote ({shown}); choose a new or empty folder for --out"
        )
    assert earlier is not None
    differs = [words for key, words in IDENTITY.items() if as_json(earlier.get(key)) != as_json(identity[key])]
    if differs and not force:
        raise BengaliaiError(
            f"--out {out} holds an earlier import with another {', '.join(differs)} ({earlier['dataset']}, seed "
            f"{earlier.get('seed')}); pass --force to replace it and its cache/, or choose another --out"
        )
    log.info("replacing the earlier import in %s (%s)", out, earlier["dataset"])


def _discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        log.warning("could not remove %s; remove it by hand", folder)


def _leftovers(out: Path) -> list[Path]:
    """Folders that a killed import left inside OUT (its files in the making, or an earlier import set aside)."""
    return [p for p in out.iterdir() if p.name.startswith(LEFTOVER)] if out.is_dir() else []


@contextlib.contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Yield an empty folder to write the import into; when the block succeeds its files become
    OUT's (an earlier import there is removed), when the block fails it is removed and OUT stays
    as it was.

    A new OUT is built beside it and renamed into place, all at once. An existing OUT (empty or an
    earlier import; perhaps a mount point, the working folder or a link) is kept as a folder: the
    files are built in a hidden folder inside it and renamed into it, the earlier ones set aside
    first and removed last.
    """
    out = Path(out)
    target = out.resolve()  # a symbolic link's target is written, the link kept
    pid = os.getpid()
    stage = target / f"{LEFTOVER}tmp-{pid}" if target.exists() else target.with_name(f"{target.name}.tmp-{pid}")
    try:
        for leftover in _leftovers(target):
            log.warning("removing %s, left by an import that was killed", leftover)
            shutil.rmtree(leftover)
        if stage.exists():  # left by a killed import whose process id this one reuses
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
    except OSError as error:
        reason = error.strerror or error
        raise BengaliaiError(f"cannot write {out}: cannot create the folder {stage} ({reason})") from None
    try:
        yield stage
        if stage.parent == target:
            _move_into(stage, target, out)
        else:
            _rename(stage, target, out)
    except BaseException:
        _discard(stage)
        raise


def _rename(stage: Path, target: Path, out: Path) -> None:
    try:
        os.rename(stage, target)
    except OSError as error:
        raise BengaliaiError(
            f"cannot write {out}: moving the finished import into place failed ({error.strerror or error})"
        ) from None


def _move_into(stage: Path, target: Path, out: Path) -> None:
    """Replace OUT's entries by ``stage``'s: the earlier ones are set aside (and back on a failure), removed last."""
    aside = target / f"{LEFTOVER}old-{os.getpid()}"
    earlier = [p for p in target.iterdir() if p not in (stage, aside)]
    moved: list[Path] = []
    try:
        aside.mkdir()
        for path in earlier:
            os.rename(path, aside / path.name)
        for path in sorted(stage.iterdir(), key=lambda p: p.name == IMPORT_JSON):  # the manifest last
            os.rename(path, target / path.name)
            moved.append(target / path.name)
    except OSError as error:
        for path in moved:  # back as it was: the new files out, the earlier ones in
            os.rename(path, stage / path.name)
        for path in aside.iterdir() if aside.exists() else ():
            os.rename(path, target / path.name)
        _discard(aside)
        raise BengaliaiError(
            f"cannot write {out}: moving the finished import into place failed ({error.strerror or error})"
        ) from None
    _discard(aside)
    stage.rmdir()
