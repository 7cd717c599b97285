"""Learning-rate schedules and parameter groups."""

from __future__ import annotations

import pytest
import torch

from bengaliai.training.optim import OptimConfig, build_ema, build_optimizer, build_scheduler, lr_factor


def test_warmup_then_cosine_to_the_floor() -> None:
    config = OptimConfig(schedule="cosine", min_lr_ratio=0.01)
    factors = [lr_factor(step, 100, 10, config) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.01, abs=1e-3)


def test_onecycle_peaks_at_thirty_percent() -> None:
    config = OptimConfig(schedule="onecycle")
    factors = [lr_factor(step, 100, 0, config) for step in range(100)]
    assert max(range(100), key=factors.__getitem__) == 30


def test_scheduler_and_no_decay_groups() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = build_optimizer(model, OptimConfig(lr=0.1, weight_decay=0.05))
    decay, no_decay = optimizer.param_groups
    assert [p.ndim for p in decay["params"]] == [4] and decay["weight_decay"] == 0.05
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3
    scheduler = build_scheduler(optimizer, OptimConfig(lr=0.1, warmup_epochs=1), steps_per_epoch=4, epochs=3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_ema_follows_the_weights() -> None:
    assert build_ema(torch.nn.Linear(2, 2), 0.0) is None
    model = torch.nn.Linear(2, 2)
    ema = build_ema(model, 0.75)
    ema.update_parameters(model)  # the first update copies the weights
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)
    assert torch.allclose(ema.module.weight, 0.75 * before + 0.25 * model.weight)
