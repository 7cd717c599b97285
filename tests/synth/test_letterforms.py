"""``synth --roots-from``: graphemes drawn on handwritten roots, their format, placement and determinism."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPONENTS, HEIGHT, TRAIN_CSV, WIDTH, Grapheme, compose, seen_triples
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv
from bengaliai.data.parquet_images import read_image_ids, read_images, write_image_parquet
from bengaliai.synth.dataset import synthesize
from bengaliai.synth.drawing import NO_CLEAN_FONT, NO_SAMPLES, REAL_ROOT, draw_image
from bengaliai.synth.letterforms import LetterformConfig, LetterformDrawer, compose_signs
from bengaliai.synth.realroot import measure_root
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.rootbank import RootBank
from bengaliai.synth.sampling import TRAIN_CODE

KA, TA, KHA = 13, 64, 22  # roots ক, ত (with fake handwritten samples) and খ (without)
N_TRAIN, SEED = 8, 17  # seed 17's first 8 training graphemes hold কৌ and র্ত্রী (a ligature)


def fake_root(rng: np.random.Generator) -> np.ndarray:
    """A letter-like drawing in the middle of the frame: a matra, a stem and a bowl, dark on light."""
    image = np.full((HEIGHT, WIDTH), 252, dtype=np.uint8)
    dx, dy = (int(v) for v in rng.integers(-5, 6, size=2))
    ink, width = int(rng.integers(30, 60)), int(rng.integers(4, 7))
    cv2.line(image, (88 + dx, 40 + dy), (148 + dx, 40 + dy), ink, width)
    cv2.line(image, (135 + dx, 40 + dy), (135 + dx, 100 + dy), ink, width)
    cv2.ellipse(image, (112 + dx, 75 + dy), (18, 20), 0, 0, 360, ink, width)
    return image


def write_imported(folder: Path, ids: list[str], roots: list[int], seed: int) -> np.ndarray:
    """An imported folder of bare roots in the training format; returns its images in row order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = np.stack([fake_root(rng) for _ in roots])
    write_image_parquet(folder / "train_image_data_0.parquet", ids, images)
    rows = [(i, r, 0, 0, compose(r, 0, 0)) for i, r in zip(ids, roots, strict=True)]
    write_csv(pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"]), folder / TRAIN_CSV)
    return images


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny stand-in for `bengaliai import banglalekha`: bare roots ক and ত, four images each."""
    folder = tmp_path_factory.mktemp("imported")
    roots = [KA] * 4 + [TA] * 4
    write_imported(folder, [f"BLI_{i}" for i in range(len(roots))], roots, seed=0)
    return folder


# A second import (e.g. conjunct roots from another dataset): two more ত, and খ that the first lacks.
SECOND_ROOTS = [KHA, TA, KHA, TA, KHA]


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("second")
    images = write_imported(folder, [f"CMP_{i}" for i in range(len(SECOND_ROOTS))], SECOND_ROOTS, seed=5)
    return folder, images


@pytest.fixture(scope="module")
def drawer(imported: Path) -> LetterformDrawer:
    return LetterformDrawer(RootBank(imported), RenderConfig(), LetterformConfig(join_p=0.0, matra_p=0.0))


def _root_shift(drawn: np.ndarray, root: np.ndarray) -> tuple[int, int]:
    """Where the handwritten root matches ``drawn`` best: its shift (the drawing may move it to fit the signs)."""
    cost = cv2.matchTemplate(drawn.astype(np.float32), root[20:-20, 20:-20].astype(np.float32), cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(cost)
    return x - 20, y - 20


def _new_ink(drawn: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Pixels the signs darkened where the handwritten root, found in ``drawn``, has no ink; and
    the root's shift (the drawing may move it to fit the signs in the frame)."""
    dx, dy = _root_shift(drawn, root)
    shifted = cv2.warpAffine(root, np.float32([[1, 0, dx], [0, 1, dy]]), (WIDTH, HEIGHT), borderValue=252)
    return (drawn.astype(int) < shifted.astype(int) - 80) & (shifted > 200), (dx, dy)


def _root_ink_kept(drawn: np.ndarray, root: np.ndarray) -> float:
    """Share of the root's ink pixels that ``drawn`` holds unchanged, grey for grey, where the root matches best.

    A drawing on a handwritten root pastes the sample whole, only moved, and adds signs beside it: about 1.
    A font render, or another sample, keeps almost none of its exact greys at the right places.
    """
    dx, dy = _root_shift(drawn, root)
    ys, xs = np.nonzero(root < 200)
    inside = (ys + dy >= 0) & (ys + dy < HEIGHT) & (xs + dx >= 0) & (xs + dx < WIDTH)
    ys, xs = ys[inside], xs[inside]
    return float((drawn[ys + dy, xs + dx] == root[ys, xs]).sum()) / float((root < 200).sum())


@pytest.mark.parametrize(
    ("vowel", "where"),
    [(1, "right"), (4, "below")],  # া to the right of the root, ু under it
)
def test_vowel_sign_ink_is_added_where_the_script_puts_it(drawer: LetterformDrawer, vowel: int, where: str) -> None:
    grapheme = Grapheme(compose(KA, vowel, 0), KA, vowel, 0)
    fonts = drawer.usable_fonts(grapheme, grapheme.text)
    assert len(fonts) >= 5
    for seed, font in enumerate(fonts[:4]):
        root_image = fake_root(np.random.default_rng(seed))
        root = measure_root(root_image)
        signs = drawer.signs(font, grapheme, grapheme.text)
        assert root is not None and signs is not None
        drawn = compose_signs(root, signs, np.random.default_rng(seed), drawer.config)
        assert drawn.shape == (HEIGHT, WIDTH) and drawn.dtype == np.uint8
        assert _root_ink_kept(drawn, root_image) > 0.9  # the handwritten root itself is in the image
        new, (dx, dy) = _new_ink(drawn, root_image)
        x1, y1 = root.box[2] + dx, root.box[3] + dy
        ys, xs = np.nonzero(new)
        assert len(ys) > 30
        if where == "right":
            assert np.mean(xs >= x1 - 2) > 0.8
        else:
            assert np.mean(ys >= y1 - 2) > 0.6


def test_root_without_samples_falls_back_to_the_font_renderer(drawer: LetterformDrawer) -> None:
    renderer = Renderer(RenderConfig())
    grapheme = Grapheme(compose(KHA, 1, 0), KHA, 1, 0)
    image, kind = draw_image(renderer, drawer, grapheme, 3, TRAIN_CODE, 5)
    plain, plain_kind = draw_image(renderer, None, grapheme, 3, TRAIN_CODE, 5)
    assert kind == NO_SAMPLES and plain_kind == "font"
    np.testing.assert_array_equal(image, plain)


def test_ligature_that_changes_the_root_is_font_rendered(drawer: LetterformDrawer) -> None:
    # ক with ra-phala shapes as one new glyph in every bundled font: the bare ক is not found in it.
    grapheme = Grapheme(compose(KA, 0, 5), KA, 0, 5)
    assert drawer.usable_fonts(grapheme, grapheme.text) == []
    _, kind = draw_image(Renderer(RenderConfig()), drawer, grapheme, 0, TRAIN_CODE, 0)
    assert kind == NO_CLEAN_FONT


def _synth(out: Path, imported: Path, workers: int) -> Path:
    synthesize(out, n_train=N_TRAIN, n_test=0, seed=SEED, workers=workers, roots_from=imported, id_prefix="LF")
    return out


@pytest.fixture(scope="module")
def letterforms(tmp_path_factory: pytest.TempPathFactory, imported: Path) -> Path:
    return _synth(tmp_path_factory.mktemp("letterforms"), imported, workers=1)


def test_a_grapheme_whose_root_has_samples_is_drawn_on_one(drawer: LetterformDrawer) -> None:
    grapheme = Grapheme(compose(TA, 1, 0), TA, 1, 0)
    image, kind = draw_image(Renderer(RenderConfig()), drawer, grapheme, 0, TRAIN_CODE, 0)
    assert kind == REAL_ROOT and image.shape == (HEIGHT, WIDTH) and image.dtype == np.uint8
    # One of ত's four handwritten samples is in the image, ink for ink; the font render of the same grapheme holds none.
    samples = [drawer.bank.image(TA, k) for k in range(drawer.bank.count(TA))]
    assert max(_root_ink_kept(image, sample) for sample in samples) > 0.9
    plain, _ = draw_image(Renderer(RenderConfig()), None, grapheme, 0, TRAIN_CODE, 0)
    assert max(_root_ink_kept(plain, sample) for sample in samples) < 0.1


def test_synth_with_roots_writes_the_competition_format(letterforms: Path, imported: Path) -> None:
    out = letterforms
    train = pd.read_csv(out / TRAIN_CSV, dtype={"image_id": str, "grapheme": str}, keep_default_na=False)
    assert list(train.columns) == ["image_id", *COMPONENTS, "grapheme"]
    assert train["image_id"].tolist() == [f"LF_{i}" for i in range(N_TRAIN)]
    assert all(tuple(t) in seen_triples() for t in train[list(COMPONENTS)].itertuples(index=False))
    files = [out / f"train_image_data_{i}.parquet" for i in range(4)]
    assert [i for path in files for i in read_image_ids(path)] == train["image_id"].tolist()
    _, images = read_images(files[0])
    assert images.dtype == np.uint8 and images.shape == (2, HEIGHT, WIDTH)
    manifest = json.loads((out / "synth.json").read_text(encoding="utf-8"))
    drawn = manifest["letterforms"]["drawn"]
    assert manifest["complete"] and manifest["id_prefix"] == "LF"
    with_samples = int(train["grapheme_root"].isin([KA, TA]).sum())
    assert drawn[REAL_ROOT] + drawn[NO_CLEAN_FONT] == with_samples and drawn[NO_SAMPLES] == N_TRAIN - with_samples
    assert drawn[REAL_ROOT] >= 1 and manifest["letterforms"]["roots_from"]["roots"] == 2
    # The images counted as drawn on a handwritten root are those that hold one of their root's samples.
    bank = RootBank(imported)
    images = np.concatenate([read_images(path)[1] for path in files])
    on_a_sample = [
        any(_root_ink_kept(image, bank.image(root, k)) > 0.9 for k in range(bank.count(root)))
        for image, root in zip(images, train["grapheme_root"], strict=True)
    ]
    assert sum(on_a_sample) == drawn[REAL_ROOT]


def test_unseen_graphemes_are_drawn_on_handwritten_roots_too(tmp_path: Path) -> None:
    # --graphemes unseen with --roots-from: combinations outside the 1,295, on real roots where there are samples.
    from collections import Counter

    from bengaliai.synth.unseen import unseen_candidates

    common = [root for root, _ in Counter(t[0] for t in unseen_candidates()).most_common(10)]  # ~16% of them
    imported = tmp_path / "imported"
    roots = [root for root in common for _ in range(2)]
    write_imported(imported, [f"BLI_{i}" for i in range(len(roots))], roots, seed=1)
    out = tmp_path / "unseen_lf"
    one_font = RenderConfig(fonts=("mina-400.ttf",))  # one font keeps the shaping check of the candidates short
    synthesize(out, n_train=20, n_test=0, seed=SEED, workers=1, config=one_font, roots_from=imported, id_prefix="ULF",
               graphemes="unseen")
    train = pd.read_csv(out / TRAIN_CSV, dtype={"image_id": str, "grapheme": str}, keep_default_na=False)
    triples = [tuple(t) for t in train[list(COMPONENTS)].itertuples(index=False)]
    assert len(triples) == 20 and not any(t in seen_triples() for t in triples)
    drawn = json.loads((out / "synth.json").read_text(encoding="utf-8"))["letterforms"]["drawn"]
    with_samples = int(train["grapheme_root"].isin(common).sum())
    assert with_samples >= 1 and drawn[REAL_ROOT] >= 1
    assert drawn[REAL_ROOT] + drawn[NO_CLEAN_FONT] == with_samples and drawn[NO_SAMPLES] == 20 - with_samples


@pytest.mark.slow
def test_synth_with_roots_is_the_same_whatever_the_worker_count(
    tmp_path: Path, imported: Path, letterforms: Path
) -> None:
    _synth(tmp_path / "two", imported, workers=2)
    for name in ["train.csv", *(f"train_image_data_{i}.parquet" for i in range(4))]:
        assert (letterforms / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_roots_from_a_folder_with_dressed_graphemes_is_refused(tmp_path: Path, imported: Path) -> None:
    labels = pd.read_csv(imported / TRAIN_CSV, dtype=str, keep_default_na=False)
    labels.loc[0, "vowel_diacritic"] = "1"
    folder = tmp_path / "dressed"
    folder.mkdir()
    (folder / "train_image_data_0.parquet").write_bytes((imported / "train_image_data_0.parquet").read_bytes())
    write_csv(labels, folder / TRAIN_CSV)
    with pytest.raises(DataError, match="not bare roots"):
        RootBank(folder)


def test_cli_records_options_and_rejects_bad_ones(
    tmp_path: Path, imported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--train", "1", "--test", "0", "--workers", "1", "--roots-from", str(imported)]
    assert main([*args, "--letterform-p", "0.5", "--id-prefix", "LF"]) == 0
    manifest = json.loads((out / "synth.json").read_text(encoding="utf-8"))
    assert manifest["letterforms"]["config"]["p"] == 0.5 and manifest["id_prefix"] == "LF"
    assert main([*args, "--letterform-p", "1.5"]) == 2
    assert "p is a share" in capsys.readouterr().err
    assert main([*args, "--letterform-set", "sign_gap=[0.2,0.6]", "--force"]) == 0
    manifest = json.loads((out / "synth.json").read_text(encoding="utf-8"))
    assert manifest["letterforms"]["config"]["sign_gap"] == [0.2, 0.6] and manifest["letterforms"]["config"]["p"] == 1.0
    assert main([*args, "--letterform-set", "sign_gap=[0.6,0.2]"]) == 2
    assert "sign_gap is a (low, high) range" in capsys.readouterr().err
    with pytest.raises(BengaliaiError, match="id prefix"):
        synthesize(tmp_path / "bad", 1, 0, 0, 1, id_prefix="L F")


def test_a_bank_pools_several_folders_in_their_order(imported: Path, second: tuple[Path, np.ndarray]) -> None:
    folder, images = second
    bank = RootBank([imported, folder])
    assert bank.roots == {KA, TA, KHA}
    assert (bank.count(KA), bank.count(TA), bank.count(KHA)) == (4, 6, 3)
    first = RootBank(imported)
    for k in range(4):
        np.testing.assert_array_equal(bank.image(TA, k), first.image(TA, k))
    # ত's images beyond the first folder's four are the second folder's, in its train.csv order.
    np.testing.assert_array_equal(bank.image(TA, 4), images[1])
    np.testing.assert_array_equal(bank.image(TA, 5), images[3])
    np.testing.assert_array_equal(bank.image(KHA, 2), images[4])
    with pytest.raises(IndexError):
        bank.image(TA, 6)
    # The other order puts the second folder's images first.
    np.testing.assert_array_equal(RootBank([folder, imported]).image(TA, 0), images[1])
    pickled = pickle.loads(pickle.dumps(bank))
    assert pickled._maps is None
    np.testing.assert_array_equal(pickled.image(KHA, 0), images[0])


def test_a_pooled_bank_describes_totals_and_each_folder(imported: Path, second: tuple[Path, np.ndarray]) -> None:
    folder = second[0]
    described = RootBank([imported, folder]).describe()
    assert described["images"] == 8 + len(SECOND_ROOTS) and described["roots"] == 3
    assert described["path"] == f"{imported}, {folder}"
    assert described["folders"] == [
        {"path": str(imported), "images": 8, "roots": 2},
        {"path": str(folder), "images": len(SECOND_ROOTS), "roots": 2},
    ]
    assert RootBank(imported).describe()["path"] == str(imported)


def test_an_image_id_in_two_folders_is_refused_naming_both(tmp_path: Path, imported: Path) -> None:
    clash = tmp_path / "clash"
    write_imported(clash, ["CMP_0", "BLI_3"], [KHA, KHA], seed=2)
    with pytest.raises(DataError, match="BLI_3") as caught:
        RootBank([imported, clash])
    message = str(caught.value)
    assert str(clash / TRAIN_CSV) in message and str(imported / TRAIN_CSV) in message
    assert not (clash / "cache").exists()  # refused before preparing anything
    with pytest.raises(BengaliaiError, match="given twice"):
        RootBank([imported, imported])


def test_cli_pools_repeated_roots_from(tmp_path: Path, imported: Path, second: tuple[Path, np.ndarray]) -> None:
    out, folder = tmp_path / "pooled", second[0]
    args = ["synth", "--out", str(out), "--train", "2", "--test", "0", "--workers", "1", "--id-prefix", "LF"]
    assert main([*args, "--roots-from", str(imported), "--roots-from", str(folder)]) == 0
    pooled = json.loads((out / "synth.json").read_text(encoding="utf-8"))["letterforms"]["roots_from"]
    assert [f["path"] for f in pooled["folders"]] == [str(imported), str(folder)]
    assert pooled["roots"] == 3 and pooled["images"] == 8 + len(SECOND_ROOTS)


def test_sign_gap_narrows_the_gap_between_a_sign_and_the_root_box() -> None:
    from bengaliai.synth.letterforms import _closer

    box = (100, 40, 140, 90)  # x0, y0, x1, y1
    bar = np.array([[[-1.0, -20.0], [1.0, 20.0]]], dtype=np.float32)  # a vertical stroke 2 px wide
    right = _closer(np.array([161.0, 65.0], np.float32), bar, box, 0.5)  # 20 px right of the box
    np.testing.assert_allclose(right, [151.0, 65.0])  # its left edge now 10 px from the box
    left = _closer(np.array([79.0, 65.0], np.float32), bar, box, 0.25)  # 20 px left of it
    np.testing.assert_allclose(left, [94.0, 65.0])
    dot = np.array([[[-2.0, -2.0], [2.0, 2.0]]], dtype=np.float32)
    above = _closer(np.array([120.0, 18.0], np.float32), dot, box, 0.0)  # over the box: vertical gap closed
    np.testing.assert_allclose(above, [120.0, 38.0])
    inside = np.array([120.0, 60.0], np.float32)  # overlapping the box on both axes: not moved
    np.testing.assert_allclose(_closer(inside, dot, box, 0.1), inside)
    np.testing.assert_allclose(_closer(np.array([161.0, 65.0], np.float32), bar, box, 1.0), [161.0, 65.0])
