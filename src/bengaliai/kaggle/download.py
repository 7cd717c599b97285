"""Fetch the real competition files from Kaggle into a folder, all of them or none.

The kaggle package is imported only here and only when a download runs: importing it prints to
stdout and tries to log in, and it needs credentials plus the competition's rules accepted on
kaggle.com. Every failure (no package, no credentials, refused, network, a bad archive) ends as one
BengaliaiError that says what to do. The archive is unpacked into a hidden folder inside the
output folder and its files are moved into place only once all expected files are there, so a
failed or interrupted download never leaves a half-extracted dataset.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from bengaliai.core.competition import (
    CLASS_MAP_CSV,
    COMPETITION,
    N_IMAGE_FILES,
    SAMPLE_SUBMISSION_CSV,
    TEST_CSV,
    TRAIN_CSV,
    image_parquet_name,
)
from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

EXPECTED_FILES: tuple[str, ...] = (
    TRAIN_CSV,
    TEST_CSV,
    CLASS_MAP_CSV,
    SAMPLE_SUBMISSION_CSV,
    *(image_parquet_name(split, i) for split in ("train", "test") for i in range(N_IMAGE_FILES)),
)

RULES_URL = f"https://www.kaggle.com/competitions/{COMPETITION}/rules"
CREDENTIALS_HELP = (
    "Provide Kaggle credentials in one of these ways: the KAGGLE_API_TOKEN environment variable or "
    "the file ~/.kaggle/access_token (a token from https://www.kaggle.com/settings/api), or the "
    "legacy ~/.kaggle/kaggle.json or KAGGLE_USERNAME and KAGGLE_KEY environment variables. The "
    f"account must also have accepted the competition rules at {RULES_URL}."
)


def missing_files(folder: Path) -> list[str]:
    """The expected competition files that are not in ``folder``."""
    return [name for name in EXPECTED_FILES if not (Path(folder) / name).is_file()]


def quietly(action: Callable[[], Any]) -> Any:
    """Run ``action`` with stdout captured: kaggle prints its help texts there, not to a logger."""
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            return action()
    finally:
        if output.getvalue().strip():
            log.debug("kaggle printed: %s", output.getvalue().strip())


def kaggle_api() -> Any:
    """A new, not yet authenticated KaggleApi."""

    def load() -> Any:
        # Not `import kaggle`: that also creates a client and prints a login help text.
        from kaggle.api.kaggle_api_extended import KaggleApi

        return KaggleApi

    try:
        api_class = quietly(load)
    except ModuleNotFoundError as error:
        if error.name == "six":
            raise BengaliaiError(
                "the kaggle package needs `six` but does not declare it: pip install six"
            ) from None
        raise BengaliaiError(f"cannot import the kaggle package ({error}): pip install kaggle six") from None
    except ImportError as error:
        raise BengaliaiError(f"cannot import the kaggle package ({error}): pip install kaggle six") from None
    return api_class()


def authenticate(api: Any) -> None:
    try:
        quietly(api.authenticate)
    # kaggle ends a failed login with exit(1) after printing help; token checks can raise anything
    # from requests or urllib3. All of them mean the same thing to the user.
    except (Exception, SystemExit) as error:
        cause = "no usable credentials found" if isinstance(error, SystemExit) else f"{type(error).__name__}: {error}"
        raise BengaliaiError(f"Kaggle login failed ({cause}). {CREDENTIALS_HELP}") from None


def _fetch(api: Any, folder: Path) -> None:
    """Download the competition archive into ``folder``, turning every failure into one message."""
    try:
        api.competition_download_files(COMPETITION, path=str(folder), quiet=False)
    # The kaggle client raises requests, urllib3 and its own exceptions alike; the status code of
    # an HTTP error is the only part worth telling apart.
    except (Exception, SystemExit) as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise BengaliaiError(
                f"Kaggle refused the download of {COMPETITION} (HTTP {status}): accept the competition "
                f"rules at {RULES_URL} with the account of your credentials, and check that the "
                f"credentials are valid. {CREDENTIALS_HELP}"
            ) from None
        raise BengaliaiError(
            f"downloading {COMPETITION} from Kaggle failed ({type(error).__name__}: {error}); "
            "check the network connection and try again"
        ) from None


def _find_archive(folder: Path) -> Path:
    archive = folder / f"{COMPETITION}.zip"
    if archive.is_file():
        return archive
    archives = sorted(folder.glob("*.zip"))
    if not archives:
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise BengaliaiError(f"Kaggle's download produced no zip archive (found {found})")
    return archives[0]


def _unsafe_reason(member: zipfile.ZipInfo) -> str | None:
    """Why extracting this member could write outside the target folder, or None if it cannot."""
    name = member.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        return "an absolute path"
    if ".." in parts:
        return "a path with '..'"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "a symbolic link"
    return None


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip archive into ``target``, refusing it whole if any member could escape."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                reason = _unsafe_reason(member)
                if reason:
                    raise BengaliaiError(
                        f"refusing to extract {archive.name}: member {member.filename!r} is {reason}"
                    )
            zf.extractall(target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise BengaliaiError(f"{archive.name} is not a readable zip archive ({error}); download it again") from None


def _move_into(staging: Path, out_dir: Path) -> None:
    # Same file system (staging lives inside out_dir), so each move is a rename.
    for entry in sorted(staging.iterdir()):
        target = out_dir / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


def download(
    out_dir: Path, force: bool = False, api_factory: Callable[[], Any] | None = None
) -> None:
    """Download and unzip the bengaliai-cv19 files into ``out_dir``; skip if they are all there.

    ``api_factory`` returns an unauthenticated KaggleApi-like object (tests pass a fake one).
    Raises BengaliaiError for missing credentials, a refused or failed download, an unsafe or
    broken archive, or an archive without every expected file; ``out_dir`` then holds no new file.
    """
    out_dir = Path(out_dir)
    if not force and not missing_files(out_dir):
        log.info("all %d competition files are already in %s; skipping (use --force to download again)",
                 len(EXPECTED_FILES), out_dir)
        return
    api = (api_factory or kaggle_api)()
    authenticate(api)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s", COMPETITION, out_dir)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=out_dir) as tmp:
        folder = Path(tmp)
        _fetch(api, folder)
        archive = _find_archive(folder)
        staging = folder / "files"
        safe_extract(archive, staging)
        # Free the space early: the real archive is several GB.
        archive.unlink()
        missing = missing_files(staging)
        if missing:
            raise BengaliaiError(
                f"the archive from Kaggle lacks {len(missing)} expected file(s): {', '.join(missing)}; "
                f"nothing was written to {out_dir}"
            )
        _move_into(staging, out_dir)
    log.info("wrote %d competition files to %s", len(EXPECTED_FILES), out_dir)
