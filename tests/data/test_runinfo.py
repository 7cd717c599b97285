"""Run folders record the fingerprints of their inputs, and changed inputs are refused by name."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.data.runinfo import (
    RUN_JSON,
    check_ensemble_inputs,
    check_run_inputs,
    file_fingerprint,
    write_run_description,
)


def make_input(folder: Path, folds: str = "image_id,fold,unseen\nTrain_0,0,False\nTrain_1,1,False\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRAIN_CSV).write_text("image_id,grapheme_root\nTrain_0,1\nTrain_1,2\n", encoding="utf-8")
    (folder / FOLDS_CSV).write_text(folds, encoding="utf-8")
    return folder


def make_fold(experiment: Path, fold: int, input_dir: Path) -> Path:
    config = {"experiment": experiment.name, "data": {"input": str(input_dir)}, "folds_file": FOLDS_CSV, "fold": fold}
    write_run_description(experiment / f"fold{fold}", config)
    return experiment / f"fold{fold}"


def test_file_fingerprint_is_the_start_of_the_sha256(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 10_000  # several read blocks
    path.write_bytes(data)
    assert file_fingerprint(path) == hashlib.sha256(data).hexdigest()[:16]


def test_run_json_records_the_inputs_and_a_changed_folds_file_is_refused(tmp_path: Path) -> None:
    input_dir = make_input(tmp_path / "input")
    run_dir = make_fold(tmp_path / "runs" / "exp", 0, input_dir)
    inputs = json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))["inputs"]
    old = file_fingerprint(input_dir / FOLDS_CSV)
    assert inputs["folds"] == {"path": str(input_dir / FOLDS_CSV), "sha256": old}
    assert inputs["train_csv"]["sha256"] == file_fingerprint(input_dir / TRAIN_CSV)
    check_run_inputs(run_dir)

    make_input(input_dir, folds="image_id,fold,unseen\nTrain_0,1,False\nTrain_1,0,False\n")
    new = file_fingerprint(input_dir / FOLDS_CSV)
    expected = (rf"{FOLDS_CSV} changed since \S*fold0 was trained \(recorded {old}, now {new}\): "
                r"retrain fold0, or restore the folds file the run used")
    with pytest.raises(BengaliaiError, match=expected):
        check_run_inputs(run_dir)
    # The same content elsewhere (data moved, --input) is the same input.
    moved = make_input(tmp_path / "moved")
    check_run_inputs(run_dir, input_dir=moved)


def test_an_older_run_without_fingerprints_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = make_fold(tmp_path / "exp", 0, make_input(tmp_path / "input"))
    (run_dir / RUN_JSON).write_text(json.dumps({"started": "2024-01-01"}), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        check_run_inputs(run_dir)
    assert "records no input fingerprints" in caplog.text


def test_folds_of_one_ensemble_trained_on_different_splits_are_refused(tmp_path: Path) -> None:
    input_dir = make_input(tmp_path / "input")
    experiment = tmp_path / "exp"
    make_fold(experiment, 0, input_dir)
    make_input(input_dir, folds="image_id,fold,unseen\nTrain_0,1,False\nTrain_1,0,False\n")
    make_fold(experiment, 1, input_dir)
    # The current file matches fold1 only; without it (data elsewhere) the folds still disagree.
    (input_dir / FOLDS_CSV).unlink()
    with pytest.raises(BengaliaiError, match="fold0 and fold1 of .* were trained on different folds files"):
        check_ensemble_inputs([experiment / "fold0", experiment / "fold1"])
