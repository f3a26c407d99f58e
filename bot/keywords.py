"""Words with a fixed meaning in every flow: opt-out, opt-in, help, skip, start over.

A keyword counts only when it is the whole message (any case, surrounding
punctuation and spaces ignored), so "stop the noise at the desk" is a comment,
not an opt-out.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Twilio's standard opt-out words plus the local ones.
OPT_OUT = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "optout",
        "revoke",
        "lopeta",
        "lopetus",
        "stoppa",
        "avsluta",
        "/stop",
    }
)
OPT_IN = frozenset({"start", "unstop", "yes please", "aloita", "börja", "borja", "optin"})
HELP = frozenset({"help", "info", "apua", "ohje", "hjälp", "hjalp", "/help"})
SKIP = {
    "fi": ("ohita", "ohi", "en halua vastata", "en osaa sanoa", "seuraava"),
    "sv": ("hoppa över", "hoppa", "skippa", "vill inte svara", "nästa"),
    "en": ("skip", "pass", "next", "no comment", "rather not say"),
    "et": ("jäta", "jäta vahele", "edasi"),
    "ru": ("пропустить", "пропуск", "дальше"),
    "uk": ("пропустити", "пропуск", "далі"),
}
RESTART = {
    "fi": ("alusta", "aloita alusta", "uudestaan", "alkuun"),
    "sv": ("börja om", "starta om", "från början"),
    "en": ("start over", "restart", "start again", "begin again"),
    "et": ("alusta uuesti",),
    "ru": ("начать заново", "заново"),
    "uk": ("почати знову", "заново"),
}
# Keywords that belong to one language: the reply to them comes in that language.
# The international ones (STOP, HELP, START ...) keep the conversation's language.
KEYWORD_LANGUAGES: dict[str, str] = {
    "lopeta": "fi",
    "lopetus": "fi",
    "aloita": "fi",
    "apua": "fi",
    "ohje": "fi",
    "stoppa": "sv",
    "avsluta": "sv",
    "börja": "sv",
    "borja": "sv",
    "hjälp": "sv",
    "hjalp": "sv",
}
LANGUAGE_MENU = frozenset({"/language", "kieli", "språk", "sprak", "language", "lang"})

_EDGE = re.compile(r"^[\s.,!?;:'\"()\[\]*_~-]+|[\s.,!?;:'\"()\[\]*_~-]+$")
_SPACES = re.compile(r"\s+")
# Emoji variation selectors and skin-tone modifiers carry no meaning for answers.
_EMOJI_MODIFIERS = re.compile("[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")


@functools.lru_cache(maxsize=4096)  # asked for the same labels and keywords on every turn
def normalise(text: str) -> str:
    """Case-folded, NFC, single-spaced, without edge punctuation or emoji modifiers."""
    if text.isascii() and text.isalnum():  # the common "4", "yes", "PALAUTE"
        return text.casefold()
    text = unicodedata.normalize("NFC", text)
    text = _EMOJI_MODIFIERS.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    return _EDGE.sub("", text).casefold()


def is_opt_out(text: str) -> bool:
    return normalise(text) in OPT_OUT


def is_opt_in(text: str) -> bool:
    return normalise(text) in OPT_IN


def is_help(text: str) -> bool:
    return normalise(text) in HELP


def keyword_language(text: str) -> str | None:
    """The language of a local keyword ("HJÄLP" -> "sv"), None for international ones."""
    return KEYWORD_LANGUAGES.get(normalise(text))


def is_language_menu(text: str) -> bool:
    return normalise(text) in LANGUAGE_MENU


def _in_any_language(words: dict[str, tuple[str, ...]], text: str) -> bool:
    wanted = normalise(text)
    return any(wanted == word for options in words.values() for word in options)


def is_skip(text: str) -> bool:
    return _in_any_language(SKIP, text)


def is_restart(text: str) -> bool:
    return _in_any_language(RESTART, text)
