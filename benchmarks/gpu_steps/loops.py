"""The timed training loops of benchmarks/gpu_check.py: step 2 (precision), step 4 (throughput), and the pieces
step 6 times again on the compiled model (the model alone on device batches, the whole loop over the real loader)."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from bengaliai.compute.distributed import DistInfo
from bengaliai.compute.precision import grad_scaler, resolve_precision
from bengaliai.core.competition import TRAIN_CSV
from bengaliai.data.labels import read_train_labels
from bengaliai.model.classifier import ModelConfig, build_model
from bengaliai.model.resnet import ARCHITECTURES
from bengaliai.training import engine
from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment
from bengaliai.training.ema import WeightEma
from bengaliai.training.engine import LossConfig, StepContext
from bengaliai.training.inputs import DataConfig
from bengaliai.training.loader import AugmentedBatches, EpochBatches, make_loader, open_cache
from bengaliai.training.optim import OptimConfig, build_ema, build_optimizer, build_scheduler
from bengaliai.training.sources import align_labels

from gpu_steps.data import device_batches
from gpu_steps.runner import Check
from gpu_steps.settings import EMA_DECAY, LOOP_AUGMENT, OTHER_ARCH, TARGET_LOOP_RATE, TARGET_RATIO, Result

# ---------------------------------------------------------------- shared pieces


def step_context(check: Check, precision_name: str, augment: AugmentConfig) -> StepContext:
    """What train() gives the loop: channels_last, a GradScaler for fp16, device augmentation if asked for."""
    precision = resolve_precision(precision_name, check.device)
    device_augment = DeviceAugment(augment) if augment.where == "device" else None
    return StepContext(
        check.device, precision, True, DataConfig(), augment, LossConfig(), OptimConfig().grad_clip, DistInfo(),
        scaler=grad_scaler(precision, check.device), device_augment=device_augment,
    )


def new_model(check: Check, arch: str | None = None) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    """The model of ``check.sizes`` (or another ``arch`` at its width), channels_last, its optimizer and schedule."""
    torch.manual_seed(0)
    s = check.sizes
    model = build_model(ModelConfig(arch=arch or s.arch, base_width=s.width)).to(check.device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, OptimConfig())
    return model, optimizer, build_scheduler(optimizer, OptimConfig(), 1000, 1)


def run_epoch(
    model: torch.nn.Module, batches: Iterable[Any], optimizer: Any, scheduler: Any, ctx: StepContext, epoch: int, total: int,
    ema: WeightEma | None = None,
) -> tuple[float, float]:
    """engine.train_one_epoch as training calls it: (mean loss, images/s, measured after a device sync)."""
    mix_generator = torch.Generator().manual_seed(epoch)
    loss, rate, _ = engine.train_one_epoch(model, batches, optimizer, scheduler, ema, ctx, mix_generator, epoch, total)
    return loss, rate


def cycled(batches: list[Any], n: int) -> list[Any]:
    return [batches[i % len(batches)] for i in range(n)]


def train_loader(check: Check, where: str) -> tuple[torch.utils.data.DataLoader, EpochBatches, AugmentConfig]:
    """The training loader on the prepared cache, its indices repeated to cover warm-up + timed steps."""
    s, input_dir = check.sizes, check.dataset()
    store = open_cache(input_dir, f"crop{s.size}", "train")
    labels = align_labels(store, read_train_labels(input_dir / TRAIN_CSV), input_dir / TRAIN_CSV)
    augment = dataclasses.replace(LOOP_AUGMENT, where=where)
    indices = np.resize(np.arange(len(store)), (s.warmup + s.loop_steps) * s.batch)
    sampler = EpochBatches(indices, s.batch, seed=0)
    dataset = AugmentedBatches(store, labels, build_transform(augment), seed=0)
    return make_loader(dataset, sampler, check.plan.workers, pin_memory=check.cuda), sampler, augment


# ---------------------------------------------------------------- 2 precision


def step_precision(check: Check) -> None:
    s = check.sizes
    batches = device_batches(check.sizes, check.device)

    def steps(name: str) -> Result:
        model, optimizer, scheduler = new_model(check)
        ctx = step_context(check, name, LOOP_AUGMENT)  # the step alone: CutMix, no per-image augmentation
        run_epoch(model, cycled(batches, s.warmup), optimizer, scheduler, ctx, 0, s.warmup)
        loss, rate = run_epoch(model, cycled(batches, s.steps), optimizer, scheduler, ctx, 1, s.steps)
        finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
        scale = ctx.scaler.get_scale() if ctx.scaler is not None else None
        ok = math.isfinite(loss) and finite and (scale is None or 0 < scale < math.inf)
        text = (f"{ctx.precision.name}: mean loss {loss:.3f} over {s.steps} steps, weights finite: {finite}, "
                f"{rate:,.0f} img/s")
        if scale is not None:
            text += f", GradScaler scale {scale:g} after {s.warmup + s.steps} steps (starts at 65536)"
        raw = {"loss": loss, "images_per_s": rate, "weights_finite": finite, "scale": scale}
        return ("ok" if ok else "FAIL"), text, raw

    for name, label in (("bf16", "bf16"), ("fp16", "fp16 + GradScaler")):
        check.attempt("precision", f"{s.arch} {s.size}px batch {s.batch}, {label}", lambda name=name: steps(name))


# ---------------------------------------------------------------- 4 throughput (and the compiled loops of 6)


def model_only(check: Check, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> Result:
    s = check.sizes
    ctx = step_context(check, "auto", LOOP_AUGMENT)
    batches = device_batches(check.sizes, check.device)
    run_epoch(model, cycled(batches, s.warmup), optimizer, scheduler, ctx, 0, s.warmup)
    _, rate = run_epoch(model, cycled(batches, s.steps), optimizer, scheduler, ctx, 1, s.steps)
    text = f"{rate:,.0f} img/s ({ctx.precision.name}, channels_last, CutMix, batches already on the device)"
    return "ok", text, {"images_per_s": rate}


def other_arch(check: Check, arch: str) -> Result:
    """The model alone (``model_only``) for another architecture of model.resnet."""
    model, optimizer, scheduler = new_model(check, arch)
    status, text, raw = model_only(check, model, optimizer, scheduler)
    parameters = sum(p.numel() for p in model.parameters())
    return status, f"{text}, {parameters / 1e6:.1f} M parameters", raw | {"parameters": parameters}


def whole_loop(
    check: Check, where: str, model: torch.nn.Module, optimizer: Any, scheduler: Any, reference: float | None,
    ema_decay: float = 0.0,
) -> Result:
    s = check.sizes
    loader, sampler, augment = train_loader(check, where)
    ctx = step_context(check, "auto", augment)
    # A fresh average, as train() starts one; its first update copies the model.
    ema = build_ema(model, ema_decay)
    try:
        sampler.set_epoch(0)
        run_epoch(model, itertools.islice(loader, s.warmup), optimizer, scheduler, ctx, 0, s.warmup, ema)
        sampler.set_epoch(1)
        _, rate = run_epoch(model, itertools.islice(loader, s.loop_steps), optimizer, scheduler, ctx, 1, s.loop_steps, ema)
    finally:
        del loader
        gc.collect()
    raw: dict[str, Any] = {"images_per_s": rate, "workers": check.plan.workers, "ema_decay": ema_decay}
    text = f"{rate:,.0f} img/s, loader workers: {check.plan.workers}"
    status = "ok"
    if reference:
        raw["ratio"] = rate / reference
        text += f", {rate / reference:.0%} of the model alone"
        if check.cuda and (rate < TARGET_LOOP_RATE or rate / reference < TARGET_RATIO):
            status = "below target"
    return status, text, raw


def loader_alone(check: Check) -> Result:
    s = check.sizes
    loader, sampler, _ = train_loader(check, "loader")
    try:
        sampler.set_epoch(0)
        for _ in itertools.islice(loader, s.warmup):
            pass
        sampler.set_epoch(1)
        start, seen = time.perf_counter(), 0
        for images, _, _ in itertools.islice(loader, s.loop_steps):
            seen += len(images)
        rate = seen / (time.perf_counter() - start)
    finally:
        del loader
        gc.collect()
    text = f"{rate:,.0f} img/s, loader workers: {check.plan.workers}, pinned: {check.cuda}"
    return "info", text, {"images_per_s": rate}


def step_throughput(check: Check) -> None:
    s, step = check.sizes, "throughput"
    name = f"{s.arch} {s.size}px batch {s.batch}"
    model, optimizer, scheduler = new_model(check)
    eager = check.attempt(step, f"model only, eager: {name}", lambda: model_only(check, model, optimizer, scheduler))
    reference = eager["images_per_s"] if eager else None
    check.attempt(step, "loader alone (albumentations in the workers)", lambda: loader_alone(check))
    for where in ("loader", "device"):
        check.attempt(step, f"whole loop, eager, augment.where={where}",
                      lambda where=where: whole_loop(check, where, model, optimizer, scheduler, reference))
    # As configs/resnet34.yaml trains: the EMA updated after every step (the rows above run without one).
    check.attempt(step, f"whole loop, eager, augment.where=device, EMA {EMA_DECAY}",
                  lambda: whole_loop(check, "device", model, optimizer, scheduler, reference, EMA_DECAY))
    check.raw[step]["model_only_images_per_s"] = reference
    del model, optimizer, scheduler
    gc.collect()
    other = f"model only, eager: {OTHER_ARCH} {s.size}px batch {s.batch}"
    if OTHER_ARCH in ARCHITECTURES:
        check.attempt(step, other, lambda: other_arch(check, OTHER_ARCH))
    else:
        check.skip(step, other, f"arch not available: model.resnet.ARCHITECTURES has no {OTHER_ARCH} in this checkout")
