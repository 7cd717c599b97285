"""Which heads a training source supervises (``data.extra_heads``), and its labels masked to match.

A source's label rows are (root, vowel, consonant, seen-grapheme index). A head the source does not
supervise gets ``IGNORED`` in its column and the loss skips it; the seen-grapheme index is kept only
when all three components are supervised (otherwise the grapheme is not known) and becomes
``AUX_IGNORED``, distinct from ``UNSEEN`` (-1: a grapheme outside the 1,295, which outlier exposure
trains the auxiliary head on).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bengaliai.core.competition import COMPONENTS

# Short names users write, in the order of COMPONENTS.
HEAD_NAMES: tuple[str, ...] = ("root", "vowel", "consonant")
ALL = "all"
IGNORED = -1
UNSEEN = -1
AUX_IGNORED = -2


def per_source(extra_heads: Sequence[str], n_sources: int) -> list[str]:
    """The ``data.extra_heads`` entry of each of ``n_sources`` extra sources (``ALL`` for each when unset)."""
    return [str(entry) for entry in extra_heads] or [ALL] * n_sources


def supervised_heads(entry: str) -> tuple[str, ...]:
    """Parse one ``data.extra_heads`` entry ("all", "root", "vowel+consonant", ...) into component names."""
    text = str(entry).strip().lower()
    if text == ALL:
        return COMPONENTS
    names = [part.strip() for part in text.split("+")]
    unknown = [name for name in names if name not in HEAD_NAMES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"{entry!r}: expected {ALL!r} or heads from {'/'.join(HEAD_NAMES)} joined by '+', e.g. 'root'")
    return tuple(COMPONENTS[HEAD_NAMES.index(name)] for name in HEAD_NAMES if name in names)


def mask_labels(labels: np.ndarray, entry: str) -> np.ndarray:
    """A copy of (N, 4) labels with the heads ``entry`` does not supervise marked as not to be learned."""
    kept = supervised_heads(entry)
    masked = labels.copy()
    for column, name in enumerate(COMPONENTS):
        if name not in kept:
            masked[:, column] = IGNORED
    if len(kept) < len(COMPONENTS) and masked.shape[1] > len(COMPONENTS):
        masked[:, len(COMPONENTS)] = AUX_IGNORED
    return masked
