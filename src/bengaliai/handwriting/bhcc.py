"""``bengaliai import bhcc``: the Bangla Handwriting Character Corpus's verified rows as competition training files.

``bhcc_corpus.read_corpus`` reads the scanned table pages, places each row in the row list and
verifies it; this module turns the result into competition-format folders. Each verified
grapheme row's five hand cells (writers 1-5) are binarised like the other imports' images
(``class_folders.character_ink``: threshold, specks dropped, cropped to the ink) and drawn into the
137x236 frame by ``placement.place_character``, each with its own generator seeded by (seed, list
row, writer), so reruns give the same bytes. OUT gets train.csv (ids ``BHCC_<list row>_<writer>``),
train_image_data_<i>.parquet, sources.csv (page file, page row, list row, writer, text, how the row
was verified, whether its grapheme is among the 1,295 of the training set) and import.json (rows
found, verified, refused, unplaced, unmapped; sign rows; skipped cells; writers). Bare vowel-sign
rows are no graphemes: they go to SIGNS_OUT in the same format with only the vowel_diacritic label
meaningful (root and consonant 0, the grapheme text the sign itself), for synth's real signs later.
Unmapped, refused and unplaced rows, and signs the competition has no class for, are skipped and
counted; an empty cell (a writer who left it blank) is skipped and counted. With ``--dev-writers``
those writers are held out: their grapheme cells go to DEV_OUT as a real-handwriting dev folder
(``bhcc_dev``), their sign cells nowhere, and OUT's import.json records them. Each folder is written
all or nothing by ``import_output``; a failure writing a later one can leave the earlier ones written.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.core.competition import HEIGHT, TRAIN_COLUMNS, TRAIN_CSV, WIDTH, image_parquet_name, seen_graphemes
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.handwriting.bhcc_corpus import REFUSED, UNPLACED, VERIFIED, Corpus, CorpusRow, read_corpus
from bengaliai.handwriting.bhcc_dev import (
    check_dev_out,
    check_dev_writers_unchanged,
    default_dev_out,
    held_out_writers,
    write_dev_folder,
)
from bengaliai.handwriting.bhcc_labels import GRAPHEME, SIGN, UNMAPPED
from bengaliai.handwriting.class_folders import character_ink
from bengaliai.handwriting.folder_import import MAX_ROWS_PER_FILE, file_sizes, image_rng
from bengaliai.handwriting.import_output import IMPORT_JSON, SOURCES_CSV, as_json, check_out, staged_folder
from bengaliai.handwriting.placement import PlacementConfig, place_character

log = logging.getLogger(__name__)

ID_PREFIX = "BHCC"
DATASET = "Bangla Handwriting Character Corpus (five-format scans)"
SIGNS_DATASET = f"{DATASET}: bare vowel signs"
DEV_DATASET = f"{DATASET}: held-out writers (dev)"
SIGNS_NOTE = (
    "bare vowel signs written alone, no graphemes: only vowel_diacritic is meaningful (grapheme_root and "
    "consonant_diacritic are 0, grapheme is the sign itself); not for training as graphemes"
)
SOURCE_COLUMNS = ("image_id", "page", "page_row", "list_row", "writer", "text", "kind", "verified_by", "seen")
WRITERS = 5
MIN_INK = 30  # ink pixels (after specks are dropped) below which a cell counts as left blank
# The hand cells are about 91x256 px; their ink 34-73 px high (median 51), 33-112 wide (median 64), strokes
# 2.8-4.1 px (median 3.4) over the whole corpus. Enlarged 1.2-1.8 times: median about 75x94 px with 5 px
# strokes, near the competition's ink (median 93x115, strokes 5.0) for cells that mostly lack diacritics.
PLACEMENT = PlacementConfig(scale=(1.2, 1.8))


@dataclass(frozen=True)
class Cell:
    """One writer's cell of a kept row, with the labels it gets."""

    row: CorpusRow
    writer: int  # 1..5
    labels: tuple[int, int, int]
    grapheme: str
    seen: bool | None  # among the training set's 1,295 graphemes; None for a sign, which is no grapheme

    @property
    def image_id(self) -> str:
        assert self.row.list_row is not None
        return f"{ID_PREFIX}_{self.row.list_row.index}_{self.writer}"


def default_signs_out(out: Path) -> Path:
    """Where the sign rows go when ``--signs-out`` is not given: ``<out>_signs`` beside OUT."""
    return out.with_name(f"{out.name}_signs")


def verified_by(row: CorpusRow) -> str:
    """How a row's place in the list was confirmed: its printed glyph, its printed code points, or both."""
    glyph, codes = row.match.glyph_best, row.match.codes == "agree"
    return "glyph+codes" if glyph and codes else "glyph" if glyph else "codes"


