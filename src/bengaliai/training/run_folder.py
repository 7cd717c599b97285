"""A fold's run folder: what every epoch records there, and the training state a resume restores from it.

Each epoch writes ``last.pt`` (the resume point: model, optimizer, schedule, EMA, epoch, history and
every random state), ``metrics.csv`` (one row per epoch), ``curves.png`` and the summary; an epoch
that scores best also writes ``best.pt`` and ``oof.npz`` (its validation probabilities). Before any
work, ``resume_plan`` decides which folds resume and refuses whatever would overwrite a run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bengaliai.core.competition import COMPONENTS
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import atomic_path, write_csv, write_json
from bengaliai.data.runinfo import SUMMARY_JSON, check_run_inputs
from bengaliai.evaluation.plots import plot_curves
from bengaliai.model.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from bengaliai.training.engine import Evaluation

log = logging.getLogger(__name__)

LAST_PT = "last.pt"
# What finished epochs leave in a fold folder (record_epoch): a folder holding any of them holds a run.
# config.yaml and run.json alone are a fold that stopped before its first epoch ended: nothing to lose.
RUN_FILES = (LAST_PT, "best.pt", "oof.npz", "metrics.csv", SUMMARY_JSON, "curves.png")
# Settings a resume cannot change: the saved weights, EMA and optimizer state are of the run's network
# and optimizer (optim.ema_decay too, from 0 to on: the run has no EMA state).
FIXED_ON_RESUME = (
    "model.arch", "model.in_chans", "model.base_width", "model.norm", "model.aux_graphemes", "optim.name",
)
_TRAIN_ELSEWHERE = "train under another --set experiment=NAME"

METRICS_COLUMNS = (
    "epoch", "train_loss", "valid_loss", "lr", "recall_grapheme_root", "recall_vowel_diacritic",
    "recall_consonant_diacritic", "score", "images_per_s", "skipped_steps",
)


def metrics_row(
    epoch: int, train_loss: float, result: Evaluation, lr: float, images_per_s: float, skipped_steps: int = 0
) -> dict[str, float]:
    """One epoch's row of ``metrics.csv`` (``METRICS_COLUMNS``); ``skipped_steps``: fp16 steps the GradScaler skipped."""
    row: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "valid_loss": result.loss, "lr": lr}
    row |= {f"recall_{name}": result.recalls[name] for name in COMPONENTS}
    return row | {"score": result.score, "images_per_s": images_per_s, "skipped_steps": skipped_steps}


def checkpoint_state(
    config: dict[str, Any], fold: int, epoch: int, best_score: float, history: list[dict[str, float]],
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, ema: Any,
) -> dict[str, Any]:
    """The checkpoint of a fold after ``epoch``: the resolved config, progress, every state dict and random state."""
    return {
        "config": config, "fold": fold, "epoch": epoch, "best_score": best_score, "history": history,
        "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
        # The weights to predict with: the EMA's when it is on (it is what validation scored).
        "weights": (ema.module if ema is not None else model).state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
        "time": time.time(),
    }


def record_epoch(run_dir: Path, state: dict[str, Any], epochs: int, best: Evaluation | None, image_ids: list[str]) -> None:
    """Write what an epoch leaves in the run folder; ``best``: the evaluation of an epoch that scored best.

    ``state`` is the checkpoint (``checkpoint_state`` with ``train_seconds``) saved as ``last.pt`` and,
    with ``best``, as ``best.pt`` beside ``oof.npz``.
    """
    if best is not None:
        save_checkpoint(state, run_dir / "best.pt")
        _save_oof(best, image_ids, run_dir / "oof.npz")
    save_checkpoint(state, run_dir / "last.pt")
    history = state["history"]
    write_csv(pd.DataFrame(history, columns=list(METRICS_COLUMNS)), run_dir / "metrics.csv")
    plot_curves(run_dir / "metrics.csv", run_dir / "curves.png")
    write_json(_summary(state["fold"], state["epoch"], epochs, history, state["train_seconds"]), run_dir / SUMMARY_JSON)


def changed_settings(config: dict[str, Any], saved: dict[str, Any]) -> list[str]:
    """The settings (dotted keys) of ``config`` that differ from ``saved``, a checkpoint's config."""
    before = _flatten(saved)
    return sorted(k for k, v in _flatten(config).items() if before.get(k) != v)


def run_files(run_dir: Path) -> list[str]:
    """The files of ``RUN_FILES`` that a fold folder holds: empty when it holds no run."""
    return [name for name in RUN_FILES if (Path(run_dir) / name).is_file()]


