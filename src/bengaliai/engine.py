"""One training epoch and one evaluation pass: the loss, the loop, the metric on the whole set."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bengaliai.augment import AugmentConfig, mix_batch
from bengaliai.competition import COMPONENTS
from bengaliai.data import DataConfig, to_model_input
from bengaliai.distributed import DistInfo, all_gather
from bengaliai.errors import BengaliaiError
from bengaliai.metric import competition_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossConfig:
    """Cross-entropy per head, weighted like the metric (root counts double)."""

    weights: tuple[float, ...] = (2.0, 1.0, 1.0)
    label_smoothing: float = 0.0
    aux_weight: float = 0.5


class NonFiniteLoss(BengaliaiError):
    """The loss became NaN or infinite; training stops instead of writing garbage weights."""


@dataclass(frozen=True)
class StepContext:
    """What the loop needs besides the model: device, precision and the data settings."""

    device: torch.device
    bf16: bool
    channels_last: bool
    data: DataConfig
    augment: AugmentConfig
    loss: LossConfig
    grad_clip: float
    dist: DistInfo


def targets_of(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split a (B, 3 or 4) label tensor into named targets (the 4th column is the seen-grapheme index)."""
    targets = {name: labels[:, i] for i, name in enumerate(COMPONENTS)}
    if labels.shape[1] > len(COMPONENTS):
        targets["grapheme"] = labels[:, len(COMPONENTS)]
    return targets


def weighted_loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], config: LossConfig) -> torch.Tensor:
    """Sum of per-head cross-entropies, weighted 2:1:1 over the components (+ the auxiliary head)."""
    total = sum(
        w * F.cross_entropy(logits[name].float(), targets[name], label_smoothing=config.label_smoothing)
        for w, name in zip(config.weights, COMPONENTS, strict=True)
    )
    if "grapheme" in logits and "grapheme" in targets:
        # Graphemes unseen in the real training set carry -1 and do not count.
        total = total + config.aux_weight * F.cross_entropy(logits["grapheme"].float(), targets["grapheme"], ignore_index=-1)
    return total / sum(config.weights)


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: torch.nn.Module | None,
    ctx: StepContext,
    mix_generator: torch.Generator,
    epoch: int,
    total: int,
) -> tuple[float, float]:
    """Train over ``loader``; return (mean loss, images per second over all ranks)."""
    model.train()
    loss_sum, seen, start = torch.zeros((), device=ctx.device), 0, time.perf_counter()
    bar = tqdm(
        loader, total=total, desc=f"epoch {epoch}", leave=False, disable=not ctx.dist.is_main, unit="batch",
        # In a log file (nohup, a Kaggle commit) every refresh is a new line: refresh rarely there.
        mininterval=0.5 if sys.stderr.isatty() else 60.0,
    )
    for step, (images, labels, _) in enumerate(bar):
        x = to_model_input(images, ctx.data, ctx.device, ctx.channels_last)
        mixed = mix_batch(x, targets_of(labels.to(ctx.device, non_blocking=True)), ctx.augment, mix_generator)
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=ctx.bf16):
            logits = model(mixed.images)
        loss = mixed.lam * weighted_loss(logits, mixed.targets_a, ctx.loss)
        if mixed.lam < 1.0:
            loss = loss + (1.0 - mixed.lam) * weighted_loss(logits, mixed.targets_b, ctx.loss)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"loss is {loss.item()} at epoch {epoch}, batch {step}; last.pt keeps the last good epoch")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if ctx.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.detach() * len(images)
        seen += len(images)
        if step % 10 == 0 and ctx.dist.is_main:
            # refresh=False: the bar shows it at its own next refresh. Refreshing here would print a
            # line every 10 steps into a log file and show a stale step count (tqdm syncs it lazily).
            rate = seen * ctx.dist.world_size / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{rate:.0f}", refresh=False)
    totals = all_gather((float(loss_sum), seen), ctx.dist)
    all_seen = sum(n for _, n in totals)
    return sum(s for s, _ in totals) / max(all_seen, 1), all_seen / (time.perf_counter() - start)


@dataclass(frozen=True)
class Evaluation:
    """Validation outputs: probabilities per component in dataset order, loss and the metric."""

    indices: np.ndarray
    probabilities: dict[str, np.ndarray]
    loss: float
    recalls: dict[str, float]
    score: float


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    labels: np.ndarray,
    ctx: StepContext,
) -> Evaluation:
    """Predict every validation image (sharded over ranks), then score the whole set at once."""
    model.eval()
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    for images, _, indices in loader:
        x = to_model_input(images, ctx.data, ctx.device, ctx.channels_last)
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=ctx.bf16):
            logits = model(x)
        parts.append((indices.numpy(), {n: torch.softmax(logits[n].float(), 1).cpu().numpy() for n in COMPONENTS}))
    gathered = [p for rank_parts in all_gather(parts, ctx.dist) for p in rank_parts]
    indices = np.concatenate([i for i, _ in gathered])
    order = np.argsort(indices, kind="stable")
    probabilities = {n: np.concatenate([p[n] for _, p in gathered])[order] for n in COMPONENTS}
    indices = indices[order]
    y_true = {n: labels[indices, i] for i, n in enumerate(COMPONENTS)}
    y_pred = {n: probabilities[n].argmax(1) for n in COMPONENTS}
    result = competition_score(y_true, y_pred)
    loss = sum(
        w * float(F.nll_loss(torch.log(torch.from_numpy(probabilities[n]).clamp_min(1e-12)), torch.from_numpy(y_true[n])))
        for w, n in zip(ctx.loss.weights, COMPONENTS, strict=True)
    ) / sum(ctx.loss.weights)
    recalls = {n: float(getattr(result, n)) for n in COMPONENTS}
    return Evaluation(indices, probabilities, loss, recalls, float(result.score))
