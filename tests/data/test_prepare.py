"""The prepare stage: cache layout, exact round trip, skip of unchanged files, nothing half-written."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import HEIGHT, N_PIXELS, WIDTH
from bengaliai.core.errors import DataError
from bengaliai.data.parquet_images import image_table, write_image_parquet
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch

SIZES = {"train_image_data_0": 9, "train_image_data_1": 5, "test_image_data_0": 4}


def make_images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(235, 256, (n, HEIGHT, WIDTH), dtype=np.uint8)
    for image in images:
        y, x = int(rng.integers(0, HEIGHT - 30)), int(rng.integers(0, WIDTH - 50))
        image[y : y + 30, x : x + 50] = rng.integers(20, 90)
    return images


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[str], np.ndarray]]:
    """The files' ids and images, written once into a module folder."""
    folder = tmp_path_factory.mktemp("source")
    data = {}
    for seed, (stem, n) in enumerate(SIZES.items()):
        ids = [f"{stem.split('_')[0].title()}_{seed}_{i}" for i in range(n)]
        images = make_images(n, seed)
        write_image_parquet(folder / f"{stem}.parquet", ids, images)
        data[stem] = (ids, images)
    return {"folder": folder, **data}  # type: ignore[dict-item]


@pytest.fixture
def input_dir(tmp_path: Path, source: dict) -> Path:
    folder = tmp_path / "input"
    folder.mkdir()
    for stem in SIZES:
        shutil.copy2(source["folder"] / f"{stem}.parquet", folder)
    return folder


def test_raw_round_trip_in_small_blocks(input_dir: Path, source: dict) -> None:
    # Blocks of 2 rows: most rows go through the spill file.
    paths = prepare(input_dir, PreprocessConfig(mode="raw"), workers=2, max_block_bytes=2 * N_PIXELS)
    cache = input_dir / "cache" / "raw"
    assert paths == [cache / "train_image_data_0.npy", cache / "train_image_data_1.npy", cache / "test_image_data_0.npy"]
    for path in paths:
        ids, images = source[path.stem]
        array = np.load(path, mmap_mode="r")
        assert isinstance(array, np.memmap) and array.dtype == np.uint8 and array.shape == (len(ids), HEIGHT, WIDTH)
        np.testing.assert_array_equal(array, 255 - images)
        assert pd.read_csv(path.with_suffix(".csv"), dtype=str)["image_id"].tolist() == ids
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [f"{stem}{suffix}" for stem in SIZES for suffix in (".npy", ".csv")] + ["meta.json"]
    )


@pytest.mark.parametrize("mode", ["resize", "crop"])
def test_cache_is_what_inference_computes(input_dir: Path, source: dict, mode: str) -> None:
    config = PreprocessConfig(mode=mode, size=48)
    (path,) = prepare(input_dir, config, workers=2, splits=("test",), max_block_bytes=3 * N_PIXELS)
    assert path == input_dir / "cache" / f"{mode}48" / "test_image_data_0.npy"
    np.testing.assert_array_equal(np.load(path), preprocess_batch(source["test_image_data_0"][1], config))


