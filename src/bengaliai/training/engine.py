"""One training epoch and one evaluation pass: the loss, the loop, the metric on the whole set."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bengaliai.compute.distributed import DistInfo, all_gather
from bengaliai.compute.precision import Precision
from bengaliai.core.competition import COMPONENTS
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.supervision import IGNORED, UNSEEN
from bengaliai.evaluation.metric import competition_score
from bengaliai.evaluation.routing import AUX_KEYS, aux_summary
from bengaliai.model.classifier import AUX_HEAD
from bengaliai.training.augment import AugmentConfig, mix_batch
from bengaliai.training.augment_device import batch_seed
from bengaliai.training.ema import WeightEma
from bengaliai.training.inputs import DataConfig
from bengaliai.training.loader import to_model_input

# NonFiniteLoss and TooManySkippedSteps: what the loop stops with, importable from here as before.
from bengaliai.training.step_watch import CHECK_EVERY, NonFiniteLoss, StepWatch, TooManySkippedSteps  # noqa: F401

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossConfig:
    """Cross-entropy per head, weighted like the metric (root counts double).

    ``outlier_weight`` (outlier exposure, Hendrycks et al. 2019) teaches the auxiliary grapheme head a
    flat distribution on images of graphemes outside the 1,295 (an extra source of unseen renders,
    ``synth --graphemes unseen``), so that its confidence separates seen from unseen graphemes for
    routing; 0 leaves those images out of the head's loss.
    """

    weights: tuple[float, ...] = (2.0, 1.0, 1.0)
    label_smoothing: float = 0.0
    aux_weight: float = 0.5
    outlier_weight: float = 0.0

    def __post_init__(self) -> None:
        if len(self.weights) != len(COMPONENTS) or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise BengaliaiError(f"loss.weights: expected {len(COMPONENTS)} non-negative weights, got {list(self.weights)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise BengaliaiError(f"loss.label_smoothing: expected 0 <= value < 1, got {self.label_smoothing}")
        for name in ("aux_weight", "outlier_weight"):
            if getattr(self, name) < 0:
                raise BengaliaiError(f"loss.{name}: expected >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class StepContext:
    """What the loop needs besides the model: device, precision and the data settings.

    ``scaler`` is the GradScaler of fp16 training (None otherwise); a step it skips for inf or nan
    gradients is counted, not an error (``step_watch``). ``device_augment``, when set,
    augments each batch on the device (``augment.where=device``) with a generator seeded per
    (``seed``, epoch, batch, rank), so a resumed epoch replays exactly.
    """

    device: torch.device
    precision: Precision
    channels_last: bool
    data: DataConfig
    augment: AugmentConfig
    loss: LossConfig
    grad_clip: float
    dist: DistInfo
    scaler: torch.amp.GradScaler | None = None
    device_augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    seed: int = 0
    check_every: int = CHECK_EVERY


def targets_of(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split a (B, 3 or 4) label tensor into named targets (the 4th column is the seen-grapheme index)."""
    targets = {name: labels[:, i] for i, name in enumerate(COMPONENTS)}
    if labels.shape[1] > len(COMPONENTS):
        targets["grapheme"] = labels[:, len(COMPONENTS)]
    return targets


