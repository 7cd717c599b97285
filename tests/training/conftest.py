"""Fixtures of the training tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bengaliai.training import engine

from builders import write_pattern_dataset


@pytest.fixture
def pattern_dataset(tmp_path: Path) -> Path:
    """A 240-image pattern dataset in competition format."""
    write_pattern_dataset(tmp_path / "input", 240)
    return tmp_path / "input"


@pytest.fixture
def crash_at_batch(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Callable[[], None]]:
    """``crash_at_batch(n)``: the n-th batch that training or evaluation moves to the model raises
    KeyboardInterrupt, as a Ctrl-C or a killed session would stop a run mid-epoch. It returns the function
    that lets batches through again, for the resume."""

    def arm(n: int) -> Callable[[], None]:
        calls = {"n": 0}
        real = engine.to_model_input

        def crash(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(engine, "to_model_input", crash)
        return lambda: monkeypatch.setattr(engine, "to_model_input", real)

    return arm
