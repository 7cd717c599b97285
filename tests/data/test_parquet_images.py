"""The image parquet reader: exact round trips, streamed blocks, and a clear error for each defect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bengaliai.core.competition import HEIGHT, PIXEL_COLUMNS, WIDTH
from bengaliai.core.errors import DataError
from bengaliai.data.parquet_images import (
    image_table,
    iter_image_blocks,
    open_image_file,
    read_image_ids,
    read_images,
    write_image_parquet,
)

N = 7


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (N, HEIGHT, WIDTH), dtype=np.uint8)


@pytest.fixture(scope="module")
def table(images: np.ndarray) -> pa.Table:
    return image_table([f"Train_{i}" for i in range(N)], images)


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory, images: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("good") / "train_image_data_0.parquet"
    write_image_parquet(path, [f"Train_{i}" for i in range(N)], images)
    return path


def test_round_trip(good_file: Path, images: np.ndarray) -> None:
    ids, read = read_images(good_file)
    assert ids == [f"Train_{i}" for i in range(N)]
    assert read.dtype == np.uint8 and read.shape == (N, HEIGHT, WIDTH) and read.flags.c_contiguous
    np.testing.assert_array_equal(read, images)
    assert read_image_ids(good_file) == ids


@pytest.mark.parametrize(("rows", "columns"), [(3, 1000), (2, 32331)])
def test_blocks_cover_the_file_in_order(good_file: Path, images: np.ndarray, tmp_path: Path, rows: int, columns: int) -> None:
    starts, parts = [], []
    for start, block in iter_image_blocks(good_file, rows, columns_per_read=columns, spill_dir=tmp_path):
        assert block.flags.c_contiguous and len(block) <= rows
        starts.append(start)
        parts.append(block.copy())  # the block buffer is reused
    assert starts == list(range(0, N, rows))
    np.testing.assert_array_equal(np.concatenate(parts), images)
    assert list(tmp_path.iterdir()) == []  # the spill file is unnamed and gone


def write_table(path: Path, table: pa.Table) -> Path:
    # Plain encoding, no compression nor statistics: twice as fast to write 32,333 columns.
    options = {"use_dictionary": False, "compression": "none", "write_statistics": False}
    pq.write_table(table, path, row_group_size=max(table.num_rows, 1), **options)
    return path


def replace_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, array)


def assert_data_error(path: Path, *fragments: str, row: int | None = None) -> None:
    with pytest.raises(DataError) as caught:
        ids = read_image_ids(path)
        for _ in iter_image_blocks(path, len(ids)):
            pass
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert caught.value.row == row


def test_missing_pixel_column(tmp_path: Path, table: pa.Table) -> None:
    path = write_table(tmp_path / "f.parquet", table.drop_columns(["100", "101"]))
    assert_data_error(path, "2 pixel columns missing", "'100'")


def test_extra_column(tmp_path: Path, table: pa.Table) -> None:
    path = write_table(tmp_path / "f.parquet", table.append_column("grapheme", pa.array(["x"] * N)))
    assert_data_error(path, "unexpected columns", "grapheme")


def test_int64_pixels(tmp_path: Path, table: pa.Table) -> None:
    path = write_table(tmp_path / "f.parquet", replace_column(table, "5", pa.array(np.arange(N), type=pa.int64())))
    assert_data_error(path, "1 pixel columns are not uint8", "'5'", "int64")


def test_float_pixels_with_nan(tmp_path: Path, table: pa.Table) -> None:
    values = pa.array([1.0, float("nan")] + [2.0] * (N - 2), type=pa.float64())
    path = write_table(tmp_path / "f.parquet", replace_column(table, "7", values))
    assert_data_error(path, "not uint8", "'7'", "double")


def test_null_pixel(tmp_path: Path, table: pa.Table) -> None:
    values = pa.array([1, 2, 3, None, 5, 6, 7], type=pa.uint8())
    path = write_table(tmp_path / "f.parquet", replace_column(table, "300", values))
    assert_data_error(path, "null pixel in column '300'", row=3)


def test_duplicate_image_ids(tmp_path: Path, table: pa.Table) -> None:
    ids = pa.array(["a", "b", "c", "b", "d", "e", "f"])
    path = write_table(tmp_path / "f.parquet", replace_column(table, "image_id", ids))
    assert_data_error(path, "duplicate image_id 'b'", "first at row 1", row=3)


def test_null_image_id(tmp_path: Path, table: pa.Table) -> None:
    ids = pa.array(["a", None, "c", "d", "e", "f", "g"])
    path = write_table(tmp_path / "f.parquet", replace_column(table, "image_id", ids))
    assert_data_error(path, "image_id is null", row=1)


def test_missing_image_id_column(tmp_path: Path, table: pa.Table) -> None:
    path = write_table(tmp_path / "f.parquet", table.drop_columns(["image_id"]))
    assert_data_error(path, "no image_id column")


def test_numeric_image_id_column(tmp_path: Path, table: pa.Table) -> None:
    path = write_table(tmp_path / "f.parquet", replace_column(table, "image_id", pa.array(np.arange(N))))
    assert_data_error(path, "image_id has type int64, expected string")


def test_empty_file(tmp_path: Path, table: pa.Table) -> None:
    path = write_table(tmp_path / "f.parquet", table.slice(0, 0))
    assert_data_error(path, "no images (0 rows)")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    path.write_bytes(b"")
    assert_data_error(path, "not a readable parquet image file")


def test_truncated_file(tmp_path: Path, good_file: Path) -> None:
    data = good_file.read_bytes()
    path = tmp_path / "f.parquet"
    path.write_bytes(data[: len(data) // 2])
    assert_data_error(path, "not a readable parquet image file")


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    assert_data_error(path, "not a readable parquet image file")


def test_open_checks_only_the_footer(good_file: Path) -> None:
    parquet = open_image_file(good_file)
    assert parquet.metadata.num_rows == N
    assert parquet.schema_arrow.names == ["image_id", *PIXEL_COLUMNS]
