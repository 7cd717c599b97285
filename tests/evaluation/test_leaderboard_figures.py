"""The leaderboard's figures, each equal to what the run's own files give when derived by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TRAIN_CSV, seen_graphemes
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.evaluation.leaderboard import collect_leaderboard
from bengaliai.evaluation.metric import competition_score
from bengaliai.evaluation.oof import evaluate_oof
from bengaliai.evaluation.oof_report import OOF_JSON
from bengaliai.evaluation.priors import ALPHA_GRID, MIN_GAIN, apply_prior


def test_a_real_runs_figures_are_those_its_files_give(tiny_run: Path, tmp_path: Path) -> None:
    """summary.json per fold; each image from its own fold's oof.npz, scored and prior-corrected by hand."""
    root = tmp_path / "copy"
    shutil.copytree(tiny_run.parent.parent, root, ignore=shutil.ignore_patterns("*.parquet", "resize48*", "last.pt"))
    row = collect_leaderboard(root / "runs", input_dir=root / "input").iloc[0]
    experiment = root / "runs" / "tiny"
    summaries = [json.loads((experiment / f"fold{k}" / "summary.json").read_text(encoding="utf-8")) for k in range(3)]
    assert row["fold_scores"] == " ".join(f"{summary['best_score']:.4f}" for summary in summaries)
    seconds = round(sum(summary["train_seconds"] for summary in summaries))
    assert row["train_time"] == f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    truth, probabilities = own_fold_outputs(experiment, root / "input")
    by_hand = competition_score(truth, {name: p.argmax(axis=1) for name, p in probabilities.items()})
    assert row["oof_score"] == pytest.approx(by_hand.score, abs=1e-12)
    assert [row[column] for column in ("recall_root", "recall_vowel", "recall_consonant")] == pytest.approx(
        [getattr(by_hand, name) for name in COMPONENTS], abs=1e-12)
    labels = pd.read_csv(root / "input" / TRAIN_CSV)
    counts = {name: np.bincount(labels[name], minlength=N_CLASSES[name]) for name in COMPONENTS}
    scores = {alpha: competition_score(truth, {name: p.argmax(axis=1) for name, p in
                                               apply_prior(probabilities, counts, alpha).items()}).score
              for alpha in ALPHA_GRID}
    best = max(sorted(scores), key=lambda alpha: (scores[alpha], -alpha))
    best = best if scores[best] - scores[0.0] >= MIN_GAIN else 0.0  # a gain below the noise keeps alpha 0
    assert (row["best_alpha"], row["score_with_prior"]) == (best, pytest.approx(scores[best], abs=1e-12))


def own_fold_outputs(experiment: Path, input_dir: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The labels and the oof.npz arrays (probabilities and routing outputs) of every image from its own fold."""
    labels = pd.read_csv(input_dir / TRAIN_CSV).set_index("image_id")
    folds = pd.read_csv(input_dir / FOLDS_CSV).set_index("image_id")
    truth, arrays = [], []
    for run_dir in sorted(experiment.glob("fold*")):
        with np.load(run_dir / "oof.npz") as data:
            own = (folds.loc[data["image_id"], "fold"] == int(run_dir.name[4:])).to_numpy()
            truth.append(labels.loc[data["image_id"][own], list(COMPONENTS)].assign(
                unseen=folds.loc[data["image_id"][own], "unseen"].to_numpy()))
            arrays.append({key: data[key][own] for key in data.files if key != "image_id"})
    return pd.concat(truth), {key: np.concatenate([a[key] for a in arrays]) for key in arrays[0]}


def test_routing_columns_are_what_the_out_of_fold_outputs_give(tiny_aux_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_aux_run.parent.parent, root, ignore=shutil.ignore_patterns("*.pt", "*.parquet", "resize48*"))
    experiment, input_dir = root / "runs" / tiny_aux_run.name, root / "input"
    in_memory = collect_leaderboard(root / "runs", input_dir=input_dir).iloc[0]
    evaluate_oof(experiment, input_dir=input_dir)
    from_json = collect_leaderboard(root / "runs", input_dir=input_dir).iloc[0]
    tuned = json.loads((experiment / OOF_JSON).read_text(encoding="utf-8"))["routing"]
    name, threshold = tuned["score_name"], tuned["candidates"][tuned["score_name"]]["threshold"]

    # By hand: the images whose score reaches the threshold take the grapheme head's top triple.
    truth, outputs = own_fold_outputs(experiment, input_dir)
    unseen = truth["unseen"].to_numpy(dtype=bool)
    assert 0 < unseen.sum() < len(unseen)
    top = outputs["grapheme_top_prob"].astype(np.float64)
    score = {"msp": top[:, 0], "margin": top[:, 0] - top[:, 1], "energy": outputs["grapheme_logsumexp"]}[name]
    routed = score >= (np.inf if threshold is None else threshold)
    labels = pd.read_csv(input_dir / TRAIN_CSV)
    counts = {component: np.bincount(labels[component], minlength=N_CLASSES[component]) for component in COMPONENTS}
    corrected = apply_prior(outputs, counts, tuned["alpha"])
    triples = np.array([seen_graphemes()[i].labels for i in outputs["grapheme_top_index"][:, 0]])
    predicted = {component: np.where(routed, triples[:, i], corrected[component].argmax(axis=1))
                 for i, component in enumerate(COMPONENTS)}
    rule = "off" if tuned["threshold"] is None else f"{name}>={tuned['threshold']:.4g}"
    for row in (in_memory, from_json):
        assert row["routing"] == rule
        assert row["kept_seen"] == pytest.approx(routed[~unseen].mean(), abs=1e-12)
        assert row["passed_unseen"] == pytest.approx((~routed[unseen]).mean(), abs=1e-12)
        assert row["score_routed"] == pytest.approx(competition_score(truth, predicted).score, abs=1e-12)
