"""YAML flow files -> ``bot.flow.Flow``, with every problem pinned to file:line:column.

Staff write flows in YAML (see docs/flows.md). ``read_flow_text`` parses a file with
PyYAML's composer so that every value keeps its position, reads it field by field
(collecting *all* problems instead of stopping at the first), then runs the checks in
``bot.flow_validate``. ``load_flow_text`` is the strict form: it returns a Flow or
raises ``FlowError``.

The YAML dialect is YAML 1.2-like on purpose: only ``true``/``false`` are booleans (so
the Norwegian language code ``no`` and a synonym ``yes`` stay text) and ``9:00`` is not
a base-60 number.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path as FilePath
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.flow import (
    END,
    Branch,
    Condition,
    Flow,
    FollowupRule,
    OnInvalid,
    Op,
    Option,
    QuietHours,
    ScaleStyle,
    Step,
    StepKind,
    Texts,
    Triggers,
)
from bot.flow_problems import (
    FlowError,
    Path,
    Positions,
    Problem,
    ProblemSink,
    Severity,
    did_you_mean,
    format_path,
    sentence,
)
from bot.flow_validate import check_catalogue, check_flow, normalise_word

__all__ = [
    "Catalogue",
    "FlowError",
    "Reading",
    "flow_version",
    "load_catalogue",
    "load_flow_file",
    "load_flow_text",
    "parse_duration",
    "read_flow_file",
    "read_flow_text",
]

# --- YAML dialect --------------------------------------------------------------------------

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (no yes/no/on/off, no 9:00 = 540)."""


_FlowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in {_BOOL, _INT, _FLOAT, _TIMESTAMP}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FlowYamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_FlowYamlLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_FlowYamlLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)

_SYNTAX_HINTS = (
    ("found character '\\t'", "indent with spaces, not tabs"),
    ("mapping values are not allowed", "put quotes around a text that contains ': '"),
    ("could not find expected ':'", "each line needs `key: value`; check the indentation"),
    ("expected <block end>", "check the indentation: items of one list or mapping line up"),
    (
        "while parsing a flow",
        "inside { } or [ ], put texts that contain , ? : or # in "
        "quotes, or write one `key: value` per line",
    ),
    ("found undefined alias", "define the &anchor before using *alias"),
    ("expected a single document", "remove the `---` line: one flow per file"),
    ("found unexpected end of stream", "close the quote or bracket that is still open"),
    ("while scanning a quoted scalar", "close the quote that is still open"),
    (
        "found character that cannot start any token",
        "put quotes around texts that start with @, ` or another special character",
    ),
)


def _syntax_problem(error: yaml.YAMLError, source: str) -> Problem:
    line, column = 1, 1
    message = str(error)
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if error.context_mark is not None and "end of stream" in (error.problem or ""):
            mark = error.context_mark  # where the unclosed quote or bracket starts
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        message = " ".join(part for part in (error.context, error.problem) if part)
    elif isinstance(error, yaml.reader.ReaderError):
        message = f"character {error.character!r} is not allowed in YAML"
    text = str(error)
    hint = next((h for needle, h in _SYNTAX_HINTS if needle in text), "fix the YAML syntax")
    return Problem(source, line, column, "(YAML syntax)", f"invalid YAML: {message}", hint)


def _scalar(node: ScalarNode, path: Path, sink: ProblemSink) -> Any:
    value: str = node.value
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return value.lower() == "true"
    if node.tag == _INT:
        return int(value)
    if node.tag == _FLOAT:
        return float(value)
    if node.tag != _STR:
        sink.error(path, f"unsupported YAML tag {node.tag!r}", "remove the tag (the `!...` part)")
    return value


