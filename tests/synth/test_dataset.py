"""``bengaliai synth``: exact competition formats, images and determinism."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bengaliai.core.competition import (
    COMPONENTS,
    HEIGHT,
    N_CLASSES,
    PIXEL_COLUMNS,
    TEST_COMPONENT_ORDER,
    WIDTH,
    class_map_rows,
    image_parquet_name,
    seen_graphemes,
    seen_triples,
)
from bengaliai.core.errors import BengaliaiError
from bengaliai.synth import render
from bengaliai.synth.dataset import synthesize
from bengaliai.synth.sampling import file_sizes, sample_train

N_TRAIN, N_TEST, SEED = 40, 12, 7
FILES = [image_parquet_name(split, i) for split in ("train", "test") for i in range(4)]
CSVS = ["train.csv", "test.csv", "class_map.csv", "sample_submission.csv", "test_labels.csv", "synth.json"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, n_train=N_TRAIN, n_test=N_TEST, seed=SEED, workers=2)
    return out


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str, "row_id": str, "grapheme": str}, keep_default_na=False)


def test_writes_exactly_the_competition_files(dataset: Path) -> None:
    assert sorted(p.name for p in dataset.iterdir()) == sorted(CSVS + FILES)


def test_train_csv(dataset: Path) -> None:
    train = _csv(dataset / "train.csv")
    assert list(train.columns) == ["image_id", *COMPONENTS, "grapheme"]
    assert train["image_id"].tolist() == [f"Train_{i}" for i in range(N_TRAIN)]
    assert all(train[c].dtype == np.int64 for c in COMPONENTS)
    known = {g.text: g.labels for g in seen_graphemes()}
    for row in train.itertuples(index=False):
        assert known[row.grapheme] == (row.grapheme_root, row.vowel_diacritic, row.consonant_diacritic)
    assert len(set(train["grapheme"])) == N_TRAIN  # fewer images than graphemes: no repeats


def test_test_csv_sample_submission_and_labels(dataset: Path) -> None:
    test = _csv(dataset / "test.csv")
    assert list(test.columns) == ["row_id", "image_id", "component"]
    ids = [f"Test_{i}" for i in range(N_TEST)]
    assert test["image_id"].tolist() == [i for i in ids for _ in range(3)]
    assert test["component"].tolist() == list(TEST_COMPONENT_ORDER) * N_TEST
    assert (test["row_id"] == test["image_id"] + "_" + test["component"]).all()
    submission = _csv(dataset / "sample_submission.csv")
    assert list(submission.columns) == ["row_id", "target"]
    assert submission["row_id"].tolist() == test["row_id"].tolist()
    assert (submission["target"] == 0).all()
    labels = _csv(dataset / "test_labels.csv")
    assert list(labels.columns) == ["image_id", *COMPONENTS, "grapheme", "seen"]
    assert labels["image_id"].tolist() == ids
    assert labels["seen"].dtype == bool
    for component in COMPONENTS:
        assert labels[component].between(0, N_CLASSES[component] - 1).all()
    triples = list(zip(*(labels[c] for c in COMPONENTS), strict=True))
    assert [t in seen_triples() for t in triples] == labels["seen"].tolist()
    assert (~labels["seen"]).sum() == 2  # 15% of 12, rounded


def test_class_map(dataset: Path) -> None:
    class_map = _csv(dataset / "class_map.csv")
    assert list(class_map.columns) == ["component_type", "label", "component"]
    assert list(class_map.itertuples(index=False, name=None)) == class_map_rows()


def test_grapheme_strings_are_written_unnormalised(dataset: Path) -> None:
    text = (dataset / "train.csv").read_text(encoding="utf-8")
    train = _csv(dataset / "train.csv")
    assert all(g in text for g in train["grapheme"])
    assert "\r" not in text


def test_image_files(dataset: Path) -> None:
    train_ids = _csv(dataset / "train.csv")["image_id"].tolist()
    sizes = [pq.read_metadata(dataset / image_parquet_name("train", i)).num_rows for i in range(4)]
    assert sizes == [10, 10, 10, 10]
    table = pq.read_table(dataset / image_parquet_name("train", 1))
    assert table.column_names == ["image_id", *PIXEL_COLUMNS]
    assert table.column("image_id").to_pylist() == train_ids[10:20]
    assert str(table.schema.field("0").type) == "uint8"
    assert pq.ParquetFile(dataset / image_parquet_name("train", 1)).metadata.num_row_groups == 1
    images = np.stack([table.column(c).to_numpy() for c in PIXEL_COLUMNS], axis=1).reshape(-1, HEIGHT, WIDTH)
    for image in images:
        assert np.median(image) >= 235 and image.min() <= 110  # dark ink on light paper
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert border.min() > 200  # nothing clipped
    assert len({image.tobytes() for image in images}) == len(images)


def test_same_seed_same_bytes_whatever_the_worker_count(dataset: Path, tmp_path: Path) -> None:
    synthesize(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=SEED, workers=1)
    for name in CSVS + FILES:
        assert (tmp_path / name).read_bytes() == (dataset / name).read_bytes(), name


def test_small_datasets_have_no_empty_image_files_and_drop_stale_ones(tmp_path: Path) -> None:
    assert file_sizes(0) == [] and file_sizes(3) == [1, 1, 1] and file_sizes(9) == [3, 2, 2, 2]
    stale = tmp_path / image_parquet_name("test", 3)
    stale.write_bytes(b"from an older, larger dataset")
    synthesize(tmp_path, n_train=2, n_test=0, seed=1, workers=1, force=True)  # no synth.json: not synth's, unless forced
    names = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert names == [image_parquet_name("train", 0), image_parquet_name("train", 1)]
    assert len(_csv(tmp_path / "test.csv")) == 0 and len(_csv(tmp_path / "train.csv")) == 2


@pytest.mark.slow
def test_another_seed_gives_other_data(dataset: Path, tmp_path: Path) -> None:
    synthesize(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=SEED + 1, workers=2)
    for name in ["train.csv", "test_labels.csv", *FILES]:
        assert (tmp_path / name).read_bytes() != (dataset / name).read_bytes(), name


def test_bad_arguments_and_missing_raqm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BengaliaiError, match="workers"):
        synthesize(tmp_path, n_train=1, n_test=1, seed=0, workers=0)
    monkeypatch.setattr(render.features, "check", lambda feature: False)
    with pytest.raises(BengaliaiError, match="raqm"):
        synthesize(tmp_path, n_train=1, n_test=1, seed=0, workers=1)
    assert not list(tmp_path.iterdir())


def test_manifest_says_the_dataset_is_complete(dataset: Path) -> None:
    import json

    manifest = json.loads((dataset / "synth.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert manifest["n_train"] == len(pd.read_csv(dataset / "train.csv"))


def test_skip_held_out_leaves_the_folds_held_out_graphemes_out_of_a_render(dataset: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from bengaliai.cli.main import main
    from bengaliai.data.folds import held_out_triples, make_folds

    main_dir = tmp_path / "main"
    shutil.copytree(dataset, main_dir)
    make_folds(main_dir, n_splits=2, seed=0, unseen_graphemes=3)
    folds = pd.read_csv(main_dir / "train_folds.csv", dtype={"image_id": str})
    train = _csv(main_dir / "train.csv").set_index("image_id")
    expected = {tuple(map(int, row)) for row in train.loc[folds.loc[folds["unseen"], "image_id"], list(COMPONENTS)].to_numpy()}
    held = held_out_triples(main_dir)
    assert held == expected and len(held) == 3
    drawn = {g.labels for g in sample_train(3000, seed=0, skip=held)}
    assert drawn == {g.labels for g in seen_graphemes()} - held  # every other training grapheme, none held out
    assert held <= {g.labels for g in sample_train(3000, seed=0)}
    out = tmp_path / "extra"
    assert main(["synth", "--out", str(out), "--train", "30", "--test", "0", "--workers", "1", "--id-prefix", "EX",
                 "--skip-held-out", str(main_dir)]) == 0
    assert json.loads((out / "synth.json").read_text())["graphemes"]["skipped_held_out"] == 3
    rendered = {tuple(map(int, row)) for row in _csv(out / "train.csv")[list(COMPONENTS)].to_numpy()}
    assert not rendered & held
    (main_dir / "train_folds.csv").unlink()
    with pytest.raises(BengaliaiError, match="run `bengaliai folds` first"):
        held_out_triples(main_dir)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_refuses_competition_files_it_did_not_write_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme\n")
    (tmp_path / image_parquet_name("train", 0)).write_bytes(b"the real data")
    before = _snapshot(tmp_path)
    with pytest.raises(BengaliaiError) as error:
        synthesize(tmp_path, n_train=2, n_test=0, seed=1, workers=1)
    assert str(error.value) == (
        f"{tmp_path} already holds competition files that `bengaliai synth` did not write (train.csv, "
        "train_image_data_0.parquet; no synth.json): pass --force to replace them, or choose another --out"
    )
    assert _snapshot(tmp_path) == before
    synthesize(tmp_path, n_train=2, n_test=0, seed=1, workers=1, force=True)
    assert len(_csv(tmp_path / "train.csv")) == 2


def test_refuses_a_synthetic_set_of_other_settings(dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    before = _snapshot(copy)
    with pytest.raises(BengaliaiError) as error:
        synthesize(copy, n_train=N_TRAIN + 1, n_test=N_TEST, seed=SEED + 1, workers=1)
    assert str(error.value) == (
        f"{copy} holds a synthetic dataset written with other settings (n_train {N_TRAIN} -> {N_TRAIN + 1}, seed "
        f"{SEED} -> {SEED + 1}): pass --force to replace it, or choose another --out"
    )
    with pytest.raises(BengaliaiError, match=r"other settings \(render.pen_p 0.5 -> 0.25\)"):
        synthesize(copy, n_train=N_TRAIN, n_test=N_TEST, seed=SEED, workers=1, config=render.RenderConfig(pen_p=0.25))
    assert _snapshot(copy) == before


def test_the_same_settings_are_written_again_and_an_unfinished_set_replaced(tmp_path: Path) -> None:
    import json

    synthesize(tmp_path, n_train=1, n_test=0, seed=1, workers=1)
    first = _snapshot(tmp_path)
    synthesize(tmp_path, n_train=1, n_test=0, seed=1, workers=1)  # the same settings: written again, the same bytes
    assert _snapshot(tmp_path) == first
    manifest = json.loads((tmp_path / "synth.json").read_text(encoding="utf-8"))
    (tmp_path / "synth.json").write_text(json.dumps(manifest | {"complete": False, "seed": 9}), encoding="utf-8")
    synthesize(tmp_path, n_train=1, n_test=0, seed=2, workers=1)  # an unfinished set is replaced
    assert json.loads((tmp_path / "synth.json").read_text(encoding="utf-8"))["seed"] == 2


def test_refuses_a_dataset_without_images_and_an_out_that_is_a_file(tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match=r"^no images to render: n_train and n_test are both 0"):
        synthesize(tmp_path / "empty", n_train=0, n_test=0, seed=0, workers=1)
    (tmp_path / "file").write_text("x")
    for out, what in [(tmp_path / "file", "it"), (tmp_path / "file" / "sub", str(tmp_path / "file"))]:
        with pytest.raises(BengaliaiError, match=re.escape(f"cannot write to {out}: {what} is a file, not a folder")):
            synthesize(out, n_train=1, n_test=0, seed=0, workers=1)
    assert not (tmp_path / "empty").exists()
