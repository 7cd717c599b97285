"""The import engine: unusable images skipped and counted up to --max-bad, the same bytes for any worker count."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPOUND_GRAPHEMES
from bengaliai.core.errors import DataError
from bengaliai.data.parquet_images import read_image_ids
from bengaliai.handwriting import folder_import
from bengaliai.handwriting.banglalekha import BANGLALEKHA
from bengaliai.handwriting.compounds import COMPOUNDS
from bengaliai.handwriting.folder_import import import_folders

from fake_sources import make_banglalekha, make_compounds

COMPOUND_FOLDERS = sorted(f for f, (_, v, c) in COMPOUND_GRAPHEMES.items() if v == 0 and c == 0)[:3]


def _spoil(path: Path, how: str) -> None:
    """Make one image unusable: truncated bytes, or a blank page of the dataset's paper."""
    if how == "corrupt":
        path.write_bytes(path.read_bytes()[:20])
    else:
        paper = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[0, 0]
        cv2.imwrite(str(path), np.full((30, 40), paper, np.uint8))


def _banglalekha(root: Path) -> Path:
    """3 images in each of 3 root folders; the 2nd of folder 12 corrupt, the 3rd blank."""
    src = make_banglalekha(root, {"1": 3, "12": 3, "64": 3})
    names = sorted((src / "Images" / "12").iterdir())
    _spoil(names[1], "corrupt")
    _spoil(names[2], "blank")
    return src


def _compounds(root: Path) -> Path:
    """3 images in each of 3 conjunct folders; the 1st of the 2nd folder corrupt, the 3rd of the last blank."""
    src = make_compounds(root, {str(f): 3 for f in COMPOUND_FOLDERS})
    _spoil(src / str(COMPOUND_FOLDERS[1]) / f"{COMPOUND_FOLDERS[1]}-000.jpg", "corrupt")
    _spoil(src / str(COMPOUND_FOLDERS[2]) / f"{COMPOUND_FOLDERS[2]}-002.jpg", "blank")
    return src


def test_unreadable_and_blank_images_are_skipped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _banglalekha(tmp_path / "src")
    names = sorted((src / "Images" / "12").iterdir())
    _spoil(names[0], "corrupt")  # folder 12, the 2nd planned file, holds no usable image now
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        manifest = import_folders(BANGLALEKHA, src, out, seed=2, max_rows_per_file=3)
    ids = pd.read_csv(out / "train.csv")["image_id"].tolist()
    assert ids == ["BLI_1_0", "BLI_1_1", "BLI_1_2", "BLI_64_0", "BLI_64_1", "BLI_64_2"]
    assert pd.read_csv(out / "sources.csv")["image_id"].tolist() == ids
    # Planned: 3 files of 3 rows; the empty one is not written and the names stay consecutive.
    parquets = sorted(p.name for p in out.glob("train_image_data_*.parquet"))
    assert parquets == ["train_image_data_0.parquet", "train_image_data_1.parquet"]
    assert [read_image_ids(out / p) for p in parquets] == [ids[:3], ids[3:]]
    on_disk = json.loads((out / "import.json").read_text(encoding="utf-8"))
    assert on_disk == manifest and manifest["images"] == 6 and manifest["max_bad"] == 100
    assert manifest["files"] == [{"name": p, "images": 3} for p in parquets]
    assert [(c["folder"], c["images"]) for c in manifest["classes"]] == [(1, 3), (64, 3)]
    unreadable = "not a readable image (corrupt, or not a PNG or JPEG)"
    assert manifest["skipped"] == 3 and manifest["skipped_files"] == [
        {"path": f"Images/12/{names[0].name}", "problem": unreadable},
        {"path": f"Images/12/{names[1].name}", "problem": unreadable},
        {"path": f"Images/12/{names[2].name}", "problem": "no ink in the image"},
    ]
    assert f"skipped {names[1]}: {unreadable}" in caplog.text
    assert caplog.records[-1].getMessage() == (
        f"done: 6 images in 2 file(s) in {out}; 3 unreadable or blank images skipped (listed in import.json)"
    )


def test_past_max_bad_the_import_stops_naming_the_files(tmp_path: Path) -> None:
    src = _banglalekha(tmp_path / "src")
    names = sorted((src / "Images" / "12").iterdir())
    message = (
        f"{names[1]}: not a readable image (corrupt, or not a PNG or JPEG); stopped at 2 unreadable or blank images, "
        f"more than --max-bad 1 (also {names[2]}: no ink in the image); nothing was written: fix or remove them, "
        "or raise --max-bad"
    )
    with pytest.raises(DataError) as error:
        import_folders(BANGLALEKHA, src, tmp_path / "out", max_bad=1)
    assert str(error.value) == message and not (tmp_path / "out").exists()


def test_an_import_of_only_bad_images_is_refused(tmp_path: Path) -> None:
    src = make_compounds(tmp_path / "src", {str(COMPOUND_FOLDERS[0]): 2})
    for path in (src / str(COMPOUND_FOLDERS[0])).iterdir():
        _spoil(path, "blank")
    with pytest.raises(DataError, match=f"{src}: no usable image: all 2 were unreadable or blank"):
        import_folders(COMPOUNDS, src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source", ["banglalekha", "compounds"])
def test_two_workers_write_the_same_bytes_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    # Chunks of 2 images: the 9 images are 5 tasks shared by both workers, which meet the bad images and
    # report them back; one parquet file keeps the test fast (writing one costs a second).
    monkeypatch.setattr(folder_import, "_CHUNK", 2)
    src = _banglalekha(tmp_path / "src") if source == "banglalekha" else _compounds(tmp_path / "src")
    dataset = BANGLALEKHA if source == "banglalekha" else COMPOUNDS
    one = import_folders(dataset, src, tmp_path / "one", seed=5, workers=1)
    two = import_folders(dataset, src, tmp_path / "two", seed=5, workers=2)
    assert one == two and one["skipped"] == 2 and one["images"] == 7
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(names) == 4
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_cli_max_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _compounds(tmp_path / "src")
    args = ["import", "compounds", "--src", str(src), "--out", str(tmp_path / "out"), "--workers", "1"]
    assert main([*args, "--max-bad", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the warnings naming the skipped files
    assert err.startswith("bengaliai import: error: ") and "more than --max-bad 1" in err
    assert main([*args, "--max-bad", "2"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "train.csv")) == 7
