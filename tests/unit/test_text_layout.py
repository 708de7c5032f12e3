"""The plain-text layout of people's views: wrap at spaces only, tables that never cut."""

from __future__ import annotations

import io

from attn_doctor.report.check_tables import split_way
from attn_doctor.report.text import GLUE, Column, Painter, table, visible_len, wrap, write_lines

URL = "https://download.pytorch.org/whl/cu128/torch-2.8.0%2Bcu128-cp312-cp312-linux_x86_64.whl"


def test_wrap_breaks_at_spaces_and_keeps_long_words_whole() -> None:
    lines = wrap(f"get it from {URL} and then run it", 40, first="", indent="  ")
    assert lines == ["get it from", f"  {URL}", "  and then run it"]


def test_wrap_counts_colour_codes_as_nothing_and_honours_glue() -> None:
    paint = Painter(color=True)
    lines = wrap(f"a{GLUE}b c d", 5, first=paint("X", "bold") + " ")
    assert [visible_len(line) for line in lines] == [5, 3]
    assert lines[0].endswith("a b")  # glued words stay together and print as a space


def test_table_shrinks_wrapping_columns_only_down_to_their_longest_word() -> None:
    columns = (Column("#", align_right=True), Column("name", wraps=True), Column("value"))
    rows = [[("1", ()), ("xformers memory_efficient_attention", ()), ("xformers", ())]]
    lines = table(columns, rows, width=40, paint=Painter())
    assert lines == [
        "#  name                         value",
        "1  xformers                     xformers",
        "   memory_efficient_attention",
    ]


def test_table_without_rows_is_nothing() -> None:
    assert table((Column("#"),), [], width=80, paint=Painter()) == []


def test_table_too_narrow_becomes_one_paragraph_per_row() -> None:
    columns = (Column("#"), Column("backend", wraps=True), Column("attn_implementation"))
    rows = [[("9", ()), ("Hugging Face Hub kernel", ()), ("kernels-community/flash-attn2", ())]]
    lines = table(columns, rows, width=30, paint=Painter())
    assert lines == [
        "9  backend: Hugging Face Hub kernel ·",
        "    attn_implementation: kernels-community/flash-attn2",
    ]


def test_split_way_separates_the_command_from_its_source() -> None:
    way = "attn-doctor install xformers (pytorch-index: xformers==0.0.35)"
    assert split_way(way) == ("attn-doctor install xformers", "pytorch-index: xformers==0.0.35")
    assert split_way("built into torch 2.11.0") == ("built into torch 2.11.0", None)


def test_write_lines_strips_padding_and_survives_a_narrow_code_page() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252")
    write_lines(["✗ ERROR  ", "ok"], stream)
    assert raw.getvalue() == b"? ERROR\nok\n"
