"""``palaute lang detect``: one reply per line in, ``code<TAB>confidence<TAB>text`` out."""

from __future__ import annotations

from click.testing import CliRunner

from palaute.commands.lang import lang


def test_detect_prints_code_confidence_and_the_line_judged() -> None:
    replies = "kiitos hyvä palvelu\n4\npå svenska tack\n\n👍\nthe nurse was\tvery kind\n"
    result = CliRunner().invoke(lang, ["detect"], input=replies)
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.split("\n")[:-1]]
    assert all(len(columns) == 3 for columns in lines), lines
    assert [(code, text) for code, _, text in lines] == [
        ("fi", "kiitos hyvä palvelu"),
        ("-", "4"),
        ("sv", "på svenska tack"),
        ("-", ""),
        ("-", "👍"),
        ("en", "the nurse was very kind"),  # a tab in the text would add a column
    ]
    assert all(0.0 <= float(confidence) <= 1.0 for _, confidence, _ in lines)
    assert float(lines[0][1]) > 0.9


def test_header_names_the_columns_and_help_explains_them() -> None:
    result = CliRunner().invoke(lang, ["detect", "--header"], input="kiitos paljon\n")
    assert result.output.splitlines()[0] == "code\tconfidence\ttext"
    assert result.output.splitlines()[1].startswith("fi\t")
    help_text = CliRunner().invoke(lang, ["detect", "--help"]).output
    for explained in ("CODE", "CONFIDENCE", "TEXT", "or - when the detector", "TSV"):
        assert explained in help_text, help_text


def test_detect_restricted_to_given_languages() -> None:
    result = CliRunner().invoke(lang, ["detect", "--languages", "fi,ru"], input="спасибо большое\n")
    assert result.exit_code == 0, result.output
    assert result.output.split("\t")[0] == "ru"


def test_unknown_language_code_is_a_clear_error() -> None:
    result = CliRunner().invoke(lang, ["detect", "--languages", "fi,xx"], input="moi\n")
    assert result.exit_code == 2
    assert "xx" in result.output
    assert "ISO 639-1" in result.output
