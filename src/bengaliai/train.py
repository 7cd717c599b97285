"""``bengaliai train``: train one fold or all folds into a self-describing run folder.

``runs/<experiment>/fold<K>/`` holds the resolved config, the environment (git commit),
``metrics.csv`` (one row per epoch), ``best.pt`` (by validation score), ``last.pt`` (resume point),
``oof.npz`` (validation probabilities of the best epoch) and ``curves.png``. ``--resume`` continues
from ``last.pt`` exactly: model, optimizer, schedule, EMA, epoch and every random state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from bengaliai.augment import AugmentConfig, build_transform
from bengaliai.checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from bengaliai.competition import COMPONENTS, TRAIN_CSV
from bengaliai.config import to_dict
from bengaliai.data import AugmentedBatches, DataConfig, EpochBatches, align_labels, make_loader, open_cache
from bengaliai.device import resolve_device
from bengaliai.distributed import DistInfo, barrier, init_distributed, shutdown
from bengaliai.engine import Evaluation, LossConfig, StepContext, evaluate, train_one_epoch
from bengaliai.errors import BengaliaiError
from bengaliai.fileio import atomic_path, write_csv, write_json
from bengaliai.folds import FOLDS_CSV, align_folds, fold_masks, n_folds, read_folds
from bengaliai.labels import read_train_labels
from bengaliai.model import ModelConfig, build_model
from bengaliai.optim import OptimConfig, build_ema, build_optimizer, build_scheduler
from bengaliai.plots import plot_curves
from bengaliai.prepare import cache_settings
from bengaliai.runinfo import SUMMARY_JSON, write_run_description

log = logging.getLogger(__name__)

METRICS_COLUMNS = (
    "epoch", "train_loss", "valid_loss", "lr", "recall_grapheme_root", "recall_vowel_diacritic",
    "recall_consonant_diacritic", "score", "images_per_s",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved with the run and inside each checkpoint."""

    experiment: str = "resnet34"
    seed: int = 0
    epochs: int = 30
    output: str = "runs"
    folds_file: str = FOLDS_CSV
    precision: Literal["bf16", "fp32"] = "bf16"
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"
    # Cap on batches per epoch (0: all); for smoke runs and the demo.
    max_batches: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def run_dir_of(config: TrainConfig, fold: int) -> Path:
    return Path(config.output) / config.experiment / f"fold{fold}"


def parse_folds(spec: str, count: int) -> list[int]:
    """``"all"`` or a comma list such as ``"0,2"``, checked against the folds file."""
    if spec == "all":
        return list(range(count))
    try:
        wanted = [int(part) for part in spec.split(",")]
    except ValueError:
        raise BengaliaiError(f"--fold {spec!r}: expected 'all' or fold numbers such as 0 or 0,2") from None
    bad = [f for f in wanted if not 0 <= f < count]
    if bad:
        raise BengaliaiError(f"--fold {spec!r}: the folds file has folds 0..{count - 1}, not {bad}")
    return wanted


def train(config: TrainConfig, folds: str = "0", resume: bool = False) -> dict[int, float]:
    """Train the requested folds (``"all"`` or a comma list); return the best score of each."""
    input_dir = Path(config.data.input)
    fold_table = read_folds(input_dir / config.folds_file)
    wanted = parse_folds(folds, n_folds(fold_table))
    # Refuse before any work: training fold 0 and then stopping at fold 1 would waste an hour.
    taken = [str(run_dir_of(config, f)) for f in wanted if (run_dir_of(config, f) / "last.pt").exists()]
    if taken and not resume:
        raise BengaliaiError(
            f"{', '.join(taken)} already hold a run: pass --resume to continue, or choose another experiment name"
        )
    device = resolve_device(config.device)
    dist = init_distributed(device.type)
    try:
        return {fold: train_fold(config, fold, fold_table, device, dist, resume) for fold in wanted}
    finally:
        shutdown(dist)


