"""The demo: the whole pipeline in one call, re-runnable, never touching data it did not make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bengaliai.cli import demo
from bengaliai.cli.main import main
from bengaliai.core.errors import BengaliaiError


@pytest.fixture
def tiny_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DEMO_TRAIN_IMAGES", 150)
    monkeypatch.setattr(demo, "DEMO_TEST_IMAGES", 8)
    monkeypatch.setattr(demo, "DEMO_FOLDS", 3)
    monkeypatch.setattr(demo, "DEMO_UNSEEN_GRAPHEMES", 0)
    monkeypatch.setattr(demo, "DEMO_FOLDS_TRAINED", "0")
    tiny = ("model.arch=resnet10", "model.base_width=8", "epochs=1", "data.batch_size=16")  # later settings win
    monkeypatch.setattr(demo, "DEMO_TRAINING", (*demo.DEMO_TRAINING, *tiny))


def test_demo_runs_every_stage_and_says_where_things_are(
    tiny_demo: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The workflow's own input/ (README step 1) is neither read nor written by the demo.
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "train.csv").write_text("the workflow's data\n")
    assert main(["demo", "--workdir", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "demo/input", "cache/crop64", "train_folds.csv", "demo/runs/demo", "fold 0 best validation score",
        "out-of-fold score", "demo/submissions/demo.csv", "test score", "demo/kernel/kernel", "leaderboard",
    ):
        assert expected in out
    assert f"competition-format data: {tmp_path / 'demo' / 'input'}\n" in out
    root = tmp_path / "demo"
    assert (root / "runs" / "demo" / "fold0" / "best.pt").exists()
    assert (root / "runs" / "demo" / "oof.json").exists()
    assert len((root / "submissions" / "demo.csv").read_text().splitlines()) == 1 + 3 * 8
    assert (root / "kernel" / "kernel" / "inference.py").exists()
    assert (root / "kernel" / "dataset" / "fold0.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "input"]
    assert [p.name for p in (tmp_path / "input").iterdir()] == ["train.csv"]
    assert (tmp_path / "input" / "train.csv").read_text() == "the workflow's data\n"
    synth_files = {p: p.stat().st_mtime_ns for p in (root / "input").glob("*.parquet")}

    result = demo.run_demo(tmp_path, workers=1)  # data kept, the run trained afresh
    assert {p: p.stat().st_mtime_ns for p in synth_files} == synth_files
    assert set(result.scores) == {0}


def test_demo_refuses_a_directory_with_data_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "demo" / "input").mkdir(parents=True)
    (tmp_path / "demo" / "input" / "train.csv").write_text("image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme\n")
    with pytest.raises(BengaliaiError, match="did not write"):
        demo.run_demo(tmp_path, workers=1)


def test_demo_will_not_train_on_a_synthetic_set_of_other_sizes(tiny_demo: None, tmp_path: Path) -> None:
    input_dir = tmp_path / "demo" / "input"
    input_dir.mkdir(parents=True)
    manifest = {"n_train": 200840, "n_test": 20000, "seed": 0, "complete": True}
    (input_dir / "synth.json").write_text(json.dumps(manifest), encoding="utf-8")
    (input_dir / "train.csv").write_text("a 200k set\n")
    with pytest.raises(BengaliaiError) as error:
        demo.run_demo(tmp_path, workers=1)
    assert str(error.value) == (
        f"{input_dir} holds a synthetic dataset of 200840 train and 20000 test images, not the demo's 150 and 8: "
        f"the demo will not train on it nor replace it; remove {input_dir} (the demo renders its own again) or pass "
        "--workdir with another directory"
    )
    assert (input_dir / "train.csv").read_text() == "a 200k set\n"
