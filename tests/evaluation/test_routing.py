"""Seen/unseen routing: decoding with the grapheme head, threshold tuning out of fold, oof.json, predict, leaderboard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TEST_CSV, TRAIN_CSV, seen_graphemes
from bengaliai.core.errors import DataError
from bengaliai.core.fileio import write_csv
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.evaluation.leaderboard import collect_leaderboard
from bengaliai.evaluation.metric import competition_score
from bengaliai.evaluation.oof import evaluate_oof
from bengaliai.evaluation.oof_report import OOF_JSON, read_oof_report, routing_from_report
from bengaliai.evaluation.routing import (
    AUX_KEYS,
    LOGSUMEXP,
    SCORES,
    TOP_INDEX,
    TOP_K,
    TOP_PROB,
    Routing,
    competition_score_fast,
    route,
    tune_routing,
)
from bengaliai.inference.ensemble import InferenceConfig
from bengaliai.inference.predict import predict

FP32 = InferenceConfig(precision="fp32")


def aux_arrays(top: np.ndarray, msp: np.ndarray, lse: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Routing arrays with grapheme ``top`` at probability ``msp``, the rest spread over the next four."""
    n = len(top)
    index = (top[:, None] + np.arange(TOP_K)[None, :]) % len(seen_graphemes())
    prob = np.column_stack([msp, *[(1 - msp) / (TOP_K - 1)] * (TOP_K - 1)]).astype(np.float32)
    return {TOP_INDEX: index.astype(np.int16), TOP_PROB: prob,
            LOGSUMEXP: np.zeros(n, np.float32) if lse is None else lse.astype(np.float32)}


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    p = np.full((len(labels), n_classes), 0.1 / (n_classes - 1), dtype=np.float32)
    p[np.arange(len(labels)), labels] = 0.9
    return p


def test_a_confident_image_takes_its_graphemes_triple_and_the_rest_the_component_heads() -> None:
    grapheme = 700
    triple = seen_graphemes()[grapheme].labels
    components = {name: np.array([0, 1]) for name in COMPONENTS}
    aux = aux_arrays(np.array([grapheme, grapheme]), np.array([0.95, 0.5]))
    routed = route(components, aux, Routing("msp", 0.9))
    assert [int(routed[name][0]) for name in COMPONENTS] == list(triple)
    assert [int(routed[name][1]) for name in COMPONENTS] == [1, 1, 1]  # below the threshold: the heads decide
    assert all(int(route(components, aux, Routing("msp", 0.96))[name][0]) == 0 for name in COMPONENTS)


def test_the_fast_score_is_the_competition_metric() -> None:
    rng = np.random.default_rng(0)
    truth = np.column_stack([rng.integers(0, 20, 500), rng.integers(0, 11, 500), rng.integers(0, 7, 500)])
    predicted = np.where(rng.random((500, 3)) < 0.7, truth, np.column_stack(
        [rng.integers(0, 168, 500), rng.integers(0, 11, 500), rng.integers(0, 7, 500)]))
    assert competition_score_fast(truth, predicted) == pytest.approx(competition_score(truth, predicted).score)
    for classes in ("union", "true"):
        fast = competition_score_fast(truth, predicted, classes)
        assert fast == pytest.approx(competition_score(truth, predicted, classes).score)
    # roots 0..19 are true, predictions reach up to 167: the two averages differ
    assert competition_score_fast(truth, predicted, "true") > competition_score_fast(truth, predicted) + 0.05


def _separable(n_seen: int = 60, n_unseen: int = 20, seed: int = 0) -> tuple[dict, dict, dict, np.ndarray]:
    """Seen images: the grapheme head is right and sure (msp 0.8-0.99), the root head wrong.
    Unseen images: the grapheme head is wrong and unsure (msp 0.2-0.6), the component heads are right."""
    rng = np.random.default_rng(seed)
    graphemes = rng.choice(len(seen_graphemes()), size=n_seen + n_unseen)
    truth = np.array([seen_graphemes()[g].labels for g in graphemes])
    unseen = np.arange(n_seen + n_unseen) >= n_seen
    y_true = {name: truth[:, i] for i, name in enumerate(COMPONENTS)}
    predicted = truth.copy()
    wrong_root = ~unseen
    predicted[wrong_root, 0] = (truth[wrong_root, 0] + 1) % N_CLASSES["grapheme_root"]
    probabilities = {name: one_hot(predicted[:, i], N_CLASSES[name]) for i, name in enumerate(COMPONENTS)}
    msp = np.where(unseen, rng.uniform(0.2, 0.6, len(truth)), rng.uniform(0.8, 0.99, len(truth)))
    top = np.where(unseen, (graphemes + 1) % len(seen_graphemes()), graphemes)
    aux = aux_arrays(top, msp, lse=rng.normal(size=len(truth)))  # an energy that tells nothing
    return probabilities, aux, y_true, unseen


