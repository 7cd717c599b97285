"""Drawing one handwriting-like grapheme image: fonts, a glyph cache and per-sample distortion.

Each (font, text) is shaped once with Pillow + raqm at a fixed size and kept as an ink mask;
every sample then warps that mask with cv2 (affine + elastic in one remap), sets the stroke
width with dilate/erode (or, for half the samples, redraws the centre lines with a round pen of
one width, as a ballpoint writes), places it at a random size and position inside the frame without
clipping, blurs it and composes dark ink on noisy light paper. Output depends only on the text,
the config and the generator passed in, so datasets are reproducible whatever the process.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from bengaliai.core.competition import HEIGHT, WIDTH
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fonts import bundled_font_dir, font_path
from bengaliai.synth.strokes import headline_span, pen_stroke, set_stroke

# Casual families first; several are light weights because the stroke width is set per sample.
DEFAULT_FONTS: tuple[str, ...] = (
    "galada-400.ttf", "atma-300.ttf", "atma-500.ttf", "mina-400.ttf", "baloo-da-2-400.ttf",
    "anek-bangla-200.ttf", "hind-siliguri-300.ttf", "noto-sans-bengali-200.ttf",
    "noto-serif-bengali-300.ttf", "tiro-bangla-400.ttf",
)
# Texts a bundled font cannot shape cleanly (raqm draws a dotted circle): that font is skipped
# for any text containing one of these. tests/synth/test_render.py checks that this list is complete.
FONT_GAPS: dict[str, tuple[str, ...]] = {"galada-400.ttf": ("ক্ট্র",)}
# The body height of this letter normalises the very different em sizes of the fonts.
_REFERENCE_LETTER = "ক"
_INK_THRESHOLD = 8


@dataclass(frozen=True)
class RenderConfig:
    """Fonts and the ranges of the per-sample distortions; (low, high) pairs are uniform draws."""

    fonts: tuple[str, ...] = DEFAULT_FONTS  # file names in bengaliai/fonts, or paths
    glyph_size: int = 64  # font size of the cached masks, in pixels
    glyph_cache_size: int = 20_000  # masks kept per process; 0 renders every sample afresh
    body_height: tuple[float, float] = (54.0, 100.0)  # output height of the letter ক, pixels
    aspect_log_mean: float = 0.12  # handwriting runs wider than type
    aspect_log_std: float = 0.14  # anisotropic scale: log(x scale / y scale)
    rotation_std_deg: float = 5.0
    shear_std: float = 0.16  # slant; positive leans right
    elastic_amplitude: tuple[float, float] = (1.0, 5.0)  # displacement std, output pixels
    elastic_cells: tuple[int, int] = (2, 5)  # coarse grid cells per side of the glyph
    stroke_width: tuple[float, float] = (3.5, 7.5)  # output pixels, like a pen
    # Share of samples redrawn along the glyph's centre line with a round pen of one width: no
    # thick-thin contrast of the typeface, like a ballpoint (0 keeps every typeface's own strokes).
    # 0.5 scored best on the real handwriting dev set (BENCHMARKS.md): 0.485 against 0.453 at 0.
    pen_p: float = 0.5
    headline_extend_p: float = 0.6  # writers often draw the matra past the letters
    headline_extend: tuple[float, float] = (0.05, 0.35)  # of the glyph width, per side
    blur_sigma: tuple[float, float] = (0.0, 1.1)
    ink: tuple[int, int] = (10, 70)
    background: tuple[int, int] = (244, 255)
    noise_std: tuple[float, float] = (0.0, 3.5)
    margin: int = 2  # minimum background pixels between the ink and the border, before blur

    def __post_init__(self) -> None:
        if not self.fonts:
            raise BengaliaiError("render config: fonts is empty; name at least one font file")
        for name in ("pen_p", "headline_extend_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BengaliaiError(f"render config: {name} is a probability, within [0, 1]; got {value}")
        for name, value in vars(self).items():
            if name != "fonts" and isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise BengaliaiError(
                    f"render config: {name} is a (low, high) range with low <= high; got {list(value)}"
                )
        if self.glyph_size < 8 or self.margin < 0 or self.glyph_cache_size < 0:
            raise BengaliaiError(
                "render config: need glyph_size >= 8, margin >= 0 and glyph_cache_size >= 0; got "
                f"{self.glyph_size}, {self.margin}, {self.glyph_cache_size}"
            )


@dataclass(frozen=True)
class Glyph:
    """A shaped text as an ink mask (uint8, ink high) with what the distortions need to know."""

    mask: np.ndarray
    stroke: float  # typical stroke width, pixels
    headline: tuple[int, int, int, int] | None  # rows y0:y1 and columns x0:x1 of the matra


def require_raqm() -> None:
    """Raise unless Pillow can shape complex scripts; without raqm Bengali draws wrongly."""
    if not features.check("raqm"):
        raise BengaliaiError(
            "Pillow cannot shape Bengali text: its raqm layout engine is not available, and without it "
            "conjuncts and vowel signs would be drawn as wrong glyphs. Install the system libraries "
            "(Debian/Ubuntu: `apt-get install libraqm0 libfribidi0 libharfbuzz0b`; macOS: `brew install "
            "libraqm`), then check with `python -c \"from PIL import features; print(features.check('raqm'))\"`."
        )


def font_gaps(name: str) -> tuple[str, ...]:
    """Texts that the bundled font ``name`` cannot shape cleanly (``FONT_GAPS``); none for other fonts."""
    return FONT_GAPS.get(Path(name).name, ())


def _open_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = font_path(name)
    try:
        return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)
    except OSError as error:
        bundled = ", ".join(sorted(p.name for p in bundled_font_dir().glob("*.ttf")))
        raise BengaliaiError(
            f"font {name!r}: cannot open {path} ({error}); give a .ttf/.otf path or one of the bundled fonts: {bundled}"
        ) from None


class Renderer:
    """Draws grapheme images; holds the fonts and a bounded cache of shaped glyph masks."""

    def __init__(self, config: RenderConfig) -> None:
        require_raqm()
        self.config = config
        self._fonts = [_open_font(name, config.glyph_size) for name in config.fonts]
        self._gaps = [font_gaps(name) for name in config.fonts]
        self._cache: OrderedDict[tuple[int, str], Glyph] = OrderedDict()
        # Pixels per unit of body height, per font, so all fonts come out at comparable sizes.
        self._body = [float(self.glyph(i, _REFERENCE_LETTER).mask.shape[0]) for i in range(len(self._fonts))]

    def fonts_for(self, text: str) -> list[int]:
        """Indices of the configured fonts that shape ``text`` cleanly."""
        usable = [i for i, gaps in enumerate(self._gaps) if not any(gap in text for gap in gaps)]
        if not usable:
            raise BengaliaiError(f"none of the fonts {', '.join(self.config.fonts)} can draw {text!r} cleanly")
        return usable

    @property
    def cached_glyphs(self) -> int:
        return len(self._cache)

    def shape(self, font_index: int, text: str) -> np.ndarray:
        """The text shaped by raqm in one font, as a tight uint8 mask (ink high)."""
        font = self._fonts[font_index]
        left, top, right, bottom = font.getbbox(text)
        image = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(image).text((-left, -top), text, font=font, fill=255)
        mask = np.asarray(image)
        ys, xs = np.nonzero(mask > _INK_THRESHOLD)
        if len(ys) == 0:
            raise BengaliaiError(f"font {self.config.fonts[font_index]} draws nothing for {text!r}")
        return np.ascontiguousarray(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])

    def glyph(self, font_index: int, text: str) -> Glyph:
        """The cached glyph of a text in one font (rendered on first use; LRU eviction)."""
        key = (font_index, text)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        mask = self.shape(font_index, text)
        binary = (mask > 127).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        perimeter = sum(cv2.arcLength(c, True) for c in contours)
        # A long stroke of width w has area ~ w * L and perimeter ~ 2 L.
        stroke = 2.0 * float(binary.sum()) / max(perimeter, 1.0)
        glyph = Glyph(mask, max(stroke, 1.0), headline_span(binary))
        if self.config.glyph_cache_size > 0:
            self._cache[key] = glyph
            if len(self._cache) > self.config.glyph_cache_size:
                self._cache.popitem(last=False)
        return glyph

    def render(self, text: str, rng: np.random.Generator) -> np.ndarray:
        """One (HEIGHT, WIDTH) uint8 image of the text: dark ink on light paper, nothing clipped."""
        c = self.config
        fonts = self.fonts_for(text)
        font_index = fonts[int(rng.integers(len(fonts)))]
        glyph = self.glyph(font_index, text)
        mask = _extend_headline(glyph, rng, c)
        scale = rng.uniform(*c.body_height) / self._body[font_index]
        ink = _warp(mask, scale, rng, c)
        width = rng.uniform(*c.stroke_width)
        # Drawn only when enabled, so that pen_p=0 leaves the random stream (and every image) as it was.
        if c.pen_p > 0 and rng.random() < c.pen_p:
            ink = pen_stroke(ink, width)
        else:
            ink = set_stroke(ink, glyph.stroke * scale, width)
        return _compose(ink, rng, c)


def _extend_headline(glyph: Glyph, rng: np.random.Generator, c: RenderConfig) -> np.ndarray:
    """The glyph mask, sometimes with its matra drawn further left and/or right."""
    if glyph.headline is None or rng.random() >= c.headline_extend_p:
        return glyph.mask
    y0, y1, x0, x1 = glyph.headline
    width = glyph.mask.shape[1]
    left, right = (int(rng.uniform(*c.headline_extend) * width * rng.integers(2)) for _ in range(2))
    mask = cv2.copyMakeBorder(glyph.mask, 0, 0, left, right, cv2.BORDER_CONSTANT, value=0)
    mask[y0:y1, x0 : x0 + left] = 255
    mask[y0:y1, x1 + left : x1 + left + right] = 255
    return mask


def _warp(mask: np.ndarray, scale: float, rng: np.random.Generator, c: RenderConfig) -> np.ndarray:
    """Scale, slant, rotate and elastically bend the mask in one remap onto a canvas that holds it."""
    aspect = math.exp(rng.normal(c.aspect_log_mean, c.aspect_log_std))
    limit = 3 * c.rotation_std_deg
    angle = math.radians(float(np.clip(rng.normal(0.0, c.rotation_std_deg), -limit, limit)))
    shear = float(np.clip(rng.normal(0.0, c.shear_std), -2.5 * c.shear_std, 2.5 * c.shear_std))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    # Shear about the vertical: x' = x - shear * y, so positive shear leans the tops right.
    matrix = rotation @ np.array([[1.0, -shear], [0.0, 1.0]]) @ np.diag([scale * aspect, scale / aspect])
    h, w = mask.shape
    corners = matrix @ np.array([[0, w, 0, w], [0, 0, h, h]], dtype=np.float64)
    amplitude = rng.uniform(*c.elastic_amplitude)
    pad = int(3 * amplitude) + int(c.stroke_width[1]) + 2
    low = corners.min(axis=1)
    size = np.ceil(corners.max(axis=1) - low).astype(int) + 2 * pad
    out_w, out_h = int(size[0]), int(size[1])
    cells = int(rng.integers(c.elastic_cells[0], c.elastic_cells[1] + 1))
    # A coarse random displacement grid, upsampled smoothly: whole strokes bend, not pixels.
    coarse = rng.normal(0.0, amplitude, size=(cells + 1, cells + 1, 2)).astype(np.float32)
    displacement = cv2.resize(coarse, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    dx, dy = displacement[..., 0], displacement[..., 1]
    xs = np.arange(out_w, dtype=np.float32)[None, :] + dx - np.float32(pad - low[0])
    ys = np.arange(out_h, dtype=np.float32)[:, None] + dy - np.float32(pad - low[1])
    inverse = np.linalg.inv(matrix).astype(np.float32)
    map_x = inverse[0, 0] * xs + inverse[0, 1] * ys
    map_y = inverse[1, 0] * xs + inverse[1, 1] * ys
    return cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _compose(ink: np.ndarray, rng: np.random.Generator, c: RenderConfig) -> np.ndarray:
    """Crop the ink, shrink it if it would not fit, place it, blur it and paint it on paper."""
    x, y, w, h = cv2.boundingRect((ink > _INK_THRESHOLD).view(np.uint8))
    ink = ink[y : y + h, x : x + w] if w else ink[:1, :1]
    sigma = rng.uniform(*c.blur_sigma)
    margin = c.margin + int(math.ceil(3 * sigma))
    room_h, room_w = HEIGHT - 2 * margin, WIDTH - 2 * margin
    h, w = ink.shape
    if h > room_h or w > room_w:
        fit = min(room_h / h, room_w / w)
        h, w = max(1, min(room_h, int(h * fit))), max(1, min(room_w, int(w * fit)))
        ink = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
    # Beta(2.5, 2.5): positions spread over the frame but favour the middle, like real scans.
    top = margin + int(rng.beta(2.5, 2.5) * (room_h - h + 1))
    left = margin + int(rng.beta(2.5, 2.5) * (room_w - w + 1))
    frame = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    frame[top : top + h, left : left + w] = ink
    if sigma > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    paper = rng.uniform(*c.background)
    level = rng.uniform(*c.ink)
    image = paper + (level - paper) / 255.0 * frame.astype(np.float32)
    # Gaussian paper noise from random bytes through a quantile table: a third of the cost of
    # drawing normals, which would otherwise be the most expensive step of a sample.
    noise = _normal_quantiles()[np.frombuffer(rng.bytes(HEIGHT * WIDTH), dtype=np.uint8).reshape(HEIGHT, WIDTH)]
    image += np.float32(rng.uniform(*c.noise_std)) * noise
    return np.clip(image, 0, 255).astype(np.uint8)


@functools.cache
def _normal_quantiles() -> np.ndarray:
    """256 equally likely values of a standard normal, indexed by a uniform random byte."""
    normal = statistics.NormalDist()
    return np.array([normal.inv_cdf((i + 0.5) / 256) for i in range(256)], dtype=np.float32)