def row_counts(corpus: Corpus) -> dict[str, int]:
    """What the scans held: rows found and their fate, by status and kind."""
    rows = corpus.rows
    kinds = Counter((r.status, r.list_row.kind if r.list_row else None) for r in rows)
    return {
        "rows_found": len(rows),
        "rows_verified": sum(n for (s, _), n in kinds.items() if s == VERIFIED),
        "rows_refused": sum(n for (s, _), n in kinds.items() if s == REFUSED),
        "rows_unplaced": sum(n for (s, _), n in kinds.items() if s == UNPLACED),
        "grapheme_rows": kinds[VERIFIED, GRAPHEME],
        "sign_rows": kinds[VERIFIED, SIGN],
        "unmapped_rows": kinds[VERIFIED, UNMAPPED],
        "list_rows": len(corpus.list_rows),
        "list_rows_never_found": len(corpus.unseen_list_rows()),
        "pages_read": len(corpus.pages),
        "pages_failed": len(corpus.failed),
    }


def kept_cells(corpus: Corpus) -> tuple[list[Cell], list[Cell], dict[str, int]]:
    """The cells of the verified grapheme rows and of the verified vowel-sign rows, and what else was skipped.

    A list row scanned twice keeps its first scan (ids are per list row and writer)."""
    seen = {g.labels for g in seen_graphemes()}
    graphemes: list[Cell] = []
    signs: list[Cell] = []
    done: set[int] = set()
    skipped = {"duplicate_rows": 0, "signs_without_class": 0}
    for row in corpus.rows:
        list_row = row.list_row
        if row.status != VERIFIED or list_row is None or list_row.kind == UNMAPPED:
            continue
        if list_row.index in done:
            skipped["duplicate_rows"] += 1
            continue
        done.add(list_row.index)
        if list_row.kind == GRAPHEME and list_row.labels is not None:
            labels, text, known, kept = list_row.labels, list_row.grapheme, list_row.labels in seen, graphemes
        elif list_row.vowel_sign is not None:
            labels, text, known, kept = (0, list_row.vowel_sign, 0), list_row.text, None, signs
        else:
            skipped["signs_without_class"] += 1
            continue
        kept += [Cell(row, w + 1, labels, text, known) for w in range(min(len(row.hand), WRITERS))]
    return graphemes, signs, skipped


def place_cells(
    cells: list[Cell], seed: int, config: PlacementConfig
) -> tuple[list[Cell], np.ndarray, list[dict[str, Any]]]:
    """The cells that hold ink, their placed images, and a record of each blank one."""
    kept: list[Cell] = []
    images = np.empty((len(cells), HEIGHT, WIDTH), np.uint8)
    blank: list[dict[str, Any]] = []
    for cell in cells:
        assert cell.row.list_row is not None
        crop = cell.row.hand[cell.writer - 1]
        try:
            ink = character_ink(crop, config, cell.image_id)
        except DataError:
            ink = None
        if ink is None or int(ink.sum()) < MIN_INK * config.upsample**2:
            blank.append({"image_id": cell.image_id, "page": cell.row.page.name, "page_row": cell.row.row})
            continue
        rng = image_rng(seed, cell.row.list_row.index, cell.writer)
        images[len(kept)] = place_character(ink, rng, config)
        kept.append(cell)
    return kept, images[: len(kept)], blank


def _tables(cells: list[Cell]) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame([(c.image_id, *c.labels, c.grapheme) for c in cells], columns=list(TRAIN_COLUMNS))
    sources = pd.DataFrame(
        [
            (c.image_id, c.row.page.name, c.row.row, c.row.list_row.index, c.writer, c.row.list_row.text,
             c.row.list_row.kind, verified_by(c.row), c.seen)
            for c in cells
            if c.row.list_row is not None
        ],
        columns=list(SOURCE_COLUMNS),
    )
    return train, sources


def write_import(stage: Path, cells: list[Cell], images: np.ndarray, manifest: dict[str, Any],
                 max_rows_per_file: int = MAX_ROWS_PER_FILE) -> dict[str, Any]:
    """Write one folder's train.csv, image files, sources.csv and import.json; returns the manifest written."""
    files, start = [], 0
    for i, size in enumerate(file_sizes(len(cells), max_rows_per_file) if cells else []):
        ids = [c.image_id for c in cells[start : start + size]]
        write_image_parquet(stage / image_parquet_name("train", i), ids, images[start : start + size])
        files.append({"name": image_parquet_name("train", i), "images": size})
        start += size
    train, sources = _tables(cells)
    write_csv(train, stage / TRAIN_CSV)
    write_csv(sources, stage / SOURCES_CSV)
    writers = Counter(c.writer for c in cells)
    manifest = {
        **manifest, "images": len(cells), "files": files,
        "writers": {str(w): writers[w] for w in range(1, WRITERS + 1)},
        "unseen_graphemes": sum(c.seen is False for c in cells),
        "sources": SOURCES_CSV, "complete": True,
    }
    write_json(manifest, stage / IMPORT_JSON)
    return manifest


