"""``bengaliai train``: train one fold or all folds into a self-describing run folder.

``runs/<experiment>/fold<K>/`` holds the resolved config, the environment (git commit),
``metrics.csv`` (one row per epoch), ``best.pt`` (by validation score), ``last.pt`` (resume point),
``oof.npz`` (validation probabilities of the best epoch) and ``curves.png``. ``--resume`` continues
from ``last.pt`` exactly: model, optimizer, schedule, EMA, epoch and every random state.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from bengaliai.compute.device import resolve_device
from bengaliai.compute.distributed import DistInfo, barrier, init_distributed, shutdown
from bengaliai.compute.precision import grad_scaler, resolve_precision
from bengaliai.compute.threads import ThreadPlan, apply_threads, plan_threads
from bengaliai.core.competition import COMPONENTS
from bengaliai.core.config import to_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import atomic_path, write_csv, write_json
from bengaliai.data.folds import FOLDS_CSV, align_folds, fold_masks, n_folds, read_folds
from bengaliai.data.prepare import cache_settings
from bengaliai.data.runinfo import SUMMARY_JSON, check_run_inputs, write_run_description
from bengaliai.evaluation.plots import plot_curves
from bengaliai.model.checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from bengaliai.model.resnet import ModelConfig, build_model
from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment
from bengaliai.training.engine import Evaluation, LossConfig, StepContext, evaluate, train_one_epoch
from bengaliai.training.loader import AugmentedBatches, DataConfig, EpochBatches, make_loader
from bengaliai.training.optim import OptimConfig, build_ema, build_optimizer, build_scheduler
from bengaliai.training.sources import describe_sources, extra_per_batch, held_out_overlap, open_training_data

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
    # The folds file: a path of its own, or relative to data.input (folds --out writes elsewhere).
    folds_file: str = FOLDS_CSV
    # auto: bf16 on GPUs of compute capability >= 8.0 and CPUs with native bf16, fp16 with loss
    # scaling on 7.x GPUs (T4, V100), fp32 elsewhere (bengaliai.compute.precision); the run folder says why.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    channels_last: bool = True
    compile: bool = False
    device: str = "auto"
    # torch threads of each training process; auto: the CPUs this process may use (affinity and
    # cgroup quota) minus its loader workers (bengaliai.compute.threads).
    threads: int | Literal["auto"] = "auto"
    # Cap on batches per epoch (0: all); for smoke runs and the demo.
    max_batches: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        found = []
        if self.epochs < 1:
            found.append(f"epochs must be >= 1, got {self.epochs}")
        if self.max_batches < 0:
            found.append(f"max_batches must be >= 0 (0: all), got {self.max_batches}")
        if self.threads != "auto" and self.threads < 1:
            found.append(f"threads must be >= 1 or auto, got {self.threads}")
        if self.loss.outlier_weight > 0 and not self.model.aux_graphemes:
            found.append("loss.outlier_weight trains the auxiliary grapheme head: set model.aux_graphemes=true or leave it 0")
        if found:
            raise BengaliaiError("\n".join(found))


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
    folds_path = Path(config.data.input) / config.folds_file
    fold_table = read_folds(folds_path)
    wanted = parse_folds(folds, n_folds(fold_table))
    # Refuse before any work: training fold 0 and then stopping at fold 1 would waste an hour.
    taken = [str(run_dir_of(config, f)) for f in wanted if (run_dir_of(config, f) / "last.pt").exists()]
    if taken and not resume:
        raise BengaliaiError(
            f"{', '.join(taken)} already hold a run: pass --resume to continue, or choose another experiment name"
        )
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    check_batch_size(config, fold_table, wanted, folds_path, world_size)
    device = resolve_device(config.device)
    dist = init_distributed(device.type)
    plan = plan_threads(
        None if config.threads == "auto" else config.threads,
        None if config.data.workers == "auto" else config.data.workers,
        local_ranks=int(os.environ.get("LOCAL_WORLD_SIZE", "1")), device_type=device.type,
    )
    apply_threads(plan)
    if device.type == "cuda":
        # Fixed input sizes: let cuDNN pick the fastest convolution algorithms once.
        torch.backends.cudnn.benchmark = True
    try:
        return {fold: train_fold(config, fold, fold_table, device, dist, resume, plan) for fold in wanted}
    finally:
        shutdown(dist)


def check_batch_size(
    config: TrainConfig, fold_table: pd.DataFrame, folds: list[int], folds_path: Path, world_size: int = 1
) -> None:
    """Refuse, before any work, a batch that gives an epoch no step on some fold's training split."""
    global_batch = config.data.batch_size * world_size
    per = f" ({config.data.batch_size} per process x {world_size})" if world_size > 1 else ""
    # Extra sources take their share of every batch (at least one image each); the rest is main input.
    extra = sum(max(1, round(global_batch * share)) for share in config.data.extra_share) or len(config.data.extra)
    main_batch = global_batch - extra
    if main_batch < 1:
        raise BengaliaiError(
            f"data.batch_size: a batch of {global_batch}{per} leaves no room for the main input's images beside "
            f"{extra} from data.extra; use a larger batch or smaller data.extra_share"
        )
    for fold in folds:
        n_train = int(fold_masks(fold_table, fold)[0].sum())
        if n_train < main_batch:
            of_main = f" ({main_batch} of them from the main input)" if extra else ""
            raise BengaliaiError(
                f"data.batch_size: fold {fold} of {folds_path} has {n_train} training images, fewer than one "
                f"batch of {global_batch}{per}{of_main}: an epoch would train 0 steps; use data.batch_size <= "
                f"{max((n_train + extra) // world_size, 1)}"
            )


