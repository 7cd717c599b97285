"""Training end to end on CPU: the score rises, the run folder describes itself, resume is exact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bengaliai import engine
from bengaliai.checkpoint import load_checkpoint
from bengaliai.competition import COMPONENTS
from bengaliai.config import load_config
from bengaliai.errors import BengaliaiError
from bengaliai.folds import make_folds
from bengaliai.prepare import prepare
from bengaliai.preprocess import PreprocessConfig
from bengaliai.train import METRICS_COLUMNS, TrainConfig, train


def _prepared(input_dir: Path) -> Path:
    prepare(input_dir, PreprocessConfig(mode="resize", size=48), workers=1, splits=("train",))
    make_folds(input_dir, n_splits=3, seed=0)
    return input_dir


def _config(input_dir: Path, output: Path, *overrides: str) -> TrainConfig:
    settings = [
        f"data.input={input_dir}", f"output={output}", "data.cache=resize48", "data.batch_size=32", "data.workers=0",
        "model.arch=resnet10", "model.base_width=8", "epochs=3", "optim.lr=3e-3", "optim.warmup_epochs=0.5",
        "precision=fp32", "augment.distort_p=0", "augment.dropout_p=0", "augment.affine_p=0.5", "augment.rotate=3",
        "augment.shear=0", "experiment=smoke", *overrides,
    ]
    return load_config(TrainConfig, None, settings)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


@pytest.fixture
def prepared(pattern_dataset: Path) -> Path:
    return _prepared(pattern_dataset)


def test_smoke_training_learns_and_leaves_a_complete_run_folder(prepared: Path, tmp_path: Path) -> None:
    config = _config(
        prepared, tmp_path / "runs", "epochs=4", "data.batch_size=16", "optim.lr=1e-2", "optim.ema_decay=0.9", "augment.cutmix_p=0.2"
    )
    scores = train(config, folds="0")
    # A constant prediction scores about 0.29 on these labels (1/6, 1/3, 1/2 weighted 2:1:1).
    assert scores[0] > 0.6
    run = tmp_path / "runs" / "smoke" / "fold0"
    for name in ("config.yaml", "run.json", "metrics.csv", "curves.png", "best.pt", "last.pt", "oof.npz"):
        assert (run / name).exists(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert tuple(metrics.columns) == METRICS_COLUMNS
    assert metrics["epoch"].tolist() == [0, 1, 2, 3]
    assert metrics["score"].max() == pytest.approx(scores[0])
    oof = np.load(run / "oof.npz")
    assert set(oof.files) == {"image_id", *COMPONENTS}
    folds = pd.read_csv(prepared / "train_folds.csv")
    assert sorted(oof["image_id"].tolist()) == sorted(folds.loc[folds["fold"] == 0, "image_id"].tolist())
    assert np.allclose(oof["grapheme_root"].sum(1), 1.0, atol=1e-4)
    best = load_checkpoint(run / "best.pt")
    assert best["config"]["model"]["arch"] == "resnet10" and best["fold"] == 0
    assert best["preprocess"] == {"mode": "resize", "size": 48, "ink_threshold": 80, "margin": 8}
    # The EMA's weights are what validation scored, so they are the ones to predict with.
    name = "layer1.0.conv1.weight"
    assert torch.equal(best["weights"][name], best["ema"][f"module.{name}"])
    assert not torch.equal(best["weights"][name], best["model"][name])
    with pytest.raises(BengaliaiError, match="already hold a run"):
        train(config, folds="0")


def test_resume_after_a_crash_mid_epoch_ends_with_the_same_weights(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train(_config(prepared, tmp_path / "a", "augment.cutmix_p=0.5"), folds="1")
    reference = _weights(tmp_path / "a" / "smoke" / "fold1" / "last.pt")

    calls = {"n": 0}
    real = engine.to_model_input

    def crash_in_epoch_two(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        # 5 training and 2 validation batches per epoch: call 17 is batch 2 of epoch 2.
        if calls["n"] == 17:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    config = _config(prepared, tmp_path / "b", "augment.cutmix_p=0.5")
    monkeypatch.setattr(engine, "to_model_input", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(config, folds="1")
    assert load_checkpoint(tmp_path / "b" / "smoke" / "fold1" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(engine, "to_model_input", real)
    train(config, folds="1", resume=True)
    resumed = _weights(tmp_path / "b" / "smoke" / "fold1" / "last.pt")
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), name


def test_non_finite_loss_stops_with_the_step_and_keeps_last_checkpoint(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine.weighted_loss
    calls = {"n": 0}

    def explode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 7 else loss

    monkeypatch.setattr(engine, "weighted_loss", explode)
    with pytest.raises(engine.NonFiniteLoss, match=r"loss is nan at epoch 1, batch 2"):
        train(_config(prepared, tmp_path / "runs"), folds="0")
    last = load_checkpoint(tmp_path / "runs" / "smoke" / "fold0" / "last.pt")
    assert last["epoch"] == 0


def test_bad_fold_is_refused(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match="folds 0..2, not \\[7\\]"):
        train(_config(prepared, tmp_path / "runs"), folds="7")


def test_config_round_trips_and_a_finished_run_can_be_extended(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(prepared, tmp_path / "runs", "epochs=1")
    train(config, folds="2")
    with caplog.at_level("WARNING"):
        train(dataclasses.replace(config, epochs=2), folds="2", resume=True)
    assert "settings that differ from the run's: epochs" in caplog.text
    assert pd.read_csv(tmp_path / "runs" / "smoke" / "fold2" / "metrics.csv")["epoch"].tolist() == [0, 1]
    saved = load_checkpoint(tmp_path / "runs" / "smoke" / "fold2" / "last.pt")["config"]
    assert load_config(TrainConfig, None, []) != config
    from bengaliai.config import from_dict

    assert from_dict(TrainConfig, saved) == dataclasses.replace(config, epochs=2)
    assert dataclasses.asdict(config)["model"]["arch"] == "resnet10"


def test_two_processes_train_like_one_on_the_same_global_batch(prepared: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # GroupNorm: BatchNorm statistics would differ per process (SyncBatchNorm does not run on CPU).
    # No augmentation: its draws are seeded per rank. Everything else is the real training.
    settings = [
        f"data.input={prepared}", f"output={tmp_path / 'ddp'}", "data.cache=resize48", "data.batch_size=32",
        "data.workers=0", "model.arch=resnet10", "model.base_width=8", "model.norm=group", "epochs=2",
        "precision=fp32", "augment.affine_p=0", "augment.distort_p=0", "augment.dropout_p=0", "experiment=ddp",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "bengaliai", "train", "--fold", "0"]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    single = load_config(TrainConfig, None, [s.replace("ddp", "single") for s in settings])
    train(single, folds="0")
    two = load_checkpoint(tmp_path / "ddp" / "ddp" / "fold0" / "last.pt")
    one = load_checkpoint(tmp_path / "single" / "single" / "fold0" / "last.pt")
    assert (two["world_size"], one["world_size"]) == (2, 1)
    for name, value in one["model"].items():
        assert torch.allclose(two["model"][name], value, rtol=1e-4, atol=1e-5), name
    assert two["history"][-1]["score"] == pytest.approx(one["history"][-1]["score"], abs=1e-6)
    assert two["history"][-1]["train_loss"] == pytest.approx(one["history"][-1]["train_loss"], rel=1e-4)


def test_fold_selection() -> None:
    from bengaliai.train import parse_folds

    assert parse_folds("all", 5) == [0, 1, 2, 3, 4]
    assert parse_folds("0,3", 5) == [0, 3]
    with pytest.raises(BengaliaiError, match="expected 'all' or fold numbers"):
        parse_folds("first", 5)
