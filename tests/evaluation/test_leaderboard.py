"""The leaderboard: one row per experiment from its run folders, sorted, in three text formats."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TRAIN_CSV, compose
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import write_csv
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.data.runinfo import read_run_config, write_run_description
from bengaliai.evaluation import leaderboard
from bengaliai.evaluation.leaderboard import COLUMNS, collect_leaderboard, format_leaderboard
from bengaliai.evaluation.oof import evaluate_oof
from bengaliai.evaluation.oof_report import OOF_JSON

ROOTS = [13, 22, 23, 38, 53, 64] * 3  # 18 images, fold = index // 6


@pytest.fixture
def input_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "input"
    ids = [f"Train_{i}" for i in range(len(ROOTS))]
    labels = pd.DataFrame({"image_id": ids, "grapheme_root": ROOTS, "vowel_diacritic": 0, "consonant_diacritic": 0,
                           "grapheme": [compose(root, 0, 0) for root in ROOTS]})
    write_csv(labels, folder / TRAIN_CSV)
    write_csv(pd.DataFrame({"image_id": ids, "fold": [i // 6 for i in range(18)], "unseen": False}), folder / FOLDS_CSV)
    return folder


def write_fold(
    experiment: Path, fold: int, input_dir: Path, wrong: int | None = None, seconds: float | None = 100.0,
    started: str = "2024-03-01T10:00:00+00:00", commit: str = "0123456789abcdef0123-dirty",
) -> Path:
    """A fold folder; with ``wrong`` set, also best.pt, metrics and an oof.npz with that many wrong roots."""
    run_dir = experiment / f"fold{fold}"
    run_dir.mkdir(parents=True)
    config = {"experiment": experiment.name, "epochs": 5, "folds_file": FOLDS_CSV, "model": {"arch": "resnet34"},
              "data": {"input": str(input_dir), "cache": "crop128"}, "fold": fold}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps({"started": started, "git_commit": commit}), encoding="utf-8")
    if wrong is None:
        return run_dir
    (run_dir / "best.pt").write_bytes(b"")
    best = 1.0 - wrong / 10
    write_csv(pd.DataFrame({"epoch": [0, 1], "score": [best / 2, best]}), run_dir / "metrics.csv")
    if seconds is not None:
        summary = {"fold": fold, "best_score": best, "best_epoch": 1, "epochs_done": 2, "epochs": 5,
                   "finished": False, "train_seconds": seconds, "updated": started}
        (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    rows = range(6 * fold, 6 * fold + 6)
    roots = np.array([ROOTS[i] for i in rows])
    roots[:wrong] = 0
    arrays = {name: np.eye(N_CLASSES[name], dtype=np.float32)[np.zeros(6, dtype=int)] for name in COMPONENTS}
    arrays["grapheme_root"] = np.eye(N_CLASSES["grapheme_root"], dtype=np.float32)[roots]
    np.savez(run_dir / "oof.npz", image_id=np.array([f"Train_{i}" for i in rows]), **arrays)
    return run_dir


@pytest.fixture
def runs(tmp_path: Path, input_dir: Path) -> Path:
    """good: 3 folds, one mistake; partial: folds 0-1 perfect, fold 2 only started; old: no summary or oof;
    moved: its input folder is gone."""
    runs_dir = tmp_path / "runs"
    starts = ["2024-03-02T09:00:00+00:00", "2024-03-01T23:00:00+00:00", "2024-03-03T01:00:00+00:00"]
    for fold, started in enumerate(starts):
        write_fold(runs_dir / "good", fold, input_dir, wrong=1 if fold == 0 else 0, seconds=1800 + 65 * (fold == 2),
                   started=started, commit="abcdef0123456789" if fold == 1 else "ffff")
    write_fold(runs_dir / "partial", 0, input_dir, wrong=0)
    write_fold(runs_dir / "partial", 1, input_dir, wrong=0)
    write_fold(runs_dir / "partial", 2, input_dir)
    old = write_fold(runs_dir / "old", 0, input_dir, wrong=2, seconds=None)
    (old / "oof.npz").unlink()
    write_fold(runs_dir / "moved", 0, input_dir.parent / "gone", wrong=0)
    (runs_dir / "notes").mkdir()  # not an experiment: no fold<K>/config.yaml
    return runs_dir


def test_rows_describe_each_experiment_and_sort_by_oof_score(runs: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        frame = collect_leaderboard(runs)
    assert tuple(frame.columns) == COLUMNS
    assert frame["experiment"].tolist() == ["partial", "good", "moved", "old"]
    rows = frame.set_index("experiment")
    assert rows.loc["partial", "oof_score"] == pytest.approx(1.0)
    assert rows.loc["partial", "folds_done"] == "2/3"
    assert rows.loc["partial", "fold_scores"] == "1.0000 1.0000 -"
    assert rows.loc["good", "oof_score"] < 1.0
    assert rows.loc["good", "fold_scores"] == "0.9000 1.0000 1.0000"
    assert rows.loc["good", "train_time"] == "1:31:05"
    assert (rows.loc["good", "date"], rows.loc["good", "git_commit"]) == ("2024-03-01", "abcdef0123")
    assert rows.loc["partial", "git_commit"] == "0123456789-dirty"
    assert rows.loc["good", ["model", "image", "epochs"]].tolist() == ["resnet34", "crop128", 5]
    # Older runs: metrics.csv gives the fold score, but no training time; no oof.npz means no OOF columns.
    assert rows.loc["old", "fold_scores"] == "0.8000 - -" and rows.loc["old", "train_time"] == ""
    assert rows.loc[["old", "moved"], ["oof_score", "best_alpha", "recall_root"]].isna().all().all()
    assert rows.loc["moved", "folds_done"] == "1"  # the folds file is gone too: no total
    assert "moved" in caplog.text and "left empty" in caplog.text


def test_oof_json_is_reused_while_fresh_and_never_written(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = collect_leaderboard(runs)
    report = runs / "good" / OOF_JSON
    assert not report.exists()  # computed in memory: only `bengaliai oof` writes oof.json
    evaluate_oof(runs / "good")
    evaluate_oof(runs / "partial")
    written = report.read_bytes()

    compute_oof = leaderboard.compute_oof

    def fail(experiment_dir: Path, *args: object) -> object:
        if experiment_dir.name in ("good", "partial"):  # moved is recomputed and fails in its own words (its note)
            raise BengaliaiError("recomputed")  # would empty the OOF columns of good and partial
        return compute_oof(experiment_dir, *args)

    with monkeypatch.context() as patch:
        patch.setattr(leaderboard, "compute_oof", fail)
        pd.testing.assert_frame_equal(collect_leaderboard(runs), first)
        future = report.stat().st_mtime + 10
        os.utime(runs / "good" / "fold1" / "oof.npz", (future, future))
        stale = collect_leaderboard(runs).set_index("experiment")
    assert np.isnan(stale.loc["good", "oof_score"])  # a newer oof.npz: recomputed, not read
    pd.testing.assert_frame_equal(collect_leaderboard(runs), first)
    assert report.read_bytes() == written


def test_an_experiment_whose_folds_changed_keeps_its_row_without_oof(
    runs: Path, input_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for run_dir in sorted((runs / "good").glob("fold*")):
        write_run_description(run_dir, read_run_config(run_dir))  # what training records
    folds = pd.read_csv(input_dir / FOLDS_CSV)
    folds["fold"] = (folds["fold"] + 1) % 3
    write_csv(folds, input_dir / FOLDS_CSV)
    with caplog.at_level(logging.WARNING):
        rows = collect_leaderboard(runs).set_index("experiment")
    assert rows.loc["good", "folds_done"] == "3/3" and np.isnan(rows.loc["good", "oof_score"])
    assert rows.loc["partial", "folds_done"] == "2/3"
    assert f"good: out-of-fold columns left empty: {input_dir / FOLDS_CSV} changed since" in caplog.text
    assert not (runs / "good" / OOF_JSON).exists()


def test_formats_table_markdown_and_csv(runs: Path) -> None:
    frame = collect_leaderboard(runs)
    table = format_leaderboard(frame, "table").splitlines()
    assert len(table) == 2 + len(frame) and set(table[1]) == {"-", " "}
    column = table[0].index("oof_score")
    assert table[2][column:column + 9].strip() == "1.0000"  # right-aligned under its header

    markdown = format_leaderboard(frame, "markdown").splitlines()
    assert markdown[0] == "| " + " | ".join(COLUMNS) + " |"
    assert markdown[1].startswith("|---|") and "---:|" in markdown[1]
    assert len(markdown) == 2 + len(frame) and all(line.count("|") == len(COLUMNS) + 1 for line in markdown)

    text = format_leaderboard(frame, "csv")
    parsed = pd.read_csv(io.StringIO(text), dtype={"git_commit": str})
    assert parsed.columns.tolist() == list(COLUMNS)
    assert parsed["experiment"].tolist() == frame["experiment"].tolist()
    np.testing.assert_allclose(parsed["oof_score"], frame["oof_score"], atol=5e-5)
    assert "0.9000 1.0000 1.0000" in text and ",1.0000," in text
    with pytest.raises(BengaliaiError, match="unknown leaderboard format"):
        format_leaderboard(frame, "html")  # type: ignore[arg-type]


def test_no_experiments_is_an_error_that_says_where_it_looked(tmp_path: Path) -> None:
    for folder in (tmp_path / "absent", tmp_path):
        with pytest.raises(BengaliaiError, match=rf"{folder.name}.*`bengaliai train` writes runs there"):
            collect_leaderboard(folder)
    (tmp_path / "exp" / "fold0").mkdir(parents=True)  # no config.yaml: not a run
    with pytest.raises(BengaliaiError, match="no experiments"):
        collect_leaderboard(tmp_path)


def test_a_real_run_folder(tiny_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_run.parent.parent, root, ignore=shutil.ignore_patterns("*.parquet", "resize48*", "last.pt"))
    frame = collect_leaderboard(root / "runs", input_dir=root / "input")
    row = frame.iloc[0]
    assert (len(frame), row["experiment"], row["folds_done"], row["image"]) == (1, "tiny", "3/3", "resize48")
    assert len(row["fold_scores"].split()) == 3 and "-" not in row["fold_scores"].split()
    assert 0 < row["oof_score"] <= row["score_with_prior"] <= 1
    assert row["train_time"].count(":") == 2 and len(row["date"]) == 10
    assert not (root / "runs" / "tiny" / OOF_JSON).exists()  # the leaderboard writes nothing


def edit_config(run_dir: Path, section: str | None = None, **settings: object) -> None:
    """Change settings of a fold's config.yaml (of ``section``, or at the top), as if it had been trained with them."""
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    (config if section is None else config[section]).update(settings)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def test_an_experiment_whose_folds_differ_says_so_and_is_not_scored_as_one(runs: Path) -> None:
    evaluate_oof(runs / "good")  # an oof.json from before: still fresh by its dates, but of mixed folds
    edit_config(runs / "good" / "fold0", "model", aux_graphemes=True)
    edit_config(runs / "good" / "fold1", "model", aux_graphemes=False)
    edit_config(runs / "good" / "fold2", "model", aux_graphemes=False, arch="resnet18")
    edit_config(runs / "partial" / "fold2", epochs=8)  # the recipe: shown per fold, the folds still scored
    frame = collect_leaderboard(runs)
    rows = frame.set_index("experiment")
    assert rows.loc["good", ["model", "image", "epochs", "folds_done"]].tolist() == ["mixed", "crop128", 5, "3/3"]
    assert rows.loc["good", "note"] == ("folds differ (not scored as one): model.arch (fold0, fold1: resnet34; "
                                        "fold2: resnet18), model.aux_graphemes (fold0: true; fold1, fold2: false)")
    assert rows.loc["good", "fold_scores"] == "0.9000 1.0000 1.0000"  # each fold's own validation
    out_of_fold = ["oof_score", "recall_root", "best_alpha", "score_with_prior", "score_routed", "kept_seen"]
    assert rows.loc["good", out_of_fold].isna().all()
    assert rows.loc["partial", ["model", "epochs", "note"]].tolist() == [
        "resnet34", "mixed", "folds differ: epochs (fold0, fold1: 5; fold2: 8)"]
    assert rows.loc["partial", "oof_score"] == pytest.approx(1.0)
    assert rows.loc["old", ["model", "epochs", "note"]].tolist() == ["resnet34", 5, ""]
    assert frame["experiment"].tolist() == ["partial", "good", "moved", "old"]  # no score: sorted by name
    table = format_leaderboard(frame, "table").splitlines()
    assert table[0].split()[-1] == "note" and table[3].startswith("good ")
    assert table[3].endswith("model.aux_graphemes (fold0: true; fold1, fold2: false)")


