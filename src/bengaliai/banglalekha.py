"""``bengaliai import banglalekha``: BanglaLekha-Isolated's root classes as competition training data.

BanglaLekha-Isolated (Biswas et al. 2017; Mendeley Data hf6sf8zrkc v2, no licence stated, so the
user fetches it and the project never ships it) holds 166,105 binarised PNGs of handwritten
characters in 84 class folders, white ink (255) on black, tightly cropped at the scan's own
resolution (so a tall ই is taller than a ক), from about 2,000 writers. The 73 folders that are
grapheme roots (``competition.BANGLALEKHA_ROOTS``) become graphemes (root, 0, 0) in OUT:
train.csv, train_image_data_{i}.parquet (at most 50,000 rows each), sources.csv (each image's
file, writer and the other fields of its file name) and import.json. Ids are ``BLI_<folder>_<i>``,
``i`` the file's place in its folder sorted by name, so they never collide with ``Train_*``.

File names are ``DD_IIII_G_AA_MMDD_FFFF_C.png``: district, institution, gender (0 male), age,
collection date in 2016, form serial, class. The form serial identifies the writer (1,989 forms,
one per writer), which is what to group folds by. The class in the name disagrees with the folder
for 47 files (folder 74 named 75); the images are ম্ব, so the folder is the label.

BanglaLekha's images are 95-210 px a side; the basic consonants' ink is about 103 px high and
its strokes 8.8 px thick (6.5-12), so ``placement`` scales them by 0.5-0.85 and thins them a little
to look like the competition's.

Each image is cleaned of specks and cropped to its ink here, then drawn into the frame by
``placement.place_character`` with its own generator seeded by (seed, folder, index), so any
worker count gives the same bytes. Worker processes place chunks of images; this process writes
one parquet file at a time, so memory stays near one file's pixels (1.6 GB at 50,000 rows).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import re
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from bengaliai.competition import (
    BANGLALEKHA_FOLDERS, BANGLALEKHA_ROOTS, HEIGHT, LABEL_STRINGS, N_PIXELS, TRAIN_COLUMNS, TRAIN_CSV, WIDTH,
    compose, image_parquet_name, seen_graphemes,
)
from bengaliai.errors import BengaliaiError, DataError
from bengaliai.fileio import write_csv, write_json
from bengaliai.parquet_images import write_image_parquet
from bengaliai.placement import PlacementConfig, place_character

log = logging.getLogger(__name__)

IMAGES_DIR = "Images"
IMPORT_JSON = "import.json"
SOURCES_CSV = "sources.csv"
ID_PREFIX = "BLI"
MAX_ROWS_PER_FILE = 50_000
_CHUNK = 64  # images per task: small enough to balance, large enough to amortise the pickling
_NAME = re.compile(r"(\d{2})_(\d{4})_(\d)_(\d{2})_(\d{4})_(\d{4})_(\d{1,2})")
SOURCE_COLUMNS = ("image_id", "path", "writer", "district", "institution", "gender", "age", "date")


@dataclass(frozen=True)
class SourceImage:
    folder: int
    index: int  # place in the folder's sorted file list
    path: Path

    @property
    def image_id(self) -> str:
        return f"{ID_PREFIX}_{self.folder}_{self.index}"


def image_rng(seed: int, folder: int, index: int) -> np.random.Generator:
    """The generator that places one image: independent of worker count, order and --limit-per-class."""
    return np.random.default_rng([seed % 2**64, folder, index])


def read_character(path: Path, speck_fraction: float = PlacementConfig.speck_fraction) -> np.ndarray:
    """The ink of one dataset image as a bool mask cropped to its box; DataError naming the file if unusable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(path, f"cannot read the file ({error.strerror or error})") from None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise DataError(path, "not a readable image (corrupt or not a PNG)")
    ink = image > 127
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    if border.mean() > 0.5:  # a copy saved dark ink on light: the border is mostly paper
        ink = ~ink
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if not areas.size:
        raise DataError(path, "no ink in the image")
    kept = np.flatnonzero(areas >= speck_fraction * areas.sum()) + 1
    if len(kept) < n - 1:
        ink = np.isin(labels, kept)
    ys, xs = np.nonzero(ink)
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def parse_file_name(name: str) -> dict[str, str]:
    """The fields of a dataset file name (writer = form serial); empty strings when it does not parse."""
    match = _NAME.fullmatch(Path(name).stem)
    if match is None:
        return dict.fromkeys(SOURCE_COLUMNS[2:], "")
    district, institution, gender, age, date, form, _ = match.groups()
    return {
        "writer": form, "district": district, "institution": institution,
        "gender": {"0": "male", "1": "female"}.get(gender, gender), "age": age, "date": f"2016{date}",
    }


