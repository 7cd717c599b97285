"""benchmarks/eval_real_handwriting.py: the scoring as a function, vowel figures per sign, several folders, JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from bengaliai.core.competition import COMPONENTS, LABEL_STRINGS

from real_writing_builders import REAL_LABELS, write_real_folder, write_untrained_run

SIGNS = LABEL_STRINGS["vowel_diacritic"]


@pytest.fixture
def evaluation(benchmark: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script with no model loaded: tests set ``predict`` to the predictions they want."""
    module = benchmark("eval_real_handwriting")
    monkeypatch.setattr(module, "load_predictor", lambda checkpoints, tta=1: None)
    return module


def _predicting(module: ModuleType, monkeypatch: pytest.MonkeyPatch, labels: dict[str, np.ndarray]) -> None:
    monkeypatch.setattr(module, "predict", lambda predictor, images, prior: labels)


def test_predicting_the_truth_scores_one_everywhere(evaluation: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    truth = write_real_folder(tmp_path / "dev")
    _predicting(evaluation, monkeypatch, {name: truth[name].to_numpy() for name in COMPONENTS})
    result = evaluation.evaluate([tmp_path / "fold0.pt"], tmp_path / "dev")
    assert result["n"] == len(REAL_LABELS) == 7
    assert result["score"] == result["held_score"] == 1.0
    assert result["recalls"] == result["held_recalls"] == result["accuracy"] == dict.fromkeys(COMPONENTS, 1.0)
    assert list(result["vowel_by_sign"]) == [SIGNS[0], SIGNS[3], SIGNS[7], SIGNS[9]]  # class order
    assert result["vowel_by_sign"][SIGNS[3]] == {"class": 3, "n": 3, "accuracy": 1.0}
    assert sum(v["n"] for v in result["vowel_by_sign"].values()) == result["n"]
    assert {v["accuracy"] for v in result["vowel_by_sign"].values()} == {1.0}
    assert result["vowel_confusion"] == {SIGNS[0]: {SIGNS[0]: 2}, SIGNS[3]: {SIGNS[3]: 3}, SIGNS[7]: {SIGNS[7]: 1},
                                         SIGNS[9]: {SIGNS[9]: 1}}
    assert result["root_accuracy_by_kind"] == {"consonant": {"n": 7, "accuracy": 1.0}}
    json.dumps(result)  # plain values only


def test_a_constant_prediction_is_right_only_for_its_own_sign(evaluation: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    truth = write_real_folder(tmp_path / "dev")
    n = len(truth)
    _predicting(evaluation, monkeypatch, {"grapheme_root": np.full(n, 13), "vowel_diacritic": np.full(n, 3),
                                          "consonant_diacritic": np.zeros(n, dtype=int)})
    result = evaluation.evaluate([tmp_path / "fold0.pt"], tmp_path / "dev")
    by_sign = result["vowel_by_sign"]
    assert {sign: (v["n"], v["accuracy"]) for sign, v in by_sign.items()} == {
        SIGNS[0]: (2, 0.0), SIGNS[3]: (3, 1.0), SIGNS[7]: (1, 0.0), SIGNS[9]: (1, 0.0)}
    assert result["vowel_confusion"] == {SIGNS[0]: {SIGNS[3]: 2}, SIGNS[3]: {SIGNS[3]: 3}, SIGNS[7]: {SIGNS[3]: 1},
                                         SIGNS[9]: {SIGNS[3]: 1}}
    # One of the 4 vowel classes held is read right: recall 1/4 over the classes held and over the union (3 is held).
    assert result["held_recalls"]["vowel_diacritic"] == result["recalls"]["vowel_diacritic"] == pytest.approx(0.25)
    assert result["accuracy"]["vowel_diacritic"] == pytest.approx(3 / 7)
    # Root 13: right on 2 of its 2 images, 6 root classes held; consonant 0: 5 of 7 images are 0, classes {0, 2}.
    assert result["held_recalls"]["grapheme_root"] == pytest.approx(1 / 6)
    assert result["held_recalls"]["consonant_diacritic"] == pytest.approx(0.5)
    assert result["held_score"] == pytest.approx((2 / 6 + 0.25 + 0.5) / 4)


def test_predicted_classes_the_folder_lacks_lower_only_the_union_score(
    evaluation: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    truth = write_real_folder(tmp_path / "dev")
    pred = {name: truth[name].to_numpy().copy() for name in COMPONENTS}
    pred["vowel_diacritic"][truth["vowel_diacritic"].to_numpy() == 7] = 10  # ৌ, a sign the folder does not hold
    _predicting(evaluation, monkeypatch, pred)
    result = evaluation.evaluate([tmp_path / "fold0.pt"], tmp_path / "dev")
    assert result["held_recalls"]["vowel_diacritic"] == pytest.approx(3 / 4)
    assert result["recalls"]["vowel_diacritic"] == pytest.approx(3 / 5)
    assert result["vowel_by_sign"][SIGNS[7]] == {"class": 7, "n": 1, "accuracy": 0.0}
    assert result["vowel_confusion"][SIGNS[7]] == {SIGNS[10]: 1}


def test_several_folders_are_scored_in_turn_and_written_as_json(
    benchmark: Callable[[str], ModuleType], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = benchmark("eval_real_handwriting")
    run = write_untrained_run(tmp_path / "runs" / "exp")
    write_real_folder(tmp_path / "dev")
    write_real_folder(tmp_path / "other", REAL_LABELS[:4], prefix="Other")
    out = tmp_path / "real.json"
    argv = ["--run", str(run), "--real", str(tmp_path / "dev"), "--real", str(tmp_path / "other"),
            "--json", str(out), "--sheet", str(tmp_path / "sheet.png")]
    with caplog.at_level(logging.INFO, logger="eval_real_handwriting"):
        results = module.main(argv)
    assert [r["n"] for r in results] == [7, 4]
    assert caplog.text.count("| model | tta | alpha | classes held: root |") == 2
    assert f"7 real images from {tmp_path / 'dev'}" in caplog.text and "4 real images from" in caplog.text
    assert (tmp_path / "sheet_dev.png").is_file() and (tmp_path / "sheet_other.png").is_file()
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["checkpoints"] == [str(run / "fold0" / "best.pt"), str(run / "fold1" / "best.pt")]
    assert report["folders"] == json.loads(json.dumps(results))
    # The function gives what the command line printed and wrote: same model, same folder.
    again = module.evaluate(module.fold_checkpoints(run, "all"), tmp_path / "dev")
    assert again == results[0]
    confusion = again["vowel_confusion"]
    assert sum(sum(row.values()) for row in confusion.values()) == again["n"]
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in again["vowel_by_sign"].values())


def test_labels_without_a_png_are_refused(benchmark: Callable[[str], ModuleType], tmp_path: Path) -> None:
    module = benchmark("eval_real_handwriting")
    write_real_folder(tmp_path / "dev")
    (tmp_path / "dev" / "Dev_2.png").unlink()
    with pytest.raises(SystemExit, match="Dev_2.png: missing or unreadable"):
        module.load_images(tmp_path / "dev", pd.read_csv(tmp_path / "dev" / "labels.csv")["image_id"].tolist())
