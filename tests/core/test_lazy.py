"""Each subpackage's __init__ names its entry points and loads them only on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

STAGES = ("core", "compute", "data", "model", "synth", "handwriting", "evaluation", "training", "inference", "kaggle")


@pytest.mark.parametrize("stage", STAGES)
def test_every_named_entry_point_resolves_to_its_own_module(stage: str) -> None:
    package = importlib.import_module(f"bengaliai.{stage}")
    assert package.__all__, f"bengaliai.{stage} names no entry point"
    for name in package.__all__:
        value = getattr(package, name)
        module = importlib.import_module(f"bengaliai.{stage}.{package._EXPORTS[name]}")
        assert value is getattr(module, name)
        # a name equal to a submodule's would be shadowed by that submodule once it is imported
        assert importlib.util.find_spec(f"bengaliai.{stage}.{name}") is None
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        package.nonexistent  # noqa: B018


def test_importing_the_stages_and_the_cli_loads_no_torch() -> None:
    code = (
        "import sys\n"
        + "".join(f"import bengaliai.{stage}\n" for stage in STAGES)
        + "import bengaliai.cli.main\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
