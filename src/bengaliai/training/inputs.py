"""One fold's training input, put together in one place: images, labels, the fold's rows, the batch plan.

``fold_inputs`` opens the main input's cache and every extra source (``data.extra``, see
``bengaliai.training.sources``) in one store with their labels aligned to it, masked where a source
does not teach a head (``data.extra_heads``); takes the fold's training and validation rows from the
folds file; and plans how many images of each extra source join every batch. Training asks for it
once per fold and builds its loaders from it; ``check_batch_size`` refuses, before any work, a batch
that would leave a fold no step. ``DataConfig`` says where the data is and how it is batched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.folds import align_folds, fold_masks
from bengaliai.data.prepare import cache_settings
from bengaliai.data.supervision import per_source, supervised_heads
from bengaliai.training.loader import ImageStore
from bengaliai.training.sources import ExtraSource, open_extra, open_source

log = logging.getLogger(__name__)

# How far (relative) rounding may move an extra source's share of a batch before a warning says so.
_SHARE_TOLERANCE = 0.1


@dataclass(frozen=True)
class DataConfig:
    """Where the prepared data is and how it is batched."""

    input: str = "input"
    cache: str = "crop128"
    # Folder holding the prepared caches (``<cache_dir>/<cache>/``); empty: ``<input>/cache``. On
    # Kaggle the input is read-only: prepare with --cache-dir /kaggle/working/cache and point here.
    cache_dir: str = ""
    # Images per step on each process (per GPU under torchrun; the global batch is this times the
    # number of processes, and the learning rate is yours to scale).
    batch_size: int = 64
    # Loader worker processes per training process; auto: the CPUs this process may use, shared
    # among the local processes, minus the one that trains (bengaliai.compute.threads).
    workers: int | Literal["auto"] = "auto"
    # Mean and std of the inverted uint8 images scaled to [0, 1]; ink is sparse, so both are small.
    mean: float = 0.06
    std: float = 0.2
    # Extra training sources: folders in the competition's training format (train.csv and
    # train_image_data_*.parquet, e.g. from `bengaliai import` or `bengaliai synth`), each prepared
    # with the same cache settings into its own <folder>/cache. Their images join every fold's
    # training split and never its validation or the out-of-fold scores.
    extra: tuple[str, ...] = ()
    # Share of every training batch drawn from each extra source, in order (e.g. [0.3]); empty: in
    # proportion to the sources' sizes, as if the sets were concatenated. An epoch is one pass over
    # the main training split; extra images are drawn without replacement pass after pass.
    extra_share: tuple[float, ...] = ()
    # What each extra source teaches, in order: "all" (default) or the heads it supervises joined by
    # "+", e.g. "root": its vowel and consonant labels, and its grapheme for the auxiliary head, are
    # left out of the loss (for a source whose other labels are missing or not to be trusted).
    extra_heads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        found = []
        if self.extra_share and len(self.extra_share) != len(self.extra):
            found.append(f"data.extra_share: {len(self.extra_share)} share(s) for {len(self.extra)} extra source(s)")
        if any(not 0 < share < 1 for share in self.extra_share) or sum(self.extra_share) >= 1:
            found.append(f"data.extra_share: each share must be in (0, 1) and their sum below 1, got {list(self.extra_share)}")
        if self.extra_heads and len(self.extra_heads) != len(self.extra):
            found.append(f"data.extra_heads: {len(self.extra_heads)} entries for {len(self.extra)} extra source(s)")
        for entry in self.extra_heads:
            try:
                supervised_heads(entry)
            except ValueError as error:
                found.append(f"data.extra_heads: {error}")
        if len(set(self.extra)) != len(self.extra):
            found.append(f"data.extra: a source is listed twice: {list(self.extra)}")
        if self.batch_size < 1:
            found.append(f"data.batch_size must be >= 1, got {self.batch_size}")
        if self.workers != "auto" and self.workers < 0:
            found.append(f"data.workers must be >= 0 or auto, got {self.workers}")
        if not self.std > 0:
            found.append(f"data.std must be > 0, got {self.std}")
        if found:
            raise BengaliaiError("\n".join(found))

    def cache_root(self) -> Path | None:
        """The folder of the caches when set apart from the input (None: inside the input folder)."""
        return Path(self.cache_dir) if self.cache_dir else None


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


@dataclass(frozen=True)
class FoldInputs:
    """What one fold trains and validates on, and how its batches are made up."""

    data: TrainingData
    # The settings that prepared the cache: inference must prepare test images exactly alike.
    preprocess: dict[str, Any]
    # Store indices of the main input's rows: the fold's training split, and its validation rows
    # (the fold plus every image of a grapheme the folds hold out as unseen).
    train_rows: np.ndarray
    valid_rows: np.ndarray
    # Images of a step over all processes, and how many of them each extra source gives.
    global_batch: int
    extra_per_batch: list[int]
    # What the run folder records of the extra sources (describe_sources).
    extra_sources: list[dict[str, Any]]

    @property
    def extra_pools(self) -> list[np.ndarray]:
        return [source.indices for source in self.data.extra]


def fold_inputs(
    config: DataConfig, fold_table: pd.DataFrame, fold: int, folds_path: Path, world_size: int = 1
) -> FoldInputs:
    """Everything fold ``fold`` trains on: the sources opened and checked, the fold's rows, the batch plan."""
    # Inference must prepare test images exactly like these: keep the settings with the weights.
    preprocess = cache_settings(Path(config.input), config.cache, config.cache_root())
    data = open_training_data(config, preprocess)
    aligned = align_folds(fold_table, data.main_ids, folds_path)
    train_mask, valid_mask = fold_masks(aligned, fold)
    train_rows, valid_rows = np.flatnonzero(train_mask), np.flatnonzero(valid_mask)
    # data.batch_size is per process: the global batch of a step is that times the world size.
    global_batch = config.batch_size * world_size
    per_batch = extra_per_batch(global_batch, len(train_rows), data.extra)
    sources = describe_sources(data, per_batch, held_out_overlap(data, aligned["unseen"].to_numpy(dtype=bool)))
    return FoldInputs(data, preprocess, train_rows, valid_rows, global_batch, per_batch, sources)


