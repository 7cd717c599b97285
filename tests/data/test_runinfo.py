"""Run folders record the fingerprints of their inputs (changed inputs refused by name) and folds compare settings."""

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
    MODEL_SETTINGS,
    RUN_JSON,
    check_ensemble_inputs,
    check_run_inputs,
    describe_differences,
    differing_settings,
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


def _fold_config(**model: object) -> dict[str, object]:
    """A fold's config.yaml as training writes it (the parts the comparison reads, and some it must not)."""
    return {"experiment": "exp", "epochs": 30, "device": "cuda", "precision": "bf16", "output": "runs",
            "model": {"arch": "resnet34", "aux_graphemes": False, "pretrained": "weights/resnet34.pth"} | model,
            "data": {"input": "input", "cache": "crop128", "workers": 4, "mean": 0.06, "std": 0.2,
                     "extra": ["/data/hw"], "extra_share": [0.2], "extra_heads": ["all"]},
            "preprocess": {"mode": "crop", "size": 128}, "fold": 0, "resolved": {"device": "cuda:0"}}


def test_fold_settings_that_differ_are_named_with_each_folds_value() -> None:
    same = _fold_config()
    # Where things are and how fast they run may differ between the machines that trained the folds.
    elsewhere = _fold_config(pretrained="/kaggle/input/w/resnet34.pth")
    elsewhere |= {"device": "cpu", "precision": "fp32", "output": "/kaggle/working/runs", "fold": 1}
    elsewhere["data"] |= {"input": "/kaggle/input/bengali", "workers": 2, "extra": ["/kaggle/input/hw"]}
    assert differing_settings({0: same, 1: elsewhere, 2: _fold_config()}) == {}

    configs = {0: _fold_config(aux_graphemes=True), 1: _fold_config(), 2: _fold_config(arch="resnet18")}
    configs[1]["preprocess"] = {"mode": "crop", "size": 64}
    differing = differing_settings(configs)
    assert differing == {"model.arch": {0: "resnet34", 1: "resnet34", 2: "resnet18"},
                         "model.aux_graphemes": {0: True, 1: False, 2: False},
                         "preprocess.size": {0: 128, 1: 64, 2: 128}}
    assert describe_differences(differing) == (
        "model.arch (fold0, fold1: resnet34; fold2: resnet18), model.aux_graphemes (fold0: true; fold1, fold2: "
        "false), preprocess.size (fold0, fold2: 128; fold1: 64)"
    )
    assert describe_differences(differing, limit=1) == "model.arch (fold0, fold1: resnet34; fold2: resnet18) and 2 more"
    # A fold that does not record a setting (a run older than it) is not compared on it.
    del configs[1]["preprocess"]
    assert "preprocess.size" not in differing_settings(configs)


def test_extra_sources_are_compared_by_name_and_share() -> None:
    other = _fold_config()
    other["data"] |= {"extra": ["/data/lf"], "extra_share": [0.3]}
    assert differing_settings({0: _fold_config(), 3: other}) == {
        "data.extra": {0: ["hw"], 3: ["lf"]}, "data.extra_share": {0: [0.2], 3: [0.3]}
    }
    assert describe_differences(differing_settings({0: _fold_config(), 3: other})) == (
        "data.extra (fold0: [hw]; fold3: [lf]), data.extra_share (fold0: [0.2]; fold3: [0.3])"
    )
    # Only the keys asked for: the leaderboard also asks for the epochs it shows.
    longer = _fold_config() | {"epochs": 40}
    assert differing_settings({0: _fold_config(), 1: longer}) == {}
    assert differing_settings({0: _fold_config(), 1: longer}, (*MODEL_SETTINGS, "epochs")) == {
        "epochs": {0: 30, 1: 40}
    }
