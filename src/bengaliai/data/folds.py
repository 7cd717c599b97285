"""Split train.csv into seeded multilabel-stratified folds, optionally holding out whole graphemes.

The folds are stratified over the one-hot labels of all three components together (168 + 11 + 7
columns). Iterative stratification on the raw integer labels would be wrong without any error: it
casts them to bool and so only balances "label 0" against "any other label".

With ``unseen_graphemes`` N, N whole graphemes (by their string) never appear in any training
split; their images are validated in every fold, imitating the graphemes of the private test set
that never occur in train. They still get a fold of their own (stratified separately), which is
where their out-of-fold prediction comes from.

The result is written once to ``train_folds.csv`` (``image_id, fold, unseen``) and training only
ever reads it back with :func:`read_folds` and :func:`fold_masks`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TRAIN_CSV
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv
from bengaliai.data.labels import line_of, read_train_labels

log = logging.getLogger(__name__)

FOLDS_CSV = "train_folds.csv"
FOLDS_COLUMNS: tuple[str, ...] = ("image_id", "fold", "unseen")


def one_hot(labels: pd.DataFrame) -> np.ndarray:
    """(N, 186) bool matrix: the one-hot codes of root, vowel and consonant side by side."""
    offsets = np.cumsum([0] + [N_CLASSES[c] for c in COMPONENTS])
    codes = np.zeros((len(labels), offsets[-1]), dtype=bool)
    rows = np.arange(len(labels))
    for offset, component in zip(offsets, COMPONENTS):
        codes[rows, offset + labels[component].to_numpy()] = True
    return codes


def _stratify(codes: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """The validation fold of each row, stratified over the one-hot columns."""
    if len(codes) < n_splits:
        # Too few rows for the splitter (it refuses): spread them over distinct folds.
        return np.random.default_rng(seed).permutation(n_splits)[: len(codes)]
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    splitter = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = np.full(len(codes), -1, dtype=np.int64)
    for fold, (_, valid) in enumerate(splitter.split(np.zeros(len(codes)), codes)):
        folds[valid] = fold
    return folds


def _class_counts(codes: np.ndarray) -> np.ndarray:
    return codes.sum(axis=0, dtype=np.int64)


def _balance(codes: np.ndarray, folds: np.ndarray, n_splits: int, keep_classes: bool) -> np.ndarray:
    """Move rows from the largest to the smallest fold until sizes differ by at most one.

    Iterative stratification favours label balance over fold size and leaves folds 1-2% apart on
    a few thousand images. Each move takes the row whose classes the large fold has most in excess
    of the small one, so label balance improves too; with ``keep_classes`` a row is moved only if
    each of its classes stays in the small fold's training split.
    """
    folds = folds.copy()
    weights = codes.astype(np.int64)
    counts = np.stack([_class_counts(codes[folds == k]) for k in range(n_splits)])
    total = counts.sum(axis=0)
    sizes = np.bincount(folds, minlength=n_splits)
    while sizes.max() - sizes.min() > 1:
        large, small = int(np.argmax(sizes)), int(np.argmin(sizes))
        members = np.flatnonzero(folds == large)
        score = weights[members] @ (counts[large] - counts[small])
        if keep_classes:
            scarce = (total - counts[small]) < 2
            score[(weights[members] @ scarce.astype(np.int64)) > 0] = np.iinfo(np.int64).min
        best = int(np.argmax(score))
        if score[best] == np.iinfo(np.int64).min:
            break
        row = members[best]
        folds[row] = small
        counts[large] -= weights[row]
        counts[small] += weights[row]
        sizes[large] -= 1
        sizes[small] += 1
    return folds


def choose_unseen(labels: pd.DataFrame, n: int, seed: int) -> list[str]:
    """N grapheme strings to hold out of training, chosen with the seed.

    A grapheme qualifies only if, once it and the graphemes already chosen are removed, every
    class of every component still has at least two training images (or as many as it had, if
    fewer), so that the stratified folds can keep each class in every training split.
    """
    if n == 0:
        return []
    graphemes = labels["grapheme"].to_numpy()
    names, inverse = np.unique(graphemes, return_inverse=True)
    if n >= len(names):
        raise BengaliaiError(
            f"cannot hold out {n} unseen graphemes: train.csv has only {len(names)} distinct graphemes "
            "and some must stay in training"
        )
    codes = one_hot(labels).astype(np.int64)
    per_grapheme = np.zeros((len(names), codes.shape[1]), dtype=np.int64)
    np.add.at(per_grapheme, inverse, codes)
    kept = per_grapheme.sum(axis=0)
    floor = np.minimum(kept, 2)
    chosen: list[str] = []
    for index in np.random.default_rng(seed).permutation(len(names)):
        if np.all(kept - per_grapheme[index] >= floor):
            kept -= per_grapheme[index]
            chosen.append(str(names[index]))
            if len(chosen) == n:
                return sorted(chosen)
    raise BengaliaiError(
        f"cannot hold out {n} unseen graphemes: with seed {seed} only {len(chosen)} of the "
        f"{len(names)} graphemes could be removed while every class of every component keeps at "
        "least two training images; ask for fewer unseen graphemes (or use more training data)"
    )


def assign_folds(labels: pd.DataFrame, n_splits: int = 5, seed: int = 0, unseen_graphemes: int = 0) -> pd.DataFrame:
    """The ``image_id, fold, unseen`` frame for the labels of read_train_labels (same row order)."""
    if n_splits < 2:
        raise BengaliaiError(f"need at least 2 folds, got {n_splits}")
    if len(labels) < n_splits:
        raise BengaliaiError(f"cannot split {len(labels)} images into {n_splits} folds")
    held_out = choose_unseen(labels, unseen_graphemes, seed)
    unseen = labels["grapheme"].isin(held_out).to_numpy()
    codes = one_hot(labels)
    folds = np.full(len(labels), -1, dtype=np.int64)
    # Stratified apart so that the training splits depend only on the images that can be trained on.
    for part, keep_classes in ((~unseen, True), (unseen, False)):
        folds[part] = _balance(codes[part], _stratify(codes[part], n_splits, seed), n_splits, keep_classes)
    _warn_missing_classes(codes[~unseen], folds[~unseen], n_splits)
    return pd.DataFrame({"image_id": labels["image_id"].to_numpy(), "fold": folds, "unseen": unseen})


def _warn_missing_classes(codes: np.ndarray, folds: np.ndarray, n_splits: int) -> None:
    """Log each class of the training data that some fold's training split lacks.

    Iterative stratification spreads a class with two or more images over different folds, so this
    happens only for classes with a single trainable image.
    """
    present = _class_counts(codes) > 0
    names = [f"{c} {k}" for c in COMPONENTS for k in range(N_CLASSES[c])]
    for fold in range(n_splits):
        lacking = np.flatnonzero(present & (_class_counts(codes[folds != fold]) == 0))
        if lacking.size:
            log.warning(
                "fold %d: the training split lacks %s (too few training images)",
                fold,
                ", ".join(names[i] for i in lacking),
            )


def make_folds(
    input_dir: Path,
    n_splits: int = 5,
    seed: int = 0,
    unseen_graphemes: int = 0,
    out: Path | None = None,
    force: bool = False,
) -> Path:
    """Read ``input_dir/train.csv``, write the folds to ``out`` (default ``input_dir/train_folds.csv``)
    and return its path.

    Models are trained on one folds file; replacing it silently would make their out-of-fold scores
    count images they trained on. So an existing file with other content is refused unless
    ``force``, and an identical one is left untouched. ``out`` lets a read-only input folder (Kaggle's
    /kaggle/input) keep its files while the folds go elsewhere.
    """
    input_dir = Path(input_dir)
    train_csv = input_dir / TRAIN_CSV
    labels = read_train_labels(train_csv)
    if len(labels) < n_splits:
        raise DataError(train_csv, f"{len(labels)} images cannot be split into {n_splits} folds")
    folds = assign_folds(labels, n_splits=n_splits, seed=seed, unseen_graphemes=unseen_graphemes)
    path = Path(out) if out is not None else input_dir / FOLDS_CSV
    if path.exists():
        # The bytes write_csv would write, to compare before touching anything.
        new_text = folds.to_csv(index=False, lineterminator="\n").encode("utf-8")
        if path.read_bytes() == new_text:
            log.info("%s is unchanged (same train.csv, folds and seed): not rewritten", path)
            return path
        if not force:
            raise BengaliaiError(
                f"{path} exists and differs from the new split: runs trained on it would no longer match it; "
                "pass --force to replace it (then retrain), or --out FILE to write the new folds elsewhere"
            )
        log.warning("replacing %s (--force): runs trained on the old folds no longer match it", path)
    write_csv(folds, path)
    sizes = folds["fold"].value_counts().sort_index()
    log.info(
        "wrote %s: %d images in %d folds (validation sizes %s), seed %d",
        path,
        len(folds),
        n_splits,
        ", ".join(map(str, sizes.to_numpy())),
        seed,
    )
    if unseen_graphemes:
        log.info(
            "%d unseen graphemes (%d images) are held out of every training split",
            unseen_graphemes,
            int(folds["unseen"].sum()),
        )
    return path


def read_folds(path: Path) -> pd.DataFrame:
    """train_folds.csv as written by make_folds, checked: columns, folds 0..K-1, unique ids."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found; run `bengaliai folds` first")
    try:
        frame = pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise DataError(path, f"not a folds file ({error}); run `bengaliai folds` again") from None
    missing = [column for column in FOLDS_COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; expected {', '.join(FOLDS_COLUMNS)}")
    if frame.empty:
        raise DataError(path, "no rows")
    if not pd.api.types.is_integer_dtype(frame["fold"]):
        raise DataError(path, "column fold must hold integers 0..K-1")
    n_splits = int(frame["fold"].max()) + 1
    present = set(frame["fold"].unique().tolist())
    if min(present) < 0 or present != set(range(n_splits)):
        raise DataError(path, f"column fold must hold every fold 0..K-1, found {sorted(present)}")
    if not pd.api.types.is_bool_dtype(frame["unseen"]):
        raise DataError(path, "column unseen must hold True or False")
    duplicated = np.flatnonzero(frame["image_id"].duplicated().to_numpy())
    if duplicated.size:
        row = duplicated[0]
        raise DataError(path, f"line {line_of(row)}: image_id {frame['image_id'].iloc[row]} appears twice")
    return frame[list(FOLDS_COLUMNS)]


def align_folds(folds: pd.DataFrame, image_ids: Sequence[str], folds_path: Path) -> pd.DataFrame:
    """The rows of ``folds`` for ``image_ids``, in that order (e.g. the order of an image cache).

    Raises DataError naming the first few ids that have no fold: the folds were made from another
    train.csv.
    """
    indexed = folds.set_index("image_id")
    ids = pd.Index(list(image_ids))
    missing = ids[~ids.isin(indexed.index)]
    if len(missing):
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(
            folds_path,
            f"{len(missing)} of {len(ids)} images have no fold: {shown}; run `bengaliai folds` again "
            "on the train.csv you train on",
        )
    return indexed.loc[ids].reset_index()


def n_folds(folds: pd.DataFrame) -> int:
    """The number of folds K of a frame of read_folds."""
    return int(folds["fold"].max()) + 1


def fold_masks(folds: pd.DataFrame, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, valid) masks over the rows of ``folds`` for validation fold ``fold``.

    Train: not in the fold and not unseen. Valid: in the fold, plus every unseen image.
    """
    if not 0 <= fold < n_folds(folds):
        raise BengaliaiError(f"fold {fold} does not exist; the folds are 0..{n_folds(folds) - 1}")
    in_fold = folds["fold"].to_numpy() == fold
    unseen = folds["unseen"].to_numpy(dtype=bool)
    return ~in_fold & ~unseen, in_fold | unseen


def held_out_triples(input_dir: Path, folds_file: str = FOLDS_CSV) -> frozenset[tuple[int, int, int]]:
    """The label triples of the graphemes that ``input_dir``'s folds file holds out as unseen.

    ``synth --skip-held-out`` leaves them out of a rendered extra source, so that the held-out
    graphemes stay unseen by every fold's training and their out-of-fold scores stay a measurement.
    """
    from bengaliai.data.labels import read_train_labels

    folds = read_folds(Path(input_dir) / folds_file)
    labels = read_train_labels(Path(input_dir) / TRAIN_CSV).set_index("image_id")
    held = folds.loc[folds["unseen"], "image_id"]
    missing = pd.Index(held).difference(labels.index)
    if len(missing):
        raise DataError(Path(input_dir) / folds_file, f"{len(missing)} held-out image id(s) not in {TRAIN_CSV}, e.g. {missing[0]}")
    rows = labels.loc[held, list(COMPONENTS)].drop_duplicates().to_numpy()
    return frozenset((int(r), int(v), int(c)) for r, v, c in rows)
