"""``bengaliai import bhcc --dev-writers``: held-out writers as a real-handwriting dev folder, never in training.

The corpus is ``test_bhcc``'s drawn page; each split import is compared with an import of the same
corpus and seed without a split, whose images the split must reproduce byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import build_parser, main
from bengaliai.core.competition import HEIGHT, TRAIN_COLUMNS, WIDTH
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.parquet_images import read_images
from bengaliai.handwriting.bhcc import DEV_DATASET, SOURCE_COLUMNS, import_bhcc

from test_bhcc import BLANK_ROW, BLANK_WRITER, _help, make_corpus

PARQUET = "train_image_data_0.parquet"
DEV = 2  # the writer held out; BLANK_WRITER too, so the dev split has a blank cell of its own


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _train(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "train.csv", dtype={"grapheme": str})


@pytest.fixture(scope="module")
def imports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The corpus, an import without a split (``plain``) and one holding writer 2 out (``split``, its dev folder beside)."""
    src = make_corpus(tmp_path_factory.mktemp("bhcc"))
    plain = tmp_path_factory.mktemp("plain") / "bhcc"
    split = tmp_path_factory.mktemp("split") / "bhcc"
    import_bhcc(src, plain, seed=4)
    manifest = import_bhcc(src, split, seed=4, dev_writers=[DEV])
    assert manifest["dev"] == {"out": str(split.with_name("bhcc_dev")), "writers": [DEV], "images": 7}
    return {"src": src, "plain": plain, "split": split, "dev": split.with_name("bhcc_dev")}