def scan_source(src: Path, limit_per_class: int | None = None) -> list[SourceImage]:
    """The images of the root classes under SRC/Images, by folder number then file name.

    Missing class folders and unknown entries are logged as warnings; no root class at all is an
    error. ``limit_per_class`` keeps that many images per folder, evenly spaced in name order.
    """
    images_dir = Path(src) / IMAGES_DIR
    if not images_dir.is_dir():
        expected = f"{IMAGES_DIR}/1 .. {IMAGES_DIR}/{BANGLALEKHA_FOLDERS}"
        raise DataError(src, f"no {IMAGES_DIR}/ folder; expected the BanglaLekha-Isolated folder holding {expected}")
    known = {str(n) for n in range(1, BANGLALEKHA_FOLDERS + 1)}
    entries = {p.name: p for p in images_dir.iterdir() if p.is_dir()}
    unknown = sorted(set(entries) - known)
    missing = sorted(known - set(entries), key=int)
    if unknown:
        log.warning("%s: ignored %d unknown folder(s): %s", images_dir, len(unknown), ", ".join(unknown))
    if missing:
        log.warning(
            "%s: %d of the %d class folders are missing: %s", images_dir, len(missing), BANGLALEKHA_FOLDERS, ", ".join(missing)
        )
    roots = sorted(int(name) for name in entries if name in known and int(name) in BANGLALEKHA_ROOTS)
    if not roots:
        raise DataError(images_dir, "no folder of a grapheme-root class (1-49, 61-84)")
    images: list[SourceImage] = []
    for folder in roots:
        folder_path = entries[str(folder)]
        # scandir knows each entry's type without a stat; sorting names, not Paths, is 10x faster.
        with os.scandir(folder_path) as scan:
            names = sorted(e.name for e in scan if e.name.lower().endswith(".png") and e.is_file())
        keep = range(len(names))
        if limit_per_class is not None and limit_per_class < len(names):
            keep = [i * len(names) // limit_per_class for i in range(limit_per_class)]
        if not names:
            log.warning("%s: no PNG files", folder_path)
        images += [SourceImage(folder, i, folder_path / names[i]) for i in keep]
    if not images:
        raise DataError(images_dir, "no PNG images in the grapheme-root class folders")
    return images


def root_grapheme(root: int) -> str:
    """The bare root's grapheme string, spelled as the competition's training set spells it."""
    seen = {g.labels: g.text for g in seen_graphemes()}
    return seen.get((root, 0, 0), compose(root, 0, 0))


_worker_config: PlacementConfig | None = None


def _init_worker(config: PlacementConfig) -> None:
    global _worker_config
    cv2.setNumThreads(1)  # the processes are the parallelism
    _worker_config = config


def _place_chunk(
    task: Sequence[tuple[int, int, str]], seed: int, config: PlacementConfig | None = None
) -> np.ndarray | tuple[str, str]:
    """The placed images of one chunk, or (path, problem) of the first unusable file."""
    config = config or _worker_config
    assert config is not None, "worker not initialised"
    images = np.empty((len(task), HEIGHT, WIDTH), dtype=np.uint8)
    for row, (folder, index, path) in enumerate(task):
        try:
            ink = read_character(Path(path), config.speck_fraction)
        except DataError as error:  # returned, not raised: the pool cannot pickle a DataError
            return (str(error.path), error.problem)
        images[row] = place_character(ink, image_rng(seed, folder, index), config)
    return images


def file_sizes(n: int, max_rows: int = MAX_ROWS_PER_FILE) -> list[int]:
    """Rows per parquet file: as few near-equal files as keep each at most ``max_rows``."""
    files = max(1, math.ceil(n / max_rows))
    return [len(part) for part in np.array_split(np.arange(n), files)]


def _chunks(images: Sequence[SourceImage], sizes: Sequence[int]) -> Iterator[list[tuple[int, int, str]]]:
    start = 0
    for size in sizes:  # chunks never straddle two files
        for first in range(start, start + size, _CHUNK):
            yield [(s.folder, s.index, str(s.path)) for s in images[first : min(first + _CHUNK, start + size)]]
        start += size


def _placed(
    tasks: Iterator[list[tuple[int, int, str]]], seed: int, workers: int, config: PlacementConfig
) -> Iterator[np.ndarray]:
    """Placed chunks in task order; at most 4 chunks per worker wait, so memory stays bounded."""
    if workers == 1:
        for task in tasks:
            yield _checked(_place_chunk(task, seed, config))
        return
    # spawn, not fork: a forked child can inherit locks held by cv2 or pyarrow threads and hang.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (config,)) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(_place_chunk, (task, seed)))
            if len(pending) >= 4 * workers:
                yield _checked(pending.popleft().get())
        while pending:
            yield _checked(pending.popleft().get())


def _checked(result: np.ndarray | tuple[str, str]) -> np.ndarray:
    if isinstance(result, tuple):
        raise DataError(*result)
    return result


def import_banglalekha(
    src: Path,
    out: Path,
    seed: int = 0,
    workers: int = 1,
    limit_per_class: int | None = None,
    config: PlacementConfig | None = None,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
) -> dict[str, Any]:
    """Write the root classes of BanglaLekha-Isolated at SRC into OUT in competition training format.

    Returns the manifest also written to OUT/import.json.
    """
    config = config or PlacementConfig()
    src, out = Path(src), Path(out)
    images = scan_source(src, limit_per_class)
    sizes = file_sizes(len(images), max_rows_per_file)
    stale = sorted(out.glob("train_image_data_*.parquet"))
    if stale and not (out / IMPORT_JSON).exists():
        raise BengaliaiError(f"{out} holds image files that no import wrote ({stale[0].name}, ...); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for path in stale:  # a previous import, which may have had more files
        path.unlink()
    counts = dict(sorted(Counter(s.folder for s in images).items()))
    manifest = {
        "dataset": "BanglaLekha-Isolated (Mendeley Data hf6sf8zrkc v2)", "source": str(src.resolve()),
        "seed": seed, "limit_per_class": limit_per_class, "images": len(images),
        "files": [{"name": image_parquet_name("train", i), "images": n} for i, n in enumerate(sizes)],
        "classes": [
            {"folder": f, "grapheme_root": r, "character": LABEL_STRINGS["grapheme_root"][r], "images": n}
            for f, n in counts.items()
            for r in [BANGLALEKHA_ROOTS[f]]
        ],
        "sources": SOURCES_CSV, "settings": asdict(config), "complete": False,
    }
    write_json(manifest, out / IMPORT_JSON)
    graphemes = {f: root_grapheme(BANGLALEKHA_ROOTS[f]) for f in counts}
    rows = [(s.image_id, BANGLALEKHA_ROOTS[s.folder], 0, 0, graphemes[s.folder]) for s in images]
    write_csv(pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)), out / TRAIN_CSV)
    sources = [
        {"image_id": s.image_id, "path": s.path.relative_to(src).as_posix(), **parse_file_name(s.path.name)} for s in images
    ]
    write_csv(pd.DataFrame(sources, columns=list(SOURCE_COLUMNS)), out / SOURCES_CSV)
    log.info(
        "importing %d images of %d classes from %s into %s with %d worker(s)", len(images), len(counts), src, out, workers
    )
    chunks = _placed(_chunks(images, sizes), seed, workers, config)
    start = 0
    with (
        contextlib.closing(chunks),  # stops the workers at once if anything below fails
        tqdm(total=len(images), unit="img", desc="import banglalekha", disable=None) as progress,
    ):
        for file_index, size in enumerate(sizes):
            # Pixel-major, so write_image_parquet's transpose to one column per pixel is a view.
            pixels = np.empty((N_PIXELS, size), dtype=np.uint8)
            filled = 0
            while filled < size:
                chunk = next(chunks)
                _transpose_into(chunk.reshape(len(chunk), N_PIXELS), pixels[:, filled : filled + len(chunk)])
                filled += len(chunk)
                progress.update(len(chunk))
            ids = [s.image_id for s in images[start : start + size]]
            path = out / image_parquet_name("train", file_index)
            write_image_parquet(path, ids, pixels.T.reshape(size, HEIGHT, WIDTH))
            log.info("wrote %s (%d images)", path.name, size)
            del pixels
            start += size
    manifest["complete"] = True
    write_json(manifest, out / IMPORT_JSON)
    log.info("done: %d images in %d file(s) in %s", len(images), len(sizes), out)
    return manifest


def _transpose_into(rows: np.ndarray, out: np.ndarray) -> None:
    # cv2.transpose is a cache-blocked transpose, much faster than numpy's strided copy.
    result = cv2.transpose(rows, dst=out)
    if not np.shares_memory(result, out):
        out[...] = result
