"""Graphemes drawn on real handwritten roots: a font's vowel signs and diacritics, redrawn by pen.

A model trained on font renders misreads handwritten letterforms; real handwritten bare roots exist
(BanglaLekha via ``bengaliai import``) but most graphemes carry signs. For a grapheme whose root has
handwritten samples, the signs are taken from a font in which the root is drawn intact
(``bengaliai.synth.fontsigns``); with no such font (36 of the 792 training graphemes with signs whose root
BanglaLekha has: ক্র, ত্র, ভ্র, গু, ... are ligatures) the grapheme is font-rendered as before.
The signs' centre lines are mapped from the font root's ink box onto the handwritten root's box
(anchored at both matras when both have one, so the signs meet the real headline), jittered,
redrawn with a round pen as wide as the real strokes, joined to the nearest real stroke where the
font joins them, and inked like the real letter; the real matra is often continued over them, as
writers do. The result is shifted, or shrunk when it would not fit, into the frame. All randomness
comes from the generator passed in.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, LABEL_STRINGS, WIDTH, Grapheme
from bengaliai.core.errors import BengaliaiError
from bengaliai.synth.fontsigns import Signs, extract_signs
from bengaliai.synth.realroot import RealRoot, measure_root
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import RootBank
from bengaliai.synth.signbank import SignBank

_SAMPLE_TRIES = 4


@dataclass(frozen=True)
class LetterformConfig:
    """How graphemes are drawn on handwritten roots; (low, high) pairs are uniform draws."""

    p: float = 1.0  # chance a grapheme is drawn on a real root when its root has samples
    glyph_size: int = 96  # font size at which the grapheme and its bare root are shaped and compared
    min_coverage: float = 0.97  # share of the bare root's ink the grapheme must hold where it matched
    scale_jitter: float = 0.06  # std of the log scale of the signs, per axis
    shift_jitter: float = 0.03  # std of the signs' shift, in root heights
    rotation_std_deg: float = 4.0  # each sign turns a little about its centre
    max_anisotropy: float = 1.5  # a sign is never stretched more than this in one axis than the other
    pen_scale: tuple[float, float] = (0.8, 1.1)  # sign pen width / the real root's stroke width
    join_p: float = 0.85  # chance a sign the font joins to the root is joined to the real stroke
    # Writers draw the matra over the whole grapheme: chance the real one is continued over the signs
    # the font's matra spans, and how far past them (a share of the root's width, per side, half the time).
    matra_p: float = 0.7
    matra_extend: tuple[float, float] = (0.0, 0.25)
    # Writers keep signs close: the gap between a sign that lies wholly beside, above or below the root's
    # box and that box, as the font's layout scaled to the root gives it, is multiplied by a draw of this.
    sign_gap: tuple[float, float] = (1.0, 1.0)
    blur_sigma: tuple[float, float] = (0.4, 0.8)
    # With real signs (synth --signs-from): chance a grapheme whose signs have real samples is drawn with one.
    real_signs_p: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p", "min_coverage", "join_p", "matra_p", "real_signs_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BengaliaiError(
                    f"letterform config: {name} is a share, within [0, 1]; got {getattr(self, name)}"
                )
        for name in ("pen_scale", "blur_sigma", "matra_extend", "sign_gap"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise BengaliaiError(f"letterform config: {name} is a (low, high) range; got {[low, high]}")
        if self.glyph_size < 16 or self.max_anisotropy < 1.0:
            raise BengaliaiError("letterform config: need glyph_size >= 16 and max_anisotropy >= 1")


class LetterformDrawer:
    """Draws graphemes on handwritten roots from a RootBank; keeps a bounded cache of extracted signs."""

    def __init__(
        self, bank: RootBank, render_config: RenderConfig, config: LetterformConfig, cache_size: int = 20_000,
        real_signs: SignBank | None = None,
    ) -> None:
        self.bank = bank
        self.config = config
        self.real_signs = real_signs
        # The synth renderer's fonts, shaped larger: the signs are scaled up about 1.5x, not 2.5x.
        shaper_config = RenderConfig(fonts=render_config.fonts, glyph_size=config.glyph_size, glyph_cache_size=0)
        self._shaper = Renderer(shaper_config)
        self._cache: OrderedDict[tuple[int, str], Signs | None] = OrderedDict()
        self._cache_size = cache_size

    def has_root(self, grapheme: Grapheme) -> bool:
        return self.bank.count(grapheme.grapheme_root) > 0

    def signs(self, font_index: int, grapheme: Grapheme, text: str) -> Signs | None:
        """The cached signs of a grapheme in one font; None where subtraction is unreliable."""
        key = (font_index, text)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        root_text = LABEL_STRINGS["grapheme_root"][grapheme.grapheme_root]
        signs = extract_signs(self._shaper, font_index, text, root_text, self.config.min_coverage)
        self._cache[key] = signs
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return signs

    def usable_fonts(self, grapheme: Grapheme, text: str) -> list[int]:
        """Fonts in which the grapheme's root is found intact (all of them for a bare root)."""
        fonts = self._shaper.fonts_for(text)
        if grapheme.vowel_diacritic == 0 and grapheme.consonant_diacritic == 0:
            return fonts
        return [i for i in fonts if self.signs(i, grapheme, text) is not None]

    def draw(self, grapheme: Grapheme, text: str, rng: np.random.Generator) -> tuple[np.ndarray, bool] | None:
        """The grapheme on a random handwritten sample of its root, and whether its signs are a real
        writer's (else a font's); None when it cannot be drawn."""
        count = self.bank.count(grapheme.grapheme_root)
        fonts = self.usable_fonts(grapheme, text) if count else []
        if not fonts:
            return None
        if grapheme.vowel_diacritic == 0 and grapheme.consonant_diacritic == 0:
            return self.bank.image(grapheme.grapheme_root, int(rng.integers(count))), False
        signs = None
        if self.real_signs is not None and rng.random() < self.config.real_signs_p:
            # No draw without a sign bank, so the images of a set without one stay as they were.
            pool = self.real_signs.pool(grapheme)
            signs = pool[int(rng.integers(len(pool)))] if pool else None
        real = signs is not None
        if signs is None:
            signs = self.signs(fonts[int(rng.integers(len(fonts)))], grapheme, text)
        assert signs is not None
        for _ in range(_SAMPLE_TRIES):  # about 1 image in 1000 of the BanglaLekha import is only specks
            root = measure_root(self.bank.image(grapheme.grapheme_root, int(rng.integers(count))))
            if root is not None:
                return compose_signs(root, signs, rng, self.config), real
        return None

