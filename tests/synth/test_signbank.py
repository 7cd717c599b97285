"""``synth --signs-from``: the bank of signs cut from handwritten whole graphemes, and drawing with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import (
    COMPONENTS,
    HEIGHT,
    LABEL_STRINGS,
    TRAIN_CSV,
    WIDTH,
    Grapheme,
    compose,
    render_text,
)
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.parquet_images import read_images
from bengaliai.synth.dataset import synthesize
from bengaliai.synth.drawing import NO_CLEAN_FONT, REAL_ROOT
from bengaliai.synth.fontsigns import Signs
from bengaliai.synth.letterforms import LetterformConfig, LetterformDrawer, compose_signs
from bengaliai.synth.realroot import measure_root
from bengaliai.synth.realsigns import FAINT, cut_signs
from bengaliai.synth.render import RenderConfig
from bengaliai.synth.rootbank import RootBank
from bengaliai.synth.signbank import SignBank, layouts

from sign_builders import PAPER, font_written, shaper, write_training_folder
from test_letterforms import KA, KHA, TA, write_imported

GA = 23  # গ: no image of it in the folder
# The folder of handwritten whole graphemes: (root, vowel, consonant), the font that "writes" it or
# None for a blank page. Two ি (কি, খি) pool together; কু is only a blank page, so ু has no sample.
WRITTEN = [
    ((KA, 1, 0), 5), ((KA, 2, 0), 7), ((KA, 0, 0), 5), ((KHA, 2, 0), 4), ((KA, 4, 0), None), ((KA, 9, 0), 6),
    ((TA, 7, 0), 8),
]
CUT = [0, 1, 3, 5, 6]  # the rows that give signs, in train.csv order
N_TRAIN, SEED = 40, 49  # seed 49's 40 graphemes hold তি, তে and তো (signs in the bank) and ক, র্কু, ক্য (not)


def _images() -> np.ndarray:
    renderer = shaper()
    blank = np.full((HEIGHT, WIDTH), PAPER, np.uint8)
    return np.stack([
        blank if font is None else font_written(renderer, font, render_text(Grapheme(compose(*t), *t)))
        for t, font in WRITTEN
    ])


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A tiny stand-in for `bengaliai import bhcc` (in two image files), and its images in row order."""
    folder = tmp_path_factory.mktemp("bhcc")
    images = _images()
    write_training_folder(folder, [f"BH_{i}" for i in range(len(WRITTEN))], [t for t, _ in WRITTEN], images)
    return folder, images


@pytest.fixture(scope="module")
def bank(written: tuple[Path, np.ndarray]) -> SignBank:
    return SignBank(written[0], RenderConfig())


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As test_letterforms' `imported`: bare roots ক and ত, four images each."""
    folder = tmp_path_factory.mktemp("roots")
    write_imported(folder, [f"BLI_{i}" for i in range(8)], [KA] * 4 + [TA] * 4, seed=0)
    return folder


def _grapheme(root: int, vowel: int, consonant: int) -> Grapheme:
    return Grapheme(compose(root, vowel, consonant), root, vowel, consonant)


def _same(a: Signs, b: Signs) -> bool:
    return (
        a.box == b.box and a.headline == b.headline and a.matra == b.matra and len(a.segments) == len(b.segments)
        and all(np.array_equal(x, y) for x, y in zip(a.segments, b.segments, strict=True))
        and all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a.anchors, b.anchors, strict=True))
    )


def test_every_dressed_grapheme_is_cut_and_the_rest_counted(bank: SignBank, written: tuple[Path, np.ndarray]) -> None:
    assert bank.count() == len(CUT)
    assert bank.bare == 1 and dict(bank.refused) == {FAINT: 1}
    assert bank.describe() == {
        "path": str(written[0]), "signs": len(CUT), "refused": {FAINT: 1}, "bare_roots_skipped": 1,
        "by_sign": {"া": 1, "ি": 2, "ে": 1, "ো": 1},
    }


