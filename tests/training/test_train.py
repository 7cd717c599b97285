"""Training end to end on CPU: the score rises, the run folder describes itself, resume is exact."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bengaliai.core.competition import COMPONENTS
from bengaliai.core.config import load_config
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import make_folds
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.model.checkpoint import load_checkpoint
from bengaliai.model.classifier import build_model
from bengaliai.training import engine
from bengaliai.training.run_folder import METRICS_COLUMNS
from bengaliai.training.train import TrainConfig, train

from builders import write_pattern_dataset


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


@pytest.fixture(scope="module")
def prepared_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pattern dataset prepared as resize48 with 3 folds: made once for the module."""
    input_dir = tmp_path_factory.mktemp("prepared") / "input"
    write_pattern_dataset(input_dir, 240)
    return _prepared(input_dir)


@pytest.fixture
def prepared(prepared_once: Path, tmp_path: Path) -> Path:
    """A copy (times kept) of the prepared dataset that a test may change."""
    shutil.copytree(prepared_once, tmp_path / "input")
    return tmp_path / "input"


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
    with pytest.raises(BengaliaiError, match=r"fold0 already holds a run: pass --resume to continue it, or train under another"):
        train(config, folds="0")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_resume_after_a_crash_mid_epoch_ends_with_the_same_weights(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str,
    crash_at_batch: Callable[[int], Callable[[], None]],
) -> None:
    """fp16 runs through a GradScaler (on CPU tensors here): its state is saved and restored too."""
    from bengaliai.training import train as train_module

    # A fixed thread count: with threads=auto a busy neighbour could change it between the runs, and with
    # it the order of float sums.
    extra = ("augment.cutmix_p=0.5", f"precision={precision}", "threads=1")
    train(_config(prepared, tmp_path / "a", *extra), folds="1")
    reference = _weights(tmp_path / "a" / "smoke" / "fold1" / "last.pt")

    config = _config(prepared, tmp_path / "b", *extra)
    # 5 training and 2 validation batches per epoch: call 17 is batch 2 of epoch 2.
    disarm = crash_at_batch(17)
    with pytest.raises(KeyboardInterrupt):
        train(config, folds="1")
    crashed = load_checkpoint(tmp_path / "b" / "smoke" / "fold1" / "last.pt")
    assert crashed["epoch"] == 1
    assert crashed["resolved"]["precision"]["name"] == precision
    if precision == "fp16":
        assert crashed["scaler"]["scale"] > 0  # the GradScaler's state travels with the run
    else:
        assert crashed["scaler"] is None
    disarm()
    # On a GPU the saved random states must not be mapped to it (set_rng_state takes CPU bytes only).
    locations: list[object] = []
    real_load = train_module.load_checkpoint
    monkeypatch.setattr(train_module, "load_checkpoint", lambda path, where: locations.append(where) or real_load(path, where))
    train(config, folds="1", resume=True)
    assert locations == ["cpu"]
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
    # The flag lives on the device and is read every CHECK_EVERY steps and at the epoch's end.
    with pytest.raises(engine.NonFiniteLoss, match=r"loss is nan or inf at epoch 1, batches 0-4;"):
        train(_config(prepared, tmp_path / "runs"), folds="0")
    last = load_checkpoint(tmp_path / "runs" / "smoke" / "fold0" / "last.pt")
    assert last["epoch"] == 0


def test_bad_fold_is_refused(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match="folds 0..2, not \\[7\\]"):
        train(_config(prepared, tmp_path / "runs"), folds="7")


