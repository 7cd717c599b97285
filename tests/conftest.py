"""Shared fixtures: a tiny competition-format dataset whose labels are learnable in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.competition import (
    COMPONENTS,
    HEIGHT,
    SAMPLE_SUBMISSION_CSV,
    TEST_CSV,
    TRAIN_CSV,
    WIDTH,
    compose,
    image_parquet_name,
)
from bengaliai.fileio import write_csv
from bengaliai.labels import make_test_rows
from bengaliai.parquet_images import write_image_parquet

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# Few classes per component, each drawn as a distinct shape, so a tiny network learns them fast.
PATTERN_ROOTS = (13, 22, 23, 38, 53, 64)
PATTERN_VOWELS = (0, 1, 2)
PATTERN_CONSONANTS = (0, 2)


def pattern_image(root: int, vowel: int, consonant: int, rng: np.random.Generator) -> np.ndarray:
    """A light 137x236 image with dark marks that encode the three labels."""
    image = np.full((HEIGHT, WIDTH), 250, dtype=np.uint8)
    dx, dy = (int(v) for v in rng.integers(-6, 7, size=2))
    for bar in range(PATTERN_ROOTS.index(root) + 1):
        x = 40 + 18 * bar + dx
        cv2.line(image, (x, 30 + dy), (x, 100 + dy), 60, 5)
    y = 30 + 35 * PATTERN_VOWELS.index(vowel) + dy
    cv2.line(image, (160 + dx, y), (215 + dx, y), 60, 5)
    if consonant:
        cv2.circle(image, (185 + dx, 115 + dy), 12, 60, 4)
    return image


def write_pattern_dataset(
    root_dir: Path, n_train: int, seed: int = 0, n_files: int = 2, prefix: str = "Train"
) -> pd.DataFrame:
    """Write train.csv and train_image_data_*.parquet of pattern images (ids ``<prefix>_<i>``); return the labels."""
    rng = np.random.default_rng(seed)
    rows, images = [], []
    for i in range(n_train):
        root = PATTERN_ROOTS[i % len(PATTERN_ROOTS)]
        vowel = PATTERN_VOWELS[(i // len(PATTERN_ROOTS)) % len(PATTERN_VOWELS)]
        consonant = PATTERN_CONSONANTS[(i // 7) % len(PATTERN_CONSONANTS)]
        rows.append((f"{prefix}_{i}", root, vowel, consonant, compose(root, vowel, consonant)))
        images.append(pattern_image(root, vowel, consonant, rng))
    labels = pd.DataFrame(rows, columns=["image_id", "grapheme_root", "vowel_diacritic", "consonant_diacritic", "grapheme"])
    root_dir.mkdir(parents=True, exist_ok=True)
    write_csv(labels, root_dir / TRAIN_CSV)
    stack = np.stack(images)
    for f, part in enumerate(np.array_split(np.arange(n_train), n_files)):
        write_image_parquet(root_dir / image_parquet_name("train", f), labels["image_id"].iloc[part].tolist(), stack[part])
    return labels


def fake_run(tmp_path: Path) -> Path:
    """A run whose only checkpoint is an empty file: any attempt to read it fails loudly."""
    (tmp_path / "runs" / "fake" / "fold0").mkdir(parents=True)
    (tmp_path / "runs" / "fake" / "fold0" / "best.pt").write_bytes(b"")
    return tmp_path / "runs" / "fake"


@pytest.fixture
def pattern_dataset(tmp_path: Path) -> Path:
    """A 240-image pattern dataset in competition format."""
    write_pattern_dataset(tmp_path / "input", 240)
    return tmp_path / "input"


def write_pattern_test(root_dir: Path, n_test: int, seed: int = 1, n_files: int = 2) -> pd.DataFrame:
    """Write test.csv, sample_submission.csv and test_image_data_*.parquet; return the true labels.

    Rows of test.csv follow the competition: three per image, components in TEST_COMPONENT_ORDER.
    """
    rng = np.random.default_rng(seed)
    rows, images = [], []
    for i in range(n_test):
        labels = (int(rng.choice(PATTERN_ROOTS)), int(rng.choice(PATTERN_VOWELS)), int(rng.choice(PATTERN_CONSONANTS)))
        rows.append((f"Test_{i}", *labels, compose(*labels)))
        images.append(pattern_image(*labels, rng))
    truth = pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"])
    test_rows = make_test_rows(truth["image_id"].tolist())
    write_csv(test_rows, root_dir / TEST_CSV)
    write_csv(pd.DataFrame({"row_id": test_rows["row_id"], "target": 0}), root_dir / SAMPLE_SUBMISSION_CSV)
    stack = np.stack(images)
    for f, part in enumerate(np.array_split(np.arange(n_test), n_files)):
        write_image_parquet(root_dir / image_parquet_name("test", f), truth["image_id"].iloc[part].tolist(), stack[part])
    return truth


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
    from bengaliai.config import load_config
    from bengaliai.folds import make_folds
    from bengaliai.prepare import prepare
    from bengaliai.preprocess import PreprocessConfig
    from bengaliai.train import TrainConfig, train

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

    from bengaliai.config import load_config
    from bengaliai.folds import make_folds
    from bengaliai.train import TrainConfig, train

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

    from bengaliai.inference import Ensemble, InferenceConfig, load_fold_model
    from bengaliai.oof import evaluate_oof
    from bengaliai.oof_report import OOF_JSON
    from bengaliai.predict import predict_files
    from bengaliai.prepare import find_image_files
    from bengaliai.routing import ood_score

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
