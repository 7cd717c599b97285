"""Run folders that describe themselves: resolved config, git commit, environment; and reading them back."""

from __future__ import annotations

import datetime as dt
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from bengaliai import __version__
from bengaliai.competition import TRAIN_CSV
from bengaliai.errors import DataError
from bengaliai.fileio import atomic_path, write_json
from bengaliai.folds import FOLDS_CSV

CONFIG_YAML = "config.yaml"
RUN_JSON = "run.json"
# Written after every epoch: what the leaderboard needs without opening a checkpoint.
SUMMARY_JSON = "summary.json"
_FOLD_DIR = re.compile(r"fold(\d+)")


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
    with atomic_path(run_dir / CONFIG_YAML) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    write_json(environment(), run_dir / RUN_JSON)


def is_fold_dir_name(name: str) -> bool:
    """Whether a folder name is a fold's run folder, ``fold<K>``."""
    return _FOLD_DIR.fullmatch(name) is not None


def fold_dirs(experiment_dir: Path) -> dict[int, Path]:
    """The ``fold<K>`` folders of an experiment, by fold number (ascending)."""
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        return {}
    found = {}
    for path in experiment_dir.iterdir():
        match = _FOLD_DIR.fullmatch(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def fold_files(experiment_dir: Path, name: str) -> dict[int, Path]:
    """The file ``name`` (``best.pt``, ``oof.npz``, ...) of every ``fold<K>`` folder that has it, by fold."""
    return {k: d / name for k, d in fold_dirs(experiment_dir).items() if (d / name).is_file()}


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved training config saved in a fold's ``config.yaml``, as a plain dict."""
    path = Path(run_dir) / CONFIG_YAML
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found; `bengaliai train` writes it when a fold starts") from None
    except yaml.YAMLError as error:
        raise DataError(path, f"not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise DataError(path, "expected a mapping of settings")
    return config


def run_input(config: dict[str, Any], input_dir: Path | None = None) -> tuple[Path, Path]:
    """train.csv and the folds file of a run: its ``data.input`` unless ``input_dir`` overrides it."""
    base = Path(input_dir) if input_dir is not None else Path(str(config.get("data", {}).get("input", "input")))
    return base / TRAIN_CSV, base / str(config.get("folds_file", FOLDS_CSV))
