"""The demo: the whole pipeline in one call, re-runnable, never touching data it did not make."""

from __future__ import annotations

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
    assert main(["demo", "--workdir", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "input", "cache/crop64", "train_folds.csv", "runs/demo", "fold 0 best validation score", "out-of-fold score",
        "submissions/demo.csv", "test score", "kernel/kernel", "leaderboard",
    ):
        assert expected in out
    assert (tmp_path / "runs" / "demo" / "fold0" / "best.pt").exists()
    assert (tmp_path / "runs" / "demo" / "oof.json").exists()
    assert len((tmp_path / "submissions" / "demo.csv").read_text().splitlines()) == 1 + 3 * 8
    assert (tmp_path / "kernel" / "kernel" / "inference.py").exists()
    assert (tmp_path / "kernel" / "dataset" / "fold0.pt").exists()
    synth_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "input").glob("*.parquet")}

    result = demo.run_demo(tmp_path, workers=1)  # data kept, the run trained afresh
    assert {p: p.stat().st_mtime_ns for p in synth_files} == synth_files
    assert set(result.scores) == {0}


def test_demo_refuses_a_directory_with_data_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "train.csv").write_text("image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme\n")
    with pytest.raises(BengaliaiError, match="did not write"):
        demo.run_demo(tmp_path, workers=1)
