"""The report of benchmarks/gpu_check.py: the markdown table and the JSON of raw numbers beside it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class Row:
    step: str
    check: str
    status: str  # ok, FAIL, skipped, below target, info
    result: str
    peak_mib: float | None = None


def markdown_table(rows: list[Row], skipped: list[str], gpu: str, start: float, budget_s: float, quick: bool) -> str:
    """The table of all rows so far, under a header naming the machine, the time spent and the command."""
    lines = [
        f"# GPU check, {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"{gpu} · {platform.node()} · {os.cpu_count()} cores · torch {torch.__version__} · "
        f"{time.perf_counter() - start:.0f} s of a {budget_s:.0f} s budget"
        f"{' · --quick sizes' if quick else ''}",
        f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        "",
        "| step | check | status | result | peak GPU MiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        peak = f"{r.peak_mib:,.0f}" if r.peak_mib is not None else "-"
        lines.append(f"| {r.step} | {r.check} | {r.status} | {r.result.replace('|', '/')} | {peak} |")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


def write_table(out: Path, table: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")


def write_json(out: Path, meta: dict[str, Any], rows: list[Row], raw: dict[str, dict[str, Any]]) -> None:
    """``out`` with ``.json``: the run's settings, the rows and every check's raw numbers (tracebacks included)."""
    payload = {"meta": meta, "rows": [dataclasses.asdict(r) for r in rows], "raw": raw}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
