"""``bengaliai train``: train one fold or all folds into a self-describing run folder.

``runs/<experiment>/fold<K>/`` holds the resolved config, the environment (git commit),
``metrics.csv`` (one row per epoch), ``best.pt`` (by validation score), ``last.pt`` (resume point),
``oof.npz`` (validation probabilities of the best epoch) and ``curves.png`` (``run_folder``). ``--resume``
continues from ``last.pt`` exactly: model, optimizer, schedule, EMA, epoch and every random state; what it
cannot continue it refuses before any work (``run_folder.resume_plan``), never overwriting a run. A fold's
input comes from ``inputs.fold_inputs``, asked once; the loop here builds the loaders and trains.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from bengaliai.compute.device import resolve_device
from bengaliai.compute.distributed import DistInfo, barrier, init_distributed, shutdown
from bengaliai.compute.precision import grad_scaler, resolve_precision
from bengaliai.compute.threads import ThreadPlan, apply_threads, plan_threads
from bengaliai.core.config import to_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import FOLDS_CSV, n_folds, read_folds
from bengaliai.data.runinfo import write_config, write_run_description
from bengaliai.model.checkpoint import load_checkpoint, seed_everything
from bengaliai.model.classifier import ModelConfig, build_model
from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment
from bengaliai.training.engine import LossConfig, StepContext, evaluate, train_one_epoch
from bengaliai.training.inputs import DataConfig, check_batch_size, fold_inputs
from bengaliai.training.loader import AugmentedBatches, EpochBatches, make_loader
from bengaliai.training.optim import OptimConfig, build_ema, build_optimizer, build_scheduler
from bengaliai.training.run_folder import (
    changed_settings,
    checkpoint_state,
    metrics_row,
    record_epoch,
    restore,
    resume_plan,
)

log = logging.getLogger(__name__)


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


def parse_folds(spec: str, count: int, holder: str = "the folds file has") -> list[int]:
    """``"all"`` or a comma list such as ``"0,2"``, checked against the ``count`` folds that ``holder`` names."""
    if spec == "all":
        return list(range(count))
    try:
        wanted = [int(part) for part in spec.split(",")]
    except ValueError:
        raise BengaliaiError(f"--fold {spec!r}: expected 'all' or fold numbers such as 0 or 0,2") from None
    bad = [f for f in wanted if not 0 <= f < count]
    if bad:
        raise BengaliaiError(f"--fold {spec!r}: {holder} folds 0..{count - 1}, not {bad}")
    return wanted


def train(config: TrainConfig, folds: str = "0", resume: bool = False) -> dict[int, float]:
    """Train the requested folds (``"all"`` or a comma list); return the best score of each."""
    folds_path = Path(config.data.input) / config.folds_file
    fold_table = read_folds(folds_path)
    wanted = parse_folds(folds, n_folds(fold_table))
    # Refuse before any work: training fold 0 and then stopping at fold 1 would waste an hour.
    resumed = resume_plan({f: run_dir_of(config, f) for f in wanted}, resume, to_dict(config))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    check_batch_size(config.data, fold_table, wanted, folds_path, world_size)
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
        return {fold: train_fold(config, fold, fold_table, device, dist, resumed[fold], plan) for fold in wanted}
    finally:
        shutdown(dist)


def train_fold(
    config: TrainConfig, fold: int, fold_table: pd.DataFrame, device: torch.device, dist: DistInfo, resume: bool,
    plan: ThreadPlan,
) -> float:
    """Train one fold, from its last.pt with ``resume`` (see resume_plan); return its best validation score."""
    run_dir = run_dir_of(config, fold)
    seed_everything(config.seed + fold)
    inputs = fold_inputs(config.data, fold_table, fold, Path(config.data.input) / config.folds_file, dist.world_size)
    store, labels, global_batch = inputs.data.store, inputs.data.labels, inputs.global_batch
    precision = resolve_precision(config.precision, device)
    log.info(
        "fold %d: %d training and %d validation images on %s, %s (%s)",
        fold, len(inputs.train_rows), len(inputs.valid_rows), device, precision.name, precision.reason,
    )
    train_sampler = EpochBatches(
        inputs.train_rows, global_batch, config.seed + fold, True, True, dist.rank, dist.world_size,
        extra=inputs.extra_pools, extra_per_batch=inputs.extra_per_batch,
    )
    for source in inputs.extra_sources:
        log.info("fold %d: extra source %s: %d images, %d per batch of %d, supervising %s", fold, source["path"],
                 source["images"], source["per_batch"], global_batch, source["heads"])
        if source["held_out_images"]:
            log.warning("fold %d: extra source %s shows %d of the graphemes the folds hold out as unseen (%d images): "
                        "this run's unseen out-of-fold scores are not a held-out measurement (`bengaliai synth --skip-held-out "
                        "<main input>` renders without them)", fold, source["path"],
                        source["held_out_graphemes"], source["held_out_images"])
    valid_sampler = EpochBatches(inputs.valid_rows, global_batch * 2, 0, False, False, dist.rank, dist.world_size)
    pin = device.type == "cuda"
    transform = build_transform(config.augment)
    train_loader = make_loader(AugmentedBatches(store, labels, transform, config.seed + fold, dist.rank), train_sampler, plan.workers, pin)
    valid_loader = make_loader(AugmentedBatches(store, labels, None, 0), valid_sampler, plan.workers, pin)

    # A fold that resumes takes its weights from last.pt: the ImageNet file is not read (nor needed) again.
    model = build_model(dataclasses.replace(config.model, pretrained=None) if resume else config.model).to(device)
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
                "world_size": dist.world_size, "global_batch": global_batch, "extra_sources": inputs.extra_sources}
    start_epoch, best_score, history, train_seconds = 0, -1.0, [], 0.0
    if resume:  # resume_plan checked that last.pt takes this config and the inputs are the run's
        # Read to the CPU: the saved random states must stay CPU tensors; load_state_dict moves
        # weights and optimizer state to the model's device.
        state = load_checkpoint(run_dir / "last.pt", "cpu")
        changed = changed_settings(to_dict(config), state["config"])
        if changed:
            log.warning("fold %d: resuming with settings that differ from the run's: %s", fold, ", ".join(changed))
        start_epoch, best_score, history, train_seconds = restore(state, model, optimizer, scheduler, ema, scaler)
        if changed and start_epoch < config.epochs and dist.is_main:
            # config.yaml describes what the run trains with from now on, as last.pt will; a finished fold
            # that trains no further keeps its files byte for byte.
            write_config(run_dir, to_dict(config) | {"fold": fold, "preprocess": inputs.preprocess, "resolved": resolved})
        log.info("fold %d: resumed after epoch %d (best score %.4f)", fold, state["epoch"], best_score)
    elif dist.is_main:
        write_run_description(run_dir, to_dict(config) | {"fold": fold, "preprocess": inputs.preprocess, "resolved": resolved})
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
        train_loss, images_per_s, skipped = train_one_epoch(trained, batches, optimizer, scheduler, ema, ctx, mix_generator, epoch, steps)
        result = evaluate(ema.module if ema is not None else model, valid_loader, labels, ctx)
        row = metrics_row(epoch, train_loss, result, scheduler.get_last_lr()[0], images_per_s, skipped)
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
            state = checkpoint_state(to_dict(config), fold, epoch, best_score, history, model, optimizer, scheduler, ema) | {
                "world_size": dist.world_size, "preprocess": inputs.preprocess, "train_seconds": train_seconds,
                "scaler": scaler.state_dict() if scaler is not None else None, "resolved": resolved,
            }
            record_epoch(run_dir, state, config.epochs, result if improved else None, store.image_ids)
        barrier(dist)
    return best_score


def _limit(loader: Any, max_batches: int) -> Any:
    if max_batches <= 0:
        return loader
    return (batch for i, batch in zip(range(max_batches), loader))
