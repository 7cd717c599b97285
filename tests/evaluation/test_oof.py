"""Out-of-fold evaluation: each image from its own fold, the reference metric, prior tuning, oof.json and the plot."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TRAIN_CSV, compose
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.data.runinfo import file_fingerprint, read_run_config, write_run_description
from bengaliai.evaluation.metric import competition_score
from bengaliai.evaluation.oof import PER_CLASS_PNG, evaluate_oof
from bengaliai.evaluation.oof_report import OOF_JSON, read_oof_report
from bengaliai.evaluation.priors import ALPHA_GRID

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_input(input_dir: Path, roots: list[int], folds: list[int], unseen: list[bool]) -> pd.DataFrame:
    """train.csv (vowel and consonant 0) and train_folds.csv of the given roots; return the labels."""
    ids = [f"Train_{i}" for i in range(len(roots))]
    labels = pd.DataFrame({"image_id": ids, "grapheme_root": roots, "vowel_diacritic": 0, "consonant_diacritic": 0})
    labels["grapheme"] = [compose(root, 0, 0) for root in roots]
    write_csv(labels, input_dir / TRAIN_CSV)
    write_csv(pd.DataFrame({"image_id": ids, "fold": folds, "unseen": unseen}), input_dir / FOLDS_CSV)
    return labels


def one_hot(labels: np.ndarray, n_classes: int, confidence: float = 1.0) -> np.ndarray:
    """Probabilities with ``confidence`` on ``labels`` and the rest spread evenly."""
    p = np.full((len(labels), n_classes), (1 - confidence) / (n_classes - 1), dtype=np.float32)
    p[np.arange(len(labels)), labels] = confidence
    return p


def write_fold(experiment_dir: Path, fold: int, input_dir: Path, ids: list[str], roots: np.ndarray | None) -> Path:
    """A fold folder with config.yaml and, unless ``roots`` is None, an oof.npz of root probabilities."""
    run_dir = experiment_dir / f"fold{fold}"
    run_dir.mkdir(parents=True)
    config = {"experiment": experiment_dir.name, "epochs": 2, "folds_file": FOLDS_CSV, "model": {"arch": "resnet10"},
              "data": {"input": str(input_dir), "cache": "crop64"}, "fold": fold}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    if roots is not None:
        arrays = {name: one_hot(np.zeros(len(ids), dtype=np.int64), N_CLASSES[name]) for name in COMPONENTS}
        if roots.ndim == 1:
            arrays["grapheme_root"] = one_hot(roots, N_CLASSES["grapheme_root"], 0.9)
        else:
            arrays["grapheme_root"] = roots.astype(np.float32)
        np.savez(run_dir / "oof.npz", image_id=np.asarray(ids), **arrays)
    return run_dir


@pytest.fixture
def three_folds(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """12 images in 3 folds, the last of each fold unseen. Fold K predicts its own images right and the
    unseen images of the other folds wrong, so only the own-fold selection scores 1."""
    input_dir, experiment = tmp_path / "input", tmp_path / "runs" / "exp"
    roots = [13, 22, 23, 38] * 3
    folds = [i // 4 for i in range(12)]
    unseen = [i % 4 == 3 for i in range(12)]
    labels = write_input(input_dir, roots, folds, unseen)
    for fold in range(3):
        rows = [i for i in range(12) if folds[i] == fold or unseen[i]]
        predicted = np.array([roots[i] if folds[i] == fold else 0 for i in rows])
        write_fold(experiment, fold, input_dir, [f"Train_{i}" for i in rows], predicted)
    return input_dir, experiment, labels


def test_each_image_is_taken_from_its_own_fold_including_unseen(three_folds: tuple[Path, Path, pd.DataFrame]) -> None:
    _, experiment, _ = three_folds
    report = evaluate_oof(experiment)
    assert report.folds == (0, 1, 2)
    assert (report.n_images, report.n_left_out, report.n_unseen) == (12, 0, 3)
    assert report.score == pytest.approx(1.0)
    assert report.seen is not None and report.unseen is not None
    assert report.seen.score == pytest.approx(1.0) and report.unseen.score == pytest.approx(1.0)
    assert report.fold_scores == pytest.approx({0: 1.0, 1: 1.0, 2: 1.0})
    # Each fold's model also read the two held-out images of the other folds, wrongly (root 0 for 38):
    # over every held-out image, root recall 1/3 per fold.
    assert sorted(report.held_out_by_fold) == [0, 1, 2]
    for score, n in report.held_out_by_fold.values():
        assert n == 3 and score.grapheme_root == pytest.approx(1 / 3)
    assert report.held_out_mean == pytest.approx((2 / 3 + 1 + 1) / 4)
    assert "every held-out image (3) under each fold's model: 0 0.6667 (root 0.3333)" in report.summary()


def test_folds_without_oof_are_left_out(three_folds: tuple[Path, Path, pd.DataFrame]) -> None:
    _, experiment, _ = three_folds
    (experiment / "fold2" / "oof.npz").unlink()
    report = evaluate_oof(experiment)
    assert report.folds == (0, 1)
    assert (report.n_images, report.n_left_out, report.n_unseen) == (8, 4, 2)
    assert list(report.fold_scores) == [0, 1]


def test_missing_input_and_foreign_ids_name_the_file(
    three_folds: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    input_dir, experiment, _ = three_folds
    moved = tmp_path / "moved"
    shutil.move(input_dir, moved)
    with pytest.raises(DataError, match="--input"):
        evaluate_oof(experiment)
    assert evaluate_oof(experiment, input_dir=moved).score == pytest.approx(1.0)
    with np.load(experiment / "fold1" / "oof.npz") as data:
        arrays = dict(data)
    arrays["image_id"] = arrays["image_id"].astype("U20")
    arrays["image_id"][0] = "Train_999"
    np.savez(experiment / "fold1" / "oof.npz", **arrays)
    with pytest.raises(DataError, match=r"fold1.oof\.npz.*Train_999"):
        evaluate_oof(experiment, input_dir=moved)


def _record_inputs(experiment: Path) -> None:
    """Give every fold folder the run.json that training writes (with the inputs' fingerprints)."""
    for run_dir in sorted(experiment.glob("fold*")):
        write_run_description(run_dir, read_run_config(run_dir))


def test_oof_refuses_folds_trained_on_another_folds_file(three_folds: tuple[Path, Path, pd.DataFrame]) -> None:
    input_dir, experiment, _ = three_folds
    _record_inputs(experiment)
    report = evaluate_oof(experiment)
    saved = read_oof_report(experiment)
    assert saved is not None
    folds_sha = file_fingerprint(input_dir / FOLDS_CSV)
    assert saved["inputs"]["folds"] == {"path": str(input_dir / FOLDS_CSV), "sha256": folds_sha}
    assert saved["inputs"]["train_csv"]["sha256"] == file_fingerprint(input_dir / TRAIN_CSV)
    assert saved["fold_inputs"] == {str(k): {"train_csv": saved["inputs"]["train_csv"]["sha256"], "folds": folds_sha}
                                    for k in report.folds}
    written = (experiment / OOF_JSON).read_bytes()

    folds = pd.read_csv(input_dir / FOLDS_CSV)
    folds["fold"] = (folds["fold"] + 1) % 3  # `bengaliai folds --force` with another seed
    write_csv(folds, input_dir / FOLDS_CSV)
    expected = rf"{FOLDS_CSV} changed since \S*fold0 was trained \(recorded {folds_sha}, now"
    with pytest.raises(BengaliaiError, match=expected):
        evaluate_oof(experiment)
    assert (experiment / OOF_JSON).read_bytes() == written  # the old report stays as it was


def test_an_alpha_on_the_edge_of_the_grid_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Rare images lean 82:18 to the frequent root; frequencies 31:11 flip them only from alpha 1.47.
    with caplog.at_level(logging.WARNING, logger="bengaliai.evaluation.oof"):
        report = evaluate_oof(_prior_case(tmp_path, rare_probability=0.18))
    assert report.alpha == max(ALPHA_GRID) and report.alpha_at_edge
    assert "largest of the tuning grid" in caplog.text
    assert "WARNING: alpha 1.5 is the largest of the tuning grid" in report.summary()
    assert read_oof_report(report.json_path.parent)["prior"]["at_grid_edge"] is True
    assert not evaluate_oof(_prior_case(tmp_path / "b", rare_probability=0.4)).alpha_at_edge


def test_an_experiment_without_oof_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match="not a folder"):
        evaluate_oof(tmp_path / "nothing")
    write_fold(tmp_path / "exp", 0, tmp_path, [], None)
    with pytest.raises(BengaliaiError, match="no fold<K>/oof.npz"):
        evaluate_oof(tmp_path / "exp")
    assert read_oof_report(tmp_path / "exp") is None


