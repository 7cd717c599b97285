"""Fixtures shared by several test folders: finished tiny runs on pattern data whose labels are learnable in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bengaliai.core.fileio import write_csv

from builders import write_pattern_dataset, write_pattern_test

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


TINY_RUN_SETTINGS = (
    "data.cache=resize48", "data.batch_size=16", "data.workers=0", "model.arch=resnet10", "model.base_width=8",
    "epochs=3", "optim.lr=1e-2", "optim.warmup_epochs=0.5", "precision=fp32", "augment.distort_p=0",
    "augment.dropout_p=0", "augment.cutmix_p=0", "augment.rotate=3", "augment.shear=0", "experiment=tiny",
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-fold run (runs/tiny/fold0..2) of a tiny model on a pattern dataset with a test split.

    Session-scoped and shared: tests must not modify it (copy it first). Layout: ``<root>/input``
    (competition files, test labels in ``test_labels.csv`` as synth writes them, the resize48 cache, train_folds.csv) and
    ``<root>/runs/tiny/fold<K>``. Returns ``<root>/runs/tiny``.
    """
    from bengaliai.core.config import load_config
    from bengaliai.data.folds import make_folds
    from bengaliai.data.prepare import prepare
    from bengaliai.data.preprocess import PreprocessConfig
    from bengaliai.training.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_run")
    input_dir = root / "input"
    write_pattern_dataset(input_dir, 240)
    truth = write_pattern_test(input_dir, 60)
    write_csv(truth, input_dir / "test_labels.csv")
    prepare(input_dir, PreprocessConfig(mode="resize", size=48), workers=1)
    make_folds(input_dir, n_splits=3, seed=0)
    config = load_config(TrainConfig, None, [*TINY_RUN_SETTINGS, f"data.input={input_dir}", f"output={root / 'runs'}"])
    train(config, folds="all")
    return root / "runs" / "tiny"


@pytest.fixture(scope="session")
def tiny_aux_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_run's data (cache included, so nothing is prepared again) with 2 folds that hold out 4 graphemes,
    and a run with the auxiliary grapheme head (runs/tiny_aux/fold0..1, 2 epochs each).

    Session-scoped and shared: copy it before changing anything. Returns ``<root>/runs/tiny_aux``.
    """
    import shutil

    from bengaliai.core.config import load_config
    from bengaliai.data.folds import make_folds
    from bengaliai.training.train import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny_aux_run")
    input_dir = root / "input"
    shutil.copytree(tiny_run.parent.parent / "input", input_dir)
    make_folds(input_dir, n_splits=2, seed=0, unseen_graphemes=4, force=True)
    settings = [*TINY_RUN_SETTINGS, "experiment=tiny_aux", "model.aux_graphemes=true", "epochs=2"]
    config = load_config(TrainConfig, None, [*settings, f"data.input={input_dir}", f"output={root / 'runs'}"])
    train(config, folds="all")
    return root / "runs" / "tiny_aux"


@pytest.fixture
def routed_aux_run(tiny_aux_run: Path, tmp_path: Path) -> Path:
    """A copy of tiny_aux_run (in ``tmp_path/runs``) whose oof.json routes about half the test images.

    ``bengaliai oof`` runs on the copy; then its routing is set to msp >= the median msp of the
    2-fold ensemble on the test images, with component alpha 0 and prior alpha 0.7 (so a test can
    tell which alpha predict took). A model trained for seconds need not gain from routing by itself.
    """
    import json
    import shutil

    import torch

    from bengaliai.data.prepare import find_image_files
    from bengaliai.evaluation.oof import evaluate_oof
    from bengaliai.evaluation.oof_report import OOF_JSON
    from bengaliai.evaluation.routing import ood_score
    from bengaliai.inference.ensemble import Ensemble, InferenceConfig, load_fold_model
    from bengaliai.inference.predict import predict_files

    experiment = tmp_path / "runs" / tiny_aux_run.name
    shutil.copytree(tiny_aux_run, experiment)
    evaluate_oof(experiment)
    config = InferenceConfig(precision="fp32")
    models = [load_fold_model(experiment / f"fold{k}" / "best.pt", torch.device("cpu")) for k in (0, 1)]
    files = find_image_files(tiny_aux_run.parent.parent / "input", ("test",))
    _, outputs = predict_files(Ensemble(models, config, torch.device("cpu"), aux=True), files, workers=1)
    report = json.loads((experiment / OOF_JSON).read_text(encoding="utf-8"))
    report["prior"]["alpha"] = 0.7
    report["routing"] |= {"score_name": "msp", "threshold": float(np.median(ood_score(outputs, "msp"))), "alpha": 0.0}
    (experiment / OOF_JSON).write_text(json.dumps(report), encoding="utf-8")
    return experiment
