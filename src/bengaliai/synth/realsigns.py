"""A handwritten grapheme's own vowel sign and diacritics: its ink minus its root, found with fonts' help.

``bengaliai.synth.letterforms`` draws a grapheme on a handwritten root with signs taken from a font
(``bengaliai.synth.fontsigns``). Real writers draw the signs their own way (ী's loop, ূ's tail, ৈ's
two hooks), so where handwritten whole graphemes exist (``bengaliai import bhcc``) their signs can be
used instead. A handwritten grapheme has no separate root to subtract, so the fonts say which part is
which: each font in which the root is found intact (``fontsigns.font_parts``) lays out the grapheme
as root and signs; its two masks are scaled from the font grapheme's ink box onto the handwritten
grapheme's ink box, and every handwritten ink pixel goes to whichever mask is nearer. Fonts vote, a
pixel is a sign's where most of them say so. The sign pixels are kept as the links of their centre
lines, relative to the handwritten root's box, in the same ``Signs`` form as a font's, so that
``letterforms.compose_signs`` maps them onto another writer's root and redraws them with that
root's pen. Cuts that look wrong (too little or too much sign, a root too small) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from bengaliai.synth.fontsigns import FontParts, Signs, links_of
from bengaliai.synth.strokes import headline_span, stroke_width, thin

# A cut is refused when the sign pixels are less or more than these shares of the grapheme's ink.
MIN_SIGN_SHARE, MAX_SIGN_SHARE = 0.04, 0.75
_MIN_INK, _MIN_ROOT_HEIGHT = 150, 20
# Why a handwritten grapheme gave no signs, as counted by the sign bank.
NO_FONT, FAINT, SIGN_SHARE, SMALL_ROOT = "no_font_with_intact_root", "too_little_ink", "sign_share", "small_root"


def ink_mask(image: np.ndarray) -> np.ndarray | None:
    """The 0/1 ink of a dark-on-light handwritten image (as ``realroot.measure_root`` finds it)."""
    paper = float(np.median(image))
    dark = image[image < paper - 30]
    if len(dark) < _MIN_INK:
        return None
    return (image < 0.5 * (paper + float(np.percentile(dark, 10)))).astype(np.uint8)


def sign_votes(ink: np.ndarray, layouts: Sequence[FontParts]) -> np.ndarray:
    """For each pixel of ``ink``'s box, how many fonts' layouts put it nearer their signs than their root."""
    x, y, w, h = cv2.boundingRect(ink)
    votes = np.zeros((h, w), dtype=np.int32)
    for parts in layouts:
        fx, fy, fw, fh = cv2.boundingRect(parts.full)
        root = cv2.resize(parts.placed[fy : fy + fh, fx : fx + fw], (w, h), interpolation=cv2.INTER_NEAREST)
        sign = cv2.resize(parts.rest[fy : fy + fh, fx : fx + fw], (w, h), interpolation=cv2.INTER_NEAREST)
        if not sign.any() or not root.any():
            continue
        to_root = cv2.distanceTransform(1 - root, cv2.DIST_L2, 3)
        to_sign = cv2.distanceTransform(1 - sign, cv2.DIST_L2, 3)
        votes += to_sign < to_root
    return votes


def cut_signs(image: np.ndarray, layouts: Sequence[FontParts]) -> Signs | str:
    """The signs of a handwritten grapheme (dark ink on light, any size) as a ``Signs`` relative to
    its root's box, or the reason it was refused (``NO_FONT``, ``FAINT``, ``SIGN_SHARE``, ``SMALL_ROOT``)."""
    if not layouts:
        return NO_FONT
    ink = ink_mask(image)
    if ink is None:
        return FAINT
    x, y, w, h = cv2.boundingRect(ink)
    box = ink[y : y + h, x : x + w]
    sign = (sign_votes(ink, layouts) * 2 > len(layouts)).astype(np.uint8) & box
    root = box & (1 - sign)
    stroke = stroke_width(box)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sign, connectivity=8)
    keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= max(12.0, 1.5 * stroke * stroke)]
    sign_ink = sum(int(stats[i, cv2.CC_STAT_AREA]) for i in keep)
    if not MIN_SIGN_SHARE <= sign_ink / max(int(box.sum()), 1) <= MAX_SIGN_SHARE:
        return SIGN_SHARE
    for i in range(1, n):  # slivers of the cut go back to the root
        if i not in keep:
            root[labels == i] = 1
    rx, ry, rw, rh = cv2.boundingRect(root)
    if rh < _MIN_ROOT_HEIGHT or rw < _MIN_ROOT_HEIGHT // 2:
        return SMALL_ROOT
    gap = cv2.distanceTransform(1 - root, cv2.DIST_L2, 3)
    segments: list[np.ndarray] = []
    anchors: list[np.ndarray | None] = []
    origin = np.array([rx, ry], dtype=np.float32)
    for i in keep:
        centre = thin((labels == i).astype(np.uint8))
        links = links_of(centre)
        if len(links) == 0:
            continue
        ys, xs = np.nonzero(centre)
        nearest = int(np.argmin(gap[ys, xs]))
        touching = gap[labels == i].min() <= 1.5  # the writer joined it to the root
        segments.append(links - origin)
        anchors.append(np.array([xs[nearest], ys[nearest]], dtype=np.float32) - origin if touching else None)
    if not segments:
        return SIGN_SHARE
    line, whole = headline_span(root[ry : ry + rh, rx : rx + rw]), headline_span(box)
    matra = None
    if line is not None and whole is not None and whole[0] <= ry + line[1] and ry + line[0] <= whole[1]:
        matra = (float(whole[2] - rx), float(whole[3] - rx))
    headline = None if line is None else 0.5 * (line[0] + line[1])
    return Signs(segments, anchors, (0, 0, rw, rh), headline, matra)
