"""The wheels benchmarks/gpu_check.sh carries to the GPU machine, which reaches no package registry: which ones,
at which versions, and whether a folder holds them all.

    python benchmarks/gpu_steps/wheels.py requirements   # NAME==VERSION of each, as installed here (make gpu-wheels)
    python3 benchmarks/gpu_steps/wheels.py check .whl    # silent and 0 when .whl holds them; else one line and 1

The standard library only: gpu_check.sh runs the check with the device image's python3 before it installs
anything, so a missing wheel costs no device minute.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

# What the device image (Python 3.12, /work/.library/device/KINDS.md) lacks, and why it is needed. Each
# is downloaded with --no-deps: what they need beyond this list, the image has (numpy, scipy,
# scikit-learn, opencv-python-headless, pyyaml).
CARRIED = {
    "albumentations": "the loader's augmentation",
    "albucore": "pinned by albumentations",
    "pydantic": "albumentations' settings",
    "pydantic-core": "pydantic",
    "annotated-types": "pydantic",
    "typing-inspection": "pydantic",
    # The image has one, but pydantic needs >= 4.16; gpu_check.sh installs it only over an older one.
    "typing-extensions": "pydantic (>= 4.16)",
    "stringzilla": "imported by albucore",
    "simsimd": "imported by albucore",
    "iterative-stratification": "the folds",
}


def normalise(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 503 normalised, with underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def requirements() -> list[str]:
    """``NAME==VERSION`` of every carried package, at the version installed in this environment."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in CARRIED]


def refusal(folder: Path) -> str | None:
    """Why ``folder`` cannot be carried (one line), or None when it holds exactly one usable wheel of each."""
    if not folder.is_dir():
        return f"{folder}/ does not exist"
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        return f"{folder}/ holds no wheel"
    by_name: dict[str, list[str]] = {}
    for wheel in wheels:
        by_name.setdefault(normalise(wheel.name.split("-")[0]), []).append(wheel.name)
    missing = [name for name in CARRIED if normalise(name) not in by_name]
    if missing:
        return f"{folder}/ lacks {', '.join(missing)}"
    twice = [", ".join(names) for names in by_name.values() if len(names) > 1]
    if twice:
        return f"{folder}/ holds more than one version of a package ({'; '.join(twice)}): pip would refuse them all"
    foreign = [wheel.name for wheel in wheels if not _fits(wheel.name)]
    if foreign:
        return f"{folder}/ holds wheels for another Python or platform than 3.12 on linux x86_64: {', '.join(foreign)}"
    return None


def _fits(filename: str) -> bool:
    """Whether a wheel installs on CPython 3.12, linux x86_64 (from its file name's tags)."""
    python, abi, platform = filename.removesuffix(".whl").split("-")[-3:]
    tags = python.split(".")
    stable = abi == "abi3" and any(tag[:3] == "cp3" and tag[3:].isdigit() and int(tag[3:]) <= 12 for tag in tags)
    runs = "cp312" in tags or "py3" in tags or stable
    return runs and (platform == "any" or all(part in platform for part in ("linux", "x86_64")))


def main(argv: list[str]) -> int:
    if argv[:1] == ["requirements"] and len(argv) == 1:
        print(" ".join(requirements()))
        return 0
    if argv[:1] == ["check"] and len(argv) == 2:
        problem = refusal(Path(argv[1]))
        if problem is None:
            return 0
        print(f"refused: {problem}; `make gpu-wheels` builds it, on a machine with a package registry (the GPU "
              "machine reaches none)", file=sys.stderr)
        return 1
    print("usage: wheels.py requirements | wheels.py check FOLDER", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
