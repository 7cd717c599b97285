"""Read train.csv and test.csv and check them against the competition format.

Every later stage trusts these frames, so a bad file fails here with a message that names the
file, the line (the header is line 1, the first data row line 2), the column, the value found and
the values allowed. Grapheme strings are read as typed: never converted to NaN, never
Unicode-normalised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.core.competition import (
    COMPONENTS,
    N_CLASSES,
    TEST_COLUMNS,
    TEST_COMPONENT_ORDER,
    TRAIN_COLUMNS,
    compose,
    seen_graphemes,
)
from bengaliai.core.errors import DataError

log = logging.getLogger(__name__)

# How many offending ids an error message lists before it only gives the count.
_SHOW = 5


def line_of(index: int) -> int:
    """The line of a file that holds data row ``index`` (0-based): the header is line 1."""
    return index + 2


def _read_text_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """Every column as text, nothing turned into NaN, required columns checked."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(path, f"the file is empty; expected a header {','.join(required)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataError(path, f"not a readable UTF-8 CSV file ({error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}, "
            f"expected {', '.join(required)}",
        )
    extra = [column for column in frame.columns if column not in required]
    if extra:
        log.debug("%s: ignoring extra column(s) %s", path, ", ".join(map(str, extra)))
    return frame[list(required)]


def _check_not_empty(frame: pd.DataFrame, column: str, path: Path) -> None:
    empty = np.flatnonzero(frame[column].to_numpy() == "")
    if empty.size:
        raise DataError(path, f"line {line_of(empty[0])}: column {column} is empty")


def _check_unique(frame: pd.DataFrame, column: str, path: Path) -> None:
    duplicated = frame[column].duplicated(keep=False).to_numpy()
    if duplicated.any():
        first = np.flatnonzero(duplicated)[0]
        value = frame[column].iloc[first]
        lines = [line_of(i) for i in np.flatnonzero(frame[column].to_numpy() == value)]
        raise DataError(
            path,
            f"{column} {value!r} appears more than once: lines {', '.join(map(str, lines))}",
        )


def _parse_labels(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Integers of one label column, each within the component's range."""
    text = frame[column]
    n_classes = N_CLASSES[column]
    allowed = f"an integer in 0..{n_classes - 1}"
    # A regex rather than to_numeric: "1.0", "1e2" or " 3" are not how Kaggle writes labels.
    not_integer = np.flatnonzero(~text.str.fullmatch(r"-?[0-9]+").to_numpy(dtype=bool))
    if not_integer.size:
        row = not_integer[0]
        value = text.iloc[row]
        found = "an empty value" if value == "" else f"{value!r}"
        raise DataError(path, f"line {line_of(row)}: column {column} has {found}, expected {allowed}")
    values = text.astype(np.int64).to_numpy()
    outside = np.flatnonzero((values < 0) | (values >= n_classes))
    if outside.size:
        row = outside[0]
        raise DataError(path, f"line {line_of(row)}: column {column} has {values[row]}, expected {allowed}")
    return values


def read_train_labels(path: Path) -> pd.DataFrame:
    """train.csv as a frame of ``image_id``, the three integer labels and ``grapheme``.

    Raises DataError for a file without data rows, missing columns, empty ids or graphemes, labels
    that are not integers in their component's range, and image ids that occur twice.
    """
    path = Path(path)
    frame = _read_text_csv(path, TRAIN_COLUMNS)
    if frame.empty:  # every stage after this one (cache, folds, training) needs at least one image
        raise DataError(path, "only a header, no data rows; expected one row per training image")
    _check_not_empty(frame, "image_id", path)
    _check_not_empty(frame, "grapheme", path)
    labels = {column: _parse_labels(frame, column, path) for column in COMPONENTS}
    _check_unique(frame, "image_id", path)
    result = pd.DataFrame({"image_id": frame["image_id"], **labels, "grapheme": frame["grapheme"]})
    log.debug("%s: %d images, %d graphemes", path, len(result), result["grapheme"].nunique())
    return result


def make_test_rows(image_ids: Sequence[str]) -> pd.DataFrame:
    """The rows of test.csv for ``image_ids``, as Kaggle writes them: three per image, in
    ``TEST_COMPONENT_ORDER``, ``row_id`` = ``{image_id}_{component}``."""
    return pd.DataFrame(
        {
            "row_id": [f"{i}_{c}" for i in image_ids for c in TEST_COMPONENT_ORDER],
            "image_id": [i for i in image_ids for _ in TEST_COMPONENT_ORDER],
            "component": [c for _ in image_ids for c in TEST_COMPONENT_ORDER],
        }
    )


def read_test_rows(path: Path) -> pd.DataFrame:
    """test.csv as a frame of ``row_id, image_id, component``, one row per image and component.

    Raises DataError for missing columns, unknown components, a row_id other than
    ``{image_id}_{component}``, repeated row ids, and images that lack one of the three rows.
    """
    path = Path(path)
    frame = _read_text_csv(path, TEST_COLUMNS)
    _check_not_empty(frame, "image_id", path)
    unknown = np.flatnonzero(~frame["component"].isin(COMPONENTS).to_numpy())
    if unknown.size:
        row = unknown[0]
        raise DataError(
            path,
            f"line {line_of(row)}: column component has {frame['component'].iloc[row]!r}, "
            f"expected one of {', '.join(COMPONENTS)}",
        )
    expected = frame["image_id"] + "_" + frame["component"]
    wrong = np.flatnonzero((frame["row_id"] != expected).to_numpy())
    if wrong.size:
        row = wrong[0]
        raise DataError(
            path,
            f"line {line_of(row)}: row_id is {frame['row_id'].iloc[row]!r}, expected "
            f"{expected.iloc[row]!r} (image_id_component)",
        )
    _check_unique(frame, "row_id", path)
    counts = frame.groupby("image_id", sort=False)["component"].size()
    incomplete = counts[counts != len(COMPONENTS)]
    if len(incomplete):
        image_id = incomplete.index[0]
        have = sorted(frame.loc[frame["image_id"] == image_id, "component"])
        raise DataError(
            path,
            f"image {image_id} has rows for {', '.join(have)} only; every image needs one row for "
            f"each of {', '.join(COMPONENTS)}",
        )
    log.debug("%s: %d rows, %d images", path, len(frame), len(counts))
    return frame.reset_index(drop=True)


def check_grapheme_text(labels: pd.DataFrame, path: Path) -> None:
    """Raise DataError at the first row whose ``grapheme`` is not a spelling of its three labels.

    ``labels`` is a frame from ``read_train_labels``. A triple's spellings are those of the real
    training set (``seen_graphemes``) and ``compose``'s, which imports and renders of other graphemes use.
    """
    spellings: dict[tuple[int, ...], list[str]] = {}
    for grapheme in seen_graphemes():
        spellings.setdefault(grapheme.labels, []).append(grapheme.text)
    frame = labels[[*COMPONENTS, "grapheme"]].reset_index(drop=True)
    wrong: dict[tuple[Any, ...], tuple[int, list[str]]] = {}
    for row, *triple, text in frame.drop_duplicates().itertuples(name=None):
        allowed = list(dict.fromkeys([*spellings.get(tuple(triple), []), compose(*map(int, triple))]))
        if text not in allowed:
            wrong[(*triple, text)] = (row, allowed)
    if wrong:
        row, allowed = min(wrong.values())
        *triple, text = frame.iloc[row]
        spelled = ", ".join(f"{column} {value}" for column, value in zip(COMPONENTS, triple, strict=True))
        count = int(pd.MultiIndex.from_frame(frame).isin(list(wrong)).sum())
        more = f" ({count} rows disagree)" if count > 1 else ""
        raise DataError(
            path,
            f"line {line_of(row)}: grapheme {text!r} is not what its labels spell: {spelled} spell "
            f"{' or '.join(map(repr, allowed))}{more}; fix the labels or the grapheme",
        )


def check_image_ids(
    labels_ids: Iterable[str], image_ids: Iterable[str], labels_path: Path, images_source: str | Path, fix: str = ""
) -> None:
    """Raise DataError if an image id of the labels file has no image in ``images_source``.

    ``images_source`` only names where the images came from (a folder, a cache) in the message,
    ``fix`` what to do about it. Images without labels are allowed and only counted in the debug log.
    """
    labels_ids = list(labels_ids)
    available = set(image_ids)
    missing = [image_id for image_id in labels_ids if image_id not in available]
    if missing:
        shown = ", ".join(missing[:_SHOW]) + (", ..." if len(missing) > _SHOW else "")
        raise DataError(
            labels_path,
            f"{len(missing)} of {len(labels_ids)} image ids have no image in {images_source}: {shown}"
            + (f"; {fix}" if fix else ""),
        )
    unlabelled = len(available - set(labels_ids))
    if unlabelled:
        log.debug("%s: %d images are not in %s", images_source, unlabelled, labels_path)
