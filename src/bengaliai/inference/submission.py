"""The submission file: ``row_id,target`` in the order of test.csv, checked before it is written.

Kaggle scores a submission only if it has every row of test.csv exactly once with an integer
target; a wrong row set fails after the whole kernel has run. So the frame is built from test.csv
itself and validated (row ids, ranges) before an atomic write: a bad submission never reaches disk.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import atomic_path, write_csv

log = logging.getLogger(__name__)

SUBMISSION_COLUMNS: tuple[str, ...] = ("row_id", "target")
SUBMISSION_HEADER = ",".join(SUBMISSION_COLUMNS)


def build_submission(
    test_rows: pd.DataFrame, image_ids: Sequence[str], labels: Mapping[str, np.ndarray], test_csv: Path
) -> pd.DataFrame:
    """``row_id, target`` for every row of ``test_rows`` (read_test_rows), in its order.

    ``labels`` holds the predicted class per component for ``image_ids`` (same order). Raises
    DataError naming test.csv when one of its images was not predicted.
    """
    rows = test_rows_positions(test_rows, image_ids, test_csv)
    position = pd.Index(list(image_ids))
    extra = len(position) - len(np.unique(rows))
    if extra:
        log.warning("%d predicted image(s) are not in %s and are left out of the submission", extra, test_csv)
    target = np.empty(len(test_rows), dtype=np.int64)
    for name in COMPONENTS:
        mask = (test_rows["component"] == name).to_numpy()
        target[mask] = np.asarray(labels[name])[rows[mask]]
    return pd.DataFrame({"row_id": test_rows["row_id"].to_numpy(), "target": target})


def test_rows_positions(test_rows: pd.DataFrame, image_ids: Sequence[str], test_csv: Path) -> np.ndarray:
    """The position in ``image_ids`` of each row's image; DataError naming test.csv when one has none.

    Called with the ids of the test files before any inference, and again when the submission is built.
    """
    position = pd.Index(list(image_ids))
    if position.has_duplicates:
        raise BengaliaiError(f"predicted image ids repeat, e.g. {position[position.duplicated()][0]!r}")
    rows = position.get_indexer(test_rows["image_id"])
    missing = np.flatnonzero(rows < 0)
    if missing.size:
        absent = test_rows["image_id"].iloc[missing].unique()
        shown = ", ".join(absent[:5]) + (", ..." if len(absent) > 5 else "")
        raise DataError(test_csv, f"{len(absent)} image(s) of test.csv have no image in the test parquet files: {shown}")
    return rows


def validate_submission(submission: pd.DataFrame, test_rows: pd.DataFrame) -> None:
    """Raise BengaliaiError unless ``submission`` is a valid answer to ``test_rows``.

    Checks: the columns ``row_id,target``; every row id of test.csv exactly once, in its order;
    integer targets within each component's range.
    """
    if tuple(submission.columns) != SUBMISSION_COLUMNS:
        raise BengaliaiError(f"submission columns are {list(submission.columns)}, expected {list(SUBMISSION_COLUMNS)}")
    if len(submission) != len(test_rows):
        raise BengaliaiError(f"submission has {len(submission)} rows, test.csv has {len(test_rows)}")
    wrong = np.flatnonzero(submission["row_id"].to_numpy() != test_rows["row_id"].to_numpy())
    if wrong.size:
        row = wrong[0]
        raise BengaliaiError(
            f"submission row {row + 1} is {submission['row_id'].iloc[row]!r}, test.csv has {test_rows['row_id'].iloc[row]!r}"
        )
    if not pd.api.types.is_integer_dtype(submission["target"]):
        raise BengaliaiError(f"submission targets must be integers, got {submission['target'].dtype}")
    for name in COMPONENTS:
        mask = (test_rows["component"] == name).to_numpy()
        values = submission["target"].to_numpy()[mask]
        bad = np.flatnonzero((values < 0) | (values >= N_CLASSES[name]))
        if bad.size:
            row_id = test_rows["row_id"].to_numpy()[mask][bad[0]]
            raise BengaliaiError(f"{row_id}: target {values[bad[0]]} outside 0..{N_CLASSES[name] - 1}")


def write_submission(submission: pd.DataFrame, test_rows: pd.DataFrame, path: Path) -> Path:
    """Validate, then write ``path`` atomically (UTF-8, Unix newlines, no index)."""
    validate_submission(submission, test_rows)
    write_csv(submission, path)
    log.info("wrote %s: %d rows", path, len(submission))
    return Path(path)


def check_replaceable(path: Path) -> None:
    """Refuse, before any work, an output that would replace a file ``predict`` did not write.

    A submission is rewritten run after run, but a mistyped ``--out`` (``input/train.csv``) must not
    cost a dataset: an existing ``path`` must be a submission (header ``row_id,target``) and an
    existing ``.npz`` beside it the probabilities of one.
    """
    path = Path(path)
    if path.is_file():
        with open(path, encoding="utf-8", errors="replace") as handle:
            header = handle.readline().strip()
        if header != SUBMISSION_HEADER:
            raise BengaliaiError(
                f"--out {path} exists and is no submission (its first line is {header[:60]!r}, not "
                f"{SUBMISSION_HEADER!r}): predict replaces only an earlier submission; choose another --out"
            )
    npz = path.with_suffix(".npz")
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as saved:
                keys = set(saved.files)
        except Exception:  # unreadable: certainly not ours to replace
            keys = set()
        if not {"image_id", "prior_alpha", *COMPONENTS} <= keys:
            raise BengaliaiError(
                f"{npz} exists and holds no predicted probabilities: predict writes them beside --out {path.name} "
                "and replaces only its own; choose another --out"
            )


def write_probabilities(
    path: Path, image_ids: Sequence[str], probabilities: Mapping[str, np.ndarray], alpha: float
) -> Path:
    """Save the ensemble's probabilities (before prior correction) for blending: ``image_id`` plus
    one (N, classes) float32 matrix per component, and the ``prior_alpha`` the submission used."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle, image_id=np.asarray(list(image_ids)), prior_alpha=np.float64(alpha),
            **{name: np.asarray(probabilities[name], dtype=np.float32) for name in COMPONENTS},
        )
    return Path(path)