def test_one_damaged_file_marks_its_row_and_keeps_the_others(runs: Path, caplog: pytest.LogCaptureFixture) -> None:
    npz = runs / "good" / "fold1" / "oof.npz"
    npz.write_bytes(npz.read_bytes()[:100])  # a copy cut short
    config = runs / "old" / "fold0" / "config.yaml"
    config.write_text("experiment: old\nmodel: {arch: [resnet34\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        frame = collect_leaderboard(runs)
    rows = frame.set_index("experiment")
    assert frame["experiment"].tolist() == ["partial", "good", "moved", "old"]
    assert rows.loc["partial", "oof_score"] == pytest.approx(1.0) and rows.loc["partial", "note"] == ""
    good = rows.loc["good"]
    assert good["note"].startswith(f"out-of-fold columns empty: {npz}: not an .npz archive (no zip directory in its "
                                   "100 bytes); fold1's run is damaged")
    assert np.isnan(good["oof_score"]) and good["fold_scores"] == "0.9000 1.0000 1.0000"
    old = rows.loc["old"]
    assert old["note"].startswith(f"{config}: not valid YAML: ") and "\n" not in old["note"]
    assert old[["model", "image", "extra", "folds_done", "fold_scores"]].tolist() == ["", "", "", "1", "0.8000"]
    assert f"{npz}: not an .npz archive" in caplog.text and f"{config}: not valid YAML" in caplog.text
    assert len(format_leaderboard(frame, "table").splitlines()) == 2 + 4


def test_the_model_names_its_width_and_the_speed_is_the_median_epoch(tmp_path: Path, input_dir: Path) -> None:
    experiment = tmp_path / "runs" / "narrow"
    for fold, rates in ((0, [100.0, 5.0, 120.0]), (1, [110.0])):
        run_dir = write_fold(experiment, fold, input_dir, wrong=0)
        config = read_run_config(run_dir)
        config["model"] |= {"arch": "resnet18", "base_width": 32}
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        write_csv(pd.DataFrame({"epoch": range(len(rates)), "score": 0.5, "images_per_s": rates}), run_dir / "metrics.csv")
    write_fold(tmp_path / "runs" / "wide", 0, input_dir, wrong=0)  # published width, no images_per_s column
    rows = collect_leaderboard(tmp_path / "runs").set_index("experiment")
    assert rows.loc["narrow", "model"] == "resnet18 w32" and rows.loc["wide", "model"] == "resnet34"
    # The median of 100, 5, 120 and 110: the slowed epoch (5) does not set it.
    assert rows.loc["narrow", "images_per_s"] == "105" and rows.loc["wide", "images_per_s"] == ""
