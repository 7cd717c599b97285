"""benchmarks/gpu_check.py, the script a GPU session runs first, at --quick sizes on the CPU: every step reports,
and training, resume and predict really run (only what needs CUDA may say so)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


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
    for step in ("2 precision", "3 resume", "4 throughput", "5 predict"):
        assert all(row[2] in ("ok", "info") for row in by_step[step]), by_step[step]
    assert len(by_step["2 precision"]) == 2 and "GradScaler scale" in by_step["2 precision"][1][3]
    for row in by_step["3 resume"]:
        assert "resumed in a fresh process without error" in row[3] and "bit-equal: True" in row[3], row
    assert any("5 folds" in row[1] and "200,000 images:" in row[3] for row in by_step["5 predict"])
    if not torch.cuda.is_available():
        assert by_step["6 compile"] == [["6 compile", "torch.compile", "skipped", "no CUDA", "-"]]
        assert "Skipped: 6 compile: torch.compile (no CUDA)." in table

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