def compose_signs(root: RealRoot, signs: Signs, rng: np.random.Generator, c: LetterformConfig) -> np.ndarray:
    """Draw the signs on the handwritten root with a pen like its own, then fit it all in the frame."""
    fx0, fy0, fx1, fy1 = signs.box
    hx0, hy0, hx1, hy1 = root.box
    sx = (hx1 - hx0) / max(fx1 - fx0, 1)
    sy = (hy1 - hy0) / max(fy1 - fy0, 1)
    fy_ref, hy_ref = float(fy0), float(hy0)
    matras = _matching_matras(root, signs)
    if matras:
        # Anchored at both matras and both feet, so the signs meet the real headline.
        assert signs.headline is not None and root.headline is not None
        sy, fy_ref, hy_ref = (hy1 - root.headline) / (fy1 - signs.headline), signs.headline, root.headline
    height = hy1 - hy0
    shift = rng.normal(0.0, c.shift_jitter * height, size=2)
    sx *= math.exp(rng.normal(0.0, c.scale_jitter))
    sy *= math.exp(rng.normal(0.0, c.scale_jitter))
    mean = math.sqrt(sx * sy)
    limit = math.sqrt(c.max_anisotropy)
    stretch = np.array([np.clip(sx, mean / limit, mean * limit), np.clip(sy, mean / limit, mean * limit)], np.float32)

    def place(points: np.ndarray) -> np.ndarray:
        """Font coordinates to frame coordinates: the box mapping."""
        mapped = np.empty_like(points)
        mapped[..., 0] = hx0 + (points[..., 0] - fx0) * sx + shift[0]
        mapped[..., 1] = hy_ref + (points[..., 1] - fy_ref) * sy + shift[1]
        return mapped

    ink_ys, ink_xs = np.nonzero(root.ink)
    real = np.stack([ink_xs, ink_ys], axis=1).astype(np.float32)
    strokes: list[np.ndarray] = []  # (n, 2, 2) centre-line segments in frame coordinates
    for links, anchor in zip(signs.segments, signs.anchors, strict=True):
        centre = links.reshape(-1, 2).mean(axis=0)
        angle = math.radians(rng.normal(0.0, c.rotation_std_deg))
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=np.float32)
        # The sign's place follows the box mapping (its gap to the root's box narrowed by sign_gap); its
        # shape is stretched at most max_anisotropy.
        shape = ((links - centre) * stretch) @ rot.T
        target = place(centre)
        if tuple(c.sign_gap) != (1.0, 1.0):  # no draw at the default, so its images stay as they were
            target = _closer(target, shape, root.box, rng.uniform(*c.sign_gap))
        strokes.append(shape + target)
        if anchor is not None and rng.random() < c.join_p:
            start = ((anchor - centre) * stretch) @ rot.T + target
            distance = np.hypot(*(real - start).T)
            nearest = int(np.argmin(distance))
            if distance[nearest] < 0.4 * height:
                strokes.append(np.array([[start, real[nearest]]], dtype=np.float32))
    if matras and signs.matra is not None and rng.random() < c.matra_p:
        span = place(np.array([[signs.matra[0], 0.0], [signs.matra[1], 0.0]]))[:, 0]
        strokes += _matra_extensions(root, (float(span[0]), float(span[1])), rng, c)
    width = root.stroke * rng.uniform(*c.pen_scale)
    # A canvas around the frame that holds every stroke (up to a frame's size past each side).
    points = np.concatenate([stroke.reshape(-1, 2) for stroke in strokes])
    room = int(width) + 4
    low = np.clip(np.ceil(-points.min(axis=0)) + room, 0, WIDTH).astype(int)
    high = np.clip(np.ceil(points.max(axis=0) - (WIDTH, HEIGHT)) + room, 0, WIDTH).astype(int)
    canvas = np.zeros((HEIGHT + low[1] + high[1], WIDTH + low[0] + high[0]), dtype=np.uint8)
    for stroke in strokes:
        _polylines(canvas, stroke + low.astype(np.float32))
    gap = cv2.distanceTransform(255 - canvas, cv2.DIST_L2, 5)
    alpha = np.clip(0.5 * width + 0.5 - gap, 0.0, 1.0).astype(np.float32)
    sigma = rng.uniform(*c.blur_sigma)
    if sigma > 0.3:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    frame = np.full(canvas.shape, root.paper, dtype=np.float32)
    frame += rng.normal(0.0, max(root.noise, 0.1), size=frame.shape).astype(np.float32)
    inside = (slice(low[1], low[1] + HEIGHT), slice(low[0], low[0] + WIDTH))
    frame[inside] = root.image
    ink = alpha > 0.35
    ink[inside] |= root.ink.astype(bool)
    image = np.minimum(frame, root.paper - (root.paper - root.level) * alpha)
    return _fit(image, ink, (int(low[1]), int(low[0])), root.paper)


