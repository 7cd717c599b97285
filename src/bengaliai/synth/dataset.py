"""``bengaliai synth``: a font-rendered stand-in dataset in the exact competition file format.

Train images cover the 1295 real training graphemes near-uniformly (``graphemes="seen"``), or
graphemes missing from the real train set (``"unseen"``, see ``bengaliai.synth.unseen``: valid under the
training data's constraints and shaped as one clean cluster), or both (``"all"``, half each); the
hidden test of the competition holds such graphemes. The test split adds graphemes unseen in train,
like the real hidden test (``bengaliai.synth.sampling``). Every image is drawn from its own
generator seeded by (seed, split, index), so the same seed gives the same bytes whatever the
number of worker processes (``bengaliai.synth.drawing``). Each image file is written as soon as its images are rendered, so
memory stays at about two image files' worth of pixels.

With ``roots_from`` (one or several folders of handwritten bare roots, e.g. from ``bengaliai
import banglalekha`` and a compound-character import, pooled by ``bengaliai.synth.rootbank.RootBank``), a
grapheme whose root has samples in any of them is drawn on one with its signs redrawn by pen
(``bengaliai.synth.letterforms``); the others are font-rendered exactly as without it. With
``signs_from`` as well (folders of handwritten whole graphemes, e.g. from ``bengaliai import bhcc``),
the signs come from real writers where it holds samples of them (``bengaliai.synth.signbank``),
else from a font. Such a set is meant as an extra training source, so ``id_prefix`` keeps its ids
apart from a main set's.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

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
    image_parquet_name,
    seen_graphemes,
)
from bengaliai.core.config import to_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import check_folder, make_folder, write_csv, write_json
from bengaliai.data.labels import make_test_rows
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.synth.drawing import (
    BY_CHANCE,
    NO_CLEAN_FONT,
    NO_SAMPLES,
    REAL_ROOT,
    REAL_SIGNS,
    Letterforms,
    drawn_chunks,
)
from bengaliai.synth.letterforms import LetterformConfig
from bengaliai.synth.manifest import SYNTH_MANIFEST, TEST_LABELS_CSV, check_settings, refuse_foreign
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import Folders, RootBank
from bengaliai.synth.sampling import GRAPHEME_MODES, file_sizes, sample_test, sample_train
from bengaliai.synth.signbank import SignBank
from bengaliai.synth.unseen import UnseenPool, shapeable_unseen

log = logging.getLogger(__name__)

DEFAULT_ID_PREFIX = "Train"
_ID_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def image_id(split: str, index: int, id_prefix: str = DEFAULT_ID_PREFIX) -> str:
    """``Train_7``/``Test_7``; with another prefix ``LF_7``/``LF_Test_7``, apart from a main set's ids."""
    if split == "train":
        return f"{id_prefix}_{index}"
    return f"Test_{index}" if id_prefix == DEFAULT_ID_PREFIX else f"{id_prefix}_Test_{index}"


