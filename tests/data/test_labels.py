"""read_train_labels, read_test_rows and check_image_ids: good files load, bad ones fail clearly."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TEST_COMPONENT_ORDER, compose, seen_graphemes
from bengaliai.core.errors import DataError
from bengaliai.data.labels import check_grapheme_text, check_image_ids, read_test_rows, read_train_labels

HEADER = "image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme"


def write_train(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "train.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def good_rows(n: int = 6) -> list[str]:
    graphemes = seen_graphemes()
    return [f"Train_{i},{','.join(map(str, graphemes[i].labels))},{graphemes[i].text}" for i in range(n)]


def test_reads_labels_as_integers_and_graphemes_verbatim(tmp_path: Path) -> None:
    nfc_changes = next(g for g in seen_graphemes() if unicodedata.normalize("NFC", g.text) != g.text)
    rows = [*good_rows(3), f"NA,{','.join(map(str, nfc_changes.labels))},{nfc_changes.text}"]
    frame = read_train_labels(write_train(tmp_path, rows))
    assert list(frame.columns) == ["image_id", *COMPONENTS, "grapheme"]
    assert frame["image_id"].tolist() == ["Train_0", "Train_1", "Train_2", "NA"]
    for column in COMPONENTS:
        assert frame[column].dtype.kind == "i"
    assert frame.loc[3, "grapheme"] == nfc_changes.text
    assert tuple(frame.loc[3, list(COMPONENTS)]) == nfc_changes.labels
    assert not frame.isna().any().any()


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    rows = [row + ",x" for row in good_rows(2)]
    frame = read_train_labels(write_train(tmp_path, rows, header=HEADER + ",note"))
    assert "note" not in frame.columns and len(frame) == 2


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_train(tmp_path, ["Train_0,1,2"], header="image_id,grapheme_root,grapheme")
    with pytest.raises(DataError, match="missing column.*vowel_diacritic, consonant_diacritic") as info:
        read_train_labels(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("column", COMPONENTS)
def test_label_out_of_range_names_file_line_column_value_and_range(tmp_path: Path, column: str) -> None:
    rows = good_rows(6)
    fields = rows[5].split(",")
    fields[1 + COMPONENTS.index(column)] = str(N_CLASSES[column])
    rows[5] = ",".join(fields)
    path = write_train(tmp_path, rows)
    with pytest.raises(DataError) as info:
        read_train_labels(path)
    message = str(info.value)
    # Data row 6 is line 7: the header is line 1.
    assert str(path) in message and "line 7" in message and column in message
    assert f"has {N_CLASSES[column]}" in message and f"0..{N_CLASSES[column] - 1}" in message


def test_negative_label_is_out_of_range(tmp_path: Path) -> None:
    path = write_train(tmp_path, ["Train_0,-1,0,0,x"])
    with pytest.raises(DataError, match=r"line 2: column grapheme_root has -1, expected an integer in 0\.\.167"):
        read_train_labels(path)


@pytest.mark.parametrize(("value", "shown"), [("", "an empty value"), ("1.5", "'1.5'"), ("abc", "'abc'")])
def test_non_integer_labels_are_rejected(tmp_path: Path, value: str, shown: str) -> None:
    rows = good_rows(2)
    fields = rows[1].split(",")
    fields[2] = value
    rows[1] = ",".join(fields)
    with pytest.raises(DataError, match=f"line 3: column vowel_diacritic has {shown}, expected an integer"):
        read_train_labels(write_train(tmp_path, rows))


def test_duplicate_image_ids_name_the_id_and_both_lines(tmp_path: Path) -> None:
    rows = good_rows(5)
    rows[4] = rows[4].replace("Train_4", "Train_1")
    with pytest.raises(DataError, match="image_id 'Train_1' appears more than once: lines 3, 6"):
        read_train_labels(write_train(tmp_path, rows))


def test_empty_id_or_grapheme_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="line 2: column grapheme is empty"):
        read_train_labels(write_train(tmp_path, ["Train_0,0,0,0,"]))
    with pytest.raises(DataError, match="line 2: column image_id is empty"):
        read_train_labels(write_train(tmp_path, [",0,0,0,x"]))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_train_labels(tmp_path / "train.csv")
    (tmp_path / "train.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        read_train_labels(tmp_path / "train.csv")


def write_test(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "test.csv"
    path.write_text("\n".join(["row_id,image_id,component", *rows]) + "\n", encoding="utf-8")
    return path


def component_rows(image_ids: list[str]) -> list[str]:
    return [f"{i}_{c},{i},{c}" for i in image_ids for c in TEST_COMPONENT_ORDER]


def test_reads_test_rows(tmp_path: Path) -> None:
    frame = read_test_rows(write_test(tmp_path, component_rows(["Test_0", "Test_1"])))
    assert list(frame.columns) == ["row_id", "image_id", "component"]
    assert frame["row_id"].tolist()[:3] == [f"Test_0_{c}" for c in TEST_COMPONENT_ORDER]
    assert len(frame) == 6


def test_unknown_component_is_rejected(tmp_path: Path) -> None:
    rows = component_rows(["Test_0"])
    rows[1] = "Test_0_root,Test_0,root"
    with pytest.raises(DataError, match="line 3: column component has 'root', expected one of grapheme_root"):
        read_test_rows(write_test(tmp_path, rows))


def test_row_id_must_join_image_and_component(tmp_path: Path) -> None:
    rows = component_rows(["Test_0"])
    rows[2] = "Test_9_vowel_diacritic,Test_0,vowel_diacritic"
    with pytest.raises(DataError, match="line 4: row_id is 'Test_9_vowel_diacritic', expected 'Test_0_vowel_diacritic'"):
        read_test_rows(write_test(tmp_path, rows))


def test_repeated_row_and_missing_component_are_rejected(tmp_path: Path) -> None:
    rows = component_rows(["Test_0"])
    with pytest.raises(DataError, match="row_id 'Test_0_grapheme_root' appears more than once: lines 3, 5"):
        read_test_rows(write_test(tmp_path, [*rows, rows[1]]))
    with pytest.raises(DataError, match="image Test_0 has rows for consonant_diacritic, grapheme_root only"):
        read_test_rows(write_test(tmp_path, rows[:2]))


def test_check_image_ids_passes_when_every_id_has_an_image() -> None:
    check_image_ids(["a", "b"], ["b", "a", "extra"], Path("train.csv"), "cache/crop128")


def test_check_image_ids_reports_count_and_first_missing_ids() -> None:
    ids = [f"Train_{i}" for i in range(10)]
    with pytest.raises(DataError) as info:
        check_image_ids(ids, ids[:2], Path("in/train.csv"), "in/train_image_data_*.parquet")
    message = str(info.value)
    assert message.startswith("in/train.csv: 8 of 10 image ids have no image in in/train_image_data_*.parquet")
    assert "Train_2, Train_3, Train_4, Train_5, Train_6, ..." in message and "Train_7" not in message


def test_a_header_only_train_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.csv: only a header, no data rows"):
        read_train_labels(write_train(tmp_path, []))


def test_grapheme_text_is_checked_against_its_labels(tmp_path: Path) -> None:
    graphemes = seen_graphemes()
    rows = [f"Train_{i},{','.join(map(str, g.labels))},{g.text}" for i, g in enumerate(graphemes)]
    unseen = (1, 2, 3)  # a triple the training set lacks: spelled as compose spells it
    assert unseen not in {g.labels for g in graphemes}
    rows.append(f"Synth_0,1,2,3,{compose(*unseen)}")
    check_grapheme_text(read_train_labels(write_train(tmp_path, rows)), tmp_path / "train.csv")  # every spelling passes
    first, second = graphemes[10], graphemes[20]
    wrong = [*rows[:3], f"X_0,{','.join(map(str, first.labels))},{second.text}", *rows[3:6],
             f"X_1,{','.join(map(str, first.labels))},{second.text}"]
    labels = read_train_labels(write_train(tmp_path, wrong))
    spelled = ", ".join(f"{c} {v}" for c, v in zip(COMPONENTS, first.labels, strict=True))
    expected = (rf"train.csv: line 5: grapheme {second.text!r} is not what its labels spell: {spelled} spell "
                rf"{first.text!r} \(2 rows disagree\); fix the labels or the grapheme$")
    with pytest.raises(DataError, match=expected):
        check_grapheme_text(labels, tmp_path / "train.csv")
