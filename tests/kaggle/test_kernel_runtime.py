"""The kernel runtime: what it finds under /kaggle/input, and what it says when something is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.kernel_runtime import run_kernel


def test_kernel_says_what_is_missing_under_kaggle_input(tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "input" / "something").mkdir(parents=True)
    with pytest.raises(BengaliaiError, match="no competition data under .*something"):
        run_kernel(tmp_path)
