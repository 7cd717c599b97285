"""Training images from the main input plus extra sources (``data.extra``), checked before any work.

An extra source is a folder in the competition's training format (train.csv and
train_image_data_*.parquet: real handwriting from ``bengaliai import``, renders of graphemes train
lacks from ``bengaliai synth``, ...) prepared with the same cache settings as the main input. Its
images join every fold's training split; validation and the out-of-fold scores stay on the main
input alone, so scores remain comparable between experiments with and without extra data. A
source prepared with other settings, with labels out of range or with image ids that collide
with another source is refused with one message before training starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.labels import read_train_labels
from bengaliai.data.prepare import cache_dir, cache_settings
from bengaliai.data.supervision import ALL, mask_labels, per_source
from bengaliai.training.loader import DataConfig, ImageStore, align_labels, open_cache

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


@dataclass(frozen=True)
class TrainingData:
    """The main input's images first, then each extra source's, in one store with aligned labels."""

    store: ImageStore
    labels: np.ndarray
    n_main: int
    extra: tuple[ExtraSource, ...]

    @property
    def main_ids(self) -> list[str]:
        return self.store.image_ids[: self.n_main]


def open_training_data(config: DataConfig, preprocess: dict[str, Any]) -> TrainingData:
    """Open the main cache and every ``config.extra`` source; check them against each other."""
    input_dir = Path(config.input)
    main = open_cache(input_dir, config.cache, "train", config.cache_root())
    main_csv = input_dir / TRAIN_CSV
    labels = [align_labels(main, read_train_labels(main_csv), main_csv)]
    files = list(main.files or [])
    owner = pd.Series(main_csv.as_posix(), index=pd.Index(main.image_ids))
    sizes = []
    heads = per_source(config.extra_heads, len(config.extra))
    for folder, entry in zip(map(Path, config.extra), heads, strict=True):
        store, source_labels = _open_extra(folder, config.cache, preprocess)
        source_labels = mask_labels(source_labels, entry)
        ids = pd.Index(store.image_ids)
        taken = ids[ids.isin(owner.index)]
        if len(taken):
            raise DataError(
                folder / TRAIN_CSV,
                f"{len(taken)} image id(s) also in {owner[taken[0]]}, e.g. {taken[0]}: every source needs ids of its "
                "own (`bengaliai import` and `synth` use their own prefixes)",
            )
        owner = pd.concat([owner, pd.Series((folder / TRAIN_CSV).as_posix(), index=ids)])
        files += store.files or []
        labels.append(source_labels)
        sizes.append(len(store))
    store = ImageStore.from_files(files) if config.extra else main
    offsets = np.cumsum([len(main), *sizes])
    shares = list(config.extra_share) or [0.0] * len(sizes)
    extra = tuple(
        ExtraSource(Path(folder), np.arange(offsets[k], offsets[k] + sizes[k]), shares[k], heads[k])
        for k, folder in enumerate(config.extra)
    )
    return TrainingData(store, np.concatenate(labels), len(main), extra)


def _open_extra(folder: Path, tag: str, preprocess: dict[str, Any]) -> tuple[ImageStore, np.ndarray]:
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
    store = open_cache(folder, tag, "train")
    return store, align_labels(store, read_train_labels(folder / TRAIN_CSV), folder / TRAIN_CSV)


def extra_per_batch(global_batch: int, n_train: int, extra: Sequence[ExtraSource]) -> list[int]:
    """Images of each extra source in every global batch: its share of the batch, or with no share
    set, its share of all training images (as if concatenated); at least one each."""
    total = n_train + sum(len(source.indices) for source in extra)
    counts = [max(1, round(global_batch * (source.share or len(source.indices) / total))) for source in extra]
    if global_batch - sum(counts) < 1:
        raise BengaliaiError(
            f"data.extra_share: a batch of {global_batch} leaves no room for the main input's images after "
            f"{counts} extra images; use a larger data.batch_size or smaller shares"
        )
    return counts


def held_out_overlap(data: TrainingData, held_out: np.ndarray) -> list[tuple[int, int]]:
    """Per extra source: (graphemes, images) it shows of the graphemes the folds hold out as unseen.

    ``held_out`` marks the main input's rows that are unseen in the folds file. A source drawing them
    (e.g. ``synth --roots-from`` draws all 1,295 training graphemes) makes the unseen out-of-fold
    scores a measurement of graphemes the model has seen after all.
    """
    def codes(rows: np.ndarray) -> np.ndarray:
        return rows[:, 0] * 10_000 + rows[:, 1] * 100 + rows[:, 2]

    hidden = np.unique(codes(data.labels[: data.n_main][np.asarray(held_out, dtype=bool)]))
    found = []
    for source in data.extra:
        rows = data.labels[source.indices]
        shown = codes(rows)
        # A source that does not supervise every component (data.extra_heads) does not teach graphemes.
        hit = np.isin(shown, hidden) & (rows[:, :3] >= 0).all(1)
        found.append((len(np.unique(shown[hit])), int(hit.sum())))
    return found


def describe_sources(
    data: TrainingData, counts: Sequence[int], overlap: Sequence[tuple[int, int]] | None = None
) -> list[dict[str, Any]]:
    """What the run folder records about its extra sources: folder, images, share and images per batch,
    and with ``overlap`` (held_out_overlap) how many held-out graphemes and images each one shows."""
    rows = [source.describe() | {"per_batch": int(n)} for source, n in zip(data.extra, counts, strict=True)]
    for row, (graphemes, images) in zip(rows, overlap or [], strict=False):
        row |= {"held_out_graphemes": graphemes, "held_out_images": images}
    return rows
