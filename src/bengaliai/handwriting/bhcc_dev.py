"""A writer split of ``bengaliai import bhcc``: held-out writers as a real-handwriting dev folder, never trained on.

``--dev-writers`` names corpus writers (1-5) whose grapheme cells are kept out of training and
written instead as the folder ``benchmarks/eval_real_handwriting.py --real`` reads: one 137x236
PNG per image (dark ink on light paper, the very frame the parquet would have held) named
``<image_id>.png``, ``labels.csv`` with the competition's label columns, plus sources.csv and
import.json like the other imports. Whole writers are held out, so the split measures how the
model reads a hand it has never seen. The folder is written all or nothing by ``import_output``;
its import.json lists every file it wrote, so ``check_out`` recognises a rerun's folder as its own.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from bengaliai.core.competition import HEIGHT, TRAIN_COLUMNS, WIDTH
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.handwriting.import_output import IMPORT_JSON, SOURCES_CSV

log = logging.getLogger(__name__)

LABELS_CSV = "labels.csv"
DEV_NOTE = (
    "real handwriting of held-out writers, never trained on: <image_id>.png (137x236, dark ink on light paper) "
    "and labels.csv, for benchmarks/eval_real_handwriting.py --real"
)


def default_dev_out(out: Path) -> Path:
    """Where the held-out writers go when ``--dev-out`` is not given: ``<out>_dev`` beside OUT."""
    return out.with_name(f"{out.name}_dev")


def held_out_writers(writers: Iterable[int], count: int) -> tuple[int, ...]:
    """The writer numbers of ``--dev-writers``, sorted, once each; refused outside 1..count or when all are held out."""
    held = tuple(sorted(set(writers)))
    bad = [w for w in held if not 1 <= w <= count]
    if bad:
        raise BengaliaiError(
            f"--dev-writers {' '.join(map(str, bad))}: no such writer; the corpus's writers are 1-{count}"
        )
    if len(held) == count:
        raise BengaliaiError(
            f"--dev-writers holds out all {count} writers, which leaves nothing to train on; hold out at most "
            f"{count - 1}"
        )
    return held


def check_dev_out(dev_out: Path, out: Path, signs_out: Path) -> None:
    """Refuse a dev folder that is OUT or SIGNS_OUT: held-out writers must never share a training folder."""
    for flag, folder in (("--out", out), ("--signs-out", signs_out)):
        if dev_out.resolve() == folder.resolve():
            raise BengaliaiError(
                f"--dev-out {dev_out} is {flag} itself; the held-out writers need a folder of their own"
            )


def check_dev_writers_unchanged(out: Path, held: Sequence[int], force: bool) -> None:
    """Refuse, unless ``force``, to replace an import in OUT that held out other writers.

    Run after ``check_out``, which has vetted OUT's import.json. Rerunning without a split over a
    split import would train on writers whose dev folder still lies beside OUT."""
    path = out / IMPORT_JSON
    if force or not path.exists():
        return
    earlier = [int(w) for w in json.loads(path.read_text(encoding="utf-8")).get("dev_writers", [])]
    if earlier != list(held):
        raise BengaliaiError(
            f"--out {out} holds an earlier import with writers {_words(earlier)} held out, this one holds out "
            f"{_words(held)}; pass --force to replace it (and remake or remove a dev folder of writers it would now "
            "train on), or choose another --out"
        )


def _words(writers: Sequence[int]) -> str:
    return " ".join(map(str, writers)) or "none"


def write_dev_folder(stage: Path, held: Sequence[int], labels: pd.DataFrame, sources: pd.DataFrame,
                     images: np.ndarray, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write one PNG per row of ``labels`` (its ``images`` frame), labels.csv, sources.csv and import.json.

    ``labels`` has the competition's train.csv columns, ``sources`` a ``writer`` column; returns
    the manifest written, which names the ``held`` writers and counts their images."""
    if tuple(labels.columns) != TRAIN_COLUMNS or images.shape != (len(labels), HEIGHT, WIDTH):
        raise ValueError(f"labels {tuple(labels.columns)} and images {images.shape} do not match")
    names = []
    for image_id, image in zip(labels["image_id"], images):
        name = f"{image_id}.png"
        if not cv2.imwrite(str(stage / name), image):
            raise BengaliaiError(f"cannot write {stage / name}: OpenCV could not encode or save the PNG")
        names.append(name)
    write_csv(labels, stage / LABELS_CSV)
    write_csv(sources, stage / SOURCES_CSV)
    writers = Counter(int(w) for w in sources["writer"])
    manifest = {
        **manifest, "content": DEV_NOTE, "dev_writers": list(held), "images": len(labels), "labels": LABELS_CSV,
        "files": [{"name": LABELS_CSV}, *({"name": name, "images": 1} for name in names)],
        "writers": {str(w): writers[w] for w in held},
        "sources": SOURCES_CSV, "complete": True,
    }
    write_json(manifest, stage / IMPORT_JSON)
    return manifest
