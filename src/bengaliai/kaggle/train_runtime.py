"""What the Kaggle training kernel runs: lay out the input, make the folds, train on every GPU, keep the runs.

The kernel's ``train.py`` (built by ``train_kernel``) unpacks this package into a scratch folder and
calls ``run_training`` with the settings resolved at build time. Each stage is a ``python -m bengaliai``
command with the unpacked package first on PYTHONPATH, run in that scratch folder, whose ``input/``
links the competition's training files and receives the prepared cache and the folds file. So the runs
record ``data.input: input`` and ``folds_file: train_folds.csv`` as a local run does (a run pulled home
with ``bengaliai pull`` reads the local ``input/``), and the cache never becomes kernel output. The
folds train under torchrun, one process per GPU (a plain process on one GPU or none).

The kernel's output is ``ROOT/working``: ``runs/<experiment>/fold<K>/`` and ``train_folds.csv``. When
an earlier version's output is attached (a folder under ROOT/input holding ``runs/<experiment>``), its
fold folders and its folds file are copied in first and training resumes from their ``last.pt``: a
finished fold trains no further. With ``--pretrained`` the weights file is found under ROOT/input and
becomes ``model.pretrained`` (a fold that resumes does not read it again). Training is stopped at the
time budget, before Kaggle ends the session, so the output keeps every finished epoch.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from bengaliai.core.competition import TRAIN_CSV, image_parquet_name
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.data.runinfo import SUMMARY_JSON
from bengaliai.kaggle.inputs import find_all, find_dir, find_one
from bengaliai.training.run_folder import LAST_PT

log = logging.getLogger(__name__)

RUNS = "runs"
DATA_INPUT = "input"
# How long training may take to stop once asked (it loses the epoch in progress, never a saved one).
_STOP_GRACE_S = 120
# Time left below which training does not start: prepare and folds have eaten the budget.
_MIN_TRAIN_S = 300


@dataclass(frozen=True)
class TrainingOutcome:
    """What the kernel leaves in its output, and whether training ran to its end or stopped at the budget."""

    runs_dir: Path
    folds_file: Path
    resumed: bool
    stopped_at_budget: bool


def run_training(
    settings: Mapping[str, Any], root: Path, work: Path, package_dir: Path, hours: float | None = None,
    nproc: int | None = None,
) -> TrainingOutcome:
    """Prepare, make (or take) the folds and train the settings' folds; ``work``: the scratch folder.

    ``root`` holds ``input/`` (read only) and ``working/`` (the output); ``hours`` is the time budget
    (default: the settings'); ``nproc`` the training processes (default: one per GPU).
    """
    deadline = time.monotonic() + 3600 * float(hours if hours is not None else settings["hours"])
    root, work = Path(root), Path(work)
    working = root / "working"
    config = kernel_config(settings["config"], working)
    if settings.get("pretrained"):
        weights = find_pretrained(root / "input", str(settings["pretrained"]))
        config["model"] = {**config["model"], "pretrained": str(weights)}
        log.info("pretrained weights: %s", weights)
    experiment_dir = working / RUNS / str(config["experiment"])
    env = _child_env(package_dir)
    previous = _prepare_input(settings, root / "input", work, env)
    if previous is not None:
        copy_previous_run(previous, experiment_dir)
    working.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / DATA_INPUT / FOLDS_CSV, working / FOLDS_CSV)  # output now: a failed training leaves it too

    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    resume = resumable(experiment_dir, str(settings["folds"]))
    command = ["train", "--config", str(config_path), "--fold", str(settings["folds"]), *(["--resume"] if resume else [])]
    processes = nproc if nproc is not None else torch.cuda.device_count()
    left = deadline - time.monotonic()
    if left < _MIN_TRAIN_S:
        log.warning("%.0f s of the time budget left: not starting training; push the kernel again to train", left)
        return TrainingOutcome(working / RUNS, working / FOLDS_CSV, resume, True)
    log.info("training folds %s of %s on %d process(es)%s; stopping in %.1f h at the latest", settings["folds"],
             config["experiment"], max(processes, 1), ", resuming" if resume else "", left / 3600)
    code = run_until(train_command(command, processes), work, env, deadline)
    if code is not None and code != 0:
        raise BengaliaiError(f"bengaliai train failed (exit code {code}); its messages are above")
    if code is None:
        log.warning("the time budget is spent: training stopped; the output keeps each fold's last finished epoch "
                    "(last.pt): push the kernel again with its output attached (--resume-from) to go on")
    log_summaries(experiment_dir)
    return TrainingOutcome(working / RUNS, working / FOLDS_CSV, resume, code is None)


def kernel_config(config: Mapping[str, Any], working: Path) -> dict[str, Any]:
    """``config`` (a resolved training config) with the kernel's paths: the local layout's relative ones,
    which a pulled run reads at home, and the runs in the kernel's output ``working/runs``."""
    return {**config, "data": {**config["data"], "input": DATA_INPUT, "cache_dir": ""}, "folds_file": FOLDS_CSV,
            "output": str(Path(working) / RUNS)}


def find_pretrained(input_root: Path, file: str) -> Path:
    """The weights file ``file`` (a path inside the dataset given to ``--pretrained``) under ``input_root``."""
    return find_one(input_root, file, "pretrained weights", "attach the dataset named by --pretrained", files_only=True)


def _prepare_input(settings: Mapping[str, Any], input_root: Path, work: Path, env: Mapping[str, str]) -> Path | None:
    """``work/input``: the training files linked, the cache prepared, the folds file made or taken from an
    earlier version's output; return that output's ``runs/<experiment>`` (None without one)."""
    competition = find_dir(input_root, image_parquet_name("train", 0), "competition data")
    if not (competition / TRAIN_CSV).is_file():
        raise BengaliaiError(f"{competition} has training images but no {TRAIN_CSV}")
    data_dir = link_training_files(competition, work / DATA_INPUT)
    prepare = settings["prepare"]
    _run(["prepare", "--input", DATA_INPUT, "--splits", "train", "--mode", str(prepare["mode"]),
          "--size", str(prepare["size"])], work, env)
    previous = find_previous_run(input_root, str(settings["config"]["experiment"]))
    earlier_folds = previous.parent.parent / FOLDS_CSV if previous is not None else None
    if earlier_folds is not None and earlier_folds.is_file():
        # The folds the earlier version trained on, whatever this image's libraries would make now.
        shutil.copyfile(earlier_folds, data_dir / FOLDS_CSV)
        log.info("folds file: %s, the earlier version's", earlier_folds)
    else:
        make = settings["make_folds"]
        _run(["folds", "--input", DATA_INPUT, "--n-splits", str(make["n_splits"]), "--seed", str(make["seed"]),
              "--unseen-graphemes", str(make["unseen_graphemes"])], work, env)
    return previous


def link_training_files(competition: Path, data_dir: Path) -> Path:
    """``data_dir`` with links to the competition's train.csv and training parquet files (read-only input)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in [competition / TRAIN_CSV, *sorted(competition.glob("train_image_data_*.parquet"))]:
        link = data_dir / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path.resolve())
    return data_dir


def find_previous_run(input_root: Path, experiment: str) -> Path | None:
    """``runs/<experiment>`` of an earlier version's output attached under ``input_root``, if one is."""
    found = [path for path in find_all(input_root, f"{RUNS}/{experiment}") if path.is_dir()]
    if len(found) > 1:
        log.warning("several earlier outputs hold %s: %s; resuming from the first", experiment, ", ".join(map(str, found)))
    return found[0] if found else None


def copy_previous_run(previous: Path, experiment_dir: Path) -> list[str]:
    """Copy the fold folders of ``previous`` that ``experiment_dir`` lacks; return their names."""
    copied = []
    for fold_dir in sorted(p for p in previous.iterdir() if p.is_dir() and re.fullmatch(r"fold\d+", p.name)):
        target = experiment_dir / fold_dir.name
        if target.exists():
            log.info("%s is already in %s: the earlier version's is not copied", fold_dir.name, experiment_dir)
            continue
        shutil.copytree(fold_dir, target)
        copied.append(fold_dir.name)
    log.info("earlier version's output %s: copied %s", previous, ", ".join(copied) or "nothing")
    return copied


def resumable(experiment_dir: Path, folds: str) -> bool:
    """Whether any fold to train has a ``last.pt`` to resume from (``train --resume`` then starts the others fresh)."""
    wanted = None if folds == "all" else {int(part) for part in folds.split(",")}
    return any(
        (path / LAST_PT).is_file()
        for path in Path(experiment_dir).glob("fold*")
        if re.fullmatch(r"fold\d+", path.name) and (wanted is None or int(path.name[4:]) in wanted)
    )


def train_command(args: Sequence[str], processes: int) -> list[str]:
    """``bengaliai train ARGS`` under torchrun with one process per GPU, or a plain process for one GPU or none."""
    if processes > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                "-m", "bengaliai", *args]
    return [sys.executable, "-m", "bengaliai", *args]


