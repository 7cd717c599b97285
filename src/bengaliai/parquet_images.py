"""The competition's image parquet format: ``image_id`` then one uint8 column per pixel.

Writing lives here so that every producer (synth, tests) makes exactly what Kaggle ships: 137x236
images row-major in columns ``'0'..'32331'``, one row group per file, snappy compressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bengaliai.competition import HEIGHT, N_PIXELS, PIXEL_COLUMNS, WIDTH
from bengaliai.fileio import atomic_path


def image_table(image_ids: Sequence[str], images: np.ndarray) -> pa.Table:
    """An Arrow table in the competition layout from ids and a (N, 137, 236) uint8 array."""
    if images.dtype != np.uint8 or images.shape[1:] != (HEIGHT, WIDTH):
        raise ValueError(f"expected uint8 images of shape (N, {HEIGHT}, {WIDTH}), got {images.dtype} {images.shape}")
    if len(image_ids) != len(images):
        raise ValueError(f"{len(image_ids)} image ids for {len(images)} images")
    # One contiguous row per pixel column, so each Arrow column wraps memory without a copy.
    columns = np.ascontiguousarray(images.reshape(len(images), N_PIXELS).T)
    arrays = [pa.array(list(image_ids), type=pa.string())]
    arrays += [pa.array(columns[i]) for i in range(N_PIXELS)]
    return pa.Table.from_arrays(arrays, names=["image_id", *PIXEL_COLUMNS])


def write_image_parquet(path: Path, image_ids: Sequence[str], images: np.ndarray) -> None:
    """Write one image file like the competition's: one row group, snappy, atomically."""
    table = image_table(image_ids, images)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=max(len(image_ids), 1), compression="snappy")
