"""``bengaliai import bhcc`` on a drawn corpus: the output format, signs apart, skipped rows and cells, reruns, errors.

The real corpus is never used: ``bhcc_fakes`` draws one page of 12 rows: graphemes, a grapheme the
training set lacks, two bare vowel signs, an unmapped digit, a row whose printed character is not
the list's (refused) and a cell left blank.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import HEIGHT, TRAIN_COLUMNS, WIDTH
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.parquet_images import read_images
from bengaliai.handwriting.bhcc import SOURCE_COLUMNS, import_bhcc
from bengaliai.handwriting.bhcc_corpus import FIVE_FORMAT_DIR
from bengaliai.handwriting.bhcc_labels import ROW_LIST

from bhcc_fakes import LEFT, PITCH, PRINTED, TOP, code_text, draw_page, write_page, write_xlsx

FONT = "tiro-bangla-400.ttf"  # a font the matcher knows: this tests the import, not the font matching
# 0-5 graphemes, 6 কা, 7-8 vowel signs, 9 a digit (unmapped), 10 refused (the page prints ট), 11 unseen
LIST = [*"কখগঘঙচ", "কা", "া", "ি", "১", "জ", "খৌ"]
UNSEEN = "খৌ"  # not among the 1,295 training graphemes
BLANK_ROW, BLANK_WRITER = 1, 2


def make_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_xlsx(root / ROW_LIST, [(t, code_text(t)) for t in LIST])
    printed = [*LIST[:10], "ট", LIST[11]]
    page = draw_page(printed, seed=1, font_name=FONT)
    x0 = LEFT + PRINTED[0] + PRINTED[1] * (BLANK_WRITER - 1)
    y0 = TOP + PITCH * BLANK_ROW
    page[y0 + 4 : y0 + PITCH - 4, x0 + 4 : x0 + PRINTED[1] - 4] = 246  # a writer left this cell blank
    write_page(root / FIVE_FORMAT_DIR / "page_1.png", page)
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    src = make_corpus(tmp_path_factory.mktemp("bhcc"))
    out = tmp_path_factory.mktemp("import") / "bhcc"
    manifest = import_bhcc(src, out, seed=4)
    return src, out, manifest


def test_writes_competition_files_with_ids_per_list_row_and_writer(imported: tuple[Path, Path, dict]) -> None:
    _, out, _ = imported
    assert sorted(p.name for p in out.iterdir()) == ["import.json", "sources.csv", "train.csv",
                                                      "train_image_data_0.parquet"]
    train = pd.read_csv(out / "train.csv", dtype={"grapheme": str})
    assert tuple(train.columns) == TRAIN_COLUMNS
    expected = [f"BHCC_{row}_{w}" for row in [0, 1, 2, 3, 4, 5, 6, 11] for w in range(1, 6)]
    expected.remove(f"BHCC_{BLANK_ROW}_{BLANK_WRITER}")
    assert train["image_id"].tolist() == expected
    ids, images = read_images(out / "train_image_data_0.parquet")
    assert list(ids) == expected and images.shape == (len(expected), HEIGHT, WIDTH)
    assert (images.min(axis=(1, 2)) < 100).all() and (np.median(images, axis=(1, 2)) > 240).all()
    first = train.set_index("image_id").loc["BHCC_6_1"]
    assert (first["grapheme_root"], first["vowel_diacritic"], first["consonant_diacritic"], first["grapheme"]) == (
        13, 1, 0, "কা"
    )


def test_sources_record_page_row_writer_and_seen(imported: tuple[Path, Path, dict]) -> None:
    _, out, _ = imported
    sources = pd.read_csv(out / "sources.csv", dtype={"text": str})
    assert tuple(sources.columns) == SOURCE_COLUMNS
    row = sources.set_index("image_id").loc["BHCC_11_3"]
    where = (row["page"], row["page_row"], row["list_row"], row["writer"], row["text"])
    assert where == ("page_1.png", 11, 11, 3, UNSEEN) and row["kind"] == "grapheme"
    assert set(sources["verified_by"]) <= {"glyph", "codes", "glyph+codes"}
    assert sources.loc[~sources["seen"], "text"].unique().tolist() == [UNSEEN]
    assert sorted(sources["writer"].unique()) == [1, 2, 3, 4, 5]


def test_manifest_counts_rows_skipped_and_writers(imported: tuple[Path, Path, dict]) -> None:
    src, out, manifest = imported
    saved = json.loads((out / "import.json").read_text(encoding="utf-8"))
    assert saved["source"] == str(src.resolve()) and saved["seed"] == 4 and saved["complete"]
    counts = {k: saved[k] for k in ("rows_found", "rows_verified", "rows_refused", "rows_unplaced", "grapheme_rows",
                                    "sign_rows", "unmapped_rows", "skipped_cells", "images", "unseen_graphemes")}
    assert counts == {"rows_found": 12, "rows_verified": 11, "rows_refused": 1, "rows_unplaced": 0,
                      "grapheme_rows": 8, "sign_rows": 2, "unmapped_rows": 1, "skipped_cells": 1, "images": 39,
                      "unseen_graphemes": 5}
    assert saved["writers"] == {"1": 8, "2": 7, "3": 8, "4": 8, "5": 8}
    assert saved["blank_cells"] == [{"image_id": "BHCC_1_2", "page": "page_1.png", "page_row": 1}]
    assert manifest["signs"]["images"] == 10


def test_vowel_signs_go_apart_with_only_the_vowel_label(imported: tuple[Path, Path, dict]) -> None:
    _, out, _ = imported
    signs = out.with_name("bhcc_signs")
    train = pd.read_csv(signs / "train.csv", dtype={"grapheme": str})
    assert train["image_id"].tolist() == [f"BHCC_{row}_{w}" for row in (7, 8) for w in range(1, 6)]
    assert train[["grapheme_root", "consonant_diacritic"]].eq(0).all().all()
    assert train["vowel_diacritic"].tolist() == [1] * 5 + [2] * 5
    assert train["grapheme"].tolist() == ["া"] * 5 + ["ি"] * 5
    saved = json.loads((signs / "import.json").read_text(encoding="utf-8"))
    assert "no graphemes" in saved["content"] and saved["images"] == 10 and saved["unseen_graphemes"] == 0
    assert pd.read_csv(signs / "sources.csv")["seen"].isna().all()  # a sign is no grapheme, seen or unseen
    assert "no graphemes" in _help(["import", "bhcc", "--help"])


def _help(argv: list[str]) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        main(argv)
    return " ".join(buffer.getvalue().split())


def test_rerun_gives_the_same_bytes_and_another_seed_needs_force(imported: tuple[Path, Path, dict],
                                                                  tmp_path: Path) -> None:
    src, out, _ = imported
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["import", "bhcc", "--src", str(src), "--out", str(out), "--seed", "4"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(BengaliaiError, match="another seed"):
        import_bhcc(src, out, seed=5)
    import_bhcc(src, tmp_path / "a", signs_out=tmp_path / "s", seed=4)
    assert (tmp_path / "a" / "train_image_data_0.parquet").read_bytes() == before["train_image_data_0.parquet"]
    assert (tmp_path / "s" / "train.csv").exists()


def test_missing_or_unreadable_pages_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "bhcc", "--src", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip()
    assert "Raw Dataset (Five Format)" in err and len(err.splitlines()) == 1
    root = tmp_path / "bad"
    (root / FIVE_FORMAT_DIR).mkdir(parents=True)
    write_xlsx(root / ROW_LIST, [("ক", "U+0995")])
    (root / FIVE_FORMAT_DIR / "page.jpg").write_bytes(b"not a scan")
    assert main(["import", "bhcc", "--src", str(root), "--out", str(tmp_path / "o")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "no readable page" in err[-1] and not (tmp_path / "o").exists()
