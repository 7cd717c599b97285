"""Checkpoints hold tensors and plain values only, and are read without running code; random states saved in
one restore on any device, from whatever the loader mapped them to."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bengaliai.core.errors import BengaliaiError
from bengaliai.model.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from bengaliai.model.classifier import ModelConfig


def _touch(path: str) -> None:
    Path(path).write_text("ran", encoding="utf-8")


class _RunsCode:
    """Unpickling it calls ``_touch``: what a hostile checkpoint does with ``os.system`` instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _touch, (str(self.marker),)


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


def test_saved_random_states_are_plain_values(tmp_path: Path) -> None:
    """numpy's state is saved as a list: torch reads the file with weights_only and no allow-listed global."""
    torch.manual_seed(4)
    save_checkpoint({"rng": rng_state()}, tmp_path / "last.pt")
    expected = _draws()
    set_rng_state(torch.load(tmp_path / "last.pt", weights_only=True)["rng"])
    assert _draws() == expected


@pytest.mark.parametrize("numpy_module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_older_checkpoints_holding_numpy_state_arrays_are_still_read_and_replay(
    tmp_path: Path, numpy_module: str
) -> None:
    """Checkpoints written before hold np.random.get_state() itself: an array, pickled by numpy 2 (numpy._core)
    or numpy 1 (numpy.core). Exactly numpy's array reconstruction is allowed for them."""
    torch.manual_seed(6)
    older = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save({"rng": older}, tmp_path / "last.pt", _use_new_zipfile_serialization=False)
    data = (tmp_path / "last.pt").read_bytes()
    assert data.count(b"numpy._core.multiarray\n_reconstruct\n") == 1  # a protocol 2 GLOBAL: module, then name
    (tmp_path / "last.pt").write_bytes(data.replace(b"numpy._core.multiarray\n", f"{numpy_module}\n".encode()))
    expected = _draws()
    _draws()
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    assert _draws() == expected


@pytest.mark.parametrize("payload", ["code", "config"])
def test_a_checkpoint_carrying_pickled_objects_is_refused_in_one_line_and_runs_nothing(
    tmp_path: Path, payload: str
) -> None:
    marker = tmp_path / "marker"
    if payload == "code":
        value: object = _RunsCode(marker)
        named = f"{_touch.__module__}._touch"
    else:
        value, named = ModelConfig(), "bengaliai.model.classifier.ModelConfig"
    path = tmp_path / "best.pt"
    save_checkpoint({"weights": {"w": torch.zeros(2)}, "extra": value}, path)
    with pytest.raises(BengaliaiError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == (
        f"{path}: refused: it holds pickled Python objects ({named}), which can run code when loaded; only "
        "checkpoints of tensors and plain values are read"
    )
    assert not marker.exists()
    if payload == "code":  # what full unpickling would have done
        torch.load(path, weights_only=False)
        assert marker.read_text(encoding="utf-8") == "ran"


def test_a_torn_checkpoint_is_named_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"w": torch.zeros(3)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BengaliaiError, match=rf"^{re.escape(str(path))}: cannot read this checkpoint \(") as raised:
        load_checkpoint(path)
    assert len(str(raised.value).splitlines()) == 1


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
