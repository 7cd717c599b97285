"""The kernel's ``inference.py``: this package's sources zipped and embedded in a script that runs them offline.

The script needs nothing beyond what Kaggle's images ship (torch, numpy, pandas, pyarrow, OpenCV,
PyYAML, tqdm): it unpacks the bundle to a temporary folder, puts it first on ``sys.path`` and calls
bengaliai.kaggle.kernel_runtime.run_kernel. The bundle holds the subpackages in ``KERNEL_PACKAGES``,
with fixed time stamps, so the same sources give the same script. The training kernel
(``train_kernel``) bundles ``TRAIN_KERNEL_PACKAGES`` and the third-party packages in ``VENDORED``.
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import io
import logging
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from bengaliai import __version__
from bengaliai.core.competition import COMPETITION
from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# What the kernel runs on: every layer up to kaggle/ (kernel_runtime), less the data generators
# (synth, handwriting), training and the command line, which it never imports (the import
# contracts in pyproject.toml hold inference and kaggle away from them).
KERNEL_PACKAGES = ("core", "compute", "data", "model", "evaluation", "inference", "kaggle")
# What the training kernel runs (`python -m bengaliai prepare|folds|train`): also training and the command
# line, whose other subcommands load their packages (synth, handwriting) only when they run.
TRAIN_KERNEL_PACKAGES = (*KERNEL_PACKAGES, "training", "cli")
# Third-party packages the training kernel needs and Kaggle's image lacks, carried with their licence:
# iterative-stratification (BSD-3-Clause) for `bengaliai folds`.
VENDORED = ("iterstrat",)
# A fixed time stamp for the bundled files: the same sources give the same kernel script.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)

_SCRIPT = '''\
"""Offline Kaggle kernel for {competition}: experiment {experiment}, folds {folds}.

Built by `bengaliai kernel` (bengaliai {version}, commit {commit}). Reads the competition files
and the weights dataset {dataset} under /kaggle/input and writes /kaggle/working/submission.csv.
The bengaliai package travels inside this file (a zip of its sources, unpacked to a temporary
folder that is removed when the run ends), so the kernel needs no internet and installs nothing.
"""

import argparse
import base64
import io
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

BUNDLE = (
{bundle}
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Predict the test set and write the submission.")
    parser.add_argument("--root", type=Path, default=Path("/kaggle"), help="folder with input/ and working/")
    parser.add_argument("--out", type=Path, default=None, help="submission path (default: ROOT/working/submission.csv)")
    args, _ = parser.parse_known_args()
    # The package lives only as long as the run: the folder is removed at the end, also on error.
    with tempfile.TemporaryDirectory(prefix="bengaliai-") as package_dir:
        with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(BUNDLE)))) as archive:
            archive.extractall(package_dir)
        sys.path.insert(0, package_dir)
        from bengaliai.kaggle.kernel_runtime import configure_logging, run_kernel

        configure_logging()
        try:
            run_kernel(args.root, args.out)
        except Exception:
            traceback.print_exc()  # now, while the sources it quotes still exist
            raise SystemExit(1) from None


if __name__ == "__main__":
    main()
'''


def bundle_package(
    package_dir: Path = _PACKAGE_DIR, packages: tuple[str, ...] = KERNEL_PACKAGES, vendored: tuple[str, ...] = ()
) -> bytes:
    """A zip of the package's Python sources (no fonts, no caches), byte-identical for equal sources.

    ``packages`` are the subpackages it holds; each top-level package in ``vendored`` is added from
    this environment, its Python sources and its distribution's licence beside them.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        paths = [*package_dir.glob("*.py"), *(p for sub in packages for p in (package_dir / sub).glob("*.py"))]
        for path in sorted(paths):
            _add(archive, f"bengaliai/{path.relative_to(package_dir).as_posix()}", path.read_bytes())
        for name in vendored:
            for member, data in _vendored_files(name):
                _add(archive, member, data)
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _vendored_files(name: str) -> list[tuple[str, bytes]]:
    """The Python sources of the installed package ``name`` and its distribution's licence, as (zip name, bytes)."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise BengaliaiError(f"the training kernel carries the package {name}, which is not installed here: pip install it")
    folder = Path(locations[0])
    files = [(f"{name}/{path.relative_to(folder).as_posix()}", path.read_bytes()) for path in sorted(folder.rglob("*.py"))]
    for distribution in importlib.metadata.packages_distributions().get(name, []):
        for entry in importlib.metadata.distribution(distribution).files or []:
            if entry.name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
                files.append((f"{name}/{entry.name}", Path(str(entry.locate())).read_bytes()))
    return files


def kernel_script(bundle: bytes, **facts: Any) -> str:
    """The kernel's ``inference.py`` with ``bundle`` embedded as base64 lines."""
    encoded = base64.b64encode(bundle).decode("ascii")
    lines = "\n".join(f'    "{chunk}"' for chunk in textwrap.wrap(encoded, 100))
    return _SCRIPT.format(bundle=lines, competition=COMPETITION, version=__version__, **facts)
