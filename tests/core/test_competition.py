"""The encoded competition facts: label tables, graphemes, composition rule, counts."""

from __future__ import annotations

import unicodedata

from bengaliai.core import competition as c


def test_class_counts_and_label_strings_agree() -> None:
    for component in c.COMPONENTS:
        assert len(c.LABEL_STRINGS[component]) == c.N_CLASSES[component]
        assert len(c.CLASS_COUNTS[component]) == c.N_CLASSES[component]
        assert sum(c.CLASS_COUNTS[component]) == 200_840
    assert c.LABEL_STRINGS["vowel_diacritic"][0] == "0"
    assert c.LABEL_STRINGS["consonant_diacritic"][0] == "0"
    assert [c.LABEL_STRINGS["grapheme_root"][i] for i in (165, 166, 167)] == ["\u09dc", "\u09dd", "\u09df"]


def test_seen_graphemes_are_the_1295_training_graphemes() -> None:
    graphemes = c.seen_graphemes()
    assert len(graphemes) == 1295
    assert len({g.text for g in graphemes}) == 1295
    assert len({g.labels for g in graphemes}) == 1292
    assert {g.labels for g in graphemes} == c.seen_triples()
    for g in graphemes:
        for component, label in zip(c.COMPONENTS, g.labels, strict=True):
            assert 0 <= label < c.N_CLASSES[component]


def test_composition_matches_known_training_strings() -> None:
    assert c.compose(15, 9, 5) == "ক্ট্রো"  # Train_0 of the real train.csv
    assert c.compose(159, 0, 0) == "হ"
    assert c.compose(53, 2, 2) == "র্টি"  # reph first in logical order
    assert c.compose(123, 1, 4) == "র\u200d্যা"  # ra + ya-phala keeps its joiner
    texts = {g.text for g in c.seen_graphemes()}
    assert "র্যো" in texts and "র\u200d্যো" not in texts  # the one stored without a joiner
    assert {"র্দ্র", "র্ত্রী", "র্ত্রে"} <= texts


def test_strings_are_not_normalised() -> None:
    texts = [g.text for g in c.seen_graphemes()]
    changed = [t for t in texts if unicodedata.normalize("NFC", t) != t]
    assert changed, "some training graphemes change under NFC; the table must keep them as typed"


def test_render_text_fixes_only_what_would_draw_wrongly() -> None:
    by_text = {g.text: g for g in c.seen_graphemes()}
    assert c.render_text(by_text["ং"]) == "\u00a0ং"
    assert c.render_text(by_text["র্যো"]) == "র\u200d্যো"
    assert c.render_text(by_text["ক্ট্রো"]) == "ক্ট্রো"


def test_class_map_rows_cover_every_label_once() -> None:
    rows = c.class_map_rows()
    assert len(rows) == 168 + 11 + 7
    assert rows[0] == ("grapheme_root", 0, "ং")
    assert rows[-1] == ("consonant_diacritic", 6, "্র্য")


def test_file_names() -> None:
    assert c.image_parquet_name("train", 3) == "train_image_data_3.parquet"
    assert len(c.PIXEL_COLUMNS) == c.HEIGHT * c.WIDTH == 32_332
    assert c.PIXEL_COLUMNS[-1] == "32331"
