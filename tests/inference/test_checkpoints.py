"""The folds of a run an ensemble takes: missing folds and runs are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bengaliai.core.errors import BengaliaiError
from bengaliai.inference.checkpoints import fold_checkpoints


def test_missing_folds_and_runs_are_named(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match=r"no best.pt for fold\(s\) \[7\]"):
        fold_checkpoints(tiny_run, "0,7")
    with pytest.raises(BengaliaiError, match="pass runs/<experiment>"):
        fold_checkpoints(tiny_run / "fold0", "all")
    with pytest.raises(BengaliaiError, match="no fold<K>/best.pt"):
        fold_checkpoints(tmp_path, "all")
