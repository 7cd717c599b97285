"""benchmarks/gpu_check.py, the script a GPU session runs first, at --quick sizes on the CPU: every step reports,
and training, resume and predict really run (only what needs CUDA may say so); gpu_check.sh, which refuses to
start without the wheels the GPU machine needs."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
SHELL_SCRIPT = SCRIPT.with_suffix(".sh")


@pytest.fixture
def gpu_check(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The script imported as a module (its steps, ``gpu_steps``, live beside it in benchmarks/)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module("gpu_check")


def _rows(table: str) -> list[list[str]]:
    """The cells of the markdown table's body rows (step, check, status, result, peak)."""
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| step |")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


@pytest.mark.slow
def test_quick_gpu_check_runs_every_step_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # A budget no busy machine runs out of: every step must run here.
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--budget-s", "900", "--out", str(out),
               "--workdir", str(tmp_path / "work")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    table = out.read_text(encoding="utf-8")
    assert "| step | check | status | result | peak GPU MiB |" in table
    assert table in result.stdout  # the same table is printed
    rows = _rows(table)
    by_step: dict[str, list[list[str]]] = {}
    for row in rows:
        assert len(row) == 5, row
        by_step.setdefault(row[0], []).append(row)
    assert list(by_step) == ["1 environment", "2 precision", "3 resume", "4 throughput", "5 predict", "6 compile"]
    assert not [row for row in rows if row[2] == "FAIL"]
    other_arch = "model only, eager: seresnext50_32x4d 32px batch 16"
    for step in ("2 precision", "3 resume", "4 throughput", "5 predict"):
        assert all(row[2] in ("ok", "info") for row in by_step[step] if row[1] != other_arch), by_step[step]
    versions = next(row[3] for row in by_step["1 environment"] if row[1] == "versions")
    assert re.search(r"numpy \S+, pandas \S+, pyarrow \S+, OpenCV \S+, albumentations \S+, arch list", versions), versions
    loops = {row[1]: row for row in by_step["4 throughput"]}
    assert loops["whole loop, eager, augment.where=device, EMA 0.999"][2] == "ok"
    assert loops[other_arch][2] == "ok" or loops[other_arch][3].startswith("arch not available"), loops[other_arch]
    assert len(by_step["2 precision"]) == 2 and "GradScaler scale" in by_step["2 precision"][1][3]
    for row in by_step["3 resume"]:
        assert "resumed in a fresh process without error" in row[3] and "bit-equal: True" in row[3], row
    assert any("5 folds" in row[1] and "200,000 images:" in row[3] for row in by_step["5 predict"])
    if not torch.cuda.is_available():
        assert by_step["6 compile"] == [["6 compile", "torch.compile", "skipped", "no CUDA", "-"]]
        # Listed last (after seresnext50_32x4d's row where model.resnet lacks it).
        assert re.search(r"\nSkipped: (4 throughput: [^;]+; )?6 compile: torch.compile \(no CUDA\)\.\n$", table), table

    raw = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert len(raw["rows"]) == len(rows)
    assert raw["raw"]["resume"]["fp16 + GradScaler, augment.where=device"]["max_abs_diff"] == 0.0
    assert raw["raw"]["throughput"]["model_only_images_per_s"] > 0


def test_options_default_budget_steps_and_unknown_step(gpu_check: Any) -> None:
    args = gpu_check.parse_args([])
    assert (args.device, args.quick, args.budget_s, args.workdir) == ("cuda", False, 450.0, None)
    assert args.out == Path("gpu_check.md")
    assert args.steps == ["precision", "resume", "throughput", "predict", "compile"]
    assert gpu_check.parse_args(["--quick"]).budget_s == 170.0
    assert gpu_check.parse_args(["--steps", "resume, compile,"]).steps == ["resume", "compile"]
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--steps", "resume,warp"])


def test_table_escapes_bars_and_lists_skipped_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    report = importlib.import_module("gpu_steps.report")
    rows = [report.Row("1 environment", "versions", "info", "a | b"),
            report.Row("2 precision", "bf16", "ok", "fine", 1234.4)]
    table = report.markdown_table(rows, ["6 compile: torch.compile (no CUDA)"], "no GPU", 0.0, 450.0, True)
    assert "| 1 environment | versions | info | a / b | - |" in table
    assert "| 2 precision | bf16 | ok | fine | 1,234 |" in table
    assert table.endswith("\nSkipped: 6 compile: torch.compile (no CUDA).\n")
    assert "s of a 450 s budget · --quick sizes" in table
    out = tmp_path / "sub" / "gpu_check.md"
    report.write_table(out, table)
    report.write_json(out, {"quick": True}, rows, {"precision": {"bf16": {"peak_mib": 1234.4}}})
    assert out.read_text(encoding="utf-8") == table
    raw = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert raw["rows"][1] == {"step": "2 precision", "check": "bf16", "status": "ok", "result": "fine",
                              "peak_mib": 1234.4}
    assert raw["meta"] == {"quick": True} and raw["raw"]["precision"]["bf16"]["peak_mib"] == 1234.4


