"""Unseen graphemes: the rules read from the training triples, the shaping check, ``synth --graphemes``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from bengaliai.cli import main as cli
from bengaliai.core.competition import (
    COMPONENTS,
    LABEL_STRINGS,
    Grapheme,
    compose,
    render_text,
    seen_graphemes,
    seen_triples,
)
from bengaliai.core.errors import BengaliaiError
from bengaliai.synth import unseen
from bengaliai.synth.dataset import synthesize
from bengaliai.synth.render import DEFAULT_FONTS, RenderConfig
from bengaliai.synth.sampling import sample_train
from bengaliai.synth.shaping import ShapingCheck
from bengaliai.synth.unseen import (
    UnseenPool,
    productive_consonant_diacritics,
    shapeable_unseen,
    unseen_candidates,
    unseen_triples,
)

FONT = "mina-400.ttf"  # one font keeps the shaping check of the ~1900 candidates to a couple of seconds
N_TRAIN, SEED = 48, 5


def _triples(frame: pd.DataFrame) -> list[tuple[int, int, int]]:
    return list(zip(*(frame[c] for c in COMPONENTS), strict=True))


def test_the_constraints_hold_in_the_training_data() -> None:
    seen = seen_triples()
    assert {v for _, v, c in seen if c == 3} == {0}  # র্য only without a vowel sign
    assert {v for _, v, c in seen if c == 6} == {0, 1}  # ্র্য only without one or with া
    assert len({(v, c) for _, v, c in seen}) == 48
    never_bare = {r for r in range(168) if (r, 0, 0) not in seen}
    assert len(never_bare) == 13
    assert {LABEL_STRINGS["grapheme_root"][r] for r in never_bare} >= {"স্ন", "গ্ব", "হ্ল"}
    # ং, ঃ, the independent vowels and ৎ take no vowel sign but in the fixed spellings অ্যা and এ্যা.
    not_consonants = {t for t in seen if t[0] < 13 or t[0] == 164}
    assert {t for t in not_consonants if t[1] != 0} == {(2, 1, 4), (9, 1, 4)}
    assert productive_consonant_diacritics() == {1, 2, 4, 5}  # ঁ র্ ্য ্র; not র্য or ্র্য


def test_unseen_rule() -> None:
    unseen = unseen_triples()
    assert len(unseen) > 300 and len(set(unseen)) == len(unseen)
    seen = seen_triples()
    root_vowel = {(r, v) for r, v, _ in seen}
    root_consonant = {(r, c) for r, _, c in seen}
    for r, v, c in unseen:
        assert (r, v, c) not in seen and (r, v) in root_vowel and (r, c) in root_consonant
        assert r >= 13  # roots 0-12 are ং, ঃ and the independent vowels
        assert c != 3 or v == 0
        assert c != 6 or v in (0, 1)
    assert (13, 0, 1) in unseen  # কঁ
    assert (2, 1, 0) not in unseen  # অ + া is not a grapheme (it is written আ)


def test_unseen_candidates_follow_the_rules() -> None:
    candidates = unseen_candidates()
    assert len(candidates) == 1897 and len(set(candidates)) == len(candidates)
    assert list(candidates) == sorted(candidates)
    seen = seen_triples()
    pairs = {(v, c) for _, v, c in seen}
    root_consonant = {(r, c) for r, _, c in seen}
    roots = LABEL_STRINGS["grapheme_root"]
    for r, v, c in candidates:
        assert (r, v, c) not in seen and (v, c) in pairs
        assert unseen.is_consonant(roots[r][0]) and r != 164
        assert v or c or (r, 0, 0) in seen  # never-bare roots stay with a sign
        assert c == 0 or (r, c) in root_consonant or (c in {1, 2, 4, 5} and len(roots[r]) == 1)
        assert c != 3 or v == 0
        assert c != 6 or v in (0, 1)
    texts = [compose(*t) for t in candidates]
    assert len(set(texts)) == len(texts) and not set(texts) & {g.text for g in seen_graphemes()}
    assert {(13, 0, 1), (13, 10, 1), (29, 2, 2)} <= set(candidates)  # কঁ কৌঁ র্ঘি
    # কীঁ (pair unseen), bare স্ন, র্র (two labellings), র্ড়া, ক্ষঁ (conjunct), র্ক্য (not productive)
    for absent in [(13, 3, 1), (152, 0, 0), (123, 0, 2), (123, 0, 5), (165, 1, 2), (18, 0, 1), (13, 0, 3)]:
        assert absent not in candidates, absent


def test_the_shaping_check_catches_dotted_circles_and_tofu() -> None:
    check = ShapingCheck("galada-400.ttf")
    assert check.clean("ক") and check.clean("র্ক্ষ্মৌ") and check.clean("\u00a0ং")
    # A bare vowel sign and অ + া get a dotted circle, Galada cannot join ক্ট্র, a Thai letter is missing.
    assert not any(check.clean(text) for text in ["\u09bf", "অা", "ক্ট্রা", "\u0e01"])


def test_the_pool_drops_what_a_drawing_font_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class FailsKsa:
        def __init__(self, name: str) -> None:
            self.name = name

        def clean(self, text: str) -> bool:
            return not (self.name == "atma-300.ttf" and "ক্ষ" in text)

    monkeypatch.setattr(unseen, "ShapingCheck", FailsKsa)
    pool = shapeable_unseen.__wrapped__(("galada-400.ttf", "atma-300.ttf"))
    ksa = [t for t in unseen_candidates() if "ক্ষ" in compose(*t)]
    assert pool.candidates == 1897 and len(pool.graphemes) == 1897 - len(ksa) > 0
    # Galada's known gap ক্ট্র is skipped, not counted: Atma draws those alone.
    assert pool.rejected_by_font == {"galada-400.ttf": 0, "atma-300.ttf": len(ksa)}
    assert any("ক্ট্র" in g.text for g in pool.graphemes)


@pytest.fixture(scope="module")
def pool() -> UnseenPool:
    return shapeable_unseen((FONT,))


def test_every_pooled_grapheme_shapes_as_one_cluster(pool: UnseenPool) -> None:
    assert len(pool.graphemes) == 1897 and pool.rejected_by_font == {FONT: 0}
    check = ShapingCheck(FONT)
    assert all(check.clean(render_text(g)) for g in pool.graphemes[::7])


@pytest.mark.slow
def test_the_bundled_fonts_shape_every_candidate() -> None:
    pool = shapeable_unseen(DEFAULT_FONTS)
    assert len(pool.graphemes) == 1897 and set(pool.rejected_by_font.values()) == {0}


def test_sampling_shares(pool: UnseenPool) -> None:
    assert sample_train(500, 3, pool.graphemes, 0.0) == sample_train(500, 3)  # seen mode as before
    plan = sample_train(1000, 3, pool.graphemes, 0.5)
    fresh = [g for g in plan if g.labels not in seen_triples()]
    assert len(fresh) == 500 and len(set(fresh)) == 500 and set(fresh) <= set(pool.graphemes)
    everything = sample_train(3794, 3, pool.graphemes, 1.0)
    assert set(Counter(everything).values()) == {2} and plan == sample_train(1000, 3, pool.graphemes, 0.5)
    with pytest.raises(BengaliaiError, match="no unseen graphemes"):
        sample_train(10, 3, (), 1.0)


@pytest.fixture(scope="module")
def unseen_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unseen")
    synthesize(out, N_TRAIN, 0, SEED, 1, RenderConfig(fonts=(FONT,)), id_prefix="UN", graphemes="unseen")
    return out


def test_unseen_mode_writes_only_unseen_graphemes(unseen_set: Path) -> None:
    train = pd.read_csv(unseen_set / "train.csv", dtype={"grapheme": str}, keep_default_na=False)
    assert train["image_id"].tolist() == [f"UN_{i}" for i in range(N_TRAIN)]
    triples = _triples(train)
    assert not set(triples) & seen_triples() and set(triples) <= set(unseen_candidates())
    assert train["grapheme"].tolist() == [compose(*t) for t in triples]
    check = ShapingCheck(FONT)
    assert all(check.clean(render_text(Grapheme(compose(*t), *t))) for t in triples)
    summary = json.loads((unseen_set / "synth.json").read_text(encoding="utf-8"))["graphemes"]
    assert summary == {
        "mode": "unseen", "unseen_share": 1.0, "distinct_seen": 0, "distinct_unseen": len(set(triples)),
        "unseen_pool": {"candidates": 1897, "shape_cleanly": 1897, "rejected_by_font": {FONT: 0}},
        "skipped_held_out": 0,
    }


@pytest.mark.slow
def test_unseen_mode_is_the_same_whatever_the_worker_count(unseen_set: Path, tmp_path: Path) -> None:
    synthesize(tmp_path, N_TRAIN, 0, SEED, 2, RenderConfig(fonts=(FONT,)), id_prefix="UN", graphemes="unseen")
    for path in unseen_set.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_cli_graphemes_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr("bengaliai.synth.dataset.synthesize", lambda *args, **kwargs: calls.append(kwargs))
    argv = ["synth", "--out", str(tmp_path), "--workers", "1"]
    assert cli.main(argv) == 0 and cli.main([*argv, "--graphemes", "all", "--id-prefix", "AL"]) == 0
    assert [(c["graphemes"], c["id_prefix"]) for c in calls] == [("seen", "Train"), ("all", "AL")]
    with pytest.raises(SystemExit):
        cli.main([*argv, "--graphemes", "some"])
    assert "invalid choice: 'some'" in capsys.readouterr().err
    monkeypatch.undo()
    with pytest.raises(BengaliaiError, match="graphemes 'some'"):
        synthesize(tmp_path / "bad", 1, 0, 0, 1, graphemes="some")
    assert not (tmp_path / "bad").exists()
