"""A contact sheet of graphemes drawn on handwritten roots (``synth --roots-from``), beside real ones.

Usage: python benchmarks/letterform_sheet.py --roots-from IMPORTED_DIR [--roots-from DIR2 ...]
           --out /tmp/letterforms.png [--real DIR] [--n 48] [--seed 0] [--letterform-set KEY=VALUE ...]
           [--signs-from GRAPHEMES_DIR]
The tiles are the first ``n`` training images of ``bengaliai synth --roots-from IMPORTED_DIR --seed
SEED`` that were drawn on a handwritten root and carry a sign (bare roots are the imported images
themselves), each labelled in blue with its grapheme (with --signs-from, a grapheme whose signs are a
real writer's is marked R); then, under a bar, real handwriting from
--real (137x236 PNGs, e.g. the dev set: to look at, never to train on). Write it outside the repo.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bengaliai.core.competition import WIDTH, seen_graphemes
from bengaliai.core.config import load_config
from bengaliai.core.fonts import font_path
from bengaliai.synth.drawing import REAL_ROOT, REAL_SIGNS, draw_image
from bengaliai.synth.letterforms import LetterformConfig, LetterformDrawer
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import RootBank
from bengaliai.synth.sampling import TRAIN_CODE, sample_train
from bengaliai.synth.signbank import SignBank

from contact_sheet import grid, real_images  # benchmarks/ is on the path when run as a script

log = logging.getLogger(__name__)
_COLUMNS = 6


def letterform_images(
    bank: RootBank, n: int, seed: int, config: LetterformConfig, only: Sequence[str] = (),
    signs: SignBank | None = None,
) -> list[tuple[np.ndarray, str]]:
    """The first ``n`` synth training images drawn on a real root with at least one sign, with their
    text; with ``only``, each of those graphemes in turn instead of synth's plan."""
    render_config = RenderConfig()
    renderer, drawer = Renderer(render_config), LetterformDrawer(bank, render_config, config, real_signs=signs)
    plan = sample_train(max(50 * n, 2000), seed)
    if only:
        known = {g.text: g for g in seen_graphemes()}
        missing = [text for text in only if text not in known]
        if missing:
            raise SystemExit(f"not training graphemes: {' '.join(missing)}")
        plan = [known[only[i % len(only)]] for i in range(n)]
    found = []
    for index, grapheme in enumerate(plan):
        if grapheme.vowel_diacritic == 0 and grapheme.consonant_diacritic == 0:
            continue
        image, kind = draw_image(renderer, drawer, grapheme, seed, TRAIN_CODE, index)
        if kind in (REAL_ROOT, REAL_SIGNS) or only:
            found.append((image, grapheme.text + " R" * (kind == REAL_SIGNS)))
            if len(found) == n:
                break
    return found


def labelled(sheet: np.ndarray, texts: list[str], columns: int) -> np.ndarray:
    """The grey sheet in colour with each tile's grapheme written in its top left corner."""
    image = Image.fromarray(cv2.cvtColor(sheet, cv2.COLOR_GRAY2RGB))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path("noto-sans-bengali-200.ttf")), 22, layout_engine=ImageFont.Layout.RAQM)
    tile_h, tile_w = sheet.shape[0] // max(1, -(-len(texts) // columns)), WIDTH + 4
    for i, text in enumerate(texts):
        r, c = divmod(i, columns)
        draw.text((c * tile_w + 3, r * tile_h + 1), text, font=font, fill=(40, 60, 230))
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--roots-from", type=Path, action="append", required=True, metavar="IMPORTED_DIR",
        help="imported folder of handwritten bare roots (repeat to pool several)",
    )
    parser.add_argument("--out", type=Path, required=True, help="PNG to write (outside the repository)")
    parser.add_argument("--real", type=Path, help="folder of real 137x236 PNGs to show below")
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--n-real", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graphemes", default="", help="comma-separated graphemes to draw (default: synth's plan)")
    parser.add_argument("--letterform-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--signs-from", type=Path, action="append", metavar="GRAPHEMES_DIR",
                        help="draw real writers' signs cut from these whole graphemes (synth --signs-from)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(LetterformConfig, None, args.letterform_set)
    only = [text for text in args.graphemes.split(",") if text]
    signs = None if args.signs_from is None else SignBank(args.signs_from, RenderConfig(), config.glyph_size,
                                                          config.min_coverage)
    drawn = letterform_images(RootBank(args.roots_from), args.n, args.seed, config, only, signs)
    sheet = labelled(grid([image for image, _ in drawn], _COLUMNS), [text for _, text in drawn], _COLUMNS)
    if args.real is not None:
        real = cv2.cvtColor(grid(real_images(args.real, args.n_real), _COLUMNS), cv2.COLOR_GRAY2BGR)
        bar = np.zeros((12, sheet.shape[1], 3), dtype=np.uint8)
        bar[:] = (0, 160, 0)
        sheet = np.vstack([sheet, bar, real])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), sheet)
    log.info("wrote %s: %d letterform images", args.out, len(drawn))


if __name__ == "__main__":
    main()