def test_unchanged_files_are_skipped(input_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = PreprocessConfig(mode="crop", size=32)
    (path,) = prepare(input_dir, config, splits=("test",))
    meta = json.loads((path.parent / "meta.json").read_text())
    parquet = input_dir / "test_image_data_0.parquet"
    assert meta["config"] == {"mode": "crop", "size": 32, "ink_threshold": 80, "margin": 8}
    assert meta["files"]["test_image_data_0.parquet"] == {
        "size": parquet.stat().st_size,
        "mtime_ns": parquet.stat().st_mtime_ns,
        "images": 4,
    }
    written = path.stat().st_mtime_ns

    with caplog.at_level(logging.INFO, logger="bengaliai.data.prepare"):
        assert prepare(input_dir, config, splits=("test",)) == [path]
    assert "test_image_data_0.parquet: up to date, skipped" in caplog.text
    assert path.stat().st_mtime_ns == written

    caplog.clear()
    os.utime(parquet, ns=(parquet.stat().st_atime_ns, parquet.stat().st_mtime_ns + 10**9))
    with caplog.at_level(logging.INFO, logger="bengaliai.data.prepare"):
        prepare(input_dir, config, splits=("test",))
    assert "skipped" not in caplog.text and "4 images" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bengaliai.data.prepare"):
        prepare(input_dir, PreprocessConfig(mode="crop", size=32, margin=2), splits=("test",))
    assert "skipped" not in caplog.text
    assert json.loads((path.parent / "meta.json").read_text())["config"]["margin"] == 2


def test_missing_split_names_the_expected_files(input_dir: Path) -> None:
    (input_dir / "test_image_data_0.parquet").unlink()
    with pytest.raises(DataError, match=r"no test image files; expected test_image_data_0.parquet \.\. test_image_data_3"):
        prepare(input_dir, PreprocessConfig())
    assert not (input_dir / "cache").exists()


def write_null_pixel_file(path: Path, n: int) -> None:
    """A file whose defect only shows once its pixels stream, after the outputs were opened."""
    table = image_table([f"Test_{i}" for i in range(n)], make_images(n, 9))
    table = table.set_column(11, "10", pa.array([0] * (n - 1) + [None], type=pa.uint8()))
    pq.write_table(table, path, row_group_size=n, use_dictionary=False, compression="none", write_statistics=False)


def test_failure_leaves_nothing_behind(input_dir: Path) -> None:
    config = PreprocessConfig(mode="crop", size=32)
    (path,) = prepare(input_dir, config, splits=("test",))
    write_null_pixel_file(input_dir / "test_image_data_0.parquet", 4)
    with pytest.raises(DataError, match=r"test_image_data_0.parquet, row 3: null pixel in column '10'"):
        prepare(input_dir, config, splits=("test",), max_block_bytes=N_PIXELS)
    # The old outputs of the file are gone too: they no longer match their parquet.
    assert [p.name for p in path.parent.iterdir()] == ["meta.json"]
    assert json.loads((path.parent / "meta.json").read_text())["files"] == {}


def test_cli_reports_data_errors(input_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (input_dir / "test_image_data_0.parquet").write_bytes(b"not parquet")
    assert main(["prepare", "--input", str(input_dir), "--splits", "test"]) == 2
    error = capsys.readouterr().err
    assert "bengaliai prepare: error:" in error and "test_image_data_0.parquet" in error
    assert [p.name for p in (input_dir / "cache" / "crop128").iterdir()] == ["meta.json"]


def test_train_labels_are_checked_against_the_images_before_any_work(tmp_path: Path) -> None:
    from builders import write_pattern_dataset


    input_dir = tmp_path / "input"
    labels = write_pattern_dataset(input_dir, 12, n_files=1)
    extra = labels.iloc[:1].assign(image_id="Train_999")
    pd.concat([labels, extra]).to_csv(input_dir / "train.csv", index=False)
    with pytest.raises(DataError, match=r"train.csv: 1 of 13 image ids have no image in .*: Train_999"):
        prepare(input_dir, PreprocessConfig(mode="resize", size=32), workers=1, splits=("train",))
    assert not (input_dir / "cache" / "resize32" / "train_image_data_0.npy").exists()
    labels.assign(grapheme_root=lambda f: f["grapheme_root"].where(f.index != 3, 168)).to_csv(input_dir / "train.csv", index=False)
    with pytest.raises(DataError, match=r"line 5: column grapheme_root has 168, expected an integer in 0..167"):
        prepare(input_dir, PreprocessConfig(mode="resize", size=32), workers=1, splits=("train",))


def test_a_header_only_train_csv_is_refused_before_any_work(tmp_path: Path) -> None:
    from builders import write_pattern_dataset

    input_dir = tmp_path / "input"
    write_pattern_dataset(input_dir, 6, n_files=1)
    (input_dir / "train.csv").write_text("image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme\n")
    assert main(["prepare", "--input", str(input_dir), "--splits", "train", "--mode", "resize", "--size", "32"]) == 2
    with pytest.raises(DataError, match=r"train\.csv: only a header, no data rows"):
        prepare(input_dir, PreprocessConfig(mode="resize", size=32), workers=1, splits=("train",))
    assert not (input_dir / "cache").exists()
