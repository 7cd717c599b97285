"""``bengaliai import compounds``: the folder map, labels with ra-phala, JPEGs in either polarity, errors.

The dataset is never used here: a fake ``<folder>/*.jpg`` layout of tiny dark-on-light strokes drawn
with cv2 stands in for it (the real images are 42x28 px JPEGs).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPOUND_FOLDERS, COMPOUND_GRAPHEMES, HEIGHT, LABEL_STRINGS, N_CLASSES, WIDTH
from bengaliai.core.errors import DataError
from bengaliai.data.parquet_images import read_images
from bengaliai.handwriting.compounds import COMPOUNDS
from bengaliai.handwriting.folder_import import import_folders
from bengaliai.handwriting.placement import stroke_thickness

from fake_sources import make_compounds

BARE = min(f for f, (_, v, c) in COMPOUND_GRAPHEMES.items() if v == 0 and c == 0)
RA_PHALA = min(f for f, (_, _, c) in COMPOUND_GRAPHEMES.items() if c == 5)
UNLABELLED = min(COMPOUND_FOLDERS - set(COMPOUND_GRAPHEMES), default=None)


def test_the_map_spells_competition_graphemes() -> None:
    assert set(COMPOUND_GRAPHEMES) <= COMPOUND_FOLDERS and len(COMPOUND_FOLDERS) == 164
    for folder, labels in COMPOUND_GRAPHEMES.items():
        assert all(0 <= label < N_CLASSES[name] for label, name in zip(labels, N_CLASSES)), folder
    # the most common conjuncts come first in the dataset: প্র, then ক্ষ
    assert COMPOUND_GRAPHEMES[1] == (LABEL_STRINGS["grapheme_root"].index("প"), 0, 5)
    assert COMPOUND_GRAPHEMES[3] == (LABEL_STRINGS["grapheme_root"].index("ক্ষ"), 0, 0)


def test_imports_labelled_folders_with_their_triples(tmp_path: Path) -> None:
    layout = {str(BARE): 3, str(RA_PHALA): 2, "999": 1}
    if UNLABELLED is not None:
        layout[str(UNLABELLED)] = 2
    src = make_compounds(tmp_path / "src", layout)
    manifest = import_folders(COMPOUNDS, src, tmp_path / "out", seed=1)
    train = pd.read_csv(tmp_path / "out" / "train.csv", dtype={"grapheme": str})
    expected = [COMPOUND_GRAPHEMES[RA_PHALA]] * 2 + [COMPOUND_GRAPHEMES[BARE]] * 3
    if RA_PHALA > BARE:
        expected = expected[2:] + expected[:2]
    triples = list(train[["grapheme_root", "vowel_diacritic", "consonant_diacritic"]].itertuples(index=False, name=None))
    assert triples == expected and len(train) == 5  # the unlabelled and the unknown folder are left out
    assert train["image_id"].iloc[0] == f"CMP_{min(BARE, RA_PHALA)}_0"
    assert manifest["complete"] and [c["folder"] for c in manifest["classes"]] == sorted([BARE, RA_PHALA])
    on_disk = json.loads((tmp_path / "out" / "import.json").read_text(encoding="utf-8"))
    assert on_disk["classes"][0]["character"] == train["grapheme"].iloc[0]
    assert tuple(pd.read_csv(tmp_path / "out" / "sources.csv").columns) == COMPOUNDS.source_columns
    _, images = read_images(tmp_path / "out" / "train_image_data_0.parquet")
    assert images.shape == (5, HEIGHT, WIDTH)
    for image in images:  # dark ink on light paper, scaled up from 28 px to the competition's sizes
        assert np.median(image) >= 245
        ys, _ = np.nonzero(image < 160)
        low = 28 * COMPOUNDS.placement.upsample * COMPOUNDS.placement.scale[0] * 0.6
        assert low <= np.ptp(ys) + 1 <= COMPOUNDS.placement.max_box[0] + 2


def test_a_faint_one_pixel_stroke_stays_whole(tmp_path: Path) -> None:
    # The dataset's strokes are 1-2 px of grey in a 42x28 JPEG: thresholded at that size, a faint diagonal
    # loses pixels and its scaled outline breaks into dashes. Enlarged first and thresholded near the
    # paper, it is one stroke of the aimed thickness.
    image = np.full((28, 42), 255, dtype=np.uint8)
    cv2.line(image, (3, 3), (38, 24), 150, 1, cv2.LINE_AA)
    cv2.line(image, (3, 24), (20, 3), 60, 1, cv2.LINE_AA)
    (tmp_path / "src" / str(BARE)).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "src" / str(BARE) / "a.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 75])
    import_folders(COMPOUNDS, tmp_path / "src", tmp_path / "out", seed=3)
    _, images = read_images(tmp_path / "out" / "train_image_data_0.parquet")
    ink = (images[0] < 160).astype(np.uint8)
    n, _ = cv2.connectedComponents(ink, connectivity=4)
    assert n - 1 == 1, f"the strokes broke into {n - 1} pieces"
    ys, xs = np.nonzero(ink)
    assert np.ptp(xs) + 1 >= 90  # the faint diagonal (35 px wide) is there, not only the dark one (17 px)
    assert 3.0 <= stroke_thickness(ink > 0) <= 7.5


def test_a_missing_folder_or_no_labelled_class_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder; expected the handwritten compound characters"):
        import_folders(COMPOUNDS, tmp_path / "none", tmp_path / "out")
    src = make_compounds(tmp_path / "src", {"999": 1})
    with pytest.raises(DataError, match="no folder of a labelled grapheme class"):
        import_folders(COMPOUNDS, src, tmp_path / "out")


def test_the_missing_folder_error_names_the_class_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        import_folders(COMPOUNDS, tmp_path / "none", tmp_path / "out")
    expected = f"not a folder; expected the {COMPOUNDS.name} folder holding 1/ .. 168/"
    assert str(error.value) == f"{tmp_path / 'none'}: {expected}"


def test_a_corrupt_jpeg_is_named(tmp_path: Path) -> None:
    src = make_compounds(tmp_path / "src", {str(BARE): 2})
    bad = src / str(BARE) / f"{BARE}-001.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated")
    with pytest.raises(DataError, match=f"{bad}: not a readable image"):  # skipped up to --max-bad
        import_folders(COMPOUNDS, src, tmp_path / "out", max_bad=0)


def test_cli_imports_compounds_and_roots_only_leaves_out_the_ra_phala_forms(tmp_path: Path) -> None:
    src = make_compounds(tmp_path / "src", {str(BARE): 2, str(RA_PHALA): 1})
    assert main(["import", "compounds", "--src", str(src), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "train.csv")) == 3
    args = ["import", "compounds", "--src", str(src), "--out", str(tmp_path / "roots"), "--workers", "1", "--roots-only"]
    assert main(args) == 0
    train = pd.read_csv(tmp_path / "roots" / "train.csv")
    assert len(train) == 2 and (train[["vowel_diacritic", "consonant_diacritic"]] == 0).all().all()
    assert "bare roots only" in json.loads((tmp_path / "roots" / "import.json").read_text(encoding="utf-8"))["dataset"]
