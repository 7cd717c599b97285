"""A contact sheet of how ``synth --signs-from`` cuts handwritten graphemes into root and signs.

Usage: python benchmarks/real_signs_sheet.py --signs-from GRAPHEMES_DIR --out /tmp/cuts.png [--n 40] [--seed 0]
Draws ``n`` random dressed graphemes of GRAPHEMES_DIR (a folder in the training format, e.g. from
``bengaliai import bhcc``) with the pixels the fonts' vote gives to the signs in red and the rest
(the root) in grey, each captioned with its image id, how the cut went (``ok`` or the reason it
was refused) and how many fonts voted. Write it outside the repository.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bengaliai.core.competition import HEIGHT, LABEL_STRINGS, TRAIN_CSV, WIDTH, Grapheme, compose, render_text
from bengaliai.data.labels import read_train_labels
from bengaliai.synth.realsigns import cut_signs, ink_mask, sign_votes
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import locate_images
from bengaliai.synth.signbank import layouts

log = logging.getLogger("real_signs_sheet")
_COLUMNS = 8


def cut_tile(image: np.ndarray, grapheme: Grapheme, shaper: Renderer, caption: str) -> tuple[np.ndarray, str]:
    """The image in colour, its sign pixels red, captioned; and how the cut went."""
    found = layouts(shaper, render_text(grapheme), LABEL_STRINGS["grapheme_root"][grapheme.grapheme_root], 0.97)
    cut = cut_signs(image, found)
    tile = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    ink = ink_mask(image)
    if ink is not None and found:
        x, y, w, h = cv2.boundingRect(ink)
        sign = (sign_votes(ink, found) * 2 > len(found)) & ink[y : y + h, x : x + w].astype(bool)
        tile[y : y + h, x : x + w][sign] = (0, 0, 230)
    outcome = cut if isinstance(cut, str) else "ok"
    cv2.putText(tile, f"{caption} {outcome[:12]} n={len(found)}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                (0, 120, 0), 1)
    return tile, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signs-from", type=Path, required=True, metavar="GRAPHEMES_DIR")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write (outside the repository)")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    labels = read_train_labels(args.signs_from / TRAIN_CSV)
    files, located = locate_images(args.signs_from, labels, workers=1)
    maps = [np.load(path, mmap_mode="r") for path in files]
    dressed = np.flatnonzero((labels["vowel_diacritic"] > 0) | (labels["consonant_diacritic"] > 0))
    picked = np.random.default_rng(args.seed).choice(dressed, min(args.n, len(dressed)), replace=False)
    shaper = Renderer(RenderConfig(glyph_size=96, glyph_cache_size=0))
    tiles, outcomes = [], []
    for i in sorted(picked.tolist()):
        row = labels.iloc[i]
        triple = (int(row["grapheme_root"]), int(row["vowel_diacritic"]), int(row["consonant_diacritic"]))
        file_index, k = located[i]
        image = np.subtract(255, maps[file_index][k], dtype=np.uint8)
        tile, outcome = cut_tile(image, Grapheme(compose(*triple), *triple), shaper, str(row["image_id"]))
        tiles.append(tile)
        outcomes.append(outcome)
    blank = np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8)
    tiles += [blank] * (-len(tiles) % _COLUMNS)
    rows = [np.hstack([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=128) for t in tiles[r : r + _COLUMNS]])
            for r in range(0, len(tiles), _COLUMNS)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows))
    log.info("wrote %s: %d graphemes, %s", args.out, len(outcomes), pd.Series(outcomes).value_counts().to_dict())


if __name__ == "__main__":
    main()
