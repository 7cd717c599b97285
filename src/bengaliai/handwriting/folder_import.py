"""A class-per-folder handwriting dataset -> competition training files, in bounded memory.

The engine under ``bengaliai import SOURCE``: given a ``class_folders.FolderDataset`` (where a dataset
keeps its class folders, which grapheme each holds, the id prefix, how to read a file name),
``import_folders`` does the rest.

Each image is cleaned of specks and cropped to its ink (``class_folders.read_character``, either
polarity), then drawn into the 137x236 frame by ``placement.place_character`` with its own generator
seeded by (seed, folder, index), so any worker count gives the same bytes. Worker processes place
chunks of images; this process writes one parquet file at a time, so memory stays near one file's
pixels (1.6 GB at 50,000 rows). OUT gets train.csv, train_image_data_{i}.parquet, sources.csv (each
image's file and the fields of its name) and import.json (counts per class, settings, seed).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from bengaliai.core.competition import (
    HEIGHT,
    N_PIXELS,
    TRAIN_COLUMNS,
    TRAIN_CSV,
    WIDTH,
    compose,
    image_parquet_name,
    seen_graphemes,
)
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.handwriting.class_folders import FolderDataset, SourceImage, read_character, scan_folders
from bengaliai.handwriting.placement import PlacementConfig, place_character

log = logging.getLogger(__name__)

IMPORT_JSON = "import.json"
SOURCES_CSV = "sources.csv"
MAX_ROWS_PER_FILE = 50_000
_CHUNK = 64  # images per task: small enough to balance, large enough to amortise the pickling


def image_rng(seed: int, folder: int, index: int) -> np.random.Generator:
    """The generator that places one image: independent of worker count, order and --limit-per-class."""
    return np.random.default_rng([seed % 2**64, folder, index])


def grapheme_text(labels: tuple[int, int, int]) -> str:
    """The grapheme string of a label triple, spelled as the competition's training set spells it."""
    seen = {g.labels: g.text for g in seen_graphemes()}
    return seen.get(labels, compose(*labels))


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
            ink = read_character(Path(path), config)
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


def import_folders(
    dataset: FolderDataset,
    src: Path,
    out: Path,
    seed: int = 0,
    workers: int = 1,
    limit_per_class: int | None = None,
    config: PlacementConfig | None = None,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
) -> dict[str, Any]:
    """Write the labelled class folders of ``dataset`` at SRC into OUT in competition training format.

    ``config`` defaults to the dataset's placement. Returns the manifest also written to OUT/import.json.
    """
    config = config or dataset.placement
    src, out = Path(src), Path(out)
    images = scan_folders(src, dataset, limit_per_class)
    sizes = file_sizes(len(images), max_rows_per_file)
    stale = sorted(out.glob("train_image_data_*.parquet"))
    if stale and not (out / IMPORT_JSON).exists():
        raise BengaliaiError(f"{out} holds image files that no import wrote ({stale[0].name}, ...); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for path in stale:  # a previous import, which may have had more files
        path.unlink()
    counts = dict(sorted(Counter(s.folder for s in images).items()))
    texts = {f: grapheme_text(dataset.labels[f]) for f in counts}
    manifest = {
        "dataset": dataset.name, "source": str(src.resolve()),
        "seed": seed, "limit_per_class": limit_per_class, "images": len(images),
        "files": [{"name": image_parquet_name("train", i), "images": n} for i, n in enumerate(sizes)],
        "classes": [
            {"folder": f, "grapheme_root": r, "vowel_diacritic": v, "consonant_diacritic": c, "character": texts[f],
             "images": n}
            for f, n in counts.items()
            for r, v, c in [dataset.labels[f]]
        ],
        "sources": SOURCES_CSV, "settings": asdict(config), "complete": False,
    }
    write_json(manifest, out / IMPORT_JSON)
    rows = [(s.image_id, *dataset.labels[s.folder], texts[s.folder]) for s in images]
    write_csv(pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)), out / TRAIN_CSV)
    sources = [
        {"image_id": s.image_id, "path": s.path.relative_to(src).as_posix(), **dataset.name_fields(s.path.name)}
        for s in images
    ]
    write_csv(pd.DataFrame(sources, columns=list(dataset.source_columns)), out / SOURCES_CSV)
    log.info(
        "importing %d images of %d classes from %s into %s with %d worker(s)", len(images), len(counts), src, out, workers
    )
    _write_images(images, sizes, out, seed, workers, config, dataset.command)
    manifest["complete"] = True
    write_json(manifest, out / IMPORT_JSON)
    log.info("done: %d images in %d file(s) in %s", len(images), len(sizes), out)
    return manifest


def _write_images(
    images: Sequence[SourceImage], sizes: Sequence[int], out: Path, seed: int, workers: int, config: PlacementConfig,
    command: str,
) -> None:
    chunks = _placed(_chunks(images, sizes), seed, workers, config)
    start = 0
    with (
        contextlib.closing(chunks),  # stops the workers at once if anything below fails
        tqdm(total=len(images), unit="img", desc=command, disable=None) as progress,
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


def _transpose_into(rows: np.ndarray, out: np.ndarray) -> None:
    # cv2.transpose is a cache-blocked transpose, much faster than numpy's strided copy.
    result = cv2.transpose(rows, dst=out)
    if not np.shares_memory(result, out):
        out[...] = result