def _write_images(
    out_dir: Path,
    plans: dict[str, list[Grapheme]],
    seed: int,
    workers: int,
    config: RenderConfig,
    letterforms: Letterforms | None = None,
    id_prefix: str = DEFAULT_ID_PREFIX,
) -> Counter[str]:
    """Render every image in order, write each parquet file as soon as it is complete; count how
    the images were drawn."""
    total = sum(len(plan) for plan in plans.values())
    kinds: Counter[str] = Counter()
    with drawn_chunks(plans, seed, workers, config, letterforms) as chunks:
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
    signs_from: Folders | None = None,
    id_prefix: str = DEFAULT_ID_PREFIX,
    graphemes: str = "seen",
    skip: frozenset[tuple[int, int, int]] = frozenset(),
    force: bool = False,
) -> None:
    """Write a synthetic dataset in the competition's layout to ``out_dir``, plus test_labels.csv.

    Refuses an ``out_dir`` holding competition files that synth did not write, or a complete synthetic
    set of other settings, unless ``force``; the same settings are written again. ``unseen_fraction`` of the test images show graphemes
    that are not in the training set (see ``unseen_triples`` for which). ``roots_from`` draws
    graphemes on the handwritten roots of that folder, or of several folders pooled (settings
    ``letterforms``), see the module docstring; synth.json then counts how many images were drawn
    on real roots and why the rest were not. ``signs_from`` draws their signs from real writers'
    graphemes (see ``signbank``); synth.json then describes the sign bank and counts ``real_signs``. Train ids are ``<id_prefix>_<i>`` (see ``image_id``).
    ``graphemes`` says which graphemes the train split shows (``GRAPHEME_MODES``); synth.json records
    it, the unseen pool (candidates, how many each font failed) and the number of distinct graphemes
    drawn. Training graphemes whose triple is in ``skip`` (``folds.held_out_triples``) are not
    drawn; synth.json counts them.
    """
    if n_train < 0 or n_test < 0 or workers < 1:
        raise BengaliaiError(f"need n_train, n_test >= 0 and workers >= 1, got {n_train}, {n_test}, {workers}")
    if n_train == n_test == 0:
        raise BengaliaiError("no images to render: n_train and n_test are both 0; ask for some (synth --train N --test M)")
    if not 0.0 <= unseen_fraction <= 1.0:
        raise BengaliaiError(f"unseen_fraction must be within [0, 1], got {unseen_fraction}")
    if not _ID_PREFIX.fullmatch(id_prefix):
        raise BengaliaiError(f"id prefix {id_prefix!r}: use a letter then letters, digits or '-', e.g. LF")
    if graphemes not in GRAPHEME_MODES:
        raise BengaliaiError(f"graphemes {graphemes!r}: use one of {', '.join(GRAPHEME_MODES)}")
    out_dir = Path(out_dir)
    check_folder(out_dir)
    refuse_foreign(out_dir, force)
    config = config or RenderConfig()
    Renderer(config)  # needs raqm and opens every font: fails here, before anything is written
    sources = None
    if signs_from is not None and roots_from is None:
        raise BengaliaiError("--signs-from without --roots-from: real signs are drawn on handwritten roots; "
                             "add --roots-from IMPORTED_DIR (e.g. from `bengaliai import banglalekha`)")
    if roots_from is not None:
        # Indexes the folders (and prepares their raw caches if needed) before anything is written.
        letterforms = letterforms or LetterformConfig()
        bank = RootBank(roots_from, workers)
        signs = None if signs_from is None else SignBank(
            signs_from, config, letterforms.glyph_size, letterforms.min_coverage, workers
        )
        sources = Letterforms(bank, letterforms, signs)
    unseen_share = GRAPHEME_MODES[graphemes]
    # The shaping check reads every font with fontTools: it too fails before anything is written.
    pool = shapeable_unseen(tuple(config.fonts)) if unseen_share > 0 else None
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
        letterform_config = to_dict(sources.config)
        if sources.signs is None:  # unused without real signs: a set made before they existed keeps its settings
            letterform_config.pop("real_signs_p")
        manifest["letterforms"] = {"roots_from": sources.bank.describe(), "config": letterform_config}
        if sources.signs is not None:
            manifest["letterforms"]["signs_from"] = sources.signs.describe()
    check_settings(out_dir, manifest, force)
    make_folder(out_dir)
    write_json(manifest | {"complete": False}, out_dir / SYNTH_MANIFEST)
    _write_csvs(out_dir, train, test, id_prefix)
    plans = {"train": train, "test": [g for g, _ in test]}
    for split, plan in plans.items():
        _remove_stale_images(out_dir, split, len(file_sizes(len(plan))))
    kinds = _write_images(out_dir, plans, seed, workers, config, sources, id_prefix)
    if sources is not None:
        drawn = {REAL_ROOT: kinds[REAL_ROOT] + kinds[REAL_SIGNS]}
        drawn |= {k: kinds[k] for k in (NO_SAMPLES, NO_CLEAN_FONT, BY_CHANCE)}
        if sources.signs is not None:
            drawn["real_signs"] = kinds[REAL_SIGNS]  # of the real_root ones
        manifest["letterforms"]["drawn"] = drawn
        log.info("drawn on handwritten roots: %d of %d images (%s)", drawn[REAL_ROOT], sum(kinds.values()),
                 ", ".join(f"{k} {v}" for k, v in manifest["letterforms"]["drawn"].items()))
    write_json(manifest | {"complete": True}, out_dir / SYNTH_MANIFEST)
    log.info("done: %s", ", ".join(f"{split}: {len(plan)} images" for split, plan in plans.items()))