def _closer(target: np.ndarray, shape: np.ndarray, box: tuple[int, int, int, int], factor: float) -> np.ndarray:
    """``target`` (a sign's centre) moved so that the gap between the sign (``shape`` around it) and
    ``box`` is ``factor`` times what it was, on each axis where the sign lies wholly outside the box."""
    if factor == 1.0:
        return target
    moved = target.copy()
    for axis in (0, 1):
        low, high = float(shape[..., axis].min()) + target[axis], float(shape[..., axis].max()) + target[axis]
        box_low, box_high = box[axis], box[axis + 2]
        if low > box_high:  # right of (or below) the box
            moved[axis] -= (1.0 - factor) * (low - box_high)
        elif high < box_low:  # left of (or above) the box
            moved[axis] += (1.0 - factor) * (box_low - high)
    return moved


def _matching_matras(root: RealRoot, signs: Signs) -> bool:
    """Whether both roots have a matra at about the same height of their boxes: a row the writer
    drew as a matra, not some wide row of a letter written without one."""
    if root.headline is None or signs.headline is None:
        return False
    fy0, fy1, hy0, hy1 = signs.box[1], signs.box[3], root.box[1], root.box[3]
    font, real = (signs.headline - fy0) / (fy1 - fy0), (root.headline - hy0) / (hy1 - hy0)
    return font < 0.7 and real < 0.7 and abs(font - real) < 0.12