def resume_plan(run_dirs: dict[int, Path], resume: bool, config: dict[str, Any]) -> dict[int, bool]:
    """Which folds (fold -> folder) resume from their ``last.pt``: checked before any work, so a refusal never
    comes after an hour of training, and a run is never overwritten.

    Without ``resume`` every folder must hold no run. With it, a folder with run files but no ``last.pt`` is
    refused (it cannot be continued), a ``last.pt`` must take ``config`` (resume_conflicts, and the same
    train.csv and folds file), and empty folders start fresh as long as some fold resumes.
    """
    held = {fold: run_files(run_dir) for fold, run_dir in run_dirs.items()}
    if not resume:
        taken = {run_dirs[fold]: files for fold, files in held.items() if files}
        if taken:
            raise BengaliaiError(_taken_message(taken))
        return dict.fromkeys(run_dirs, False)
    stuck = {run_dirs[fold]: files for fold, files in held.items() if files and LAST_PT not in files}
    if stuck:
        one = len(stuck) == 1
        what = "; ".join(f"{run_dir} holds {', '.join(files)}" for run_dir, files in stuck.items())
        raise BengaliaiError(
            f"{what} but no {LAST_PT} (the resume point): --resume cannot continue {'it' if one else 'them'} and would "
            f"overwrite them; copy {'its' if one else 'their'} {LAST_PT} back, or {_TRAIN_ELSEWHERE}"
        )
    resumed = {fold: bool(files) for fold, files in held.items()}
    if not any(resumed.values()):
        wanted = list(run_dirs)
        missing = f"fold{wanted[0]}/{LAST_PT}"
        if len(wanted) > 1:
            missing = f"fold<K>/{LAST_PT} for folds {', '.join(map(str, wanted))}"
        raise BengaliaiError(
            f"--resume: nothing to resume in {run_dirs[wanted[0]].parent} (no {missing}); drop --resume to start"
        )
    for fold, run_dir in run_dirs.items():
        if resumed[fold]:
            check_resume_point(run_dir, config)
        else:
            log.info("fold %d: %s holds no run to resume: it starts fresh", fold, run_dir)
    return resumed


def check_resume_point(run_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to resume a fold's ``last.pt`` with ``config`` when its state would not fit, or its inputs changed."""
    check_run_inputs(run_dir, config)
    path = Path(run_dir) / LAST_PT
    # Mapped, not read: only the config is needed now.
    state = load_checkpoint(path, "cpu", mmap=True)
    saved = state.get("config") if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        raise BengaliaiError(f"{path}: no training config in this checkpoint; was it written by `bengaliai train`?")
    conflicts = resume_conflicts(config, saved)
    if conflicts:
        raise BengaliaiError(
            f"{path}: --resume cannot continue this run with {', '.join(conflicts)}: its saved weights and optimizer "
            f"state do not fit; resume with the run's settings, or {_TRAIN_ELSEWHERE}"
        )


def resume_conflicts(config: dict[str, Any], saved: dict[str, Any]) -> list[str]:
    """The settings of ``config`` that a checkpoint of ``saved`` cannot resume with: ``key=new (the run has old)``."""
    now, then = _flatten(config), _flatten(saved)
    keys = [key for key in FIXED_ON_RESUME if now.get(key) != then.get(key)]
    if (now.get("optim.ema_decay") or 0) > 0 and not (then.get("optim.ema_decay") or 0) > 0:
        keys.append("optim.ema_decay")
    return [f"{key}={_setting(now.get(key))} (the run has {_setting(then.get(key))})" for key in keys]


def restore(
    state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, ema: Any,
    scaler: Any,
) -> tuple[int, float, list[dict[str, float]], float]:
    """Load a ``last.pt`` state into the training objects and the global random states.

    Returns where training goes on: (first epoch to train, best score, metrics history, seconds trained).
    """
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return state["epoch"] + 1, state["best_score"], state["history"], state.get("train_seconds", 0.0)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _setting(value: Any) -> str:
    """A value as ``--set`` takes it (true, null), for messages."""
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def _taken_message(taken: dict[Path, list[str]]) -> str:
    one = len(taken) == 1
    text = f"{', '.join(map(str, taken))} already {'holds a run' if one else 'hold runs'}"
    unresumable = [run_dir for run_dir, files in taken.items() if LAST_PT not in files]
    if not unresumable:
        return f"{text}: pass --resume to continue {'it' if one else 'them'}, or {_TRAIN_ELSEWHERE}"
    where = "" if one else " in " + ", ".join(run_dir.name for run_dir in unresumable)
    return (f"{text} (no {LAST_PT} to resume from{where}): {_TRAIN_ELSEWHERE}, or move "
            f"{'it' if one else 'them'} away to start over")


def _summary(fold: int, epoch: int, epochs: int, history: list[dict[str, float]], train_seconds: float) -> dict[str, Any]:
    best = max(history, key=lambda row: row["score"])
    return {
        "fold": fold, "best_score": best["score"], "best_epoch": int(best["epoch"]), "epochs_done": epoch + 1,
        "epochs": epochs, "finished": epoch + 1 == epochs, "train_seconds": round(train_seconds, 1),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _save_oof(result: Evaluation, image_ids: list[str], path: Path) -> None:
    # With the auxiliary head, also what routing needs of it (bengaliai.evaluation.routing.AUX_KEYS).
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, image_id=np.asarray(image_ids)[result.indices], **result.probabilities, **(result.aux or {}))