def test_config_round_trips_and_a_finished_run_can_be_extended(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Started from "ImageNet" weights (a fresh model's, saved as a checkpoint file).
    weights = tmp_path / "imagenet.pth"
    torch.manual_seed(123)
    torch.save(build_model(_config(prepared, tmp_path).model).state_dict(), weights)
    config = _config(prepared, tmp_path / "runs", "epochs=1", f"model.pretrained={weights}")
    with caplog.at_level("INFO"):
        train(config, folds="2")
    assert "loaded" in caplog.text and "backbone tensors" in caplog.text
    weights.unlink()  # the resume takes its weights from last.pt: the file is not needed again
    caplog.clear()
    with caplog.at_level("WARNING"):
        train(dataclasses.replace(config, epochs=2), folds="2", resume=True)
    assert "settings that differ from the run's: epochs" in caplog.text
    assert pd.read_csv(tmp_path / "runs" / "smoke" / "fold2" / "metrics.csv")["epoch"].tolist() == [0, 1]
    saved = load_checkpoint(tmp_path / "runs" / "smoke" / "fold2" / "last.pt")["config"]
    assert load_config(TrainConfig, None, []) != config
    from bengaliai.core.config import from_dict

    assert from_dict(TrainConfig, saved) == dataclasses.replace(config, epochs=2)
    assert dataclasses.asdict(config)["model"]["arch"] == "resnet10"


def test_two_processes_train_like_one_on_the_same_global_batch(prepared: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # GroupNorm: BatchNorm statistics would differ per process (SyncBatchNorm does not run on CPU).
    # No augmentation: its draws are seeded per rank. Everything else is the real training.
    settings = [
        f"data.input={prepared}", f"output={tmp_path / 'ddp'}", "data.cache=resize48", "data.batch_size=16",
        "data.workers=0", "model.arch=resnet10", "model.base_width=8", "model.norm=group", "epochs=2",
        "precision=fp32", "augment.affine_p=0", "augment.distort_p=0", "augment.dropout_p=0", "experiment=ddp",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "bengaliai", "train", "--fold", "0"]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    # data.batch_size is per process: 2 x 16 is the single process's batch of 32.
    single = load_config(TrainConfig, None, [s.replace("ddp", "single").replace("batch_size=16", "batch_size=32") for s in settings])
    train(single, folds="0")
    two = load_checkpoint(tmp_path / "ddp" / "ddp" / "fold0" / "last.pt")
    one = load_checkpoint(tmp_path / "single" / "single" / "fold0" / "last.pt")
    assert (two["world_size"], one["world_size"]) == (2, 1)
    for name, value in one["model"].items():
        assert torch.allclose(two["model"][name], value, rtol=1e-4, atol=1e-5), name
    assert two["history"][-1]["score"] == pytest.approx(one["history"][-1]["score"], abs=1e-6)
    assert two["history"][-1]["train_loss"] == pytest.approx(one["history"][-1]["train_loss"], rel=1e-4)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("data.batch_size=0", "data.batch_size must be >= 1, got 0"),
        ("epochs=0", "epochs must be >= 1, got 0"),
        ("optim.lr=-1", "optim.lr must be > 0, got -1"),
        ("augment.cutmix_p=-0.5", "augment.cutmix_p must be in [0, 1], got -0.5"),
        ("data.workers=-1", "data.workers must be >= 0 or auto"),
        ("threads=0", "threads must be >= 1 or auto"),
    ],
)
def test_nonsense_settings_are_refused_in_one_line(prepared: Path, tmp_path: Path, setting: str, message: str) -> None:
    with pytest.raises(BengaliaiError) as raised:
        _config(prepared, tmp_path / "runs", setting)
    assert str(raised.value) == message or message in str(raised.value).splitlines()[0]
    assert len(str(raised.value).splitlines()) == 1


def test_a_batch_larger_than_the_training_split_is_refused_before_any_work(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match=r"fold 0 of .*train_folds.csv has 160 training images, fewer than one batch of 200"):
        train(_config(prepared, tmp_path / "runs", "data.batch_size=200"), folds="0")
    assert not (tmp_path / "runs").exists()


def test_cli_says_what_is_wrong_without_a_traceback(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bengaliai.cli.main import main

    code = main(["train", "--set", f"data.input={prepared}", "--set", f"output={tmp_path}", "--set", "optim.lr=-1"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "bengaliai train: error: optim.lr must be > 0, got -1.0"


def test_training_from_a_read_only_input_with_cache_and_folds_elsewhere(pattern_dataset: Path, tmp_path: Path) -> None:
    """Kaggle: the input is /kaggle/input (read-only); the cache and the folds go to /kaggle/working."""
    before = sorted(p.relative_to(pattern_dataset) for p in pattern_dataset.rglob("*"))
    working = tmp_path / "working"
    prepare(pattern_dataset, PreprocessConfig(mode="resize", size=48), workers=1, splits=("train",), cache_root=working / "cache")
    folds = make_folds(pattern_dataset, n_splits=3, seed=0, out=working / "folds.csv")
    config = _config(
        pattern_dataset, working / "runs", "epochs=1", f"data.cache_dir={working / 'cache'}", f"folds_file={folds}"
    )
    scores = train(config, folds="0")
    assert 0 <= scores[0] <= 1
    assert sorted(p.relative_to(pattern_dataset) for p in pattern_dataset.rglob("*")) == before
    assert (working / "runs" / "smoke" / "fold0" / "best.pt").is_file()


def test_a_non_finite_loss_on_one_rank_stops_both_ranks_with_one_message(prepared: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "nan_on_rank1.py"
    script.write_text(
        "import os, sys\n"
        "from bengaliai.training import engine\n"
        "from bengaliai.cli.main import main\n"
        "real = engine.weighted_loss\n"
        "def explode(*args, **kwargs):\n"
        "    loss = real(*args, **kwargs)\n"
        "    return loss * float('nan') if os.environ['RANK'] == '1' else loss\n"
        "engine.weighted_loss = explode\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    settings = [
        f"data.input={prepared}", f"output={tmp_path / 'ddp'}", "data.cache=resize48", "data.batch_size=16",
        "data.workers=0", "model.arch=resnet10", "model.base_width=8", "model.norm=group", "epochs=2",
        "precision=fp32", "experiment=ddp",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), "train", "--fold", "0"]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
    assert result.returncode != 0
    # Rank 1's NaN reaches rank 0's weights through the gradient all-reduce, so both may be named.
    stopped = re.findall(r"error: loss is nan or inf at epoch 0, batches 0-4 on rank\(s\) (?:0, )?1;", result.stderr)
    assert len(stopped) == 2, result.stderr[-3000:]  # each rank says it once, then exits
    assert not (tmp_path / "ddp" / "ddp" / "fold0" / "last.pt").exists()


def test_fold_selection() -> None:
    from bengaliai.training.train import parse_folds

    assert parse_folds("all", 5) == [0, 1, 2, 3, 4]
    assert parse_folds("0,3", 5) == [0, 3]
    with pytest.raises(BengaliaiError, match="expected 'all' or fold numbers"):
        parse_folds("first", 5)
