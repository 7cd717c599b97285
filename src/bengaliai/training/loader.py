"""Training batches: the prepared uint8 cache memory-mapped, seeded batch samplers and loaders.

Images stay uint8 from disk to the device: the loader gathers a whole batch from memory-mapped
cache files, augments it in worker processes and hands over a uint8 tensor; conversion to float
and normalisation happen on the device (`to_model_input`), where they cost nothing. Every random
draw of a batch is seeded from (seed, epoch, batch number, rank), so an epoch replays
exactly after a resume and does not depend on the number of loader workers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from bengaliai.compute.threads import worker_init
from bengaliai.core.competition import image_parquet_name
from bengaliai.core.errors import DataError
from bengaliai.data.prepare import cache_dir


class ImageStore:
    """Random access to the images of several cache files, memory-mapped, in one index space.

    Built from files (``from_files``), it pickles as paths and reopens its memory maps where it is
    unpickled, so a loader worker started by spawn or forkserver (the default from Python 3.14)
    gets a few KB instead of a copy of the whole cache.
    """

    def __init__(
        self, arrays: Sequence[np.ndarray], image_ids: Sequence[str], files: Sequence[Path] | None = None
    ) -> None:
        self._arrays: list[np.ndarray] | None = list(arrays)
        self.files = [Path(f) for f in files] if files is not None else None
        self.offsets = np.cumsum([0] + [len(a) for a in arrays])
        self._shape: tuple[int, int] = tuple(arrays[0].shape[1:]) if len(arrays) else (0, 0)  # type: ignore[assignment]
        self._image_ids: list[str] | None = list(image_ids)
        if self.offsets[-1] != len(image_ids):
            raise ValueError(f"{self.offsets[-1]} images but {len(image_ids)} ids")

    @classmethod
    def from_files(cls, npy_files: Sequence[Path]) -> ImageStore:
        """Memory-map ``<stem>.npy`` files with their ``<stem>.csv`` id lists."""
        arrays = [np.load(path, mmap_mode="r") for path in npy_files]
        ids = [i for path in npy_files for i in _read_ids(Path(path).with_suffix(".csv"))]
        return cls(arrays, ids, files=npy_files)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.files is not None:
            state["_arrays"] = None
            state["_image_ids"] = None
        return state

    @property
    def arrays(self) -> list[np.ndarray]:
        if self._arrays is None:
            self._arrays = [np.load(path, mmap_mode="r") for path in self.files or ()]
        return self._arrays

    @property
    def image_ids(self) -> list[str]:
        if self._image_ids is None:
            self._image_ids = [i for path in self.files or () for i in _read_ids(path.with_suffix(".csv"))]
        return self._image_ids

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def image_shape(self) -> tuple[int, int]:
        return self._shape

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """A contiguous (len(indices), H, W) uint8 copy of the given images, in the given order."""
        out = np.empty((len(indices), *self.image_shape), dtype=np.uint8)
        files = np.searchsorted(self.offsets, indices, side="right") - 1
        arrays = self.arrays
        for f in np.unique(files):
            mask = files == f
            out[mask] = arrays[f][indices[mask] - self.offsets[f]]
        return out


def _read_ids(csv: Path) -> list[str]:
    return pd.read_csv(csv, dtype=str)["image_id"].tolist()


def open_cache(input_dir: Path, tag: str, split: str, cache_root: Path | None = None) -> ImageStore:
    """Memory-map every prepared file of a split, in file order (written by ``bengaliai prepare``)."""
    folder = cache_dir(input_dir, tag, cache_root)
    files = []
    for index in itertools.count():
        npy = folder / Path(image_parquet_name(split, index)).with_suffix(".npy").name
        if not npy.exists():
            break
        files.append(npy)
    if not files:
        where = f" --cache-dir {cache_root}" if cache_root is not None else ""
        raise DataError(folder, f"no prepared {split} images here; run `bengaliai prepare --input {input_dir}{where}` first")
    return ImageStore.from_files(files)


class EpochBatches(torch.utils.data.Sampler):
    """Yields ``(epoch, batch number, indices)`` per batch: a seeded permutation per epoch.

    With several processes each rank takes an interleaved share of every global batch, so the
    union of the ranks' batches is the single-process batch. ``start_batch`` skips batches already
    done when a run resumes inside an epoch.

    ``extra`` pools (the indices of extra training sources) add ``extra_per_batch[k]`` images of
    pool k to every batch, taken from a stream of seeded permutations of the pool (pass after
    pass), so an extra image recurs only after the whole pool has been seen. ``batch_size`` counts
    them: the main pool gives ``batch_size - sum(extra_per_batch)`` images a batch and sets the
    length of an epoch.
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
        extra: Sequence[np.ndarray] = (),
        extra_per_batch: Sequence[int] = (),
    ) -> None:
        self.indices = np.asarray(indices)
        self.batch_size = batch_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.extra = [np.asarray(pool) for pool in extra]
        self.extra_per_batch = [int(n) for n in extra_per_batch]
        if len(self.extra) != len(self.extra_per_batch):
            raise ValueError(f"{len(self.extra)} extra pools but {len(self.extra_per_batch)} counts")
        self.main_per_batch = batch_size - sum(self.extra_per_batch)
        if self.main_per_batch < 1 or any(n < 1 or len(p) == 0 for n, p in zip(self.extra_per_batch, self.extra)):
            raise ValueError(f"batch of {batch_size}: {self.extra_per_batch} extra images leave no room, or a pool is empty")
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        n = len(self.indices)
        full = n // self.main_per_batch
        return full if self.drop_last or n % self.main_per_batch == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        order = np.arange(len(self.indices))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.indices))
        size = self.main_per_batch
        for b in range(self.start_batch, len(self)):
            batch = self.indices[order[b * size : (b + 1) * size]]
            if self.extra:
                step = self.epoch * len(self) + b
                parts = [self._stream(k, step * n, n) for k, n in enumerate(self.extra_per_batch)]
                batch = np.concatenate([batch, *parts])
            yield self.epoch, b, batch[self.rank :: self.world_size]

    def _stream(self, pool: int, start: int, count: int) -> np.ndarray:
        """Items start..start+count of pool ``pool``'s endless stream of seeded permutations."""
        indices = self.extra[pool]
        out = []
        while count > 0:
            passes, offset = divmod(start, len(indices))
            order = np.random.default_rng([self.seed, 1_000_003 + pool, passes]).permutation(len(indices))
            take = order[offset : offset + count]
            out.append(indices[take])
            start, count = start + len(take), count - len(take)
        return np.concatenate(out)


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
        # One torch and one OpenCV thread per worker: the cores are already shared out.
        worker_init_fn=worker_init if workers > 0 else None,
    )


class Normalisation(Protocol):
    """What ``to_model_input`` reads of the data config (``inputs.DataConfig``): the normalisation."""

    @property
    def mean(self) -> float: ...

    @property
    def std(self) -> float: ...


def to_model_input(
    images: torch.Tensor,
    config: Normalisation,
    device: torch.device,
    channels_last: bool,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 (B, 1, H, W) on the host -> normalised float on the device.

    ``augment`` (device augmentation) gets the images in [0, 1] before normalisation, with 0 the
    background, and the batch's ``generator``.
    """
    x = images.to(device, non_blocking=True).float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if augment is not None:
        x = augment(x, generator)  # type: ignore[arg-type]
    return x.sub_(config.mean).div_(config.std)
