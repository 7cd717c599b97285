"""Handwritten bare roots of imported folders, pooled, indexed by root and read one image at a time.

``synth --roots-from DIR [--roots-from DIR2 ...]`` draws graphemes on real letters from folders in
the competition's training format whose rows are all bare roots (root, 0, 0), such as ``bengaliai
import banglalekha`` writes. Several folders are pooled: the images of a root are those of the first
folder, then those of the next, each in its train.csv order, so an index depends only on the folders'
order and their train.csv files. Image ids must be unique across the folders.

The full BanglaLekha import holds about 120,000 images (4 GB of pixels), so nothing loads it whole:
each folder is first prepared as the raw cache (``bengaliai prepare --mode raw``:
``DIR/cache/raw/train_image_data_<i>.npy``, uint8, ink high, the 137x236 frame, written in bounded
memory and skipped when up to date), and each process then memory-maps those files and reads the few
images it draws, so the pages are shared through the OS page cache. The bank itself is the index: a
small array of (file, row) per root, cheap to pickle into worker processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.core.competition import HEIGHT, TRAIN_CSV, WIDTH
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.labels import read_train_labels
from bengaliai.data.prepare import cache_dir, find_image_files, prepare
from bengaliai.data.preprocess import PreprocessConfig

log = logging.getLogger(__name__)

RAW = PreprocessConfig(mode="raw")

# One imported folder, or several to pool in this order.
Folders = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def as_folders(folders: Folders) -> tuple[Path, ...]:
    """``folders`` as a tuple of paths; a single path gives a tuple of one."""
    if isinstance(folders, str | os.PathLike):
        return (Path(folders),)
    return tuple(Path(folder) for folder in folders)


def read_bare_roots(folder: Path) -> pd.DataFrame:
    """The labels of ``folder``'s train.csv; raises DataError naming it when missing or when a row
    is not a bare root (root, 0, 0)."""
    labels_path = folder / TRAIN_CSV
    if not labels_path.exists():
        raise DataError(labels_path, "missing: --roots-from needs a folder in the training format, e.g. "
                        "the output of `bengaliai import banglalekha`")
    labels = read_train_labels(labels_path)
    dressed = np.flatnonzero((labels["vowel_diacritic"] != 0) | (labels["consonant_diacritic"] != 0))
    if len(dressed):
        row = labels.iloc[dressed[0]]
        raise DataError(
            labels_path,
            f"{len(dressed)} rows are not bare roots (first: {row['image_id']} with vowel "
            f"{row['vowel_diacritic']}, consonant {row['consonant_diacritic']}); --roots-from needs "
            "rows (root, 0, 0) only",
        )
    return labels


def _check_apart(folders: Sequence[Path], labels: Sequence[pd.DataFrame]) -> None:
    """Raise when a folder is given twice or an image id occurs in two folders, naming both."""
    owner: dict[str, Path] = {}
    first_of: dict[Path, Path] = {}
    for folder, folder_labels in zip(folders, labels, strict=True):
        resolved = folder.resolve()
        if resolved in first_of:
            raise BengaliaiError(f"--roots-from {folder} is given twice (also as {first_of[resolved]})")
        first_of[resolved] = folder
        for image_id in folder_labels["image_id"]:
            if image_id in owner:
                raise DataError(
                    folder / TRAIN_CSV,
                    f"image id {image_id} is also in {owner[image_id] / TRAIN_CSV}; the pooled folders "
                    "need distinct image ids",
                )
        owner.update(dict.fromkeys(folder_labels["image_id"], folder))


def locate_images(folder: Path, labels: pd.DataFrame, workers: int) -> tuple[list[Path], np.ndarray]:
    """Prepare ``folder``'s raw cache when missing or stale; return its .npy files and, for each
    row of ``labels``, the (file, row) holding its image."""
    prepare(folder, RAW, workers=workers, splits=("train",))
    raw_dir = cache_dir(folder, RAW.tag)
    files = [raw_dir / f"{path.stem}.npy" for path in find_image_files(folder, ("train",))]
    where: dict[str, tuple[int, int]] = {}
    for file_index, npy in enumerate(files):
        ids = pd.read_csv(npy.with_suffix(".csv"), dtype=str, keep_default_na=False)["image_id"]
        where.update((image_id, (file_index, row)) for row, image_id in enumerate(ids))
    located = np.array([where[i] for i in labels["image_id"]], dtype=np.int64).reshape(-1, 2)
    return files, located


class RootBank:
    """The handwritten images of each grapheme root in one or several imported folders, pooled."""

    def __init__(self, folders: Folders, workers: int = 1) -> None:
        """Index ``folders`` (each a train.csv of bare roots plus its image files), preparing their
        raw caches first when missing or stale. Every train.csv is checked before any cache is
        prepared: raises DataError naming the file when a folder does not fit or an image id is in
        two folders."""
        self.folders = as_folders(folders)
        if not self.folders:
            raise BengaliaiError("--roots-from needs at least one folder")
        labels = [read_bare_roots(folder) for folder in self.folders]
        _check_apart(self.folders, labels)
        self._files: list[Path] = []
        parts: dict[int, list[np.ndarray]] = {}
        self._per_folder: list[dict[str, Any]] = []
        for folder, folder_labels in zip(self.folders, labels, strict=True):
            files, located = locate_images(folder, folder_labels, workers)
            located[:, 0] += len(self._files)
            self._files.extend(files)
            roots = folder_labels["grapheme_root"].to_numpy()
            present = np.unique(roots)
            for root in present:
                parts.setdefault(int(root), []).append(located[roots == root])
            self._per_folder.append({"path": str(folder), "images": len(folder_labels), "roots": len(present)})
            log.info("%s: %d handwritten images of %d roots", folder, len(folder_labels), len(present))
        # By root, then folder order, then label order: an index depends only on the folders' train.csv.
        self._index = {root: np.concatenate(parts[root]) for root in sorted(parts)}
        self._maps: list[np.ndarray] | None = None
        if len(self.folders) > 1:
            total = sum(folder["images"] for folder in self._per_folder)
            log.info("pooled %d folders: %d handwritten images of %d roots", len(self.folders), total, len(self._index))

    @property
    def roots(self) -> frozenset[int]:
        """The roots with at least one image in any folder."""
        return frozenset(self._index)

    def count(self, root: int) -> int:
        """How many images of ``root`` the folders hold together (0 if none)."""
        samples = self._index.get(root)
        return 0 if samples is None else len(samples)

    def image(self, root: int, k: int) -> np.ndarray:
        """Image ``k`` of ``root`` in the competition's polarity (dark ink on light), (137, 236) uint8."""
        if self._maps is None:
            self._maps = [np.load(path, mmap_mode="r") for path in self._files]
        file_index, row = self._index[root][k]
        raw = self._maps[file_index][row]
        if raw.shape != (HEIGHT, WIDTH):
            raise DataError(self._files[file_index], f"expected images of {HEIGHT}x{WIDTH}, got {raw.shape}")
        return np.subtract(255, raw, dtype=np.uint8)

    def describe(self) -> dict[str, Any]:
        """Totals over the pool ("images", "roots"), the folders joined by ", " ("path") and each
        folder's own counts ("folders": path, images, roots), for a manifest."""
        images = sum(len(samples) for samples in self._index.values())
        return {
            "path": ", ".join(str(folder) for folder in self.folders), "images": images,
            "roots": len(self._index), "folders": [dict(folder) for folder in self._per_folder],
        }

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps stay in the process that opened them; a worker opens its own on first use.
        return {**self.__dict__, "_maps": None}
