"""Handwritten bare roots of an imported folder, indexed by root and read one image at a time.

``synth --roots-from DIR`` draws graphemes on real letters from a folder in the competition's
training format whose rows are all bare roots (root, 0, 0), such as ``bengaliai import
banglalekha`` writes. The full BanglaLekha import holds about 120,000 images (4 GB of pixels), so
nothing loads it whole: the folder is first prepared as the raw cache (``bengaliai prepare --mode
raw``: ``DIR/cache/raw/train_image_data_<i>.npy``, uint8, ink high, the 137x236 frame, written in
bounded memory and skipped when up to date), and each process then memory-maps those files and
reads the few images it draws, so the pages are shared through the OS page cache. The bank itself
is the index: a small array of (file, row) per root, cheap to pickle into worker processes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.competition import HEIGHT, N_CLASSES, TRAIN_CSV, WIDTH
from bengaliai.errors import DataError
from bengaliai.labels import read_train_labels
from bengaliai.prepare import cache_dir, find_image_files, prepare
from bengaliai.preprocess import PreprocessConfig

log = logging.getLogger(__name__)

RAW = PreprocessConfig(mode="raw")


class RootBank:
    """The handwritten images of each grapheme root in an imported folder."""

    def __init__(self, folder: Path, workers: int = 1) -> None:
        """Index ``folder`` (train.csv of bare roots plus its image files), preparing its raw cache
        first when missing or stale; raises DataError naming the file when the folder does not fit."""
        self.folder = Path(folder)
        labels_path = self.folder / TRAIN_CSV
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
        prepare(self.folder, RAW, workers=workers, splits=("train",))
        raw_dir = cache_dir(self.folder, RAW.tag)
        self._files = [raw_dir / f"{path.stem}.npy" for path in find_image_files(self.folder, ("train",))]
        where: dict[str, tuple[int, int]] = {}
        for file_index, npy in enumerate(self._files):
            ids = pd.read_csv(npy.with_suffix(".csv"), dtype=str, keep_default_na=False)["image_id"]
            where.update((image_id, (file_index, row)) for row, image_id in enumerate(ids))
        located = np.array([where[i] for i in labels["image_id"]], dtype=np.int64).reshape(-1, 2)
        roots = labels["grapheme_root"].to_numpy()
        # Sorted by root then label order, so a sample's index depends only on train.csv.
        self._index = {
            int(root): located[roots == root] for root in range(N_CLASSES["grapheme_root"]) if (roots == root).any()
        }
        self._maps: list[np.ndarray] | None = None
        log.info("%s: %d handwritten images of %d roots", self.folder, len(labels), len(self._index))

    @property
    def roots(self) -> frozenset[int]:
        """The roots with at least one image."""
        return frozenset(self._index)

    def count(self, root: int) -> int:
        """How many images of ``root`` the folder holds (0 if none)."""
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
        images = sum(len(samples) for samples in self._index.values())
        return {"path": str(self.folder), "images": images, "roots": len(self._index)}

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps stay in the process that opened them; a worker opens its own on first use.
        return {**self.__dict__, "_maps": None}
