"""``bengaliai import banglalekha``: output format, labels, determinism, image look and clear errors.

The dataset is never used here: a fake ``Images/<folder>/*.png`` layout of tiny white-on-black
strokes drawn with cv2 stands in for it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import BANGLALEKHA_ROOTS, HEIGHT, LABEL_STRINGS, TRAIN_COLUMNS, WIDTH
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.parquet_images import read_image_ids, read_images, write_image_parquet
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.handwriting.banglalekha import (
    ID_PREFIX,
    SOURCE_COLUMNS,
    file_sizes,
    image_rng,
    import_banglalekha,
    parse_file_name,
    read_character,
)
from bengaliai.handwriting.placement import PlacementConfig, place_character

from fake_sources import ROOT_ROWS, banglalekha_character, make_banglalekha


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = make_banglalekha(tmp_path_factory.mktemp("bli"))
    out = tmp_path_factory.mktemp("bli_out")
    import_banglalekha(src, out, seed=3, workers=1, max_rows_per_file=5)
    return out


def test_writes_the_competition_training_files(imported: Path) -> None:
    names = sorted(p.name for p in imported.iterdir())
    parquets = ["train_image_data_0.parquet", "train_image_data_1.parquet"]
    assert names == ["import.json", "sources.csv", "train.csv", *parquets]
    train = pd.read_csv(imported / "train.csv", dtype={"grapheme": str})
    assert tuple(train.columns) == TRAIN_COLUMNS
    ids = [i for k in range(2) for i in read_image_ids(imported / f"train_image_data_{k}.parquet")]
    assert ids == train["image_id"].tolist() and len(set(ids)) == ROOT_ROWS
    assert all(i.startswith(f"{ID_PREFIX}_") for i in ids)
    _, images = read_images(imported / "train_image_data_0.parquet")
    assert images.shape == (4, HEIGHT, WIDTH)  # 8 rows in two files of at most 5


def test_labels_are_the_bare_roots_of_the_folders(imported: Path) -> None:
    train = pd.read_csv(imported / "train.csv", dtype={"grapheme": str})
    folders = train["image_id"].str.split("_").str[1].astype(int)
    assert sorted(set(folders)) == [1, 12, 64]  # the digit and the unknown folder are left out
    assert (train["grapheme_root"] == folders.map(BANGLALEKHA_ROOTS)).all()
    assert (train[["vowel_diacritic", "consonant_diacritic"]] == 0).all().all()
    assert dict(zip(folders, train["grapheme"], strict=True)) == {1: "অ", 12: "ক", 64: "স্ক"}


def test_sources_and_manifest_record_where_each_image_came_from(imported: Path) -> None:
    sources = pd.read_csv(imported / "sources.csv", dtype=str)
    assert tuple(sources.columns) == SOURCE_COLUMNS
    first = sources.iloc[0]
    assert first["image_id"] == "BLI_1_0" and first["path"] == "Images/1/01_0001_0_10_0916_1990_1.png"
    assert (first["writer"], first["gender"], first["date"]) == ("1990", "male", "20160916")
    manifest = json.loads((imported / "import.json").read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["seed"] == 3 and manifest["images"] == ROOT_ROWS
    classes = [(c["folder"], c["character"], c["images"]) for c in manifest["classes"]]
    assert classes == [(1, "অ", 3), (12, "ক", 2), (64, "স্ক", 3)]


def test_prepare_reads_the_import(imported: Path, tmp_path: Path) -> None:
    npys = prepare(imported, PreprocessConfig(mode="crop", size=32), splits=("train",), cache_root=tmp_path)
    assert [np.load(p).shape for p in npys] == [(4, 32, 32), (4, 32, 32)]


@pytest.mark.slow
def test_same_bytes_whatever_the_worker_count(imported: Path, tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src")
    import_banglalekha(src, tmp_path / "two", seed=3, workers=2, max_rows_per_file=5)
    for name in ("train.csv", "sources.csv", "train_image_data_0.parquet", "train_image_data_1.parquet"):
        assert (tmp_path / "two" / name).read_bytes() == (imported / name).read_bytes(), name


def test_limit_per_class_keeps_the_ids_of_the_full_import(tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src")
    import_banglalekha(src, tmp_path / "out", seed=3, limit_per_class=2)
    ids = pd.read_csv(tmp_path / "out" / "train.csv")["image_id"].tolist()
    assert ids == ["BLI_1_0", "BLI_1_1", "BLI_12_0", "BLI_12_1", "BLI_64_0", "BLI_64_1"]


def test_images_are_dark_ink_on_light_paper_within_the_configured_box(tmp_path: Path) -> None:
    ink = _ink(tmp_path, banglalekha_character(np.random.default_rng(1), 100, 160))
    config = PlacementConfig()
    for index in range(20):
        image = place_character(ink, image_rng(0, 1, index), config)
        assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH)
        assert np.median(image) >= 245 and image.min() < 100
        ys, xs = np.nonzero(image < 160)
        height, width = np.ptp(ys) + 1, np.ptp(xs) + 1
        # The ink box is the scaled source box, give or take the thinning and blur at its edges.
        assert 100 * config.scale[0] - 4 <= height <= 100 * config.scale[1] + 3
        assert 160 * config.scale[0] - 4 <= width <= 160 * config.scale[1] + 3


def test_large_characters_are_shrunk_to_the_largest_box(tmp_path: Path) -> None:
    ink = _ink(tmp_path, banglalekha_character(np.random.default_rng(2), 400, 700))
    config = PlacementConfig()
    image = place_character(ink, image_rng(0, 1, 0), config)
    ys, xs = np.nonzero(image < 160)
    assert np.ptp(ys) + 1 <= config.max_box[0] + 2 and np.ptp(xs) + 1 <= config.max_box[1] + 2


def _ink(tmp_path: Path, image: np.ndarray) -> np.ndarray:
    cv2.imwrite(str(tmp_path / "char.png"), image)
    return read_character(tmp_path / "char.png")


def test_file_names_parse_into_writer_fields() -> None:
    assert parse_file_name("02_0002_1_19_1016_0775_74.png") == {
        "writer": "0775", "district": "02", "institution": "0002", "gender": "female", "age": "19", "date": "20161016",
    }
    assert set(parse_file_name("scan.png").values()) == {""}


def test_file_sizes_stay_under_the_limit() -> None:
    assert file_sizes(144_000) == [48_000] * 3
    assert file_sizes(3) == [3] and file_sizes(10, 5) == [5, 5] and file_sizes(11, 5) == [4, 4, 3]


def test_the_folder_map_holds_the_73_root_classes() -> None:
    assert len(BANGLALEKHA_ROOTS) == 73 and len(set(BANGLALEKHA_ROOTS.values())) == 73
    assert not {50, *range(51, 61)} & set(BANGLALEKHA_ROOTS)
    roots = LABEL_STRINGS["grapheme_root"]
    characters = [roots[BANGLALEKHA_ROOTS[f]] for f in (1, 47, 48, 64, 66, 75, 84)]
    assert characters == ["অ", "ৎ", "ং", "স্ক", "স্থ", "ণ্ড", "ণ্ঠ"]


def test_missing_and_unknown_folders_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 1, "notes": 1})
    with caplog.at_level(logging.WARNING):
        import_banglalekha(src, tmp_path / "out")
    assert "unknown folder(s): notes" in caplog.text
    assert "83 of the 84 class folders are missing: 1, 2, 3" in caplog.text


def test_no_images_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no Images/ folder"):
        import_banglalekha(tmp_path, tmp_path / "out")


def test_no_root_class_is_an_error(tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src", {"50": 1, "51": 2, "x": 1})
    with pytest.raises(DataError, match="no folder of a labelled grapheme class"):
        import_banglalekha(src, tmp_path / "out")


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_corrupt_png_is_named(tmp_path: Path, workers: int) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 2})
    bad = src / "Images" / "12" / "01_0001_0_10_0916_1999_12.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match=f"{bad}: not a readable image"):  # skipped up to --max-bad
        import_banglalekha(src, tmp_path / "out", workers=workers, max_bad=0)


def test_image_files_of_another_dataset_are_never_replaced(tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 1})
    theirs = tmp_path / "out" / "train_image_data_0.parquet"
    write_image_parquet(theirs, ["Train_0"], np.zeros((1, HEIGHT, WIDTH), np.uint8))
    with pytest.raises(BengaliaiError, match="holds image files that no import wrote"):
        import_banglalekha(src, tmp_path / "out")
    assert read_image_ids(theirs) == ["Train_0"]


def test_cli_imports_and_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 2})
    assert main(["import", "banglalekha", "--src", str(src), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "train.csv")) == 2
    assert main(["import", "banglalekha", "--src", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "bengaliai import: error:" in capsys.readouterr().err
