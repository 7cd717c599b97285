"""The Kaggle kernel: its submission equals predict's byte for byte, without the project on sys.path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPETITION, SAMPLE_SUBMISSION_CSV, TEST_CSV
from bengaliai.core.errors import BengaliaiError
from bengaliai.inference.ensemble import InferenceConfig
from bengaliai.inference.predict import predict
from bengaliai.kaggle.kernel import KERNEL_PACKAGES, build_kernel, bundle_package, kernel_script, push_kernel

from builders import fake_run

SETTINGS = InferenceConfig(tta=2)


def _input(run: Path) -> Path:
    return run.parent.parent / "input"


def _kaggle_layout(root: Path, run: Path, dataset_dir: Path) -> Path:
    """``root/kaggle/input/<competition>`` with only the competition's test files, and the weights dataset."""
    competition = root / "kaggle" / "input" / COMPETITION
    competition.mkdir(parents=True)
    for path in [_input(run) / TEST_CSV, _input(run) / SAMPLE_SUBMISSION_CSV, *_input(run).glob("test_image_data_*.parquet")]:
        shutil.copy(path, competition)
    shutil.copytree(dataset_dir, root / "kaggle" / "input" / "bengaliai-tiny-weights")
    (root / "kaggle" / "working").mkdir()
    return root / "kaggle"


def _isolated_python(
    script: Path | None, args: list[str], cwd: Path, code: str | None = None, tmpdir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Python without site processing (so no editable install of the project), but with the installed packages.

    ``tmpdir`` becomes its TMPDIR, so a test can see what the run leaves in the temporary folder.
    """
    site_packages = sysconfig.get_paths()["purelib"]
    command = [sys.executable, "-S", *(["-c", code] if code else [str(script)]), *args]
    env = {"PYTHONPATH": site_packages, "PATH": "/usr/bin:/bin", "NO_ALBUMENTATIONS_UPDATE": "1", "HOME": str(cwd)}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_kernel_submission_equals_predict_byte_for_byte(tiny_aux_run: Path, routed_aux_run: Path, tmp_path: Path) -> None:
    # Routing on (about half the test images decoded by the grapheme head), prior correction on the rest.
    expected = predict(routed_aux_run, out=tmp_path / "predict.csv", config=SETTINGS, alpha=0.3, workers=1)
    assert expected.routing is not None and 0 < expected.n_routed < expected.n_images
    build = build_kernel(routed_aux_run, tmp_path / "build", config=SETTINGS, alpha=0.3, user="someone")
    settings = json.loads((build.dataset_dir / "inference.json").read_text())
    assert settings["routing"] == expected.routing.to_dict() and settings["prior"]["alpha"] == 0.3
    workdir = tmp_path / "clean"
    workdir.mkdir()
    kaggle_root = _kaggle_layout(workdir, tiny_aux_run, build.dataset_dir)
    script = shutil.copy(build.kernel_dir / "inference.py", workdir / "inference.py")
    # The isolated interpreter really cannot see the project...
    probe = _isolated_python(None, [], workdir, code="import bengaliai")
    assert probe.returncode != 0 and "No module named 'bengaliai'" in probe.stderr
    # ...and the kernel runs there from its own bundle, which it removes at the end.
    scratch = workdir / "tmp"
    scratch.mkdir()
    done = _isolated_python(Path(script), ["--root", str(kaggle_root)], workdir, tmpdir=scratch)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"bengaliai 0.1.0 from {scratch}/bengaliai-" in done.stdout and list(scratch.iterdir()) == []
    assert "bengaliai 0.1.0 from /" in done.stdout and str(Path(__file__).parents[2] / "src") not in done.stdout
    produced = kaggle_root / "working" / "submission.csv"
    assert produced.read_bytes() == expected.submission.read_bytes()


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


def test_the_kernel_removes_its_unpacked_bundle_also_on_error(tmp_path: Path) -> None:
    script = tmp_path / "inference.py"
    script.write_text(kernel_script(bundle_package(), experiment="x", folds=[0], commit="c", dataset="u/d"), encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (tmp_path / "kaggle" / "input").mkdir(parents=True)
    done = _isolated_python(script, ["--root", str(tmp_path / "kaggle")], tmp_path, tmpdir=scratch)
    assert done.returncode == 1
    assert "BengaliaiError: no competition data under" in done.stderr and 'raise BengaliaiError(f"no {what}' in done.stderr
    assert list(scratch.iterdir()) == []


def test_bundle_is_reproducible_and_holds_only_sources() -> None:
    import io
    import zipfile

    first, second = bundle_package(), bundle_package()
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "bengaliai/inference/predict.py" in names and "bengaliai/kaggle/kernel_runtime.py" in names
    assert all(name.endswith(".py") for name in names)
    # every stage the runtime may import, with its __init__; none of those it never imports
    packages = {name.split("/")[1] for name in names if name.count("/") == 2}
    assert packages == set(KERNEL_PACKAGES)
    assert all(f"bengaliai/{package}/__init__.py" in names for package in packages)
    assert not packages & {"synth", "handwriting", "training", "cli"}


def test_kernel_says_what_is_missing_under_kaggle_input(tiny_run: Path, tmp_path: Path) -> None:
    from bengaliai.kaggle.kernel_runtime import run_kernel

    (tmp_path / "input" / "something").mkdir(parents=True)
    with pytest.raises(BengaliaiError, match="no competition data under .*something"):
        run_kernel(tmp_path)


class FakeApi:
    def __init__(self, exists: bool = False, login: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.exists, self.login = exists, login

    def authenticate(self) -> None:
        if not self.login:
            raise SystemExit(1)

    def dataset_status(self, dataset: str) -> str:
        if not self.exists:
            raise RuntimeError("404")
        return "ready"

    def dataset_create_new(self, folder: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("create", folder))
        return SimpleNamespace(error=None)

    def dataset_create_version(self, folder: str, notes: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("version", folder))
        return SimpleNamespace(error=None)

    def kernels_push(self, folder: str) -> SimpleNamespace:
        self.calls.append(("push", folder))
        return SimpleNamespace(error=None)


def test_push_uploads_the_dataset_then_the_kernel(tiny_run: Path, tmp_path: Path) -> None:
    build = build_kernel(tiny_run, tmp_path / "build", alpha=0, user="someone")
    api = FakeApi()
    push_kernel(build, api_factory=lambda: api)
    assert api.calls == [("create", str(build.dataset_dir)), ("push", str(build.kernel_dir))]
    again = FakeApi(exists=True)
    push_kernel(build, api_factory=lambda: again)
    assert [c for c, _ in again.calls] == ["version", "push"]


def test_push_without_credentials_or_user_is_one_clear_message(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = build_kernel(tiny_run, tmp_path / "build", alpha=0, user="someone")
    with pytest.raises(BengaliaiError, match="Kaggle login failed.*credentials"):
        push_kernel(build, api_factory=lambda: FakeApi(login=False))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    anonymous = build_kernel(tiny_run, tmp_path / "anon", alpha=0)
    with pytest.raises(BengaliaiError, match="--user"):
        push_kernel(anonymous, api_factory=FakeApi)
