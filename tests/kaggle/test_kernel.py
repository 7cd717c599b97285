"""bengaliai kernel: the kernel folder, its metadata, the weights dataset and the settings it resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPETITION
from bengaliai.kaggle.kernel import build_kernel

from builders import fake_run


def test_build_writes_kaggle_metadata_and_slim_weights(tiny_run: Path, tmp_path: Path) -> None:
    build = build_kernel(tiny_run, tmp_path / "build", folds="0,2", alpha=0, user="someone", gpu=True)
    kernel = json.loads((build.kernel_dir / "kernel-metadata.json").read_text())
    dataset = json.loads((build.dataset_dir / "dataset-metadata.json").read_text())
    assert kernel["id"] == "someone/bengaliai-tiny-inference" and kernel["title"] == "bengaliai-tiny-inference"
    assert kernel["competition_sources"] == [COMPETITION]
    assert kernel["enable_internet"] is False and kernel["enable_gpu"] is True
    assert kernel["machine_shape"] == "NvidiaTeslaT4"  # a P100 cannot run the torch of Kaggle's image
    assert kernel["code_file"] == "inference.py" and (build.kernel_dir / "inference.py").exists()
    assert kernel["dataset_sources"] == [dataset["id"]] == ["someone/bengaliai-tiny-weights"]
    settings = json.loads((build.dataset_dir / "inference.json").read_text())
    assert settings["folds"] == [0, 2] and settings["checkpoints"] == ["fold0.pt", "fold2.pt"]
    assert settings["prior"]["alpha"] == 0 and settings["routing"] is None  # no grapheme head
    assert sorted(p.name for p in build.dataset_dir.glob("*.pt")) == ["fold0.pt", "fold2.pt"]
    slim = torch.load(build.dataset_dir / "fold0.pt", weights_only=False)
    assert "optimizer" not in slim and "weights" in slim and slim["preprocess"]["mode"] == "resize"
    assert (build.dataset_dir / "fold0.pt").stat().st_size < (tiny_run / "fold0" / "best.pt").stat().st_size
    # A rebuild with fewer folds leaves no stale weights in the upload.
    build_kernel(tiny_run, tmp_path / "build", folds="1", alpha=0, user="someone")
    assert sorted(p.name for p in build.dataset_dir.glob("*.pt")) == ["fold1.pt"]
    assert "machine_shape" not in json.loads((build.kernel_dir / "kernel-metadata.json").read_text())
    build_kernel(tiny_run, tmp_path / "build", folds="1", alpha=0, user="someone", gpu=True, machine_shape="NvidiaTeslaP100")
    assert json.loads((build.kernel_dir / "kernel-metadata.json").read_text())["machine_shape"] == "NvidiaTeslaP100"


def test_routing_off_builds_a_kernel_without_routing_and_the_alpha_tuned_without_it(
    routed_aux_run: Path, tmp_path: Path
) -> None:
    build = build_kernel(routed_aux_run, tmp_path / "build", user="someone", routing="off")
    settings = json.loads((build.dataset_dir / "inference.json").read_text())
    assert settings["routing"] is None and settings["prior"]["alpha"] == 0.7
    build = build_kernel(routed_aux_run, tmp_path / "build", user="someone")  # auto: the alpha tuned with routing
    settings = json.loads((build.dataset_dir / "inference.json").read_text())
    assert settings["routing"]["score"] == "msp" and settings["prior"]["alpha"] == 0.0


def test_machine_shape_needs_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["kernel", "--run", str(fake_run(tmp_path)), "--out", str(tmp_path / "b"), "--machine-shape", "NvidiaTeslaP100"]
    assert main(args) == 2
    assert "bengaliai kernel: error: --machine-shape NvidiaTeslaP100 needs --gpu" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