def _prior_case(tmp_path: Path, rare_probability: float) -> Path:
    """30 images of a frequent root and 10 of a rare one, predicted with probability of the rare root
    ``rare_probability`` on rare images (0.1 on the frequent ones)."""
    input_dir, experiment = tmp_path / "input", tmp_path / "runs" / "prior"
    roots = [13] * 30 + [22] * 10
    write_input(input_dir, roots, [i % 2 for i in range(40)], [False] * 40)
    for fold in range(2):
        rows = list(range(fold, 40, 2))
        p = np.zeros((len(rows), N_CLASSES["grapheme_root"]))
        for j, i in enumerate(rows):
            p[j, 22] = rare_probability if roots[i] == 22 else 0.1
            p[j, 13] = 1 - p[j, 22]
        write_fold(experiment, fold, input_dir, [f"Train_{i}" for i in rows], p)
    return experiment


def test_prior_alpha_is_positive_where_it_helps_and_zero_where_it_cannot(tmp_path: Path) -> None:
    # Rare images lean 60:40 to the frequent root; frequencies 31:11 (add-one) flip them from alpha 0.4.
    helped = evaluate_oof(_prior_case(tmp_path / "a", rare_probability=0.4))
    assert helped.score == pytest.approx(0.75)  # root recall 0.5, weighted 2:1:1 with two perfect components
    assert helped.alpha == pytest.approx(0.4)
    assert helped.score_with_prior == pytest.approx(1.0)
    assert helped.scores_by_alpha[0.0] == pytest.approx(helped.score)
    # Already right with a wide margin: no alpha in the grid changes a decision, so 0 is kept.
    unhelped = evaluate_oof(_prior_case(tmp_path / "b", rare_probability=0.99))
    assert unhelped.alpha == 0.0
    assert unhelped.score_with_prior == unhelped.score == pytest.approx(1.0)


