"""Real handwritten signs for ``synth --signs-from``: cut from imported whole graphemes, indexed by sign.

``synth --roots-from DIR --signs-from GRAPHEMES_DIR`` draws graphemes on handwritten roots as before,
but takes each grapheme's vowel sign and consonant diacritic, where it can, from a real writer's
grapheme carrying the same ones (``bengaliai.synth.realsigns``: the grapheme's ink minus its root)
instead of from a font. GRAPHEMES_DIR is a folder in the competition's training format of
handwritten whole graphemes, such as ``bengaliai import bhcc`` writes (its training writers only:
never the writers held out to measure on). Its bare roots (no sign) are skipped. Samples are pooled
by (vowel diacritic, consonant diacritic): a ি cut from কি can be drawn on any root. Every image is
cut once, here, in this process, in train.csv order, so the bank depends only on its folders and
fonts; it is small (centre lines) and pickled into the worker processes whole.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from bengaliai.core.competition import LABEL_STRINGS, TRAIN_CSV, Grapheme, compose, render_text
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.labels import read_train_labels
from bengaliai.synth.fontsigns import FontParts, Signs, font_parts
from bengaliai.synth.realsigns import cut_signs
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import Folders, as_folders, locate_images

log = logging.getLogger(__name__)

MAX_FONTS = 3  # fonts that vote on where a handwritten grapheme's root ends and its signs begin
Key = tuple[int, int]  # (vowel diacritic, consonant diacritic)


def sign_key(grapheme: Grapheme) -> Key:
    return (grapheme.vowel_diacritic, grapheme.consonant_diacritic)


def key_name(key: Key) -> str:
    """A key as its signs, e.g. "ি", "ি + ্র", "র্" (for a manifest and logs)."""
    parts = [LABEL_STRINGS["vowel_diacritic"][key[0]]] * (key[0] > 0)
    parts += [LABEL_STRINGS["consonant_diacritic"][key[1]]] * (key[1] > 0)
    return " + ".join(parts)


def layouts(shaper: Renderer, text: str, root_text: str, min_coverage: float) -> list[FontParts]:
    """Up to ``MAX_FONTS`` of the shaper's fonts in which ``text`` holds ``root_text`` intact, in font order."""
    found = []
    for font in shaper.fonts_for(text):
        parts = font_parts(shaper, font, text, root_text, min_coverage)
        if parts is not None:
            found.append(parts)
            if len(found) == MAX_FONTS:
                break
    return found


class SignBank:
    """The signs cut from handwritten whole graphemes of one or several imported folders, by sign."""

    def __init__(
        self, folders: Folders, render_config: RenderConfig, glyph_size: int = 96, min_coverage: float = 0.97,
        workers: int = 1,
    ) -> None:
        """Cut the signs of every dressed grapheme of ``folders`` (preparing their raw caches first when
        missing or stale); raises DataError naming a folder without train.csv or whose images are
        missing, BengaliaiError when no grapheme gives signs."""
        self.folders = as_folders(folders)
        if not self.folders:
            raise BengaliaiError("--signs-from needs at least one folder")
        shaper = Renderer(RenderConfig(fonts=render_config.fonts, glyph_size=glyph_size, glyph_cache_size=0))
        self._pool: dict[Key, list[Signs]] = {}
        self.refused: Counter[str] = Counter()
        self.bare = 0
        for folder in self.folders:
            labels_path = folder / TRAIN_CSV
            if not labels_path.exists():
                raise DataError(labels_path, "missing: --signs-from needs a folder in the training format of "
                                "handwritten whole graphemes, e.g. the output of `bengaliai import bhcc`")
            labels = read_train_labels(labels_path)
            files, located = locate_images(folder, labels, workers)
            maps = [np.load(path, mmap_mode="r") for path in files]
            rows = labels[["grapheme_root", "vowel_diacritic", "consonant_diacritic"]].to_numpy()
            for (root, vowel, consonant), (file_index, row) in tqdm(
                zip(rows.tolist(), located.tolist(), strict=True), total=len(rows), desc="signs", unit="img",
                disable=None,
            ):
                if vowel == 0 and consonant == 0:
                    self.bare += 1
                    continue
                grapheme = Grapheme(compose(root, vowel, consonant), root, vowel, consonant)
                text = render_text(grapheme)
                found = layouts(shaper, text, LABEL_STRINGS["grapheme_root"][root], min_coverage)
                cut = cut_signs(np.subtract(255, maps[file_index][row], dtype=np.uint8), found)
                if isinstance(cut, str):
                    self.refused[cut] += 1
                else:
                    self._pool.setdefault(sign_key(grapheme), []).append(cut)
        if not self._pool:
            raise BengaliaiError(
                f"--signs-from {', '.join(map(str, self.folders))}: no grapheme gave a sign "
                f"({self.bare} bare roots, refused: {dict(self.refused) or 'none'})"
            )
        log.info("real signs: %d cut from %d folder(s), %d kinds of sign; refused %s; %d bare roots skipped",
                 self.count(), len(self.folders), len(self._pool), dict(self.refused) or "none", self.bare)

    def count(self) -> int:
        return sum(len(pool) for pool in self._pool.values())

    def pool(self, grapheme: Grapheme) -> Sequence[Signs]:
        """The real samples of the grapheme's signs (empty when none was cut)."""
        return self._pool.get(sign_key(grapheme), ())

    def describe(self) -> dict[str, Any]:
        """For synth.json: the folders, how many signs were cut and refused, and how many of each kind."""
        return {
            "path": ", ".join(str(folder) for folder in self.folders), "signs": self.count(),
            "refused": dict(sorted(self.refused.items())), "bare_roots_skipped": self.bare,
            "by_sign": {key_name(key): len(self._pool[key]) for key in sorted(self._pool)},
        }

