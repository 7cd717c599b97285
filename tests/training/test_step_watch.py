"""The training step waits for nothing: under fp16 an overflow is skipped by the GradScaler, counted and logged
(only a long run of skips stops training), and neither the EMA nor the skip count reads a device value on the host
between the check points."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

from bengaliai.compute.distributed import DistInfo
from bengaliai.compute.precision import Precision
from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.training import augment, engine, step_watch
from bengaliai.training.augment import AugmentConfig
from bengaliai.training.engine import LossConfig, StepContext, train_one_epoch
from bengaliai.training.inputs import DataConfig
from bengaliai.training.optim import build_ema

# The modules whose code runs a training step; a host read anywhere below them counts (torch's own too).
WATCHED = {"bengaliai.training.engine", "bengaliai.training.ema", "bengaliai.training.step_watch"}
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "__array__")
INIT_SCALE = 2.0**10


class _Net(torch.nn.Module):
    """Heads on a BatchNorm, so the EMA averages float buffers and copies an integer one."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(64)
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(64, N_CLASSES[name]) for name in COMPONENTS})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = self.norm(x.flatten(1))
        return {name: head(flat) for name, head in self.heads.items()}


def _batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=generator),
         torch.stack([torch.randint(0, N_CLASSES[name], (4,), generator=generator) for name in COMPONENTS], 1),
         torch.arange(4))
        for _ in range(steps)
    ]


def _context(precision: str, check_every: int) -> StepContext:
    scaler = torch.amp.GradScaler("cpu", init_scale=INIT_SCALE) if precision == "fp16" else None
    return StepContext(
        device=torch.device("cpu"), precision=Precision(precision, "test"), channels_last=False, data=DataConfig(),
        augment=AugmentConfig(cutmix_p=0.0, mixup_p=0.0), loss=LossConfig(), grad_clip=1.0, dist=DistInfo(),
        scaler=scaler, check_every=check_every,
    )


def _infinite_at(monkeypatch: pytest.MonkeyPatch, steps: set[int]) -> None:
    """The loss of the given steps (0-based; one loss per step without CutMix) is +inf."""
    real, calls = engine.weighted_loss, {"n": -1}

    def loss(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("inf") if calls["n"] in steps else value

    monkeypatch.setattr(engine, "weighted_loss", loss)


def _run(ctx: StepContext, steps: int, ema_decay: float = 0.0) -> tuple[float, torch.nn.Module, Any]:
    torch.manual_seed(0)
    model = _Net()
    # Fused AdamW, as build_optimizer makes it on CUDA: with a GradScaler it skips a step on the device.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    ema = build_ema(model, ema_decay)
    generator = torch.Generator().manual_seed(0)
    loss, _, skipped = train_one_epoch(model, _batches(steps), optimizer, scheduler, ema, ctx, generator, epoch=0, total=steps)
    assert skipped == (0 if ctx.scaler is None else round(math.log2(INIT_SCALE / ctx.scaler.get_scale())))
    return loss, model, ema


@contextmanager
def _no_host_reads(monkeypatch: pytest.MonkeyPatch, allowed: list[Callable[..., Any]]) -> Iterator[list[str]]:
    """Every host read of a tensor under a training step raises, except inside ``allowed`` (the check and
    logging points, and mix_batch's draws from its CPU generator). Yields the reads made at allowed points."""
    allowed_code = {function.__code__ for function in allowed}
    seen: list[str] = []

    def guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            frame, in_step = sys._getframe(1), False
            while frame is not None:
                if frame.f_code in allowed_code:
                    seen.append(f"{name} in {frame.f_code.co_name}")
                    return real(self, *args, **kwargs)
                in_step = in_step or frame.f_globals.get("__name__") in WATCHED
                frame = frame.f_back
            if in_step:
                raise AssertionError(f"host read Tensor.{name} during a training step")
            return real(self, *args, **kwargs)

        return read

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, guard(name, getattr(torch.Tensor, name)))
    real_scale = torch.amp.GradScaler.get_scale
    monkeypatch.setattr(torch.amp.GradScaler, "get_scale", guard("GradScaler.get_scale", real_scale))
    try:
        yield seen
    finally:
        monkeypatch.undo()


def _allowed() -> list[Callable[..., Any]]:
    return [step_watch.StepWatch.check, step_watch.StepWatch.finish, engine._progress, augment.mix_batch]


def test_the_guard_catches_a_host_read_in_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    real = step_watch.StepWatch.record
    monkeypatch.setattr(step_watch.StepWatch, "record", lambda self, loss, *rest: real(self, loss, *rest) or loss.item())
    with _no_host_reads(monkeypatch, _allowed()), pytest.raises(AssertionError, match="host read Tensor.item"):
        _run(_context("fp16", check_every=50), steps=2)


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_steps_with_ema_read_the_device_only_at_the_check_points(monkeypatch: pytest.MonkeyPatch, precision: str) -> None:
    if precision == "fp16":
        _infinite_at(monkeypatch, {2})
    with _no_host_reads(monkeypatch, _allowed()) as reads:
        loss, model, ema = _run(_context(precision, check_every=4), steps=10, ema_decay=0.9)
    assert loss > 0 and ema.updates == 10
    assert int(ema.module.norm.num_batches_tracked) == 10
    assert all(torch.isfinite(p).all() for p in [*model.parameters(), *ema.module.parameters()])
    # After steps 3 and 7 and at the epoch's end (steps 8-9), then the totals in one read.
    assert [read for read in reads if not read.endswith("in mix_batch")][:4] == ["__bool__ in check"] * 3 + ["tolist in finish"]


def test_fp16_skips_overflowed_steps_counts_and_logs_them_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(step_watch, "MAX_CONSECUTIVE_SKIPS", 3)
    _infinite_at(monkeypatch, {2, 3, 5, 6})  # never 3 in a row
    ctx = _context("fp16", check_every=4)
    with caplog.at_level(logging.INFO, logger="bengaliai.training.step_watch"):
        loss, model, _ = _run(ctx, steps=10)
    # Each skip halves the scale (no growth within 2000 steps); the mean is over the 6 finite losses.
    assert ctx.scaler.get_scale() == INIT_SCALE / 2**4
    assert 0 < loss < float("inf")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert "epoch 0: fp16 loss scaling skipped 4 of 10 steps (inf or nan gradients); loss scale now 64" in caplog.text


def test_fp16_stops_after_too_many_skips_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_watch, "MAX_CONSECUTIVE_SKIPS", 3)
    _infinite_at(monkeypatch, set(range(2, 8)))
    with pytest.raises(engine.TooManySkippedSteps) as stopped:
        _run(_context("fp16", check_every=4), steps=10)
    assert isinstance(stopped.value, engine.NonFiniteLoss)
    assert str(stopped.value) == (
        "fp16 loss scaling skipped 6 steps in a row for inf or nan gradients at epoch 0, batches 4-7 (loss scale now "
        "16): training diverged; last.pt keeps the last good epoch (a lower optim.lr, or precision=bf16 or fp32, may train)"
    )


@pytest.mark.parametrize(("infinite", "batches"), [(5, "batches 4-7"), (9, "batches 8-9")])
def test_without_a_scaler_a_non_finite_loss_still_stops_at_the_next_check(
    monkeypatch: pytest.MonkeyPatch, infinite: int, batches: str
) -> None:
    _infinite_at(monkeypatch, {infinite})
    with pytest.raises(engine.NonFiniteLoss, match=rf"^loss is nan or inf at epoch 0, {batches}; last.pt keeps the last good"):
        _run(_context("fp32", check_every=4), steps=10)