def _unseen_prior_case(tmp_path: Path) -> Path:
    """Seen: 30 of the frequent root 13 (sure of it), 10 of the rare root 22 leaning 60:40 to 13 (the prior
    fixes them). Unseen: 4 of root 13 leaning 60:40 the right way; the same prior turns them into 22."""
    input_dir, experiment = tmp_path / "input", tmp_path / "runs" / "prior"
    roots = [13] * 30 + [22] * 10 + [13] * 4
    unseen = [False] * 40 + [True] * 4
    write_input(input_dir, roots, [i % 2 for i in range(44)], unseen)
    for fold in range(2):
        rows = list(range(fold, 44, 2))
        p = np.zeros((len(rows), N_CLASSES["grapheme_root"]))
        p[:, 22] = [0.1 if i < 30 else 0.4 for i in rows]
        p[:, 13] = 1 - p[:, 22]
        write_fold(experiment, fold, input_dir, [f"Train_{i}" for i in rows], p)
    return experiment


def test_the_prior_is_scored_on_seen_and_unseen_images_apart(tmp_path: Path) -> None:
    experiment = _unseen_prior_case(tmp_path)
    report = evaluate_oof(experiment)
    assert report.alpha > 0 and report.score_with_prior > report.score
    assert report.seen is not None and report.unseen is not None
    assert report.seen_with_prior is not None and report.unseen_with_prior is not None
    assert report.seen.score == pytest.approx(0.75) and report.seen_with_prior.score == pytest.approx(1.0)
    assert report.unseen.score == pytest.approx(1.0) and report.unseen_with_prior.score == pytest.approx(0.5)
    text = report.summary()
    assert "with it: seen 1.0000 (0.7500 at alpha 0), unseen 0.5000 (1.0000 at alpha 0)" in text
    assert "NOTE: the prior costs the unseen graphemes 0.5000" in text
    saved = read_oof_report(experiment)
    assert saved is not None and saved["prior"]["unseen"]["score"] == pytest.approx(0.5)
    # Without unseen images there is nothing to tell apart.
    assert "with it: seen" not in evaluate_oof(_prior_case(tmp_path / "b", rare_probability=0.4)).summary()
    assert "not a held-out measurement" not in text


def test_extra_sources_showing_held_out_graphemes_are_named_in_the_report(tmp_path: Path) -> None:
    experiment = _unseen_prior_case(tmp_path)
    for fold in range(2):
        path = experiment / f"fold{fold}" / "config.yaml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["data"]["extra"] = ["/data/lf"]
        config["resolved"] = {"extra_sources": [{"path": "/data/lf", "images": 9, "share": 0.3, "per_batch": 4,
                                                 "held_out_graphemes": 1, "held_out_images": 7}]}
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
    report = evaluate_oof(experiment)
    assert report.held_out_in_extra == 7
    assert "WARNING: the extra sources show 7 images of the held-out graphemes" in report.summary()
    assert read_oof_report(experiment)["held_out_in_extra"] == 7  # type: ignore[index]