def test_tuning_picks_a_threshold_that_separates_seen_from_unseen_images() -> None:
    probabilities, aux, y_true, unseen = _separable()
    counts = {name: np.ones(N_CLASSES[name], dtype=np.int64) for name in COMPONENTS}
    report = tune_routing(probabilities, aux, y_true, unseen, counts, prior_alpha=0.0)
    msp = aux[TOP_PROB][:, 0]
    assert report.best.score_name in ("msp", "margin") and set(report.candidates) == set(SCORES)
    assert report.candidates["msp"].threshold == pytest.approx(msp[~unseen].min())
    assert msp[unseen].max() < report.best.threshold <= msp[~unseen].min() + 1e-6
    assert report.best.kept_seen == 1.0 and report.best.passed_unseen == 1.0 and report.best.routed_accuracy == 1.0
    assert report.best.score == pytest.approx(1.0) and report.score_without < 0.9
    # Per group: routing fixes the seen images' roots and leaves the unseen ones to the right component heads.
    assert report.best.seen_score == pytest.approx(1.0) and report.seen_without < 0.9
    assert report.best.unseen_score == pytest.approx(1.0) and report.unseen_without == pytest.approx(1.0)
    assert f"with it: seen 1.0000 ({report.seen_without:.4f} without), unseen 1.0000 (1.0000 without)" in report.summary()
    assert report.routing == Routing(report.best.score_name, report.best.threshold)
    assert report.candidates["energy"].score < report.best.score
    # Beside component heads that are always right, the grapheme head can only lose: routing stays off.
    right = {name: one_hot(y_true[name], N_CLASSES[name]) for name in COMPONENTS}
    useless = tune_routing(right, aux, y_true, unseen, counts, prior_alpha=0.0)
    assert useless.routing is None and useless.as_json()["threshold"] is None
    assert "routing stays off" in useless.summary()


def _experiment(tmp_path: Path) -> Path:
    """Two folds of oof.npz with routing arrays over the separable case (unseen images in both folds)."""
    probabilities, aux, y_true, unseen = _separable(n_seen=40, n_unseen=10)
    n = len(unseen)
    ids = [f"Train_{i}" for i in range(n)]
    text = {g.labels: g.text for g in seen_graphemes()}
    labels = pd.DataFrame({"image_id": ids, **y_true})
    labels["grapheme"] = [text[tuple(int(y_true[c][i]) for c in COMPONENTS)] for i in range(n)]
    input_dir, experiment = tmp_path / "input", tmp_path / "runs" / "aux"
    input_dir.mkdir(parents=True)
    write_csv(labels, input_dir / TRAIN_CSV)
    folds = np.arange(n) % 2
    write_csv(pd.DataFrame({"image_id": ids, "fold": folds, "unseen": unseen}), input_dir / FOLDS_CSV)
    for fold in (0, 1):
        rows = np.flatnonzero((folds == fold) | unseen)
        run_dir = experiment / f"fold{fold}"
        run_dir.mkdir(parents=True)
        config = {"experiment": "aux", "model": {"arch": "resnet10", "aux_graphemes": True}, "folds_file": FOLDS_CSV,
                  "data": {"input": str(input_dir), "cache": "crop64"}, "fold": fold}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        arrays = {k: v[rows] for k, v in (probabilities | aux).items()}
        np.savez(run_dir / "oof.npz", image_id=np.asarray(ids)[rows], **arrays)
    return experiment


