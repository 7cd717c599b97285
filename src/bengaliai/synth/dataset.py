"""``bengaliai synth``: a font-rendered stand-in dataset in the exact competition file format.

Train images cover the 1295 real training graphemes near-uniformly (``graphemes="seen"``), or
graphemes missing from the real train set (``"unseen"``, see ``bengaliai.synth.unseen``: valid under the
training data's constraints and shaped as one clean cluster), or both (``"all"``, half each); the
hidden test of the competition holds such graphemes. The test split adds graphemes unseen in train,
like the real hidden test. Every image is drawn from its own
generator seeded by (seed, split, index), so the same seed gives the same bytes whatever the
number of worker processes. Each image file is written as soon as its images are rendered, so
memory stays at about two image files' worth of pixels.

With ``roots_from`` (one or several folders of handwritten bare roots, e.g. from ``bengaliai
import banglalekha`` and a compound-character import, pooled by ``bengaliai.synth.rootbank.RootBank``), a
grapheme whose root has samples in any of them is drawn on one with its signs redrawn by pen
(``bengaliai.synth.letterforms``); the others are font-rendered exactly as without it. Such a set is
meant as an extra training source, so ``id_prefix`` keeps its ids apart from a main set's.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from bengaliai.core.competition import (
    CLASS_MAP_CSV,
    HEIGHT,
    N_IMAGE_FILES,
    SAMPLE_SUBMISSION_CSV,
    TEST_CSV,
    TRAIN_COLUMNS,
    TRAIN_CSV,
    WIDTH,
    Grapheme,
    class_map_rows,
    compose,
    image_parquet_name,
    render_text,
    seen_graphemes,
)
from bengaliai.core.config import to_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.labels import make_test_rows
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.synth.letterforms import LetterformConfig, LetterformDrawer
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import Folders, RootBank
from bengaliai.synth.unseen import UnseenPool, shapeable_unseen, unseen_triples

log = logging.getLogger(__name__)

TEST_LABELS_CSV = "test_labels.csv"
# Says that a directory holds a synthetic dataset, with what settings, and whether it is complete.
SYNTH_MANIFEST = "synth.json"
TRAIN_CODE, TEST_CODE = 0, 1
_SPLITS = {"train": TRAIN_CODE, "test": TEST_CODE}
_PLAN_STREAM = 1000  # keeps the sampling generators apart from the per-image ones
_LETTERFORM_STREAM = 2000  # the letterform draws, so font-rendered images stay as without them
DEFAULT_ID_PREFIX = "Train"
_ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
# How each image was drawn, counted into synth.json when drawing on handwritten roots.
REAL_ROOT, FONT = "real_root", "font"
NO_SAMPLES, NO_CLEAN_FONT, BY_CHANCE = "font_no_samples", "font_no_clean_font", "font_by_chance"
_CHUNK = 64  # images per task: small enough to balance, large enough to amortise the pickling
# Which graphemes the train split draws, and the share of images showing unseen ones. "all" gives
# half: each of the ~1300 seen graphemes then gets about 1.5x the images of each of the ~1900 unseen,
# as the real test is mostly seen graphemes, while every unseen one still occurs many times.
GRAPHEME_MODES: dict[str, float] = {"seen": 0.0, "unseen": 1.0, "all": 0.5}


def _entropy(seed: int) -> int:
    # SeedSequence takes only non-negative integers; the CLI accepts any int.
    return seed % 2**64


def image_rng(seed: int, split_code: int, index: int) -> np.random.Generator:
    """The generator that draws image ``index`` of a split: independent of worker count and order."""
    return np.random.default_rng([_entropy(seed), split_code, index])


def image_id(split: str, index: int, id_prefix: str = DEFAULT_ID_PREFIX) -> str:
    """``Train_7``/``Test_7``; with another prefix ``LF_7``/``LF_Test_7``, apart from a main set's ids."""
    if split == "train":
        return f"{id_prefix}_{index}"
    return f"Test_{index}" if id_prefix == DEFAULT_ID_PREFIX else f"{id_prefix}_Test_{index}"


def draw_image(
    renderer: Renderer, drawer: LetterformDrawer | None, grapheme: Grapheme, seed: int, split_code: int, index: int
) -> tuple[np.ndarray, str]:
    """Image ``index`` of a split and how it was drawn: on a handwritten root, or by font as plain synth."""
    text = render_text(grapheme)
    kind = FONT
    if drawer is not None:
        kind = NO_SAMPLES
        if drawer.has_root(grapheme):
            rng = np.random.default_rng([_entropy(seed), split_code, index, _LETTERFORM_STREAM])
            kind = BY_CHANCE
            if rng.random() < drawer.config.p:
                image = drawer.draw(grapheme, text, rng)
                if image is not None:
                    return image, REAL_ROOT
                kind = NO_CLEAN_FONT
    return renderer.render(text, image_rng(seed, split_code, index)), kind


