"""A fold's run folder: what every epoch records there, and the training state a resume restores from it.

Each epoch writes ``last.pt`` (the resume point: model, optimizer, schedule, EMA, epoch, history and
every random state), ``metrics.csv`` (one row per epoch), ``curves.png`` and the summary; an epoch
that scores best also writes ``best.pt`` and ``oof.npz`` (its validation probabilities).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bengaliai.core.competition import COMPONENTS
from bengaliai.core.fileio import atomic_path, write_csv, write_json
from bengaliai.data.runinfo import SUMMARY_JSON
from bengaliai.evaluation.plots import plot_curves
from bengaliai.model.checkpoint import rng_state, save_checkpoint, set_rng_state
from bengaliai.training.engine import Evaluation

METRICS_COLUMNS = (
    "epoch", "train_loss", "valid_loss", "lr", "recall_grapheme_root", "recall_vowel_diacritic",
    "recall_consonant_diacritic", "score", "images_per_s",
)


def metrics_row(epoch: int, train_loss: float, result: Evaluation, lr: float, images_per_s: float) -> dict[str, float]:
    """One epoch's row of ``metrics.csv`` (``METRICS_COLUMNS``)."""
    row: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "valid_loss": result.loss, "lr": lr}
    row |= {f"recall_{name}": result.recalls[name] for name in COMPONENTS}
    return row | {"score": result.score, "images_per_s": images_per_s}


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
