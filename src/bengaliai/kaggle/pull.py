"""``bengaliai pull``: a training kernel's output (``bengaliai kernel --train``) brought into runs/, all of it or none.

The output holds ``runs/<experiment>/fold<K>/`` and ``train_folds.csv``. It is downloaded with the
kaggle package into a hidden folder inside ``--out`` and moved into place only when it is complete and
nothing here would be lost: a fold folder that is already here is left as it is when identical, updated
when the output holds the same run trained further (a later version that resumed it), and otherwise
refused (one message naming it) unless ``force`` replaces it. The folds file is
kept as ``runs/<experiment>/train_folds.csv`` and, where the local input folder has none, put where
the runs' config says it is (``data.input``/``folds_file``: ``input/train_folds.csv``, the local layout
the kernel mirrors), so ``oof``, ``leaderboard``, ``predict`` and ``kernel`` take a pulled run as a local one.
"""

from __future__ import annotations

import filecmp
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import make_folder
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.data.runinfo import RUN_JSON, SUMMARY_JSON, fold_dirs, read_run_config
from bengaliai.kaggle.download import authenticate, kaggle_api, quietly
from bengaliai.kaggle.kernel import check_kernel_ref
from bengaliai.kaggle.train_runtime import RUNS

log = logging.getLogger(__name__)

_UNFINISHED = ("queued", "running", "new_script")


@dataclass(frozen=True)
class PullResult:
    """What the pull brought: each fold folder it wrote (new or replaced) or found identical here."""

    kernel: str
    experiments: tuple[Path, ...]
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]

    def summary(self) -> str:
        lines = [f"pulled {self.kernel}:"]
        lines += [f"  {path}: written" for path in self.written] + [f"  {path}: unchanged" for path in self.unchanged]
        lines += [f"next:   bengaliai oof --run {path}" for path in self.experiments]
        return "\n".join(lines)


def pull_output(
    kernel: str, out_dir: Path, input_dir: Path | None = None, force: bool = False,
    api_factory: Callable[[], Any] | None = None,
) -> PullResult:
    """Download the output of ``kernel`` (OWNER/SLUG) and move its experiments into ``out_dir``.

    ``input_dir`` is the local folder of train.csv, where the folds file goes (default: the runs'
    ``data.input``). ``api_factory`` returns an unauthenticated KaggleApi-like object (tests pass a fake
    one). Raises BengaliaiError for a malformed slug, missing credentials, a kernel that is unknown or
    still running, an output without runs, and (without ``force``) fold folders here with other content
    than the output's that it does not continue.
    """
    check_kernel_ref(kernel)
    out_dir = make_folder(Path(out_dir))
    api = (api_factory or kaggle_api)()
    authenticate(api)
    _check_finished(api, kernel)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=out_dir) as tmp:
        staging = Path(tmp)
        _fetch(api, kernel, staging)
        experiments = _pulled_experiments(staging, kernel)
        moves = [(src, out_dir / experiment.name / src.name) for experiment in experiments
                 for src in [*fold_dirs(experiment).values(), staging / FOLDS_CSV] if src.exists()]
        unchanged = [dest for src, dest in moves if dest.exists() and _same(src, dest)]
        taken = [dest for src, dest in moves if dest.exists() and dest not in unchanged and not _continues(src, dest)]
        if taken and not force:
            raise BengaliaiError(
                f"{', '.join(map(str, taken))} already {'holds' if len(taken) == 1 else 'hold'} other content than "
                f"{kernel}'s output: nothing was written; pass --force to replace {'it' if len(taken) == 1 else 'them'}"
            )
        for src, dest in moves:
            if dest not in unchanged:
                _replace(src, dest)
        log_file = staging / f"{kernel.split('/')[1]}.log"  # the kernel's log, which the kaggle client adds
        if log_file.is_file():
            for experiment in experiments:
                shutil.copyfile(log_file, out_dir / experiment.name / log_file.name)
    pulled = tuple(out_dir / experiment.name for experiment in experiments)
    for experiment_dir in pulled:
        _install_folds(experiment_dir, input_dir)
    written = tuple(dest for _, dest in moves if dest not in unchanged and dest.name != FOLDS_CSV)
    return PullResult(kernel, pulled, written, tuple(dest for dest in unchanged if dest.name != FOLDS_CSV))


