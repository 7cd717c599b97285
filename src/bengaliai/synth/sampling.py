"""Sampling what a synthetic dataset draws: each split's graphemes, each image's generator, its files.

The graphemes of both splits are drawn from their own generators, apart from the per-image ones,
and every image is drawn from a generator seeded by (seed, split, index), so the same seed gives the
same dataset whatever the number of worker processes and the order they work in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bengaliai.core.competition import N_IMAGE_FILES, Grapheme, compose, seen_graphemes
from bengaliai.core.errors import BengaliaiError
from bengaliai.synth.unseen import unseen_triples

TRAIN_CODE, TEST_CODE = 0, 1
SPLIT_CODES = {"train": TRAIN_CODE, "test": TEST_CODE}
_PLAN_STREAM = 1000  # keeps the sampling generators apart from the per-image ones
_LETTERFORM_STREAM = 2000  # the letterform draws, so font-rendered images stay as without them
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


def letterform_rng(seed: int, split_code: int, index: int) -> np.random.Generator:
    """The generator of image ``index``'s draws on a handwritten root, apart from its font-render one."""
    return np.random.default_rng([_entropy(seed), split_code, index, _LETTERFORM_STREAM])


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
