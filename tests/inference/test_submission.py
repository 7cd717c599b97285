"""The submission is validated against test.csv before it is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.labels import make_test_rows
from bengaliai.inference.submission import build_submission, validate_submission, write_submission


def _rows(n: int) -> pd.DataFrame:
    return make_test_rows([f"Test_{i}" for i in range(n)])


def _labels(n: int) -> dict[str, np.ndarray]:
    return {"grapheme_root": np.arange(n) + 100, "vowel_diacritic": np.arange(n) % 11, "consonant_diacritic": np.arange(n) % 7}


def test_targets_follow_the_rows_of_test_csv_whatever_the_image_order() -> None:
    rows = _rows(4)
    # Predictions arrive in another image order than test.csv lists them.
    order = ["Test_2", "Test_0", "Test_3", "Test_1"]
    labels = {k: v[[2, 0, 3, 1]] for k, v in _labels(4).items()}
    submission = build_submission(rows, order, labels, Path("test.csv"))
    assert submission["row_id"].tolist() == rows["row_id"].tolist()
    by_row = dict(zip(submission["row_id"], submission["target"], strict=True))
    assert by_row["Test_3_grapheme_root"] == 103
    assert by_row["Test_1_vowel_diacritic"] == 1
    assert by_row["Test_2_consonant_diacritic"] == 2
    validate_submission(submission, rows)


def test_an_image_of_test_csv_without_prediction_is_named() -> None:
    with pytest.raises(DataError, match="test.csv.*Test_3"):
        build_submission(_rows(4), ["Test_0", "Test_1", "Test_2"], {k: v[:3] for k, v in _labels(4).items()}, Path("test.csv"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.iloc[:-1], "rows"),
        (lambda s: s.assign(row_id=s["row_id"][::-1].to_numpy()), "row 1"),
        (lambda s: s.assign(target=s["target"].astype(float)), "integers"),
        (lambda s: s.rename(columns={"target": "label"}), "columns"),
        (lambda s: s.assign(target=np.where(s["row_id"] == "Test_1_vowel_diacritic", 11, s["target"])), "Test_1_vowel_diacritic"),
        (lambda s: s.assign(target=np.where(s["row_id"] == "Test_0_grapheme_root", -1, s["target"])), "outside 0..167"),
    ],
)
def test_invalid_submissions_are_refused_and_not_written(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(3)
    good = build_submission(rows, [f"Test_{i}" for i in range(3)], _labels(3), Path("test.csv"))
    out = tmp_path / "submission.csv"
    with pytest.raises(BengaliaiError, match=message):
        write_submission(change(good), rows, out)
    assert not out.exists()
    write_submission(good, rows, out)
    assert out.read_text(encoding="utf-8").startswith("row_id,target\nTest_0_consonant_diacritic,0\n")
