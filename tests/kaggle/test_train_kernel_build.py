"""bengaliai kernel --train: the training kernel's metadata, the settings in its script, its bundle, its errors."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPETITION
from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.bundle import KERNEL_PACKAGES, TRAIN_KERNEL_PACKAGES
from bengaliai.kaggle.train_kernel import FoldsRecipe, build_train_kernel, check_folds


def _settings(script: Path) -> dict:
    text = script.read_text(encoding="utf-8")
    return json.loads(text.split('SETTINGS = json.loads(r"""', 1)[1].split('""")', 1)[0])


def _bundle_names(script: Path) -> list[str]:
    text = script.read_text(encoding="utf-8")
    encoded = "".join(re.findall(r'^    "([A-Za-z0-9+/=]+)"$', text.split("BUNDLE = (", 1)[1], flags=re.MULTILINE))
    return zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded))).namelist()


def test_build_writes_a_gpu_kernel_with_the_resolved_config_and_the_kernel_paths(tmp_path: Path) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text("experiment: r18\nepochs: 7\nmodel:\n  arch: resnet18\ndata:\n  cache: crop96\n", encoding="utf-8")
    build = build_train_kernel(
        tmp_path / "build", config_path=config, overrides=["optim.lr=3e-4"], folds="all",
        recipe=FoldsRecipe(n_splits=4, seed=3, unseen_graphemes=50), user="someone", resume_from="someone/bengaliai-r18-train",
    )
    metadata = json.loads((tmp_path / "build" / "kernel-metadata.json").read_text())
    assert metadata["id"] == build.kernel_id == "someone/bengaliai-r18-train" and metadata["title"] == "bengaliai-r18-train"
    assert metadata["code_file"] == "train.py" and metadata["kernel_type"] == "script"
    assert metadata["enable_gpu"] is True and metadata["machine_shape"] == "NvidiaTeslaT4"  # the editor's "GPU T4 x2"
    assert metadata["enable_internet"] is False and metadata["competition_sources"] == [COMPETITION]
    assert metadata["kernel_sources"] == ["someone/bengaliai-r18-train"] and metadata["dataset_sources"] == []
    settings = _settings(tmp_path / "build" / "train.py")
    assert settings["folds"] == "all" and settings["prepare"] == {"mode": "crop", "size": 96}
    assert settings["make_folds"] == {"n_splits": 4, "seed": 3, "unseen_graphemes": 50} and settings["hours"] == 11.5
    trained = settings["config"]
    assert trained["epochs"] == 7 and trained["model"]["arch"] == "resnet18" and trained["optim"]["lr"] == 3e-4
    # The local layout's relative paths (a pulled run reads input/ at home); the runs in the kernel's output.
    assert trained["data"]["input"] == "input" and trained["data"]["cache_dir"] == ""
    assert trained["folds_file"] == "train_folds.csv" and trained["output"] == "/kaggle/working/runs"
    assert "resume:" not in build.summary() and "bengaliai pull someone/bengaliai-r18-train" in build.summary()


def test_the_script_carries_training_the_cli_and_iterstrat_with_its_licence(tmp_path: Path) -> None:
    build_train_kernel(tmp_path, user="someone")
    names = _bundle_names(tmp_path / "train.py")
    packages = {name.split("/")[1] for name in names if name.startswith("bengaliai/") and name.count("/") == 2}
    assert packages == set(TRAIN_KERNEL_PACKAGES) > set(KERNEL_PACKAGES)
    assert "bengaliai/__main__.py" in names and "bengaliai/kaggle/train_runtime.py" in names
    assert not packages & {"synth", "handwriting"}
    assert "iterstrat/ml_stratifiers.py" in names and "iterstrat/LICENSE" in names


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": "5"}, r"--fold '5': the kernel \(--n-splits 5\) makes folds 0..4, not \[5\]"),
        ({"folds": "one"}, r"--fold 'one': expected 'all' or fold numbers"),
        ({"config_path": Path("nowhere.yaml")}, "config file not found: nowhere.yaml"),
        ({"resume_from": "bengaliai-tiny-train"}, r"kernel 'bengaliai-tiny-train': expected OWNER/SLUG"),
        ({"overrides": ["data.extra=[extra]"]}, r"data.extra \['extra'\]: the training kernel trains on the competition's"),
        ({"overrides": ["model.pretrained=r34.pth"]}, "model.pretrained r34.pth: a file on this machine.*--pretrained OWNER"),
        ({"pretrained": "someone/weights"}, r"--pretrained 'someone/weights': expected OWNER/DATASET/FILE"),
        ({"pretrained": "someone/weights/../../kaggle/working/x.pth"}, "expected OWNER/DATASET/FILE"),
        ({"pretrained": "someone/Weights/r34.pth"}, "expected OWNER/DATASET/FILE"),
        ({"pretrained": "someone/weights/r34.pth", "overrides": ["model.norm=group"]}, "norm=group cannot load ImageNet"),
        ({"overrides": ["data.cache=crop"]}, "data.cache 'crop': the kernel prepares raw, crop<SIZE> or resize<SIZE>"),
    ],
)
def test_bad_input_is_one_clear_error_before_anything_is_written(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match=message):
        build_train_kernel(tmp_path / "build", user="someone", **kwargs)
    assert not (tmp_path / "build").exists()


def test_check_folds_normalises_a_list_and_takes_all() -> None:
    assert check_folds("all", 5) == "all" and check_folds("0, 2", 3) == "0,2"


def test_the_two_kinds_of_kernel_refuse_each_others_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "b")]
    assert main(["kernel", "--train", "--run", "runs/x", "--tta", "2", *out]) == 2
    assert "bengaliai kernel: error: --run, --tta: options of an inference kernel" in capsys.readouterr().err
    assert main(["kernel", "--run", "runs/x", "--fold", "1", "--set", "epochs=1", *out]) == 2
    assert "bengaliai kernel: error: --set, --fold: options of a training kernel; add --train" in capsys.readouterr().err
    assert main(["kernel", *out]) == 2
    assert "bengaliai kernel: error: --run runs/<experiment> is required (or --train" in capsys.readouterr().err
    assert main(["kernel", "--train", "--fold", "9", *out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fold '9': the kernel (--n-splits 5) makes folds 0..4" in err
    assert not (tmp_path / "b").exists()


def test_pretrained_attaches_the_dataset_and_names_the_file_for_the_kernel_to_find(tmp_path: Path) -> None:
    build_train_kernel(tmp_path, user="someone", pretrained="someone/timm-weights/se/seresnext26d_32x4d.pth",
                       overrides=["model.arch=seresnext26d_32x4d"])
    metadata = json.loads((tmp_path / "kernel-metadata.json").read_text())
    assert metadata["dataset_sources"] == ["someone/timm-weights"] and metadata["competition_sources"] == [COMPETITION]
    settings = _settings(tmp_path / "train.py")
    # The file is found under /kaggle/input when the kernel runs; the config itself names no local file.
    assert settings["pretrained"] == "se/seresnext26d_32x4d.pth" and settings["config"]["model"]["pretrained"] is None


def test_kernel_help_explains_the_training_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["kernel", "--help"])
    out = capsys.readouterr().out
    options = ("--train", "--config", "--set", "--fold", "--n-splits", "--unseen-graphemes", "--resume-from", "--hours")
    for option in (*options, "--pretrained"):
        assert option in out
    assert "GPU T4 x2" in out