def test_tiny_run_matches_the_metric_by_hand_and_writes_its_report(tiny_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_run.parent.parent, root, ignore=shutil.ignore_patterns("*.pt", "*.parquet", "resize48*"))
    input_dir, experiment = root / "input", root / "runs" / tiny_run.name
    report = evaluate_oof(experiment, input_dir=input_dir)

    labels = pd.read_csv(input_dir / TRAIN_CSV).set_index("image_id")
    folds = pd.read_csv(input_dir / FOLDS_CSV).set_index("image_id")
    truth, predicted = [], []
    for fold in range(3):
        with np.load(experiment / f"fold{fold}" / "oof.npz") as data:
            own = (folds.loc[data["image_id"], "fold"] == fold).to_numpy()
            truth.append(labels.loc[data["image_id"][own], list(COMPONENTS)])
            predicted.append(np.stack([data[name][own].argmax(axis=1) for name in COMPONENTS], axis=1))
    expected = competition_score(pd.concat(truth), np.concatenate(predicted))
    assert report.n_images == len(labels) == sum(len(t) for t in truth)
    assert report.score == pytest.approx(expected.score)
    assert report.recalls == pytest.approx({name: getattr(expected, name) for name in COMPONENTS})
    assert report.seen is None and report.unseen is None  # the tiny run holds no grapheme out

    saved = read_oof_report(experiment)
    assert saved == json.loads((experiment / OOF_JSON).read_text(encoding="utf-8"))
    keys = {"experiment", "folds", "n_images", "n_left_out", "score", "recalls", "seen", "unseen", "fold_scores"}
    keys.add("prior")
    assert keys <= set(saved)
    assert saved["folds"] == [0, 1, 2] and saved["seen"] is None
    assert set(saved["prior"]) >= {"alpha", "score", "score_without", "scores_by_alpha", "class_counts"}
    assert saved["prior"]["scores_by_alpha"]["0.0"] == pytest.approx(report.score)
    counts = saved["prior"]["class_counts"]
    assert [len(counts[name]) for name in COMPONENTS] == [N_CLASSES[name] for name in COMPONENTS]
    assert sum(counts["grapheme_root"]) == len(labels)
    assert (experiment / PER_CLASS_PNG).read_bytes()[:8] == PNG_MAGIC
    assert f"{report.score:.4f}" in report.summary()


def test_a_gain_below_the_noise_keeps_alpha_zero() -> None:
    from bengaliai.evaluation.priors import tune_alpha

    # Two classes per component; the prior flips one image of 2,000 in the rare root class.
    n = 2000
    y_true = {name: np.zeros(n, dtype=np.int64) for name in COMPONENTS}
    y_true["grapheme_root"][:2] = 1
    probs = {name: np.tile([0.9, 0.1] + [0.0] * (N_CLASSES[name] - 2), (n, 1)).astype(np.float32) for name in COMPONENTS}
    probs["grapheme_root"][0, :2] = [0.55, 0.45]
    counts = {name: np.array([n - 2, 2] + [0] * (N_CLASSES[name] - 2)) for name in COMPONENTS}
    best, scores = tune_alpha(probs, y_true, counts, min_gain=0.0)
    assert best > 0 and scores[best] > scores[0.0]
    kept, _ = tune_alpha(probs, y_true, counts, min_gain=scores[best] - scores[0.0] + 1e-9)
    assert kept == 0.0


def test_held_out_graphemes_are_scored_over_the_classes_they_hold(tmp_path: Path) -> None:
    """Four unseen images of root 38, two misread as roots 13 and 22 that the seen images hold and
    read right: the unseen root recall is 0.5 (the misreads cost root 38 only), where sklearn's
    default union would add 13 and 22 at recall 0 and give 1/6."""
    input_dir, experiment = tmp_path / "input", tmp_path / "runs" / "groups"
    roots = [13, 22] * 4 + [38] * 4
    unseen = [False] * 8 + [True] * 4
    write_input(input_dir, roots, [i % 2 for i in range(12)], unseen)
    predicted = {8: 13, 10: 22}  # two of the unseen images misread
    for fold in range(2):
        rows = list(range(fold, 12, 2))
        write_fold(experiment, fold, input_dir, [f"Train_{i}" for i in rows],
                   np.array([predicted.get(i, roots[i]) for i in rows]))
    report = evaluate_oof(experiment)
    assert report.unseen is not None and report.seen is not None
    assert report.unseen.grapheme_root == pytest.approx(0.5)
    assert report.unseen.score == pytest.approx((2 * 0.5 + 1 + 1) / 4)
    assert report.seen.score == pytest.approx(1.0)
    # The whole set is scored as the host did: root 38 at recall 0.5, 13 and 22 at 1.
    assert report.recalls["grapheme_root"] == pytest.approx((1 + 1 + 0.5) / 3)
    saved = read_oof_report(experiment)
    assert saved is not None and saved["group_classes"] == "true"
    assert "each group's recall over the classes it holds" in report.summary()
