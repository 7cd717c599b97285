"""synth.json, what a synthetic dataset was written with, and the guard that keeps ``bengaliai synth``
from writing over data it did not write.

synth writes synth.json first (``complete: false``) and again when every file is written. An output
folder holding competition files but no synth.json (the real data, an import) is refused, and so is a
complete synthetic set of other settings, unless ``force``: synth replaces only what it can write again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bengaliai.core.competition import CLASS_MAP_CSV, SAMPLE_SUBMISSION_CSV, TEST_CSV, TRAIN_CSV
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import FOLDS_CSV

log = logging.getLogger(__name__)

TEST_LABELS_CSV = "test_labels.csv"
# Says that a directory holds a synthetic dataset, with what settings, and whether it is complete.
SYNTH_MANIFEST = "synth.json"
# What synth writes besides the image files; any of them in an output folder means a dataset is there.
_WRITTEN = (TRAIN_CSV, TEST_CSV, CLASS_MAP_CSV, SAMPLE_SUBMISSION_CSV, TEST_LABELS_CSV)
# Manifest entries that follow from the settings (counts of what was drawn), not settings themselves.
_DERIVED = (
    "complete", "graphemes.distinct_seen", "graphemes.distinct_unseen", "graphemes.unseen_pool", "letterforms.drawn",
)


def dataset_files(out_dir: Path) -> list[str]:
    """The competition-format files already in ``out_dir`` (what synth would write over), sorted."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    images = [p.name for p in out_dir.glob("*_image_data_*.parquet")]
    return sorted([name for name in _WRITTEN if (out_dir / name).exists()] + images)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """``out_dir``'s synth.json, or None when it has none (or one that is not a JSON object)."""
    try:
        data = json.loads((Path(out_dir) / SYNTH_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of dotted keys: ``{"render.pen_p": 0.5, ...}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        flat.update(_flat(value, f"{name}.") if isinstance(value, Mapping) else {name: value})
    return flat


def setting_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"seed 0 -> 1"`` for each setting that two manifests record differently (counts of what was drawn aside)."""
    before, after = _flat(old), _flat(json.loads(json.dumps(new)))
    keys = [*after, *(k for k in before if k not in after)]
    return [
        f"{k} {_short(before.get(k))} -> {_short(after.get(k))}"
        for k in keys if not k.startswith(_DERIVED) and before.get(k) != after.get(k)
    ]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def refuse_foreign(out_dir: Path, force: bool) -> None:
    """Refuse competition files in ``out_dir`` that synth did not write (no synth.json), unless ``force``."""
    found = dataset_files(out_dir)
    if not found or read_manifest(out_dir) is not None:
        return
    if not force:
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise BengaliaiError(
            f"{out_dir} already holds competition files that `bengaliai synth` did not write ({shown}; no "
            f"{SYNTH_MANIFEST}): pass --force to replace them, or choose another --out"
        )
    log.warning("replacing the competition files in %s that synth did not write (--force)", out_dir)


def check_settings(out_dir: Path, manifest: Mapping[str, Any], force: bool) -> None:
    """Refuse a complete synthetic set in ``out_dir`` with other settings, unless ``force``; the same
    settings are written again (the same bytes, so nothing is lost and a damaged set is repaired)."""
    old = read_manifest(out_dir)
    if old is None:
        return
    if not old.get("complete"):
        log.warning("%s holds an unfinished synthetic dataset (%s: complete false): replacing it", out_dir, SYNTH_MANIFEST)
        return
    changes = setting_changes(old, manifest)
    if not changes:
        log.info("%s already holds a synthetic dataset with these settings: writing it again", out_dir)
        return
    if not force:
        shown = ", ".join(changes[:3]) + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")
        raise BengaliaiError(
            f"{out_dir} holds a synthetic dataset written with other settings ({shown}): pass --force to "
            "replace it, or choose another --out"
        )
    log.warning("replacing the synthetic dataset in %s (--force): %s", out_dir, ", ".join(changes))
    if (out_dir / FOLDS_CSV).exists():
        log.warning("%s was made from the dataset being replaced: run `bengaliai folds --force` next", out_dir / FOLDS_CSV)
