"""Graphemes missing from the real training set: which label triples can stand as one grapheme.

The hidden test of the competition holds graphemes that never occur in train.csv, so synthetic
renders of such graphemes are a training source (``bengaliai synth --graphemes unseen``). Every
rule here is read from the 1292 training triples (``competition.seen_triples``), not from a
grammar of Bengali:

- the root is a consonant or conjunct: in train, ং, ঃ, the independent vowels and ৎ take no vowel
  sign (only the fixed spellings অ্যা and এ্যা, and candrabindu on four of them);
- the (vowel, consonant diacritic) pair occurs in train: 48 of the 77 pairs do. So র্য (3) stands
  only with no vowel sign and ্র্য (6) only with none or া;
- a root that never stands bare in train (13 conjuncts such as স্ন, গ্ব) is not drawn bare;
- a consonant diacritic goes on a root that takes it in train, or is *productive* (taken by at least
  half of the single consonants in train: ঁ, র্, ্য, ্র) on a single consonant that takes some
  consonant diacritic in train (not ড় or ঢ়). Conjuncts take them only as seen: none of the 119 takes
  candrabindu, and reph and the phalas go on a few specific ones;
- no two triples share a text (র + reph and র + ra-phala both spell র্র), and none spells a
  training grapheme.

``shapeable_unseen`` then keeps a triple only where every font that would draw it shapes its text
as one clean cluster (``bengaliai.synth.shaping``): no dotted circle, no tofu. Dropping a grapheme that one
font fails, rather than drawing it with the other fonts only, keeps every image of it clean without a
per-text font list in the renderer. The bundled fonts fail none of them (Galada's one gap, ক্ট্র, is
already kept off it by ``render.FONT_GAPS``).
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass

from bengaliai.core.competition import (
    LABEL_STRINGS,
    N_CLASSES,
    Grapheme,
    compose,
    render_text,
    seen_graphemes,
    seen_triples,
)
from bengaliai.synth.render import font_gaps
from bengaliai.synth.shaping import ShapingCheck

log = logging.getLogger(__name__)

PRODUCTIVE_SHARE = 0.5  # of the single consonants in train that take a consonant diacritic

Triple = tuple[int, int, int]


def is_consonant(char: str) -> bool:
    """A Bengali consonant letter (ক..হ, ড় ঢ় য় ...), the first letter of a root that takes signs."""
    return "\u0995" <= char <= "\u09b9" or "\u09dc" <= char <= "\u09df"


def _roots() -> tuple[str, ...]:
    return LABEL_STRINGS["grapheme_root"]


def _consonant_roots() -> list[int]:
    return [r for r, text in enumerate(_roots()) if is_consonant(text[0])]


@functools.cache
def productive_consonant_diacritics() -> frozenset[int]:
    """The consonant diacritics that at least half of the single-consonant roots take in train."""
    seen = seen_triples()
    singles = [r for r in _consonant_roots() if len(_roots()[r]) == 1]
    takers = Counter(c for c in range(1, N_CLASSES["consonant_diacritic"]) for r in singles
                     if any(t[0] == r and t[2] == c for t in seen))
    return frozenset(c for c, n in takers.items() if n >= PRODUCTIVE_SHARE * len(singles))


@functools.cache
def unseen_candidates() -> tuple[Triple, ...]:
    """Every unseen triple the rules of the module docstring allow, sorted (before the shaping check)."""
    seen = seen_triples()
    vowel_consonant = {(v, c) for _, v, c in seen}
    root_consonant = {(r, c) for r, _, c in seen}
    bare = {r for r, v, c in seen if v == 0 and c == 0}
    productive = productive_consonant_diacritics()
    signed_singles = {r for r, _, c in seen if c != 0 and len(_roots()[r]) == 1}

    def takes(r: int, c: int) -> bool:
        return c == 0 or (r, c) in root_consonant or (c in productive and r in signed_singles)

    triples = [
        (r, v, c)
        for r in _consonant_roots()
        for v in range(N_CLASSES["vowel_diacritic"])
        for c in range(N_CLASSES["consonant_diacritic"])
        if (r, v, c) not in seen and (v, c) in vowel_consonant and takes(r, c) and (v or c or r in bare)
    ]
    texts = Counter(compose(*t) for t in triples)
    taken = {g.text for g in seen_graphemes()} | {compose(*t) for t in seen}
    return tuple(t for t in triples if texts[compose(*t)] == 1 and compose(*t) not in taken)


@functools.cache
def unseen_triples() -> tuple[Triple, ...]:
    """The unseen triples of a synthetic *test* split: a conservative subset of ``unseen_candidates``.

    Many triples shape without error but are not real graphemes, so this rule is stricter: in the
    training set the root occurs with that vowel (with any consonant diacritic) and with that
    consonant diacritic (with any vowel), and the (vowel, consonant) pair occurs (with any root).
    """
    seen = {t for t in seen_triples() if is_consonant(_roots()[t[0]][0])}
    root_vowel = {(r, v) for r, v, _ in seen}
    root_consonant = {(r, c) for r, _, c in seen}
    vowel_consonant = {(v, c) for _, v, c in seen}
    return tuple(
        (r, v, c)
        for r, v in sorted(root_vowel)
        for c in sorted({c for rr, c in root_consonant if rr == r})
        if (v, c) in vowel_consonant and (r, v, c) not in seen_triples()
    )


@dataclass(frozen=True)
class UnseenPool:
    """The unseen graphemes a synthetic set draws from, and how many candidates each font rejected."""

    graphemes: tuple[Grapheme, ...]
    candidates: int
    rejected_by_font: dict[str, int]


@functools.cache
def shapeable_unseen(fonts: tuple[str, ...]) -> UnseenPool:
    """The unseen candidates that every one of ``fonts`` able to draw them shapes as one clean cluster.

    A font skips a text containing one of its known gaps (``render.FONT_GAPS``), as the renderer does;
    a candidate that no font may draw is dropped too. Takes about 1 ms per candidate and font.
    """
    checks = [ShapingCheck(name) for name in fonts]
    rejected: Counter[str] = Counter()
    kept = []
    for triple in unseen_candidates():
        grapheme = Grapheme(compose(*triple), *triple)
        text = render_text(grapheme)
        usable = [i for i, name in enumerate(fonts) if not any(gap in text for gap in font_gaps(name))]
        failing = [i for i in usable if not checks[i].clean(text)]
        rejected.update(fonts[i] for i in failing)
        if usable and not failing:
            kept.append(grapheme)
    log.info("unseen graphemes: %d of %d candidates shape cleanly in every font that draws them%s",
             len(kept), len(unseen_candidates()),
             "".join(f"; {name} fails {n}" for name, n in sorted(rejected.items())))
    return UnseenPool(tuple(kept), len(unseen_candidates()), {name: rejected[name] for name in fonts})
