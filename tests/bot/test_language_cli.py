"""``palaute lang detect``: one reply per line in, ``code<TAB>confidence`` per line out."""

from __future__ import annotations

from click.testing import CliRunner

from palaute.commands.lang import lang


def test_detect_prints_code_and_confidence_per_line() -> None:
    replies = "kiitos hyvä palvelu\n4\npå svenska tack\n\n👍\nthe nurse was very kind\n"
    result = CliRunner().invoke(lang, ["detect"], input=replies)
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert [code for code, _ in lines] == ["fi", "-", "sv", "-", "-", "en"]
    assert all(0.0 <= float(confidence) <= 1.0 for _, confidence in lines)
    assert float(lines[0][1]) > 0.9


def test_detect_restricted_to_given_languages() -> None:
    result = CliRunner().invoke(lang, ["detect", "--languages", "fi,ru"], input="спасибо большое\n")
    assert result.exit_code == 0, result.output
    assert result.output.split("\t")[0] == "ru"


def test_unknown_language_code_is_a_clear_error() -> None:
    result = CliRunner().invoke(lang, ["detect", "--languages", "fi,xx"], input="moi\n")
    assert result.exit_code == 2
    assert "xx" in result.output
    assert "ISO 639-1" in result.output