def _matra_extensions(
    root: RealRoot, span: tuple[float, float], rng: np.random.Generator, c: LetterformConfig
) -> list[np.ndarray]:
    """Segments continuing the real matra over the signs' span, sometimes past it, slightly tilted."""
    assert root.matra is not None and root.headline is not None
    width = root.box[2] - root.box[0]
    left = min(span[0], root.matra[0]) - rng.integers(2) * rng.uniform(*c.matra_extend) * width
    right = max(span[1], root.matra[1]) + rng.integers(2) * rng.uniform(*c.matra_extend) * width
    y = root.headline
    segments = []
    for start, end in ((root.matra[0], left), (root.matra[1], right)):
        if abs(end - start) > 1:
            tilt = rng.normal(0.0, 0.03) * abs(end - start)
            segments.append(np.array([[[start, y], [end, y + tilt]]], dtype=np.float32))
    return segments


def _polylines(canvas: np.ndarray, links: np.ndarray) -> None:
    """Draw (n, 2, 2) segments one pixel wide with sub-pixel end points."""
    points = np.round(links * 16).astype(np.int32)
    cv2.polylines(canvas, list(points), False, 255, 1, cv2.LINE_8, shift=4)


def _fit(image: np.ndarray, ink: np.ndarray, origin: tuple[int, int], paper: float, margin: int = 2) -> np.ndarray:
    """The 137x236 window of a larger canvas that holds all the ink, moved the least from where the
    frame was (``origin``: its top, left); the ink shrunk and centred only when it cannot fit."""
    x, y, w, h = cv2.boundingRect(ink.astype(np.uint8))
    room_h, room_w = HEIGHT - 2 * margin, WIDTH - 2 * margin
    if h <= room_h and w <= room_w:
        top = int(np.clip(np.clip(origin[0], y + h + margin - HEIGHT, y - margin), 0, image.shape[0] - HEIGHT))
        left = int(np.clip(np.clip(origin[1], x + w + margin - WIDTH, x - margin), 0, image.shape[1] - WIDTH))
        return np.clip(image[top : top + HEIGHT, left : left + WIDTH], 0, 255).astype(np.uint8)
    fit = min(room_h / h, room_w / w)
    nh, nw = max(1, min(room_h, int(h * fit))), max(1, min(room_w, int(w * fit)))
    small = cv2.resize(image[y : y + h, x : x + w], (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.full((HEIGHT, WIDTH), paper, dtype=np.float32)
    top, left = (HEIGHT - nh) // 2, (WIDTH - nw) // 2
    out[top : top + nh, left : left + nw] = small
    return np.clip(out, 0, 255).astype(np.uint8)