def weighted_loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], config: LossConfig) -> torch.Tensor:
    """Sum of per-head cross-entropies, weighted 2:1:1 over the components (+ the auxiliary head).

    Each head's cross-entropy is the mean over the rows that supervise it: a row whose target is
    ``heads.IGNORED`` (an extra source with ``data.extra_heads`` leaving that head out) does not count.
    """
    total = sum(
        w * masked_cross_entropy(logits[name].float(), targets[name], config.label_smoothing)
        for w, name in zip(config.weights, COMPONENTS, strict=True)
    )
    if "grapheme" in logits and "grapheme" in targets:
        # Graphemes unseen in the real training set (heads.UNSEEN) and rows that do not supervise the
        # grapheme (heads.AUX_IGNORED) do not count.
        seen = targets["grapheme"].clamp_min(IGNORED)
        total = total + config.aux_weight * masked_cross_entropy(logits["grapheme"].float(), seen, 0.0)
        if config.outlier_weight > 0:
            total = total + config.outlier_weight * outlier_loss(logits["grapheme"].float(), targets["grapheme"])
    return total / sum(config.weights)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Cross-entropy averaged over the rows whose target is not ``IGNORED``; 0 (not NaN) when none is.

    Without a host sync: the count is a tensor, clamped to 1.
    """
    summed = F.cross_entropy(logits, target, ignore_index=IGNORED, label_smoothing=label_smoothing, reduction="sum")
    return summed / (target != IGNORED).sum().clamp_min(1).to(summed.dtype)


def outlier_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy to the uniform distribution over the rows whose target is ``UNSEEN`` (0 if none).

    Computed without a host sync: the count is a tensor, clamped to 1.
    """
    outside = (target == UNSEEN).to(logits.dtype)
    flat = -F.log_softmax(logits, 1).mean(1)
    return (flat * outside).sum() / outside.sum().clamp_min(1.0)


def _augment_generator(ctx: StepContext) -> torch.Generator | None:
    if ctx.device_augment is None:
        return None
    return torch.Generator(device=ctx.device)


def train_one_epoch(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: WeightEma | None,
    ctx: StepContext,
    mix_generator: torch.Generator,
    epoch: int,
    total: int,
) -> tuple[float, float, int]:
    """Train over ``loader``; return (mean loss, images per second over all ranks, steps the fp16 scaler skipped).

    Nothing in a step waits for the device (``step_watch``): the loss sum, the non-finite flag and
    the fp16 steps skipped stay on the device, read every ``ctx.check_every`` steps and at the end (on
    every rank at once under torchrun), and the loss when the progress bar is about to show it. The
    mean leaves out non-finite losses (steps the fp16 scaler skipped).
    """
    model.train()
    watch = StepWatch(ctx.device, ctx.scaler, ctx.dist, ctx.check_every)
    seen, start = 0, time.perf_counter()
    shown_at = start
    augment_generator = _augment_generator(ctx)
    bar = tqdm(
        loader, total=total, desc=f"epoch {epoch}", leave=False, disable=not ctx.dist.is_main, unit="batch",
        # In a log file (nohup, a Kaggle commit) every refresh is a new line: refresh rarely there.
        mininterval=0.5 if sys.stderr.isatty() else 60.0,
    )
    step = -1
    for step, (images, labels, _) in enumerate(bar):
        if augment_generator is not None:
            augment_generator.manual_seed(batch_seed(ctx.seed, epoch, step, ctx.dist.rank))
        x = to_model_input(images, ctx.data, ctx.device, ctx.channels_last, ctx.device_augment, augment_generator)
        mixed = mix_batch(x, targets_of(labels.to(ctx.device, non_blocking=True)), ctx.augment, mix_generator)
        with torch.autocast(ctx.device.type, dtype=ctx.precision.dtype, enabled=ctx.precision.autocast):
            logits = model(mixed.images)
        loss = mixed.lam * weighted_loss(logits, mixed.targets_a, ctx.loss)
        if mixed.lam < 1.0:
            loss = loss + (1.0 - mixed.lam) * weighted_loss(logits, mixed.targets_b, ctx.loss)
        optimizer.zero_grad(set_to_none=True)
        skipped = _backward_and_step(loss, model, optimizer, ctx)
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        watch.record(loss, len(images), skipped)
        seen += len(images)
        watch.stepped(epoch, step)
        now = time.perf_counter()
        if ctx.dist.is_main and now - shown_at >= bar.mininterval:
            # Read the loss (a device sync) only as often as the bar can show it. refresh=False: the
            # bar shows it at its own next refresh (refreshing here would add lines to a log file).
            shown_at = now
            bar.set_postfix(_progress(loss, watch, seen * ctx.dist.world_size / (now - start)), refresh=False)
    loss_sum, counted, skipped_steps = watch.finish(epoch, step)
    totals = all_gather((loss_sum, counted, seen), ctx.dist)
    all_counted, all_seen = sum(c for _, c, _ in totals), sum(n for _, _, n in totals)
    mean = sum(s for s, _, _ in totals) / all_counted if all_counted else (math.nan if all_seen else 0.0)
    # Every rank skips the same steps (the gradients are all-reduced before the scaler looks at them).
    return mean, all_seen / (time.perf_counter() - start), skipped_steps