def test_no_dev_writers_gives_the_same_bytes_and_no_dev_folder(imports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bhcc"
    assert main(["import", "bhcc", "--src", str(imports["src"]), "--out", str(out), "--seed", "4"]) == 0
    plain = imports["plain"]
    assert _files(out) == {**_files(plain), "import.json": (out / "import.json").read_bytes()}
    assert _files(out.with_name("bhcc_signs"))["train.csv"] == _files(plain.with_name("bhcc_signs"))["train.csv"]
    saved = json.loads((out / "import.json").read_text(encoding="utf-8"))
    assert "dev_writers" not in saved and "dev_images" not in saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bhcc", "bhcc_signs"]


def test_held_out_writer_is_not_in_training_and_the_rest_is_unchanged(imports: dict[str, Path]) -> None:
    plain, split = _train(imports["plain"]), _train(imports["split"])
    assert not split["image_id"].str.endswith(f"_{DEV}").any()
    kept = plain[~plain["image_id"].str.endswith(f"_{DEV}")].reset_index(drop=True)
    pd.testing.assert_frame_equal(split, kept)
    ids, images = read_images(imports["split"] / PARQUET)
    plain_ids, plain_images = read_images(imports["plain"] / PARQUET)
    assert ids == kept["image_id"].tolist()
    np.testing.assert_array_equal(images, plain_images[[plain_ids.index(i) for i in ids]])
    sources = pd.read_csv(imports["split"] / "sources.csv")
    assert DEV not in set(sources["writer"])
    saved = json.loads((imports["split"] / "import.json").read_text(encoding="utf-8"))
    assert saved["dev_writers"] == [DEV] and saved["dev_images"] == 7 and saved["images"] == 39 - 7
    assert saved["writers"] == {"1": 8, "2": 0, "3": 8, "4": 8, "5": 8} and saved["blank_cells"] == []


def test_held_out_writer_signs_go_nowhere(imports: dict[str, Path]) -> None:
    plain = _train(imports["plain"].with_name("bhcc_signs"))
    signs = _train(imports["split"].with_name("bhcc_signs"))
    assert signs["image_id"].tolist() == [i for i in plain["image_id"] if not i.endswith(f"_{DEV}")]
    assert len(signs) == 8
    saved = json.loads((imports["split"].with_name("bhcc_signs") / "import.json").read_text(encoding="utf-8"))
    assert saved["dev_writers"] == [DEV] and saved["writers"]["2"] == 0
    assert not any(p.name.endswith(f"_{DEV}.png") for p in imports["split"].with_name("bhcc_signs").iterdir())


def test_dev_folder_holds_the_frames_the_parquet_would_have_held(imports: dict[str, Path]) -> None:
    dev, plain = imports["dev"], _train(imports["plain"])
    expected = plain[plain["image_id"].str.endswith(f"_{DEV}")].reset_index(drop=True)
    assert expected["image_id"].tolist() == [f"BHCC_{r}_{DEV}" for r in (0, 2, 3, 4, 5, 6, 11)]  # row 1's is blank
    labels = pd.read_csv(dev / "labels.csv", dtype={"image_id": str}, keep_default_na=False)  # as the benchmark reads
    assert tuple(labels.columns) == TRAIN_COLUMNS == (
        "image_id", "grapheme_root", "vowel_diacritic", "consonant_diacritic", "grapheme"
    )
    pd.testing.assert_frame_equal(labels, expected)
    pngs = sorted(p.name for p in dev.glob("*.png"))
    assert pngs == sorted(f"{i}.png" for i in expected["image_id"])
    assert sorted(p.name for p in dev.iterdir()) == sorted([*pngs, "import.json", "labels.csv", "sources.csv"])
    plain_ids, plain_images = read_images(imports["plain"] / PARQUET)
    for image_id in expected["image_id"]:
        image = cv2.imread(str(dev / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH)  # one grey channel, 137x236
        np.testing.assert_array_equal(image, plain_images[plain_ids.index(image_id)])  # dark ink, 255 paper
        assert np.median(image) > 240 and image.min() < 100
    sources = pd.read_csv(dev / "sources.csv")
    assert tuple(sources.columns) == SOURCE_COLUMNS and set(sources["writer"]) == {DEV}
    assert sources["image_id"].tolist() == expected["image_id"].tolist()


def test_dev_manifest_names_its_writers(imports: dict[str, Path]) -> None:
    saved = json.loads((imports["dev"] / "import.json").read_text(encoding="utf-8"))
    assert saved["dataset"] == DEV_DATASET and saved["seed"] == 4 and saved["complete"]
    assert saved["dev_writers"] == [DEV] and saved["writers"] == {"2": 7} and saved["images"] == 7
    assert saved["blank_cells"] == [{"image_id": f"BHCC_{BLANK_ROW}_{BLANK_WRITER}", "page": "page_1.png",
                                     "page_row": BLANK_ROW}]
    assert saved["unseen_graphemes"] == 1 and "never trained on" in saved["content"]


def test_rerun_gives_the_same_bytes_and_other_writers_need_force(imports: dict[str, Path]) -> None:
    folders = [imports["split"], imports["split"].with_name("bhcc_signs"), imports["dev"]]
    before = [_files(f) for f in folders]
    argv = ["import", "bhcc", "--src", str(imports["src"]), "--out", str(imports["split"]), "--seed", "4"]
    assert main([*argv, "--dev-writers", str(DEV)]) == 0
    assert [_files(f) for f in folders] == before
    with pytest.raises(BengaliaiError, match="writers 2 held out, this one holds out none; pass --force"):
        import_bhcc(imports["src"], imports["split"], seed=4)
    with pytest.raises(BengaliaiError, match="writers 2 held out, this one holds out 3 5"):
        import_bhcc(imports["src"], imports["split"], seed=4, dev_writers=[5, 3])
    assert [_files(f) for f in folders] == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--dev-writers", "6"], "--dev-writers 6: no such writer; the corpus's writers are 1-5"),
        (["--dev-writers", "2", "0"], "--dev-writers 0: no such writer; the corpus's writers are 1-5"),
        (["--dev-writers", "1", "2", "3", "4", "5"], "all 5 writers, which leaves nothing to train on"),
        (["--dev-writers", "2", "--dev-out", "{out}"], "is --out itself"),
        (["--dev-writers", "2", "--dev-out", "{out}_signs"], "is --signs-out itself"),
        (["--dev-writers", "2", "--signs-out", "{out}_dev"], "is --signs-out itself"),
        (["--dev-out", "{out}_x"], "without --dev-writers"),
    ],
)
def test_bad_split_is_one_line_and_writes_nothing(options: list[str], message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    options = [o.format(out=out) for o in options]
    assert main(["import", "bhcc", "--src", str(tmp_path / "corpus"), "--out", str(out), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_parses_the_split_options() -> None:
    parser = build_parser()
    base = ["import", "bhcc", "--src", "corpus", "--out", "o"]
    args = parser.parse_args(base)
    assert args.dev_writers == [] and args.dev_out is None
    args = parser.parse_args([*base, "--dev-writers", "4", "5", "--dev-out", "real_dev"])
    assert args.dev_writers == [4, 5] and args.dev_out == Path("real_dev")
    text = _help(["import", "bhcc", "--help"])
    assert "hold these writers out as a second real dev split (never trained on); e.g. --dev-writers 4 5" in text
    assert "<OUT>_dev" in text