def import_bhcc(
    src: Path,
    out: Path,
    signs_out: Path | None = None,
    seed: int = 0,
    config: PlacementConfig = PLACEMENT,
    force: bool = False,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
    dev_writers: Sequence[int] = (),
    dev_out: Path | None = None,
) -> dict[str, Any]:
    """Write the corpus at SRC as grapheme training files to OUT and its vowel-sign rows to SIGNS_OUT.

    The ``dev_writers`` (1-5) are held out: their grapheme cells go to DEV_OUT as a real-handwriting
    dev folder (``bhcc_dev``), their sign cells nowhere. Every folder must be new, empty or an earlier
    import (``import_output.check_out``; ``force`` replaces one made otherwise). Returns OUT's manifest
    (its ``signs`` field: SIGNS_OUT's; ``dev``: DEV_OUT's, when writers are held out)."""
    src, out = Path(src), Path(out)
    signs_out = Path(signs_out) if signs_out is not None else default_signs_out(out)
    if signs_out.resolve() == out.resolve():
        raise BengaliaiError(f"--signs-out {signs_out} is --out itself; the signs need a folder of their own")
    held = held_out_writers(dev_writers, WRITERS)
    if dev_out is not None and not held:
        raise BengaliaiError(f"--dev-out {dev_out} without --dev-writers: name the writers to hold out")
    folders = [out, signs_out]
    if held:
        folders.append(Path(dev_out) if dev_out is not None else default_dev_out(out))
        check_dev_out(folders[2], out, signs_out)
    source = str(src.resolve())
    settings = as_json(asdict(config))
    identities = [
        {"dataset": name, "source": source, "seed": seed, "limit_per_class": None, "settings": settings}
        for name in (DATASET, SIGNS_DATASET, DEV_DATASET)[: len(folders)]
    ]
    for folder, identity in zip(folders, identities):
        check_out(folder, identity, force)
    check_dev_writers_unchanged(out, held, force)
    corpus = read_corpus(src, progress=True)
    if not corpus.rows:
        failed = corpus.failed
        raise DataError(src, f"no readable page: all {len(failed)} page scans failed (first: {failed[0]})")
    counts = row_counts(corpus)
    graphemes, signs, skipped = kept_cells(corpus)
    dev = place_cells([c for c in graphemes if c.writer in held], seed, config)
    placed = [place_cells([c for c in cells if c.writer not in held], seed, config) for cells in (graphemes, signs)]
    common = {**counts, **{f"skipped_{k}": n for k, n in skipped.items()}, "failed_pages": corpus.failed}
    # what each training folder says of the split (nothing without one, so that its bytes are as before)
    splits = [{"dev_writers": list(held), "dev_images": len(dev[0])}, {"dev_writers": list(held)}] if held else [{}, {}]
    manifests = []
    for folder, identity, (cells, images, blank), note, split in zip(
        folders[:2], identities[:2], placed, ("graphemes, one per verified grapheme row and writer", SIGNS_NOTE), splits
    ):
        head = {**identity, "content": note, **common, **split, "skipped_cells": len(blank), "blank_cells": blank}
        with staged_folder(folder) as stage:
            manifests.append(write_import(stage, cells, images, head, max_rows_per_file))
        log.info("wrote %d images to %s (%d blank cells skipped)", len(cells), folder, len(blank))
    manifest, signs_manifest = manifests
    result = {**manifest, "signs": {"out": str(signs_out), "images": signs_manifest["images"]}}
    if held:
        cells, images, blank = dev
        head = {**identities[2], **common, "skipped_cells": len(blank), "blank_cells": blank,
                "unseen_graphemes": sum(c.seen is False for c in cells)}
        with staged_folder(folders[2]) as stage:
            write_dev_folder(stage, held, *_tables(cells), images, head)
        log.info("wrote %d images of held-out writers %s to %s", len(cells), list(held), folders[2])
        result["dev"] = {"out": str(folders[2]), "writers": list(held), "images": len(cells)}
    log.info(
        "done: %d rows found, %d verified (%d graphemes, %d signs, %d unmapped), %d refused, %d unplaced",
        counts["rows_found"], counts["rows_verified"], counts["grapheme_rows"], counts["sign_rows"],
        counts["unmapped_rows"], counts["rows_refused"], counts["rows_unplaced"],
    )
    return result