def test_beside_a_gpu_the_loader_rows_plan_every_cpu_but_one(gpu_check: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread plan follows the device, as train() makes it: 16 CPUs beside a GPU give 15 loader workers."""
    from bengaliai.compute import threads

    monkeypatch.setattr(threads, "cpu_limits", lambda *args: threads.CpuLimits(affinity=16, quota=None))
    monkeypatch.setattr(threads, "busy_cpus", lambda *args: 0)
    runner, settings = importlib.import_module("gpu_steps.runner"), importlib.import_module("gpu_steps.settings")
    check = runner.Check(gpu_check.parse_args(["--device", "cuda"]), settings.Sizes(), Path("unused"))
    check.set_device(torch.device("cuda"))
    assert (check.plan.cpus, check.plan.workers, check.plan.intra_op) == (16, 15, 1)
    check.set_device(torch.device("cpu"))
    assert (check.plan.workers, check.plan.intra_op) == (1, 16)


def test_the_versions_row_says_missing_for_a_library_that_does_not_import(
    gpu_check: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = importlib.import_module("gpu_steps.environment")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    found = environment.library_versions()
    assert list(found) == ["numpy", "pandas", "pyarrow", "OpenCV", "albumentations"]
    assert found["pyarrow"] == "missing" and found["numpy"] == numpy.__version__


def _wheel_names(gpu_check: Any) -> list[str]:
    wheels = importlib.import_module("gpu_steps.wheels")
    return [f"{wheels.normalise(name)}-1.0-py3-none-any.whl" for name in wheels.CARRIED]


def _check_wheels(folder: Path) -> subprocess.CompletedProcess[str]:
    """gpu_check.sh's wheel check alone (--check-wheels), run where ``folder`` is (the repository root there)."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run(["bash", str(SHELL_SCRIPT), "--check-wheels"], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@pytest.mark.parametrize(("change", "message"), [
    ("no folder", r".whl/ does not exist"),
    ("empty", r".whl/ holds no wheel"),
    ("lacks albucore", r".whl/ lacks albucore"),
    ("two albucores", r".whl/ holds more than one version of a package \(albucore-1.0-py3-none-any.whl, albucore-2.0"),
    ("cp311 build", r".whl/ holds wheels for another Python or platform than 3.12 on linux x86_64: simsimd-1.0-cp311"),
])
def test_gpu_check_sh_refuses_in_one_line_without_every_wheel(
    gpu_check: Any, tmp_path: Path, change: str, message: str
) -> None:
    folder = tmp_path / ".whl"
    names = _wheel_names(gpu_check)
    if change != "no folder":
        folder.mkdir()
    if change not in ("no folder", "empty"):
        names = [name for name in names if not (change == "lacks albucore" and name.startswith("albucore-"))]
        names += ["albucore-2.0-py3-none-any.whl"] if change == "two albucores" else []
        if change == "cp311 build":
            names = [n for n in names if not n.startswith("simsimd-")] + ["simsimd-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
        for name in names:
            (folder / name).touch()
    result = _check_wheels(tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert re.match(rf"refused: {message}", result.stderr), result.stderr
    assert "make gpu-wheels" in result.stderr


def test_gpu_check_sh_takes_a_complete_wheel_folder(gpu_check: Any, tmp_path: Path) -> None:
    (tmp_path / ".whl").mkdir()
    names = _wheel_names(gpu_check)
    names[-1] = names[-1].replace("py3-none-any", "cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64")
    for name in names:
        (tmp_path / ".whl" / name).touch()
    result = _check_wheels(tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_gpu_wheels_downloads_exactly_the_carried_packages_for_the_device() -> None:
    root = SCRIPT.parents[1]
    result = subprocess.run(["make", "-n", "gpu-wheels"], cwd=root, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    download = next(line for line in result.stdout.splitlines() if "pip download" in line)
    for option in ("--no-deps", "--only-binary=:all:", "--python-version 3.12", "--implementation cp"):
        assert option in download
    assert "wheels.py requirements" in result.stdout and "wheels.py check .whl.tmp" in result.stdout
