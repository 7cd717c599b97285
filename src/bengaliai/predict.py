"""``bengaliai predict``: the fold ensemble over the test parquet files -> submission.csv and probabilities.

Test files are streamed one at a time in row blocks and prepared with ``preprocess_batch`` with
the settings saved in the checkpoints (the function and settings that made the training cache),
so peak memory stays near one block whatever the test size: the hidden test set held about
200,000 images, and kernels that loaded it at once died of out-of-memory. The probabilities of
the chosen folds are averaged (optionally over test-time views), corrected by the training class
frequencies (``p / freq**alpha``, alpha tuned out of fold by ``bengaliai oof``), and the argmax
becomes ``row_id,target`` in the order of test.csv. The Kaggle kernel calls ``predict_files``
too, so its submission equals this one byte for byte.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from bengaliai.competition import COMPONENTS, TEST_CSV, TRAIN_CSV
from bengaliai.device import resolve_device
from bengaliai.errors import BengaliaiError, DataError
from bengaliai.inference import Ensemble, FoldModel, InferenceConfig, load_fold_model
from bengaliai.labels import read_test_rows, read_train_labels
from bengaliai.metric import competition_score
from bengaliai.parquet_images import iter_image_blocks, open_image_file, read_image_ids
from bengaliai.prepare import find_image_files
from bengaliai.preprocess import PreprocessConfig, preprocess_batch
from bengaliai.priors import apply_prior, class_counts
from bengaliai.runinfo import CONFIG_YAML, fold_files, is_fold_dir_name, read_run_config
from bengaliai.submission import build_submission, write_probabilities, write_submission

log = logging.getLogger(__name__)

# Raw images decoded at once: 4096 x 32332 bytes = 132 MB, whatever the size of a test file.
DEFAULT_BLOCK_IMAGES = 4096
# Images per preprocessing task, so that threads prepare the next ones while the model runs.
_CHUNK = 512
# Labels of a synthetic test set (bengaliai synth); when present, predict also scores itself.
TEST_LABELS_CSV = "test_labels.csv"


@dataclass(frozen=True)
class Prior:
    """The prior correction to apply: ``alpha`` (0: none) and the training class counts."""

    alpha: float = 0.0
    counts: Mapping[str, Sequence[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        counts = None if self.counts is None else {k: [int(c) for c in v] for k, v in self.counts.items()}
        return {"alpha": self.alpha, "class_counts": counts}


@dataclass(frozen=True)
class PredictResult:
    """What a prediction wrote and, on a synthetic test set with labels, how well it scored."""

    submission: Path
    probabilities: Path
    n_images: int
    folds: tuple[int, ...]
    alpha: float
    seconds: float
    test_score: dict[str, float] | None = field(default=None)

    def summary(self) -> str:
        lines = [
            f"submission:    {self.submission} ({self.n_images} images, folds {', '.join(map(str, self.folds))}, "
            f"prior alpha {self.alpha:g}, {self.seconds:.0f} s)",
            f"probabilities: {self.probabilities}",
        ]
        if self.test_score is not None:
            recalls = ", ".join(f"{k} {v:.4f}" for k, v in self.test_score.items() if k != "score")
            lines.append(f"test score (synthetic labels): {self.test_score['score']:.4f} ({recalls})")
        return "\n".join(lines)


def fold_checkpoints(experiment_dir: Path, folds: str = "all") -> list[Path]:
    """``best.pt`` of each requested fold of ``runs/<experiment>`` (``all``: every trained fold)."""
    experiment_dir = Path(experiment_dir)
    found = fold_files(experiment_dir, "best.pt")
    if not found:
        hint = " (pass runs/<experiment>, not a fold folder)" if is_fold_dir_name(experiment_dir.name) else ""
        raise BengaliaiError(f"{experiment_dir}: no fold<K>/best.pt here{hint}; train with `bengaliai train` first")
    if folds == "all":
        return [found[k] for k in sorted(found)]
    try:
        wanted = [int(part) for part in folds.split(",")]
    except ValueError:
        raise BengaliaiError(f"--folds {folds!r}: expected 'all' or fold numbers such as 0 or 0,2") from None
    missing = [k for k in wanted if k not in found]
    if missing:
        raise BengaliaiError(f"--folds {folds}: {experiment_dir} has no best.pt for fold(s) {missing}; trained: {sorted(found)}")
    return [found[k] for k in wanted]


def load_models(checkpoints: Sequence[Path], config: InferenceConfig) -> tuple[list[FoldModel], torch.device]:
    device = resolve_device(config.device)
    return [load_fold_model(path, device, config.channels_last) for path in checkpoints], device


def _prepared_chunks(images: np.ndarray, preprocess: PreprocessConfig, pool: ThreadPoolExecutor) -> Iterator[np.ndarray]:
    chunks = [images[i : i + _CHUNK] for i in range(0, len(images), _CHUNK)]
    yield from pool.map(lambda chunk: preprocess_batch(chunk, preprocess), chunks)


def predict_files(
    ensemble: Ensemble, files: Sequence[Path], workers: int = 2, block_images: int = DEFAULT_BLOCK_IMAGES
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Image ids and ensemble probabilities of every image of ``files``, one file and block at a time."""
    preprocess = PreprocessConfig(**ensemble.models[0].preprocess)
    ids: list[str] = []
    parts: list[dict[str, np.ndarray]] = []
    parquets = [open_image_file(path) for path in files]  # footers only: every schema checked up front
    total = sum(parquet.metadata.num_rows for parquet in parquets)
    with ThreadPoolExecutor(max(1, workers)) as pool, tqdm(total=total, desc="predict", unit="img", disable=None) as bar:
        for path, parquet in zip(files, parquets, strict=True):
            ids += read_image_ids(path, parquet)
            for _, block in iter_image_blocks(path, block_images, parquet=parquet):
                for prepared in _prepared_chunks(block, preprocess, pool):
                    parts.append(ensemble.predict(prepared))
                    bar.update(len(prepared))
    probabilities = {name: np.concatenate([p[name] for p in parts]) for name in COMPONENTS}
    if len(ids) != len(probabilities[COMPONENTS[0]]):
        raise BengaliaiError(f"{len(ids)} image ids but {len(probabilities[COMPONENTS[0]])} predictions")
    return ids, probabilities


