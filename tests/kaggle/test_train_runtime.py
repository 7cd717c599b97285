"""The training kernel's runtime: what it finds under /kaggle/input, what it resumes, how it launches and stops."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bengaliai.core.competition import COMPETITION
from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.train_runtime import (
    copy_previous_run,
    find_pretrained,
    find_previous_run,
    kernel_config,
    link_training_files,
    resumable,
    run_training,
    run_until,
    train_command,
)


def _fold(experiment_dir: Path, fold: int, *files: str) -> Path:
    path = experiment_dir / f"fold{fold}"
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text(name, encoding="utf-8")
    return path


def test_an_earlier_output_is_found_and_its_missing_folds_copied(tmp_path: Path) -> None:
    earlier = tmp_path / "input" / "bengaliai-tiny-train" / "runs" / "tiny"
    _fold(earlier, 0, "last.pt", "best.pt")
    _fold(earlier, 1, "last.pt")
    (tmp_path / "input" / COMPETITION).mkdir()
    assert find_previous_run(tmp_path / "input", "tiny") == earlier
    assert find_previous_run(tmp_path / "input", "other") is None
    target = tmp_path / "working" / "runs" / "tiny"
    _fold(target, 1, "last.pt")
    (target / "fold1" / "last.pt").write_text("newer", encoding="utf-8")
    assert copy_previous_run(earlier, target) == ["fold0"]
    assert (target / "fold0" / "best.pt").read_text() == "best.pt" and (target / "fold1" / "last.pt").read_text() == "newer"


def test_resume_only_when_a_fold_to_train_has_a_last_checkpoint(tmp_path: Path) -> None:
    _fold(tmp_path, 0, "last.pt")
    _fold(tmp_path, 2, "config.yaml", "run.json")  # stopped before its first epoch ended: nothing to resume
    assert resumable(tmp_path, "0") and resumable(tmp_path, "all") and resumable(tmp_path, "1,0")
    assert not resumable(tmp_path, "1") and not resumable(tmp_path, "2")
    assert not resumable(tmp_path / "missing", "all")


def test_the_training_files_are_linked_not_copied(tmp_path: Path) -> None:
    competition = tmp_path / "input" / COMPETITION
    competition.mkdir(parents=True)
    for name in ("train.csv", "train_image_data_0.parquet", "test.csv", "test_image_data_0.parquet"):
        (competition / name).write_text(name, encoding="utf-8")
    data_dir = link_training_files(competition, tmp_path / "work" / "input")
    assert sorted(p.name for p in data_dir.iterdir()) == ["train.csv", "train_image_data_0.parquet"]
    assert all(p.is_symlink() for p in data_dir.iterdir())
    link_training_files(competition, data_dir)  # again: the links are replaced, not refused


def test_kernel_config_sets_the_local_layout_and_the_output() -> None:
    config = {"experiment": "x", "output": "runs", "folds_file": "/elsewhere.csv", "data": {"input": "/data", "cache_dir": "/c", "batch_size": 8}}
    assert kernel_config(config, Path("/kaggle/working")) == {
        "experiment": "x", "output": "/kaggle/working/runs", "folds_file": "train_folds.csv",
        "data": {"input": "input", "cache_dir": "", "batch_size": 8},
    }


def test_several_gpus_train_under_torchrun_one_or_none_in_a_plain_process() -> None:
    assert train_command(["train", "--fold", "0"], 2)[1:6] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
    ]
    assert train_command(["train", "--fold", "0"], 0) == [sys.executable, "-m", "bengaliai", "train", "--fold", "0"]
    assert train_command(["train"], 1) == train_command(["train"], 0)


def test_a_run_past_its_deadline_is_stopped_and_reported_as_stopped(tmp_path: Path) -> None:
    assert run_until([sys.executable, "-c", "raise SystemExit(3)"], tmp_path, {}, time.monotonic() + 60) == 3
    start = time.monotonic()
    assert run_until([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, {}, start + 1) is None
    assert time.monotonic() - start < 30


def test_no_competition_data_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "input" / "something").mkdir(parents=True)
    with pytest.raises(BengaliaiError, match="no competition data under .*something"):
        run_training({"hours": 1, "config": {"experiment": "x", "data": {}}}, tmp_path, tmp_path / "work", tmp_path)


def test_the_pretrained_file_is_found_in_its_dataset_or_one_clear_error(tmp_path: Path) -> None:
    weights = tmp_path / "input" / "timm-weights" / "se" / "w.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    (tmp_path / "input" / COMPETITION).mkdir()
    assert find_pretrained(tmp_path / "input", "se/w.pth") == weights
    assert find_pretrained(tmp_path / "input", "w.pth") == weights  # a bare name is looked for deeper too
    held = rf"\(no r34.pth found; it holds: {COMPETITION}, timm-weights\); attach the dataset named by --pretrained"
    with pytest.raises(BengaliaiError, match=rf"no pretrained weights under .*input {held}"):
        find_pretrained(tmp_path / "input", "r34.pth")
    with pytest.raises(BengaliaiError, match="no pretrained weights"):
        find_pretrained(tmp_path / "input", "se")  # a folder is not a weights file