def train_fold(
    config: TrainConfig, fold: int, fold_table: pd.DataFrame, device: torch.device, dist: DistInfo, resume: bool
) -> float:
    """Train one fold; return its best validation score."""
    run_dir = run_dir_of(config, fold)
    seed_everything(config.seed + fold)
    input_dir = Path(config.data.input)
    store = open_cache(input_dir, config.data.cache, "train")
    # Inference must prepare test images exactly like these: keep the settings with the weights.
    preprocess = cache_settings(input_dir, config.data.cache)
    labels = align_labels(store, read_train_labels(input_dir / TRAIN_CSV), input_dir / TRAIN_CSV)
    folds_path = input_dir / config.folds_file
    train_mask, valid_mask = fold_masks(align_folds(fold_table, store.image_ids, folds_path), fold)
    train_idx, valid_idx = np.flatnonzero(train_mask), np.flatnonzero(valid_mask)
    log.info("fold %d: %d training and %d validation images on %s", fold, len(train_idx), len(valid_idx), device)

    train_sampler = EpochBatches(train_idx, config.data.batch_size, config.seed + fold, True, True, dist.rank, dist.world_size)
    valid_sampler = EpochBatches(valid_idx, config.data.batch_size * 2, 0, False, False, dist.rank, dist.world_size)
    pin = device.type == "cuda"
    transform = build_transform(config.augment)
    train_loader = make_loader(AugmentedBatches(store, labels, transform, config.seed + fold, dist.rank), train_sampler, config.data.workers, pin)
    valid_loader = make_loader(AugmentedBatches(store, labels, None, 0), valid_sampler, config.data.workers, pin)

    model = build_model(config.model).to(device)
    if dist.enabled and device.type == "cuda" and config.model.norm == "batch":
        # Batch statistics over the global batch, as a single process would compute them.
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps = len(train_sampler) if config.max_batches == 0 else min(config.max_batches, len(train_sampler))
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, steps, config.epochs)
    ema = build_ema(model, config.optim.ema_decay)
    start_epoch, best_score, history, train_seconds = 0, -1.0, [], 0.0
    if resume and (run_dir / "last.pt").exists():
        state = load_checkpoint(run_dir / "last.pt", device)
        changed = sorted(k for k, v in _flatten(to_dict(config)).items() if _flatten(state["config"]).get(k) != v)
        if changed:
            log.warning("fold %d: resuming with settings that differ from the run's: %s", fold, ", ".join(changed))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        start_epoch, best_score, history = state["epoch"] + 1, state["best_score"], state["history"]
        train_seconds = state.get("train_seconds", 0.0)
        set_rng_state(state["rng"])
        log.info("fold %d: resumed after epoch %d (best score %.4f)", fold, state["epoch"], best_score)
    elif dist.is_main:
        write_run_description(run_dir, to_dict(config) | {"fold": fold, "preprocess": preprocess})

    trained = torch.compile(model) if config.compile else model
    if dist.enabled:
        trained = torch.nn.parallel.DistributedDataParallel(trained, device_ids=[dist.local_rank] if pin else None)
    ctx = StepContext(device, config.precision == "bf16", config.channels_last, config.data, config.augment, config.loss, config.optim.grad_clip, dist)
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        train_sampler.set_epoch(epoch)
        mix_generator = torch.Generator().manual_seed(config.seed * 100_003 + fold * 1009 + epoch)
        batches = _limit(train_loader, config.max_batches)
        train_loss, images_per_s = train_one_epoch(trained, batches, optimizer, scheduler, ema, ctx, mix_generator, epoch, steps)
        result = evaluate(ema.module if ema is not None else model, valid_loader, labels, ctx)
        row = _metrics_row(epoch, train_loss, result, scheduler.get_last_lr()[0], images_per_s)
        history.append(row)
        log.info(
            "fold %d epoch %d: train loss %.4f, valid loss %.4f, score %.4f (root %.4f, vowel %.4f, consonant %.4f), %.0f img/s",
            fold, epoch, train_loss, result.loss, result.score, *result.recalls.values(), images_per_s,
        )
        train_seconds += time.perf_counter() - epoch_start
        if dist.is_main:
            improved = result.score > best_score
            best_score = max(best_score, result.score)
            state = _state(config, fold, epoch, best_score, history, model, optimizer, scheduler, ema) | {
                "world_size": dist.world_size, "preprocess": preprocess, "train_seconds": train_seconds,
            }
            if improved:
                save_checkpoint(state, run_dir / "best.pt")
                _save_oof(result, store.image_ids, run_dir / "oof.npz")
            save_checkpoint(state, run_dir / "last.pt")
            write_csv(pd.DataFrame(history, columns=list(METRICS_COLUMNS)), run_dir / "metrics.csv")
            plot_curves(run_dir / "metrics.csv", run_dir / "curves.png")
            write_json(_summary(fold, epoch, config.epochs, history, train_seconds), run_dir / SUMMARY_JSON)
        barrier(dist)
    return best_score


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _limit(loader: Any, max_batches: int) -> Any:
    if max_batches <= 0:
        return loader
    return (batch for i, batch in zip(range(max_batches), loader))


def _metrics_row(epoch: int, train_loss: float, result: Evaluation, lr: float, images_per_s: float) -> dict[str, float]:
    row: dict[str, float] = {"epoch": epoch, "train_loss": train_loss, "valid_loss": result.loss, "lr": lr}
    row |= {f"recall_{name}": result.recalls[name] for name in COMPONENTS}
    return row | {"score": result.score, "images_per_s": images_per_s}


def _state(
    config: TrainConfig, fold: int, epoch: int, best_score: float, history: list[dict[str, float]],
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, ema: Any,
) -> dict[str, Any]:
    return {
        "config": to_dict(config), "fold": fold, "epoch": epoch, "best_score": best_score, "history": history,
        "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
        # The weights to predict with: the EMA's when it is on (it is what validation scored).
        "weights": (ema.module if ema is not None else model).state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(),
        "time": time.time(),
    }


def _summary(fold: int, epoch: int, epochs: int, history: list[dict[str, float]], train_seconds: float) -> dict[str, Any]:
    best = max(history, key=lambda row: row["score"])
    return {
        "fold": fold, "best_score": best["score"], "best_epoch": int(best["epoch"]), "epochs_done": epoch + 1,
        "epochs": epochs, "finished": epoch + 1 == epochs, "train_seconds": round(train_seconds, 1),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _save_oof(result: Evaluation, image_ids: list[str], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, image_id=np.asarray(image_ids)[result.indices], **result.probabilities)
