"""The weight EMA: the same average as torch's AveragedModel (which training used before), its checkpoints
read both ways, and an old run's last.pt and best.pt still resume and predict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bengaliai.core.config import to_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.inference.ensemble import load_fold_model
from bengaliai.model.checkpoint import load_checkpoint, save_checkpoint
from bengaliai.model.classifier import ModelConfig, build_model
from bengaliai.training.ema import WeightEma
from bengaliai.training.optim import OptimConfig, build_ema, build_optimizer, build_scheduler
from bengaliai.training.run_folder import checkpoint_state, restore
from bengaliai.training.train import TrainConfig

DECAY = 0.9
MODEL = ModelConfig(arch="resnet10", base_width=8)


def _old_ema(model: torch.nn.Module) -> AveragedModel:
    """The EMA as training built it before (optim.build_ema up to issue 22)."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(DECAY), use_buffers=True)


def _train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, emas: list, steps: int, seed: int) -> None:
    """``steps`` SGD steps of ``model`` on random images (BatchNorm in train mode), every EMA updated after each."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        logits = model(torch.randn(4, 1, 16, 16, generator=generator))
        loss = sum(value.float().logsumexp(1).mean() for value in logits.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for ema in emas:
            ema.update_parameters(model)


def _floats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value for name, value in state.items() if value.is_floating_point()}


def test_the_average_matches_averaged_model_over_many_steps_and_copies_integer_buffers() -> None:
    torch.manual_seed(0)
    model = build_model(MODEL).to(memory_format=torch.channels_last)
    old, new = _old_ema(model), build_ema(model, DECAY)
    assert isinstance(new, WeightEma)
    _train_steps(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), [old, new], steps=6, seed=1)

    averaged = new.module.state_dict()
    reference = old.module.state_dict()
    assert averaged.keys() == reference.keys()
    floats = _floats(reference)
    assert any(name.endswith("running_var") for name in floats)  # the BN buffers are averaged too
    for name, value in floats.items():
        assert torch.allclose(averaged[name], value, rtol=1e-6, atol=1e-7), name
        assert not torch.equal(averaged[name], model.state_dict()[name]) or value.abs().max() == 0, name
    # num_batches_tracked follows the model (AveragedModel truncated an average of step counts to an int).
    counts = [name for name, value in averaged.items() if not value.is_floating_point()]
    assert counts and all(int(averaged[name]) == 6 for name in counts)
    assert new.updates == 6 == int(old.n_averaged)
    assert not any(p.requires_grad for p in new.module.parameters())


def test_the_first_update_copies_the_model() -> None:
    model = torch.nn.Linear(3, 2)
    ema = WeightEma(model, 0.99)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)
    assert torch.equal(ema.module.weight, model.weight) and ema.updates == 1
    with pytest.raises(BengaliaiError, match=r"EMA decay must be in \(0, 1\), got 1.0"):
        WeightEma(model, 1.0)


def test_state_dicts_read_both_ways_with_averaged_model() -> None:
    torch.manual_seed(0)
    model = build_model(MODEL)
    old, new = _old_ema(model), WeightEma(model, DECAY)
    _train_steps(model, torch.optim.SGD(model.parameters(), lr=0.1), [old], steps=3, seed=2)

    old_state = old.state_dict()
    assert list(new.state_dict()) == list(old_state)  # the same layout: n_averaged, then module.<name>
    new.load_state_dict(old_state)
    assert new.updates == 3
    for name, value in old.module.state_dict().items():
        assert torch.equal(new.module.state_dict()[name], value), name

    # Both go on alike from there, and what the new one saves an AveragedModel reads.
    _train_steps(model, torch.optim.SGD(model.parameters(), lr=0.1), [old, new], steps=2, seed=3)
    back = _old_ema(build_model(MODEL))
    back.load_state_dict(new.state_dict())
    assert int(back.n_averaged) == 5
    for name, value in _floats(old.module.state_dict()).items():
        assert torch.allclose(back.module.state_dict()[name], value, rtol=1e-6, atol=1e-7), name

    with pytest.raises(BengaliaiError, match=r"EMA state: expected n_averaged and module.<name> keys, no n_averaged"):
        new.load_state_dict({k: v for k, v in old_state.items() if k != "n_averaged"})
    with pytest.raises(BengaliaiError, match=r"unexpected conv1.weight"):
        new.load_state_dict(old_state | {"conv1.weight": torch.zeros(1)})


def test_a_checkpoint_written_with_averaged_model_resumes_and_predicts(tmp_path: Path) -> None:
    """last.pt and best.pt of a run trained before issue 22 (its EMA an AveragedModel)."""
    torch.manual_seed(0)
    config = TrainConfig(model=MODEL, optim=OptimConfig(ema_decay=DECAY))
    model = build_model(MODEL)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, 5, 2)
    old = _old_ema(model)
    _train_steps(model, optimizer, [old], steps=4, seed=4)
    state = checkpoint_state(to_dict(config), 0, 0, 0.5, [], model, optimizer, scheduler, old)
    state["preprocess"] = PreprocessConfig(mode="crop", size=32).to_dict()
    save_checkpoint(state, tmp_path / "last.pt")
    assert set(state["ema"]) == {"n_averaged", *(f"module.{name}" for name in model.state_dict())}

    # Resume: run_folder.restore into today's objects.
    resumed = build_model(MODEL)
    resumed_optimizer = build_optimizer(resumed, config.optim)
    ema = build_ema(resumed, DECAY)
    saved = load_checkpoint(tmp_path / "last.pt", "cpu")
    restore(saved, resumed, resumed_optimizer, build_scheduler(resumed_optimizer, config.optim, 5, 2), ema, None)
    assert ema is not None and ema.updates == 4
    for name, value in old.module.state_dict().items():
        assert torch.equal(ema.module.state_dict()[name], value), name
    # ... and it trains on exactly as the old EMA would have.
    _train_steps(model, optimizer, [old], steps=3, seed=5)
    _train_steps(resumed, resumed_optimizer, [ema], steps=3, seed=5)
    for name, value in _floats(old.module.state_dict()).items():
        assert torch.allclose(ema.module.state_dict()[name], value, rtol=1e-5, atol=1e-6), name

    # Predict: inference loads the weights saved beside it, which are the EMA's.
    fold = load_fold_model(tmp_path / "last.pt", torch.device("cpu"))
    predicted = fold.model.state_dict()
    for name, value in saved["weights"].items():
        assert torch.equal(value, saved["ema"][f"module.{name}"]) and torch.equal(predicted[name], value), name
    with torch.inference_mode():
        logits = fold.model(torch.randn(2, 1, 32, 32))
    assert all(torch.isfinite(value).all() for value in logits.values())
