"""Random states saved in a checkpoint restore on any device, from whatever the loader mapped them to."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from bengaliai.model.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class _DeviceTensor(torch.Tensor):
    """Stands in for a state tensor that ``torch.load(map_location="cuda")`` put on a GPU: anything but a
    CPU ByteTensor is refused by ``torch.set_rng_state``; ``.to("cpu")`` gives the plain bytes back."""


def _draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_restoring_replays_the_same_draws(tmp_path: Path) -> None:
    torch.manual_seed(3)
    save_checkpoint({"rng": rng_state()}, tmp_path / "last.pt")
    expected = _draws()
    _draws()
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    assert _draws() == expected


def test_states_not_on_the_cpu_as_bytes_are_converted_not_refused() -> None:
    torch.manual_seed(5)
    state = rng_state()
    expected = _draws()
    moved = dict(state, torch=state["torch"].to(torch.int64).as_subclass(_DeviceTensor))
    with pytest.raises((TypeError, RuntimeError)):
        torch.set_rng_state(moved["torch"])  # what resuming on a GPU used to do
    set_rng_state(moved)
    assert _draws() == expected


def test_only_the_current_gpus_state_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run saved on 4 GPUs (older checkpoints: a list) resumes on 1; a new one holds one state."""
    restored: list[tuple[list[int], int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state.tolist(), device)))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: pytest.fail("restored every GPU's state"))
    base = rng_state()
    four = [torch.full((4,), k, dtype=torch.uint8) for k in range(4)]
    set_rng_state(dict(base, cuda=four))
    set_rng_state(dict(base, cuda=torch.full((4,), 9, dtype=torch.int64)))
    assert restored == [([0, 0, 0, 0], 0), ([9, 9, 9, 9], 0)]
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 5)
    set_rng_state(dict(base, cuda=four))  # no state saved for this GPU: left as it is
    assert len(restored) == 2
