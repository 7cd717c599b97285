"""Training data: the prepared uint8 cache, labels aligned to it, and batch loaders.

Images stay uint8 from disk to the device: the loader gathers a whole batch from memory-mapped
cache files, augments it in worker processes and hands over a uint8 tensor; conversion to float
and normalisation happen on the device (`to_model_input`), where they cost nothing. Every random
draw of a batch is seeded from (seed, epoch, batch number, rank), so an epoch replays
exactly after a resume and does not depend on the number of loader workers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bengaliai.competition import COMPONENTS, image_parquet_name, seen_graphemes
from bengaliai.errors import DataError
from bengaliai.prepare import cache_dir


@dataclass(frozen=True)
class DataConfig:
    """Where the prepared data is and how it is batched."""

    input: str = "input"
    cache: str = "crop128"
    batch_size: int = 64
    workers: int = 2
    # Mean and std of the inverted uint8 images scaled to [0, 1]; ink is sparse, so both are small.
    mean: float = 0.06
    std: float = 0.2


class ImageStore:
    """Random access to the images of several cache files, memory-mapped, in one index space."""

    def __init__(self, arrays: Sequence[np.ndarray], image_ids: Sequence[str]) -> None:
        self.arrays = list(arrays)
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])
        self.image_ids = list(image_ids)
        if self.offsets[-1] != len(self.image_ids):
            raise ValueError(f"{self.offsets[-1]} images but {len(self.image_ids)} ids")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.arrays[0].shape[1:])  # type: ignore[return-value]

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """A contiguous (len(indices), H, W) uint8 copy of the given images, in the given order."""
        out = np.empty((len(indices), *self.image_shape), dtype=np.uint8)
        files = np.searchsorted(self.offsets, indices, side="right") - 1
        for f in np.unique(files):
            mask = files == f
            out[mask] = self.arrays[f][indices[mask] - self.offsets[f]]
        return out


def open_cache(input_dir: Path, tag: str, split: str) -> ImageStore:
    """Memory-map every prepared file of a split, in file order (written by ``bengaliai prepare``)."""
    folder = cache_dir(input_dir, tag)
    arrays, ids = [], []
    for index in itertools.count():
        stem = folder / Path(image_parquet_name(split, index)).stem
        if not stem.with_suffix(".npy").exists():
            break
        arrays.append(np.load(stem.with_suffix(".npy"), mmap_mode="r"))
        ids += pd.read_csv(stem.with_suffix(".csv"), dtype=str)["image_id"].tolist()
    if not arrays:
        raise DataError(folder, f"no prepared {split} images here; run `bengaliai prepare --input {input_dir}` first")
    return ImageStore(arrays, ids)


def align_labels(store: ImageStore, labels: pd.DataFrame, source: Path) -> np.ndarray:
    """(N, 4) int64 labels in the store's order: the three components, then the seen-grapheme index.

    The 4th column indexes ``seen_graphemes()`` (the auxiliary head's classes) and is -1 for a
    grapheme outside the real training set.
    """
    by_id = labels.set_index("image_id")
    missing = pd.Index(store.image_ids).difference(by_id.index)
    if len(missing):
        raise DataError(source, f"{len(missing)} cached images have no labels, e.g. {', '.join(missing[:3])}")
    rows = by_id.loc[store.image_ids]
    grapheme_index = {g.text: i for i, g in enumerate(seen_graphemes())}
    aux = rows["grapheme"].map(grapheme_index).fillna(-1).to_numpy(dtype=np.int64)
    return np.column_stack([rows[list(COMPONENTS)].to_numpy(dtype=np.int64), aux])


class EpochBatches(torch.utils.data.Sampler):
    """Yields ``(epoch, batch number, indices)`` per batch: a seeded permutation per epoch.

    With several processes each rank takes an interleaved share of every global batch, so the
    union of the ranks' batches is the single-process batch. ``start_batch`` skips batches already
    done when a run resumes inside an epoch.
    """

    def __init__(
        self,
        indices: np.ndarray,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.indices = np.asarray(indices)
        self.batch_size = batch_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        n = len(self.indices)
        full = n // self.batch_size
        return full if self.drop_last or n % self.batch_size == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        order = np.arange(len(self.indices))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.indices))
        for b in range(self.start_batch, len(self)):
            positions = order[b * self.batch_size : (b + 1) * self.batch_size][self.rank :: self.world_size]
            yield self.epoch, b, self.indices[positions]


class AugmentedBatches(torch.utils.data.Dataset):
    """Turns a sampler key into a uint8 image batch (B, 1, H, W), its labels and its store indices."""

    def __init__(self, store: ImageStore, labels: np.ndarray, transform: Any | None, seed: int, rank: int = 0) -> None:
        self.store, self.labels, self.transform = store, labels, transform
        self.seed, self.rank = seed, rank

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, key: tuple[int, int, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        epoch, batch, indices = key
        images = self.store.gather(indices)
        if self.transform is not None:
            # One seed per (epoch, batch, rank): an epoch replays exactly after a resume, whatever the
            # worker that draws it. (Seeding per image would cost as much as a fifth of the augmentation.)
            self.transform.set_random_seed(int(np.random.SeedSequence([self.seed, epoch, batch, self.rank]).generate_state(1)[0]))
            for i in range(len(images)):
                images[i] = self.transform(image=images[i])["image"]
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(self.labels[indices]), torch.from_numpy(indices)


def make_loader(
    dataset: AugmentedBatches, sampler: EpochBatches, workers: int, pin_memory: bool
) -> torch.utils.data.DataLoader:
    """A loader over whole batches (no per-image collate); workers stay alive across epochs."""
    return torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


def to_model_input(images: torch.Tensor, config: DataConfig, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 (B, 1, H, W) on the host -> normalised float on the device."""
    x = images.to(device, non_blocking=True).float().div_(255.0).sub_(config.mean).div_(config.std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x

