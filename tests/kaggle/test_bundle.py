"""The kernel's bundle: reproducible, Python sources only, exactly the subpackages the runtime may import."""

from __future__ import annotations

from bengaliai.kaggle.bundle import KERNEL_PACKAGES, bundle_package


def test_bundle_is_reproducible_and_holds_only_sources() -> None:
    import io
    import zipfile

    first, second = bundle_package(), bundle_package()
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "bengaliai/inference/predict.py" in names and "bengaliai/kaggle/kernel_runtime.py" in names
    assert all(name.endswith(".py") for name in names)
    # every stage the runtime may import, with its __init__; none of those it never imports
    packages = {name.split("/")[1] for name in names if name.count("/") == 2}
    assert packages == set(KERNEL_PACKAGES)
    assert all(f"bengaliai/{package}/__init__.py" in names for package in packages)
    assert not packages & {"synth", "handwriting", "training", "cli"}
