"""The embedded-default pipeline end to end on a small synthetic dataset (``make demo``).

synth -> prepare -> folds -> train -> oof -> predict -> leaderboard -> kernel inside a folder of its
own, ``WORKDIR/demo``, laid out like the workflow's: data in ``demo/input``, the run in
``demo/runs/demo``, the submission in ``demo/submissions`` and the Kaggle kernel build in
``demo/kernel``. So the workflow's ``input/`` and ``runs/`` are never read or written: a synthetic or
real set there is neither replaced by the demo nor trained on by it. Each data step whose output is
already there is skipped, so a second ``make demo`` only trains again. The demo never overwrites
competition files that ``synth`` did not write, nor a synthetic set of other sizes.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bengaliai.core.config import load_config
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import FOLDS_CSV, make_folds
from bengaliai.data.prepare import prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.evaluation.leaderboard import collect_leaderboard, format_leaderboard
from bengaliai.evaluation.oof import evaluate_oof
from bengaliai.evaluation.oof_report import OofReport
from bengaliai.inference.predict import PredictResult, predict
from bengaliai.kaggle.kernel import KernelBuild, build_kernel
from bengaliai.synth.dataset import synthesize
from bengaliai.synth.manifest import dataset_files, read_manifest
from bengaliai.training.train import TrainConfig, train

log = logging.getLogger(__name__)

DEMO_DIR = "demo"  # under WORKDIR: the demo's own input/, runs/, submissions/ and kernel/
DEMO_TRAIN_IMAGES = 6_000
DEMO_TEST_IMAGES = 1_200
DEMO_FOLDS = 5
DEMO_UNSEEN_GRAPHEMES = 20
DEMO_FOLDS_TRAINED = "0,1"
# A small ResNet for a few minutes of CPU; the same settings as `bengaliai train --set ...`.
# 64 px: four times faster than 128 px on a CPU, and this little data gains nothing from more.
DEMO_PREPROCESS = PreprocessConfig(mode="crop", size=64)
DEMO_TRAINING = (
    "experiment=demo", "epochs=12", "model.arch=resnet18", "model.base_width=32", "data.batch_size=64",
    f"data.cache={DEMO_PREPROCESS.tag}", "optim.lr=3e-3", "optim.warmup_epochs=0.5", "optim.ema_decay=0",
    "augment.cutmix_p=0",
)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left everything, for the closing summary."""

    input_dir: Path
    cache_files: tuple[Path, ...]
    folds_csv: Path
    run_dir: Path
    scores: dict[int, float]
    oof: OofReport
    prediction: PredictResult
    leaderboard: str
    kernel: KernelBuild
    seconds: float

    def summary(self) -> str:
        cache_dirs = sorted({str(p.parent) for p in self.cache_files})
        test = self.prediction.test_score
        return "\n".join(
            [
                f"demo finished in {self.seconds:.0f} s",
                f"  competition-format data: {self.input_dir}",
                f"  preprocessed cache:      {', '.join(cache_dirs)}",
                f"  folds:                   {self.folds_csv}",
                f"  training run:            {self.run_dir} (fold*/metrics.csv, curves.png, best.pt; oof.json, per_class_recall.png)",
                *(f"  fold {fold} best validation score: {score:.4f}" for fold, score in self.scores.items()),
                f"  out-of-fold score:       {self.oof.score:.4f} ({self.oof.score_with_prior:.4f} with prior alpha {self.oof.alpha:g})",
                f"  submission:              {self.prediction.submission} (probabilities: {self.prediction.probabilities})",
                f"  test score:              {test['score']:.4f} (synthetic test labels; 2-fold ensemble)" if test else "",
                f"  Kaggle kernel:           {self.kernel.kernel_dir} and {self.kernel.dataset_dir}",
                "",
                "leaderboard of the experiments in the runs folder:",
                self.leaderboard,
            ]
        )


def run_demo(workdir: Path, seed: int = 0, workers: int = 2) -> DemoResult:
    """Run the whole pipeline in ``workdir/demo`` and say where the outputs are."""
    start = time.perf_counter()
    root = Path(workdir) / DEMO_DIR
    input_dir = root / "input"
    _synthesize_once(input_dir, seed=seed, workers=workers)
    cache_files = prepare(input_dir, DEMO_PREPROCESS, workers=workers, splits=("train", "test"))
    folds_csv = input_dir / FOLDS_CSV
    if folds_csv.exists():
        log.info("folds: %s exists, kept (folds are written once)", folds_csv)
    else:
        folds_csv = make_folds(input_dir, n_splits=DEMO_FOLDS, seed=seed, unseen_graphemes=DEMO_UNSEEN_GRAPHEMES)
    config = load_config(
        TrainConfig,
        None,
        # Loader workers and torch threads: auto, sized to the CPUs this process may use (bengaliai.compute.threads).
        [*DEMO_TRAINING, f"seed={seed}", f"data.input={input_dir}", f"output={root / 'runs'}"],
    )
    run_dir = Path(config.output) / config.experiment
    if run_dir.exists():
        log.info("train: replacing the previous demo run in %s", run_dir)
        shutil.rmtree(run_dir)
    scores = train(config, folds=DEMO_FOLDS_TRAINED)
    oof = evaluate_oof(run_dir)
    prediction = predict(run_dir, out=root / "submissions" / "demo.csv", workers=workers)
    leaderboard = format_leaderboard(collect_leaderboard(Path(config.output)), "table")
    kernel = build_kernel(run_dir, root / "kernel")
    return DemoResult(
        input_dir, tuple(cache_files), folds_csv, run_dir, scores, oof, prediction, leaderboard, kernel,
        time.perf_counter() - start,
    )


def _synthesize_once(input_dir: Path, seed: int, workers: int) -> None:
    """Render the demo's data into ``input_dir`` unless a complete set of the demo's sizes is there."""
    manifest = read_manifest(input_dir)
    if manifest is None and dataset_files(input_dir):
        raise BengaliaiError(
            f"{input_dir} already holds competition files that `bengaliai synth` did not write (the real "
            "data?); the demo runs on its own small synthetic set and will not touch them: pass "
            "--workdir with another directory"
        )
    if manifest is None or not manifest.get("complete"):
        synthesize(input_dir, n_train=DEMO_TRAIN_IMAGES, n_test=DEMO_TEST_IMAGES, seed=seed, workers=workers)
        return
    sizes = (manifest.get("n_train"), manifest.get("n_test"))
    if sizes != (DEMO_TRAIN_IMAGES, DEMO_TEST_IMAGES):
        raise BengaliaiError(
            f"{input_dir} holds a synthetic dataset of {sizes[0]} train and {sizes[1]} test images, not the demo's "
            f"{DEMO_TRAIN_IMAGES} and {DEMO_TEST_IMAGES}: the demo will not train on it nor replace it; remove "
            f"{input_dir} (the demo renders its own again) or pass --workdir with another directory"
        )
    log.info(
        "synth: %s already holds the demo's synthetic dataset (%d train, %d test images, seed %d), kept",
        input_dir, sizes[0], sizes[1], manifest.get("seed", 0),
    )
