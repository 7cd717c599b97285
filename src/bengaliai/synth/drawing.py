"""Drawing a synthetic dataset's images in chunks, in this process or in a pool of worker processes.

Each image is drawn on a handwritten root when a letterform drawer is given and its root has
samples (``bengaliai.synth.letterforms``), else font-rendered (``bengaliai.synth.render``), from its
own generators (``bengaliai.synth.sampling``), so the chunks come out the same whatever the number
of workers. Chunks never straddle two image files, so a file is complete after a whole number of them.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, WIDTH, Grapheme, render_text
from bengaliai.synth.letterforms import LetterformConfig, LetterformDrawer
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import RootBank
from bengaliai.synth.sampling import SPLIT_CODES, file_sizes, image_rng, letterform_rng
from bengaliai.synth.signbank import SignBank

# How each image was drawn, counted into synth.json when drawing on handwritten roots.
REAL_ROOT, FONT = "real_root", "font"
REAL_SIGNS = "real_root_real_signs"  # on a handwritten root, with a real writer's signs (synth --signs-from)
NO_SAMPLES, NO_CLEAN_FONT, BY_CHANCE = "font_no_samples", "font_no_clean_font", "font_by_chance"
_CHUNK = 64  # images per task: small enough to balance, large enough to amortise the pickling


def draw_image(
    renderer: Renderer, drawer: LetterformDrawer | None, grapheme: Grapheme, seed: int, split_code: int, index: int
) -> tuple[np.ndarray, str]:
    """Image ``index`` of a split and how it was drawn: on a handwritten root, or by font as plain synth."""
    text = render_text(grapheme)
    kind = FONT
    if drawer is not None:
        kind = NO_SAMPLES
        if drawer.has_root(grapheme):
            rng = letterform_rng(seed, split_code, index)
            kind = BY_CHANCE
            if rng.random() < drawer.config.p:
                drawn = drawer.draw(grapheme, text, rng)
                if drawn is not None:
                    return drawn[0], REAL_SIGNS if drawn[1] else REAL_ROOT
                kind = NO_CLEAN_FONT
    return renderer.render(text, image_rng(seed, split_code, index)), kind


@dataclass(frozen=True)
class Letterforms:
    """The handwritten roots to draw graphemes on, and how."""

    bank: RootBank
    config: LetterformConfig
    signs: SignBank | None = None  # real writers' signs to draw instead of a font's, where it has them


@dataclass(frozen=True)
class _Task:
    split_code: int
    start: int
    graphemes: tuple[Grapheme, ...]


# One per worker process, each with its own glyph and sign caches.
_worker_renderer: Renderer | None = None
_worker_drawer: LetterformDrawer | None = None


def _make_drawer(config: RenderConfig, letterforms: Letterforms | None) -> LetterformDrawer | None:
    if letterforms is None:
        return None
    return LetterformDrawer(letterforms.bank, config, letterforms.config, real_signs=letterforms.signs)


def _init_worker(config: RenderConfig, letterforms: Letterforms | None) -> None:
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
                yield _Task(SPLIT_CODES[split], start, tuple(plan[start:end]))
            file_start += size


@contextlib.contextmanager
def drawn_chunks(
    plans: dict[str, list[Grapheme]],
    seed: int,
    workers: int,
    config: RenderConfig,
    letterforms: Letterforms | None = None,
) -> Iterator[Iterator[tuple[np.ndarray, Counter[str]]]]:
    """The images of every split's plan in order, as chunks of images with how they were drawn; with
    more than one worker they are drawn ahead in a process pool, which ends when the block does."""
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
    try:
        yield chunks
    finally:
        if pool is not None:
            pool.terminate()
