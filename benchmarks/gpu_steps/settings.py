"""What every check of benchmarks/gpu_check.py shares: the step names, the sizes, the targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bengaliai.training.augment import AugmentConfig

ROOT = Path(__file__).resolve().parents[2]
# What a check returns: its status (ok, FAIL, info, below target), the text for the table, the raw numbers.
Result = tuple[str, str, dict[str, Any]]

STEPS = ("precision", "resume", "throughput", "predict", "compile")
TITLES = {"environment": "1 environment", "precision": "2 precision", "resume": "3 resume",
          "throughput": "4 throughput", "predict": "5 predict", "compile": "6 compile", "targets": "7 targets"}
TEST_IMAGES = 200_000
TARGET_LOOP_RATE, TARGET_RATIO, TARGET_PREDICT_S = 15_000, 0.90, 180.0
# The augmentation and EMA of configs/resnet34.yaml.
LOOP_AUGMENT = AugmentConfig(affine_p=0.8, distort_p=0.2, dropout_p=0.5, cutmix_p=0.5)
EMA_DECAY = 0.999
# The bigger network timed beside Sizes.arch (model only); skipped where model.resnet lacks it.
OTHER_ARCH = "seresnext50_32x4d"


@dataclass(frozen=True)
class Sizes:
    """How big each check is; ``estimate_s``: seconds a step takes on an H100/H200 (for the budget)."""

    arch: str = "resnet34"
    width: int = 64
    size: int = 128
    batch: int = 256
    warmup: int = 10
    steps: int = 40  # timed steps of the model alone
    loop_steps: int = 200  # timed steps of the whole loop (a longer run: the loader starts cold)
    n_train: int = 4096
    n_folds: int = 5
    resume_size: int = 64
    resume_batch: int = 128
    resume_workers: int = 2
    threads: int | None = None  # torch threads; None: bengaliai.compute.threads decides
    workers: int | None = None  # loader workers; None: bengaliai.compute.threads decides (CPUs - 1)
    test_unique: int = 1024
    test_files: int = 4
    test_per_file: int = 4096
    compile_batches: int = 20
    estimate_s: dict[str, float] = field(default_factory=lambda: {
        "precision": 45, "resume": 90, "throughput": 80, "predict": 50, "compile": 150})


QUICK = Sizes(
    arch="resnet10", width=8, size=32, batch=16, warmup=1, steps=3, loop_steps=4, n_train=240, n_folds=3,
    resume_size=32, resume_batch=16, resume_workers=0, threads=1, workers=1, test_unique=16, test_files=2,
    test_per_file=32, compile_batches=2,
    estimate_s={"precision": 5, "resume": 40, "throughput": 10, "predict": 10, "compile": 10},
)
