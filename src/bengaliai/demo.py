"""The embedded-default pipeline end to end on a small synthetic dataset (``make demo``).

synth -> prepare -> folds inside one working directory, data in ``WORKDIR/input``. Each step
whose output is already there is skipped, so a second ``make demo`` is quick. The demo never
overwrites competition files that ``synth`` did not write (the real data, say).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bengaliai.competition import TRAIN_CSV
from bengaliai.errors import BengaliaiError
from bengaliai.folds import FOLDS_CSV, make_folds
from bengaliai.prepare import prepare
from bengaliai.preprocess import PreprocessConfig
from bengaliai.synth import SYNTH_MANIFEST, synthesize

log = logging.getLogger(__name__)

DEMO_TRAIN_IMAGES = 6_000
DEMO_TEST_IMAGES = 1_200
DEMO_FOLDS = 5
DEMO_UNSEEN_GRAPHEMES = 20


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left everything, for the closing summary."""

    input_dir: Path
    cache_files: tuple[Path, ...]
    folds_csv: Path
    seconds: float

    def summary(self) -> str:
        cache_dirs = sorted({str(p.parent) for p in self.cache_files})
        return "\n".join(
            [
                f"demo finished in {self.seconds:.0f} s",
                f"  competition-format data: {self.input_dir}",
                f"  preprocessed cache:      {', '.join(cache_dirs)}",
                f"  folds:                   {self.folds_csv}",
            ]
        )


def run_demo(workdir: Path, seed: int = 0, workers: int = 2) -> DemoResult:
    """Run synth, prepare and folds in ``workdir`` and say where the outputs are."""
    start = time.perf_counter()
    input_dir = Path(workdir) / "input"
    _synthesize_once(input_dir, seed=seed, workers=workers)
    cache_files = prepare(input_dir, PreprocessConfig(mode="crop", size=128), workers=workers, splits=("train", "test"))
    folds_csv = input_dir / FOLDS_CSV
    if folds_csv.exists():
        log.info("folds: %s exists, kept (folds are written once)", folds_csv)
    else:
        folds_csv = make_folds(input_dir, n_splits=DEMO_FOLDS, seed=seed, unseen_graphemes=DEMO_UNSEEN_GRAPHEMES)
    return DemoResult(input_dir, tuple(cache_files), folds_csv, time.perf_counter() - start)


def _synthesize_once(input_dir: Path, seed: int, workers: int) -> None:
    manifest = input_dir / SYNTH_MANIFEST
    if not (input_dir / TRAIN_CSV).exists():
        synthesize(input_dir, n_train=DEMO_TRAIN_IMAGES, n_test=DEMO_TEST_IMAGES, seed=seed, workers=workers)
        return
    if not manifest.exists():
        raise BengaliaiError(
            f"{input_dir} already holds competition files that `bengaliai synth` did not write (the real "
            "data?); the demo runs on its own small synthetic set and will not touch them: pass "
            "--workdir with another directory"
        )
    log.info("synth: %s exists (%s), kept", input_dir, json.loads(manifest.read_text(encoding="utf-8")))
