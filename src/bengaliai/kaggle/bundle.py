"""The kernel's ``inference.py``: this package's sources zipped and embedded in a script that runs them offline.

The script needs nothing beyond what Kaggle's images ship (torch, numpy, pandas, pyarrow, OpenCV,
PyYAML, tqdm): it unpacks the bundle to a temporary folder, puts it first on ``sys.path`` and calls
bengaliai.kaggle.kernel_runtime.run_kernel. The bundle holds the subpackages in ``KERNEL_PACKAGES``,
with fixed time stamps, so the same sources give the same script.
"""

from __future__ import annotations

import base64
import io
import logging
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from bengaliai import __version__
from bengaliai.core.competition import COMPETITION

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# What the kernel runs on: every layer up to kaggle/ (kernel_runtime), less the data generators
# (synth, handwriting), training and the command line, which it never imports (the import
# contracts in pyproject.toml hold inference and kaggle away from them).
KERNEL_PACKAGES = ("core", "compute", "data", "model", "evaluation", "inference", "kaggle")
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


def bundle_package(package_dir: Path = _PACKAGE_DIR) -> bytes:
    """A zip of the package's Python sources (no fonts, no caches), byte-identical for equal sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        paths = [*package_dir.glob("*.py"), *(p for sub in KERNEL_PACKAGES for p in (package_dir / sub).glob("*.py"))]
        for path in sorted(paths):
            info = zipfile.ZipInfo(f"bengaliai/{path.relative_to(package_dir).as_posix()}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def kernel_script(bundle: bytes, **facts: Any) -> str:
    """The kernel's ``inference.py`` with ``bundle`` embedded as base64 lines."""
    encoded = base64.b64encode(bundle).decode("ascii")
    lines = "\n".join(f'    "{chunk}"' for chunk in textwrap.wrap(encoded, 100))
    return _SCRIPT.format(bundle=lines, competition=COMPETITION, version=__version__, **facts)