def test_pools_are_the_cuts_of_the_images_with_those_signs(bank: SignBank, written: tuple[Path, np.ndarray]) -> None:
    images = written[1]
    renderer = shaper()

    def cut(row: int) -> Signs:
        t = WRITTEN[row][0]
        text = render_text(_grapheme(*t))
        signs = cut_signs(images[row], layouts(renderer, text, LABEL_STRINGS["grapheme_root"][t[0]], 0.97))
        assert isinstance(signs, Signs)
        return signs

    # ি of any root: কি's and খি's, in train.csv order; read from the second image file too.
    i_pool = bank.pool(_grapheme(GA, 2, 0))
    assert len(i_pool) == 2 and _same(i_pool[0], cut(1)) and _same(i_pool[1], cut(3))
    assert len(bank.pool(_grapheme(TA, 1, 0))) == 1 and _same(bank.pool(_grapheme(TA, 1, 0))[0], cut(0))
    assert _same(bank.pool(_grapheme(KHA, 9, 0))[0], cut(5))
    assert len(bank.pool(_grapheme(KA, 4, 0))) == 0  # its only image was blank
    assert len(bank.pool(_grapheme(KA, 2, 2))) == 0  # ি with reph is another sign
    assert len(bank.pool(_grapheme(KA, 0, 0))) == 0


def test_a_folder_without_train_csv_or_without_signs_is_refused(tmp_path: Path, roots: Path) -> None:
    with pytest.raises(DataError, match="missing") as caught:
        SignBank(tmp_path, RenderConfig())
    assert caught.value.path == tmp_path / TRAIN_CSV
    with pytest.raises(BengaliaiError, match="no grapheme gave a sign.*8 bare roots"):
        SignBank(roots, RenderConfig())


def _drawer(roots: Path, bank: SignBank | None, real_signs_p: float = 1.0) -> LetterformDrawer:
    letterforms = LetterformConfig(real_signs_p=real_signs_p)
    if bank is None:  # as every caller built it before real signs
        return LetterformDrawer(RootBank(roots), RenderConfig(), letterforms)
    return LetterformDrawer(RootBank(roots), RenderConfig(), letterforms, real_signs=bank)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sign_in_the_bank_is_drawn_from_it(roots: Path, bank: SignBank, seed: int) -> None:
    ki, ku = _grapheme(KA, 2, 0), _grapheme(KA, 4, 0)
    drawer = _drawer(roots, bank)
    image, real = drawer.draw(ki, ki.text, np.random.default_rng(seed)) or (None, None)
    assert real is True and image is not None and image.shape == (HEIGHT, WIDTH) and image.dtype == np.uint8
    # The draws: whether to use a real sign, which, which root sample, then the drawing's own.
    rng = np.random.default_rng(seed)
    rng.random()  # a real sign or a font's: real, at real_signs_p 1
    pool = bank.pool(ki)
    signs = pool[int(rng.integers(len(pool)))]
    root = measure_root(drawer.bank.image(KA, int(rng.integers(drawer.bank.count(KA)))))
    assert root is not None
    np.testing.assert_array_equal(image, compose_signs(root, signs, rng, drawer.config))
    drawn = drawer.draw(ku, ku.text, np.random.default_rng(seed))  # no ু in the bank: a font's
    assert drawn is not None and drawn[1] is False
    ka = _grapheme(KA, 0, 0)
    bare = drawer.draw(ka, ka.text, np.random.default_rng(seed))
    assert bare is not None and bare[1] is False
    drawn = _drawer(roots, bank, real_signs_p=0.0).draw(ki, ki.text, np.random.default_rng(seed))
    assert drawn is not None and drawn[1] is False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_a_bank_the_images_are_as_before(roots: Path, seed: int) -> None:
    ki = _grapheme(KA, 2, 0)
    drawer = _drawer(roots, None)
    image, real = drawer.draw(ki, ki.text, np.random.default_rng(seed)) or (None, None)
    assert real is False and image is not None
    # The draws before real signs existed: a font, a root sample, then the drawing's own.
    rng = np.random.default_rng(seed)
    fonts = drawer.usable_fonts(ki, ki.text)
    signs = drawer.signs(fonts[int(rng.integers(len(fonts)))], ki, ki.text)
    root = measure_root(drawer.bank.image(KA, int(rng.integers(drawer.bank.count(KA)))))
    assert signs is not None and root is not None
    np.testing.assert_array_equal(image, compose_signs(root, signs, rng, drawer.config))
    explicit = LetterformDrawer(RootBank(roots), RenderConfig(), LetterformConfig(), real_signs=None)
    again = explicit.draw(ki, ki.text, np.random.default_rng(seed))
    assert again is not None and again[1] is False
    np.testing.assert_array_equal(again[0], image)


