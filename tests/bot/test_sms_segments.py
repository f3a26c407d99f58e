"""SMS segment counting: what a prompt costs, per the GSM 03.38 / UCS-2 rules."""

from __future__ import annotations

import pytest

from bot.sms_segments import Encoding, count_segments, is_gsm7


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", Encoding.GSM7, 0, 0),
        ("a" * 160, Encoding.GSM7, 160, 1),
        ("a" * 161, Encoding.GSM7, 161, 2),
        ("a" * 306, Encoding.GSM7, 306, 2),
        ("a" * 307, Encoding.GSM7, 307, 3),
        # Finnish and Swedish letters are in the GSM-7 alphabet.
        ("Kiitos käynnistä! Hälsningar från Åbo", Encoding.GSM7, 37, 1),
        # Extension characters cost two units each.
        ("€" * 80, Encoding.GSM7, 160, 1),
        ("€" * 81, Encoding.GSM7, 162, 2),
        ("[1-5] {ok} ~ | ^ \\", Encoding.GSM7, 26, 1),
        # One character outside GSM-7 makes the whole message UCS-2.
        ("a" * 69 + "š", Encoding.UCS2, 70, 1),
        ("a" * 70 + "š", Encoding.UCS2, 71, 2),
        ("Vastaa 1–5", Encoding.UCS2, 10, 1),  # the en dash is not GSM-7
        ("ж" * 134, Encoding.UCS2, 134, 2),
        ("ж" * 135, Encoding.UCS2, 135, 3),
        # Emoji outside the BMP take two UTF-16 units.
        ("😀" * 35, Encoding.UCS2, 70, 1),
        ("😀" * 36, Encoding.UCS2, 72, 2),
    ],
)
def test_counts(text: str, encoding: Encoding, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


def test_an_escape_pair_is_never_split_between_segments() -> None:
    # 152 + 2 + 152 = 306 units would fit two segments of 153, but the € cannot start at
    # the last position of the first segment, so it moves on and a third one is needed.
    count = count_segments("a" * 152 + "€" + "a" * 152)
    assert (count.units, count.segments) == (306, 3)


def test_a_surrogate_pair_is_never_split_between_segments() -> None:
    count = count_segments("a" * 66 + "😀" + "a" * 66)
    assert (count.encoding, count.units, count.segments) == (Encoding.UCS2, 134, 3)


def test_reports_the_characters_that_force_ucs2() -> None:
    count = count_segments("Miten meni? 😀 tai 🙁 tai 😀")
    assert count.non_gsm == "😀🙁"
    assert count.describe() == "1 segment (UCS-2, 28 units)"
    assert count_segments("a" * 200).describe() == "2 segments (GSM-7, 200 units)"


def test_is_gsm7() -> None:
    assert is_gsm7("Hyvää päivää! Ö ø Ñ ü € @ £")
    assert not is_gsm7("Привет")
    assert not is_gsm7("’")  # a typographic apostrophe is not the GSM ' character
