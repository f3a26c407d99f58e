"""How many SMS segments a text costs (GSM 03.38 vs UCS-2).

A text that uses only the GSM-7 alphabet travels as 7-bit characters: 160 per single
message, 153 per segment of a concatenated one. Characters of the GSM-7 extension table
(``€ [ ] { } \\ ^ ~ |`` and form feed) take two units (an escape plus the character).
Any other character switches the whole message to UCS-2: 70 UTF-16 code units in a
single message, 67 per segment. Emoji outside the Basic Multilingual Plane take two
UTF-16 units, and neither an escape pair nor a surrogate pair is split across segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 basic character set (the default alphabet), in table order.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each costs an escape plus the character.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7 = 160
SEGMENT_GSM7 = 153
SINGLE_UCS2 = 70
SEGMENT_UCS2 = 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    non_gsm: str = ""  # the characters that forced UCS-2, in order of appearance

    @property
    def per_segment(self) -> int:
        if self.segments <= 1:
            return SINGLE_GSM7 if self.encoding is Encoding.GSM7 else SINGLE_UCS2
        return SEGMENT_GSM7 if self.encoding is Encoding.GSM7 else SEGMENT_UCS2

    def describe(self) -> str:
        word = "segment" if self.segments == 1 else "segments"
        return f"{self.segments} {word} ({self.encoding.value}, {self.units} units)"


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def count_segments(text: str) -> SegmentCount:
    """The encoding, units and segments an SMS with ``text`` needs (0 for an empty text)."""
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    costs = _costs(text, encoding)
    units = sum(costs)
    single, per_segment = (
        (SINGLE_GSM7, SEGMENT_GSM7) if encoding is Encoding.GSM7 else (SINGLE_UCS2, SEGMENT_UCS2)
    )
    non_gsm = ""
    if encoding is Encoding.UCS2:
        seen: list[str] = []
        for char in text:
            if char not in GSM7_BASIC and char not in GSM7_EXTENSION and char not in seen:
                seen.append(char)
        non_gsm = "".join(seen)
    if units == 0:
        return SegmentCount(encoding, 0, 0, non_gsm)
    if units <= single:
        return SegmentCount(encoding, units, 1, non_gsm)
    # Pack characters into segments; a two-unit character never straddles two segments.
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return SegmentCount(encoding, units, segments, non_gsm)