def test_oof_tunes_routing_and_writes_it_to_oof_json(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    report = evaluate_oof(experiment)
    assert report.routing is not None and report.routing.routing is not None
    assert report.routing.n_unseen == 10 and report.routing.best.score == pytest.approx(1.0)
    saved = read_oof_report(experiment)
    assert saved == json.loads((experiment / OOF_JSON).read_text(encoding="utf-8"))
    assert saved["routing"] == json.loads(json.dumps(report.routing.as_json()))
    assert saved["folds"] == [0, 1]  # what the routing covers, as for the alpha
    keys = {"score_name", "threshold", "alpha", "score", "score_without", "kept_seen", "passed_unseen",
            "seen_score", "unseen_score", "seen_without", "unseen_without"}
    assert keys <= set(saved["routing"])
    rule, alpha = routing_from_report(saved)
    assert rule == report.routing.routing and alpha == report.routing.best.alpha
    assert "routing msp >= " in report.summary() or "routing margin >= " in report.summary()
    assert "keeps 100.0% of seen images, passes 100.0% of unseen ones on" in report.summary()


def test_oof_without_unseen_images_or_with_broken_routing_arrays(tmp_path: Path) -> None:
    experiment = _experiment(tmp_path)
    folds_csv = tmp_path / "input" / FOLDS_CSV
    table = pd.read_csv(folds_csv)
    table["unseen"] = False
    write_csv(table, folds_csv)  # the former unseen images now count in their own fold only
    report = evaluate_oof(experiment)
    assert report.routing is None and "hold out no graphemes" in report.routing_note
    assert read_oof_report(experiment)["routing"] is None
    with np.load(experiment / "fold0" / "oof.npz") as data:
        arrays = dict(data)
    arrays[TOP_INDEX] = arrays[TOP_INDEX][:-1]
    np.savez(experiment / "fold0" / "oof.npz", **arrays)
    with pytest.raises(DataError, match="fold0/oof.npz.*routing arrays of shapes"):
        evaluate_oof(experiment)


def test_training_with_the_grapheme_head_saves_its_routing_arrays(tiny_aux_run: Path) -> None:
    folds = pd.read_csv(tiny_aux_run.parent.parent / "input" / FOLDS_CSV)
    with np.load(tiny_aux_run / "fold0" / "oof.npz") as data:
        n = len(data["image_id"])
        assert set(AUX_KEYS) <= set(data.files)
        assert data[TOP_INDEX].shape == data[TOP_PROB].shape == (n, TOP_K) and data[LOGSUMEXP].shape == (n,)
        assert np.all(np.diff(data[TOP_PROB], axis=1) <= 0) and np.all(data[TOP_PROB] <= 1)
        assert set(folds.loc[folds["unseen"], "image_id"]) <= set(data["image_id"])


def _labels_of(submission: Path, input_dir: Path) -> pd.DataFrame:
    rows = pd.read_csv(input_dir / TEST_CSV).merge(pd.read_csv(submission), on="row_id")
    return rows.pivot(index="image_id", columns="component", values="target")[list(COMPONENTS)]


def test_predict_routes_with_auto_and_not_with_off(routed_aux_run: Path, tmp_path: Path) -> None:
    from bengaliai.data.prepare import find_image_files
    from bengaliai.inference.checkpoints import fold_checkpoints, load_models
    from bengaliai.inference.ensemble import Ensemble
    from bengaliai.inference.predict import predict_files

    report = read_oof_report(routed_aux_run)
    threshold = report["routing"]["threshold"]
    input_dir = Path(yaml.safe_load((routed_aux_run / "fold0" / "config.yaml").read_text())["data"]["input"])
    auto = predict(routed_aux_run, out=tmp_path / "auto.csv", config=FP32, workers=1)
    off = predict(routed_aux_run, out=tmp_path / "off.csv", config=FP32, workers=1, routing="off")
    assert auto.routing == Routing("msp", threshold) and 0 < auto.n_routed < auto.n_images
    assert auto.alpha == 0.0 and off.alpha == 0.7  # auto takes the alpha tuned with the routing
    assert off.routing is None and off.n_routed == 0
    assert f"{auto.n_routed} of {auto.n_images} images decoded by the grapheme head" in auto.summary()

    # By hand: the sure images take their grapheme's triple, the others the argmax of the component heads.
    models, device = load_models(fold_checkpoints(routed_aux_run), FP32)
    ids, out = predict_files(Ensemble(models, FP32, device, aux=True), find_image_files(input_dir, ("test",)), 1)
    sure = out[TOP_PROB][:, 0] >= threshold
    expected = np.column_stack([out[name].argmax(axis=1) for name in COMPONENTS])
    expected[sure] = [seen_graphemes()[g].labels for g in out[TOP_INDEX][sure, 0]]
    assert auto.n_routed == sure.sum()
    assert (_labels_of(auto.submission, input_dir).loc[ids].to_numpy() == expected).all()


def test_routing_auto_is_off_without_the_head_or_a_tuned_threshold(
    tiny_run: Path, routed_aux_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert predict(tiny_run, out=tmp_path / "plain.csv", config=FP32, workers=1, alpha=0).routing is None
    report = json.loads((routed_aux_run / OOF_JSON).read_text())
    report["routing"]["threshold"] = None
    (routed_aux_run / OOF_JSON).write_text(json.dumps(report))
    with caplog.at_level("WARNING", logger="bengaliai.evaluation.routing"):
        result = predict(routed_aux_run, out=tmp_path / "untuned.csv", config=FP32, workers=1)
    assert result.routing is None and result.alpha == 0.7
    assert "routing off" in caplog.text


def test_leaderboard_shows_the_routing_columns(routed_aux_run: Path, tiny_aux_run: Path, tmp_path: Path) -> None:
    frame = collect_leaderboard(routed_aux_run.parent)
    row = frame.set_index("experiment").loc[routed_aux_run.name]
    assert row["routing"].startswith("msp>=")
    assert 0 <= row["kept_seen"] <= 1 and 0 <= row["passed_unseen"] <= 1 and 0 < row["score_routed"] <= 1
    # An oof.json from before routing was tuned is recomputed for the table (and not rewritten).
    stale = tmp_path / "stale" / "tiny_aux"
    shutil.copytree(tiny_aux_run, stale)
    evaluate_oof(stale)
    report = json.loads((stale / OOF_JSON).read_text())
    del report["routing"]
    (stale / OOF_JSON).write_text(json.dumps(report))
    row = collect_leaderboard(stale.parent).iloc[0]
    assert isinstance(row["routing"], str) and not np.isnan(row["score_routed"])
    assert "routing" not in json.loads((stale / OOF_JSON).read_text())
