"""A new backbone through the whole pipeline: train, checkpoint, resume exactly, predict, and the offline kernel.

The stages build the network from the configuration saved in each checkpoint (``model.arch``), so an
SE-ResNeXt with its deep stem and average-pooled shortcuts must pass them as the plain ResNets do.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from bengaliai.core.config import load_config
from bengaliai.data.folds import make_folds
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.inference.ensemble import InferenceConfig
from bengaliai.inference.predict import predict
from bengaliai.kaggle.kernel import build_kernel
from bengaliai.model.checkpoint import load_checkpoint
from bengaliai.training import engine
from bengaliai.training.train import TrainConfig, train

from builders import write_pattern_dataset, write_pattern_test
from test_kernel_equivalence import _isolated_python, _kaggle_layout

ARCH = "seresnext26d_32x4d"
SETTINGS = (
    f"model.arch={ARCH}", "model.base_width=8", "data.cache=resize32", "data.batch_size=16", "data.workers=0",
    "max_batches=2", "optim.lr=1e-2", "optim.warmup_epochs=0.5", "precision=fp32", "threads=1",
    "augment.distort_p=0", "augment.dropout_p=0", "augment.cutmix_p=0", "augment.rotate=3", "augment.shear=0",
)


def _config(input_dir: Path, output: Path, *overrides: str) -> TrainConfig:
    return load_config(TrainConfig, None, [*SETTINGS, f"data.input={input_dir}", f"output={output}", *overrides])


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 training and 12 test pattern images in competition format, a 32 px cache and 3 folds (shared: read only)."""
    input_dir = tmp_path_factory.mktemp("backbones") / "input"
    write_pattern_dataset(input_dir, 96)
    write_pattern_test(input_dir, 12)
    prepare(input_dir, PreprocessConfig(mode="resize", size=32), workers=1)
    make_folds(input_dir, n_splits=3, seed=0)
    return input_dir


@pytest.mark.slow
def test_seresnext_trains_resumes_exactly_predicts_and_runs_in_the_kernel(
    input_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train(_config(input_dir, tmp_path / "straight", "epochs=2", "experiment=sx"), folds="0")
    runs = tmp_path / "runs"
    config = _config(input_dir, runs, "epochs=2", "experiment=sx")
    # A Ctrl-C at the first batch of epoch 1 (epoch 0: 2 training batches and 1 validation batch).
    real, calls = engine.to_model_input, iter(range(1, 100))

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "to_model_input", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, folds="0")
    assert load_checkpoint(runs / "sx" / "fold0" / "last.pt")["epoch"] == 0
    monkeypatch.setattr(engine, "to_model_input", real)
    train(config, folds="0", resume=True)
    reference = load_checkpoint(tmp_path / "straight" / "sx" / "fold0" / "last.pt")
    resumed = load_checkpoint(runs / "sx" / "fold0" / "last.pt")
    assert resumed["config"]["model"]["arch"] == ARCH and resumed["epoch"] == 1
    assert any(k.startswith("conv1.6.") for k in resumed["model"]) and any(".se.fc1." in k for k in resumed["model"])
    assert resumed["model"].keys() == reference["model"].keys()
    for name, value in reference["model"].items():
        assert torch.equal(resumed["model"][name], value), name
    scores = [[{k: v for k, v in row.items() if k != "images_per_s"} for row in run["history"]] for run in (resumed, reference)]
    assert scores[0] == scores[1]

    settings = InferenceConfig(tta=2, precision="fp32")
    expected = predict(runs / "sx", folds="0", out=tmp_path / "predict.csv", config=settings, alpha=0.0, workers=1)
    submission = pd.read_csv(expected.submission)
    assert expected.folds == (0,) and expected.n_images == 12 and len(submission) == 36

    build = build_kernel(runs / "sx", tmp_path / "build", folds="0", config=settings, alpha=0.0, user="someone")
    workdir = tmp_path / "clean"
    workdir.mkdir()
    # _kaggle_layout reads the competition's test files from <run>/../../input.
    kaggle_root = _kaggle_layout(workdir, input_dir.parent / "runs" / "sx", build.dataset_dir)
    script = shutil.copy(build.kernel_dir / "inference.py", workdir / "inference.py")
    done = _isolated_python(Path(script), ["--root", str(kaggle_root)], workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (kaggle_root / "working" / "submission.csv").read_bytes() == expected.submission.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnext50_32x4d", "seresnext50_32x4d"])
def test_the_other_new_backbones_train_and_predict(arch: str, input_dir: Path, tmp_path: Path) -> None:
    train(_config(input_dir, tmp_path / "runs", f"model.arch={arch}", "epochs=1", "experiment=x"), folds="0")
    assert load_checkpoint(tmp_path / "runs" / "x" / "fold0" / "best.pt")["config"]["model"]["arch"] == arch
    result = predict(tmp_path / "runs" / "x", folds="0", out=tmp_path / "x.csv", config=InferenceConfig(precision="fp32"),
                     alpha=0.0, workers=1)
    assert result.n_images == 12 and len(pd.read_csv(result.submission)) == 36