def _files(out: Path) -> list[Path]:
    return [out / TRAIN_CSV, *(out / f"train_image_data_{i}.parquet" for i in range(4))]


@pytest.fixture(scope="module")
def signed_set(tmp_path_factory: pytest.TempPathFactory, roots: Path, written: tuple[Path, np.ndarray]) -> Path:
    """`bengaliai synth --roots-from ROOTS --signs-from BHCC` with one worker."""
    out = tmp_path_factory.mktemp("signed") / "one"
    args = ["synth", "--out", str(out), "--train", str(N_TRAIN), "--test", "0", "--seed", str(SEED)]
    assert main([*args, "--workers", "1", "--roots-from", str(roots), "--signs-from", str(written[0])]) == 0
    return out


def test_synth_with_signs_from_describes_the_bank_and_counts_real_signs(signed_set: Path, bank: SignBank) -> None:
    manifest = json.loads((signed_set / "synth.json").read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["letterforms"]["signs_from"] == bank.describe()
    drawn = manifest["letterforms"]["drawn"]
    train = pd.read_csv(signed_set / TRAIN_CSV, dtype={"image_id": str, "grapheme": str}, keep_default_na=False)
    with_real = [
        row.grapheme_root in (KA, TA) and len(bank.pool(_grapheme(*(getattr(row, c) for c in COMPONENTS)))) > 0
        for row in train.itertuples(index=False)
    ]
    assert drawn["real_signs"] == sum(with_real) == 3
    # Every image of ক or ত is on a real root (real signs among them) unless no font lays it out (ত্রি).
    assert drawn[REAL_ROOT] + drawn[NO_CLEAN_FONT] == int(train["grapheme_root"].isin([KA, TA]).sum()) == 8
    assert drawn[REAL_ROOT] > drawn["real_signs"]  # ক, র্কু, ... on real roots with a font's signs or none
    assert len(read_images(_files(signed_set)[1])[1]) == N_TRAIN // 4


@pytest.mark.slow
def test_synth_with_signs_from_is_the_same_whatever_the_worker_count(
    tmp_path: Path, roots: Path, written: tuple[Path, np.ndarray], signed_set: Path
) -> None:
    two = tmp_path / "two"
    synthesize(two, N_TRAIN, 0, SEED, workers=2, roots_from=roots, signs_from=[written[0]])
    for path in _files(signed_set):
        assert path.read_bytes() == (two / path.name).read_bytes(), path.name


def test_signs_from_without_roots_from_is_refused_before_writing(
    tmp_path: Path, written: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(BengaliaiError, match="--signs-from without --roots-from"):
        synthesize(out, 4, 0, 0, 1, signs_from=written[0])
    assert not out.exists() or not any(out.iterdir())
    assert main(["synth", "--out", str(out), "--train", "4", "--test", "0", "--signs-from", str(written[0])]) == 2
    assert "--signs-from without --roots-from" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
