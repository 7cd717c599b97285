"""Training sources read from their caches: labels aligned to the images, extra sources checked first.

An extra source (``data.extra``) is a folder in the competition's training format (train.csv and
train_image_data_*.parquet: real handwriting from ``bengaliai import``, renders of graphemes train
lacks from ``bengaliai synth``, ...) prepared with the same cache settings as the main input. Its
images join every fold's training split; validation and the out-of-fold scores stay on the main
input alone, so scores remain comparable between experiments with and without extra data. A
source prepared with other settings or from other parquet files than it now holds, with labels out of
range or not spelling its graphemes, with rows that have no image, or with image ids that collide
with another source is refused with one message before training starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, TRAIN_CSV, seen_graphemes
from bengaliai.core.errors import DataError
from bengaliai.data.labels import check_grapheme_text, check_image_ids, read_train_labels
from bengaliai.data.prepare import cache_dir, cache_settings, check_cache_current
from bengaliai.data.supervision import ALL, mask_labels, supervised_heads
from bengaliai.training.loader import ImageStore, open_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtraSource:
    """One extra source inside the combined store: its folder, store indices and batch share."""

    path: Path
    indices: np.ndarray
    share: float
    heads: str = ALL

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "images": int(len(self.indices)), "share": round(self.share, 4), "heads": self.heads}


def align_labels(store: ImageStore, labels: pd.DataFrame, source: Path) -> np.ndarray:
    """(N, 4) int64 labels in the store's order: the three components, then the seen-grapheme index.

    The 4th column indexes ``seen_graphemes()`` (the auxiliary head's classes) and is -1 for a
    grapheme outside the real training set.
    """
    by_id = labels.set_index("image_id")
    missing = pd.Index(store.image_ids).difference(by_id.index)
    if len(missing):
        raise DataError(source, f"{len(missing)} cached images have no labels, e.g. {', '.join(missing[:3])}")
    # A row without its image would silently not train: refused, as prepare refuses it against the parquet files.
    cache = f"the cache {store.files[0].parent}" if store.files else "the cache"
    check_image_ids(labels["image_id"], store.image_ids, source, cache,
                    "remove these rows, or add their images and run `bengaliai prepare` again")
    rows = by_id.loc[store.image_ids]
    grapheme_index = {g.text: i for i, g in enumerate(seen_graphemes())}
    aux = rows["grapheme"].map(grapheme_index).fillna(-1).to_numpy(dtype=np.int64)
    return np.column_stack([rows[list(COMPONENTS)].to_numpy(dtype=np.int64), aux])


def open_source(
    folder: Path, tag: str, cache_root: Path | None = None, check_text: bool = False
) -> tuple[ImageStore, np.ndarray]:
    """A source's prepared training images, memory-mapped, and its labels in their order (``align_labels``).

    Refused when the parquet files changed since the cache was prepared from them (``check_cache_current``);
    ``check_text``: also when a row's grapheme is not what its labels spell (``check_grapheme_text``).
    """
    check_cache_current(folder, tag, "train", cache_root)
    store = open_cache(folder, tag, "train", cache_root)
    labels = read_train_labels(folder / TRAIN_CSV)
    if check_text:
        check_grapheme_text(labels, folder / TRAIN_CSV)
    return store, align_labels(store, labels, folder / TRAIN_CSV)


def open_extra(folder: Path, tag: str, preprocess: dict[str, Any], heads: str = ALL) -> tuple[ImageStore, np.ndarray]:
    """An extra source's images and labels, the heads it does not teach masked (``data.extra_heads``).

    Refused unless it is a training folder whose cache ``tag`` was prepared with ``preprocess``, the
    main input's settings (the model must see both alike), from its parquet files as they are now. A
    source that supervises every component must spell each row's grapheme as its labels say: the
    auxiliary head learns the grapheme, the component heads the labels.
    """
    if not (folder / TRAIN_CSV).is_file():
        raise DataError(folder, f"data.extra: no {TRAIN_CSV} here; an extra source is a folder in the competition's "
                                "training format (train.csv and train_image_data_*.parquet)")
    prepare_hint = (f"run `bengaliai prepare --input {folder} --splits train --mode {preprocess.get('mode')} "
                    f"--size {preprocess.get('size')}`")
    if not (cache_dir(folder, tag)).is_dir():
        raise DataError(cache_dir(folder, tag), f"data.extra: this source has no {tag} cache; {prepare_hint}")
    settings = cache_settings(folder, tag)
    if settings != preprocess:
        raise DataError(
            cache_dir(folder, tag),
            f"data.extra: prepared with {settings}, but the main input's cache was prepared with {preprocess}; "
            f"{prepare_hint} (the same settings: the model must see both alike)",
        )
    store, labels = open_source(folder, tag, check_text=supervised_heads(heads) == COMPONENTS)
    return store, mask_labels(labels, heads)