def run_until(command: Sequence[str], cwd: Path, env: Mapping[str, str], deadline: float) -> int | None:
    """Run ``command`` to its end (its exit code) or stop it at ``deadline`` (``time.monotonic``): None.

    Stopped with SIGTERM to its process group (torchrun passes it on to its workers), then SIGKILL after
    a grace period; the run folders are written atomically, so the last finished epoch survives.
    """
    process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), start_new_session=True)
    try:
        return process.wait(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        pass
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return None


def log_summaries(experiment_dir: Path) -> None:
    """One line per fold folder of the output: its best score and how far it trained."""
    for path in sorted(Path(experiment_dir).glob(f"fold*/{SUMMARY_JSON}")):
        summary = json.loads(path.read_text(encoding="utf-8"))
        log.info("%s: best score %.4f at epoch %d, %d of %d epochs done", path.parent.name, summary["best_score"],
                 summary["best_epoch"], summary["epochs_done"], summary["epochs"])


def _run(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    command = [sys.executable, "-m", "bengaliai", *args]
    log.info("$ bengaliai %s", " ".join(args))
    code = subprocess.run(command, cwd=cwd, env=dict(env), check=False).returncode
    if code != 0:
        raise BengaliaiError(f"bengaliai {args[0]} failed (exit code {code}); its messages are above")


def _child_env(package_dir: Path) -> dict[str, str]:
    """The environment of the stages: the unpacked package first on the path, albumentations offline."""
    path = os.pathsep.join(p for p in (str(package_dir), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {"PYTHONPATH": path, "NO_ALBUMENTATIONS_UPDATE": "1"}


def configure_logging() -> None:
    """Kaggle shows stdout and stderr of a script kernel in its log: one line per message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout, force=True)
