"""Folds: stratified over one-hot labels, balanced, seeded, with whole graphemes held out."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPONENTS, seen_graphemes
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.folds import FOLDS_CSV, align_folds, assign_folds, fold_masks, make_folds, one_hot, read_folds

K = 5


def labels_frame(seed: int = 0, low: int = 2, high: int = 4) -> pd.DataFrame:
    """Every real training grapheme, each with ``low``..``high`` images: every class has two or more."""
    rng = np.random.default_rng(seed)
    rows = []
    for grapheme in seen_graphemes():
        for _ in range(rng.integers(low, high + 1)):
            rows.append((f"Train_{len(rows)}", *grapheme.labels, grapheme.text))
    return pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"])


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    return labels_frame()


@pytest.fixture(scope="module")
def folds(labels: pd.DataFrame) -> pd.DataFrame:
    return assign_folds(labels, n_splits=K, seed=0)


@pytest.fixture(scope="module")
def unseen_folds(labels: pd.DataFrame) -> pd.DataFrame:
    return assign_folds(labels, n_splits=K, seed=0, unseen_graphemes=60)


def write_train(folder: Path, labels: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    labels.to_csv(folder / "train.csv", index=False)
    return folder


def test_one_hot_has_one_column_per_class_and_three_ones_per_row(labels: pd.DataFrame) -> None:
    codes = one_hot(labels.iloc[:3])
    assert codes.shape == (3, 168 + 11 + 7)
    assert codes.sum(axis=1).tolist() == [3, 3, 3]
    root, vowel, consonant = (int(labels.iloc[0][c]) for c in COMPONENTS)
    assert codes[0, root] and codes[0, 168 + vowel] and codes[0, 168 + 11 + consonant]


def assert_every_class_in_every_training_split(labels: pd.DataFrame, folds: pd.DataFrame) -> None:
    for fold in range(K):
        train, _ = fold_masks(folds, fold)
        for component in COMPONENTS:
            expected = set(labels[component])
            assert set(labels.loc[train, component]) == expected, (fold, component)


def test_every_class_is_in_every_training_split(labels: pd.DataFrame, folds: pd.DataFrame) -> None:
    assert folds["image_id"].tolist() == labels["image_id"].tolist()
    assert set(folds["fold"]) == set(range(K)) and not folds["unseen"].any()
    assert_every_class_in_every_training_split(labels, folds)


def test_fold_sizes_are_within_one_percent(folds: pd.DataFrame, unseen_folds: pd.DataFrame) -> None:
    for frame in (folds, unseen_folds):
        sizes = np.bincount(frame["fold"], minlength=K)
        assert sizes.max() - sizes.min() <= 0.01 * sizes.mean(), sizes


def test_each_class_is_spread_evenly_over_the_folds(labels: pd.DataFrame, folds: pd.DataFrame) -> None:
    # Stratifying the raw integer labels would only balance label 0 against the rest (off by 6-8
    # images here); one-hot stratification gives each fold its share of every rare class, less
    # than one image off. (Frequent classes share images with many others and drift further.)
    codes = one_hot(labels)
    per_fold = np.stack([codes[folds["fold"].to_numpy() == k].sum(axis=0) for k in range(K)])
    share = codes.sum(axis=0) / K
    rare = codes.sum(axis=0) <= 50
    assert rare.sum() > 100
    assert np.all(np.abs(per_fold - share)[:, rare] < 1), np.abs(per_fold - share)[:, rare].max()


def test_same_seed_same_file_and_other_seed_other_folds(tmp_path: Path, labels: pd.DataFrame) -> None:
    small = labels.iloc[:600]
    paths = [make_folds(write_train(tmp_path / name, small), n_splits=K, seed=seed)
             for name, seed in (("a", 3), ("b", 3), ("c", 4))]
    assert paths[0] == tmp_path / "a" / FOLDS_CSV
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert not np.array_equal(read_folds(paths[0])["fold"], read_folds(paths[2])["fold"])


def test_unseen_graphemes_are_held_out_whole(labels: pd.DataFrame, unseen_folds: pd.DataFrame) -> None:
    unseen = unseen_folds["unseen"].to_numpy()
    held_out = set(labels.loc[unseen, "grapheme"])
    assert len(held_out) == 60
    # Whole graphemes: no image of a held-out grapheme is left for training.
    assert not labels.loc[~unseen, "grapheme"].isin(held_out).any()
    for fold in range(K):
        train, valid = fold_masks(unseen_folds, fold)
        assert not (train & unseen).any() and (valid[unseen]).all()
    # Unseen images still get a fold of their own, for their out-of-fold prediction.
    assert set(unseen_folds.loc[unseen, "fold"]) == set(range(K))
    seen = labels.loc[~unseen]
    for fold in range(K):
        train, _ = fold_masks(unseen_folds, fold)
        for component in COMPONENTS:
            assert set(labels.loc[train, component]) == set(seen[component]) == set(labels[component])


def test_unseen_choice_follows_the_seed(labels: pd.DataFrame, unseen_folds: pd.DataFrame) -> None:
    again = assign_folds(labels, n_splits=K, seed=0, unseen_graphemes=60)
    other = assign_folds(labels, n_splits=K, seed=1, unseen_graphemes=60)
    assert again.equals(unseen_folds)
    assert set(labels.loc[other["unseen"], "grapheme"]) != set(labels.loc[unseen_folds["unseen"], "grapheme"])


def test_too_many_unseen_graphemes_is_a_clear_error() -> None:
    # Each root occurs in one grapheme only: no grapheme can go without taking its root along.
    rows = [(f"Train_{i * 3 + j}", i, 0, 0, f"g{i}") for i in range(10) for j in range(3)]
    labels = pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"])
    with pytest.raises(BengaliaiError, match="cannot hold out 1 unseen graphemes: with seed 0 only 0 of the 10"):
        assign_folds(labels, n_splits=K, seed=0, unseen_graphemes=1)
    with pytest.raises(BengaliaiError, match="only 10 distinct graphemes"):
        assign_folds(labels, n_splits=K, seed=0, unseen_graphemes=10)


def test_bad_fold_counts_are_rejected(labels: pd.DataFrame) -> None:
    with pytest.raises(BengaliaiError, match="at least 2 folds"):
        assign_folds(labels, n_splits=1)
    with pytest.raises(BengaliaiError, match="cannot split 3 images into 5 folds"):
        assign_folds(labels.iloc[:3], n_splits=5)


def test_make_folds_writes_the_file_atomically_and_read_folds_round_trips(tmp_path: Path, labels: pd.DataFrame) -> None:
    folder = write_train(tmp_path / "input", labels.iloc[:400])
    path = make_folds(folder, n_splits=4, seed=0, unseen_graphemes=5)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "image_id,fold,unseen"
    assert sorted(p.name for p in folder.iterdir()) == ["train.csv", FOLDS_CSV]
    folds = read_folds(path)
    assert folds["fold"].dtype.kind == "i" and folds["unseen"].dtype == bool
    assert folds.equals(assign_folds(labels.iloc[:400].reset_index(drop=True), n_splits=4, seed=0, unseen_graphemes=5))


def test_make_folds_fails_on_a_bad_train_csv(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("image_id,grapheme_root\nTrain_0,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing column"):
        make_folds(tmp_path)
    assert not (tmp_path / FOLDS_CSV).exists()


def test_a_header_only_or_too_short_train_csv_is_named(tmp_path: Path, labels: pd.DataFrame) -> None:
    (tmp_path / "train.csv").write_text(
        "image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"train\.csv: .*only a header"):
        make_folds(tmp_path)
    write_train(tmp_path, labels.iloc[:3])
    with pytest.raises(DataError, match=r"train\.csv: 3 images cannot be split into 5 folds"):
        make_folds(tmp_path)
    assert not (tmp_path / FOLDS_CSV).exists()


def test_different_folds_replace_the_file_only_with_force(tmp_path: Path, labels: pd.DataFrame) -> None:
    folder = write_train(tmp_path / "input", labels.iloc[:200])
    path = make_folds(folder, n_splits=4, seed=0)
    before = path.read_bytes()
    with pytest.raises(BengaliaiError, match=rf"{FOLDS_CSV} exists and differs .*pass --force"):
        make_folds(folder, n_splits=4, seed=1)
    assert path.read_bytes() == before
    make_folds(folder, n_splits=4, seed=1, force=True)
    assert path.read_bytes() != before
    assert read_folds(path).equals(assign_folds(labels.iloc[:200].reset_index(drop=True), n_splits=4, seed=1))


def test_identical_folds_leave_the_file_untouched(
    tmp_path: Path, labels: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_train(tmp_path / "input", labels.iloc[:200])
    path = make_folds(folder, n_splits=4, seed=0)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    with caplog.at_level(logging.INFO, logger="bengaliai.data.folds"):
        assert make_folds(folder, n_splits=4, seed=0) == path
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert "unchanged" in caplog.text


def test_folds_out_writes_elsewhere_and_leaves_the_input_alone(tmp_path: Path, labels: pd.DataFrame) -> None:
    folder = write_train(tmp_path / "input", labels.iloc[:200])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "working" / "folds.csv"
    assert main(["folds", "--input", str(folder), "--n-splits", "4", "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert read_folds(out).equals(assign_folds(labels.iloc[:200].reset_index(drop=True), n_splits=4, seed=0))
    assert main(["folds", "--input", str(folder), "--n-splits", "4", "--seed", "1", "--out", str(out)]) == 2
    assert main(["folds", "--input", str(folder), "--n-splits", "4", "--seed", "1", "--out", str(out), "--force"]) == 0


def test_fold_masks_partition_the_seen_images(unseen_folds: pd.DataFrame) -> None:
    unseen = unseen_folds["unseen"].to_numpy()
    valid_seen = []
    for fold in range(K):
        train, valid = fold_masks(unseen_folds, fold)
        assert not (train & valid).any() and (train | valid).all()
        valid_seen.append(valid & ~unseen)
    # Each seen image is validated in exactly one fold.
    assert (np.sum(valid_seen, axis=0) == 1)[~unseen].all()
    with pytest.raises(BengaliaiError, match="fold 5 does not exist; the folds are 0..4"):
        fold_masks(unseen_folds, K)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("image_id,fold\nTrain_0,0\n", "missing column.*unseen"),
        ("image_id,fold,unseen\nTrain_0,0,False\nTrain_1,2,False\n", r"every fold 0..K-1, found \[0, 2\]"),
        ("image_id,fold,unseen\nTrain_0,0,False\nTrain_1,x,False\n", "fold must hold integers"),
        ("image_id,fold,unseen\nTrain_0,0,False\nTrain_0,1,False\n", "line 3: image_id Train_0 appears twice"),
        ("image_id,fold,unseen\nTrain_0,0,maybe\n", "unseen must hold True or False"),
        ("", "not a folds file"),
    ],
)
def test_read_folds_rejects_bad_files(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / FOLDS_CSV
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=problem):
        read_folds(path)


def test_read_folds_says_how_to_make_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run `bengaliai folds` first"):
        read_folds(tmp_path / FOLDS_CSV)


def test_align_folds_follows_the_given_order_and_names_missing_ids(unseen_folds: pd.DataFrame) -> None:
    ids = unseen_folds["image_id"].tolist()[::-1][:50]
    aligned = align_folds(unseen_folds, ids, Path("train_folds.csv"))
    assert aligned["image_id"].tolist() == ids
    assert aligned.equals(unseen_folds.iloc[::-1].iloc[:50].reset_index(drop=True))
    with pytest.raises(DataError, match="train_folds.csv: 2 of 3 images have no fold: Other_1, Other_2; run"):
        align_folds(unseen_folds, ["Other_1", ids[0], "Other_2"], Path("train_folds.csv"))
