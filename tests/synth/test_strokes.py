"""Stroke geometry of ink masks: thinning keeps connectivity and equals the reference Zhang-Suen."""

from __future__ import annotations

import numpy as np

from bengaliai.synth import strokes


def test_thinning_leaves_a_connected_one_pixel_centre_line() -> None:
    import cv2

    bar = np.zeros((40, 80), dtype=np.uint8)
    bar[10:18, 5:70] = 1
    cv2.circle(bar, (40, 28), 8, 1, 3)  # a ring hanging below the bar: its loop must survive
    centre = strokes.thin(bar)
    assert set(np.unique(centre)) <= {0, 1}
    assert (centre <= bar).all()
    assert (centre[:, 10:30].sum(axis=0) == 1).all()  # one pixel across the bar, away from the ends
    assert cv2.connectedComponents(centre, connectivity=8)[0] - 1 == 1
    # The ring's hole stays a hole: thinning keeps the topology.
    assert cv2.connectedComponents((1 - centre).astype(np.uint8), connectivity=4)[0] - 1 == 2


def _reference_thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen as the paper states it, pixel by pixel within each sub-iteration's snapshot."""
    img = np.pad(binary.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            snapshot = img.copy()
            for y, x in zip(*np.nonzero(snapshot[1:-1, 1:-1]), strict=True):
                y, x = y + 1, x + 1
                p = [snapshot[y + dy, x + dx] for dy, dx in strokes._RING]
                transitions = sum(p[k] == 0 and p[(k + 1) % 8] == 1 for k in range(8))
                p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
                corner = (p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0) if step == 0 else (p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0)
                if 2 <= sum(p) <= 6 and transitions == 1 and corner:
                    img[y, x] = 0
                    changed = True
        if not changed:
            return img[1:-1, 1:-1]


def test_table_thinning_equals_the_reference_algorithm() -> None:
    import cv2

    rng = np.random.default_rng(0)
    for _ in range(5):
        blob = (cv2.GaussianBlur(rng.random((30, 40)), (0, 0), 2.0) > 0.5).astype(np.uint8)
        np.testing.assert_array_equal(strokes.thin(blob), _reference_thin(blob))
