"""Reading the values of a flow document: texts per language, words, slugs, durations.

``ValueReader`` checks one value at a time against what the grammar (``bot.flow_grammar``)
expects there and reports every mismatch to its ``ProblemSink`` with a hint, returning
None (or an empty value) instead of raising, so that reading goes on and collects all
problems. ``bot.flow_loader`` builds the flow's sections on top of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.flow import Texts
from bot.flow_grammar import ALL_LANGUAGES, SLUG, Section, parse_duration
from bot.flow_problems import FieldPath, ProblemSink, did_you_mean, sentence

TYPE_NAMES = {
    str: "a text",
    int: "a whole number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping (`key: value` lines)",
}


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (empty)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


@dataclass
class ValueReader:
    """Reads values for one document; ``languages`` are the flow's, once they are known."""

    sink: ProblemSink
    languages: tuple[str, ...] = ()

    def is_type(self, value: Any, path: FieldPath, kind: type, what: str = "") -> bool:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            expected = what or TYPE_NAMES[kind]
            hint = {
                str: "write a text (put it in quotes if it looks like a number)",
                int: "write a whole number without quotes",
                bool: "write true or false",
                list: "write a list: one `- item` per line, or [a, b]",
                dict: "write `key: value` lines indented under this field",
            }[kind]
            self.sink.error(path, f"should be {expected}, not {type_name(value)}", hint)
        return ok

    def mapping(
        self,
        value: Any,
        path: FieldPath,
        section: Section,
        allowed: tuple[str, ...] | None = None,
        elsewhere: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """``value`` as a mapping of ``section``; ``allowed`` narrows its keys (step types)."""
        if not self.is_type(value, path, dict):
            return None
        allowed = section.names if allowed is None else allowed
        for key in value:
            if key in allowed:
                continue
            if elsewhere and key in elsewhere:
                self.sink.error((*path, key), elsewhere[key], f"remove `{key}`", at_key=True)
                continue
            suggestion = did_you_mean(key, allowed)
            hint = sentence(suggestion) if suggestion else ""
            hint = hint or f"allowed here: {', '.join(allowed)}"
            self.sink.error((*path, key), f"unknown key `{key}`", hint, at_key=True)
        for key in section.required:
            if key not in value:
                self.sink.error(path, f"missing `{key}`", section.hint(key))
        return dict(value)

    def string(self, value: Any, path: FieldPath) -> str | None:
        if not self.is_type(value, path, str):
            return None
        if not value.strip():
            self.sink.error(path, "is empty", "write the text, or remove the field")
            return None
        return str(value)

    def slug(self, value: Any, path: FieldPath, what: str) -> str | None:
        joiner = "-" if what in ("flow id", "service point") else "_"
        text = self.string(value, path)
        if text is not None and not SLUG.match(text):
            self.sink.error(
                path,
                f"{what} {text!r} has characters that are not allowed",
                "use lower-case letters a-z, digits, - and _ (e.g. "
                f"{re.sub(r'[^a-z0-9_-]+', joiner, text.lower()).strip('_-') or 'name'!r})",
            )
            return None
        return text

    def integer(self, value: Any, path: FieldPath, low: int | None = None) -> int | None:
        if not self.is_type(value, path, int):
            return None
        if low is not None and value < low:
            self.sink.error(path, f"should be at least {low}", f"write a number ≥ {low}")
            return None
        return int(value)

    def boolean(self, value: Any, path: FieldPath) -> bool | None:
        return bool(value) if self.is_type(value, path, bool) else None

    def duration(self, value: Any, path: FieldPath) -> timedelta | None:
        hint = "write a duration like 30m, 2h, 24h, 3d or 1w"
        if not isinstance(value, str):
            self.sink.error(path, f"should be a duration, not {type_name(value)}", hint)
            return None
        parsed = parse_duration(value)
        if parsed is None or parsed <= timedelta():
            self.sink.error(path, f"{value!r} is not a duration", hint)
            return None
        return parsed

    def choice_of(
        self, value: Any, path: FieldPath, allowed: Iterable[str], what: str
    ) -> str | None:
        allowed = tuple(allowed)
        text = self.string(value, path)
        if text is None:
            return None
        if text not in allowed:
            suggestion = did_you_mean(text, allowed)
            hint = sentence(suggestion) if suggestion else f"use one of: {', '.join(allowed)}"
            self.sink.error(path, f"unknown {what} {text!r}", hint)
            return None
        return text

    def texts(self, value: Any, path: FieldPath, what: str = "text") -> Texts:
        """A text per declared language; problems for missing or undeclared ones."""
        if isinstance(value, str) and len(self.languages) == 1:
            return {self.languages[0]: value} if self.string(value, path) else {}
        if isinstance(value, str):
            self.sink.error(
                path,
                f"the {what} is given once, but the flow has {len(self.languages)} languages",
                "write it per language: `fi: ...`, `sv: ...`, `en: ...` on indented lines",
            )
            return {}
        if not self.is_type(value, path, dict, "a text per language (fi: ..., sv: ...)"):
            return {}
        out: Texts = {}
        for language, text in value.items():
            child = (*path, language)
            if self.languages and language not in self.languages:
                self.sink.warning(
                    child,
                    f"{language!r} is not in `languages`, so this text is never sent",
                    f"add {language} to `languages`, or remove this line"
                    + (
                        f" ({did_you_mean(language, self.languages)})"
                        if did_you_mean(language, self.languages)
                        else ""
                    ),
                    at_key=True,
                )
            checked = self.string(text, child)
            if checked is not None:
                out[language] = checked
        for language in self.languages:
            if language not in value:
                self.sink.error(
                    path,
                    f"missing {language} translation of the {what}",
                    f"add `{language}: ...` under this field",
                )
        return out

    def words(self, value: Any, path: FieldPath) -> tuple[str, ...]:
        """A list of words (numbers are taken as text: `1` is the word "1")."""
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not self.is_type(value, path, list):
            return ()
        out: list[str] = []
        for index, word in enumerate(value):
            if isinstance(word, int) and not isinstance(word, bool):
                word = str(word)
            text = self.string(word, (*path, index))
            if text is not None:
                out.append(text.strip())
        return tuple(out)

    def words_per_language(
        self, value: Any, path: FieldPath, what: str
    ) -> dict[str, tuple[str, ...]]:
        if not self.is_type(value, path, dict, f"{what} per language (fi: [...], en: [...])"):
            return {}
        out: dict[str, list[str]] = {}
        for language, words in value.items():
            child = (*path, language)
            if language != ALL_LANGUAGES and self.languages and language not in self.languages:
                self.sink.warning(
                    child,
                    f"{language!r} is not in `languages`",
                    f"add {language} to `languages`, use `{ALL_LANGUAGES}:` for words that "
                    "count in every language, or remove this line",
                    at_key=True,
                )
            targets = self.languages if language == ALL_LANGUAGES else (language,)
            for target in targets:
                out.setdefault(target, []).extend(self.words(words, child))
        return {language: tuple(words) for language, words in out.items()}
