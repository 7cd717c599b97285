"""The Kaggle kernel as Kaggle runs it: offline, from its own bundle, without the project on sys.path.

Its submission equals predict's byte for byte, and the unpacked bundle is removed, also on error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from bengaliai.core.competition import COMPETITION, SAMPLE_SUBMISSION_CSV, TEST_CSV
from bengaliai.inference.ensemble import InferenceConfig
from bengaliai.inference.predict import predict
from bengaliai.kaggle.bundle import bundle_package, kernel_script
from bengaliai.kaggle.kernel import build_kernel

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
