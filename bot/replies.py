"""Understanding a citizen's reply to one step: digits, words, emoji, option synonyms.

``parse_reply`` never raises on odd input (empty, emoji only, thousands of
characters); it returns ``Parsed`` with ``valid=False`` instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.flow import Option, ScaleStyle, Step, StepKind
from bot.keywords import normalise
from bot.messages import Choice
from bot.run import AnswerValue
from bot.texts import SMILEY_FACES, SMILEY_WORDS, system_text

NUMBER_WORDS: dict[str, dict[str, int]] = {
    "fi": {
        "nolla": 0,
        "yksi": 1,
        "yks": 1,
        "kaksi": 2,
        "kaks": 2,
        "kolme": 3,
        "neljä": 4,
        "nelja": 4,
        "viisi": 5,
        "viis": 5,
        "kuusi": 6,
        "seitsemän": 7,
        "kahdeksan": 8,
        "yhdeksän": 9,
        "kymmenen": 10,
    },
    "sv": {
        "noll": 0,
        "ett": 1,
        "en": 1,
        "två": 2,
        "tva": 2,
        "tre": 3,
        "fyra": 4,
        "fem": 5,
        "sex": 6,
        "sju": 7,
        "åtta": 8,
        "nio": 9,
        "tio": 10,
    },
    "en": {
        "zero": 0,
        "one": 1,
        "two": 2,
        "three": 3,
        "four": 4,
        "five": 5,
        "six": 6,
        "seven": 7,
        "eight": 8,
        "nine": 9,
        "ten": 10,
    },
}

YES_WORDS: dict[str, tuple[str, ...]] = {
    "fi": ("kyllä", "kylla", "joo", "juu", "k", "kyl", "jep", "jees"),
    "sv": ("ja", "japp", "jo", "javisst", "absolut"),
    "en": ("yes", "y", "yeah", "yep", "yup", "sure", "of course"),
    "et": ("jah", "jaa", "jah küll"),
    "ru": ("да", "ага"),
    "uk": ("так", "ага"),
    "": ("👍", "✅", "1"),
}
NO_WORDS: dict[str, tuple[str, ...]] = {
    "fi": ("ei", "e", "eipä", "en"),
    "sv": ("nej", "nä", "näe", "nix"),
    "en": ("no", "n", "nope", "nah"),
    "et": ("ei",),
    "ru": ("нет",),
    "uk": ("ні",),
    "": ("👎", "❌", "2"),
}

# Extra faces people use, mapped onto the 5-point scale (1 worst .. 5 best).
_FACE_VALUES_5: dict[str, int] = {
    "😡": 1,
    "😠": 1,
    "😞": 1,
    "😢": 1,
    "😭": 1,
    "☹": 2,
    "🙁": 2,
    "😕": 2,
    "😟": 2,
    "😐": 3,
    "😑": 3,
    "😶": 3,
    "🙂": 4,
    "😊": 4,
    "☺": 4,
    "😀": 5,
    "😃": 5,
    "😄": 5,
    "😁": 5,
    "🤩": 5,
    "😍": 5,
    "🥰": 5,
}
# On a 4-point scale there is no neutral face: the two lower and two upper values remain.
_FACE_VALUES_4: dict[str, int] = {
    face: value if value < 3 else value - 1 for face, value in _FACE_VALUES_5.items() if value != 3
}

_LEADING_INT = re.compile(r"^([+-]?\d{1,6})(?:\s*(?:/\s*\d{1,2}|[.,)!:]|\s|$))")
_STARS = re.compile(r"^(?:⭐|★|\*){1,10}$")


@dataclass(frozen=True)
class Parsed:
    valid: bool
    value: AnswerValue = None
    # Languages whose words matched ("kyllä" -> {"fi"}); empty for digits and emoji.
    languages: frozenset[str] = frozenset()
    truncated: bool = False


INVALID = Parsed(valid=False)


def _leading_int(text: str) -> int | None:
    match = _LEADING_INT.match(text)
    if match is None:
        return None
    return int(match.group(1))


def _number_word(text: str, language: str) -> tuple[int, frozenset[str]] | None:
    words = text.split(" ")
    if len(words) > 2 or not words:
        return None
    first = words[0]
    matched = {lang for lang, table in NUMBER_WORDS.items() if first in table}
    if not matched:
        return None
    # Prefer the conversation's language when a word means a number in several.
    lang = language if language in matched else sorted(matched)[0]
    return NUMBER_WORDS[lang][first], frozenset(matched)


def _parse_int(text: str, language: str) -> tuple[int, frozenset[str]] | None:
    value = _leading_int(text)
    if value is not None:
        return value, frozenset()
    return _number_word(text, language)


def _parse_scale(step: Step, text: str, language: str) -> Parsed:
    low, high = step.scale_min, step.scale_max
    if _STARS.match(text) and low == 1:
        stars = len(text)
        return Parsed(True, stars) if stars <= high else INVALID
    faces = _FACE_VALUES_4 if high - low + 1 == 4 else _FACE_VALUES_5
    emoji = text.replace(" ", "")
    if emoji and all(ch in faces for ch in emoji):
        values = {faces[ch] for ch in emoji}
        if len(values) == 1 and high - low + 1 in (4, 5):
            return Parsed(True, low + values.pop() - 1)
        return INVALID
    if step.scale_style is ScaleStyle.SMILEY:
        for lang, sizes in SMILEY_WORDS.items():
            words = sizes.get(high - low + 1, ())
            for index, word in enumerate(words):
                if text == word.casefold():
                    return Parsed(True, low + index, frozenset({lang}))
    parsed = _parse_int(text, language)
    if parsed is None:
        return INVALID
    value, languages = parsed
    return Parsed(True, value, languages) if low <= value <= high else INVALID


def _parse_number(step: Step, text: str, language: str) -> Parsed:
    parsed = _parse_int(text, language)
    if parsed is None:
        return INVALID
    value, languages = parsed
    if step.min_value is not None and value < step.min_value:
        return INVALID
    if step.max_value is not None and value > step.max_value:
        return INVALID
    return Parsed(True, value, languages)


def _match_words(text: str, table: dict[str, tuple[str, ...]]) -> frozenset[str] | None:
    matched = {lang for lang, words in table.items() if text in words}
    if not matched:
        return None
    return frozenset(lang for lang in matched if lang)


def _parse_yes_no(text: str) -> Parsed:
    yes = _match_words(text, YES_WORDS)
    no = _match_words(text, NO_WORDS)
    if yes is not None and no is None:
        return Parsed(True, "yes", yes)
    if no is not None and yes is None:
        return Parsed(True, "no", no)
    return INVALID


def _options_take_digits(options: tuple[Option, ...]) -> bool:
    return any(word.strip().isdigit() for o in options for ws in o.synonyms.values() for word in ws)


def _parse_choice(step: Step, text: str, language: str) -> Parsed:
    # Synonyms and labels in the conversation's language win over other languages.
    found: dict[str, set[str]] = {}
    for option in step.options:
        if text == option.id.casefold():
            return Parsed(True, option.id)
        for lang, words in option.synonyms.items():
            if any(text == normalise(word) for word in words):
                found.setdefault(option.id, set()).add(lang)
        for lang, label in option.label.items():
            if text == normalise(label):
                found.setdefault(option.id, set()).add(lang)
    if len(found) > 1:
        in_language = [oid for oid, langs in found.items() if language in langs]
        if len(in_language) != 1:
            return INVALID
        found = {in_language[0]: found[in_language[0]]}
    if found:
        option_id, langs = next(iter(found.items()))
        return Parsed(True, option_id, frozenset(langs))
    if not _options_take_digits(step.options):
        number = _leading_int(text)
        if number is not None and 1 <= number <= len(step.options):
            return Parsed(True, step.options[number - 1].id)
    return INVALID


def parse_reply(step: Step, text: str, language: str) -> Parsed:
    """What ``text`` means as an answer to ``step``, or ``INVALID``."""
    if len(text) > 20_000:
        text = text[:20_000]
    cleaned = normalise(text)
    if step.kind is StepKind.TEXT:
        stripped = text.strip()
        if not stripped:
            return INVALID
        if len(stripped) > step.max_length:
            return Parsed(True, stripped[: step.max_length], truncated=True)
        return Parsed(True, stripped)
    if not cleaned:
        return INVALID
    if step.kind is StepKind.SCALE:
        return _parse_scale(step, cleaned, language)
    if step.kind is StepKind.NPS:
        parsed = _parse_int(cleaned, language)
        if parsed is None or not 0 <= parsed[0] <= 10:
            return INVALID
        return Parsed(True, parsed[0], parsed[1])
    if step.kind is StepKind.NUMBER:
        return _parse_number(step, cleaned, language)
    if step.kind is StepKind.YES_NO:
        return _parse_yes_no(cleaned)
    if step.kind is StepKind.CHOICE:
        return _parse_choice(step, cleaned, language)
    return INVALID


def choices_for(step: Step, language: str, fallback: str) -> tuple[Choice, ...]:
    """Tappable answers for a step (Telegram buttons, simulator buttons)."""
    if step.kind is StepKind.CHOICE:
        return tuple(
            Choice(value=o.id, label=o.label.get(language) or o.label[fallback])
            for o in step.options
        )
    if step.kind is StepKind.YES_NO:
        return (
            Choice("yes", system_text("yes", language)),
            Choice("no", system_text("no", language)),
        )
    if step.kind is StepKind.NPS:
        return tuple(Choice(str(n), str(n)) for n in range(11))
    if step.kind is StepKind.SCALE:
        size = step.scale_max - step.scale_min + 1
        values = range(step.scale_min, step.scale_max + 1)
        if step.scale_style is ScaleStyle.SMILEY and size in SMILEY_FACES:
            words = SMILEY_WORDS.get(language, SMILEY_WORDS["en"])[size]
            faces = SMILEY_FACES[size]
            return tuple(Choice(str(v), f"{faces[i]} {words[i]}") for i, v in enumerate(values))
        return tuple(Choice(str(v), str(v)) for v in values)
    return ()


def button_value(step: Step, value: str) -> Parsed:
    """A pressed button's value (as ``choices_for`` makes them) as an answer."""
    if step.kind is StepKind.CHOICE:
        ok = any(value == option.id for option in step.options)
        return Parsed(True, value) if ok else INVALID
    if step.kind is StepKind.YES_NO:
        return Parsed(True, value) if value in ("yes", "no") else INVALID
    if step.kind is StepKind.NPS:
        low, high = 0, 10
    elif step.kind is StepKind.SCALE:
        low, high = step.scale_min, step.scale_max
    else:
        return INVALID
    if value.isdigit() and low <= int(value) <= high:
        return Parsed(True, int(value))
    return INVALID