def train_fold(
    config: TrainConfig, fold: int, fold_table: pd.DataFrame, device: torch.device, dist: DistInfo, resume: bool,
    plan: ThreadPlan,
) -> float:
    """Train one fold; return its best validation score."""
    run_dir = run_dir_of(config, fold)
    seed_everything(config.seed + fold)
    input_dir = Path(config.data.input)
    cache_root = config.data.cache_root()
    # Inference must prepare test images exactly like these: keep the settings with the weights.
    preprocess = cache_settings(input_dir, config.data.cache, cache_root)
    data = open_training_data(config.data, preprocess)
    store, labels = data.store, data.labels
    folds_path = input_dir / config.folds_file
    aligned = align_folds(fold_table, data.main_ids, folds_path)
    train_mask, valid_mask = fold_masks(aligned, fold)
    train_idx, valid_idx = np.flatnonzero(train_mask), np.flatnonzero(valid_mask)
    precision = resolve_precision(config.precision, device)
    log.info(
        "fold %d: %d training and %d validation images on %s, %s (%s)",
        fold, len(train_idx), len(valid_idx), device, precision.name, precision.reason,
    )

    # data.batch_size is per process: the global batch of a step is that times the world size.
    global_batch = config.data.batch_size * dist.world_size
    per_batch = extra_per_batch(global_batch, len(train_idx), data.extra)
    train_sampler = EpochBatches(
        train_idx, global_batch, config.seed + fold, True, True, dist.rank, dist.world_size,
        extra=[source.indices for source in data.extra], extra_per_batch=per_batch,
    )
    sources = describe_sources(data, per_batch, held_out_overlap(data, aligned["unseen"].to_numpy(dtype=bool)))
    for source in sources:
        log.info("fold %d: extra source %s: %d images, %d per batch of %d, supervising %s", fold, source["path"],
                 source["images"], source["per_batch"], global_batch, source["heads"])
        if source["held_out_images"]:
            log.warning("fold %d: extra source %s shows %d of the graphemes the folds hold out as unseen (%d images): "
                        "this run's unseen out-of-fold scores are not a held-out measurement (`bengaliai synth --skip-held-out "
                        "<main input>` renders without them)", fold, source["path"],
                        source["held_out_graphemes"], source["held_out_images"])
    valid_sampler = EpochBatches(valid_idx, global_batch * 2, 0, False, False, dist.rank, dist.world_size)
    pin = device.type == "cuda"
    transform = build_transform(config.augment)
    train_loader = make_loader(AugmentedBatches(store, labels, transform, config.seed + fold, dist.rank), train_sampler, plan.workers, pin)
    valid_loader = make_loader(AugmentedBatches(store, labels, None, 0), valid_sampler, plan.workers, pin)

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
    scaler = grad_scaler(precision, device)
    resolved = {"device": str(device), "precision": precision.to_dict(), "threads": dataclasses.asdict(plan),
                "world_size": dist.world_size, "global_batch": global_batch, "extra_sources": sources}
    start_epoch, best_score, history, train_seconds = 0, -1.0, [], 0.0
    if resume and (run_dir / "last.pt").exists():
        check_run_inputs(run_dir, to_dict(config))
        # Read to the CPU: the saved random states must stay CPU tensors; load_state_dict moves
        # weights and optimizer state to the model's device.
        state = load_checkpoint(run_dir / "last.pt", "cpu")
        changed = sorted(k for k, v in _flatten(to_dict(config)).items() if _flatten(state["config"]).get(k) != v)
        if changed:
            log.warning("fold %d: resuming with settings that differ from the run's: %s", fold, ", ".join(changed))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, best_score, history = state["epoch"] + 1, state["best_score"], state["history"]
        train_seconds = state.get("train_seconds", 0.0)
        set_rng_state(state["rng"])
        log.info("fold %d: resumed after epoch %d (best score %.4f)", fold, state["epoch"], best_score)
    elif dist.is_main:
        write_run_description(run_dir, to_dict(config) | {"fold": fold, "preprocess": preprocess, "resolved": resolved})
    if dist.rank > 0:
        # Every rank starts from the same weights (DDP broadcasts rank 0's); dropout draws differ per rank.
        torch.manual_seed(config.seed * 1_000_003 + fold * 7919 + dist.rank)

    trained: torch.nn.Module = model
    if dist.enabled:
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.local_rank] if pin else None)
    if config.compile:
        # After DDP, as documented: its hooks then overlap gradient communication with backward.
        trained = torch.compile(trained)
    device_augment = DeviceAugment(config.augment) if config.augment.where == "device" else None
    ctx = StepContext(
        device, precision, config.channels_last, config.data, config.augment, config.loss, config.optim.grad_clip, dist,
        scaler=scaler, device_augment=device_augment, seed=config.seed + fold,
    )
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        train_sampler.set_epoch(epoch)
        mix_generator = torch.Generator().manual_seed(config.seed * 100_003 + fold * 1009 + epoch)
        batches = _limit(train_loader, config.max_batches)
        train_loss, images_per_s = train_one_epoch(trained, batches, optimizer, scheduler, ema, ctx, mix_generator, epoch, steps)
        result = evaluate(ema.module if ema is not None else model, valid_loader, labels, ctx)
        row = _metrics_row(epoch, train_loss, result, scheduler.get_last_lr()[0], images_per_s)
        history.append(row)
        if dist.is_main:
            log.info(
                "fold %d epoch %d: train loss %.4f, valid loss %.4f, score %.4f (root %.4f, vowel %.4f, consonant %.4f), %.0f img/s",
                fold, epoch, train_loss, result.loss, result.score, *result.recalls.values(), images_per_s,
            )
        train_seconds += time.perf_counter() - epoch_start
        # Every rank scored the whole validation set (gathered), so every rank knows the best score.
        improved = result.score > best_score
        best_score = max(best_score, result.score)
        if dist.is_main:
            state = _state(config, fold, epoch, best_score, history, model, optimizer, scheduler, ema) | {
                "world_size": dist.world_size, "preprocess": preprocess, "train_seconds": train_seconds,
                "scaler": scaler.state_dict() if scaler is not None else None, "resolved": resolved,
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
    # With the auxiliary head, also what routing needs of it (bengaliai.evaluation.routing.AUX_KEYS).
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, image_id=np.asarray(image_ids)[result.indices], **result.probabilities, **(result.aux or {}))