def _balanced(items: Sequence[Grapheme], n: int, rng: np.random.Generator) -> list[Grapheme]:
    """``n`` draws in which every item occurs n/len(items) times, give or take one, shuffled."""
    if n == 0 or not items:
        return []
    order = np.concatenate([rng.permutation(len(items)) for _ in range(-(-n // len(items)))])[:n]
    return [items[i] for i in order[rng.permutation(n)]]


def sample_train(
    n: int, seed: int, unseen: Sequence[Grapheme] = (), unseen_share: float = 0.0,
    skip: frozenset[tuple[int, int, int]] = frozenset(),
) -> list[Grapheme]:
    """The graphemes of the ``n`` training images: the real training graphemes near-uniformly, and
    ``unseen_share`` of the images drawn near-uniformly from ``unseen`` instead, shuffled together.
    Training graphemes whose label triple is in ``skip`` (a folds file's held-out ones) are not drawn.

    With no unseen share and nothing skipped the plan is the same as it always was for a seed.
    """
    rng = np.random.default_rng([_entropy(seed), _PLAN_STREAM, TRAIN_CODE])
    n_unseen = int(round(n * unseen_share))
    if n_unseen and not unseen:
        raise BengaliaiError("no unseen graphemes to draw from: every candidate failed the shaping check")
    seen = [g for g in seen_graphemes() if g.labels not in skip] if skip else seen_graphemes()
    plan = _balanced(seen, n - n_unseen, rng)
    if not n_unseen:
        return plan
    plan += _balanced(unseen, n_unseen, rng)
    return [plan[i] for i in rng.permutation(len(plan))]


def sample_test(n: int, seed: int, unseen_fraction: float = 0.15) -> list[tuple[Grapheme, bool]]:
    """The graphemes of the ``n`` test images with whether each is seen in train, shuffled."""
    rng = np.random.default_rng([_entropy(seed), _PLAN_STREAM, TEST_CODE])
    n_unseen = int(round(n * unseen_fraction))
    unseen = [Grapheme(compose(*t), *t) for t in unseen_triples()]
    plan = [(g, True) for g in _balanced(seen_graphemes(), n - n_unseen, rng)]
    plan += [(g, False) for g in _balanced(unseen, n_unseen, rng)]
    return [plan[i] for i in rng.permutation(len(plan))]


def file_sizes(n: int) -> list[int]:
    """Images per parquet file: four near-equal files like the competition; never an empty one."""
    files = min(N_IMAGE_FILES, n)
    return [len(part) for part in np.array_split(np.arange(n), files)] if files else []


@dataclass(frozen=True)
class _Task:
    split_code: int
    start: int
    graphemes: tuple[Grapheme, ...]


@dataclass(frozen=True)
class _Letterforms:
    bank: RootBank
    config: LetterformConfig


# One per worker process, each with its own glyph and sign caches.
_worker_renderer: Renderer | None = None
_worker_drawer: LetterformDrawer | None = None


def _make_drawer(config: RenderConfig, letterforms: _Letterforms | None) -> LetterformDrawer | None:
    return None if letterforms is None else LetterformDrawer(letterforms.bank, config, letterforms.config)


def _init_worker(config: RenderConfig, letterforms: _Letterforms | None) -> None:
    global _worker_renderer, _worker_drawer
    # The processes are the parallelism; cv2's own threads would only compete with them.
    cv2.setNumThreads(1)
    _worker_renderer = Renderer(config)
    _worker_drawer = _make_drawer(config, letterforms)


def _render_chunk(
    renderer: Renderer, drawer: LetterformDrawer | None, task: _Task, seed: int
) -> tuple[np.ndarray, Counter[str]]:
    images = np.empty((len(task.graphemes), HEIGHT, WIDTH), dtype=np.uint8)
    kinds: Counter[str] = Counter()
    for offset, grapheme in enumerate(task.graphemes):
        images[offset], kind = draw_image(renderer, drawer, grapheme, seed, task.split_code, task.start + offset)
        kinds[kind] += 1
    return images, kinds


def _render_in_worker(task: _Task, seed: int) -> tuple[np.ndarray, Counter[str]]:
    assert _worker_renderer is not None, "worker not initialised"
    return _render_chunk(_worker_renderer, _worker_drawer, task, seed)


def _tasks(plans: dict[str, list[Grapheme]]) -> Iterator[_Task]:
    for split, plan in plans.items():
        file_start = 0
        # Chunks never straddle two files, so each file is complete after a whole number of them.
        for size in file_sizes(len(plan)):
            for start in range(file_start, file_start + size, _CHUNK):
                end = min(start + _CHUNK, file_start + size)
                yield _Task(_SPLITS[split], start, tuple(plan[start:end]))
            file_start += size


def _write_images(
    out_dir: Path,
    plans: dict[str, list[Grapheme]],
    seed: int,
    workers: int,
    config: RenderConfig,
    letterforms: _Letterforms | None = None,
    id_prefix: str = DEFAULT_ID_PREFIX,
) -> Counter[str]:
    """Render every image in order, write each parquet file as soon as it is complete; count how
    the images were drawn."""
    pool = None
    if workers > 1:
        # spawn, not fork: a forked child can inherit locks held by threads of cv2 or pyarrow in this
        # process and hang, which happened whenever this process had rendered or written before.
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_init_worker, initargs=(config, letterforms)
        )
        # imap hands out tasks ahead, so workers keep rendering while this process writes files.
        chunks: Iterator[tuple[np.ndarray, Counter[str]]] = pool.imap(
            functools.partial(_render_in_worker, seed=seed), _tasks(plans)
        )
    else:
        renderer, drawer = Renderer(config), _make_drawer(config, letterforms)
        chunks = (_render_chunk(renderer, drawer, task, seed) for task in _tasks(plans))
    total = sum(len(plan) for plan in plans.values())
    kinds: Counter[str] = Counter()
    try:
        with tqdm(total=total, unit="img", desc="synth", disable=None) as progress:
            for split, plan in plans.items():
                start = 0
                for index, size in enumerate(file_sizes(len(plan))):
                    images = np.empty((size, HEIGHT, WIDTH), dtype=np.uint8)
                    filled = 0
                    while filled < size:
                        chunk, chunk_kinds = next(chunks)
                        kinds.update(chunk_kinds)
                        images[filled : filled + len(chunk)] = chunk
                        filled += len(chunk)
                        progress.update(len(chunk))
                    ids = [image_id(split, i, id_prefix) for i in range(start, start + size)]
                    write_image_parquet(out_dir / image_parquet_name(split, index), ids, images)
                    log.info("wrote %s (%d images)", image_parquet_name(split, index), size)
                    start += size
    finally:
        if pool is not None:
            pool.terminate()
    return kinds


def _remove_stale_images(out_dir: Path, split: str, n_files: int) -> None:
    # A dataset written before into the same folder may have had more files.
    for index in range(n_files, N_IMAGE_FILES):
        (out_dir / image_parquet_name(split, index)).unlink(missing_ok=True)


def _write_csvs(
    out_dir: Path, train: list[Grapheme], test: list[tuple[Grapheme, bool]], id_prefix: str = DEFAULT_ID_PREFIX
) -> None:
    train_ids = [image_id("train", i, id_prefix) for i in range(len(train))]
    rows = [(i, *g.labels, g.text) for i, g in zip(train_ids, train, strict=True)]
    write_csv(pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)), out_dir / TRAIN_CSV)
    test_ids = [image_id("test", i, id_prefix) for i in range(len(test))]
    test_rows = make_test_rows(test_ids)
    write_csv(test_rows, out_dir / TEST_CSV)
    write_csv(pd.DataFrame({"row_id": test_rows["row_id"], "target": 0}), out_dir / SAMPLE_SUBMISSION_CSV)
    labels = [(i, *g.labels, g.text, seen) for i, (g, seen) in zip(test_ids, test, strict=True)]
    write_csv(pd.DataFrame(labels, columns=[*TRAIN_COLUMNS, "seen"]), out_dir / TEST_LABELS_CSV)
    class_map = pd.DataFrame(class_map_rows(), columns=["component_type", "label", "component"])
    write_csv(class_map, out_dir / CLASS_MAP_CSV)


def _grapheme_summary(
    mode: str, unseen_share: float, train: Sequence[Grapheme], pool: UnseenPool | None
) -> dict[str, object]:
    """What synth.json says about the train split's graphemes: the mode and how many distinct ones."""
    seen = set(seen_graphemes())
    summary: dict[str, object] = {
        "mode": mode, "unseen_share": unseen_share,
        "distinct_seen": len({g for g in train if g in seen}),
        "distinct_unseen": len({g for g in train if g not in seen}),
    }
    if pool is not None:
        summary["unseen_pool"] = {
            "candidates": pool.candidates, "shape_cleanly": len(pool.graphemes),
            "rejected_by_font": pool.rejected_by_font,
        }
    log.info("train graphemes (%s): %d distinct seen, %d distinct unseen", mode,
             summary["distinct_seen"], summary["distinct_unseen"])
    return summary


def synthesize(
    out_dir: Path,
    n_train: int,
    n_test: int,
    seed: int,
    workers: int,
    config: RenderConfig | None = None,
    unseen_fraction: float = 0.15,
    roots_from: Folders | None = None,
    letterforms: LetterformConfig | None = None,
    id_prefix: str = DEFAULT_ID_PREFIX,
    graphemes: str = "seen",
    skip: frozenset[tuple[int, int, int]] = frozenset(),
) -> None:
    """Write a synthetic dataset in the competition's layout to ``out_dir``, plus test_labels.csv.

    Overwrites a dataset already there. ``unseen_fraction`` of the test images show graphemes
    that are not in the training set (see ``unseen_triples`` for which). ``roots_from`` draws
    graphemes on the handwritten roots of that folder, or of several folders pooled (settings
    ``letterforms``), see the module docstring; synth.json then counts how many images were drawn
    on real roots and why the rest were not. Train ids are ``<id_prefix>_<i>`` (see ``image_id``).
    ``graphemes`` says which graphemes the train split shows (``GRAPHEME_MODES``); synth.json records
    it, the unseen pool (candidates, how many each font failed) and the number of distinct graphemes
    drawn. Training graphemes whose triple is in ``skip`` (``folds.held_out_triples``) are not
    drawn; synth.json counts them.
    """
    if n_train < 0 or n_test < 0 or workers < 1:
        raise BengaliaiError(f"need n_train, n_test >= 0 and workers >= 1, got {n_train}, {n_test}, {workers}")
    if not 0.0 <= unseen_fraction <= 1.0:
        raise BengaliaiError(f"unseen_fraction must be within [0, 1], got {unseen_fraction}")
    if not _ID_PREFIX.fullmatch(id_prefix):
        raise BengaliaiError(f"id prefix {id_prefix!r}: use a letter then letters, digits or '-', e.g. LF")
    if graphemes not in GRAPHEME_MODES:
        raise BengaliaiError(f"graphemes {graphemes!r}: use one of {', '.join(GRAPHEME_MODES)}")
    config = config or RenderConfig()
    Renderer(config)  # needs raqm and opens every font: fails here, before anything is written
    sources = None
    if roots_from is not None:
        # Indexes the folders (and prepares their raw caches if needed) before anything is written.
        sources = _Letterforms(RootBank(roots_from, workers), letterforms or LetterformConfig())
    unseen_share = GRAPHEME_MODES[graphemes]
    # The shaping check reads every font with fontTools: it too fails before anything is written.
    pool = shapeable_unseen(tuple(config.fonts)) if unseen_share > 0 else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train = sample_train(n_train, seed, pool.graphemes if pool else (), unseen_share, skip)
    test = sample_test(n_test, seed, unseen_fraction)
    log.info(
        "synthesising %d train and %d test images (%d of them of unseen graphemes) into %s with %d worker(s)",
        n_train, n_test, sum(not seen for _, seen in test), out_dir, workers,
    )
    manifest = {
        "n_train": n_train, "n_test": n_test, "seed": seed, "unseen_fraction": unseen_fraction,
        "render": to_dict(config), "id_prefix": id_prefix,
        "graphemes": _grapheme_summary(graphemes, unseen_share, train, pool) | {"skipped_held_out": len(skip)},
    }
    if sources is not None:
        manifest["letterforms"] = {"roots_from": sources.bank.describe(), "config": to_dict(sources.config)}
    write_json(manifest | {"complete": False}, out_dir / SYNTH_MANIFEST)
    _write_csvs(out_dir, train, test, id_prefix)
    plans = {"train": train, "test": [g for g, _ in test]}
    for split, plan in plans.items():
        _remove_stale_images(out_dir, split, len(file_sizes(len(plan))))
    kinds = _write_images(out_dir, plans, seed, workers, config, sources, id_prefix)
    if sources is not None:
        manifest["letterforms"]["drawn"] = {k: kinds[k] for k in (REAL_ROOT, NO_SAMPLES, NO_CLEAN_FONT, BY_CHANCE)}
        log.info("drawn on handwritten roots: %d of %d images (%s)", kinds[REAL_ROOT], sum(kinds.values()),
                 ", ".join(f"{k} {v}" for k, v in manifest["letterforms"]["drawn"].items()))
    write_json(manifest | {"complete": True}, out_dir / SYNTH_MANIFEST)
    log.info("done: %s", ", ".join(f"{split}: {len(plan)} images" for split, plan in plans.items()))
