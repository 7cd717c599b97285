"""notebooks/explore.ipynb: valid nbformat 4 without outputs, and every code cell runs on a tiny run."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

from bengaliai.core.competition import COMPONENTS
from bengaliai.evaluation.metric import competition_score

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"
CODE_KEYS = {"cell_type", "execution_count", "id", "metadata", "outputs", "source"}
MARKDOWN_KEYS = {"cell_type", "id", "metadata", "source"}


def load_notebook() -> dict[str, Any]:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def code_cells() -> list[tuple[str, str]]:
    """(id, source) of each code cell, in order."""
    return [(cell["id"], "".join(cell["source"])) for cell in load_notebook()["cells"] if cell["cell_type"] == "code"]


def run_notebook(
    input_dir: Path | str, run_dir: Path | str, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], int]:
    """Execute the code cells in one namespace, parameters replaced; return it and the figures shown.

    Like papermill: the parameter cell runs, then INPUT and RUN are set to the given paths.
    ``plt.show`` counts and closes the open figures, as an inline backend would hand them over.
    """
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []

    def show(*args: Any, **kwargs: Any) -> None:
        shown.append(len(plt.get_fignums()))
        plt.close("all")

    monkeypatch.setattr(plt, "show", show)
    monkeypatch.chdir(cwd)
    (parameters_id, parameters), *cells = code_cells()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        exec(compile(parameters, f"{NOTEBOOK.name}#{parameters_id}", "exec"), namespace)
        namespace.update(INPUT=input_dir, RUN=run_dir)
        for cell_id, source in cells:
            exec(compile(source, f"{NOTEBOOK.name}#{cell_id}", "exec"), namespace)
    finally:
        plt.close("all")
    return namespace, sum(shown)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_notebook_is_nbformat_4_5_without_outputs() -> None:
    notebook = load_notebook()
    assert set(notebook) == {"cells", "metadata", "nbformat", "nbformat_minor"}
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids)
    for cell in notebook["cells"]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cell["id"]), cell["id"]
        assert isinstance(cell["metadata"], dict)
        assert all(isinstance(line, str) for line in cell["source"])
        assert all(line.endswith("\n") for line in cell["source"][:-1])
        if cell["cell_type"] == "code":
            assert set(cell) == CODE_KEYS
            assert cell["outputs"] == [] and cell["execution_count"] is None
            # Plain Python: an IPython magic (%...) or shell escape (!...) would not parse.
            ast.parse("".join(cell["source"]), filename=cell["id"])
        else:
            assert cell["cell_type"] == "markdown" and set(cell) == MARKDOWN_KEYS


def test_notebook_validates_against_the_nbformat_schema() -> None:
    # Not a project dependency (kaggle brings it along through jupytext); the test above is the contract.
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.from_dict(load_notebook()), version=4)


def test_first_code_cell_holds_only_the_parameters() -> None:
    _, source = code_cells()[0]
    tree = ast.parse(source)
    assert all(isinstance(node, ast.Assign | ast.ImportFrom) for node in tree.body)
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets}
    assert assigned == {"INPUT", "RUN"}
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    assert (namespace["INPUT"], namespace["RUN"]) == (Path("../demo/input"), Path("../demo/runs/demo"))


def test_notebook_runs_on_a_tiny_run(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny_run.parents[1]
    before = snapshot(root)
    ns, figures = run_notebook(root / "input", tiny_run, tmp_path, monkeypatch)

    assert snapshot(root) == before, "the notebook must only read"
    assert list(tmp_path.iterdir()) == []
    assert figures >= 5
    assert len(ns["labels"]) == 240
    assert ns["images"].shape == (16, 137, 236) and ns["cropped"].shape == (16, 128, 128)
    assert ns["cache_tags"] == ["resize48"]
    assert set(ns["metrics"]) == {0, 1, 2}
    assert set(ns["configs"]) == {0, 1, 2}

    best = ns["best_scores"]
    assert list(best.index) == [0, 1, 2]
    summaries = [json.loads((tiny_run / f"fold{fold}" / "summary.json").read_text(encoding="utf-8")) for fold in range(3)]
    assert best["best_score"].tolist() == pytest.approx([s["best_score"] for s in summaries])
    assert best["best_epoch"].tolist() == [s["best_epoch"] for s in summaries]
    assert best["finished"].all()
    assert ns["oof_report"] is None and ns["recall_picture"] is None

    # Three folds cover every training image once; each fold's oof.npz is of its best epoch.
    oof = ns["oof"]
    assert sorted(oof["image_id"]) == sorted(ns["labels"]["image_id"])
    assert ns["oof_scores"].loc[[0, 1, 2], "score"].tolist() == pytest.approx(best["best_score"].tolist(), abs=1e-6)
    assert 0 <= ns["oof_scores"].loc["all", "score"] <= 1

    confused = ns["confused"]
    assert len(confused) <= 10
    assert (confused["grapheme_root"] != confused["predicted_grapheme_root"]).all()
    assert confused["images"].is_monotonic_decreasing
    wrong = (oof["grapheme_root"] != oof["predicted_grapheme_root"]).sum()
    assert confused["images"].sum() <= wrong


def test_notebook_counts_unseen_images_once_and_shows_the_oof_report(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_run.parents[1] / "input", root / "input", ignore=shutil.ignore_patterns("test_*"))
    run = root / "runs" / tiny_run.name
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.pt"))
    # Hold out one grapheme: its images are validated in every fold, so fold 1 saved fold 0's too.
    labels = pd.read_csv(root / "input" / "train.csv")
    folds = pd.read_csv(root / "input" / "train_folds.csv")
    folds["unseen"] = folds["image_id"].isin(labels.loc[labels["grapheme"] == labels["grapheme"][0], "image_id"])
    folds.to_csv(root / "input" / "train_folds.csv", index=False)
    held_out = folds.loc[folds["unseen"] & (folds["fold"] == 0), "image_id"].tolist()
    with np.load(run / "fold0" / "oof.npz") as fold0, np.load(run / "fold1" / "oof.npz") as fold1:
        fold0_roots = dict(zip(fold0["image_id"], fold0["grapheme_root"].argmax(axis=1), strict=True))
        extra = np.isin(fold0["image_id"], held_out)
        arrays = {key: np.concatenate([fold1[key], fold0[key][extra]]) for key in fold1.files}
        arrays["grapheme_root"][len(fold1["image_id"]):] = np.eye(arrays["grapheme_root"].shape[1])[167]
    np.savez(run / "fold1" / "oof.npz", **arrays)
    (run / "fold1" / "summary.json").unlink()
    (run / "fold2" / "oof.npz").unlink()
    report = {
        "score": 0.91, "recalls": {c: 0.9 for c in COMPONENTS},
        "prior": {"alpha": 0.35, "scores_by_alpha": {"0.0": 0.9, "0.35": 0.91}, "class_counts": {c: [1, 2] for c in COMPONENTS}},
    }
    (run / "oof.json").write_text(json.dumps(report), encoding="utf-8")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.imsave(run / "per_class_recall.png", np.zeros((20, 40)))
    (root / "cwd").mkdir()

    ns, figures = run_notebook(str(root / "input"), str(run), root / "cwd", monkeypatch)  # as papermill -p passes them

    oof = ns["oof"]
    assert oof["image_id"].is_unique
    assert sorted(oof["image_id"]) == sorted(folds.loc[folds["fold"].isin([0, 1]), "image_id"])
    assert set(oof["fold"]) == {0, 1}
    own = oof.set_index("image_id").loc[held_out]
    assert (own["fold"] == 0).all()
    assert own["predicted_grapheme_root"].tolist() == [fold0_roots[i] for i in held_out]
    scores = ns["oof_scores"]
    assert scores.loc["unseen", "images"] == oof["unseen"].sum() > 0
    assert scores.loc["seen", "images"] + scores.loc["unseen", "images"] == scores.loc["all", "images"] == len(oof)
    unseen_rows = oof[oof["unseen"]]
    held = competition_score(unseen_rows, {c: unseen_rows[f"predicted_{c}"] for c in COMPONENTS}, "true")
    assert scores.loc["unseen", "score"] == pytest.approx(held.score)  # over the classes the group holds

    best = ns["best_scores"]
    assert list(best.index) == [0, 1, 2]
    assert pd.isna(best.loc[1, "finished"]) and best.loc[[0, 2], "finished"].all()

    assert ns["oof_report"] == report
    printed = capsys.readouterr().out
    assert re.search(r"prior\.alpha\s+0\.35", printed) and "class_counts" not in printed
    assert ns["recall_picture"].shape[:2] == (20, 40)
    assert figures >= 7  # the alpha curve and per_class_recall.png as well