def _check_finished(api: Any, kernel: str) -> None:
    """Refuse a kernel whose latest version is still queued or running; warn about one that failed."""
    try:
        response = quietly(lambda: api.kernels_status(kernel))
    except (Exception, SystemExit) as error:  # the kaggle client raises requests', urllib3's and its own errors
        raise _failure(error, kernel, "asking Kaggle for the status") from None
    status = str(getattr(response.status, "name", response.status)).lower()
    if status in _UNFINISHED:
        raise BengaliaiError(f"{kernel} is {status} on Kaggle: pull it once the version has finished")
    if status != "complete":
        message = getattr(response, "failure_message", "") or "no message"
        log.warning("%s's latest version ended as %s (%s): pulling what its output holds", kernel, status, message)


def _fetch(api: Any, kernel: str, staging: Path) -> None:
    log.info("downloading the output of %s", kernel)
    try:
        quietly(lambda: api.kernels_output(kernel, path=str(staging), force=True, quiet=True))
    except (Exception, SystemExit) as error:
        raise _failure(error, kernel, "downloading the output") from None


def _failure(error: BaseException, kernel: str, what: str) -> BengaliaiError:
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403, 404) or (isinstance(error, ValueError) and "denied" in str(error)):
        code = f" (HTTP {status})" if status else ""
        return BengaliaiError(
            f"Kaggle has no kernel {kernel} that these credentials may read{code}: check OWNER/SLUG in its address, "
            f"kaggle.com/code/OWNER/SLUG"
        )
    return BengaliaiError(f"{what} of {kernel} failed ({type(error).__name__}: {error}); check the network connection and try again")


def _pulled_experiments(staging: Path, kernel: str) -> list[Path]:
    """The ``runs/<experiment>`` folders of the downloaded output that hold fold folders."""
    runs = staging / RUNS
    found = sorted(path for path in runs.iterdir() if fold_dirs(path)) if runs.is_dir() else []
    if not found:
        present = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
        raise BengaliaiError(
            f"{kernel}'s output holds no {RUNS}/<experiment>/fold<K> (it holds: {present}); is it a kernel of "
            "`bengaliai kernel --train`, and has a version of it trained a fold?"
        )
    return found


def _same(src: Path, dest: Path) -> bool:
    """Whether two files, or two folders file by file, hold the same bytes."""
    if src.is_file() or dest.is_file():
        return src.is_file() and dest.is_file() and filecmp.cmp(src, dest, shallow=False)
    names = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    if names != {p.relative_to(dest) for p in dest.rglob("*") if p.is_file()}:
        return False
    return all(filecmp.cmp(src / name, dest / name, shallow=False) for name in names)


def _continues(src: Path, dest: Path) -> bool:
    """Whether the fold folder ``src`` is the run of ``dest`` trained further: the same run.json (written when
    a run starts, kept by a resume) and at least as many epochs done, so replacing ``dest`` loses nothing."""
    if not (src / RUN_JSON).is_file() or not (dest / RUN_JSON).is_file() or not _same(src / RUN_JSON, dest / RUN_JSON):
        return False
    try:
        done = [json.loads((path / SUMMARY_JSON).read_text(encoding="utf-8"))["epochs_done"] for path in (src, dest)]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return done[0] >= done[1]


def _replace(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_file():  # the folds file, which every experiment of the output keeps a copy of
        shutil.copyfile(src, dest)
        return
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    os.replace(src, dest)  # same file system (the staging folder is inside out_dir): a rename


def _install_folds(experiment_dir: Path, input_dir: Path | None) -> None:
    """Put the pulled folds file where the runs' config looks for it, unless a file is already there."""
    pulled = experiment_dir / FOLDS_CSV
    if not pulled.is_file():
        log.warning("%s's output holds no %s: oof and predict need the folds file it trained with", experiment_dir, FOLDS_CSV)
        return
    config = read_run_config(next(iter(fold_dirs(experiment_dir).values())))
    input_dir = Path(input_dir) if input_dir is not None else Path(str(config.get("data", {}).get("input", "input")))
    target = input_dir / str(config.get("folds_file", FOLDS_CSV))
    if target.is_file():
        if not filecmp.cmp(pulled, target, shallow=False):
            log.warning("%s differs from the folds file the kernel trained with (%s): oof, predict and kernel refuse the "
                        "pulled folds until %s is that file", target, pulled, target)
        return
    if not (input_dir / TRAIN_CSV).is_file():
        log.warning("no %s here: put the competition files in %s (bengaliai download --out %s) and copy %s beside them",
                    input_dir / TRAIN_CSV, input_dir, input_dir, pulled)
        return
    shutil.copyfile(pulled, target)
    log.info("wrote %s, the folds file the kernel trained with", target)
