"""A class-per-folder handwriting dataset -> competition training files, in bounded memory.

The engine under ``bengaliai import SOURCE``: given a ``class_folders.FolderDataset`` (where a dataset
keeps its class folders, which grapheme each holds, the id prefix, how to read a file name),
``import_folders`` does the rest.

Each image is cleaned of specks and cropped to its ink (``class_folders.read_character``, either
polarity), then drawn into the 137x236 frame by ``placement.place_character`` with its own generator
seeded by (seed, folder, index), so any worker count gives the same bytes. Worker processes place
chunks of images; this process writes one parquet file at a time, so memory stays near one file's
pixels (1.6 GB at 50,000 rows). OUT gets train.csv, train_image_data_{i}.parquet, sources.csv (each
image's file and the fields of its name) and import.json (counts per class, settings, seed, the
skipped files), all at once when every file is complete (``import_output``). An unreadable or blank
image is skipped, logged and counted (workers report it back) up to ``max_bad``; one more stops the
import, naming the files.
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
from bengaliai.core.errors import DataError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.handwriting.class_folders import FolderDataset, SourceImage, read_character, scan_folders
from bengaliai.handwriting.import_output import IMPORT_JSON, SOURCES_CSV, as_json, check_out, staged_folder
from bengaliai.handwriting.placement import PlacementConfig, place_character

log = logging.getLogger(__name__)

MAX_ROWS_PER_FILE = 50_000
# Unreadable or blank images skipped before an import stops: a count, not a share, so that a broken
# source (a wrong folder, files of another format) stops after seconds whatever its size, while a
# good one loses at most 0.1% of BanglaLekha's 145,000 images or 0.3% of the compounds' 30,000.
MAX_BAD = 100
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


# A chunk's placed images, in task order, and (row in the task, problem) of each unusable file.
Placed = tuple[np.ndarray, list[tuple[int, str]]]


def _place_chunk(task: Sequence[tuple[int, int, str]], seed: int, config: PlacementConfig | None = None) -> Placed:
    """The placed images of one chunk, less its unusable files (reported, with their problems)."""
    config = config or _worker_config
    assert config is not None, "worker not initialised"
    images = np.empty((len(task), HEIGHT, WIDTH), dtype=np.uint8)
    failed: list[tuple[int, str]] = []
    for row, (folder, index, path) in enumerate(task):
        try:
            ink = read_character(Path(path), config)
        except DataError as error:  # returned, not raised: the pool cannot pickle a DataError
            failed.append((row, error.problem))
            continue
        images[row - len(failed)] = place_character(ink, image_rng(seed, folder, index), config)
    return images[: len(task) - len(failed)], failed


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
) -> Iterator[Placed]:
    """Placed chunks in task order; at most 4 chunks per worker wait, so memory stays bounded."""
    if workers == 1:
        for task in tasks:
            yield _place_chunk(task, seed, config)
        return
    # spawn, not fork: a forked child can inherit locks held by cv2 or pyarrow threads and hang.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (config,)) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(_place_chunk, (task, seed)))
            if len(pending) >= 4 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def import_folders(
    dataset: FolderDataset,
    src: Path,
    out: Path,
    seed: int = 0,
    workers: int = 1,
    limit_per_class: int | None = None,
    config: PlacementConfig | None = None,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
    max_bad: int = MAX_BAD,
    force: bool = False,
) -> dict[str, Any]:
    """Write the labelled class folders of ``dataset`` at SRC into OUT in competition training format.

    ``config`` defaults to the dataset's placement. Up to ``max_bad`` unreadable or blank images are
    skipped (logged, listed in the manifest); one more stops the import. OUT is written all or
    nothing and must be new, empty or an earlier import (``import_output.check_out``; ``force``
    replaces one made otherwise). Returns the manifest also written to OUT/import.json.
    """
    config = config or dataset.placement
    src, out = Path(src), Path(out)
    identity = {
        "dataset": dataset.name, "source": str(src.resolve()), "seed": seed, "limit_per_class": limit_per_class,
        "settings": as_json(asdict(config)),
    }
    check_out(out, identity, force)
    images = scan_folders(src, dataset, limit_per_class)
    sizes = file_sizes(len(images), max_rows_per_file)
    log.info(
        "importing %d images of %d classes from %s into %s with %d worker(s)",
        len(images), len({s.folder for s in images}), src, out, workers,
    )
    with staged_folder(out) as stage:
        kept, skipped, written = _write_images(images, sizes, stage, seed, workers, config, dataset.command, max_bad)
        if not kept:
            (first, problem), n = skipped[0], len(skipped)
            raise DataError(src, f"no usable image: all {n} were unreadable or blank (first: {first.path}: {problem})")
        manifest = _manifest(dataset, identity, src, kept, skipped, written, max_bad)
        _write_tables(dataset, src, kept, stage)
        write_json(manifest, stage / IMPORT_JSON)
    log.info(
        "done: %d images in %d file(s) in %s; %d unreadable or blank images skipped%s",
        len(kept), len(written), out, len(skipped), " (listed in import.json)" if skipped else "",
    )
    return manifest


def _manifest(
    dataset: FolderDataset, identity: dict[str, Any], src: Path, kept: Sequence[SourceImage],
    skipped: Sequence[tuple[SourceImage, str]], written: Sequence[int], max_bad: int,
) -> dict[str, Any]:
    """What import.json records: the source, seed and settings, counts per file and class, the skipped files."""
    counts = dict(sorted(Counter(s.folder for s in kept).items()))
    return {
        "dataset": identity["dataset"], "source": identity["source"],
        "seed": identity["seed"], "limit_per_class": identity["limit_per_class"], "images": len(kept),
        "skipped": len(skipped), "max_bad": max_bad,
        "skipped_files": [{"path": s.path.relative_to(src).as_posix(), "problem": p} for s, p in skipped],
        "files": [{"name": image_parquet_name("train", i), "images": n} for i, n in enumerate(written)],
        "classes": [
            {"folder": f, "grapheme_root": r, "vowel_diacritic": v, "consonant_diacritic": c,
             "character": grapheme_text(dataset.labels[f]), "images": n}
            for f, n in counts.items()
            for r, v, c in [dataset.labels[f]]
        ],
        "sources": SOURCES_CSV, "settings": identity["settings"], "complete": True,
    }


def _write_tables(dataset: FolderDataset, src: Path, kept: Sequence[SourceImage], out: Path) -> None:
    """train.csv (the competition's columns) and sources.csv (each image's file and name fields) of the kept images."""
    texts = {f: grapheme_text(dataset.labels[f]) for f in {s.folder for s in kept}}
    rows = [(s.image_id, *dataset.labels[s.folder], texts[s.folder]) for s in kept]
    write_csv(pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)), out / TRAIN_CSV)
    sources = [
        {"image_id": s.image_id, "path": s.path.relative_to(src).as_posix(), **dataset.name_fields(s.path.name)}
        for s in kept
    ]
    write_csv(pd.DataFrame(sources, columns=list(dataset.source_columns)), out / SOURCES_CSV)


def _too_many(bad: Sequence[tuple[SourceImage, str]], max_bad: int) -> DataError:
    (first, problem), others = bad[0], bad[1:4]
    also = "; ".join(f"{s.path}: {p}" for s, p in others) + ("; ..." if len(bad) > 4 else "")
    return DataError(
        first.path,
        f"{problem}; stopped at {len(bad)} unreadable or blank images, more than --max-bad {max_bad}"
        + (f" (also {also})" if others else "")
        + "; nothing was written: fix or remove them, or raise --max-bad",
    )


def _write_images(
    images: Sequence[SourceImage], sizes: Sequence[int], out: Path, seed: int, workers: int, config: PlacementConfig,
    command: str, max_bad: int,
) -> tuple[list[SourceImage], list[tuple[SourceImage, str]], list[int]]:
    """Place the images, planned ``sizes`` per file, and write the parquet files of those usable.

    Returns the kept images, the skipped ones with their problems and the rows of each file written.
    A file keeps its planned images less the skipped ones; one left empty is not written, so the
    files stay numbered 0, 1, ... Raises DataError past ``max_bad`` skipped images.
    """
    chunks = _placed(_chunks(images, sizes), seed, workers, config)
    kept: list[SourceImage] = []
    skipped: list[tuple[SourceImage, str]] = []
    written: list[int] = []
    start = 0
    with (
        contextlib.closing(chunks),  # stops the workers at once if anything below fails
        tqdm(total=len(images), unit="img", desc=command, disable=None) as progress,
    ):
        for size in sizes:
            # Pixel-major, so write_image_parquet's transpose to one column per pixel is a view.
            pixels = np.empty((N_PIXELS, size), dtype=np.uint8)
            done = filled = 0
            while done < size:
                placed, failed = next(chunks)
                task = images[start + done : start + done + len(placed) + len(failed)]
                bad_rows = dict(failed)
                for row, problem in failed:
                    skipped.append((task[row], problem))
                    log.warning("skipped %s: %s", task[row].path, problem)
                if len(skipped) > max_bad:
                    raise _too_many(skipped, max_bad)
                kept += [s for row, s in enumerate(task) if row not in bad_rows]
                if len(placed):
                    _transpose_into(placed.reshape(len(placed), N_PIXELS), pixels[:, filled : filled + len(placed)])
                filled += len(placed)
                done += len(task)
                progress.update(len(task))
            start += size
            if filled:
                ids = [s.image_id for s in kept[len(kept) - filled :]]
                path = out / image_parquet_name("train", len(written))
                write_image_parquet(path, ids, pixels[:, :filled].T.reshape(filled, HEIGHT, WIDTH))
                log.info("wrote %s (%d images)", path.name, filled)
                written.append(filled)
            del pixels
    return kept, skipped, written


def _transpose_into(rows: np.ndarray, out: np.ndarray) -> None:
    # cv2.transpose is a cache-blocked transpose, much faster than numpy's strided copy.
    result = cv2.transpose(rows, dst=out)
    if not np.shares_memory(result, out):
        out[...] = result