def write_outputs(
    test_csv: Path,
    test_rows: pd.DataFrame,
    image_ids: Sequence[str],
    probabilities: Mapping[str, np.ndarray],
    prior: Prior,
    out: Path,
) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Prior correction, argmax, submission (validated against ``test_rows``, read_test_rows of
    ``test_csv``) and probabilities npz.

    Returns the submission path, the npz path and the predicted labels per component.
    """
    corrected = apply_prior(probabilities, prior.counts or {}, prior.alpha) if prior.alpha else dict(probabilities)
    labels = {name: corrected[name].argmax(axis=1) for name in COMPONENTS}
    submission = build_submission(test_rows, image_ids, labels, test_csv)
    out = Path(out)
    write_submission(submission, test_rows, out)
    npz = write_probabilities(out.with_suffix(".npz"), image_ids, probabilities, prior.alpha)
    return out, npz, labels


def score_against(labels_csv: Path, image_ids: Sequence[str], labels: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The competition score of predicted labels against a labels file (synthetic test labels)."""
    truth = read_train_labels(labels_csv).set_index("image_id")
    missing = [i for i in image_ids if i not in truth.index]
    if missing:
        raise DataError(labels_csv, f"no labels for {len(missing)} predicted images, e.g. {missing[0]}")
    rows = truth.loc[list(image_ids)]
    return competition_score({n: rows[n].to_numpy() for n in COMPONENTS}, labels).as_dict()


def resolve_prior(experiment_dir: Path, alpha: float | None, train_dir: Path | None) -> Prior:
    """The prior correction for ``alpha`` (None: the one ``bengaliai oof`` tuned, else none).

    Class counts come from the experiment's oof.json (written by ``bengaliai oof``) or, for an
    explicit alpha without it, from ``train_dir/train.csv`` (the labels the folds trained on).
    """
    from bengaliai.oof import read_oof_report

    report = read_oof_report(experiment_dir)
    if alpha is None:
        if report is None:
            log.warning(
                "%s has no oof.json: predicting without prior correction; run `bengaliai oof --run %s` to tune it",
                experiment_dir, experiment_dir,
            )
            return Prior()
        log.info("prior correction: alpha %g, tuned out of fold", report["prior"]["alpha"])
        return Prior(float(report["prior"]["alpha"]), report["prior"]["class_counts"])
    if alpha == 0:
        return Prior()
    if report is not None:
        return Prior(alpha, report["prior"]["class_counts"])
    if train_dir is None or not (Path(train_dir) / TRAIN_CSV).exists():
        raise BengaliaiError(
            f"--alpha {alpha} needs the training class counts: run `bengaliai oof --run {experiment_dir}` first"
        )
    return Prior(alpha, class_counts(read_train_labels(Path(train_dir) / TRAIN_CSV)))


def predict(
    experiment_dir: Path,
    input_dir: Path | None = None,
    folds: str = "all",
    out: Path | None = None,
    config: InferenceConfig = InferenceConfig(),
    alpha: float | None = None,
    workers: int = 2,
    block_images: int = DEFAULT_BLOCK_IMAGES,
) -> PredictResult:
    """Predict the test images of ``input_dir`` (default: the run's training input) with the chosen folds."""
    start = time.perf_counter()
    experiment_dir = Path(experiment_dir)
    checkpoints = fold_checkpoints(experiment_dir, folds)
    models, device = load_models(checkpoints, config)
    train_dir = Path(training_input(checkpoints[0]))
    input_dir = Path(input_dir) if input_dir is not None else train_dir
    test_rows = read_test_rows(input_dir / TEST_CSV)  # a bad test.csv fails before minutes of inference
    prior = resolve_prior(experiment_dir, alpha, train_dir)
    files = find_image_files(input_dir, ("test",))
    ids, probabilities = predict_files(Ensemble(models, config, device), files, workers, block_images)
    out = Path(out) if out is not None else Path("submissions") / f"{experiment_dir.name}.csv"
    submission, npz, labels = write_outputs(input_dir / TEST_CSV, test_rows, ids, probabilities, prior, out)
    test_score = None
    if (input_dir / TEST_LABELS_CSV).exists():
        test_score = score_against(input_dir / TEST_LABELS_CSV, ids, labels)
    return PredictResult(
        submission, npz, len(ids), tuple(m.fold for m in models), prior.alpha, time.perf_counter() - start, test_score
    )


def training_input(checkpoint: Path) -> str:
    """The input folder the fold of ``checkpoint`` was trained on (from its run's config.yaml)."""
    config = read_run_config(checkpoint.parent)
    try:
        return str(config["data"]["input"])
    except (KeyError, TypeError):
        raise BengaliaiError(f"{checkpoint.parent / CONFIG_YAML}: cannot read the run's input folder; pass --input") from None
