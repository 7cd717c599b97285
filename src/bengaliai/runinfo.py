"""Run folders that describe themselves: resolved config, git commit, environment."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from bengaliai import __version__
from bengaliai.fileio import atomic_path, write_json


def git_commit(repo: Path | None = None) -> str:
    """The commit of the working tree (suffixed ``-dirty`` when it has changes), or ``unknown``."""
    cwd = repo or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def environment() -> dict[str, Any]:
    """What produced a run: versions, machine, time."""
    return {
        "bengaliai": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "machine": platform.platform(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }


def write_run_description(run_dir: Path, config: dict[str, Any]) -> None:
    """Save ``config.yaml`` (the resolved configuration) and ``run.json`` (environment) in the run folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    write_json(environment(), run_dir / "run.json")
