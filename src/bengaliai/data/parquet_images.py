"""The competition's image parquet format: ``image_id`` then one uint8 column per pixel.

Writing lives here so that every producer (synth, tests) makes exactly what Kaggle ships: 137x236
images row-major in columns ``'0'..'32331'``, one row group per file, snappy compressed. Reading
lives here too: the schema and the ids are validated (DataError names the file, row and problem)
and pixels are streamed a slice of columns at a time into contiguous row blocks, never through
pandas (which peaks at about 4x a file's pixels) or a strided column-major view.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bengaliai.core.competition import HEIGHT, N_PIXELS, PIXEL_COLUMNS, WIDTH
from bengaliai.core.errors import DataError
from bengaliai.core.fileio import atomic_path

_PIXEL_SET = frozenset(PIXEL_COLUMNS)


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


def _unreadable(path: Path, error: Exception) -> DataError:
    return DataError(path, f"not a readable parquet image file ({type(error).__name__}: {error})")


def open_image_file(path: Path) -> pq.ParquetFile:
    """Open an image file and check its schema: ``image_id`` (string) and the 32332 uint8 pixels.

    Reads only the footer. Raises DataError naming the file and what is wrong.
    """
    path = Path(path)
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from error
    types = dict(zip(schema.names, schema.types, strict=True))
    if len(types) != len(schema.names):
        duplicated = sorted({name for name in schema.names if schema.names.count(name) > 1})[:5]
        raise DataError(path, f"duplicate column names {duplicated}")
    if "image_id" not in types:
        raise DataError(path, "no image_id column")
    if not (pa.types.is_string(types["image_id"]) or pa.types.is_large_string(types["image_id"])):
        raise DataError(path, f"column image_id has type {types['image_id']}, expected string")
    missing = [name for name in PIXEL_COLUMNS if name not in types]
    if missing:
        raise DataError(path, f"{len(missing)} pixel columns missing (first: {missing[:5]}); expected '0'..'{N_PIXELS - 1}'")
    extra = [name for name in types if name != "image_id" and name not in _PIXEL_SET]
    if extra:
        raise DataError(path, f"unexpected columns {extra[:5]}; expected image_id and '0'..'{N_PIXELS - 1}' only")
    uint8 = pa.uint8()
    wrong = [name for name in PIXEL_COLUMNS if types[name] != uint8]
    if wrong:
        raise DataError(path, f"{len(wrong)} pixel columns are not uint8 (column '{wrong[0]}' has type {types[wrong[0]]})")
    if parquet.metadata.num_rows == 0:
        raise DataError(path, "no images (0 rows)")
    return parquet


def read_image_ids(path: Path, parquet: pq.ParquetFile | None = None) -> list[str]:
    """The image ids in file order, checked for nulls, empty strings and duplicates."""
    path = Path(path)
    parquet = parquet if parquet is not None else open_image_file(path)
    try:
        ids = parquet.read(columns=["image_id"], use_threads=False).column(0).to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from error
    first_row: dict[str, int] = {}
    for row, image_id in enumerate(ids):
        if not image_id:
            raise DataError(path, "image_id is null or empty", row=row)
        if image_id in first_row:
            raise DataError(path, f"duplicate image_id {image_id!r} (first at row {first_row[image_id]})", row=row)
        first_row[image_id] = row
    return ids


def _read_columns(path: Path, parquet: pq.ParquetFile, start: int, stop: int, out: np.ndarray, threads: bool) -> None:
    """Decode pixel columns ``start..stop-1`` into the rows of ``out`` (one row per column)."""
    names = list(PIXEL_COLUMNS[start:stop])
    try:
        table = parquet.read(columns=names, use_threads=threads)
    except (pa.ArrowException, OSError) as error:
        raise DataError(path, f"cannot decode pixel columns '{names[0]}'..'{names[-1]}' ({error})") from error
    arrays = []
    for name, column in zip(names, table.columns, strict=True):
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(path, f"null pixel in column '{name}' ({column.null_count} nulls in it)", row=row)
        arrays.append(column.chunk(0).to_numpy() if column.num_chunks == 1 else column.to_numpy())
    # Into a reused buffer: fresh allocations of this size cost a page fault per 4 KiB.
    np.stack(arrays, out=out)


def iter_image_blocks(
    path: Path,
    rows_per_block: int,
    *,
    parquet: pq.ParquetFile | None = None,
    columns_per_read: int = 1024,
    use_threads: bool = True,
    spill_dir: Path | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, images)`` with C-contiguous (n, 137, 236) uint8 blocks, in file order.

    Memory stays near one block plus two slices of columns whatever the file size. The
    competition files hold one row group, so rows cannot be read apart, and decoding is the
    costly step: every pixel column is decoded exactly once, ``columns_per_read`` at a time.
    Rows of the first block are transposed straight into the block buffer; rows of later blocks
    go as row-major tiles to an unnamed temporary file in ``spill_dir`` (page cache, not process
    memory) and come back one block at a time. The yielded array is overwritten by the next
    block: copy it to keep it.
    """
    path = Path(path)
    parquet = parquet if parquet is not None else open_image_file(path)
    n_rows = parquet.metadata.num_rows
    rows_per_block = max(1, min(rows_per_block, n_rows))
    blocks = [(start, min(start + rows_per_block, n_rows)) for start in range(0, n_rows, rows_per_block)]
    chunks = [(start, min(start + columns_per_read, N_PIXELS)) for start in range(0, N_PIXELS, columns_per_read)]
    first_rows = blocks[0][1]
    buffer = np.empty((rows_per_block, N_PIXELS), dtype=np.uint8)
    tile = np.empty(rows_per_block * columns_per_read if len(blocks) > 1 else 0, dtype=np.uint8)
    stacks = [np.empty((columns_per_read, n_rows), dtype=np.uint8) for _ in range(2)]

    def read(index: int) -> None:
        c0, c1 = chunks[index]
        _read_columns(path, parquet, c0, c1, stacks[index % 2][: c1 - c0], use_threads)

    with tempfile.TemporaryFile(dir=spill_dir) as spill, ThreadPoolExecutor(1) as reader:
        # Decoding the next columns overlaps transposing these (Arrow and OpenCV release the GIL).
        pending = reader.submit(read, 0)
        for index, (c0, c1) in enumerate(chunks):
            pending.result()
            if index + 1 < len(chunks):
                pending = reader.submit(read, index + 1)
            columns = stacks[index % 2][: c1 - c0]
            _transpose_into(columns[:, :first_rows], buffer[:first_rows, c0:c1])
            for r0, r1 in blocks[1:]:
                part = tile[: (r1 - r0) * (c1 - c0)].reshape(r1 - r0, c1 - c0)
                _transpose_into(columns[:, r0:r1], part)
                spill.write(part.data)
        stacks.clear()  # the column slices are no longer needed: free them before yielding
        yield 0, buffer[:first_rows].reshape(-1, HEIGHT, WIDTH)
        # The spill holds, chunk after chunk, the tiles of blocks 1.. in block order.
        for r0, r1 in blocks[1:]:
            rows = r1 - r0
            for c0, c1 in chunks:
                spill.seek(c0 * (n_rows - first_rows) + (r0 - first_rows) * (c1 - c0))
                part = tile[: rows * (c1 - c0)]
                if spill.readinto(memoryview(part)) != part.size:
                    raise OSError(f"short read from the temporary file of {path}")
                buffer[:rows, c0:c1] = part.reshape(rows, c1 - c0)
            yield r0, buffer[:rows].reshape(-1, HEIGHT, WIDTH)


def _transpose_into(columns: np.ndarray, out: np.ndarray) -> None:
    # cv2.transpose is a cache-blocked SIMD transpose, several times faster than numpy's copy.
    result = cv2.transpose(columns, dst=out)
    if not np.shares_memory(result, out):
        out[...] = result


def read_images(path: Path) -> tuple[list[str], np.ndarray]:
    """Ids and all images of one file, (N, 137, 236) uint8 C-contiguous, in competition polarity.

    Holds one file's pixels (1.6 GB for a competition file); use ``iter_image_blocks`` for less.
    """
    parquet = open_image_file(path)
    ids = read_image_ids(path, parquet)
    _, images = next(iter_image_blocks(path, len(ids), parquet=parquet))
    return ids, images
