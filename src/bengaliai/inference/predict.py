"""``bengaliai predict``: the fold ensemble over the test parquet files -> submission.csv and probabilities.

Test files are streamed one at a time in row blocks and prepared with ``preprocess_batch`` with
the settings saved in the checkpoints (the function and settings that made the training cache),
so peak memory stays near one block whatever the test size: the hidden test set held about
200,000 images, and kernels that loaded it at once died of out-of-memory. The probabilities of
the chosen folds are averaged (optionally over test-time views), corrected by the training class
frequencies (``p / freq**alpha``, alpha tuned out of fold by ``bengaliai oof``), and the argmax
becomes ``row_id,target`` in the order of test.csv. With routing (bengaliai.evaluation.routing), images the
auxiliary grapheme head is confident about take that grapheme's label triple instead. The Kaggle kernel calls ``predict_files``
too, so its submission equals this one byte for byte. The folds' checkpoints are chosen and loaded
by ``checkpoints``, the prior correction is resolved by ``prior``.
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
from tqdm.auto import tqdm

from bengaliai.compute.threads import apply_threads, plan_threads
from bengaliai.core.competition import COMPONENTS, TEST_CSV
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import ensure_writable
from bengaliai.data.labels import read_test_rows, read_train_labels
from bengaliai.data.parquet_images import iter_image_blocks, open_image_file, read_image_ids
from bengaliai.data.prepare import find_image_files
from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch
from bengaliai.evaluation.metric import competition_score
from bengaliai.evaluation.oof_report import resolve_routing
from bengaliai.evaluation.priors import apply_prior
from bengaliai.evaluation.routing import AUX_KEYS, Routing, route, routed_mask
from bengaliai.inference.checkpoints import fold_checkpoints, load_models, training_input
from bengaliai.inference.ensemble import Ensemble, InferenceConfig
from bengaliai.inference.prior import Prior, resolve_prior
from bengaliai.inference.submission import (
    build_submission,
    check_replaceable,
    test_rows_positions,
    write_probabilities,
    write_submission,
)
from bengaliai.model.classifier import AUX_HEAD

log = logging.getLogger(__name__)

# Raw images decoded at once: 4096 x 32332 bytes = 132 MB, whatever the size of a test file.
DEFAULT_BLOCK_IMAGES = 4096
# Images per preprocessing task, so that threads prepare the next ones while the model runs.
_CHUNK = 512
# Labels of a synthetic test set (bengaliai synth); when present, predict also scores itself.
TEST_LABELS_CSV = "test_labels.csv"


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
    routing: Routing | None = None
    n_routed: int = 0  # images decoded by the grapheme head


    def summary(self) -> str:
        lines = [
            f"submission:    {self.submission} ({self.n_images} images, folds {', '.join(map(str, self.folds))}, "
            f"prior alpha {self.alpha:g}, {self.seconds:.0f} s)",
            f"probabilities: {self.probabilities}",
        ]
        if self.routing is not None:
            lines.append(f"routing:       {self.routing.describe()}: {self.n_routed} of {self.n_images} images "
                         "decoded by the grapheme head, the rest by the component heads")
        if self.test_score is not None:
            recalls = ", ".join(f"{k} {v:.4f}" for k, v in self.test_score.items() if k != "score")
            lines.append(f"test score (synthetic labels): {self.test_score['score']:.4f} ({recalls})")
        return "\n".join(lines)


def _prepared_chunks(images: np.ndarray, preprocess: PreprocessConfig, pool: ThreadPoolExecutor) -> Iterator[np.ndarray]:
    chunks = [images[i : i + _CHUNK] for i in range(0, len(images), _CHUNK)]
    yield from pool.map(lambda chunk: preprocess_batch(chunk, preprocess), chunks)


def read_unique_ids(files: Sequence[Path], parquets: Sequence[Any] | None = None) -> list[str]:
    """The image ids of ``files`` in order; DataError if one repeats within a file or across two.

    ``parquets`` are the files already opened with open_image_file (only the id column is read).
    An id in two files would be predicted twice and make the submission ambiguous.
    """
    parquets = parquets if parquets is not None else [open_image_file(path) for path in files]
    first_file: dict[str, Path] = {}
    ids: list[str] = []
    for path, parquet in zip(files, parquets, strict=True):
        for image_id in read_image_ids(path, parquet):  # checks repeats within the file
            if image_id in first_file:
                raise DataError(path, f"image_id {image_id!r} is also in {first_file[image_id]}; each test image must appear once")
            first_file[image_id] = Path(path)
            ids.append(image_id)
    return ids


def predict_files(
    ensemble: Ensemble,
    files: Sequence[Path],
    workers: int = 2,
    block_images: int = DEFAULT_BLOCK_IMAGES,
    test_rows: pd.DataFrame | None = None,
    test_csv: Path | None = None,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Image ids and ensemble probabilities of every image of ``files``, one file and block at a time.

    Every schema and every image id is read and checked before the first image is predicted, so
    a bad or overlapping test file fails in seconds rather than after the inference.
    """
    preprocess = PreprocessConfig(**ensemble.models[0].preprocess)
    parts: list[dict[str, np.ndarray]] = []
    parquets = [open_image_file(path) for path in files]  # footers only: every schema checked up front
    ids = read_unique_ids(files, parquets)
    if test_rows is not None:
        test_rows_positions(test_rows, ids, test_csv or Path(TEST_CSV))  # every row has an image, before any work
    total = sum(parquet.metadata.num_rows for parquet in parquets)
    with ThreadPoolExecutor(max(1, workers)) as pool, tqdm(total=total, desc="predict", unit="img", disable=None) as bar:
        for path, parquet in zip(files, parquets, strict=True):
            for _, block in iter_image_blocks(path, block_images, parquet=parquet):
                for prepared in _prepared_chunks(block, preprocess, pool):
                    parts.append(ensemble.predict(prepared))
                    bar.update(len(prepared))
    keys = [*COMPONENTS, *(AUX_KEYS if ensemble.aux else ())]
    probabilities = {key: np.concatenate([p[key] for p in parts]) for key in keys}
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
    routing: Routing | None = None,
) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Prior correction, argmax, routing (``probabilities`` then hold routing.AUX_KEYS too), submission
    (validated against ``test_rows``, read_test_rows of ``test_csv``) and probabilities npz.

    Returns the submission path, the npz path and the predicted labels per component.
    """
    corrected = apply_prior(probabilities, prior.counts or {}, prior.alpha) if prior.alpha else dict(probabilities)
    labels = {name: corrected[name].argmax(axis=1) for name in COMPONENTS}
    if routing is not None:
        labels = route(labels, probabilities, routing)
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


def predict(
    experiment_dir: Path,
    input_dir: Path | None = None,
    folds: str = "all",
    out: Path | None = None,
    config: InferenceConfig = InferenceConfig(),
    alpha: float | None = None,
    workers: int = 2,
    block_images: int = DEFAULT_BLOCK_IMAGES,
    threads: int | None = None,
    routing: str = "auto",
) -> PredictResult:
    """Predict the test images of ``input_dir`` (default: the run's training input) with the chosen folds.

    ``threads``: torch threads (None: the CPUs this process may use, bengaliai.compute.threads). ``routing``:
    ``auto`` routes where the checkpoints have the grapheme head and oof.json tuned a threshold
    (oof_report.resolve_routing), ``off`` never.
    """
    start = time.perf_counter()
    apply_threads(plan_threads(threads, 0))
    experiment_dir = Path(experiment_dir)
    checkpoints = fold_checkpoints(experiment_dir, folds)
    out = Path(out) if out is not None else Path("submissions") / f"{experiment_dir.name}.csv"
    ensure_writable(out)  # an unwritable --out fails now, not after the inference
    check_replaceable(out)
    models, device = load_models(checkpoints, config)
    train_dir = Path(training_input(checkpoints[0]))
    input_dir = Path(input_dir) if input_dir is not None else train_dir
    test_rows = read_test_rows(input_dir / TEST_CSV)  # a bad test.csv fails before minutes of inference
    has_head = all(AUX_HEAD in getattr(m.model, "heads", {}) for m in models)
    tuned = resolve_routing(experiment_dir, routing, has_head, [m.fold for m in models])
    rule = tuned[0] if tuned is not None else None
    prior = resolve_prior(experiment_dir, alpha, train_dir, checkpoints, routed=rule is not None)
    files = find_image_files(input_dir, ("test",))
    ids, probabilities = predict_files(
        Ensemble(models, config, device, aux=rule is not None), files, workers, block_images, test_rows,
        input_dir / TEST_CSV,
    )
    submission, npz, labels = write_outputs(input_dir / TEST_CSV, test_rows, ids, probabilities, prior, out, rule)
    n_routed = int(routed_mask(probabilities, rule).sum()) if rule is not None else 0
    test_score = None
    if (input_dir / TEST_LABELS_CSV).exists():
        test_score = score_against(input_dir / TEST_LABELS_CSV, ids, labels)
    return PredictResult(
        submission, npz, len(ids), tuple(m.fold for m in models), prior.alpha, time.perf_counter() - start, test_score,
        rule, n_routed,
    )