def _progress(loss: torch.Tensor, watch: StepWatch, rate: float) -> dict[str, str]:
    """What the progress bar shows (a host read: only as often as it refreshes)."""
    shown = {"loss": f"{loss.item():.3f}", "img_s": f"{rate:.0f}"}
    return shown | ({"skipped": str(watch.skipped())} if watch.scaler is not None else {})


def _backward_and_step(
    loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: StepContext
) -> torch.Tensor | None:
    """Backward, clip, step; with fp16 through the GradScaler (unscaled before clipping).

    With a scaler, returns whether it skipped the step for inf or nan gradients (a device tensor:
    its scale went down), which is normal loss scaling, not an error; None without one.
    """
    if ctx.scaler is None:
        loss.backward()
        if ctx.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
        optimizer.step()
        return None
    ctx.scaler.scale(loss).backward()
    if ctx.grad_clip > 0:
        ctx.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), ctx.grad_clip)
    ctx.scaler.step(optimizer)
    # The scale as a device tensor through the public API (get_scale() would wait for the device):
    # update() multiplies it by the backoff factor (< 1) exactly when the step was skipped.
    one = torch.ones((), device=loss.device)
    before = ctx.scaler.scale(one)
    ctx.scaler.update()
    return ctx.scaler.scale(one) < before


@dataclass(frozen=True)
class Evaluation:
    """Validation outputs: probabilities per component in dataset order, loss and the metric."""

    indices: np.ndarray
    probabilities: dict[str, np.ndarray]
    loss: float
    recalls: dict[str, float]
    score: float
    # What routing needs of the auxiliary grapheme head (routing.AUX_KEYS), when the model has one.
    aux: dict[str, np.ndarray] | None = None


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
        with torch.autocast(ctx.device.type, dtype=ctx.precision.dtype, enabled=ctx.precision.autocast):
            logits = model(x)
        outputs = {n: torch.softmax(logits[n].float(), 1).cpu().numpy() for n in COMPONENTS}
        if AUX_HEAD in logits:
            # Only the top graphemes and the logsumexp: the 1295 probabilities would make oof.npz 200 MB a fold.
            aux_logits = logits[AUX_HEAD].float()
            outputs |= aux_summary(torch.softmax(aux_logits, 1), torch.logsumexp(aux_logits, 1))
        parts.append((indices.numpy(), outputs))
    gathered = [p for rank_parts in all_gather(parts, ctx.dist) for p in rank_parts]
    indices = np.concatenate([i for i, _ in gathered])
    order = np.argsort(indices, kind="stable")
    probabilities = {n: np.concatenate([p[n] for _, p in gathered])[order] for n in COMPONENTS}
    aux = None
    if AUX_KEYS[0] in gathered[0][1]:
        aux = {key: np.concatenate([p[key] for _, p in gathered])[order] for key in AUX_KEYS}
    indices = indices[order]
    y_true = {n: labels[indices, i] for i, n in enumerate(COMPONENTS)}
    y_pred = {n: probabilities[n].argmax(1) for n in COMPONENTS}
    result = competition_score(y_true, y_pred)
    loss = sum(
        w * float(F.nll_loss(torch.log(torch.from_numpy(probabilities[n]).clamp_min(1e-12)), torch.from_numpy(y_true[n])))
        for w, n in zip(ctx.loss.weights, COMPONENTS, strict=True)
    ) / sum(ctx.loss.weights)
    recalls = {n: float(getattr(result, n)) for n in COMPONENTS}
    return Evaluation(indices, probabilities, loss, recalls, float(result.score), aux)
