"""The synthetic data of benchmarks/gpu_check.py: the prepared training set, batches on the device, test sets, a run.

All of it is the pattern dataset of tests/builders.py (drawn shapes, no fonts: the device's Pillow may lack raqm).
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TEST_CSV, image_parquet_name
from bengaliai.core.config import to_dict
from bengaliai.core.fileio import write_csv
from bengaliai.data.folds import make_folds
from bengaliai.data.labels import make_test_rows
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.data.runinfo import write_run_description
from bengaliai.model.classifier import ModelConfig, build_model
from bengaliai.training.train import TrainConfig

from gpu_steps.settings import ROOT, Sizes

sys.path.insert(0, str(ROOT / "tests"))  # the pattern dataset of the tests

from builders import pattern_image, write_pattern_dataset  # noqa: E402

log = logging.getLogger("gpu_check")


def make_dataset(workdir: Path, s: Sizes, cpus: int) -> Path:
    """``workdir/input``: the pattern training set, prepared at both crop sizes, with folds."""
    start = time.perf_counter()
    input_dir = workdir / "input"
    write_pattern_dataset(input_dir, s.n_train, n_files=2)
    for size in sorted({s.size, s.resume_size}):
        config = PreprocessConfig(mode="crop", size=size)
        prepare(input_dir, config, workers=cpus, splits=("train",))
    make_folds(input_dir, n_splits=s.n_folds, seed=0)
    log.info("dataset: %d pattern images prepared in %.1f s", s.n_train, time.perf_counter() - start)
    return input_dir


def device_batches(s: Sizes, device: torch.device, n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """uint8 batches with sparse ink and random labels, already on the device (no loader in the way)."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        images = (torch.rand(s.batch, 1, s.size, s.size, generator=generator) > 0.85).to(torch.uint8).mul_(255)
        labels = torch.stack([torch.randint(N_CLASSES[c], (s.batch,), generator=generator) for c in COMPONENTS], 1)
        batches.append((images.to(device), labels.to(device), torch.arange(s.batch)))
    return batches


def make_test_sets(s: Sizes, workdir: Path) -> dict[str, Path]:
    """Competition-format test sets of ``test_unique`` pattern images tiled into files of ``test_per_file``:
    ``one`` holds the first file, ``all`` every one of the ``test_files``."""
    rng = np.random.default_rng(1)
    roots, vowels, consonants = (13, 22, 23, 38, 53, 64), (0, 1, 2), (0, 2)
    drawn = [pattern_image(roots[i % 6], vowels[i % 3], consonants[i % 2], rng) for i in range(s.test_unique)]
    unique = np.stack(drawn)
    sets = {"one": workdir / "test_one", "all": workdir / "test_all"}
    ids: list[str] = []
    for f in range(s.test_files):
        file_ids = [f"Test_{f * s.test_per_file + i}" for i in range(s.test_per_file)]
        name = image_parquet_name("test", f)
        write_image_parquet(sets["all"] / name, file_ids, unique[np.arange(s.test_per_file) % len(unique)])
        ids += file_ids
        if f == 0:
            write_csv(make_test_rows(ids), sets["one"] / TEST_CSV)
            shutil.copy(sets["all"] / name, sets["one"] / name)
    write_csv(make_test_rows(ids), sets["all"] / TEST_CSV)
    return sets


def make_run(s: Sizes, workdir: Path, input_dir: Path, folds: int = 5) -> Path:
    """``runs/predict/fold0..4/best.pt``: copies of one random checkpoint, in the format training writes."""
    config = to_dict(TrainConfig(experiment="predict", model=ModelConfig(arch=s.arch, base_width=s.width)))
    config["data"] |= {"input": str(input_dir), "cache": f"crop{s.size}"}
    torch.manual_seed(0)
    weights = build_model(ModelConfig(arch=s.arch, base_width=s.width)).state_dict()
    experiment = workdir / "runs" / "predict"
    for fold in range(folds):
        run_dir = experiment / f"fold{fold}"
        write_run_description(run_dir, config)
        torch.save({"config": config, "fold": fold, "epoch": 0, "best_score": 0.0, "weights": weights,
                    "preprocess": PreprocessConfig(mode="crop", size=s.size).to_dict()}, run_dir / "best.pt")
    return experiment
