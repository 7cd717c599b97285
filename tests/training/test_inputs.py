"""One fold's input: extra training sources (data.extra) join every training split, never validation, and bad ones fail first."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bengaliai.core.config import load_config
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import make_folds
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.training.loader import EpochBatches
from bengaliai.training.train import TrainConfig, train

from builders import write_pattern_dataset

SIZE48 = PreprocessConfig(mode="resize", size=48)


@pytest.fixture(scope="module")
def prepared_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A main input (120 images, 3 folds) and an extra source (60 images), both prepared: made once."""
    root = tmp_path_factory.mktemp("sources")
    write_pattern_dataset(root / "input", 120)
    prepare(root / "input", SIZE48, workers=1, splits=("train",))
    make_folds(root / "input", n_splits=3, seed=0)
    write_pattern_dataset(root / "handwriting", 60, seed=5, n_files=1, prefix="HW")
    prepare(root / "handwriting", SIZE48, workers=1, splits=("train",))
    return root


@pytest.fixture
def main_and_extra(prepared_sources: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the prepared sources that a test may change."""
    import shutil

    for name in ("input", "handwriting"):
        shutil.copytree(prepared_sources / name, tmp_path / name)
    return tmp_path / "input", tmp_path / "handwriting"


def _config(main: Path, output: Path, *overrides: str) -> TrainConfig:
    return load_config(TrainConfig, None, [
        f"data.input={main}", f"output={output}", "data.cache=resize48", "data.batch_size=16", "data.workers=0",
        "model.arch=resnet10", "model.base_width=8", "epochs=1", "precision=fp32", "experiment=extra", *overrides,
    ])


def test_extra_images_train_in_every_batch_and_are_never_validated(
    main_and_extra: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bengaliai.training import loader as data_module

    main, extra = main_and_extra
    seen_batches: list[np.ndarray] = []
    real_iter = data_module.EpochBatches.__iter__

    def recording(self):  # noqa: ANN001, ANN202
        for key in real_iter(self):
            if self.shuffle:
                seen_batches.append(key[2])
            yield key

    monkeypatch.setattr(data_module.EpochBatches, "__iter__", recording)
    config = _config(main, tmp_path / "runs", f"data.extra=[{extra}]", "data.extra_share=[0.25]")
    train(config, folds="0")
    run = tmp_path / "runs" / "extra" / "fold0"
    oof_ids = np.load(run / "oof.npz")["image_id"].tolist()
    assert oof_ids and not any(i.startswith("HW_") for i in oof_ids)  # validation: main input only
    # 80 training images of the main input at 12 a batch (16 minus 4 extra): 6 steps.
    assert len(seen_batches) == 6 and all(len(batch) == 16 for batch in seen_batches)
    extra_positions = np.concatenate([batch[12:] for batch in seen_batches])
    assert extra_positions.min() >= 120 and len(np.unique(extra_positions)) == 24  # no repeats within a pass
    resolved = yaml.safe_load((run / "config.yaml").read_text())["resolved"]["extra_sources"]
    assert resolved == [{"path": str(extra), "images": 60, "share": 0.25, "heads": "all", "per_batch": 4,
                         "held_out_graphemes": 0, "held_out_images": 0}]

    from bengaliai.evaluation.leaderboard import collect_leaderboard

    assert collect_leaderboard(tmp_path / "runs")["extra"].tolist() == ["handwriting:0.25"]


def test_a_fold_is_put_together_once_main_rows_then_extra_pools_and_the_batch_plan(prepared_sources: Path) -> None:
    from bengaliai.data.folds import read_folds
    from bengaliai.training.inputs import fold_inputs

    main, extra = prepared_sources / "input", prepared_sources / "handwriting"
    config = _config(main, prepared_sources / "runs", f"data.extra=[{extra}]", "data.extra_share=[0.25]")
    folds_path = main / "train_folds.csv"
    inputs = fold_inputs(config.data, read_folds(folds_path), 0, folds_path, world_size=2)
    assert len(inputs.train_rows) == 80 and len(inputs.valid_rows) == 40 and max(inputs.valid_rows) < 120
    assert not set(inputs.train_rows.tolist()) & set(inputs.valid_rows.tolist())
    assert inputs.global_batch == 32 and inputs.extra_per_batch == [8]
    assert [pool.tolist() for pool in inputs.extra_pools] == [list(range(120, 180))]
    assert inputs.preprocess["size"] == 48 and inputs.extra_sources[0]["per_batch"] == 8


def test_a_source_showing_held_out_graphemes_is_counted() -> None:
    from bengaliai.training.inputs import TrainingData, describe_sources, held_out_overlap
    from bengaliai.training.sources import ExtraSource

    main = np.array([[1, 0, 0], [2, 1, 0], [3, 0, 0], [3, 0, 0]])
    held_out = np.array([False, True, True, True])  # graphemes (2,1,0) and (3,0,0) are unseen in the folds
    renders = np.array([[2, 1, 0], [3, 0, 0], [3, 0, 0], [1, 0, 0], [4, 0, 0]])  # shows both, 3 images
    unseen_only = np.array([[5, 1, 0], [2, 0, 0]])  # shows neither
    labels = np.concatenate([main, renders, unseen_only])
    extra = (ExtraSource(Path("lf"), np.arange(4, 9), 0.2), ExtraSource(Path("un"), np.arange(9, 11), 0.1))
    data = TrainingData(store=None, labels=labels, n_main=4, extra=extra)  # type: ignore[arg-type]
    overlap = held_out_overlap(data, held_out)
    assert overlap == [(2, 3), (0, 0)]
    rows = describe_sources(data, [3, 1], overlap)
    assert rows[0]["held_out_graphemes"] == 2 and rows[0]["held_out_images"] == 3 and rows[1]["held_out_images"] == 0


def test_without_a_share_a_source_counts_in_proportion_to_its_size() -> None:
    sampler = EpochBatches(np.arange(90), 20, seed=0, extra=[np.arange(100, 130)], extra_per_batch=[5])
    batches = [b[2] for b in sampler]
    assert len(batches) == 6 and all(len(b) == 20 and (b[15:] >= 100).all() for b in batches)
    stream = np.concatenate([b[15:] for b in batches])
    assert sorted(stream.tolist()) == list(range(100, 130))  # one whole pass, each once
    sampler.set_epoch(1)
    assert not np.array_equal(next(iter(sampler))[2], batches[0])
    halves = [[b[2] for b in EpochBatches(np.arange(90), 20, 0, rank=r, world_size=2, extra=[np.arange(100, 130)],
                                         extra_per_batch=[5])] for r in range(2)]
    assert all(sorted(np.concatenate([a, b]).tolist()) == sorted(w.tolist()) for a, b, w in zip(*halves, batches))


def _rewrite_ids(folder: Path, old: str, new: str) -> None:
    labels = pd.read_csv(folder / "train.csv")
    labels["image_id"] = labels["image_id"].str.replace(old, new)
    labels.to_csv(folder / "train.csv", index=False)
    for csv in (folder / "cache" / "resize48").glob("*.csv"):
        ids = pd.read_csv(csv)
        ids["image_id"] = ids["image_id"].str.replace(old, new)
        ids.to_csv(csv, index=False)


@pytest.mark.parametrize(
    "problem", ["settings", "unprepared", "labels", "collision", "not a source", "stale", "no image"]
)
def test_a_bad_source_is_refused_before_any_training(
    main_and_extra: tuple[Path, Path], tmp_path: Path, problem: str
) -> None:
    main, extra = main_and_extra
    expected = {
        "settings": r"prepared with \{.*'size': 40.*but the main input's cache was prepared with",
        "unprepared": r"this source has no resize48 cache; run `bengaliai prepare --input .*handwriting --splits train",
        "labels": r"handwriting/train.csv.*grapheme_root",
        "collision": r"handwriting/train.csv: 60 image id\(s\) also in .*input/train.csv, e.g. Train_0",
        "not a source": r"no train.csv here",
        "stale": r"handwriting/train_image_data_0.parquet: changed since the resize48 cache .* was prepared from it",
        "no image": r"handwriting/train.csv: 1 of 61 image ids have no image in the cache .*resize48: HW_60; ",
    }[problem]
    if problem == "settings":
        import shutil

        shutil.rmtree(extra / "cache")
        prepare(extra, PreprocessConfig(mode="resize", size=40), workers=1, splits=("train",))
        (extra / "cache" / "resize40").rename(extra / "cache" / "resize48")
    elif problem == "unprepared":
        import shutil

        shutil.rmtree(extra / "cache")
    elif problem == "labels":
        labels = pd.read_csv(extra / "train.csv")
        labels.loc[3, "grapheme_root"] = 168
        labels.to_csv(extra / "train.csv", index=False)
    elif problem == "collision":
        _rewrite_ids(extra, "HW_", "Train_")
    elif problem == "stale":
        os.utime(extra / "train_image_data_0.parquet")
    elif problem == "no image":
        labels = pd.read_csv(extra / "train.csv")
        pd.concat([labels, labels.iloc[:1].assign(image_id="HW_60")]).to_csv(extra / "train.csv", index=False)
    else:
        (extra / "train.csv").unlink()
    with pytest.raises(BengaliaiError, match=expected):
        train(_config(main, tmp_path / "runs", f"data.extra=[{extra}]"), folds="0")
    assert not (tmp_path / "runs" / "extra" / "fold0" / "last.pt").exists()


def test_shares_are_checked_when_the_config_loads(main_and_extra: tuple[Path, Path], tmp_path: Path) -> None:
    main, extra = main_and_extra
    with pytest.raises(BengaliaiError, match="1 share\\(s\\) for 0 extra source"):
        _config(main, tmp_path, "data.extra_share=[0.5]")
    with pytest.raises(BengaliaiError, match="sum below 1"):
        _config(main, tmp_path, f"data.extra=[{extra},{main}]", "data.extra_share=[0.5,0.6]")


def test_a_source_supervising_the_root_only_trains_with_its_other_labels_masked(
    main_and_extra: tuple[Path, Path], tmp_path: Path
) -> None:
    from bengaliai.data.prepare import cache_settings
    from bengaliai.data.supervision import AUX_IGNORED, IGNORED
    from bengaliai.evaluation.leaderboard import collect_leaderboard
    from bengaliai.training.inputs import open_training_data

    main, extra = main_and_extra
    config = _config(main, tmp_path / "runs", f"data.extra=[{extra}]", "data.extra_share=[0.25]", "data.extra_heads=[root]",
                     "model.aux_graphemes=true")
    data = open_training_data(config.data, cache_settings(main, "resize48"))
    unmasked = open_training_data(_config(main, tmp_path, f"data.extra=[{extra}]").data, cache_settings(main, "resize48"))
    rows = data.labels[data.extra[0].indices]
    assert (rows[:, 1:3] == IGNORED).all() and (rows[:, 3] == AUX_IGNORED).all()
    assert np.array_equal(rows[:, 0], unmasked.labels[data.extra[0].indices, 0])  # the root is kept
    assert np.array_equal(data.labels[: data.n_main], unmasked.labels[: data.n_main])  # the main input untouched
    train(config, folds="0")  # trains without a NaN from the masked heads
    resolved = yaml.safe_load((tmp_path / "runs" / "extra" / "fold0" / "config.yaml").read_text())["resolved"]
    assert resolved["extra_sources"][0]["heads"] == "root"
    assert collect_leaderboard(tmp_path / "runs")["extra"].tolist() == ["handwriting:0.25(root)"]


def test_extra_heads_are_checked_when_the_config_loads(main_and_extra: tuple[Path, Path], tmp_path: Path) -> None:
    main, extra = main_and_extra
    with pytest.raises(BengaliaiError, match="1 entries for 2 extra source"):
        _config(main, tmp_path, f"data.extra=[{extra},{main}]", "data.extra_heads=[root]")
    with pytest.raises(BengaliaiError, match="'roots': expected 'all' or heads from root/vowel/consonant"):
        _config(main, tmp_path, f"data.extra=[{extra}]", "data.extra_heads=[roots]")
    assert _config(main, tmp_path, f"data.extra=[{extra}]", "data.extra_heads=[vowel+root]").data.extra_heads == ("vowel+root",)


def test_a_share_that_rounds_far_from_its_request_is_said(caplog: pytest.LogCaptureFixture) -> None:
    from bengaliai.training.inputs import extra_per_batch
    from bengaliai.training.sources import ExtraSource

    tiny = ExtraSource(Path("handwriting"), np.arange(100, 160), 0.001)
    with caplog.at_level(logging.WARNING, logger="bengaliai.training.inputs"):
        assert extra_per_batch(64, 100, [tiny]) == [1]
    assert ("data.extra_share: extra source handwriting asks for 0.1% of every batch but gets 1 image of 64, 1.6% "
            "(whole images, at least one)") in caplog.text
    caplog.clear()
    small = ExtraSource(Path("renders"), np.arange(100, 102), 0.0)  # 2 of 1002 images: 0.2% by size
    with caplog.at_level(logging.WARNING, logger="bengaliai.training.inputs"):
        assert extra_per_batch(64, 1000, [small]) == [1]
    assert "extra source renders: its share of the training images, 0.2%, gets 1 image of 64, 1.6%" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bengaliai.training.inputs"):
        assert extra_per_batch(16, 80, [ExtraSource(Path("a"), np.arange(60), 0.25)]) == [4]
        assert extra_per_batch(64, 80, [ExtraSource(Path("b"), np.arange(60), 0.3)]) == [19]  # 29.7%: close enough
    assert not caplog.records
