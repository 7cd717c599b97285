"""The training kernel rehearsed on this machine: its train.py, as Kaggle runs it, on a Kaggle-shaped folder.

The script runs from its own bundle (the project is not on its path) on the CPU, with /kaggle mapped to a
temporary folder (``--root``): a fold trains into working/runs, and a second version with the first one's
output attached resumes it and, the fold being finished, trains no further. Pulled home (a fake Kaggle
API serving the output), the run is scored by oof and listed by leaderboard. Two CPU processes under
torchrun stand in for the two GPUs (slow).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPETITION
from bengaliai.kaggle.pull import pull_output
from bengaliai.model.classifier import ModelConfig, build_model

from builders import write_pattern_dataset

TINY = (
    "experiment=tiny", "data.cache=resize32", "data.batch_size=16", "data.workers=0", "model.arch=resnet10",
    "model.base_width=8", "epochs=1", "precision=fp32", "threads=1", "augment.cutmix_p=0",
)


def _kaggle(tmp_path: Path, *settings: str, kernel_args: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A Kaggle-shaped folder (the competition under input/) and the training kernel's script for ``settings``."""
    root = tmp_path / "kaggle"
    write_pattern_dataset(root / "input" / COMPETITION, 60, n_files=1)
    options = [arg for setting in settings for arg in ("--set", setting)]
    build_dir = tmp_path / "build"
    args = ["kernel", "--train", "--out", str(build_dir), "--user", "someone", "--n-splits", "3", "--fold", "0",
            *options, *kernel_args]
    assert main(args) == 0
    return root, build_dir / "train.py"


def _run_script(script: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The kernel's train.py under Python without site processing (so without the project's editable install)."""
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin", "HOME": str(root.parent)}
    command = [sys.executable, "-S", str(script), "--root", str(root), *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


class OutputOf:
    """A Kaggle API whose kernel has finished with ``working`` as its output."""

    def __init__(self, working: Path) -> None:
        self.working = working

    def authenticate(self) -> None:
        pass

    def kernels_status(self, kernel: str) -> SimpleNamespace:
        return SimpleNamespace(status=SimpleNamespace(name="COMPLETE"), failure_message="")

    def kernels_output(self, kernel: str, path: str, force: bool = False, quiet: bool = True) -> None:
        shutil.copytree(self.working, path, dirs_exist_ok=True)


def test_the_training_kernel_trains_a_fold_and_a_second_version_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, script = _kaggle(tmp_path, *TINY, kernel_args=("--pretrained", "someone/tiny-weights/r10/imagenet.pth"))
    # The attached dataset of ImageNet weights (a fresh model's here), mounted where Kaggle mounts datasets.
    weights = root / "input" / "tiny-weights" / "r10" / "imagenet.pth"
    weights.parent.mkdir(parents=True)
    torch.save(build_model(ModelConfig(arch="resnet10", base_width=8)).state_dict(), weights)

    first = _run_script(script, root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{weights}: loaded" in first.stderr
    fold = root / "working" / "runs" / "tiny" / "fold0"
    assert (fold / "best.pt").is_file() and (fold / "last.pt").is_file()
    assert json.loads((fold / "summary.json").read_text())["finished"] is True
    assert (fold / "metrics.csv").read_text().count("\n") == 2  # the header and one epoch
    assert (root / "working" / "train_folds.csv").is_file()
    run = json.loads((fold / "run.json").read_text())
    assert run["argv"][0].startswith(str(root / "temp")), "the stages run from the kernel's own bundle"
    config = (fold / "config.yaml").read_text()
    assert "input: input\n" in config and "folds_file: train_folds.csv\n" in config  # the local layout
    assert yaml.safe_load(config)["model"]["pretrained"] == str(weights)
    assert sorted(p.name for p in root.iterdir()) == ["input", "temp", "working"] and not any((root / "temp").iterdir())

    # Pulled home beside the same competition files, the run is a local one: oof and leaderboard read it.
    home = tmp_path / "home"
    shutil.copytree(root / "input" / COMPETITION, home / "input")
    monkeypatch.chdir(home)
    pull_output("someone/bengaliai-tiny-train", Path("runs"), api_factory=lambda: OutputOf(root / "working"))
    assert (home / "input" / "train_folds.csv").read_bytes() == (root / "working" / "train_folds.csv").read_bytes()
    assert main(["oof", "--run", "runs/tiny"]) == 0 and (home / "runs" / "tiny" / "oof.json").is_file()
    assert main(["leaderboard", "--runs", "runs"]) == 0
    assert "tiny" in capsys.readouterr().out

    # Kaggle mounts the earlier version's output under input/ and starts the next with an empty working/.
    shutil.move(root / "working", root / "input" / "bengaliai-tiny-train")
    earlier = {p.name: p.read_bytes() for p in (root / "input" / "bengaliai-tiny-train" / "runs" / "tiny" / "fold0").iterdir()}
    second = _run_script(script, root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resumed after epoch 0" in second.stderr and "epoch 0: train loss" not in second.stderr
    assert {p.name: p.read_bytes() for p in fold.iterdir()} == earlier  # a finished fold keeps its files byte for byte
    assert (root / "working" / "train_folds.csv").read_bytes() == (
        root / "input" / "bengaliai-tiny-train" / "train_folds.csv"
    ).read_bytes()


@pytest.mark.slow
def test_two_processes_train_under_torchrun(tmp_path: Path) -> None:
    # Two CPU processes (gloo) stand in for Kaggle's two T4s; GroupNorm, as SyncBatchNorm needs CUDA.
    root, script = _kaggle(tmp_path, *TINY, "model.norm=group", "device=cpu", "data.batch_size=8")
    done = _run_script(script, root, "--nproc", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on 2 process(es)" in done.stdout
    config = yaml.safe_load((root / "working" / "runs" / "tiny" / "fold0" / "config.yaml").read_text())
    assert config["resolved"]["world_size"] == 2
    assert (root / "working" / "runs" / "tiny" / "fold0" / "best.pt").is_file()