def check_batch_size(
    config: DataConfig, fold_table: pd.DataFrame, folds: list[int], folds_path: Path, world_size: int = 1
) -> None:
    """Refuse, before any work, a batch that gives an epoch no step on some fold's training split."""
    global_batch = config.batch_size * world_size
    per = f" ({config.batch_size} per process x {world_size})" if world_size > 1 else ""
    # Extra sources take their share of every batch (at least one image each); the rest is main input.
    extra = sum(max(1, round(global_batch * share)) for share in config.extra_share) or len(config.extra)
    main_batch = global_batch - extra
    if main_batch < 1:
        raise BengaliaiError(
            f"data.batch_size: a batch of {global_batch}{per} leaves no room for the main input's images beside "
            f"{extra} from data.extra; use a larger batch or smaller data.extra_share"
        )
    for fold in folds:
        n_train = int(fold_masks(fold_table, fold)[0].sum())
        if n_train < main_batch:
            of_main = f" ({main_batch} of them from the main input)" if extra else ""
            raise BengaliaiError(
                f"data.batch_size: fold {fold} of {folds_path} has {n_train} training images, fewer than one "
                f"batch of {global_batch}{per}{of_main}: an epoch would train 0 steps; use data.batch_size <= "
                f"{max((n_train + extra) // world_size, 1)}"
            )


def open_training_data(config: DataConfig, preprocess: dict[str, Any]) -> TrainingData:
    """Open the main cache and every ``config.extra`` source; check them against each other."""
    input_dir = Path(config.input)
    main, main_labels = open_source(input_dir, config.cache, config.cache_root())
    main_csv = input_dir / TRAIN_CSV
    labels = [main_labels]
    files = list(main.files or [])
    owner = pd.Series(main_csv.as_posix(), index=pd.Index(main.image_ids))
    sizes = []
    heads = per_source(config.extra_heads, len(config.extra))
    for folder, entry in zip(map(Path, config.extra), heads, strict=True):
        store, source_labels = open_extra(folder, config.cache, preprocess, entry)
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


def extra_per_batch(global_batch: int, n_train: int, extra: Sequence[ExtraSource]) -> list[int]:
    """Images of each extra source in every global batch: its share of the batch, or with no share
    set, its share of all training images (as if concatenated); at least one each."""
    total = n_train + sum(len(source.indices) for source in extra)
    counts = [max(1, round(global_batch * (source.share or len(source.indices) / total))) for source in extra]
    for source, count in zip(extra, counts, strict=True):
        asked = source.share or len(source.indices) / total
        # Whole images: say so where that moves a source's share by more than a tenth of itself.
        if abs(count / global_batch - asked) > _SHARE_TOLERANCE * asked:
            what = (f"{source.path} asks for {asked:.1%} of every batch but" if source.share
                    else f"{source.path}: its share of the training images, {asked:.1%},")
            log.warning("data.extra_share: extra source %s gets %d image%s of %d, %.1f%% (whole images, at least one)",
                        what, count, "" if count == 1 else "s", global_batch, 100 * count / global_batch)
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
