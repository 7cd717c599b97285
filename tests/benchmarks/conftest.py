"""Fixtures for the benchmark scripts: the scripts imported as modules, untrained tiny runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from real_writing_builders import write_untrained_run

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def benchmark(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a script of benchmarks/ by name (its siblings importable, as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module


@pytest.fixture(scope="module")
def untrained_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two untrained 2-fold runs: ``alpha`` with an oof.json (score 0.5, seen 0.6), ``beta`` without one.

    Module-scoped and shared: do not modify them.
    """
    runs = tmp_path_factory.mktemp("untrained") / "runs"
    oof = {"score": 0.5, "seen": {"score": 0.6}, "prior": {"alpha": 0.0, "class_counts": None}}
    return write_untrained_run(runs / "alpha", oof=oof), write_untrained_run(runs / "beta")
