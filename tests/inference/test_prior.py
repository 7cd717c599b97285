"""The prior correction: the tuned alpha only for the folds it was tuned on and inputs unchanged since."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import write_json
from bengaliai.data.runinfo import input_fingerprints, recorded_inputs, write_run_description
from bengaliai.inference.checkpoints import fold_checkpoints
from bengaliai.inference.prior import resolve_prior


def _tuned_run(root: Path, n_folds: int = 3) -> Path:
    """runs/exp with fold<K>/{config.yaml, run.json (fingerprints), best.pt} and an oof.json tuned on folds 0-1."""
    input_dir, experiment = root / "input", root / "runs" / "exp"
    input_dir.mkdir(parents=True)
    (input_dir / "train.csv").write_text("image_id,grapheme_root\nTrain_0,1\n", encoding="utf-8")
    (input_dir / "train_folds.csv").write_text("image_id,fold,unseen\nTrain_0,0,False\n", encoding="utf-8")
    config = {"data": {"input": str(input_dir)}, "folds_file": "train_folds.csv"}
    for fold in range(n_folds):
        write_run_description(experiment / f"fold{fold}", config | {"fold": fold})
        (experiment / f"fold{fold}" / "best.pt").write_bytes(b"")
    counts = {name: [1] * N_CLASSES[name] for name in COMPONENTS}
    write_json({"folds": [0, 1], "prior": {"alpha": 0.5, "class_counts": counts},
                "inputs": input_fingerprints(config),
                "fold_inputs": {str(k): recorded_inputs(experiment / f"fold{k}") for k in (0, 1)}},
               experiment / "oof.json")
    return experiment


def test_alpha_auto_is_refused_for_folds_it_was_not_tuned_on(tmp_path: Path) -> None:
    experiment = _tuned_run(tmp_path)
    with pytest.raises(BengaliaiError, match=r"tuned on folds \[0, 1\], but the ensemble uses folds \[0, 2\] "
                                             r".*run `bengaliai oof --run .*` again, or pass --alpha"):
        resolve_prior(experiment, None, None, fold_checkpoints(experiment, "0,2"))
    with pytest.raises(BengaliaiError, match=r"uses folds \[0, 1, 2\]"):
        resolve_prior(experiment, None, None)  # default: every trained fold
    assert resolve_prior(experiment, 0.3, None, fold_checkpoints(experiment, "0,2")).alpha == 0.3


def test_alpha_auto_for_a_subset_of_the_tuned_folds_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    experiment = _tuned_run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bengaliai.inference.prior"):
        assert resolve_prior(experiment, None, None, fold_checkpoints(experiment, "0,1")).alpha == 0.5
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="bengaliai.inference.prior"):
        assert resolve_prior(experiment, None, None, fold_checkpoints(experiment, "1")).alpha == 0.5
    assert "tuned on folds [0, 1], the ensemble uses only folds [1]" in caplog.text


def test_changed_folds_refuse_the_checkpoints_and_the_tuned_alpha(tmp_path: Path) -> None:
    experiment = _tuned_run(tmp_path)
    folds_csv = tmp_path / "input" / "train_folds.csv"
    original = folds_csv.read_bytes()
    folds_csv.write_text("image_id,fold,unseen\nTrain_0,1,False\n", encoding="utf-8")
    with pytest.raises(BengaliaiError, match=r"train_folds.csv changed since \S*fold0 was trained"):
        fold_checkpoints(experiment, "0")
    with pytest.raises(BengaliaiError, match=r"oof.json no longer matches the run: \S*train_folds.csv changed since"):
        resolve_prior(experiment, None, None)
    # Fold 1 trained again on other folds after oof.json was tuned: its alpha is stale too.
    folds_csv.write_bytes(original)
    write_run_description(experiment / "fold1", {"data": {"input": str(tmp_path / "other")}, "folds_file": "x.csv"})
    with pytest.raises(BengaliaiError, match="fold1 was trained again on other inputs"):
        resolve_prior(experiment, None, None, fold_checkpoints(experiment, "0"))
