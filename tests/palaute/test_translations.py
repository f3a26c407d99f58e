"""The staff pages' message catalogues are complete and compiled.

Fails when a text in the code or templates is missing from a catalogue, a Finnish or
Swedish text is untranslated or fuzzy, a placeholder was lost in translation, or a
committed .mo file no longer matches its .po: run `make translations` (and translate).
"""

from __future__ import annotations

import gettext
import re
from configparser import ConfigParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "palaute" / "translations"
LANGUAGES = ("fi", "sv", "en")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def extracted() -> set[str | tuple[str, ...]]:
    config = ConfigParser()
    config.read(ROOT / "babel.cfg")
    method_map = []
    options_map = {}
    for section in config.sections():
        method, _, pattern = section.partition(":")
        method_map.append((pattern.strip(), method.strip()))
        options_map[pattern.strip()] = dict(config.items(section))
    ids: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        ids.add(message if isinstance(message, str) else tuple(message))
    return ids


def catalogue(language: str) -> Catalog:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as file:
        return read_po(file)


def message_ids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    return {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_of_the_code_is_in_the_catalogue(language: str) -> None:
    in_code = extracted()
    assert len(in_code) > 50
    in_po = message_ids(catalogue(language))
    missing = sorted(map(str, in_code - in_po))
    assert not missing, f"{language}: not in messages.po (run make translations): {missing}"
    unused = sorted(map(str, in_po - in_code))
    assert not unused, f"{language}: no longer used (run make translations): {unused}"


@pytest.mark.parametrize("language", ["fi", "sv"])
def test_finnish_and_swedish_are_translated_with_the_same_placeholders(language: str) -> None:
    for message in catalogue(language):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        assert not message.fuzzy, f"{language}: fuzzy {message.id!r}"
        assert all(strings), f"{language}: untranslated {message.id!r}"
        wanted = set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, f"{language}: {message.id!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_its_po_file(language: str) -> None:
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as file:
        compiled = gettext.GNUTranslations(file)
    for message in catalogue(language):
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if not message.id or not any(strings):
            continue  # English: the text in the code is the translation
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, (
                f"{language}: messages.mo is older than messages.po (run make translations)"
            )
        else:
            singular, plural = message.id[0], message.id[1]
            assert compiled.ngettext(singular, plural, 1) == message.string[0]
            assert compiled.ngettext(singular, plural, 5) == message.string[-1]
