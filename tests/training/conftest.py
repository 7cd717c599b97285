"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import write_pattern_dataset


@pytest.fixture
def pattern_dataset(tmp_path: Path) -> Path:
    """A 240-image pattern dataset in competition format."""
    write_pattern_dataset(tmp_path / "input", 240)
    return tmp_path / "input"