def _to_plain(node: Node, path: Path, sink: ProblemSink, depth: int = 0) -> Any:
    sink.positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if depth > 50:
        sink.error(path, "the document nests too deeply", "simplify the structure")
        return None
    if isinstance(node, ScalarNode):
        return _scalar(node, path, sink)
    if isinstance(node, SequenceNode):
        return [_to_plain(child, (*path, i), sink, depth + 1) for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                line, column = key_mark
                sink.problems.append(
                    Problem(
                        sink.source,
                        line,
                        column,
                        format_path(path),
                        "unsupported key",
                        "keys are plain words such as `id` or `fi` (no `<<` merges)",
                    )
                )
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in out:
                line, column = key_mark
                sink.problems.append(
                    Problem(
                        sink.source, line, column, format_path(child),
                        f"`{key}` is given twice",
                        "remove one of them: the later one would silently win",
                    )
                )  # fmt: skip
                continue
            sink.positions.keys[child] = key_mark
            out[key] = _to_plain(value_node, child, sink, depth + 1)
        return out
    return None  # pragma: no cover - PyYAML has only these three node kinds


# --- small readers -------------------------------------------------------------------------

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Telegram deep-link start parameter
TIME = re.compile(r"^(?:[01]?[0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|min|m|s)")
_DURATION = re.compile(r"^\s*(?:\d+\s*(?:w|d|h|min|m|s)\s*)+$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "min": "minutes", "m": "minutes", "s": "seconds"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCALES = ("1-5", "1-4", "1-3", "1-7", "1-10", "0-10", "smiley-4", "smiley-5")
ALL_LANGUAGES = "all"  # synonyms/keywords under `all:` count in every language

TOP_KEYS = (
    "id", "title", "description", "languages", "default_language", "service_points",
    "triggers", "expires_after", "expired", "closing", "followup", "steps",
)  # fmt: skip
TOP_REQUIRED = ("id", "title", "languages", "default_language", "closing", "steps")
COMMON_STEP_KEYS = (
    "id", "type", "text", "optional", "invalid", "max_attempts", "on_invalid", "next",
    "metric", "note",
)  # fmt: skip
KIND_KEYS: dict[StepKind, tuple[str, ...]] = {
    StepKind.MESSAGE: (),
    StepKind.CHOICE: ("options",),
    StepKind.SCALE: ("scale",),
    StepKind.NPS: (),
    StepKind.YES_NO: (),
    StepKind.TEXT: ("max_length",),
    StepKind.NUMBER: ("min", "max"),
}
MESSAGE_KEYS = ("id", "type", "text", "next", "note")
ALL_STEP_KEYS = tuple(dict.fromkeys(COMMON_STEP_KEYS + sum(KIND_KEYS.values(), ())))
OPTION_KEYS = ("id", "label", "synonyms", "score")
BRANCH_KEYS = ("if", "goto")
TRIGGER_KEYS = ("keywords", "codes")
CODE_KEYS = ("code", "service_point")
FOLLOWUP_KEYS = ("delay", "window", "reminder_after", "reminder", "give_up_after", "frequency_cap")
WINDOW_KEYS = ("start", "end", "days")

KEY_HINTS = {
    "id": "add `id: some-name` (lower-case letters, digits, - and _)",
    "title": "add `title:` with a short name per language (fi: ..., sv: ..., en: ...)",
    "languages": "add `languages: [fi, sv, en]`",
    "default_language": "add `default_language: fi` (one of `languages`)",
    "closing": "add `closing:` with the thank-you message per language",
    "steps": "add `steps:` with at least one question",
    "type": "add `type:` (message, choice, scale, nps, yes_no, text or number)",
    "text": "add `text:` with the question per language",
    "options": "add `options:` with at least two answers",
    "label": "add `label:` with the option's text per language",
    "goto": "add `goto: <step id>` (or `goto: end`)",
    "code": "add `code: some_code`",
}

# Spellings people bring from other tools, for "did you mean".
OP_ALIASES = {
    "lte": "le", "leq": "le", "<=": "le", "gte": "ge", "geq": "ge", ">=": "ge",
    "<": "lt", ">": "gt", "=": "eq", "==": "eq", "equals": "eq", "is": "eq",
    "neq": "ne", "!=": "ne", "not": "ne", "one_of": "in", "nin": "not_in",
}  # fmt: skip

TYPE_NAMES = {
    str: "a text",
    int: "a whole number",
    bool: "true or false",
    list: "a list",
    dict: "a mapping (`key: value` lines)",
}


def _type_name(value: Any) -> str:
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


def parse_duration(text: str) -> timedelta | None:
    """``"24h"`` -> 24 hours; ``"1d 12h"``, ``"90m"``, ``"2w"``; None when not a duration."""
    if not _DURATION.match(text):
        return None
    total = timedelta()
    for amount, unit in _DURATION_PART.findall(text):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    return total


def flow_version(text: str) -> str:
    """The version of a flow source: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- the reader ----------------------------------------------------------------------------


@dataclass
class Reading:
    """The outcome of reading one flow file: the flow (None when it has errors) and problems."""

    source: str
    text: str
    flow: Flow | None
    problems: list[Problem]
    positions: Positions
    flow_id: str | None = None  # even when the flow has errors, if the id was readable
    draft: Flow | None = None  # best-effort flow for reports (segments), also with errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return self.flow is not None


@dataclass
class _Reader:
    sink: ProblemSink
    languages: tuple[str, ...] = ()
    step_ids: list[str] = field(default_factory=list)
    steps_complete: bool = True  # every step had a readable id and type

    # generic checks

    def is_type(self, value: Any, path: Path, kind: type, what: str = "") -> bool:
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
            self.sink.error(path, f"should be {expected}, not {_type_name(value)}", hint)
        return ok

    def mapping(
        self,
        value: Any,
        path: Path,
        allowed: Iterable[str],
        required: Iterable[str] = (),
        elsewhere: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        if not self.is_type(value, path, dict):
            return None
        allowed = tuple(allowed)
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
        for key in required:
            if key not in value:
                self.sink.error(path, f"missing `{key}`", KEY_HINTS.get(key, f"add `{key}:`"))
        return dict(value)

    def string(self, value: Any, path: Path) -> str | None:
        if not self.is_type(value, path, str):
            return None
        if not value.strip():
            self.sink.error(path, "is empty", "write the text, or remove the field")
            return None
        return str(value)

    def slug(self, value: Any, path: Path, what: str) -> str | None:
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

    def integer(self, value: Any, path: Path, low: int | None = None) -> int | None:
        if not self.is_type(value, path, int):
            return None
        if low is not None and value < low:
            self.sink.error(path, f"should be at least {low}", f"write a number ≥ {low}")
            return None
        return int(value)

    def boolean(self, value: Any, path: Path) -> bool | None:
        return bool(value) if self.is_type(value, path, bool) else None

    def duration(self, value: Any, path: Path) -> timedelta | None:
        hint = "write a duration like 30m, 2h, 24h, 3d or 1w"
        if not isinstance(value, str):
            self.sink.error(path, f"should be a duration, not {_type_name(value)}", hint)
            return None
        parsed = parse_duration(value)
        if parsed is None or parsed <= timedelta():
            self.sink.error(path, f"{value!r} is not a duration", hint)
            return None
        return parsed

    def choice_of(self, value: Any, path: Path, allowed: Iterable[str], what: str) -> str | None:
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

    def texts(self, value: Any, path: Path, what: str = "text") -> Texts:
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

    def words(self, value: Any, path: Path) -> tuple[str, ...]:
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

    def words_per_language(self, value: Any, path: Path, what: str) -> dict[str, tuple[str, ...]]:
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

    # the flow

    def flow(self, doc: Any, text: str, source: str) -> tuple[Flow | None, str | None]:
        top = self.mapping(doc, (), TOP_KEYS, TOP_REQUIRED)
        if top is None:
            return None, None
        flow_id = self.slug(top["id"], ("id",), "flow id") if "id" in top else None

        languages: list[str] = []
        if "languages" in top and self.is_type(top["languages"], ("languages",), list):
            for index, language in enumerate(top["languages"]):
                path: Path = ("languages", index)
                code = self.string(language, path)
                if code is None:
                    continue
                if not LANGUAGE.match(code):
                    self.sink.error(
                        path, f"{code!r} is not a language code", "use codes like fi, sv, en, ru"
                    )
                elif code in languages:
                    self.sink.warning(path, f"{code} is listed twice", "remove the second one")
                else:
                    languages.append(code)
            if not top["languages"]:
                self.sink.error(("languages",), "no languages", "add e.g. `[fi, sv, en]`")
        self.languages = tuple(languages)

        default_language = ""
        if "default_language" in top:
            default_language = self.string(top["default_language"], ("default_language",)) or ""
            if default_language and languages and default_language not in languages:
                suggestion = did_you_mean(default_language, languages)
                self.sink.error(
                    ("default_language",),
                    f"default_language {default_language!r} is not in `languages`",
                    f"use one of: {', '.join(languages)}"
                    + (f" ({suggestion})" if suggestion else "")
                    + f", or add {default_language} to `languages`",
                )
        if not default_language and languages:
            default_language = languages[0]

        title = self.texts(top.get("title"), ("title",), "title") if "title" in top else {}
        closing = (
            self.texts(top.get("closing"), ("closing",), "closing message")
            if "closing" in top
            else {}
        )
        expired = (
            self.texts(top["expired"], ("expired",), "expiry message") if "expired" in top else None
        )
        if "description" in top:
            self.is_type(top["description"], ("description",), str)

        service_points: list[str] = []
        if "service_points" in top and self.is_type(
            top["service_points"], ("service_points",), list
        ):
            for index, point in enumerate(top["service_points"]):
                slug = self.slug(point, ("service_points", index), "service point")
                if slug is not None:
                    service_points.append(slug)

        triggers = (
            self.triggers(top.get("triggers"), service_points)
            if "triggers" in top
            else (Triggers())
        )
        expires_after = timedelta(hours=24)
        if "expires_after" in top:
            expires_after = self.duration(top["expires_after"], ("expires_after",)) or expires_after
        followup = self.followup(top["followup"]) if "followup" in top else None

        steps = self.steps(top.get("steps"))
        if not steps or not self.steps_complete:
            return None, flow_id
        # Built even when the id is broken, so that the remaining checks still run; the
        # caller never hands out a flow with errors.
        flow = Flow(
            id=flow_id or "",
            version=flow_version(text),
            title=title,
            default_language=default_language or (languages[0] if languages else "fi"),
            languages=self.languages,
            steps=tuple(steps),
            closing=closing,
            triggers=triggers,
            service_points=tuple(service_points),
            expires_after=expires_after,
            expired=expired,
            followup=followup,
            source=source,
        )
        return flow, flow_id

    def triggers(self, value: Any, service_points: list[str]) -> Triggers:
        top = self.mapping(value, ("triggers",), TRIGGER_KEYS)
        if top is None:
            return Triggers()
        keywords: dict[str, tuple[str, ...]] = {}
        if "keywords" in top:
            keywords = self.words_per_language(
                top["keywords"], ("triggers", "keywords"), "keywords"
            )
        codes: dict[str, str | None] = {}
        if "codes" in top and self.is_type(top["codes"], ("triggers", "codes"), list):
            for index, item in enumerate(top["codes"]):
                path: Path = ("triggers", "codes", index)
                point: str | None = None
                if isinstance(item, dict):
                    entry = self.mapping(item, path, CODE_KEYS, ("code",))
                    if entry is None or "code" not in entry:
                        continue
                    if "service_point" in entry:
                        point = self.slug(
                            entry["service_point"], (*path, "service_point"), "service point"
                        )
                        if point is not None and point not in service_points:
                            self.sink.error(
                                (*path, "service_point"),
                                f"service point {point!r} is not in `service_points`",
                                f"add {point} to `service_points`"
                                + (
                                    f" ({did_you_mean(point, service_points)})"
                                    if did_you_mean(point, service_points)
                                    else ""
                                ),
                            )
                    item, path = entry["code"], (*path, "code")
                if isinstance(item, int) and not isinstance(item, bool):
                    item = str(item)
                code = self.string(item, path)
                if code is None:
                    continue
                if not CODE.match(code):
                    self.sink.error(
                        path,
                        f"start code {code!r} has characters that are not allowed",
                        "use 1-64 letters A-Z a-z, digits, _ and - (Telegram deep links allow "
                        "nothing else)",
                    )
                    continue
                if code in codes:
                    self.sink.error(
                        path, f"start code {code!r} is listed twice", "remove the second one"
                    )
                    continue
                codes[code] = point
        return Triggers(keywords=keywords, codes=codes)

    def followup(self, value: Any) -> FollowupRule | None:
        base: Path = ("followup",)
        top = self.mapping(value, base, FOLLOWUP_KEYS)
        if top is None:
            return None
        rule = FollowupRule()
        changes: dict[str, Any] = {}
        for key in ("delay", "reminder_after", "give_up_after", "frequency_cap"):
            if key in top:
                parsed = self.duration(top[key], (*base, key))
                if parsed is not None:
                    changes[key] = parsed
        if "reminder" in top:
            changes["reminder"] = self.texts(top["reminder"], (*base, "reminder"), "reminder")
        if "window" in top:
            window = self.mapping(top["window"], (*base, "window"), WINDOW_KEYS)
            if window is not None:
                changes["window"] = self.window(window)
        rule = FollowupRule(**{**rule.__dict__, **changes})
        if rule.give_up_after <= rule.delay:
            self.sink.error(
                (*base, "give_up_after") if "give_up_after" in top else (*base, "delay"),
                "give_up_after is not longer than delay, so no follow-up would ever be sent",
                "make give_up_after longer than delay (e.g. delay: 2h, give_up_after: 3d)",
            )
        if rule.reminder and rule.reminder_after is None:
            self.sink.warning(
                (*base, "reminder"),
                "the reminder is never sent: `reminder_after` is missing",
                "add e.g. `reminder_after: 24h`",
            )
        if rule.reminder_after is not None and rule.delay + rule.reminder_after >= (
            rule.give_up_after
        ):
            self.sink.warning(
                (*base, "reminder_after"),
                "the reminder would come after give_up_after, so it is never sent",
                "shorten reminder_after or lengthen give_up_after",
            )
        return rule

    def window(self, window: dict[str, Any]) -> QuietHours:
        base: Path = ("followup", "window")
        hours = QuietHours()
        start, end, days = hours.start, hours.end, hours.days
        for key in ("start", "end"):
            if key in window:
                text = self.string(window[key], (*base, key))
                if text is not None and not TIME.match(text):
                    self.sink.error(
                        (*base, key), f"{text!r} is not a time", 'write it as "HH:MM", e.g. "09:00"'
                    )
                elif text is not None:
                    start, end = (text, end) if key == "start" else (start, text)
        if "days" in window and self.is_type(window["days"], (*base, "days"), list):
            chosen: list[int] = []
            for index, day in enumerate(window["days"]):
                name = self.choice_of(day, (*base, "days", index), DAYS, "day")
                if name is not None and DAYS.index(name) not in chosen:
                    chosen.append(DAYS.index(name))
            days = tuple(sorted(chosen))
            if not days:
                self.sink.error((*base, "days"), "no days", "list days like [mon, tue, wed]")
        if _minutes(start) >= _minutes(end):
            self.sink.error(
                base,
                f"the window ends ({end}) before it starts ({start})",
                "make `end` later than `start`",
            )
        return QuietHours(start=start, end=end, days=days)

    # steps

    def steps(self, value: Any) -> list[Step]:
        if value is None or not self.is_type(value, ("steps",), list):
            self.steps_complete = False
            return []
        if not value:
            self.sink.error(("steps",), "no steps", "add at least one question")
            self.steps_complete = False
            return []
        # Ids first, so that `next` can be checked against steps further down.
        for raw in value:
            step_id = raw.get("id") if isinstance(raw, dict) else None
            self.step_ids.append(step_id if isinstance(step_id, str) else "")
        steps: list[Step] = []
        for index, raw in enumerate(value):
            step = self.step(raw, index)
            if step is None:
                self.steps_complete = False
            else:
                steps.append(step)
        return steps

    def step(self, raw: Any, index: int) -> Step | None:
        path: Path = ("steps", index)
        if not self.is_type(raw, path, dict, "a step (id, type, text ...)"):
            return None
        kind_name = raw.get("type")
        kind: StepKind | None = None
        if "type" in raw:
            name = self.choice_of(
                kind_name, (*path, "type"), [k.value for k in StepKind], "step type"
            )
            kind = StepKind(name) if name is not None else None
        if kind is None:
            self.mapping(raw, path, ALL_STEP_KEYS, ("id", "type", "text"))
            return None
        allowed = MESSAGE_KEYS if kind is StepKind.MESSAGE else (COMMON_STEP_KEYS + KIND_KEYS[kind])
        elsewhere = {
            key: f"`{key}` is not used by {kind.value} steps"
            + (
                f" (only by {', '.join(k.value for k, keys in KIND_KEYS.items() if key in keys)})"
                if any(key in keys for keys in KIND_KEYS.values())
                else ""
            )
            for key in ALL_STEP_KEYS
            if key not in allowed
        }
        step = self.mapping(raw, path, allowed, ("id", "type", "text"), elsewhere)
        assert step is not None
        step_id = self.slug(step["id"], (*path, "id"), "step id") if "id" in step else None
        if step_id == END:
            self.sink.error(
                (*path, "id"),
                f"`{END}` is reserved for the end of the survey",
                "choose another id",
            )
            step_id = None
        if step_id is None:
            return None
        text = self.texts(step.get("text"), (*path, "text"), "question") if "text" in step else {}
        line = self.sink.positions.at(path)[0]
        fields: dict[str, Any] = {"id": step_id, "kind": kind, "text": text, "line": line}

        if "optional" in step:
            fields["optional"] = self.boolean(step["optional"], (*path, "optional")) or False
        if "invalid" in step:
            fields["invalid"] = self.texts(step["invalid"], (*path, "invalid"), "re-prompt")
        if "max_attempts" in step:
            attempts = self.integer(step["max_attempts"], (*path, "max_attempts"), 1)
            if attempts is not None:
                fields["max_attempts"] = attempts
        if "on_invalid" in step:
            choice = self.choice_of(
                step["on_invalid"],
                (*path, "on_invalid"),
                [o.value for o in OnInvalid],
                "on_invalid action",
            )
            if choice is not None:
                fields["on_invalid"] = OnInvalid(choice)
        if "metric" in step:
            metric = self.slug(step["metric"], (*path, "metric"), "metric")
            if metric is not None:
                fields["metric"] = metric
        if "note" in step:
            self.is_type(step["note"], (*path, "note"), str)

        if kind is StepKind.CHOICE:
            fields["options"] = self.options(step.get("options"), (*path, "options"))
            if "options" not in step:
                self.sink.error(path, "missing `options`", KEY_HINTS["options"])
        elif kind is StepKind.SCALE:
            scale = "1-5"
            if "scale" in step:
                scale = self.choice_of(step["scale"], (*path, "scale"), SCALES, "scale") or scale
            style, low, high = _scale_range(scale)
            fields.update(scale_style=style, scale_min=low, scale_max=high)
        elif kind is StepKind.NPS:
            fields.update(scale_min=0, scale_max=10)
        elif kind is StepKind.TEXT and "max_length" in step:
            length = self.integer(step["max_length"], (*path, "max_length"), 1)
            if length is not None:
                fields["max_length"] = length
        elif kind is StepKind.NUMBER:
            for key, name in (("min", "min_value"), ("max", "max_value")):
                if key in step:
                    fields[name] = self.integer(step[key], (*path, key))
            low_value, high_value = fields.get("min_value"), fields.get("max_value")
            if low_value is not None and high_value is not None and low_value > high_value:
                self.sink.error(
                    (*path, "max"),
                    f"max ({high_value}) is below min ({low_value})",
                    "swap min and max",
                )

        if "next" in step:
            branches, default = self.next(step["next"], (*path, "next"), index)
            fields["branches"] = branches
            fields["next"] = default
        return Step(**fields)

    def options(self, value: Any, path: Path) -> tuple[Option, ...]:
        if value is None or not self.is_type(value, path, list):
            return ()
        if len(value) < 2:
            self.sink.error(
                path, "a choice needs at least two options", "add options, or use a message step"
            )
        options: list[Option] = []
        for index, raw in enumerate(value):
            child = (*path, index)
            entry = self.mapping(raw, child, OPTION_KEYS, ("id", "label"))
            if entry is None or "id" not in entry:
                continue
            option_id = self.slug(entry["id"], (*child, "id"), "option id")
            if option_id is None:
                continue
            label = (
                self.texts(entry.get("label"), (*child, "label"), "label")
                if ("label" in entry)
                else {}
            )
            synonyms = (
                self.words_per_language(entry["synonyms"], (*child, "synonyms"), "synonyms")
                if "synonyms" in entry
                else {}
            )
            score: int | None = None
            if entry.get("score") is not None:
                score = self.integer(entry["score"], (*child, "score"))
            options.append(Option(id=option_id, label=label, synonyms=synonyms, score=score))
        return tuple(options)

    def next(
        self, value: Any, path: Path, step_index: int
    ) -> tuple[tuple[Branch, ...], str | None]:
        positions = self.sink.positions
        if isinstance(value, str):
            positions.default_next[step_index] = path
            return (), self.goto(value, path)
        if not self.is_type(value, path, list, "a step id, or a list of `- if: ... goto: ...`"):
            return (), None
        branches: list[Branch] = []
        default: str | None = None
        for index, raw in enumerate(value):
            child = (*path, index)
            entry = self.mapping(raw, child, BRANCH_KEYS, ("goto",))
            if entry is None:
                continue
            if default is not None:
                self.sink.error(
                    child,
                    "this branch is never used: an earlier branch without `if` always applies",
                    "move the branch without `if` to the end of the list",
                )
            target = self.goto(entry["goto"], (*child, "goto")) if "goto" in entry else None
            if "if" not in entry:
                if target is not None:
                    default = target
                    positions.default_next[step_index] = (*child, "goto")
                continue
            conditions = self.conditions(entry["if"], (*child, "if"))
            if conditions is not None:
                # A broken `goto` is already reported; keep the branch (ending the draft
                # there) so that its conditions are still checked.
                positions.branches[(step_index, len(branches))] = child
                branches.append(Branch(when=conditions, goto=target or END))
        return tuple(branches), default

    def goto(self, value: Any, path: Path) -> str | None:
        target = self.string(value, path)
        if target is None:
            return None
        if target != END and target not in self.step_ids:
            suggestion = did_you_mean(target, [s for s in self.step_ids if s])
            self.sink.error(
                path,
                f"there is no step {target!r}",
                (sentence(suggestion) + " " if suggestion else "")
                + f"use a step id ({', '.join(s for s in self.step_ids if s)}) or `end`",
            )
            return None
        return target

    def conditions(self, value: Any, path: Path) -> tuple[Condition, ...] | None:
        top = self.is_type(value, path, dict, "conditions like `{overall: {le: 2}}`")
        if not top:
            return None
        if not value:
            self.sink.error(path, "no conditions", "write e.g. `if: {overall: {le: 2}}`")
            return None
        conditions: list[Condition] = []
        ops = [op.value for op in Op]
        ok = True
        for step_id, test in value.items():
            child = (*path, step_id)
            if not isinstance(test, dict):
                # Shorthand: `overall: 5` means eq, `overall: [4, 5]` means in.
                test = {"in": test} if isinstance(test, list) else {"eq": test}
                self.sink.positions.values.setdefault(
                    (*child, next(iter(test))), self.sink.positions.at(child)
                )
            if not test:
                self.sink.error(child, "no test", "write e.g. `{le: 2}` or `{in: [a, b]}`")
                ok = False
            for op_name, operand in test.items():
                op_path = (*child, op_name)
                if op_name not in ops:
                    alias = OP_ALIASES.get(op_name)
                    suggestion = f"did you mean {alias!r}?" if alias else did_you_mean(op_name, ops)
                    self.sink.error(
                        op_path,
                        f"unknown test `{op_name}`",
                        sentence(suggestion) if suggestion else f"use one of: {', '.join(ops)}",
                        at_key=True,
                    )
                    ok = False
                    continue
                op = Op(op_name)
                operand_value = self.operand(op, operand, op_path)
                if operand_value is None:
                    ok = False
                    continue
                conditions.append(Condition(step=step_id, op=op, value=operand_value))
        return tuple(conditions) if ok else None

    def operand(
        self, op: Op, value: Any, path: Path
    ) -> int | str | bool | tuple[int | str, ...] | None:
        if op in (Op.ANSWERED, Op.SKIPPED):
            return self.boolean(value, path)
        if op in (Op.IN, Op.NOT_IN):
            if not self.is_type(value, path, list, "a list of values, e.g. [poor, very_poor]"):
                return None
            items: list[int | str] = []
            for index, item in enumerate(value):
                if isinstance(item, (int, str)) and not isinstance(item, bool):
                    items.append(item)
                else:
                    self.sink.error(
                        (*path, index),
                        f"should be a number or an option id, not {_type_name(item)}",
                        "write a number or an option id",
                    )
                    return None
            if not items:
                self.sink.error(path, "the list is empty", "list at least one value")
                return None
            return tuple(items)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return value
        self.sink.error(
            path,
            f"should be a number or an option id, not {_type_name(value)}",
            "write a number (for scales) or an option id (for choices)",
        )
        return None


def _scale_range(scale: str) -> tuple[ScaleStyle, int, int]:
    if scale.startswith("smiley-"):
        return ScaleStyle.SMILEY, 1, int(scale.split("-")[1])
    low, high = scale.split("-")
    return ScaleStyle.NUMERIC, int(low), int(high)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


# --- public API ----------------------------------------------------------------------------


def parse_yaml_documents(
    text: str, source: str = "<string>"
) -> tuple[list[tuple[Any, Positions]], list[Problem]]:
    """Every YAML document in ``text`` as plain data with positions, in the flow dialect.

    Used for transcript files (several conversations separated by ``---``).
    """
    documents: list[tuple[Any, Positions]] = []
    problems: list[Problem] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_FlowYamlLoader))
    except yaml.YAMLError as error:
        return [], [_syntax_problem(error, source)]
    for node in nodes:
        if node is None:
            continue
        positions = Positions()
        sink = ProblemSink(source, positions)
        documents.append((_to_plain(node, (), sink), positions))
        problems.extend(sink.problems)
    return documents, problems


def read_flow_text(text: str, source: str = "<string>") -> Reading:
    """Read a flow from YAML text, collecting every problem (never raises on bad input)."""
    positions = Positions()
    sink = ProblemSink(source, positions)
    try:
        node = yaml.compose(text, Loader=_FlowYamlLoader)
    except yaml.YAMLError as error:
        return Reading(source, text, None, [_syntax_problem(error, source)], positions)
    if node is None:
        sink.error((), "the file is empty", "start with `id:`, `title:`, `languages:` and `steps:`")
        return Reading(source, text, None, sink.problems, positions)
    doc = _to_plain(node, (), sink)
    reader = _Reader(sink)
    draft, flow_id = reader.flow(doc, text, source)
    if draft is not None:
        check_flow(draft, sink)
    sink.problems.sort(key=lambda p: (p.line, p.column))
    flow = draft if not sink.has_errors else None
    return Reading(source, text, flow, sink.problems, positions, flow_id, draft)


def read_flow_file(path: str | FilePath) -> Reading:
    file = FilePath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problem = Problem(
            str(path), 1, 1, "(file)", f"not UTF-8 text: {error.reason}", "save the file as UTF-8"
        )
        return Reading(str(path), "", None, [problem], Positions())
    return read_flow_text(text, source=str(path))


def load_flow_text(text: str, source: str = "<string>") -> Flow:
    """A Flow from YAML text; raises FlowError listing every error."""
    reading = read_flow_text(text, source)
    if reading.flow is None:
        raise FlowError(reading.problems)
    return reading.flow


def load_flow_file(path: str | FilePath) -> Flow:
    reading = read_flow_file(path)
    if reading.flow is None:
        raise FlowError(reading.problems)
    return reading.flow


def flow_files(paths: Iterable[str | FilePath]) -> list[FilePath]:
    """The YAML files named, directories expanded (sorted, non-recursive)."""
    out: list[FilePath] = []
    for path in map(FilePath, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            out.append(path)
    return out


def read_catalogue(paths: Iterable[str | FilePath]) -> list[Reading]:
    """Read several flow files and add the problems between them (duplicate ids, keywords)."""
    readings = [read_flow_file(path) for path in flow_files(paths)]
    for reading, problems in zip(readings, check_catalogue(readings), strict=True):
        if problems:
            reading.problems.extend(problems)
            reading.problems.sort(key=lambda p: (p.line, p.column))
            if any(p.is_error for p in problems):
                reading.flow = None
    return readings


class Catalogue:
    """The current flows, looked up by id, start keyword or start code."""

    def __init__(self, flows: Iterable[Flow], texts: Mapping[str, str] | None = None) -> None:
        """``texts``: flow id -> the exact YAML each flow was read from (see ``text_of``)."""
        self._texts = dict(texts or {})
        self._flows: dict[str, Flow] = {}
        self._keywords: dict[str, tuple[Flow, str]] = {}
        self._codes: dict[str, tuple[Flow, str | None]] = {}
        self._typed_codes: dict[str, str] = {}  # casefolded -> the code as written
        for flow in flows:
            if flow.id in self._flows:
                raise ValueError(f"two flows have the id {flow.id!r}")
            self._flows[flow.id] = flow
            for language, words in flow.triggers.keywords.items():
                for word in words:
                    self._keywords.setdefault(normalise_word(word), (flow, language))
            only_point = flow.service_points[0] if len(flow.service_points) == 1 else None
            for code, point in flow.triggers.codes.items():
                self._codes.setdefault(code, (flow, point or only_point))
                self._typed_codes.setdefault(code.casefold(), code)

    @classmethod
    def load(cls, directory: str | FilePath) -> Catalogue:
        """Every flow in ``directory``; raises FlowError if any file has errors."""
        readings = read_catalogue([directory])
        problems = [p for r in readings for p in r.problems]
        if any(p.is_error for p in problems):
            raise FlowError(problems)
        flows = [r.flow for r in readings if r.flow is not None]
        return cls(flows, {r.flow.id: r.text for r in readings if r.flow is not None})

    def text_of(self, flow: Flow) -> str | None:
        """The YAML text ``flow`` was loaded from (None if unknown or another version).

        Storage keeps it so that runs in progress stay on their version even after the
        file changes; unlike re-reading the file, this cannot race with an edit.
        """
        text = self._texts.get(flow.id)
        if text is None or flow_version(text) != flow.version:
            return None
        return text

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def all(self) -> tuple[Flow, ...]:
        return tuple(self._flows.values())

    def by_keyword(self, text: str) -> Flow | None:
        found = self.keyword(text)
        return found[0] if found else None

    def keyword(self, text: str) -> tuple[Flow, str] | None:
        """The flow a start keyword (the whole message) opens, with the keyword's language."""
        return self._keywords.get(normalise_word(text))

    def by_code(self, code: str) -> tuple[Flow, str | None] | None:
        """The flow a start code opens, with the service point the code stands for."""
        return self._codes.get(code.strip())

    def typed_code(self, text: str) -> str | None:
        """The start code a typed message (e.g. an SMS from a poster's QR code) is, as
        the flow writes it; any case, surrounding spaces ignored. None if it is none."""
        return self._typed_codes.get(text.strip().casefold())

    def __len__(self) -> int:
        return len(self._flows)

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._flows


def load_catalogue(directory: str | FilePath) -> Catalogue:
    return Catalogue.load(directory)
